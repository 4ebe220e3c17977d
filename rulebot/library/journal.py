"""The run journal in the store: each run (``runs``) and every action it
planned, sent and confirmed (``run_actions``), with the item state before it
that ``undo`` restores; what a crashed run left pending, what a rule's
period limits count, the grace marks rulebot set itself.

``Journal`` holds its methods and is mixed into ``Store``
(rulebot.library.store), whose connection and transactions they use: the
journal and the items are one SQLite file, so a local apply writes both in
one transaction. rulebot.library.schema creates the tables.
"""

from __future__ import annotations

import itertools
import json
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from rulebot.errors import StoreError
from rulebot.jsonenc import encoder

ACTION_STATES = ("planned", "sent", "confirmed", "failed", "skipped")


@dataclass(frozen=True, slots=True)
class JournalAction:
    """One action row of the run journal."""

    run_id: int
    index: int
    rule: str | None
    send: dict[str, Any]
    action: dict[str, Any]  # the whole plan action as given to journal_begin
    state: str
    error: str | None
    run_kind: str
    run_started_at: int


class JournalRow(NamedTuple):
    """One action of a run whose outcome is known when it is journaled (a
    local apply: the journal and the items are one transaction)."""

    action: dict[str, Any]  # the whole plan action
    before: dict[str, Any] | None  # what undo restores (None: not done)
    state: str  # confirmed | failed | skipped
    error: str | None
    at: int | None = None  # its index in the plan; None: the row's position


# one encoder for the journal's many small objects (rulebot.jsonenc)
_dumps = encoder(sort_keys=True)


def _journal_state(state: str) -> str:
    if state not in ACTION_STATES:
        raise ValueError(f"journal state {state!r} is not one of {ACTION_STATES}")
    return state


@dataclass(frozen=True, slots=True)
class JournalRun:
    run_id: int
    kind: str
    status: str
    started_at: int
    finished_at: int | None
    states: dict[str, int]  # action count per state
    command: str = "unknown"  # plan/run/apply/undo/daemon; "unknown" before schema 3
    source: dict[str, Any] | None = None  # plan.source; None before schema 3


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One action of a run with the item state before it (None: not recorded).

    ``unreadable`` says why a row cannot be used (its JSON damaged, or not
    the object it should be: another program wrote it); its ``send``,
    ``action`` and ``before`` are then empty objects."""

    index: int
    rule: str | None
    send: dict[str, Any]
    action: dict[str, Any]
    state: str
    before: dict[str, Any] | None
    unreadable: str = ""
    error: str | None = None  # why it failed or was skipped, as the run recorded it


def _journal_entry(row: Sequence[Any]) -> JournalEntry:
    index, rule, send_text, action_text, state, before_text, error = row
    problems = []
    decoded: dict[str, Any] = {}
    columns = (("send", send_text), ("action", action_text), ("before", before_text))
    for column, text in columns:
        if column == "before" and not text:
            decoded[column] = None
            continue
        try:
            value = json.loads(text)
        except (TypeError, ValueError, RecursionError):
            problems.append(f"its {column} is not JSON")
            continue
        if not isinstance(value, dict):
            problems.append(f"its {column} is {_json_kind(value)}, not an object")
            continue
        decoded[column] = value
    if problems:
        return JournalEntry(index, rule, {}, {}, str(state), {}, "; ".join(problems), error)
    return JournalEntry(
        index, rule, decoded["send"], decoded["action"], str(state), decoded["before"], "", error
    )


def _json_kind(value: Any) -> str:
    kinds = {list: "a list", str: "text", bool: "true/false", type(None): "null"}
    return kinds.get(type(value), "a number")


# the command a run is journaled under: set once by the command line (and the
# daemon), read by journal_begin, so no applier has to pass it along
COMMAND: ContextVar[str] = ContextVar("rulebot_command", default="unknown")


class Journal:
    """The run journal's half of ``Store``."""

    # Store's (rulebot.library.store): its file, its connection, a read
    # snapshot, and a write that joins ``conn`` or runs in its own transaction
    path: Path
    _conn: sqlite3.Connection
    _snapshot: Callable[[], AbstractContextManager[None]]
    _writing: Callable[[sqlite3.Connection | None], AbstractContextManager[sqlite3.Connection]]

    def journal_begin(
        self,
        kind: str,
        actions: list[dict[str, Any]],
        conn: sqlite3.Connection | None = None,
        *,
        source: dict[str, Any] | None = None,
        before: Sequence[dict[str, Any] | None] | None = None,
    ) -> int:
        """Record a run and its planned actions; returns the run id.

        Each action is a plan action (``{"rule", "send", ...}``); a dict
        without ``send`` is taken to be the send object itself. ``before[i]``
        is the item state before action i (``rulebot.planning.states.before_states``):
        what ``undo`` restores.
        """
        states = before if before is not None else itertools.repeat(None)
        rows = (JournalRow(a, s, "planned", None) for a, s in zip(actions, states, strict=False))
        with self._writing(conn) as c:
            return self.journal_record(kind, rows, c, source=source)

    def journal_record(
        self,
        kind: str,
        rows: Iterable[JournalRow],
        conn: sqlite3.Connection,
        *,
        source: dict[str, Any] | None = None,
    ) -> int:
        """Record a run whose actions' outcomes are already known, each row as
        it comes (``rows`` may be a generator doing the work); the run id.
        Call ``journal_finish`` after, in the same transaction."""
        now = int(time.time())
        cursor = conn.execute(
            "INSERT INTO runs (kind, status, started_at, command, source)"
            " VALUES (?, 'running', ?, ?, ?)",
            (kind, now, COMMAND.get(), json.dumps(source, sort_keys=True) if source else None),
        )
        run_id = int(cursor.lastrowid or 0)
        conn.executemany(
            "INSERT INTO run_actions (run_id, idx, rule, send, action, state, error, updated_at,"
            " before) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                (
                    run_id,
                    position if row.at is None else row.at,
                    row.action.get("rule"),
                    _dumps(row.action.get("send", row.action)),
                    _dumps(row.action),
                    _journal_state(row.state),
                    row.error,
                    now,
                    None if row.before is None else _dumps(row.before),
                )
                for position, row in enumerate(rows)
            ),
        )
        return run_id

    def journal_mark(
        self,
        run_id: int,
        indexes: list[int],
        state: str,
        error: str | None = None,
        conn: sqlite3.Connection | None = None,
    ) -> None:
        state = _journal_state(state)
        now = int(time.time())
        with self._writing(conn) as c:
            before = c.total_changes
            c.executemany(
                "UPDATE run_actions SET state = ?, error = ?, updated_at = ?"
                " WHERE run_id = ? AND idx = ?",
                ((state, error, now, run_id, index) for index in indexes),
            )
            if c.total_changes - before != len(set(indexes)):
                raise StoreError(
                    f"store {self.path}: run {run_id} has no action at some of {indexes}"
                )

    def journal_note(
        self,
        run_id: int,
        index: int,
        key: str,
        value: Any,
        conn: sqlite3.Connection | None = None,
    ) -> None:
        """Add ``key`` to what action ``index`` journaled for ``undo`` (its
        ``before``), learnt from the service's answer: the item an ``add``
        created, the tags a service created."""
        with self._writing(conn) as c:
            c.execute(
                "UPDATE run_actions SET before = json_set(coalesce(before, '{}'), ?, json(?))"
                " WHERE run_id = ? AND idx = ?",
                (f'$."{key}"', _dumps(value), run_id, index),
            )

    def journal_finish(
        self, run_id: int, status: str, conn: sqlite3.Connection | None = None
    ) -> None:
        with self._writing(conn) as c:
            c.execute(
                "UPDATE runs SET status = ?, finished_at = ? WHERE run_id = ?",
                (status, int(time.time()), run_id),
            )

    def journal_pending(self) -> list[JournalAction]:
        """Actions of unfinished runs that were sent but never confirmed or
        failed: after a crash their outcome is unknown and must be checked."""
        with self._snapshot():
            rows = self._conn.execute(
                "SELECT a.run_id, a.idx, a.rule, a.send, a.action, a.state, a.error,"
                " r.kind, r.started_at FROM run_actions a JOIN runs r USING (run_id)"
                " WHERE r.finished_at IS NULL AND a.state = 'sent' ORDER BY a.run_id, a.idx"
            ).fetchall()
            return [
                JournalAction(
                    run_id=row[0],
                    index=row[1],
                    rule=row[2],
                    send=json.loads(row[3]),
                    action=json.loads(row[4]),
                    state=row[5],
                    error=row[6],
                    run_kind=row[7],
                    run_started_at=row[8],
                )
                for row in rows
            ]

    def journal_runs(self, limit: int = 20) -> list[JournalRun]:
        """The most recent runs, newest first, with action counts per state."""
        with self._snapshot():
            runs = self._conn.execute(
                "SELECT run_id, kind, status, started_at, finished_at, command, source FROM runs"
                " ORDER BY run_id DESC LIMIT ?",
                (limit,),
            ).fetchall()
            return [self._journal_run(row) for row in runs]

    def journal_run(self, run_id: int) -> JournalRun | None:
        with self._snapshot():
            row = self._conn.execute(
                "SELECT run_id, kind, status, started_at, finished_at, command, source FROM runs"
                " WHERE run_id = ?",
                (run_id,),
            ).fetchone()
            return None if row is None else self._journal_run(row)

    def _journal_run(self, row: Sequence[Any]) -> JournalRun:
        run_id, kind, status, started_at, finished_at, command, source = row
        states = dict(
            self._conn.execute(
                "SELECT state, count(*) FROM run_actions WHERE run_id = ?"
                " GROUP BY state ORDER BY state",
                (run_id,),
            ).fetchall()
        )
        return JournalRun(
            run_id,
            kind,
            status,
            started_at,
            finished_at,
            states,
            command or "unknown",
            json.loads(source) if source else None,
        )

    def journal_entries(self, run_id: int) -> list[JournalEntry]:
        """Every action of a run, in plan order, with its before-state; a row
        that cannot be read is marked so (``JournalEntry.unreadable``)."""
        with self._snapshot():
            rows = self._conn.execute(
                "SELECT idx, rule, send, action, state, before, error FROM run_actions"
                " WHERE run_id = ? ORDER BY idx",
                (run_id,),
            ).fetchall()
            return [_journal_entry(row) for row in rows]

    def journal_done_since(self, rule: str, since: int) -> list[tuple[str | None, str]]:
        """(item_id, action) of every action of ``rule`` planned at or after
        ``since`` (the plan's clock) that landed or may have landed: confirmed,
        or sent by a run that crashed before it heard back. What a rule's
        ``limit`` and ``max_deletes`` count per schedule period."""
        with self._snapshot():
            rows = self._conn.execute(
                "SELECT json_extract(send, '$.item_id'), json_extract(send, '$.action')"
                " FROM run_actions WHERE rule = ? AND state IN ('confirmed', 'sent')"
                " AND json_extract(send, '$.time') >= ?",
                (rule, since),
            ).fetchall()
            return [
                (None if item_id is None else str(item_id), str(name)) for item_id, name in rows
            ]

    def grace_marks(self, rules: Iterable[str]) -> dict[str, dict[str, frozenset[str]]]:
        """rule -> item id -> the grace marks (``rulebot:RULE:DATE``) that
        rule's confirmed ``tags_add`` actions gave the item: the marks rulebot
        set itself. Only these start a grace period (``planner.Grace``); a
        mark in the library that is not here was typed, planted or left from
        a lost store, and counts for nothing."""
        names = list(dict.fromkeys(rules))
        if not names:
            return {}
        found: dict[str, dict[str, set[str]]] = {}
        with self._snapshot():
            rows = self._conn.execute(
                "SELECT rule, json_extract(send, '$.item_id'), json_extract(send, '$.tags')"
                f" FROM run_actions WHERE rule IN ({', '.join('?' * len(names))})"
                " AND state = 'confirmed' AND json_extract(send, '$.action') = 'tags_add'"
                " AND instr(json_extract(send, '$.tags'), 'rulebot:') > 0",
                names,
            ).fetchall()
        for rule, item_id, tags in rows:
            prefix = f"rulebot:{rule}:"
            marks = [tag for tag in str(tags).split(",") if tag.startswith(prefix)]
            if marks and item_id is not None:
                found.setdefault(str(rule), {}).setdefault(str(item_id), set()).update(marks)
        return {
            rule: {item_id: frozenset(marks) for item_id, marks in by_item.items()}
            for rule, by_item in found.items()
        }
