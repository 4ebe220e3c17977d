"""Benchmark: how long a command takes before it does any work.

    python benchmarks/bench_startup.py [--runs 30]

Times whole processes, alternating, after 3 warm-ups each (median and p95
of ``--runs``): ``rulebot validate rules.example.yaml`` (7 rules, 3 tests)
with its schema check remembered (``rulebot.rules.validated``, in a
temporary cache directory the warm-ups fill) and checked afresh
(``RULEBOT_CACHE_DIR=``), ``rulebot --version``, and two floors: the
interpreter alone (``python -c pass``) and importing the third-party
modules a fresh validate needs (``python -c 'import yaml, jsonschema'``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_import import fresh_bytecode

ROOT = Path(__file__).resolve().parent.parent
VALIDATE = [sys.executable, "-m", "rulebot", "validate", str(ROOT / "rules.example.yaml")]
REMEMBERED = "rulebot validate rules.example.yaml"
AFRESH = "  the same, schema checked afresh"
# name -> (argv, RULEBOT_CACHE_DIR: None for the temporary one, "" for off)
COMMANDS: dict[str, tuple[list[str], str | None]] = {
    REMEMBERED: (VALIDATE, None),
    AFRESH: (VALIDATE, ""),
    "rulebot --version": ([sys.executable, "-m", "rulebot", "--version"], None),
    "floor: python -c pass": ([sys.executable, "-c", "pass"], None),
    "floor: import yaml, jsonschema": ([sys.executable, "-c", "import yaml, jsonschema"], None),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    fresh_bytecode()
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    with tempfile.TemporaryDirectory() as cache:
        for round_ in range(args.runs + 3):
            for name, (argv, cache_dir) in COMMANDS.items():
                env = {**os.environ, "RULEBOT_CACHE_DIR": cache if cache_dir is None else cache_dir}
                start = time.perf_counter()
                subprocess.run(
                    argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env
                )
                if round_ >= 3:
                    times[name].append((time.perf_counter() - start) * 1000)
    print(f"{'command':<38} {'median ms':>9} {'p95 ms':>7}")
    for name, samples in times.items():
        p95 = statistics.quantiles(samples, n=20)[-1]
        print(f"{name:<38} {statistics.median(samples):>9.0f} {p95:>7.0f}")
    remembered, afresh = (statistics.median(times[name]) for name in (REMEMBERED, AFRESH))
    floor = statistics.median(times["floor: import yaml, jsonschema"])
    print(
        f"validate ÷ import floor: {remembered / floor:.2f}× (checked afresh: {afresh / floor:.2f}×)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
