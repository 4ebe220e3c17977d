"""Generate examples/sample-library.csv: a realistic Pocket CSV export.

    python examples/make_sample_library.py [OUT.csv]

Deterministic: a fixed seed and a fixed reference date (2026-11-20), never
the clock, so the file (and every test or doc built on it) stays the same.
Pure stdlib. About 800 items over ~4 years, ~60% unread, with enough items
for rules like "read-later, unread, older than 30 days", "tag js" and
"archived, older than 2 years".
"""

from __future__ import annotations

import calendar
import csv
import random
import sys
import time
from pathlib import Path

SEED = 20261120
REFERENCE = calendar.timegm((2026, 11, 20, 0, 0, 0))  # 2026-11-20T00:00:00Z
DAY = 86_400
COUNT = 800
HEADER = ["title", "url", "time_added", "tags", "status"]

# domain -> (path pattern, topic tags that fit, title templates)
SITES: dict[str, tuple[str, list[str], list[str]]] = {
    "www.nytimes.com": (
        "/{y}/{m:02d}/{d:02d}/{section}/{slug}.html",
        ["longread", "news"],
        ["{A} {B}: What We Know So Far", "The Quiet Crisis in {C}", "How {C} Changed {D}"],
    ),
    "www.theverge.com": (
        "/{y}/{m:02d}/{d:02d}/{n}/{slug}",
        ["tech", "gadgets"],
        ["{P} review: {adj} and {adj2}", "{P} is finally here", "The best {C} of {y}"],
    ),
    "blog.example.dev": (
        "/posts/{slug}",
        ["js", "javascript", "python", "rust", "programming"],
        ["Understanding {L} {T}", "{L} {T} in 10 minutes", "Why I stopped using {T}"],
    ),
    "github.com": (
        "/{owner}/{repo}",
        ["js", "python", "rust", "tools", "programming"],
        ["{owner}/{repo}: {adj} {T} for {L}", "GitHub - {owner}/{repo}"],
    ),
    "www.youtube.com": (
        "/watch?v={vid}",
        ["video", "talks", "recipes"],
        ["{L} Conf {y}: {T} deep dive", "Cooking {dish} at home", "{C} explained"],
    ),
    "youtu.be": ("/{vid}", ["video"], ["{dish} in 15 minutes", "{L} {T} livestream"]),
    "medium.com": (
        "/@{owner}/{slug}-{hexid}",
        ["programming", "productivity", "javascript", "Python"],
        ["{n} {L} tips I wish I knew earlier", "Stop writing {T} like this", "On {C}"],
    ),
    "towardsdatascience.com": (
        "/{slug}-{hexid}",
        ["python", "Python", "data"],
        ["A gentle introduction to {T} with {L}", "{T}, clearly explained"],
    ),
    "developer.mozilla.org": (
        "/en-US/docs/Web/JavaScript/Reference/{T}",
        ["js", "javascript", "reference"],
        ["{T} - JavaScript | MDN"],
    ),
    "docs.python.org": ("/3/library/{mod}.html", ["python", "reference"], ["{mod} — {C}"]),
    "doc.rust-lang.org": ("/book/ch{d:02d}-00-{slug}.html", ["rust", "reference"], ["{T}"]),
    "www.seriouseats.com": (
        "/{slug}-recipe",
        ["recipes", "cooking"],
        ["The Best {dish}", "{dish} Recipe", "Easy Weeknight {dish}"],
    ),
    "cooking.nytimes.com": ("/recipes/{n}-{slug}", ["recipes"], ["{dish}", "{dish} With {B}"]),
    "www.newyorker.com": (
        "/magazine/{y}/{m:02d}/{d:02d}/{slug}",
        ["longread", "culture"],
        ["The Secret Life of {C}", "What {C} Can Teach Us About {D}"],
    ),
    "www.theatlantic.com": (
        "/{section}/archive/{y}/{m:02d}/{slug}/{n}/",
        ["longread", "ideas"],
        ["The Case Against {C}", "{C} Is Not What You Think"],
    ),
    "arstechnica.com": (
        "/{section}/{y}/{m:02d}/{slug}/",
        ["tech", "science"],
        ["{P} tested: {adj}, {adj2}", "Scientists find {C} in {D}"],
    ),
    "news.ycombinator.com": ("/item?id={n}", ["to-sort"], ["Ask HN: {C}?", "Show HN: {T}"]),
    "en.wikipedia.org": ("/wiki/{wiki}", ["reference"], ["{wiki_title} - Wikipedia"]),
    "jvns.ca": ("/blog/{y}/{m:02d}/{d:02d}/{slug}/", ["programming"], ["{T}: a zine"]),
    "simonwillison.net": ("/{y}/{mon}/{d}/{slug}/", ["python", "tools"], ["{T} with {L}"]),
    "stackoverflow.com": (
        "/questions/{n}/{slug}",
        ["programming", "js", "python"],
        ["How do I {verb} a {T} in {L}?", 'What does "{T}" mean in {L}?'],
    ),
    "www.bbc.com": ("/news/{section}-{n}", ["news"], ["{A} {B} as {C} grows"]),
    "lwn.net": ("/Articles/{n}/", ["linux", "longread"], ["{T} and the kernel", "A look at {T}"]),
}

WORDS = {
    "A": ["Markets", "Voters", "Scientists", "Cities", "Farmers", "Engineers"],
    "B": ["Brace for Change", "Rethink Everything", "Push Back", "Pesto", "Lemon"],
    "C": ["Remote Work", "Sleep", "Attention", "the Four-Day Week", "Urban Heat", "Open Source"],
    "D": ["Modern Life", "the Internet", "Your Commute", "Science", "Democracy"],
    "P": ["Pixel 9", "iPhone 16", "Framework Laptop", "Steam Deck", "Kindle Scribe"],
    "L": ["Python", "JavaScript", "Rust", "Go", "TypeScript", "SQL"],
    "T": [
        "async iterators",
        "closures",
        "type hints",
        "lifetimes",
        "Promise.all",
        "generators",
        "decorators",
        "borrow checking",
        "WebAssembly",
        "SQLite",
        "event loops",
        "pattern matching",
    ],
    "adj": ["fast", "quiet", "bold", "clever", "pricey", "flawed"],
    "adj2": ["nearly perfect", "hard to love", "worth it", "not for everyone"],
    "dish": ["Shakshuka", "Pad Thai", "Sourdough Bread", "Ramen", "Mapo Tofu", "Crème Brûlée"],
    "section": ["technology", "science", "world", "business", "health", "opinion"],
    "owner": ["astral-sh", "tokio-rs", "vitejs", "pallets", "simonw", "BurntSushi", "sindresorhus"],
    "repo": ["ruff", "tokio", "vite", "flask", "datasette", "ripgrep", "got"],
    "mod": ["asyncio", "itertools", "dataclasses", "sqlite3", "pathlib", "functools"],
    "verb": ["reverse", "flatten", "deep-copy", "debounce", "sort", "parse"],
    "wiki": ["Pocket_(service)", "Read-it-later", "SQLite", "Cron", "Bloom_filter"],
}
TAG_EXTRAS = ["read-later", "read-later", "read-later", "to-sort", "longread", "favorite-authors"]


def slugify(text: str) -> str:
    kept = "".join(c.lower() if c.isalnum() else "-" for c in text)
    return "-".join(part for part in kept.split("-") if part)[:60]


def make_item(rng: random.Random) -> list[str]:
    domain = rng.choice(list(SITES))
    path_pattern, topic_tags, templates = SITES[domain]
    # Mostly recent items, with a long tail back to ~4 years (1,460 days).
    age_days = min(1460, int(rng.expovariate(1 / 420)) + rng.randint(2, 6))
    added = REFERENCE - age_days * DAY - rng.randint(0, DAY - 1)
    y, m, d = _date(added)
    fill = {key: rng.choice(values) for key, values in WORDS.items()}
    fill.update(y=y, m=m, d=d, n=rng.randint(10_000, 99_999_999), mon=_MONTHS[m - 1])
    fill["wiki_title"] = fill["wiki"].replace("_", " ")
    title = rng.choice(templates).format(**fill)
    title = title[0].upper() + title[1:]
    fill.update(
        slug=slugify(title),
        vid="".join(rng.choice(_B64) for _ in range(11)),
        hexid=f"{rng.getrandbits(48):012x}",
    )
    url = f"https://{domain}{path_pattern.format(**fill)}"
    if rng.random() < 0.08:
        url += rng.choice(["?utm_source=newsletter", "?ref=hn", "#comments"])
    if rng.random() < 0.03:
        title = ""  # Pocket wrote the URL as the title when it had none
    if rng.random() < 0.04:
        title = f'{title}, "annotated" — notes'  # commas, quotes, non-ASCII
    tags: list[str] = []
    if rng.random() < 0.78:  # some items are untagged
        tags.append(rng.choice(topic_tags))
        if rng.random() < 0.45:
            tags.append(rng.choice(TAG_EXTRAS))
        if rng.random() < 0.12:
            tags.append(rng.choice(topic_tags))
    tags = list(dict.fromkeys(tags))
    # Older items are more often read; overall ~40% archived.
    archived = rng.random() < (0.25 if age_days < 365 else 0.55)
    return [title or url, url, str(added), "|".join(tags), "archive" if archived else "unread"]


_MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def _date(ts: int) -> tuple[int, int, int]:
    when = time.gmtime(ts)
    return when.tm_year, when.tm_mon, when.tm_mday


def main(argv: list[str]) -> int:
    out = Path(argv[1]) if len(argv) > 1 else Path(__file__).with_name("sample-library.csv")
    rng = random.Random(SEED)
    rows, seen = [], set()
    while len(rows) < COUNT:
        row = make_item(rng)
        if row[1] not in seen:  # one row per URL, like a real export
            seen.add(row[1])
            rows.append(row)
    rows.sort(key=lambda row: -int(row[2]))  # Pocket exported newest first
    with out.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\r\n")
        writer.writerow(HEADER)
        writer.writerows(rows)
    print(f"wrote {len(rows)} items to {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
