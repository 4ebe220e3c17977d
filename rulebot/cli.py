"""Command line: parse arguments, call the core, map outcomes to exit codes.

This module builds the parser and dispatches; each command is a function
in rulebot.commands (one module per kind of command). Nothing else in
rulebot reads ``sys.argv``, prints results or exits. Heavy modules (httpx,
jsonschema, sqlite) are imported inside the commands that need them, so
``validate`` and ``--version`` start fast.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from rulebot import __version__
from rulebot.commands.shared import EXIT_ERROR, EXIT_LIMIT, UsageError
from rulebot.errors import RulebotError

FORMATS = ("text", "json", "markdown")
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
        description="Rules for a read-it-later library: a local Pocket export, a Pocket-compatible server, Karakeep, Wallabag, Readeck, Shaarli or Linkding.",
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

    sub = command("sync", "bring the store's mirror of the source's library up to date")
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

    sub = command(
        "runs",
        "recent runs from the journal: command, source, counts; `runs show N`: one run's actions",
    )
    sub.add_argument("--format", choices=("text", "json"), default="text")
    sub.add_argument("--limit", type=whole, default=20, metavar="N", help="at most N runs")
    sub.add_argument("show", nargs="?", choices=("show",), help="show what one run did")
    sub.add_argument("run_id", nargs="?", type=whole, metavar="RUN_ID", help="the run to show")

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

    sub = command(
        "auth", "get a Pocket access token with the OAuth flow (other sources: see their docs page)"
    )
    sub.add_argument(
        "--redirect-uri",
        help="where the browser goes after approving (default: a page rulebot serves on "
        "127.0.0.1 that lets it go on by itself)",
    )
    sub.add_argument("--base-url", help="server (default: pocket.base_url from the config)")

    sub = command(
        "demo",
        "try a source without an account: a dry run of its demo rules against a seeded "
        "server on 127.0.0.1",
    )
    sub.add_argument("source", choices=DEMO_SOURCES, help="the source to try")
    sub.add_argument("--items", type=whole, default=200, metavar="N", help="seed N items")
    sub.add_argument(
        "--keep", action="store_true", help="keep the server running afterwards, to go on by hand"
    )
    return parser


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


# Each command's module (in rulebot.commands) and function, imported when the
# command runs: a command loads only its own module (``demo`` alone costs
# 13 ms of imports that every other command would pay).
HANDLERS: dict[str, tuple[str, str]] = {
    "runs": ("journal", "cmd_runs"),
    "demo": ("demo", "cmd_demo"),
    "undo": ("journal", "cmd_undo"),
    "items": ("library", "cmd_items"),
    "auth": ("server", "cmd_auth"),
    "sync": ("server", "cmd_sync"),
    "apply": ("plan", "cmd_apply"),
    "explain": ("library", "cmd_explain"),
    "export": ("library", "cmd_export"),
    "import": ("library", "cmd_import"),
    "plan": ("plan", "cmd_plan"),
    "run": ("plan", "cmd_run"),
    "schedule": ("schedule", "cmd_schedule"),
    "daemon": ("schedule", "cmd_daemon"),
    "schema": ("config", "cmd_schema"),
    "test": ("config", "cmd_test"),
    "validate": ("config", "cmd_validate"),
}
# ``rulebot demo SOURCE``'s choices: rulebot.commands.demo.SERVERS' keys (a test holds them equal)
DEMO_SOURCES = (
    "karakeep",
    "linkding",
    "pocket",
    "raindrop",
    "readeck",
    "readwise",
    "shaarli",
    "wallabag",
)


def handler_of(command: str) -> Callable[[argparse.Namespace], int]:
    module, name = HANDLERS[command]
    found: Callable[[argparse.Namespace], int] = getattr(
        importlib.import_module(f"rulebot.commands.{module}"), name
    )
    return found


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
        handler = handler_of(args.command) if args.command in HANDLERS else None
        if args.command in ("run", "apply", "undo", "daemon"):
            from rulebot.library.journal import COMMAND

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
