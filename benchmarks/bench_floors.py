"""Benchmark: rulebot beside the floors of the same work (issue #17): the
same run, the same generated data, and the ratios.

    python benchmarks/bench_floors.py [--runs N] [ITEMS ...]   (default: 5 runs of 100000)
    python benchmarks/bench_floors.py 1000000                  (one run each; ~10-15 minutes)
    python benchmarks/bench_floors.py --tag-each 100000        (no two items share their tags)

For each size it generates a Pocket CSV export (bench_import.make_export)
and times whole processes (interpreter start-up included) under GNU time:
wall clock, and peak RSS from ``/usr/bin/time -f %M`` (KiB, printed in MiB). rulebot and its
floors take turns, so a change in the machine's load falls on both. A floor
is a small program that does the same work with the standard library alone
(it never imports rulebot):

- **import floor** (floor_import.py): ``csv.reader`` + ``executemany``
  writing the rows ``rulebot import`` writes into an empty store of the same
  schema, in one transaction; beside ``rulebot import`` of the same CSV. The
  two stores must end up equal, row for row.
- **loop-plus-JSONL floor** (floor_loop.py --jsonl): the first run, i.e.
  ``rulebot plan --format json`` of bench_plan.TWENTY on the freshly
  imported library, beside a plain Python loop over rows read from sqlite3
  that computes the same actions by the planner's semantics (file order,
  each rule seeing earlier rules' changes, deletes, keep_newest, limit) and
  writes each as a JSON line.
- **plain-loop floor** (floor_loop.py): the steady state, the same plan
  after one ``rulebot run`` applied the rules (as bench_plan does), beside
  the same loop without writing.
- **SQL pushdown floor** (floor_sql.py): the steady state again, each rule
  one SELECT of candidate ids; it leaves out the state earlier rules leave
  (its docstring says what else), so its counts may differ.

Agreement: the loop's action count for each of the 20 rules must equal the
count in rulebot's plan, first run and steady state; any difference is
printed and the script exits 1 (so does an import floor store that differs).
The first run's JSON lines are also compared with the plan's actions (rule,
send, item), and the SQL counts are shown beside the others.

Wall time is the median of ``--runs`` runs (5 by default; 1 from 1,000,000
items on), peak MiB the highest of them. On a floor's row, "rulebot ÷ floor" is the rulebot row
above it divided by that floor, for time and for memory.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import zip_longest
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_import import fresh_bytecode, make_export
from bench_plan import NOW, TWENTY

from rulebot.library.store import Store

HERE = Path(__file__).resolve().parent
NOW_UNIX = int(dt.datetime.fromisoformat(NOW).timestamp())
RULES = [f"r{number:02d}" for number in range(1, 21)]
RULEBOT = [sys.executable, "-m", "rulebot"]
# TWENTY allows 1,000,000 actions; a first run on 1M items plans 1.7M
NO_LIMITS = ["--max-actions", str(10**9), "--max-deletes", str(10**9)]
FLOOR = {
    name: [sys.executable, str(HERE / f"floor_{name}.py")] for name in ("loop", "sql", "import")
}


@dataclass
class Command:
    """One program to time: its argv, where its stdout goes, what to do before each run."""

    argv: list[str]
    stdout: Path | None = None  # None: captured
    before: Callable[[], None] | None = None
    walls: list[float] = field(default_factory=list)
    peaks: list[float] = field(default_factory=list)
    output: str = ""  # the last run's captured stdout

    @property
    def wall(self) -> float:
        return statistics.median(self.walls)

    @property
    def peak_mib(self) -> float:
        return max(self.peaks)


def run_once(command: Command) -> None:
    if command.before is not None:
        command.before()
    argv = ["/usr/bin/time", "-f", "%M", *command.argv]
    start = time.perf_counter()
    if command.stdout is None:
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
    else:
        with command.stdout.open("w", encoding="utf-8") as sink:
            done = subprocess.run(argv, stdout=sink, stderr=subprocess.PIPE, text=True, check=False)
    command.walls.append(time.perf_counter() - start)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command.argv)} failed:\n{done.stderr}")
    command.peaks.append(int(done.stderr.strip().splitlines()[-1]) / 1024)
    command.output = done.stdout or ""


def measure(commands: list[Command], runs: int) -> None:
    """Each command ``runs`` times, taking turns, so a change in the machine's
    load falls on rulebot and its floor alike."""
    for _ in range(runs):
        for command in commands:
            run_once(command)


def plan_actions(path: Path) -> Iterator[dict[str, Any]]:
    """The actions of a plan ``rulebot plan --format json`` wrote, which puts
    one action on each line (Plan.write)."""
    with path.open(encoding="utf-8") as plan:
        for line in plan:
            text = line.strip().rstrip(",")
            if text.startswith('{"rule"'):
                yield json.loads(text)


def plan_counts(command: Command) -> Counter[str]:
    assert command.stdout is not None
    return Counter(action["rule"] for action in plan_actions(command.stdout))


def first_difference(plan: Path, jsonl: Path) -> str | None:
    """Where the loop's JSON lines first differ from the plan's actions
    (rule, send, item; rulebot's reasons are not compared); None: nowhere."""
    with jsonl.open(encoding="utf-8") as loop:
        for index, (action, line) in enumerate(zip_longest(plan_actions(plan), loop)):
            if action is not None:
                action.pop("reasons", None)
            if line is None or action != json.loads(line):
                return f"action {index}: rulebot {action}, loop {line and line.strip()}"
    return None


def floor_counts(command: Command) -> Counter[str]:
    return Counter(json.loads(command.output))


def fresh_store(path: Path) -> Callable[[], None]:
    """Makes ``path`` an empty store with rulebot's schema (before each import)."""

    def make() -> None:
        for stale in path.parent.glob(path.name + "*"):
            stale.unlink()
        Store.open(path).close()

    return make


def stores_differ(one: Path, other: Path) -> list[str]:
    """The tables whose rows differ between two stores (rows compared whole)."""
    conn = sqlite3.connect(one)
    conn.execute("ATTACH DATABASE ? AS other", (str(other),))
    differ = []
    for table in ("items", "item_tags"):
        one_way = "(SELECT count(*) FROM (SELECT * FROM {} EXCEPT SELECT * FROM {}))"
        query = "SELECT " + " + ".join(
            one_way.format(*pair)
            for pair in ((f"main.{table}", f"other.{table}"), (f"other.{table}", f"main.{table}"))
        )
        if conn.execute(query).fetchone()[0]:
            differ.append(table)
    conn.close()
    return differ


def bench(size: int, work: Path, runs: int, tag_each: bool = False) -> bool:
    """Times one library size and prints its tables; False when a floor
    disagrees with rulebot (action counts, or the imported store)."""
    runs = runs if size < 1_000_000 else 1
    config = work / "twenty.yaml"
    export, store = work / f"export-{size}.csv", work / f"store-{size}.db"
    floor_store = work / f"floor-{size}.db"
    make_export(export, size, tag_each=tag_each)
    rulebot = [*RULEBOT, "-c", str(config), "--store", str(store)]
    now = [str(store), str(NOW_UNIX)]

    # the last import is the library the plans read
    imported = Command([*rulebot, "-q", "import", str(export)], before=fresh_store(store))
    import_floor = Command(
        [*FLOOR["import"], str(export), str(floor_store)], before=fresh_store(floor_store)
    )
    measure([imported, import_floor], runs)
    import_differs = stores_differ(store, floor_store)

    plan = [*rulebot, "plan", "--format", "json", "--now", NOW, *NO_LIMITS]
    first = Command(plan, stdout=work / f"plan-first-{size}.json")
    jsonl = work / f"floor-first-{size}.jsonl"
    first_loop = Command([*FLOOR["loop"], *now, "--jsonl", str(jsonl)])
    measure([first, first_loop], runs)
    apply = [*rulebot, "run", "--now", NOW, "-q", "--format", "json", *NO_LIMITS]
    applied = subprocess.run(apply, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if applied.returncode != 0:
        raise SystemExit(f"{' '.join(apply)} failed:\n{applied.stderr}")
    steady = Command(plan, stdout=work / f"plan-steady-{size}.json")
    steady_loop = Command([*FLOOR["loop"], *now])
    pushdown = Command([*FLOOR["sql"], *now])
    measure([steady, steady_loop, pushdown], runs)

    each = ", each with a tag of its own" if tag_each else ""
    print(f"\n{size:,} items{each} ({f'median of {runs} runs' if runs > 1 else '1 run'})")
    print(f"{'measure':<30} {'wall s':>7} {'peak MiB':>8}   rulebot ÷ floor (wall, MiB)")
    for name, command, versus in [
        ("rulebot import", imported, None),
        ("  floor: csv + executemany", import_floor, imported),
        ("rulebot plan, first run", first, None),
        ("  floor: loop + JSONL", first_loop, first),
        ("rulebot plan, steady state", steady, None),
        ("  floor: plain loop", steady_loop, steady),
        ("  floor: SQL pushdown", pushdown, steady),
    ]:
        line = f"{name:<30} {command.wall:>7.2f} {command.peak_mib:>8.0f}"
        if versus is not None:
            wall, peak = versus.wall / command.wall, versus.peak_mib / command.peak_mib
            line += f"   {wall:>5.2f}×  {peak:>5.2f}×"
        print(line)
    if import_differs:
        print(
            f"DISAGREEMENT: the import floor's {' and '.join(import_differs)} differ from rulebot's"
        )

    print(f"\nactions per rule at {size:,} items: rulebot, loop (SQL pushdown for reference)")
    print(f"{'rule':<5} {'first run':>10} {'loop':>10}  {'steady':>8} {'loop':>8} {'SQL':>8}")
    columns = [
        plan_counts(first),
        floor_counts(first_loop),
        plan_counts(steady),
        floor_counts(steady_loop),
        floor_counts(pushdown),
    ]
    for rule in [*RULES, "all"]:
        row = [counts.total() if rule == "all" else counts[rule] for counts in columns]
        note = "" if row[4] == row[2] else "  (SQL differs)"
        cells = f"{row[0]:>10,} {row[1]:>10,}  {row[2]:>8,} {row[3]:>8,} {row[4]:>8,}"
        print(f"{rule:<5} {cells}{note}")
    disagree = [
        f"{rule}, {phase}: rulebot {ours[rule]:,}, loop {loop[rule]:,}"
        for phase, ours, loop in (
            ("first run", columns[0], columns[1]),
            ("steady state", columns[2], columns[3]),
        )
        for rule in RULES
        if ours[rule] != loop[rule]
    ]
    if disagree:
        print("DISAGREEMENT between rulebot and the loop floor:\n  " + "\n  ".join(disagree))
    else:
        print("agreement: loop = rulebot for all 20 rules, first run and steady state")
    difference = first_difference(work / f"plan-first-{size}.json", jsonl)
    print(
        f"first-run JSON lines differ from rulebot's plan at {difference}"
        if difference
        else "first-run JSON lines = rulebot's plan actions (rule, send, item), in order"
    )
    for path in work.glob(f"*-{size}*"):  # the 1M run's files are gigabytes
        path.unlink()
    return not disagree and not import_differs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="alternating runs per measure")
    parser.add_argument(
        "--tag-each",
        action="store_true",
        help="give every row a tag of its own (no two items share their tags)",
    )
    parser.add_argument("items", nargs="*", type=int, default=[100_000])
    args = parser.parse_args()
    fresh_bytecode()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "twenty.yaml").write_text(TWENTY)
        for size in args.items:
            if not bench(size, work, args.runs, args.tag_each):
                return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
