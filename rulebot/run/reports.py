"""Read-only reports: the run journal read as history (``rulebot runs``)
and the items a `where` matches (``rulebot items``)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rulebot.errors import RulebotError
from rulebot.library.item import STATUS_NAMES, Item
from rulebot.planning.plan import iso
from rulebot.safe import clipped, json_text, printable, sheet_cell

if TYPE_CHECKING:
    from rulebot.library.store import JournalRun
    from rulebot.rules.conditions import Where

# -- runs -----------------------------------------------------------------------------


def run_json(run: JournalRun) -> dict[str, Any]:
    states = run.states
    return {
        "run_id": run.run_id,
        "started_at": iso(run.started_at),
        "finished_at": None if run.finished_at is None else iso(run.finished_at),
        "command": run.command,
        "source": run.source or "unknown",
        "status": run.status,
        "succeeded": states.get("confirmed", 0),
        "failed": states.get("failed", 0),
        "skipped": states.get("skipped", 0),
        "unconfirmed": states.get("sent", 0) + states.get("planned", 0),
    }


def source_text(source: Any) -> str:
    if not isinstance(source, dict):
        return "unknown"
    base = source.get("base_url")
    return f"{source.get('kind', '?')} {base}" if base else str(source.get("kind", "?"))


def runs_text(runs: Sequence[JournalRun]) -> str:
    if not runs:
        return "no runs in the journal yet"
    lines = [f"{'RUN':>5}  {'STARTED':20}  {'COMMAND':8}  {'STATUS':11}  SUCCEEDED FAILED SKIPPED"]
    for run in runs:
        row = run_json(run)
        lines.append(
            f"{row['run_id']:>5}  {row['started_at']:20}  {row['command']:8}  "
            f"{row['status']:11}  {row['succeeded']:>9} {row['failed']:>6} {row['skipped']:>7}"
            f"  {printable(source_text(run.source))}"
        )
    return "\n".join(lines)


# -- items ----------------------------------------------------------------------------


def matching_items(
    items: Sequence[Item], where: Where | None, now: int, limit: int | None = None
) -> list[Item]:
    """Live items ``where`` definitely matches, oldest first (as a rule sees
    the library before any rule changed it)."""
    from rulebot.planning.planner import Simulation

    state = Simulation(items)
    if where is None:
        found = [item for item in state.in_order if item is not None]
    else:
        found = where.select(state.in_order, now)
    return found if limit is None else found[:limit]


ITEM_COLUMNS = ("item_id", "status", "favorite", "time_added", "tags", "title", "url")


def item_row(item: Item) -> dict[str, Any]:
    return {
        "item_id": item.item_id,
        "status": STATUS_NAMES.get(item.status, str(item.status)),
        "favorite": item.favorite,
        "time_added": None if item.time_added is None else iso(item.time_added),
        "tags": None if item.tags is None else list(item.tags),
        "title": item.title,
        "url": item.url,
    }


def items_output(items: Sequence[Item], fmt: str) -> str:
    """The items as text, JSON or CSV: each read on a terminal, CSV in a
    spreadsheet too, so library text is escaped (and formula-guarded) as
    in every output of rulebot (``rulebot.safe``)."""
    rows = [item_row(item) for item in items]
    if fmt == "json":
        return json_text(rows)
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(ITEM_COLUMNS)
        for row in rows:
            tags = row["tags"]
            cells = [
                *(row[c] for c in ITEM_COLUMNS[:4]),
                "" if tags is None else ",".join(tags),
                row["title"],
                row["url"],
            ]
            writer.writerow([sheet_cell(c) if isinstance(c, str) else c for c in cells])
        return buffer.getvalue()
    lines = []
    for row in rows:  # one line per item: long text clipped (JSON and CSV carry it whole)
        tags = "?" if row["tags"] is None else ",".join(row["tags"]) or "-"
        lines.append(
            f"{clipped(row['item_id'], 40)}  {row['status']:8}  {clipped(tags, 80)}  "
            f"{clipped(row['title'], 100)}  {clipped(row['url'], 120)}"
        )
    count = len(rows)
    lines.append(f"{count} item{'s' if count != 1 else ''}")
    return "\n".join(lines)


# the inline `where` of `rulebot items --where`, checked as the config is: it is
# placed in a one-rule config whose last line starts with this prefix, so every
# problem found on that line points at a column of the argument itself
_WHERE_PREFIX = "  where: "


def inline_where(text: str, timezone_name: str) -> Where:
    """``--where YAML`` compiled like a rule's `where`; errors name the column
    of the argument (and the path inside it)."""
    from rulebot.rules.config import errors_in, load_config_text, validate_text

    if not text.strip():
        raise RulebotError("--where is empty; give a YAML mapping such as '{tag: read-later}'")
    if "\n" in text.strip():
        text = " ".join(line.strip() for line in text.strip().splitlines())
    head = f"version: 1\ntimezone: {json.dumps(timezone_name)}\nrules:\n- name: items\n"
    head += "  actions: [archive]\n"
    document = head + _WHERE_PREFIX + text.strip() + "\n"
    where_line = document.count("\n", 0, len(head)) + 1
    problems = errors_in(validate_text(document, "--where"))
    if problems:
        shown = []
        for problem in problems[:5]:
            at = problem.col - len(_WHERE_PREFIX) if problem.line == where_line else 1
            path = problem.path.replace("$.rules[0].where", "where", 1)
            message = problem.message.replace(f" at line {where_line}", "")
            shown.append(f"--where, column {max(at, 1)}: {message} [{path}]")
        raise RulebotError("\n".join(shown))
    where = load_config_text(document, "--where").rules[0].where
    if where is None:  # `where: null` is refused by validation; kept for mypy
        raise RulebotError("--where is empty; give a YAML mapping such as '{tag: read-later}'")
    return where
