"""A plan's units, as the server applier sends them (``sources.applier``).

A unit is one rule's consecutive actions on one item (they travel
together), or one account-wide action. ``plan_units`` makes them as a plan
is read (a spooled plan a block at a time); ``UnitCounts`` says which items
have more than one, without holding a count per item.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING

from rulebot.planning.plan import PlannedAction

if TYPE_CHECKING:
    from rulebot.planning.plan import Plan

Unit = list[tuple[int, PlannedAction]]

__all__ = ["Unit", "UnitCounts", "plan_units", "units_in", "units_of"]


def units_of(queue: Sequence[tuple[int, PlannedAction]]) -> list[Unit]:
    return list(_grouped(queue))


def units_in(queue: Iterable[tuple[int, PlannedAction]]) -> Iterator[Unit]:
    """``units_of``, made as ``queue`` is read."""
    return _grouped(queue)


def plan_units(plan: Plan, queued: bytearray) -> Iterator[Unit]:
    """The units of the actions marked in ``queued``, in plan order
    (``units_of`` of them), made as the plan is read."""
    numbered = enumerate(plan.actions)
    return _grouped((index, planned) for index, planned in numbered if queued[index])


def _grouped(queue: Iterable[tuple[int, PlannedAction]]) -> Iterator[Unit]:
    unit: Unit = []
    for entry in queue:
        planned = entry[1]
        last = unit[-1][1] if unit else None
        if (
            last is not None
            and planned.item_id is not None
            and (last.rule, last.item_id) == (planned.rule, planned.item_id)
        ):
            unit.append(entry)
            continue
        if unit:
            yield unit
        unit = [entry]
    if unit:
        yield unit


class UnitCounts:
    """How many units each item has in a plan, in a scratch SQLite file (a
    first run's 100k items would be a dict as large): ``several`` names
    those of some items that have more than one."""

    def __init__(self, units: Iterable[Unit]) -> None:
        self.conn = sqlite3.connect("", isolation_level=None)  # a private temporary file
        self.conn.execute("CREATE TABLE units (item_id TEXT NOT NULL)")
        self.conn.execute("BEGIN")
        self.conn.executemany(
            "INSERT INTO units VALUES (?)",
            ((unit[0][1].item_id,) for unit in units if unit[0][1].item_id is not None),
        )
        self.conn.execute("COMMIT")
        self.conn.execute("CREATE INDEX units_item ON units(item_id)")

    def several(self, item_ids: Iterable[str | None]) -> set[str]:
        wanted = list({item_id for item_id in item_ids if item_id is not None})
        found: set[str] = set()
        for start in range(0, len(wanted), 900):  # under SQLite's variable limit
            part = wanted[start : start + 900]
            found.update(
                row[0]
                for row in self.conn.execute(
                    f"SELECT item_id FROM units WHERE item_id IN ({','.join('?' * len(part))})"
                    " GROUP BY item_id HAVING count(*) > 1",
                    part,
                )
            )
        return found

    def __enter__(self) -> UnitCounts:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.conn.close()
