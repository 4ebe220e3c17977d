"""Whether the items table is stored in the planner's order.

A plan reads the whole library oldest first (``Item.sort_key``). Sorting it
in SQLite (``ORDER BY``) costs a fifth of a steady-state plan: every run,
every row goes through a temporary B-tree. When the rows, as SQLite stores
them (rowid order), are already in that order, the pass reads them as
stored and sorts nothing.

The store keeps that fact in ``meta`` (``items_in_order`` = ``1``) and its
writers keep it true or take it away:

- a new row goes after every row there is (the next rowid): the order
  holds while each new row sorts after the last one;
- an updated row keeps its place: the order holds while its ``time_added``
  stays (``item_id`` is the key, and the other columns do not order);
- removing rows never breaks it.

An empty table is in order, so a store that is filled by an import (its
new items written sorted) or by a full sync (``Store.replace_all``, which
writes sorted) starts in order; a store from before this mark sorts, as
before, until one of those rewrites it. The mark is a hint, never trusted
blindly: the reader compares each row with the one before it, and a row
out of place (an older rulebot wrote, or another program did) raises
``OutOfOrder`` before the pass has used it; the pass is then made again
sorted, and the mark is dropped (``pipeline.make_plan``).
"""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from operator import itemgetter
from typing import Any, TypeVar

from rulebot.library.item import Item, sort_key_of
from rulebot.safe import printable

MARK = "items_in_order"
_IDS_PER_QUERY = 500  # SQLite allows 999 parameters on old builds


class OutOfOrder(Exception):
    """The items, read as stored, were not in ``Item.sort_key`` order."""


def state(conn: sqlite3.Connection) -> str | None:
    """``"marked"``: the store says its items are in order; ``"empty"``: it
    has none (so they are); None: they may be in any order."""
    if conn.execute("SELECT 1 FROM meta WHERE key = ? AND value = '1'", (MARK,)).fetchone():
        return "marked"
    return "empty" if conn.execute("SELECT 1 FROM items LIMIT 1").fetchone() is None else None


def set_mark(conn: sqlite3.Connection, in_order: bool) -> None:
    if in_order:
        conn.execute(
            "INSERT INTO meta VALUES (?, '1') ON CONFLICT(key) DO UPDATE SET value = '1'", (MARK,)
        )
    else:
        conn.execute("DELETE FROM meta WHERE key = ?", (MARK,))


def keep_mark(conn: sqlite3.Connection, batch: Sequence[Item], *, all_new: bool) -> None:
    """Before ``batch`` is written (``all_new``: inserted only): keep the
    mark if the items will still be in order, else drop it."""
    if not batch or (now := state(conn)) is None:
        return
    keeps = keeps_order(conn, batch, all_new=all_new)
    if now == "marked" and not keeps:
        set_mark(conn, False)
    elif now == "empty" and keeps:
        set_mark(conn, True)


def _last_item(conn: sqlite3.Connection) -> Item | None:
    """The row stored last (its id and ``time_added``: what orders it)."""
    row = conn.execute(
        "SELECT time_added, item_id FROM items ORDER BY rowid DESC LIMIT 1"
    ).fetchone()
    return None if row is None else Item(row[1], time_added=row[0])


def _stored_times(conn: sqlite3.Connection, item_ids: Sequence[str]) -> dict[str, int]:
    """``time_added`` (0 when unknown) of those of ``item_ids`` stored now."""
    found: dict[str, int] = {}
    for start in range(0, len(item_ids), _IDS_PER_QUERY):
        part = item_ids[start : start + _IDS_PER_QUERY]
        marks = ", ".join("?" * len(part))
        for item_id, added in conn.execute(
            f"SELECT item_id, time_added FROM items WHERE item_id IN ({marks})", part
        ):
            found[item_id] = added or 0
    return found


def keeps_order(conn: sqlite3.Connection, batch: Sequence[Item], *, all_new: bool) -> bool:
    """Whether writing ``batch`` in its order (inserted or updated by id, as
    ``Store.upsert`` does; ``all_new``: only inserts, as ``insert_new``)
    leaves a table that is in order still in order. Ask before writing."""
    if all_new:  # an import's new items: compared by time, whole keys only on a tie
        try:
            in_order(batch, _last_item(conn))
        except OutOfOrder:
            return False
        return True
    last_item = _last_item(conn)
    last = None if last_item is None else last_item.sort_key
    stored = _stored_times(conn, [item.item_id for item in batch])
    for item in batch:
        added = item.time_added or 0
        if item.item_id in stored:
            if stored[item.item_id] != added:
                return False  # it keeps its place, under another key
            continue
        key = (added, *item.sort_key[1:])
        if last is not None and key < last:
            return False
        last = key
        stored[item.item_id] = added  # a second copy in the batch updates it
    return True


_T = TypeVar("_T")


def oldest_first(items: list[Item]) -> None:
    """Sort ``items`` in place by ``Item.sort_key``: by ``time_added`` alone
    (a C-speed key), then items that share a second by the whole key. An
    export's items rarely share one, and the whole key per item costs three
    times as much (0.12 s per 100k)."""
    _by_time(items, _added, _sort_key)


def oldest_rows_first(rows: list[tuple[Any, ...]]) -> None:
    """``oldest_first`` for an export's rows (``export_reader.ExportRow``:
    the id first, ``time_added`` fourth, 0 for never), sorted as their items would be."""
    _by_time(rows, itemgetter(3), _row_key)


def _row_key(row: tuple[Any, ...]) -> tuple[int, int, str]:
    return sort_key_of(row[0], row[3])


def _by_time(
    items: list[_T], added: Callable[[_T], int], whole: Callable[[_T], tuple[int, int, str]]
) -> None:
    items.sort(key=added)
    times = list(map(added, items))
    tied = [k for k, (one, two) in enumerate(itertools.pairwise(times)) if one == two]
    at = 0
    while at < len(tied):  # each run of items sharing a second, by the whole key
        start = end = tied[at]
        at += 1
        while at < len(tied) and tied[at] == end + 1:
            end, at = tied[at], at + 1
        items[start : end + 2] = sorted(items[start : end + 2], key=whole)


def _added(item: Item) -> int:
    return item.time_added or 0


def _sort_key(item: Item) -> tuple[int, int, str]:
    return item.sort_key


def in_order(items: Iterable[Item], last: Item | None) -> Item | None:
    """The last of ``items``, after checking that each sorts after the one
    before it (``last``: the one before the first); ``OutOfOrder`` if not."""
    for item in items:
        if last is not None:
            before, added = last.time_added or 0, item.time_added or 0
            if added < before or (added == before and item.sort_key < last.sort_key):
                # ids another program wrote, shown in a log line: escaped
                raise OutOfOrder(
                    f"item {printable(item.item_id)} is stored after item {printable(last.item_id)}"
                )
        last = item
    return last
