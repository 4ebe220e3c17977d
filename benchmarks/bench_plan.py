"""Benchmark: planning time and peak RSS, 1 trivial rule vs 20 rules.

    python benchmarks/bench_plan.py [ITEMS ...]     (default: 10000 100000)

For each library size: generates a Pocket CSV export, imports it into a
fresh store, then times the whole `rulebot plan --format json` process
(interpreter start, config, store load, planning, rendering) for

- one trivial rule (the floor: loading the library),
- 20 rules on the freshly imported library (a first run: most rules act on
  thousands of items, so this also measures building and writing the plan),
- the same 20 rules after `rulebot run` applied them once (the nightly
  steady state: every rule evaluates every item, few actions result).

Each figure is the median of 5 runs; peak RSS is the process high-water mark
(GNU time %M, KiB, printed in MiB). Target: 20 rules ≤ 2× the single trivial
rule; ≤ 250 MiB.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_import import fresh_bytecode, make_export

from rulebot.library.importer import import_export
from rulebot.library.store import Store

NOW = "2026-11-26T06:00:00Z"
TRIVIAL = """\
version: 1
limits: {max_actions: 1000000, max_deletes: 1000000}
rules:
  - name: trivial
    where: {tag: no-such-tag}
    actions: [archive]
"""

TWENTY = """\
version: 1
limits: {max_actions: 1000000, max_deletes: 1000000}
rules:
  - {name: r01, where: {tag: read-later, status: unread, added: {older_than: 30d}}, actions: [archive, {tags_add: [auto-archived]}]}
  - {name: r02, actions: [{tag_rename: {old_tag: js, new_tag: javascript}}]}
  - {name: r03, where: {status: archived, added: {older_than: 730d}}, actions: [delete], limit: 20}
  - {name: r04, where: {domain: github.com, untagged: true}, actions: [{tags_add: [code]}]}
  - {name: r05, where: {title: {contains: "part 3"}}, actions: [favorite]}
  - {name: r06, where: {url: {glob: "*youtube.com*"}}, actions: [{tags_add: [video]}]}
  - {name: r07, where: {title: {regex: "Article 1[0-9]{3}\\\\b"}}, actions: [{tags_add: [early]}]}
  - {name: r08, where: {tags: {any: [rust, python], none: [longread]}}, actions: [{tags_add: [code]}]}
  - {name: r09, where: {status: archived, tag: to-sort}, actions: [{tags_remove: [to-sort]}]}
  - {name: r10, where: {added: {before: "2023-01-01"}, status: unread}, actions: [archive], keep_newest: 100}
  - {name: r11, where: {any: [{domain: medium.com}, {domain: blog.example.dev}]}, actions: [{tags_add: [blog]}]}
  - {name: r12, where: {tag: recipes, favorite: true}, actions: [{tags_add: [cook-this]}]}
  - {name: r13, where: {added: {newer_than: 7d}}, actions: [{tags_add: [new]}]}
  - {name: r14, where: {tag: longread, status: unread}, actions: [favorite]}
  - {name: r15, where: {word_count: {gte: 4000}}, actions: [favorite]}
  - {name: r16, where: {domain: nytimes.com, status: unread, added: {older_than: 90d}}, actions: [archive]}
  - {name: r17, where: {tags: {all: [video, to-sort]}}, actions: [{tags_replace: [video]}]}
  - {name: r18, actions: [{tag_delete: obsolete}]}
  - {name: r19, where: {url: {contains: "/posts/9"}}, actions: [{tags_add: [nine]}]}
  - {name: r20, where: {all: [{status: unread}, {not: {untagged: true}}, {added: {older_than: 365d}}]}, actions: [readd]}
"""


def measure(config: Path, store: Path, runs: int = 5) -> tuple[float, float, int]:
    walls, rss, actions = [], [], 0
    for _ in range(runs):
        start = time.perf_counter()
        done = subprocess.run(
            ["/usr/bin/time", "-f", "%M", sys.executable, "-m", "rulebot", "-c", str(config),
             "--store", str(store), "plan", "--format", "json", "--now", NOW],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        walls.append(time.perf_counter() - start)
        if done.returncode != 0:
            raise SystemExit(done.stderr)
        rss.append(int(done.stderr.strip().splitlines()[-1]) / 1024)
        actions = done.stdout.count('"rule":')
    return statistics.median(walls), max(rss), actions


def main() -> None:
    sizes = [int(a) for a in sys.argv[1:]] or [10_000, 100_000]
    fresh_bytecode()
    print(
        f"{'items':>8} {'config':>18} {'actions':>8} {'wall s':>7} {'peak MiB':>8} {'× floor':>8}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "one.yaml").write_text(TRIVIAL)
        (work / "twenty.yaml").write_text(TWENTY)
        for size in sizes:
            export, store_path = work / f"e{size}.csv", work / f"s{size}.db"
            make_export(export, size)
            with Store.open(store_path) as store:
                import_export(store, export)
            rows = [("1 trivial rule", *measure(work / "one.yaml", store_path))]
            rows.append(("20 rules, 1st run", *measure(work / "twenty.yaml", store_path)))
            subprocess.run(
                [sys.executable, "-m", "rulebot", "-c", str(work / "twenty.yaml"), "--store",
                 str(store_path), "run", "--now", NOW, "-q", "--format", "json"],
                check=True, capture_output=True,
            )  # fmt: skip
            rows.append(("20 rules, steady", *measure(work / "twenty.yaml", store_path)))
            floor = rows[0][1]
            for name, wall, rss, actions in rows:
                print(
                    f"{size:>8} {name:>18} {actions:>8} {wall:>7.2f} {rss:>8.0f} {wall / floor:>8.2f}"
                )


if __name__ == "__main__":
    main()
