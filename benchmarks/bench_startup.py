"""Benchmark: how long a command takes before it does any work.

    python benchmarks/bench_startup.py [--runs 30]

Times whole processes, alternating, after 3 warm-ups each (median and p95
of ``--runs``): ``rulebot validate rules.example.yaml`` (7 rules, 3 tests),
``rulebot --version``, and two floors: the interpreter alone
(``python -c pass``) and importing the third-party modules validate needs
(``python -c 'import yaml, jsonschema'``).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = {
    "rulebot validate rules.example.yaml": [
        sys.executable,
        "-m",
        "rulebot",
        "validate",
        str(ROOT / "rules.example.yaml"),
    ],
    "rulebot --version": [sys.executable, "-m", "rulebot", "--version"],
    "floor: python -c pass": [sys.executable, "-c", "pass"],
    "floor: import yaml, jsonschema": [sys.executable, "-c", "import yaml, jsonschema"],
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for round_ in range(args.runs + 3):
        for name, argv in COMMANDS.items():
            start = time.perf_counter()
            subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if round_ >= 3:
                times[name].append((time.perf_counter() - start) * 1000)
    print(f"{'command':<38} {'median ms':>9} {'p95 ms':>7}")
    for name, samples in times.items():
        p95 = statistics.quantiles(samples, n=20)[-1]
        print(f"{name:<38} {statistics.median(samples):>9.0f} {p95:>7.0f}")
    validate = statistics.median(times["rulebot validate rules.example.yaml"])
    floor = statistics.median(times["floor: import yaml, jsonschema"])
    print(f"validate ÷ import floor: {validate / floor:.2f}×")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
