"""Benchmark: where the steady plan's time goes, rulebot beside the
plain-loop floor (floor_loop.py), part by part (issue #28, goal 3).

    python benchmarks/bench_steady_parts.py [--runs N] [ITEMS]   (default: 9 runs of 100000)

Builds the library as bench_floors.py does (bench_import's generated export
imported, then one ``rulebot run`` of bench_plan.TWENTY: the nightly steady
state), then times, inside this process and taking turns:

- **floor read, holding**: floor_loop.load as it is: the whole tag table in
  one pass, every item, sorted in Python, each a list with its derived
  values (host, folded tags), all held;
- **floor read, as rulebot reads**: the same lists from the rows as stored
  (the planner's order, no sort), each row's tags by one subquery, a
  thousand rows at a time: how ``Store.iter_items`` reads;
- **floor rules**: floor_loop's 20 hand-written rules over those lists;
- **rulebot read**: ``Store.iter_items``, an ``Item`` per row, no rule;
- **rulebot plan pass**: ``planner.plan_in_passes`` of the 20 rules over
  ``Store.iter_items`` (the read included; "rulebot rules" is the pass less
  the read).

Then, as whole processes under GNU time (interpreter start-up included),
``rulebot plan`` and floor_loop.py on an empty store of the same schema:
what each costs around its work (start-up, the rules file, the output).

Each figure is the median of ``--runs``. The floor's two reads must give the
same actions per rule, and rulebot's pass the same count per rule again; a
difference is printed and the script exits 1.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import floor_loop
from bench_import import fresh_bytecode, make_export
from bench_plan import NOW, TWENTY

from rulebot.library.store import Store
from rulebot.planning.planner import plan_in_passes
from rulebot.rules.config import load_config
from rulebot.run.pipeline import select_rules

NOW_UNIX = int(dt.datetime.fromisoformat(NOW).timestamp())
HERE = Path(__file__).resolve().parent
NO_LIMITS = ["--max-actions", str(10**9), "--max-deletes", str(10**9)]


def load_as_stored(path: str) -> list[list[Any]]:
    """floor_loop.load's lists, read as ``Store.iter_items`` reads: rows as
    stored (the store keeps them in the planner's order), each row's tags as
    a JSON array by one subquery, a thousand rows at a time, nothing sorted."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    parsed: dict[str, tuple[str, ...]] = {}
    items: list[list[Any]] = []
    cursor = conn.execute(
        "SELECT item_id, given_url, resolved_url, given_title, resolved_title, status,"
        " favorite, tags_known, time_added, word_count, time_updated,"
        " (SELECT json_group_array(tag) FROM item_tags t WHERE t.item_id = items.item_id)"
        f" FROM items WHERE status NOT IN ({floor_loop.DELETED}, {floor_loop.HIDDEN})"
    )
    while rows := cursor.fetchmany(1000):
        for item_id, gu, ru, gt, rt, status, fav, known, added, words, updated, raw in rows:
            url = ru or gu
            item_tags = None
            if known and (item_tags := parsed.get(raw)) is None:
                item_tags = parsed[raw] = tuple(json.loads(raw))
            favorite = None if fav is None else fav == 1
            stored = (status, favorite, None if item_tags is None else list(item_tags))
            items.append(
                [
                    item_id,
                    url,
                    rt or gt or url,
                    floor_loop.host(url),
                    status,
                    fav,
                    item_tags,
                    floor_loop.fold(item_tags),
                    added,
                    words,
                    updated or 0,
                    stored,
                ]
            )
    conn.close()
    return items


def timed(work: Callable[..., Any], *args: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    result = work(*args)
    return time.perf_counter() - start, result


def _read_all(store: Store) -> int:
    return sum(len(chunk) for chunk in store.iter_items())


def _plan(rules: list[Any], store: Store) -> Any:
    return plan_in_passes(rules, store.iter_items(), NOW_UNIX)


def process_wall(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("items", nargs="?", type=int, default=100_000)
    args = parser.parse_args()
    fresh_bytecode()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        config, export = work / "twenty.yaml", work / "export.csv"
        store, empty = work / "store.db", work / "empty.db"
        config.write_text(TWENTY)
        make_export(export, args.items)
        rulebot = [sys.executable, "-m", "rulebot", "-c", str(config)]
        for step in (
            [*rulebot, "--store", str(store), "-q", "import", str(export)],
            [*rulebot, "--store", str(store), "run", "--now", NOW, "-q", *NO_LIMITS],
        ):
            subprocess.run(step, stdout=subprocess.DEVNULL, check=True)
        Store.open(empty).close()
        rules = select_rules(load_config(config))

        figures: dict[str, list[float]] = {}
        counts: dict[str, Counter[str]] = {}

        def note(name: str, seconds: float) -> None:
            figures.setdefault(name, []).append(seconds)

        gc.disable()  # as rulebot and the floor run: acyclic objects, nothing to collect
        for _ in range(args.runs):
            seconds, held = timed(floor_loop.load, str(store))
            note("floor read, holding", seconds)
            counts["floor, holding"] = Counter(floor_loop.plan(held, NOW_UNIX, None))
            del held
            seconds, lists = timed(load_as_stored, str(store))
            note("floor read, as rulebot reads", seconds)
            seconds, found = timed(floor_loop.plan, lists, NOW_UNIX, None)
            note("floor rules", seconds)
            counts["floor, as stored"] = Counter(found)
            del lists
            with Store.open(store) as opened:
                seconds, _ = timed(_read_all, opened)
                note("rulebot read", seconds)
                seconds, plan = timed(_plan, rules, opened)
                note("rulebot plan pass", seconds)
            counts["rulebot"] = Counter(action.rule for action in plan.actions)
            del plan
            gc.collect()
            note(
                "rulebot plan, empty store",
                process_wall(
                    [
                        *rulebot,
                        "--store",
                        str(empty),
                        "-q",
                        "plan",
                        "--now",
                        NOW,
                        "--format",
                        "json",
                    ]
                ),
            )
            note(
                "floor_loop.py, empty store",
                process_wall([sys.executable, str(HERE / "floor_loop.py"), str(empty), "0"]),
            )

    median = {name: statistics.median(values) for name, values in figures.items()}
    median["rulebot rules (pass less read)"] = median["rulebot plan pass"] - median["rulebot read"]
    print(f"{args.items:,} items, steady state, median of {args.runs} (seconds)")
    for name in (
        "floor read, holding",
        "floor read, as rulebot reads",
        "rulebot read",
        "floor rules",
        "rulebot rules (pass less read)",
        "rulebot plan pass",
        "floor_loop.py, empty store",
        "rulebot plan, empty store",
    ):
        print(f"  {name:<32} {median[name]:6.3f}")
    floor_total = median["floor read, as rulebot reads"] + median["floor rules"]
    print(
        f"in-process: rulebot's pass {median['rulebot plan pass']:.3f} s against the floor's"
        f" read (as rulebot reads) and rules {floor_total:.3f} s:"
        f" {median['rulebot plan pass'] / floor_total:.2f}×"
    )
    rules_count = [rule.name for rule in rules]
    differ = [
        f"{name}: {[counts[name][r] for r in rules_count]}"
        for name in ("floor, holding", "floor, as stored")
        if any(counts[name][r] != counts["rulebot"][r] for r in rules_count)
    ]
    if differ:
        print("DISAGREEMENT with rulebot's counts per rule:\n  " + "\n  ".join(differ))
        return 1
    print("agreement: both floors count rulebot's actions for all 20 rules")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
