"""The plain-loop floor of ``rulebot plan`` for the 20 rules of bench_plan.TWENTY.

    python benchmarks/floor_loop.py STORE NOW [--jsonl OUT]

Reads the live items of a rulebot store as plain rows from sqlite3 (items and
item_tags, no rulebot import), then runs the 20 rules as hand-written loops
with the planner's semantics: rules in file order, each seeing the items as
earlier rules left them (a deleted item is gone), items oldest
``time_added`` first then numeric id, actions that change nothing dropped,
``keep_newest`` before ``limit``, ``limit`` counting items that get an
action. Conditions follow docs/config.md: three-valued (unknown tags,
favourite or time never match, not even negated), tags compared
case-insensitively, ``older_than`` is age >= duration, ``domain`` matches
the host or a subdomain with ``www.`` ignored.

Prints the number of actions per rule as one JSON object. ``--jsonl OUT``
also writes every action as a JSON line (rule, send, item) to OUT: the
loop-plus-JSONL floor of a first-run plan (no reasons; rulebot writes them).

It is written for exactly these 20 rules: change it with TWENTY.
``NOW`` is unix seconds (what ``rulebot plan --now`` is given).
"""

from __future__ import annotations

import gc
import json
import re
import sqlite3
import sys
from collections.abc import Callable
from itertools import groupby
from operator import itemgetter
from typing import Any, TextIO

UNREAD, ARCHIVED, DELETED, HIDDEN = 0, 1, 2, 3
DAY = 86_400
BEFORE_2023 = 1_672_531_200  # 2023-01-01T00:00:00Z: `before: "2023-01-01"` in UTC

# An item is a mutable list; these are its slots. TAGS is None when unknown,
# FOLDED the case-folded tag set (kept in step with TAGS).
ID, URL, TITLE, HOST, STATUS, FAVORITE, TAGS, FOLDED, ADDED, WORDS, UPDATED, STORED = range(12)
# STORED: (status, favorite, tags) as stored, which a plan's item reference
# carries (the planner's item_ref), whatever earlier rules changed

# a grace mark, which `untagged` does not count as a tag (conditions.MARK)
_MARK = re.compile(r"^rulebot:[a-z0-9_-]+:\d{4}-\d{2}-\d{2}$", re.IGNORECASE)
_HOST = re.compile(r"^\s*[A-Za-z][A-Za-z0-9+.-]*://(?:[^/?#@]*@)?([^/?#:\[\]]*)")
_EARLY = re.compile(r"Article 1[0-9]{3}\b")
_FOLDED: dict[tuple[str, ...], frozenset[str]] = {}

# what an item action returns: None (changes nothing) or (send name, extra send fields)
Effect = tuple[str, dict[str, Any]] | None
ItemAction = Callable[[list[Any]], Effect]


def host(url: str) -> str:
    match = _HOST.match(url)
    name = match.group(1).lower().rstrip(".") if match else ""
    return name[4:] if name.startswith("www.") else name


def load(path: str) -> list[list[Any]]:
    """The live items, oldest first, each a list of the slots above."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    shared: dict[tuple[str, ...], tuple[str, ...]] = {}  # one tuple per tag combination
    rows = conn.execute("SELECT item_id, tag FROM item_tags ORDER BY item_id, position")
    tags = {
        item_id: shared.setdefault(found, found)
        for item_id, group in groupby(rows, key=itemgetter(0))
        if (found := tuple(tag for _, tag in group))
    }
    items = []
    rows = conn.execute(
        "SELECT item_id, given_url, resolved_url, given_title, resolved_title, status,"
        " favorite, tags_known, time_added, word_count, time_updated FROM items"
        f" WHERE status NOT IN ({DELETED}, {HIDDEN})"
    )
    for item_id, gu, ru, gt, rt, status, fav, known, added, words, updated in rows:
        url = ru or gu
        item_tags = tags.get(item_id, ()) if known else None
        title, updated = rt or gt or url, updated or 0
        folded = fold(item_tags)
        favorite = None if fav is None else fav == 1
        stored = (status, favorite, None if item_tags is None else list(item_tags))
        items.append(
            [
                item_id,
                url,
                title,
                host(url),
                status,
                fav,
                item_tags,
                folded,
                added,
                words,
                updated,
                stored,
            ]
        )
    conn.close()
    items.sort(key=lambda i: (i[ADDED] or 0, int(i[ID]) if i[ID].isdigit() else 0))
    return items


def fold(tags: tuple[str, ...] | None) -> frozenset[str] | None:
    """The case-folded tag set, one per tag combination (a library has few)."""
    if tags is None:
        return None
    if (found := _FOLDED.get(tags)) is None:
        found = _FOLDED[tags] = frozenset(t.casefold() for t in tags)
    return found


def set_tags(item: list[Any], tags: tuple[str, ...]) -> None:
    item[TAGS] = tags
    item[FOLDED] = fold(tags)


def untagged(item: list[Any]) -> bool:
    """Known to have no tags but grace marks (call only when tags are known)."""
    return all(_MARK.match(t) for t in item[TAGS])


def older(item: list[Any], days: int, now: int) -> bool:
    return item[ADDED] is not None and now - item[ADDED] >= days * DAY


# -- item actions: change the item in place, say what to send --------------


def archive(item: list[Any]) -> Effect:
    if item[STATUS] == ARCHIVED:
        return None
    item[STATUS] = ARCHIVED
    return "archive", {}


def readd(item: list[Any]) -> Effect:
    if item[STATUS] == UNREAD:
        return None
    item[STATUS] = UNREAD
    return "readd", {}


def favorite(item: list[Any]) -> Effect:
    if item[FAVORITE] == 1:
        return None
    item[FAVORITE] = 1
    return "favorite", {}


def delete(item: list[Any]) -> Effect:
    item[STATUS] = DELETED
    return "delete", {}


def tags_add(*wanted: str) -> ItemAction:
    folded = [(t, t.casefold()) for t in wanted]

    def act(item: list[Any]) -> Effect:
        have = item[FOLDED]
        if have is None:
            return None  # unknown tags: a change cannot be told from a no-op
        new = [t for t, f in folded if f not in have]
        if not new:
            return None
        set_tags(item, (*item[TAGS], *new))
        return "tags_add", {"tags": ",".join(new)}

    return act


def tags_remove(*wanted: str) -> ItemAction:
    def act(item: list[Any]) -> Effect:
        have = item[FOLDED]
        gone = [] if have is None else [t for t in wanted if t.casefold() in have]
        if not gone:
            return None
        drop = {t.casefold() for t in gone}
        set_tags(item, tuple(t for t in item[TAGS] if t.casefold() not in drop))
        return "tags_remove", {"tags": ",".join(gone)}

    return act


def tags_replace(*wanted: str) -> ItemAction:
    target = sorted(t.casefold() for t in wanted)

    def act(item: list[Any]) -> Effect:
        if item[TAGS] is not None and sorted(t.casefold() for t in item[TAGS]) == target:
            return None
        set_tags(item, wanted)
        return "tags_replace", {"tags": ",".join(wanted)}

    return act


class Planner:
    """Runs rules over ``items`` in order, counting (and maybe writing) actions."""

    def __init__(self, items: list[list[Any]], now: int, out: TextIO | None) -> None:
        self.items = items
        self.now = now
        self.out = out
        self.counts: dict[str, int] = {}

    def rule(
        self,
        name: str,
        candidates: list[list[Any]],
        actions: list[ItemAction],
        limit: int | None = None,
        keep_newest: int | None = None,
    ) -> None:
        if keep_newest:
            candidates = candidates[:-keep_newest]
        count = acted = 0
        deleted = False
        for item in candidates:
            if limit is not None and acted >= limit:
                break
            sent = 0
            for action in actions:
                if item[STATUS] == DELETED:
                    break
                effect = action(item)
                if effect is None:
                    continue
                sent += 1
                if self.out is not None:
                    self.write(name, effect, item)
            if sent:
                acted += 1
                count += sent
                deleted = deleted or item[STATUS] == DELETED
        self.counts[name] = count
        if deleted:
            self.items = [item for item in self.items if item[STATUS] != DELETED]

    def account(self, name: str, changed: int, send: dict[str, Any]) -> None:
        """An account-wide action: one send when it changed any item."""
        self.counts[name] = 1 if changed else 0
        if changed and self.out is not None:
            line = {"rule": name, "send": {**send, "time": self.now}}
            self.out.write(json.dumps(line) + "\n")

    def write(self, name: str, effect: tuple[str, dict[str, Any]], item: list[Any]) -> None:
        action, fields = effect
        send = {"action": action, "item_id": item[ID], **fields, "time": self.now}
        ref = {"item_id": item[ID], "title": item[TITLE], "url": item[URL]}
        ref["time_updated"] = item[UPDATED]  # never changed here: the stored item's
        ref["status"], ref["favorite"], ref["tags"] = item[STORED]
        assert self.out is not None
        self.out.write(json.dumps({"rule": name, "send": send, "item": ref}) + "\n")


def tag_rename(items: list[list[Any]], old: str, new: str) -> int:
    """Renames ``old`` (any case) on every item; how many it changed."""
    old, changed = old.casefold(), 0
    for item in items:
        if item[FOLDED] is None or old not in item[FOLDED]:
            continue
        kept = [t for t in item[TAGS] if t.casefold() != old]
        if new.casefold() not in {t.casefold() for t in kept}:
            kept.append(new)
        if sorted(kept) != sorted(item[TAGS]):
            set_tags(item, tuple(kept))
            changed += 1
    return changed


def tag_delete(items: list[list[Any]], gone: str) -> int:
    """Removes ``gone`` (any case) from every item; how many it changed."""
    gone, changed = gone.casefold(), 0
    for item in items:
        if item[FOLDED] is not None and gone in item[FOLDED]:
            set_tags(item, tuple(t for t in item[TAGS] if t.casefold() != gone))
            changed += 1
    return changed


def plan(items: list[list[Any]], now: int, out: TextIO | None) -> dict[str, int]:
    """The 20 rules of bench_plan.TWENTY, in file order."""
    p = Planner(items, now, out)
    # r01 {tag: read-later, status: unread, added: {older_than: 30d}}: archive, tags_add
    matched = [
        i
        for i in p.items
        if i[FOLDED] and "read-later" in i[FOLDED] and i[STATUS] == UNREAD and older(i, 30, now)
    ]
    p.rule("r01", matched, [archive, tags_add("auto-archived")])
    renamed = tag_rename(p.items, "js", "javascript")
    p.account("r02", renamed, {"action": "tag_rename", "old_tag": "js", "new_tag": "javascript"})
    matched = [i for i in p.items if i[STATUS] == ARCHIVED and older(i, 730, now)]
    p.rule("r03", matched, [delete], limit=20)
    # r04 {domain: github.com, untagged: true}
    matched = [
        i
        for i in p.items
        if (i[HOST] == "github.com" or i[HOST].endswith(".github.com"))
        and i[TAGS] is not None
        and untagged(i)
    ]
    p.rule("r04", matched, [tags_add("code")])
    matched = [i for i in p.items if "part 3" in i[TITLE].casefold()]
    p.rule("r05", matched, [favorite])
    matched = [i for i in p.items if "youtube.com" in i[URL].casefold()]  # glob *youtube.com*
    p.rule("r06", matched, [tags_add("video")])
    matched = [i for i in p.items if _EARLY.search(i[TITLE])]
    p.rule("r07", matched, [tags_add("early")])
    # r08 {tags: {any: [rust, python], none: [longread]}}
    matched = [
        i
        for i in p.items
        if i[FOLDED] is not None
        and ("rust" in i[FOLDED] or "python" in i[FOLDED])
        and "longread" not in i[FOLDED]
    ]
    p.rule("r08", matched, [tags_add("code")])
    matched = [i for i in p.items if i[STATUS] == ARCHIVED and i[FOLDED] and "to-sort" in i[FOLDED]]
    p.rule("r09", matched, [tags_remove("to-sort")])
    matched = [
        i
        for i in p.items
        if i[ADDED] is not None and i[ADDED] < BEFORE_2023 and i[STATUS] == UNREAD
    ]
    p.rule("r10", matched, [archive], keep_newest=100)
    # r11 {any: [{domain: medium.com}, {domain: blog.example.dev}]}
    matched = [
        i
        for i in p.items
        if i[HOST] in ("medium.com", "blog.example.dev")
        or i[HOST].endswith((".medium.com", ".blog.example.dev"))
    ]
    p.rule("r11", matched, [tags_add("blog")])
    matched = [i for i in p.items if i[FOLDED] and "recipes" in i[FOLDED] and i[FAVORITE] == 1]
    p.rule("r12", matched, [tags_add("cook-this")])
    matched = [i for i in p.items if i[ADDED] is not None and now - i[ADDED] < 7 * DAY]
    p.rule("r13", matched, [tags_add("new")])
    matched = [i for i in p.items if i[FOLDED] and "longread" in i[FOLDED] and i[STATUS] == UNREAD]
    p.rule("r14", matched, [favorite])
    matched = [i for i in p.items if i[WORDS] is not None and i[WORDS] >= 4000]
    p.rule("r15", matched, [favorite])
    matched = [
        i
        for i in p.items
        if (i[HOST] == "nytimes.com" or i[HOST].endswith(".nytimes.com"))
        and i[STATUS] == UNREAD
        and older(i, 90, now)
    ]
    p.rule("r16", matched, [archive])
    both = frozenset({"video", "to-sort"})
    matched = [i for i in p.items if i[FOLDED] is not None and both <= i[FOLDED]]
    p.rule("r17", matched, [tags_replace("video")])
    deleted = tag_delete(p.items, "obsolete")
    p.account("r18", deleted, {"action": "tag_delete", "tag": "obsolete"})
    matched = [i for i in p.items if "/posts/9" in i[URL].casefold()]
    p.rule("r19", matched, [tags_add("nine")])
    # r20 {all: [{status: unread}, {not: {untagged: true}}, {added: {older_than: 365d}}]}
    matched = [
        i
        for i in p.items
        if i[STATUS] == UNREAD and i[TAGS] is not None and not untagged(i) and older(i, 365, now)
    ]
    p.rule("r20", matched, [readd])
    return p.counts


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 4) or (len(argv) == 4 and argv[2] != "--jsonl"):
        print(__doc__, file=sys.stderr)
        return 2
    # Every object made here is acyclic and lives to the end: the cyclic GC
    # would only rescan them (rulebot pauses it while loading, too).
    gc.disable()
    items = load(argv[0])
    now = int(argv[1])
    if len(argv) == 4:
        with open(argv[3], "w", encoding="utf-8") as out:
            counts = plan(items, now, out)
    else:
        counts = plan(items, now, None)
    print(json.dumps(counts))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
