"""Command line: parse arguments, call the core, map outcomes to exit codes.

Nothing else in rulebot reads ``sys.argv``, prints results or exits. Heavy
modules (httpx, jsonschema, sqlite) are imported inside the commands that
need them, so ``validate`` and ``--version`` start fast.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, NoReturn, TextIO

from rulebot import __version__
from rulebot.errors import RulebotError
from rulebot.safe import json_text

if TYPE_CHECKING:
    from rulebot.library.exports import ImportResult
    from rulebot.library.store import Store
    from rulebot.planning.plan import Plan, Result
    from rulebot.planning.planner import Limits
    from rulebot.rules.config import Config, Rule
    from rulebot.run.daemon import Daemon

EXIT_OK, EXIT_ERROR, EXIT_CHANGES, EXIT_LIMIT = 0, 1, 2, 3
FORMATS = ("text", "json", "markdown")


class UsageError(RulebotError):
    """Bad command-line usage (exit 1, never argparse's 2)."""


MAX_WHOLE = 2**63 - 1  # what the store (SQLite) holds: run ids, limits


def whole(text: str) -> int:
    """A whole-number argument that fits 64 bits (a run id, a limit): larger is
    a usage error, never an overflow deep in the store."""
    digits = text.strip().removeprefix("-").removeprefix("+")
    if not (digits.isascii() and digits.isdigit()):
        raise argparse.ArgumentTypeError(f"{_shown(text)} is not a whole number")
    if len(digits) > 19 or int(digits) > MAX_WHOLE:
        raise argparse.ArgumentTypeError(f"{_shown(text)} is too large; at most {MAX_WHOLE}")
    return int(text)


def _shown(text: str) -> str:
    from rulebot.safe import printable

    shown = printable(text)
    return repr(shown if len(shown) <= 30 else shown[:29] + "…")


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message}\n{self.format_usage().strip()}")


def _global_options(parser: argparse.ArgumentParser, *, top: bool) -> None:
    # Subparsers use SUPPRESS so an option given before the command name is
    # not reset by the subparser's default: globals work on either side.
    default = None if top else argparse.SUPPRESS
    group = parser.add_argument_group("global options")
    group.add_argument(
        "-c", "--config", default=default, help="rules file (default ./rules.yaml, $RULEBOT_CONFIG)"
    )
    group.add_argument(
        "--store", default=default, help="SQLite store (overrides config and $RULEBOT_STORE)"
    )
    group.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0 if top else argparse.SUPPRESS,
        help="more logging",
    )
    group.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=False if top else argparse.SUPPRESS,
        help="only errors on stderr",
    )


def build_parser() -> Parser:
    parser = Parser(
        prog="rulebot",
        description="Rules for a read-it-later library that speaks the Pocket v3 API.",
    )
    parser.add_argument("--version", action="version", version=f"rulebot {__version__}")
    _global_options(parser, top=True)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        _global_options(sub, top=False)
        return sub

    def plan_options(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--format", choices=FORMATS, default="text")
        sub.add_argument(
            "--rule",
            action="append",
            default=[],
            metavar="NAME",
            help="only this rule (repeatable)",
        )
        sub.add_argument("--due", action="store_true", help="only rules whose schedule is due")
        sub.add_argument(
            "--detailed-exitcode", action="store_true", help="exit 2 when the plan is not empty"
        )
        sub.add_argument(
            "--max-actions", type=whole, metavar="N", help="override limits.max_actions"
        )
        sub.add_argument(
            "--max-deletes", type=whole, metavar="N", help="override limits.max_deletes"
        )
        sub.add_argument("--now", help=argparse.SUPPRESS)  # pin the clock (tests, replays)

    sub = command("validate", "check the config file")
    sub.add_argument(
        "files", nargs="*", metavar="FILE", help="config files (default: -c or ./rules.yaml)"
    )
    sub.add_argument("--format", choices=("text", "json", "github"), default="text")

    sub = command("plan", "sync, then show what would be sent; sends nothing")
    plan_options(sub)
    sub.add_argument("--out", metavar="PLAN.json", help="also write the plan as JSON")

    sub = command("run", "sync, plan and apply")
    plan_options(sub)
    sub.add_argument("--dry-run", action="store_true", help="only show the plan (same as plan)")

    sub = command("apply", "send a saved plan")
    sub.add_argument("plan_file", metavar="PLAN.json")
    sub.add_argument("--max-actions", type=whole, metavar="N", help="override limits.max_actions")
    sub.add_argument("--max-deletes", type=whole, metavar="N", help="override limits.max_deletes")
    sub.add_argument("--format", choices=FORMATS, default="text")
    sub.add_argument("--force", action="store_true", help="apply a plan made from another config")
    sub.add_argument("--now", help=argparse.SUPPRESS)

    sub = command("sync", "pull from the Pocket server into the store")
    sub.add_argument("--full", action="store_true", help="fetch everything, not only changes")

    sub = command("import", "import a Pocket export (zip, CSV or ril_export.html)")
    sub.add_argument("file")
    sub.add_argument(
        "--dry-run", action="store_true", help="show what would be added/updated; write nothing"
    )
    sub.add_argument(
        "--skip-bad", action="store_true", help="import the good rows even if some rows are bad"
    )

    sub = command("export", "export the library as a Pocket CSV, zip or HTML file")
    sub.add_argument("file")

    sub = command("schedule", "each rule's schedule, last run and next run")
    sub.add_argument("--format", choices=("text", "json"), default="text")
    sub.add_argument("--now", help=argparse.SUPPRESS)

    sub = command("daemon", "stay up and run rules when their schedule comes due")
    sub.add_argument("--max-actions", type=whole, metavar="N", help="override limits.max_actions")
    sub.add_argument("--max-deletes", type=whole, metavar="N", help="override limits.max_deletes")

    sub = command("explain", "show how each rule and condition sees one item")
    sub.add_argument("item_id", metavar="ITEM", help="an item id or its URL")
    sub.add_argument("--format", choices=("text", "json"), default="text")
    sub.add_argument("--now", help=argparse.SUPPRESS)

    sub = command("runs", "recent runs from the journal: command, source, counts")
    sub.add_argument("--format", choices=("text", "json"), default="text")
    sub.add_argument("--limit", type=whole, default=20, metavar="N", help="at most N runs")

    sub = command("undo", "plan and apply the reversal of what a run confirmed")
    sub.add_argument("run_id", nargs="?", type=whole, metavar="RUN_ID", help="default: the latest")
    sub.add_argument("--dry-run", action="store_true", help="only show the reversal plan")
    sub.add_argument("--format", choices=FORMATS, default="text")
    sub.add_argument(
        "--detailed-exitcode", action="store_true", help="exit 2 when the plan is not empty"
    )
    sub.add_argument("--max-actions", type=whole, metavar="N", help="override limits.max_actions")
    sub.add_argument("--max-deletes", type=whole, metavar="N", help="override limits.max_deletes")
    sub.add_argument("--now", help=argparse.SUPPRESS)

    sub = command("items", "list the items in the store that a `where` or a rule matches")
    sub.add_argument("--where", metavar="YAML", help="an inline where, e.g. '{tag: x}'")
    sub.add_argument("--rule", metavar="NAME", help="the items this rule's where matches")
    sub.add_argument("--format", choices=("text", "json", "csv"), default="text")
    sub.add_argument("--limit", type=whole, metavar="N", help="at most N items")
    sub.add_argument("--now", help=argparse.SUPPRESS)

    sub = command("test", "run the tests: cases in the config")
    sub.add_argument("--format", choices=("text", "json"), default="text")

    command("schema", "print the JSON Schema of the config file")

    sub = command("auth", "get an access token with the Pocket OAuth flow")
    sub.add_argument("--redirect-uri", default="https://localhost/rulebot-auth")
    sub.add_argument("--base-url", help="server (default: pocket.base_url from the config)")
    return parser


# -- shared plumbing ------------------------------------------------------------


def config_path(args: argparse.Namespace) -> Path:
    return Path(args.config or os.environ.get("RULEBOT_CONFIG") or "rules.yaml")


def out(text: str, stream: TextIO | None = None) -> None:
    stream = stream or sys.stdout
    stream.write(text if text.endswith("\n") or not text else text + "\n")


class _SafeFormatter(logging.Formatter):
    """Log lines carry titles and server text: escape control characters."""

    def format(self, record: logging.LogRecord) -> str:
        from rulebot.safe import printable_lines

        return printable_lines(super().format(record))


def _setup_logging(args: argparse.Namespace) -> None:
    level = logging.ERROR if args.quiet else logging.WARNING - 10 * min(args.verbose, 2)
    # under cron, systemd or CI the log is read later: stamp each line
    stamped = not sys.stderr.isatty()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        _SafeFormatter(
            "%(asctime)s rulebot: %(message)s" if stamped else "rulebot: %(message)s",
            datefmt="%Y-%m-%dT%H:%M:%S%z",
        )
    )
    logging.basicConfig(level=level, handlers=[handler], force=True)


# -- commands ---------------------------------------------------------------------


def cmd_schema(args: argparse.Namespace) -> int:
    from rulebot.rules.schema import schema_text

    out(schema_text())
    return EXIT_OK


def cmd_validate(args: argparse.Namespace) -> int:
    from rulebot.rules.config import render_problems, validate_file

    # several files: pre-commit passes every changed rules file at once
    paths = [Path(f) for f in args.files] or [config_path(args)]
    problems = [problem for path in paths for problem in validate_file(path)]
    text = render_problems(problems, args.format)
    if text:
        out(text)
    if args.format == "text" and not args.quiet:
        bad = {p.file for p in problems if p.is_error}
        for path in paths:
            if str(path) not in bad:
                out(f"{path}: valid", sys.stderr)
    # warnings are shown, but only errors fail: the config loads with warnings
    return EXIT_ERROR if any(p.is_error for p in problems) else EXIT_OK


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


def _limits(config: Config, args: argparse.Namespace) -> Limits:
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


def _chosen_rules(config: Config, store: Store, args: argparse.Namespace, now: int) -> list[Rule]:
    from rulebot.rules.schedule import is_due
    from rulebot.run.pipeline import select_rules

    rules = select_rules(config, args.rule)
    if args.due:
        rules = [r for r in rules if is_due(r, store.last_run(r.name), now, config.timezone)]
    return rules


def _emit_plan(plan: Plan, args: argparse.Namespace, refused: str | None) -> None:
    from rulebot.planning import render

    if args.format == "json":
        plan.write(sys.stdout)
    elif args.format == "markdown":
        out(render.plan_markdown(plan, refused=refused))
    else:
        colour = render.use_colour(sys.stdout)
        limit = None if args.verbose else render.MAX_LINES_PER_RULE
        out(render.plan_text(plan, colour=colour, max_lines=limit))
    _github_files(lambda: render.plan_markdown(plan, refused=refused), changes=len(plan))


def _github_files(summary: Callable[[], str], *, changes: int) -> None:
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
        if not live.source.remote and not store.count() and not args.quiet:
            out(
                f"rulebot: the library in {store.path} is empty; fill it with "
                "`rulebot import pocket-export.zip` (or .csv, .html)",
                sys.stderr,
            )
        plan, usage = pipeline.make_plan(config, store, live, rules, now)
        refused: LimitExceededError | None = None
        try:
            check_limits(plan, _limits(config, args), usage)
        except LimitExceededError as err:
            refused = err
        if getattr(args, "out", None):
            _write_plan(plan, args.out)
        if not apply or refused:
            _emit_plan(plan, args, str(refused) if refused else None)
            if refused:
                raise refused
            return EXIT_CHANGES if args.detailed_exitcode and plan.actions else EXIT_OK
        if not args.quiet and args.format == "text":
            from rulebot.planning import render

            out(render.plan_text(plan, colour=render.use_colour(sys.stderr)), sys.stderr)
        result = pipeline.apply(store, plan, live, check_stale=False, progress=not args.quiet)
        pipeline.record_runs(store, plan, result, now)
    _emit_result(result, args, plan)
    if not result.ok:
        return EXIT_ERROR
    return EXIT_CHANGES if args.detailed_exitcode and plan.actions else EXIT_OK


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
        _emit_plan(plan, args, None)
    else:
        _emit_result(Result(outcomes=[], started_at=now, source=plan.source), args, plan)
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


def _emit_result(result: Result, args: argparse.Namespace, plan: Plan) -> None:
    from rulebot.planning import render

    if args.format == "json":
        result.write(sys.stdout)
    elif args.format == "markdown":
        out(render.result_markdown(result))
    else:
        limit = None if args.verbose else render.MAX_LINES_PER_RULE
        out(render.result_text(result, colour=render.use_colour(sys.stdout), max_lines=limit))
    _github_files(lambda: render.result_markdown(result), changes=len(plan))


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
        check_limits(plan, _limits(config, args), period_usage(config, store, plan.rules, now))
        result = pipeline.apply(store, plan, live, check_stale=True, progress=not args.quiet)
        pipeline.record_runs(store, plan, result, now)
    _emit_result(result, args, plan)
    return EXIT_OK if result.ok else EXIT_ERROR


def cmd_import(args: argparse.Namespace) -> int:
    from rulebot.library.exports import import_export
    from rulebot.sources import source_for

    config = load(args)
    source = source_for(config)
    if source.remote:
        # the store mirrors the server there: imported items would get ids the
        # server does not know, and every run would fail on them
        kind, where = config.source_kind, source.describe().get("base_url", "")
        raise RulebotError(
            f"{config.path} has a `{kind}:` block, so the store mirrors {where} "
            "and is filled by `rulebot sync`; import into a local library (a config "
            f"without `{kind}:`), or import the export into the server itself"
        )
    with open_store(config, args) as store, store.lock("import"):
        result = import_export(
            store,
            Path(args.file),
            progress=sys.stderr.isatty() and not args.quiet,
            skip_bad=args.skip_bad,
            dry_run=args.dry_run,
        )
    out(_import_text(args, result))
    if not args.quiet:
        for note in _import_notes(args, result):
            out(f"rulebot: {note}", sys.stderr)
    return EXIT_OK


_IMPORT_LINES = 20  # changes a dry run lists without -v


def _import_text(args: argparse.Namespace, result: ImportResult) -> str:
    from rulebot.safe import printable

    counts = f"{result.added} added, {result.updated} updated, {result.unchanged} unchanged"
    if not result.dry_run:
        return f"{printable(args.file)}: {counts}"
    lines = [f"{printable(args.file)} (dry run, nothing written): {counts}"]
    shown = result.changes if args.verbose else result.changes[:_IMPORT_LINES]
    for change in shown:
        what = f" ({', '.join(change.fields)})" if change.fields else ""
        revert = "  <- reverts a later change" if change.reverts else ""
        lines.append(f"  {change.kind:<8} {printable(change.url)}{what}{revert}")
    if len(shown) < len(result.changes):
        lines.append(f"  … and {len(result.changes) - len(shown)} more (-v shows all)")
    return "\n".join(lines)


def _import_notes(args: argparse.Namespace, result: ImportResult) -> list[str]:
    from rulebot.library.exports import MAX_BAD_ROWS_SHOWN
    from rulebot.safe import printable, printable_lines

    notes = []
    if result.bad_rows:
        bad = result.bad_rows
        listed = "\n".join(f"  {printable(row)}" for row in bad[:MAX_BAD_ROWS_SHOWN])
        more = (
            f"\n  … and {len(bad) - MAX_BAD_ROWS_SHOWN} more"
            if len(bad) > MAX_BAD_ROWS_SHOWN
            else ""
        )
        verb = "would skip" if result.dry_run else "skipped"
        notes.append(printable_lines(f"{verb} {len(bad)} bad rows (--skip-bad):\n{listed}{more}"))
    if result.duplicates:
        urls = ", ".join(printable(url) for url in result.duplicate_urls)
        more = ", …" if result.duplicates > len(result.duplicate_urls) else ""
        notes.append(
            f"{result.duplicates} rows repeat the URL of an earlier row and were merged "
            f"into it (the later row wins): {urls}{more}"
        )
    if result.reverts:
        changed = (
            f"{result.reverts} items were changed after this export was made (by rulebot "
            "or a newer import)"
        )
        if result.dry_run:
            notes.append(f"warning: {changed}; importing it reverts them (marked above)")
        else:
            notes.append(
                f"warning: {changed}; the import put the export's values back. "
                f"`rulebot import --dry-run {printable(args.file)}` lists such items "
                "without writing anything"
            )
    return notes


def cmd_export(args: argparse.Namespace) -> int:
    from rulebot.library.exports import write_export

    config = load(args)
    with open_store(config, args) as store:
        items = store.items()
    written = write_export(items, Path(args.file))
    if not args.quiet:
        out(f"{args.file}: {written} items written", sys.stderr)
    return EXIT_OK


def cmd_explain(args: argparse.Namespace) -> int:
    from rulebot.planning.explain import explain_item, explain_text

    config = load(args)
    with open_store(config, args) as store:
        report = explain_item(config, store, args.item_id, now_of(args))
    if args.format == "json":
        out(json_text(report))
    else:
        out(explain_text(report))
    return EXIT_OK


def cmd_test(args: argparse.Namespace) -> int:
    from rulebot.planning.selftest import run_tests, tests_text

    config = load(args)
    results = run_tests(config)
    if args.format == "json":
        out(json_text([r.to_json() for r in results]))
    else:
        out(tests_text(results, colour=sys.stdout.isatty() and "NO_COLOR" not in os.environ))
    return EXIT_OK if all(r.passed for r in results) else EXIT_ERROR


def cmd_sync(args: argparse.Namespace) -> int:
    from rulebot.run import pipeline
    from rulebot.sources import source_for

    config = load(args)
    if not source_for(config).remote:
        raise RulebotError(
            f"{config.path} has no source block (`pocket:`, `karakeep:` …), so there is no "
            "server to sync from; the local library is filled with `rulebot import FILE`"
        )
    with (
        open_store(config, args) as store,
        store.lock("sync"),
        pipeline.connected(config, store, full=args.full, progress=not args.quiet) as live,
    ):
        synced = live.synced
        total = store.count()
    assert synced is not None
    kind = "full" if synced.full else "incremental"
    out(
        f"{kind} sync: {synced.received} received, {synced.deleted} deleted, "
        f"{total} items in the store ({synced.requests} request{'s' if synced.requests != 1 else ''})"
    )
    return EXIT_OK


def cmd_auth(args: argparse.Namespace) -> int:
    from rulebot.sources.pocket.api import CONSUMER_KEY_ENV, PocketClient

    base_url = args.base_url
    key_env = CONSUMER_KEY_ENV
    if not base_url:
        config = load(args)
        if config.pocket is None:
            raise UsageError("pass --base-url, or use a config with a `pocket:` block")
        base_url, key_env = config.pocket.base_url, config.pocket.consumer_key_env
    with PocketClient.from_env(base_url, key_env, require_access_token=False) as client:
        code = client.oauth_request(args.redirect_uri)
        authorize = (
            f"{client.base_url.replace('/v3', '')}/auth/authorize?request_token={code}"
            f"&redirect_uri={args.redirect_uri}"
        )
        print(
            f"Open this URL, approve rulebot, then press Enter:\n\n  {authorize}\n", file=sys.stderr
        )
        with contextlib.suppress(EOFError):
            input()
        granted = client.oauth_authorize(code)
    print(
        f"Authorized as {granted.username}. Store the token below as POCKET_ACCESS_TOKEN "
        "(a secret store, not the config file); it is shown only this once:",
        file=sys.stderr,
    )
    out(granted.access_token)
    return EXIT_OK


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
    from rulebot.run.daemon import CycleReport, Daemon

    config = load(args)
    limits = _limits(config, args)
    scheduled = [r for r in config.rules if r.enabled and r.schedule]
    unscheduled = [r.name for r in config.rules if r.enabled and not r.schedule]
    if not scheduled:
        raise RulebotError(
            f"{config.path} has no enabled rule with a `schedule:`, so the daemon would never "
            'run anything; give a rule a schedule (e.g. schedule: "0 6 * * *"), '
            "or run rules with `rulebot run`"
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
    from rulebot.run.daemon import stop_on_signals

    def say(message: str) -> None:
        print(f"rulebot: daemon: {message}", file=sys.stderr, flush=True)

    def info(message: str) -> None:
        if not args.quiet:
            say(message)

    daemon = daemon_for(args, info=info, warn=say)
    received: list[str] = []
    restore = stop_on_signals(daemon.stop, received)
    try:
        daemon.serve()
    finally:
        restore()
    info(f"stopped ({received[0] if received else 'done'})")
    return EXIT_OK


def cmd_runs(args: argparse.Namespace) -> int:
    from rulebot.run.reports import run_json, runs_text

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
            check_limits(plan, _limits(config, args))
        except LimitExceededError as err:
            refused = err
        if args.dry_run or refused:
            _emit_plan(plan, args, str(refused) if refused else None)
            if refused:
                raise refused
            return EXIT_CHANGES if args.detailed_exitcode and plan.actions else EXIT_OK
        if not args.quiet and args.format == "text":
            from rulebot.planning import render

            out(render.plan_text(plan, colour=render.use_colour(sys.stderr)), sys.stderr)
        result = pipeline.apply(store, plan, live, check_stale=False, progress=not args.quiet)
    _emit_result(result, args, plan)
    if not result.ok:
        return EXIT_ERROR
    return EXIT_CHANGES if args.detailed_exitcode and plan.actions else EXIT_OK


def cmd_items(args: argparse.Namespace) -> int:
    from rulebot.run.pipeline import select_rules
    from rulebot.run.reports import inline_where, items_output, matching_items

    if args.limit is not None and args.limit < 1:
        raise UsageError(f"--limit must be 1 or more, not {args.limit}")
    if args.where is not None and args.rule:
        raise UsageError("give --where or --rule, not both")
    config = load(args)
    where = None
    if args.where is not None:
        where = inline_where(args.where, config.timezone_name)
    elif args.rule:
        [rule] = select_rules(config, [args.rule])
        if rule.where is None:
            raise RulebotError(f"rule {rule.name} is account-wide: it has no `where` to match")
        where = rule.where
    with open_store(config, args) as store:
        found = matching_items(store.items(), where, now_of(args), args.limit)
    out(items_output(found, args.format))
    return EXIT_OK


HANDLERS: dict[str, Callable[[argparse.Namespace], int]] = {
    "runs": cmd_runs,
    "undo": cmd_undo,
    "items": cmd_items,
    "auth": cmd_auth,
    "sync": cmd_sync,
    "apply": cmd_apply,
    "explain": cmd_explain,
    "export": cmd_export,
    "import": cmd_import,
    "plan": cmd_plan,
    "run": cmd_run,
    "schedule": cmd_schedule,
    "daemon": cmd_daemon,
    "schema": cmd_schema,
    "test": cmd_test,
    "validate": cmd_validate,
}


def _summary_of_error(args: argparse.Namespace | None, err: RulebotError) -> None:
    """On GitHub Actions, a failed plan/run/apply says so in the step summary too."""
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    command = getattr(args, "command", None)
    if not summary or command not in ("plan", "run", "apply") or err.exit_code == EXIT_LIMIT:
        return  # a refused plan has written its own summary
    with contextlib.suppress(OSError), open(summary, "a", encoding="utf-8") as handle:
        handle.write(f"### rulebot {command}: ❌ error\n\n```\n{err}\n```\n\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args: argparse.Namespace | None = None
    try:
        args = parser.parse_args(argv)
        if not args.command:
            parser.print_help(sys.stderr)
            return EXIT_ERROR
        _setup_logging(args)
        handler = HANDLERS.get(args.command)
        if args.command in ("run", "apply", "undo", "daemon"):
            from rulebot.library.store import COMMAND

            COMMAND.set(args.command)  # what `rulebot runs` shows for the runs it journals
        if handler is None:
            raise UsageError(f"'{args.command}' is not available in this build yet")
        return handler(args)
    except RulebotError as err:
        from rulebot.safe import printable_lines

        print(f"rulebot: error: {printable_lines(err)}", file=sys.stderr)
        _summary_of_error(args, err)
        return err.exit_code
    except KeyboardInterrupt as stopped:
        from rulebot.sources.pocket.sender import SendInterrupted

        done = stopped.message() if isinstance(stopped, SendInterrupted) else "interrupted"
        print(f"rulebot: {done}", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_ERROR
    except Exception as err:  # a bug: one line, the traceback only on request
        logging.getLogger("rulebot").debug("internal error", exc_info=True)
        print(
            f"rulebot: internal error: {type(err).__name__}: {err} (run with -vv for details)",
            file=sys.stderr,
        )
        return EXIT_ERROR
