"""The local library's apply: one SQLite transaction, journaled.

``apply_local`` is the one place that changes the local library. Each action
is carried out by ``screening.apply_one`` on the items it names, read from the
store a block at a time and written back inside the transaction, so a run's
memory is neither its plan nor the library.
"""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from rulebot.bulk import gc_paused
from rulebot.library.item import Item
from rulebot.library.journal import JournalRow
from rulebot.library.tagcase import Fold
from rulebot.planning.plan import Outcomes, Plan, PlannedAction, Result
from rulebot.planning.planner import Urls
from rulebot.rules.capabilities import plan_fold
from rulebot.rules.vocab import VocabError
from rulebot.sources.screening import (
    Seen,
    _account_wide_done,
    _changed_since,
    apply_one,
    touchable_ids,
)

if TYPE_CHECKING:
    from rulebot.library.store import Store


def apply_local(
    store: Store, plan: Plan, *, check_stale: bool = True, cache: int = 100_000
) -> Result:
    """Apply a plan to the local library in one transaction.

    With ``check_stale``, an action whose item changed since the plan was
    made (its ``time_updated`` differs, or it is gone) is skipped and
    reported; everything else is applied. All or nothing: the journal and
    the items are written in the same transaction.

    One pass over the plan (which may be read back from disk) applies each
    action and hands its journal row (the state of what it touched just
    before, for ``undo``, and its final state) to SQLite as it is made.
    Items are read from the store a block of actions at a time and written
    back, inside the transaction, whenever ``cache`` items are held: a
    run's memory is neither its plan nor the library (#17).
    """
    with gc_paused():  # an item copy and a journal row per action: all acyclic
        return _apply_local(store, plan, check_stale=check_stale, cache=cache)


def _apply_local(store: Store, plan: Plan, *, check_stale: bool, cache: int) -> Result:
    # a plan on disk gives its item actions item by item between account-wide
    # ones (``SpooledActions.by_item``): the same library, each item met once
    by_item = getattr(plan.actions, "by_item", None)
    outcomes = Outcomes(plan.actions, by_index=True)
    with store.transaction() as conn:
        work = _Working(store, conn, cache, check_stale, plan_fold(plan.source))

        def rows() -> Iterator[JournalRow]:
            numbered = by_item() if by_item is not None else enumerate(plan.actions)
            size = max(1, min(cache, 1000))  # actions whose items are read together
            while block := list(itertools.islice(numbered, size)):
                work.load(planned for _, planned in block)
                for index, planned in block:
                    yield _apply_planned(index, planned, work, outcomes, check_stale)
                work.trim()

        run_id = store.journal_record("apply-local", rows(), conn, source=plan.source)
        if not outcomes.complete():  # every action once: nothing else may be committed
            raise RuntimeError("a local apply missed actions of its plan")
        work.flush()
        status = "partial" if outcomes.count("failed") else "ok"
        store.journal_finish(run_id, status, conn)
    return Result(outcomes=outcomes, started_at=plan.created_at, source=plan.source)


def _apply_planned(
    index: int, planned: PlannedAction, work: _Working, outcomes: Outcomes, check_stale: bool
) -> JournalRow:
    """One action applied to the working library: its journal row."""
    # an account-wide action (and an add) asks about the library as this apply
    # left it so far, as the planner asked of its simulated library: a plan
    # that deletes an item and then adds its URL adds it
    library = work.items if planned.item is not None else work.around(planned)
    problem = None
    if check_stale:
        if planned.item is None:
            problem = _account_wide_done(planned, library, work.fold)
        else:
            problem = _changed_since(planned, work.original.get(str(planned.item.get("item_id"))))
    if problem:
        outcomes.put(index, "skipped", problem)
        return JournalRow(planned.to_json(), None, "skipped", problem, index)
    try:
        was = apply_one(planned, library, Urls(library), work.fold, work.dirty, work)
    except (KeyError, ValueError, TypeError, VocabError, NotImplementedError) as err:
        error = f"cannot apply: {err}"
        outcomes.put(index, "failed", error)
        return JournalRow(planned.to_json(), None, "failed", error, index)
    if library is not work.items:
        work.items.update(library)
    outcomes.put(index, "succeeded")
    return JournalRow(planned.to_json(), was, "confirmed", None, index)


class _Working:
    """The library as a local apply has left it so far, held in part: items
    are read from the store when a block of actions names them, and written
    back (inside the apply's transaction) when more than ``limit`` are held.

    ``original``: each item as the apply found it (``Seen``; None: not in
    the library), for the stale check; ``gone``: ids this apply
    deleted, which a new item must not take (as the whole library would
    keep them). As ``Container``: whether an id is in use."""

    def __init__(
        self, store: Store, conn: sqlite3.Connection, limit: int, stale: bool, fold: Fold
    ) -> None:
        self.store, self.conn, self.limit, self.stale = store, conn, limit, stale
        self.fold = fold  # how the library compares tags, as the plan did
        self.items: dict[str, Item] = {}
        self.dirty: set[str] = set()
        self.original: dict[str, Seen | None] = {}
        self.gone: set[str] = set()

    def load(self, actions: Iterable[PlannedAction]) -> None:
        """Read the items these item actions name that are not held yet."""
        wanted = {
            str(item_id)
            for action in actions
            if action.item is not None and (item_id := action.send.get("item_id")) is not None
        }
        self._read(wanted)

    def _read(self, ids: Iterable[str]) -> None:
        ids = [item_id for item_id in ids if item_id not in self.items]
        if not ids:
            return
        found = self.store.get_many(ids)
        self.items.update(found)
        if self.stale:
            for item_id in ids:
                if item_id not in self.original:
                    item = found.get(item_id)
                    self.original[item_id] = None if item is None else Seen.of(item)

    def around(self, planned: PlannedAction) -> dict[str, Item]:
        """The items an account-wide action can read or change (``touchable``),
        as this apply left them: written back first, so the store's tag and
        URL lookups see this apply's changes."""
        self.flush()
        ids = set(touchable_ids(self.store, [planned]))
        self._read(ids)
        return {item_id: self.items[item_id] for item_id in ids if item_id in self.items}

    def __contains__(self, item_id: object) -> bool:
        if item_id in self.items or item_id in self.gone:
            return True
        stored = self.store.get(str(item_id))
        return stored is not None and not stored.is_deleted

    def flush(self) -> None:
        """Write the changed items back (deleted ones out of the store)."""
        if not self.dirty:
            return
        changed = [self.items[item_id] for item_id in self.dirty if item_id in self.items]
        self.store.upsert([item for item in changed if not item.is_deleted], self.conn)
        deleted = [item.item_id for item in changed if item.is_deleted]
        self.store.delete(deleted, self.conn)
        self.gone.update(deleted)
        self.dirty.clear()

    def trim(self) -> None:
        if len(self.items) > self.limit:
            self.flush()
            self.items.clear()
