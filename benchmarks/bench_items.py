"""Benchmark: what building and copying an ``Item`` costs.

    python benchmarks/bench_items.py [--count 100000]

A plan builds an ``Item`` for every row it reads and a copy for every
change it plans, so these are per-row costs of every plan. Prints the best
of 5 timings per 100,000, in µs an item:

- ``Item(...)``, positional (rulebot's generated ``__init__``);
- the frozen dataclass's own ``__init__`` for the same fields (a twin class
  made with ``dataclasses`` from ``Item``'s fields), what ``Item`` cost before;
- the floor: a tuple of the same 20 values;
- ``Item.replace(status=1)`` (generated) and ``dataclasses.replace``;
- ``item_order.in_order``: checking that stored items are oldest first, on
  every chunk a plan reads and every import;
- ``item_rows.plain_rows`` (an import's rows for new items) beside calling
  ``is_plain`` and a row function per item, as it did before;
- ``item_rows.tagged_rows_to_items``: an ``Item`` of each stored row as a
  plan reads it (the 20 columns and the tags as JSON), filled slot by slot
  in a generated loop, beside the loop it replaced (a positional
  ``Item(...)`` call per row, the tags looked up in a dict made first).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from collections.abc import Callable
from typing import Any

from rulebot.library.item import NO_EXTRA, Item
from rulebot.library.item_order import in_order
from rulebot.library.item_rows import is_plain, plain_rows, tagged_rows_to_items

Frozen = dataclasses.make_dataclass(
    "Frozen",
    [(f.name, f.type, f) for f in dataclasses.fields(Item)],
    frozen=True,
    slots=True,
)


def row_by_calls(item: Item) -> tuple[object, ...]:
    return (
        item.item_id,
        item.given_url,
        item.given_title,
        item.status,
        None if item.favorite is None else int(item.favorite),
        0 if item.tags is None else 1,
        item.time_added,
        item.time_updated,
    )


def items_by_calls(rows: list[tuple[Any, ...]], parsed: dict[str, Any]) -> list[Item]:
    """How a plan made its items before: a dict of tags, then an Item(...) call a row."""
    tags, loads = {row[0]: parsed[row[-1]] for row in rows}, json.loads
    return [
        Item(
            row[0], row[1], row[2], row[3], row[4], row[5],
            None if row[6] is None else row[6] == 1,
            tags.get(row[0], ()) if row[7] else None,
            row[8], row[9], row[10], row[11], row[12], row[13], row[14],
            None if row[15] is None else row[15] == 1,
            row[16], row[17], row[18],
            loads(row[19]) if row[19] else NO_EXTRA,
        )
        for row in rows
    ]  # fmt: skip


def best(run: Callable[[], object], count: int) -> float:
    """The best of 5 runs, µs per item."""
    times = []
    for _ in range(5):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times) / count * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=100_000)
    count = parser.parse_args().count
    rows = [
        (str(n), f"https://example.com/{n}", "", "title", "", 0, None, ("a",), n, n)
        for n in range(count)
    ]
    items = [Item(*row) for row in rows]
    stored = [  # rows as a plan reads them: ITEM_COLUMNS, then the tags as JSON
        (str(n), f"https://example.com/{n}", "", "title", "", 0, None, 1, n, n,
         None, None, None, None, None, None, None, None, "", None, '["a"]')
        for n in range(count)
    ]  # fmt: skip
    parsed = {'["a"]': ("a",)}
    figures = [
        ("Item(...)", best(lambda: [Item(*row) for row in rows], count)),
        ("frozen dataclass __init__", best(lambda: [Frozen(*row) for row in rows], count)),
        ("floor: tuple(...)", best(lambda: [tuple(row) for row in rows], count)),
        ("Item.replace(status=1)", best(lambda: [i.replace(status=1) for i in items], count)),
        (
            "dataclasses.replace",
            best(lambda: [dataclasses.replace(i, status=1) for i in items], count),
        ),
        ("in_order", best(lambda: in_order(items, None), count)),
        ("plain_rows", best(lambda: list(plain_rows(items, [])), count)),
        (
            "  is_plain + a row each, as before",
            best(lambda: [row_by_calls(i) for i in items if is_plain(i)], count),
        ),
        ("tagged_rows_to_items", best(lambda: tagged_rows_to_items(stored, parsed), count)),
        (
            "  an Item(...) call a row, before",
            best(lambda: items_by_calls(stored, parsed), count),
        ),
    ]
    print(f"{'per item':<34} {'µs':>6}")
    for name, micros in figures:
        print(f"{name:<34} {micros:>6.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
