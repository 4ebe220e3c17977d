"""``schedule`` and ``daemon``: when rules run, and the process that runs them."""

from __future__ import annotations

import argparse
import os
import sys
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from rulebot.commands.shared import EXIT_OK, limits_of, load, now_of, open_store, out

if TYPE_CHECKING:
    from rulebot.rules.config import Rule
    from rulebot.run.daemon import Daemon


def cmd_schedule(args: argparse.Namespace) -> int:
    from rulebot.rules.schedule import schedule_json, schedule_rows, schedule_text

    config = load(args)
    now = now_of(args)
    with open_store(config, args) as store:
        last_runs = {rule.name: store.last_run(rule.name) for rule in config.rules}
    rows = schedule_rows(config.rules, last_runs, now, config.timezone)
    render = schedule_json if args.format == "json" else schedule_text
    out(render(rows, now, config.timezone, config.timezone_name))
    return EXIT_OK


def daemon_for(
    args: argparse.Namespace, *, info: Callable[[str], None], warn: Callable[[str], None]
) -> Daemon:
    """The daemon for ``args``, with the real pipeline; tests swap its clock."""
    from rulebot.rules.schedule import is_due
    from rulebot.run import pipeline
    from rulebot.run.daemon import CycleReport, Daemon, NothingScheduled

    config = load(args)
    limits = limits_of(config, args)
    scheduled = [r for r in config.rules if r.enabled and r.schedule]
    unscheduled = [r.name for r in config.rules if r.enabled and not r.schedule]
    if not scheduled:
        raise NothingScheduled(
            f"{config.path} has no enabled rule with a `schedule:`, so the daemon has nothing "
            'to run and exits; give a rule a schedule (e.g. schedule: "0 6 * * *") and start '
            "it again, or run rules with `rulebot run`"
        )
    if unscheduled:
        info(
            f"not running {', '.join(unscheduled)}: the daemon runs only rules with a "
            "`schedule:` (run the others with `rulebot run`)"
        )

    stop = threading.Event()  # the daemon's; its apply checks it between batches

    def last_runs() -> dict[str, int | None]:
        with open_store(config, args) as store:
            return {rule.name: store.last_run(rule.name) for rule in scheduled}

    def run_due(rules: Sequence[Rule], now: int) -> CycleReport:
        """`run --due` for the daemon: the lock only for the run's duration."""
        with open_store(config, args) as store, store.lock("daemon"):
            due = [r for r in rules if is_due(r, store.last_run(r.name), now, config.timezone)]
            if not due:
                return CycleReport()
            with pipeline.connected(config, store) as live:
                _, result = pipeline.run_checked(
                    config, store, live, due, now, limits, stop=stop.is_set
                )
        return CycleReport(
            rules=tuple(r.name for r in due),
            succeeded=result.count("succeeded"),
            failed=result.count("failed"),
            skipped=result.count("skipped"),
        )

    info(
        f"started (pid {os.getpid()}); {len(scheduled)} scheduled "
        f"rule{'s' if len(scheduled) != 1 else ''}, times in {config.timezone_name}"
    )
    return Daemon(scheduled, config.timezone, last_runs, run_due, log=info, warn=warn, stop=stop)


def cmd_daemon(args: argparse.Namespace) -> int:
    from rulebot.run.daemon import NothingScheduled, stop_on_signals

    def say(message: str) -> None:
        print(f"rulebot: daemon: {message}", file=sys.stderr, flush=True)

    def info(message: str) -> None:
        if not args.quiet:
            say(message)

    try:
        daemon = daemon_for(args, info=info, warn=say)
    except NothingScheduled as nothing:  # nothing to do is no failure to restart on
        say(str(nothing))
        return nothing.exit_code
    received: list[str] = []
    restore = stop_on_signals(daemon.stop, received)
    try:
        daemon.serve()
    finally:
        restore()
    info(f"stopped ({received[0] if received else 'done'})")
    return EXIT_OK
