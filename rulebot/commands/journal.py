"""Commands on the run journal: ``runs`` and ``undo``."""

from __future__ import annotations

import argparse
import sys

from rulebot.commands.shared import (
    EXIT_CHANGES,
    EXIT_ERROR,
    EXIT_OK,
    UsageError,
    emit_plan,
    emit_result,
    limits_of,
    load,
    now_of,
    open_store,
    out,
)
from rulebot.errors import RulebotError
from rulebot.safe import json_text


def cmd_runs(args: argparse.Namespace) -> int:
    from rulebot.run.reports import run_detail_json, run_detail_text, run_json, runs_text

    if args.show or args.run_id is not None:
        if args.run_id is None:
            raise UsageError(
                "runs show needs a run id, e.g. `rulebot runs show 12` (see `rulebot runs`)"
            )
        if not args.show:
            raise UsageError(f"write `rulebot runs show {args.run_id}` to see one run")
        config = load(args)
        with open_store(config, args) as store:
            run = store.journal_run(args.run_id)
            if run is None:
                raise RulebotError(
                    f"no run {args.run_id} in the journal; `rulebot runs` lists them"
                )
            entries = store.journal_entries(args.run_id)
        if args.format == "json":
            out(json_text(run_detail_json(run, entries)))
        else:
            out(run_detail_text(run, entries))
        return EXIT_OK
    if args.limit < 1:
        raise UsageError(f"--limit must be 1 or more, not {args.limit}")
    config = load(args)
    with open_store(config, args) as store:
        runs = store.journal_runs(limit=args.limit)
    if args.format == "json":
        out(json_text([run_json(run) for run in runs]))
    else:
        out(runs_text(runs))
    return EXIT_OK


def cmd_undo(args: argparse.Namespace) -> int:
    """The reversal of a run is a plan like any other: same limits, renderers,
    journal and exit codes as `run` (`--dry-run` shows it, as `plan` does)."""
    from rulebot.errors import LimitExceededError
    from rulebot.planning.planner import check_limits
    from rulebot.run import pipeline
    from rulebot.run.pipeline import source_of
    from rulebot.run.undo import plan_undo

    config = load(args)
    now = now_of(args)
    with (
        open_store(config, args) as store,
        store.lock("undo"),
        pipeline.connected(config, store, progress=not args.quiet) as live,
    ):
        library = {item.item_id: item for item in store.items()}
        undo = plan_undo(
            store,
            args.run_id,
            library,
            now,
            source=source_of(config),
            config_sha256=config.sha256,
        )
        for note in undo.stale:
            out(f"rulebot: stale, not undone: {note}", sys.stderr)
        for note in undo.inexact:
            out(f"rulebot: not restored exactly: {note}", sys.stderr)
        plan = live.source.refine(undo.plan, library)
        refused: LimitExceededError | None = None
        try:
            check_limits(plan, limits_of(config, args))
        except LimitExceededError as err:
            refused = err
        if args.dry_run or refused:
            emit_plan(plan, args, str(refused) if refused else None)
            if refused:
                raise refused
            return EXIT_CHANGES if args.detailed_exitcode and plan.actions else EXIT_OK
        if not args.quiet and args.format == "text":
            from rulebot.planning import render

            out(render.plan_text(plan, colour=render.use_colour(sys.stderr)), sys.stderr)
        result = pipeline.apply(store, plan, live, check_stale=False, progress=not args.quiet)
    emit_result(result, args, plan)
    if not result.ok:
        return EXIT_ERROR
    return EXIT_CHANGES if args.detailed_exitcode and plan.actions else EXIT_OK
