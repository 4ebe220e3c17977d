"""Read-only reports: the run journal read as history (``rulebot runs``)
and the items a `where` matches (``rulebot items``)."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rulebot.errors import RulebotError
from rulebot.library.item import STATUS_NAMES, Item
from rulebot.planning.plan import PlannedAction, iso
from rulebot.safe import clipped, json_text, printable, sheet_cell

if TYPE_CHECKING:
    from rulebot.library.journal import JournalEntry, JournalRun
    from rulebot.rules.conditions import Where

# -- runs -----------------------------------------------------------------------------


def run_status(run: JournalRun) -> str:
    """The run's status as recorded, except that a run in which nothing
    succeeded and something failed is ``failed``, not ``partial`` (which an
    applier recorded for any failure until 0.2)."""
    confirmed, failed = run.states.get("confirmed", 0), run.states.get("failed", 0)
    if run.status == "partial" and not confirmed and failed:
        return "failed"
    return run.status


def run_json(run: JournalRun) -> dict[str, Any]:
    states = run.states
    return {
        "run_id": run.run_id,
        "started_at": iso(run.started_at),
        "finished_at": None if run.finished_at is None else iso(run.finished_at),
        "command": run.command,
        "source": run.source or "unknown",
        "status": run_status(run),
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
    lines = [
        f"{'RUN':>5}  {'STARTED':20}  {'COMMAND':8}  {'STATUS':11}  SUCCEEDED FAILED SKIPPED  SOURCE"
    ]
    for run in runs:
        row = run_json(run)
        lines.append(
            f"{row['run_id']:>5}  {row['started_at']:20}  {row['command']:8}  "
            f"{row['status']:11}  {row['succeeded']:>9} {row['failed']:>6} {row['skipped']:>7}"
            f"  {printable(source_text(run.source))}"
        )
    return "\n".join(lines)


# what each journal state means to a reader of one run
STATE_WORDS = {
    "confirmed": "succeeded",
    "failed": "failed",
    "skipped": "skipped",
    "sent": "unconfirmed",  # sent, and the run ended before it heard back
    "planned": "not sent",
}


def entry_json(entry: JournalEntry) -> dict[str, Any]:
    data: dict[str, Any] = {
        "index": entry.index,
        "rule": entry.rule,
        "state": STATE_WORDS.get(entry.state, entry.state),
        "send": entry.send,
    }
    if entry.action.get("item") is not None:
        data["item"] = entry.action["item"]
    if entry.error:
        data["error"] = entry.error
    if entry.unreadable:
        data["unreadable"] = entry.unreadable
    return data


def run_detail_json(run: JournalRun, entries: Sequence[JournalEntry]) -> dict[str, Any]:
    return {**run_json(run), "actions": [entry_json(entry) for entry in entries]}


def run_detail_text(run: JournalRun, entries: Sequence[JournalEntry]) -> str:
    """``rulebot runs show N``: what one run did, action by action."""
    row = run_json(run)
    finished = f", finished {row['finished_at']}" if row["finished_at"] else ", not finished"
    lines = [
        f"run {row['run_id']}: {row['command']} on {printable(source_text(run.source))}, "
        f"started {row['started_at']}{finished}: {row['status']}",
        f"  {row['succeeded']} succeeded, {row['failed']} failed, {row['skipped']} skipped"
        + (f", {row['unconfirmed']} unconfirmed or not sent" if row["unconfirmed"] else ""),
    ]
    if not entries:
        lines.append("  (no actions)")
    for entry in entries:
        state = STATE_WORDS.get(entry.state, entry.state)
        if entry.unreadable:
            lines.append(f"  {entry.index:>4} {state:11} (unreadable: {entry.unreadable})")
            continue
        item = entry.action.get("item")
        try:
            planned = PlannedAction(
                entry.rule or "?", entry.send, item if isinstance(item, dict) else None
            )
            label = planned.label()
        except (KeyError, TypeError, ValueError):  # another program's row: shown as stored
            label = printable(json.dumps(entry.send, sort_keys=True))
        why = f": {printable(clipped(entry.error, 200))}" if entry.error else ""
        lines.append(
            f"  {entry.index:>4} {state:11} {printable(entry.rule or '?')}: {clipped(label, 120)}{why}"
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
    (or line and column) of the argument, and the path inside it. A mapping
    may be written in braces (``{tag: news}``) or bare, as in a rules file
    (``tag: news``, one condition per line); on one line, bare conditions may
    be separated by commas (``tag: news, status: unread``)."""
    from rulebot.rules.config import errors_in, load_config_text, validate_text

    text = text.strip()
    if not text:
        raise RulebotError("--where is empty; give a YAML mapping such as 'tag: read-later'")
    lines = text.splitlines()
    flow = " ".join(line.strip() for line in lines)
    if text.startswith("{"):
        readings = [_InlineWhere(flow, block=False, shift=0)]
    elif len(lines) == 1:  # as written, else in braces (columns shift by one)
        readings = [_InlineWhere(text, block=True), _InlineWhere("{" + flow + "}", False, 1)]
    else:
        readings = [_InlineWhere(text, block=True)]
    head = f"version: 1\ntimezone: {json.dumps(timezone_name)}\nrules:\n- name: items\n"
    head += "  actions: [archive]\n"
    first_line = head.count("\n") + 1
    tried = []
    for reading in readings:
        document = head + reading.document()
        problems = errors_in(validate_text(document, "--where"))
        if not problems:
            where = load_config_text(document, "--where").rules[0].where
            if where is None:  # `where: null` is refused by validation; kept for mypy
                break
            return where
        tried.append((reading, problems))
    else:
        # the reading that got past the YAML syntax says most; else the first
        reading, problems = next(
            ((r, ps) for r, ps in tried if not any(_syntax(p.message) for p in ps)), tried[0]
        )
        raise RulebotError("\n".join(reading.where(p, first_line) for p in problems[:5]))
    raise RulebotError("--where is empty; give a YAML mapping such as 'tag: read-later'")


def _syntax(message: str) -> bool:
    return message.startswith("YAML syntax error")


@dataclass(frozen=True)
class _InlineWhere:
    """One way to read a ``--where`` argument: as a block under ``where:``
    (indented 4) or as a flow mapping after ``where: ``, ``shift`` columns
    added (a bare mapping put in braces)."""

    text: str
    block: bool
    shift: int = 0

    def document(self) -> str:
        if self.block:
            return "  where:\n" + "\n".join("    " + line for line in self.text.splitlines()) + "\n"
        return _WHERE_PREFIX + self.text + "\n"

    def where(self, problem: Any, first_line: int) -> str:
        """A problem, placed in the argument as the user typed it."""
        if self.block:
            line = max(problem.line - first_line, 1)
            at = f"column {max(problem.col - 4, 1)}"
            if len(self.text.splitlines()) > 1:
                at = f"line {line}, {at}"
        else:
            col = problem.col - len(_WHERE_PREFIX) - self.shift if problem.line == first_line else 1
            at = f"column {max(col, 1)}"
        path = problem.path.replace("$.rules[0].where", "where", 1)
        message = re.sub(r" at line \d+", "", problem.message)  # the document's, not the argument's
        return f"--where, {at}: {message} [{path}]"
