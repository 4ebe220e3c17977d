"""``plan``, ``run`` and ``apply``: sync, plan, check the limits, send."""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from pathlib import Path
from typing import IO, TYPE_CHECKING

from rulebot.commands.shared import (
    EXIT_CHANGES,
    EXIT_ERROR,
    EXIT_OK,
    emit_plan,
    emit_result,
    limits_of,
    load,
    now_of,
    open_store,
    out,
)
from rulebot.errors import RulebotError

if TYPE_CHECKING:
    from rulebot.library.store import Store
    from rulebot.planning.plan import Plan
    from rulebot.rules.config import Config, Rule


def cmd_plan(args: argparse.Namespace, *, apply: bool = False) -> int:
    from rulebot.errors import LimitExceededError
    from rulebot.planning.planner import check_limits
    from rulebot.run import pipeline

    config = load(args)
    now = now_of(args)
    with contextlib.ExitStack() as opened:
        store = opened.enter_context(open_store(config, args))
        opened.enter_context(store.lock("run" if apply else "plan"))
        rules = _chosen_rules(config, store, args, now)
        if args.due and not rules:  # before connecting: not one request
            return _nothing_due(config, store, args, now, apply=apply)
        live = opened.enter_context(pipeline.connected(config, store, progress=not args.quiet))
        if not live.source.remote and not args.quiet and store.is_empty():
            out(
                f"rulebot: the library in {store.path} is empty; fill it with "
                "`rulebot import pocket-export.zip` (or .csv, .html)",
                sys.stderr,
            )
        plan, usage = pipeline.make_plan(config, store, live, rules, now)
        refused: LimitExceededError | None = None
        try:
            check_limits(plan, limits_of(config, args), usage)
        except LimitExceededError as err:
            refused = err
        if getattr(args, "out", None):
            _write_plan(plan, args.out)
        if not apply or refused:
            emit_plan(plan, args, str(refused) if refused else None)
            if refused:
                raise refused
            return EXIT_CHANGES if args.detailed_exitcode and plan.actions else EXIT_OK
        if not args.quiet and args.format == "text":
            from rulebot.planning import render

            out(render.plan_text(plan, colour=render.use_colour(sys.stderr)), sys.stderr)
        result = pipeline.apply(store, plan, live, check_stale=False, progress=not args.quiet)
        pipeline.record_runs(store, plan, result, now)
    emit_result(result, args, plan)
    if not result.ok:
        return EXIT_ERROR
    return EXIT_CHANGES if args.detailed_exitcode and plan.actions else EXIT_OK


def _chosen_rules(config: Config, store: Store, args: argparse.Namespace, now: int) -> list[Rule]:
    from rulebot.rules.schedule import is_due
    from rulebot.run.pipeline import select_rules

    rules = select_rules(config, args.rule)
    if args.due:
        rules = [r for r in rules if is_due(r, store.last_run(r.name), now, config.timezone)]
    return rules


def _nothing_due(
    config: Config, store: Store, args: argparse.Namespace, now: int, *, apply: bool
) -> int:
    """`--due` with no rule due: no sync and no request (rules that are not due
    cost nothing), one line saying so and when the next is due, and the empty
    plan (or result) every output format and `--out` expect."""
    from rulebot.planning.plan import Result
    from rulebot.rules.schedule import nothing_due
    from rulebot.run.pipeline import plan_rules, select_rules

    waiting = select_rules(config, args.rule)
    last_runs = {rule.name: store.last_run(rule.name) for rule in waiting}
    logging.getLogger("rulebot").warning(
        "%s", nothing_due(waiting, last_runs, now, config.timezone)
    )
    plan = plan_rules(config, [], [], now)
    if getattr(args, "out", None):
        _write_plan(plan, args.out)
    if not apply:
        emit_plan(plan, args, None)
    else:
        emit_result(Result(outcomes=[], started_at=now, source=plan.source), args, plan)
    return EXIT_OK


def _write_plan(plan: Plan, path: str) -> None:
    """Atomically, never through a symbolic link, private (0600): a reviewer
    may hold the old file open, and the plan lists someone's reading."""
    import io

    from rulebot.files import atomic_write

    def write(handle: IO[bytes]) -> None:
        text = io.TextIOWrapper(handle, encoding="utf-8", write_through=True)
        plan.write(text)
        text.flush()
        text.detach()  # the caller closes the file, not the wrapper

    if not Path(path).parent.is_dir():  # a typo must not create directories
        raise RulebotError(f"cannot write the plan to {path}: no such directory")
    atomic_write(path, write, what="the plan")


def cmd_run(args: argparse.Namespace) -> int:
    return cmd_plan(args, apply=not args.dry_run)


def cmd_apply(args: argparse.Namespace) -> int:
    from rulebot.planning.plan import Plan
    from rulebot.planning.planner import check_limits
    from rulebot.planning.usage import period_usage
    from rulebot.run import pipeline
    from rulebot.run.pipeline import source_of

    plan = Plan.read(Path(args.plan_file))
    config = load(args)
    if plan.config_sha256 != config.sha256 and not args.force:
        raise RulebotError(
            f"{args.plan_file} was made from a different config than {config.path} "
            "(config_sha256 differs); plan again, or pass --force to apply it anyway"
        )
    if plan.source != source_of(config):
        raise RulebotError(
            f"{args.plan_file} was made for {plan.source}, but {config.path} uses "
            f"{source_of(config)}; plan again against this source"
        )
    now = now_of(args)
    with (
        open_store(config, args) as store,
        store.lock("apply"),
        pipeline.connected(config, store, progress=not args.quiet) as live,
    ):
        check_limits(plan, limits_of(config, args), period_usage(config, store, plan.rules, now))
        result = pipeline.apply(store, plan, live, check_stale=True, progress=not args.quiet)
        pipeline.record_runs(store, plan, result, now)
    emit_result(result, args, plan)
    return EXIT_OK if result.ok else EXIT_ERROR
