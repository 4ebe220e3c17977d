"""A plan's actions on disk: flat memory whatever the plan's size.

A first run on a large library plans an action or two per item: 1.7M
actions for 1M items, 1.4 GB as objects. The one-pass planner hands each
rule's actions to a ``Spool`` as it makes them, in the order it makes them
(a chunk of the library at a time, every rule in turn). Small plans stay
objects in memory, exactly as before; past ``limit`` actions the spool
moves them into a private temporary SQLite database (deleted when it is
closed) as the plan's JSON lines, one table per rule and part, and the plan
reads them back as a sequence (``SpooledActions``), one block at a time.

Each part's rows go in item order (the one pass meets the items oldest
first) except where the keep rule let items go on late: those parts are
copied once, sorted by the item's place in the library, a stable sort that
keeps one item's actions in their order. The plan's order is then the
parts one after another, as ``_OnePass.finish`` concatenates its lists.
"""

from __future__ import annotations

import itertools
import json
import sqlite3
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, overload

from rulebot.plan import DESTRUCTIVE, PlannedAction, Tally, _Lines

BLOCK = 2000  # rows per read and per write


def decode(line: str) -> PlannedAction:
    """A plan line (``_Lines.line``) as an action again."""
    raw = json.loads(line)
    return PlannedAction(raw["rule"], raw["send"], raw.get("item"), tuple(raw["reasons"]))


class Spool:
    """Actions per part, each as (the item's place in the library, its
    actions); ``limit``: how many stay objects before they go to disk."""

    def __init__(self, parts: int, limit: int = 20_000) -> None:
        self.parts: list[list[tuple[int, list[PlannedAction]]]] = [[] for _ in range(parts)]
        self.count, self.limit = parts, limit
        self.held = 0  # actions held as objects
        self.db: sqlite3.Connection | None = None
        self.rows: list[tuple[int, int, str, str | None, str]] = []
        self.lines = _Lines()
        self.names: Counter[str] = Counter()
        self.rules: Counter[str] = Counter()

    def add(self, part: int, place: int, actions: list[PlannedAction]) -> None:
        if self.db is None:
            self.parts[part].append((place, actions))
            self.held += len(actions)
            if self.held > self.limit:
                self._spill()
            return
        line, names, rules = self.lines.line, self.names, self.rules
        for action in actions:
            send = action.send
            names[send["action"]] += 1
            rules[action.rule] += 1
            self.rows.append((part, place, send["action"], send.get("item_id"), line(action)))
        if len(self.rows) >= BLOCK:
            self._flush()

    def _spill(self) -> None:
        db = self.db = sqlite3.connect("", check_same_thread=False)  # "": a private temp file
        db.execute("PRAGMA journal_mode = OFF")
        db.execute("PRAGMA synchronous = OFF")
        for part in range(self.count):
            db.execute(f"CREATE TABLE p{part} (place INTEGER, name TEXT, item TEXT, line TEXT)")
        held, self.parts = self.parts, []
        for part, entries in enumerate(held):
            for place, actions in entries:
                self.add(part, place, actions)
        self.held = 0

    def _flush(self) -> None:
        assert self.db is not None
        rows = sorted(self.rows, key=_part)  # stable: each part's rows keep their order
        for part, group in itertools.groupby(rows, key=_part):
            self.db.executemany(
                f"INSERT INTO p{part} VALUES (?, ?, ?, ?)", (row[1:] for row in group)
            )
        self.rows.clear()

    def finish(self, late: Iterable[int] = ()) -> Sequence[PlannedAction]:
        """The plan's actions, the parts in ``late`` put back in item order."""
        late = set(late)
        if self.db is None:
            for part in late:  # stable: one item's actions keep their order
                self.parts[part].sort(key=_place)
            return [
                action for entries in self.parts for _, actions in entries for action in actions
            ]
        self._flush()
        for part in sorted(late):
            self.db.execute(f"CREATE TABLE s{part} AS SELECT * FROM p{part} ORDER BY place, rowid")
            self.db.execute(f"DROP TABLE p{part}")
            self.db.execute(f"ALTER TABLE s{part} RENAME TO p{part}")
        self.db.commit()
        return SpooledActions(self.db, self.count, self.names, self.rules)


def _part(row: tuple[Any, ...]) -> int:
    return int(row[0])


def _place(entry: tuple[int, list[PlannedAction]]) -> int:
    return entry[0]


class SpooledActions(Sequence[PlannedAction]):
    """A plan's actions read back from the spool's database, a block at a
    time: iterating decodes each line afresh (no two passes share objects,
    so nothing may key on an action's identity); ``lines()`` gives the JSON
    lines themselves, as ``Plan.write`` writes them."""

    def __init__(
        self, db: sqlite3.Connection, parts: int, names: Counter[str], rules: Counter[str]
    ) -> None:
        self.db = db
        self.sizes = [
            int(db.execute(f"SELECT COUNT(*) FROM p{part}").fetchone()[0]) for part in range(parts)
        ]
        self.names, self.rules = names, rules
        self._items: int | None = None

    def __len__(self) -> int:
        return sum(self.sizes)

    def lines(self) -> Iterator[str]:
        for part, size in enumerate(self.sizes):
            if not size:
                continue
            cursor = self.db.execute(f"SELECT line FROM p{part} ORDER BY rowid")
            while block := cursor.fetchmany(BLOCK):
                for (line,) in block:
                    yield line

    def __iter__(self) -> Iterator[PlannedAction]:
        return map(decode, self.lines())

    @overload
    def __getitem__(self, index: int) -> PlannedAction: ...
    @overload
    def __getitem__(self, index: slice) -> list[PlannedAction]: ...
    def __getitem__(self, index: int | slice) -> PlannedAction | list[PlannedAction]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError("plan action index out of range")
        for part, size in enumerate(self.sizes):
            if index < size:
                (line,) = self.db.execute(
                    f"SELECT line FROM p{part} WHERE rowid = ?", (index + 1,)
                ).fetchone()
                return decode(line)
            index -= size
        raise IndexError("plan action index out of range")  # pragma: no cover

    @property
    def deletes(self) -> int:
        return sum(self.names[name] for name in DESTRUCTIVE)

    def tally(self) -> Tally:
        """What ``Plan.summary`` counts, without reading the actions back."""
        if self._items is None:
            parts = " UNION ALL ".join(
                f"SELECT item FROM p{part}" for part, size in enumerate(self.sizes) if size
            )
            query = f"SELECT COUNT(DISTINCT item) FROM ({parts})" if parts else "SELECT 0"
            self._items = int(self.db.execute(query).fetchone()[0])
        return Tally(self.names, self.rules, self._items, self.deletes)
