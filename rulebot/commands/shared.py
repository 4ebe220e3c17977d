"""What every command shares: exit codes, the usage error, the config,
store and clock a command works with, and the plan and result on stdout
(plus GitHub Actions' step summary and outputs).

Heavy modules are imported inside the functions that need them, as in
every command module, so ``validate`` and ``--version`` start fast.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from rulebot.errors import RulebotError

if TYPE_CHECKING:
    from rulebot.library.store import Store
    from rulebot.planning.plan import Plan, Result
    from rulebot.planning.planner import Limits
    from rulebot.rules.config import Config


EXIT_OK, EXIT_ERROR, EXIT_CHANGES, EXIT_LIMIT = 0, 1, 2, 3


class UsageError(RulebotError):
    """Bad command-line usage (exit 1, never argparse's 2)."""


def config_path(args: argparse.Namespace) -> Path:
    return Path(args.config or os.environ.get("RULEBOT_CONFIG") or "rules.yaml")


def out(text: str, stream: TextIO | None = None) -> None:
    stream = stream or sys.stdout
    stream.write(text if text.endswith("\n") or not text else text + "\n")


def now_of(args: argparse.Namespace) -> int:
    """The clock: ``--now`` (hidden; tests and replays) or the real time."""
    import time

    if getattr(args, "now", None):
        from rulebot.planning.plan import parse_iso

        try:
            return parse_iso(args.now)
        except ValueError:
            raise UsageError(f"--now {args.now!r} is not an ISO 8601 date-time") from None
    return int(time.time())


def load(args: argparse.Namespace) -> Config:
    """The config; its warnings (a condition its source never answers, …)
    go to stderr, as `validate` shows them, unless -q."""
    from rulebot.rules.config import load_config

    config = load_config(config_path(args))
    if not args.quiet:
        for problem in config.warnings:
            out(f"rulebot: {problem}", sys.stderr)
    return config


def open_store(config: Config, args: argparse.Namespace) -> Store:
    from rulebot.library.store import Store
    from rulebot.run.pipeline import store_path

    return Store.open(store_path(config, args.store))


def limits_of(config: Config, args: argparse.Namespace) -> Limits:
    from rulebot.planning.planner import Limits

    max_actions = getattr(args, "max_actions", None)
    max_deletes = getattr(args, "max_deletes", None)
    for flag, value in (("--max-actions", max_actions), ("--max-deletes", max_deletes)):
        if value is not None and value < 0:
            raise UsageError(f"{flag} must be 0 or more, not {value}")
    return Limits(
        max_actions=config.limits.max_actions if max_actions is None else max_actions,
        max_deletes=config.limits.max_deletes if max_deletes is None else max_deletes,
    )


def emit_plan(plan: Plan, args: argparse.Namespace, refused: str | None) -> None:
    from rulebot.planning import render

    if args.format == "json":
        plan.write(sys.stdout)
    elif args.format == "markdown":
        out(render.plan_markdown(plan, refused=refused))
    else:
        colour = render.use_colour(sys.stdout)
        limit = None if args.verbose else render.MAX_LINES_PER_RULE
        out(render.plan_text(plan, colour=colour, max_lines=limit))
    github_files(lambda: render.plan_markdown(plan, refused=refused), changes=len(plan))


def github_files(summary: Callable[[], str], *, changes: int) -> None:
    """CI integration: a step summary and a `changes` output on GitHub Actions.
    ``summary`` makes the Markdown only where a step summary is wanted (a
    first-run plan's Markdown costs seconds)."""
    for variable, text in (
        ("GITHUB_STEP_SUMMARY", lambda: summary() + "\n"),
        ("GITHUB_OUTPUT", lambda: f"changes={changes}\n"),
    ):
        target = os.environ.get(variable)
        if not target:
            continue
        try:
            with open(target, "a", encoding="utf-8") as handle:
                handle.write(text())
        except OSError as err:  # CI plumbing must not fail a run that worked
            out(f"rulebot: warning: cannot write {variable} ({target}): {err.strerror}", sys.stderr)


def emit_result(result: Result, args: argparse.Namespace, plan: Plan) -> None:
    from rulebot.planning import render

    if args.format == "json":
        result.write(sys.stdout)
    elif args.format == "markdown":
        out(render.result_markdown(result))
    else:
        limit = None if args.verbose else render.MAX_LINES_PER_RULE
        out(render.result_text(result, colour=render.use_colour(sys.stdout), max_lines=limit))
    github_files(lambda: render.result_markdown(result), changes=len(plan))
