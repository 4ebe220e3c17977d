"""The import floor: a Pocket CSV export into an empty rulebot store with
``csv`` and ``executemany`` alone.

    python benchmarks/floor_import.py EXPORT.csv STORE

STORE must already hold rulebot's schema and no items (bench_floors.py makes
it with ``Store.open``). Writes the rows ``rulebot import`` writes for the
same file: the id from the URL's SHA-256 (``export_reader.item_id_for_url``,
collisions moved on), a title equal to the URL stored as "", tags split on
``|``, stripped, empty and repeated ones dropped, ``time_updated =
time_added``, favourite unknown (NULL); a URL seen twice keeps its last row.
One transaction with ``synchronous=NORMAL``, as rulebot's bulk load.

Left out: everything ``rulebot import`` checks or reports (bad rows,
formula-quoted cells, zip and HTML exports, merging into a non-empty
library, the lock, the config).
"""

from __future__ import annotations

import csv
import gc
import hashlib
import sqlite3
import sys
from collections.abc import Iterator
from typing import Any

STATUS = {"unread": 0, "archive": 1, "archived": 1}


def item_id(url: str, attempt: int) -> str:
    key = url if attempt == 0 else f"{url}\n{attempt}"
    return str(int(hashlib.sha256(key.encode()).hexdigest()[:13], 16) or 1)


def read(path: str) -> dict[str, tuple[str, int | None, tuple[str, ...], int]]:
    """URL -> (title, time_added, tags, status), last row winning."""
    rows: dict[str, tuple[str, int | None, tuple[str, ...], int]] = {}
    with open(path, encoding="utf-8-sig", newline="") as export:
        reader = csv.reader(export)
        columns = next(reader)
        t_col, u_col, a_col, g_col, s_col = (
            columns.index(name) for name in ("title", "url", "time_added", "tags", "status")
        )
        for row in reader:
            url, title, tags = row[u_col].strip(), row[t_col], row[g_col]
            rows[url] = (
                "" if title == url else title,
                int(row[a_col]) or None,
                tuple(dict.fromkeys(t for t in (t.strip() for t in tags.split("|")) if t)),
                STATUS[row[s_col].strip().lower()],
            )
    return rows


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    # 100k+ acyclic tuples: the cyclic GC would only rescan them (rulebot pauses it too)
    gc.disable()
    rows = read(argv[0])
    ids: list[str] = []
    used: set[str] = set()
    for url in rows:
        attempt = 0
        while (found := item_id(url, attempt)) in used:
            attempt += 1
        used.add(found)
        ids.append(found)

    def items() -> Iterator[tuple[Any, ...]]:
        for found, (url, (title, added, _, status)) in zip(ids, rows.items(), strict=True):
            yield found, url, title, status, added, added

    def tags() -> Iterator[tuple[str, str, int]]:
        for found, (_, _, item_tags, _) in zip(ids, rows.values(), strict=True):
            for position, tag in enumerate(item_tags):
                yield found, tag, position

    conn = sqlite3.connect(argv[1], isolation_level=None)
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany(
        "INSERT INTO items (item_id, given_url, given_title, status, favorite, time_added,"
        " time_updated) VALUES (?, ?, ?, ?, NULL, ?, ?)",
        items(),
    )
    conn.executemany("INSERT INTO item_tags VALUES (?, ?, ?)", tags())
    conn.execute("COMMIT")
    conn.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
