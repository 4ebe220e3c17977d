"""The SQL pushdown floor of a steady-state ``rulebot plan`` (bench_plan.TWENTY).

    python benchmarks/floor_sql.py STORE NOW

Each of the 20 rules becomes one SELECT over the store: its ``where`` and
the test that its actions would change something (``tags_add`` of a tag
the item lacks, ``archive`` of an item not archived, …) as a WHERE clause,
``limit`` as LIMIT and ``keep_newest`` as a window, selecting the candidate
item ids (and how many actions each gets). Only the ids cross into Python;
no item object is built. Prints the number of actions per rule as one
JSON object, like floor_loop.py.

What it leaves out, so its counts may differ from rulebot's:

- the simulated state: every rule sees the store as it is, not as earlier
  rules left it (r03's deletions stay visible to later rules, r05's
  favourites do not feed r12, r01/r16's archiving does not feed r09);
- writing the plan: no action objects, reasons or JSON;
- exactness in corners the generated data never reaches: tags compare with
  SQLite's ASCII ``lower()`` instead of ``casefold()``; the host is the text
  between ``://`` and the next ``/`` (no user info, port or IPv6 handling);
  grace marks count as tags for ``untagged``.

The one condition SQLite cannot evaluate, r07's regex, is pushed down as a
GLOB that every match satisfies, and the survivors are tested with ``re``.
"""

from __future__ import annotations

import json
import re
import sqlite3
import sys

DAY = 86_400
BEFORE_2023 = 1_672_531_200  # 2023-01-01T00:00:00Z
_EARLY = re.compile(r"Article 1[0-9]{3}\b")

# The live items with the derived columns conditions read.
LIVE = """
CREATE TEMP VIEW live AS
SELECT item_id, status, favorite, tags_known, time_added, word_count, url,
       coalesce(nullif(resolved_title, ''), nullif(given_title, ''), url) AS title,
       lower(CASE WHEN instr(rest, '/') THEN substr(rest, 1, instr(rest, '/') - 1)
                  ELSE rest END) AS host
FROM (
    SELECT *, substr(url, instr(url, '://') + 3) AS rest
    FROM (
        SELECT *, CASE WHEN resolved_url <> '' THEN resolved_url ELSE given_url END AS url
        FROM items WHERE status IN (0, 1)
    )
)
"""
ORDER = "ORDER BY time_added, CAST(item_id AS INTEGER)"


def has(*tags: str) -> str:
    """Has one of ``tags`` (ASCII case-insensitive). Not correlated: SQLite
    collects the ids once per query, then probes them per item."""
    wanted = ", ".join(f"'{t}'" for t in tags)
    return f"item_id IN (SELECT item_id FROM item_tags WHERE lower(tag) IN ({wanted}))"


def lacks(tag: str) -> str:
    """``tags_add: [tag]`` changes the item: its tags are known and lack it."""
    return f"(tags_known = 1 AND NOT {has(tag)})"


def domain(*names: str) -> str:
    """The host is one of ``names`` or a subdomain ("www." is one too). Each
    mention of ``host`` recomputes it, so it is mentioned once per name."""
    return "(" + " OR ".join(f"'.' || host LIKE '%.{d}'" for d in names) + ")"


def older(days: int) -> str:
    return f"(time_added IS NOT NULL AND :now - time_added >= {days * DAY})"


UNTAGGED = (
    "(tags_known = 1 AND NOT EXISTS (SELECT 1 FROM item_tags t WHERE t.item_id = live.item_id))"
)
TAGGED = "(tags_known = 1 AND EXISTS (SELECT 1 FROM item_tags t WHERE t.item_id = live.item_id))"

# rule -> (actions per item as an SQL sum, where, the rest of the SELECT)
ITEM_RULES: dict[str, tuple[str, str, str]] = {
    "r01": (
        f"(status <> 1) + {lacks('auto-archived')}",
        f"tags_known = 1 AND {has('read-later')} AND status = 0 AND {older(30)}",
        "",
    ),
    "r03": ("1", f"status = 1 AND {older(730)}", f"{ORDER} LIMIT 20"),
    "r04": (lacks("code"), f"{domain('github.com')} AND {UNTAGGED}", ""),
    "r05": ("(favorite IS NOT 1)", "instr(lower(title), 'part 3')", ""),
    "r06": (lacks("video"), "instr(lower(url), 'youtube.com')", ""),
    # r07 is filtered further in Python: GLOB cannot say \b
    "r07": (lacks("early"), "title GLOB '*Article 1[0-9][0-9][0-9]*'", ""),
    "r08": (
        lacks("code"),
        f"tags_known = 1 AND {has('rust', 'python')} AND NOT {has('longread')}",
        "",
    ),
    "r09": ("1", f"status = 1 AND {has('to-sort')}", ""),
    "r11": (lacks("blog"), domain("medium.com", "blog.example.dev"), ""),
    "r12": (lacks("cook-this"), f"{has('recipes')} AND favorite = 1", ""),
    "r13": (lacks("new"), f"time_added IS NOT NULL AND :now - time_added < {7 * DAY}", ""),
    "r14": ("(favorite IS NOT 1)", f"{has('longread')} AND status = 0", ""),
    "r15": ("(favorite IS NOT 1)", "word_count >= 4000", ""),
    "r16": ("(status <> 1)", f"{domain('nytimes.com')} AND status = 0 AND {older(90)}", ""),
    # tags_replace [video] changes anything not tagged exactly `video`: with to-sort, always
    "r17": ("1", f"{has('video')} AND {has('to-sort')}", ""),
    "r19": (lacks("nine"), "instr(lower(url), '/posts/9')", ""),
    "r20": ("(status <> 0)", f"status = 0 AND {TAGGED} AND {older(365)}", ""),
}
# r10: keep_newest 100 drops the 100 newest matches before the no-op test
KEEP_NEWEST = f"""
SELECT item_id, 1 FROM (
    SELECT item_id, status,
           row_number() OVER (ORDER BY time_added DESC, CAST(item_id AS INTEGER) DESC) AS newest
    FROM live WHERE time_added < {BEFORE_2023} AND status = 0
) WHERE newest > 100 AND status <> 1
"""
# account-wide rules: one action when any live item has the tag
ACCOUNT_RULES = {"r02": "js", "r18": "obsolete"}


def plan(conn: sqlite3.Connection, now: int) -> dict[str, int]:
    counts: dict[str, int] = {}
    for number in range(1, 21):
        rule = f"r{number:02d}"
        if rule in ACCOUNT_RULES:
            found = conn.execute(
                f"SELECT EXISTS (SELECT 1 FROM live WHERE {has(ACCOUNT_RULES[rule])})"
            )
            counts[rule] = found.fetchone()[0]
            continue
        if rule == "r10":
            selected = conn.execute(KEEP_NEWEST).fetchall()
        elif rule == "r07":
            actions, where, _ = ITEM_RULES[rule]
            rows = conn.execute(
                f"SELECT item_id, {actions} AS n, title FROM live WHERE {where} AND n > 0"
            )
            selected = [(item_id, n) for item_id, n, title in rows if _EARLY.search(title)]
        else:
            actions, where, rest = ITEM_RULES[rule]
            query = f"SELECT item_id, {actions} AS n FROM live WHERE {where} AND n > 0 {rest}"
            selected = conn.execute(query, {"now": now}).fetchall()
        counts[rule] = sum(n for _, n in selected)
    return counts


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    conn = sqlite3.connect(f"file:{argv[0]}?mode=ro", uri=True)
    conn.execute(LIVE)
    print(json.dumps(plan(conn, int(argv[1]))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
