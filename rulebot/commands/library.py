"""Commands on the library in the store: ``import``, ``export``, ``items``,
``explain``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from rulebot.commands.shared import EXIT_OK, UsageError, load, now_of, open_store, out
from rulebot.errors import RulebotError
from rulebot.safe import json_text

if TYPE_CHECKING:
    from rulebot.library.importer import ImportResult


def cmd_import(args: argparse.Namespace) -> int:
    from rulebot.library.importer import import_export
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
    from rulebot.library.export_reader import MAX_BAD_ROWS_SHOWN
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
    from rulebot.library.export_writer import write_export

    config = load(args)
    with open_store(config, args) as store:
        items = store.items()
    written = write_export(items, Path(args.file))
    if not args.quiet:
        out(f"{args.file}: {written} items written", sys.stderr)
    return EXIT_OK


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
