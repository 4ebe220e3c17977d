"""A server apply's screening and journal, a block of actions at a time.

``screening.screen`` and ``states.before_states`` answer their questions of
the whole touchable library held as a dict, walked in plan order on two
copies: one as the sends leave it (what is sent, what is skipped and why),
one as every action leaves it (what ``undo`` restores). ``screened_rows``
asks the same questions with neither held: each copy is a ``_Sim``, the
mirror as the store has it (never written here: the mirror changes only
when the server confirms) under a scratch store of what the copy changed,
read a block of actions at a time and written out whenever more than
``cache`` items are held, as the local apply does (``sources.local.apply``).

The rows come in the order ``SpooledActions.by_item`` gives (the same
libraries: item actions change only their own item), each with its plan
index; what is sent is marked in ``queued``, what is skipped is put in
``outcomes``.
"""

from __future__ import annotations

import contextlib
import itertools
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rulebot.library.journal import JournalRow
from rulebot.library.store import Store
from rulebot.library.tagcase import Fold
from rulebot.planning.plan import Outcomes, Plan, PlannedAction
from rulebot.planning.planner import Urls
from rulebot.planning.states import item_state
from rulebot.rules.actions import from_send
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
    from rulebot.library.item import Item

# errors an action rulebot cannot simulate raises: it is sent as planned
UNKNOWN = (KeyError, ValueError, TypeError, VocabError, NotImplementedError)
_NO_URLS: frozenset[str] = frozenset()  # the only account-wide action that reads them is add


def screened_rows(
    store: Store,
    plan: Plan,
    outcomes: Outcomes,
    queued: bytearray,
    *,
    check_stale: bool,
    cache: int,
) -> Iterator[JournalRow]:
    """Each action's journal row: ``planned`` with its before-state, or
    ``skipped`` with why (``screening.screen``'s answer, put in ``outcomes``
    too); a sent action gets a 1 in ``queued``."""
    fold = plan_fold(plan.source)
    by_item = getattr(plan.actions, "by_item", None)
    numbered = by_item() if by_item is not None else enumerate(plan.actions)
    size = max(1, min(cache, 1000))  # actions whose items are read together
    with _scratch() as (sent_side, all_side):
        sent = _Sim(store, sent_side, cache, check_stale, fold)  # as the sends leave it
        every = _Sim(store, all_side, cache, False, fold)  # as every action leaves it
        while block := list(itertools.islice(numbered, size)):
            sent.load(planned for _, planned in block)
            every.load(planned for _, planned in block)
            for index, planned in block:
                before = _before_state(planned, every)
                problem = _screen_one(planned, sent, check_stale)
                if problem:
                    outcomes.put(index, "skipped", problem)
                    yield JournalRow(planned.to_json(), before, "skipped", problem, index)
                    continue
                queued[index] = 1
                yield JournalRow(planned.to_json(), before, "planned", None, index)
            sent.trim()
            every.trim()


@contextlib.contextmanager
def _scratch() -> Iterator[tuple[Store, Store]]:
    """Two scratch stores in a private temporary directory, gone after."""
    with tempfile.TemporaryDirectory(prefix="rulebot-screen-") as tmp:
        one = Store.open(Path(tmp) / "sent.db")
        two = Store.open(Path(tmp) / "every.db")
        try:
            with one.bulk_load(), two.bulk_load():  # scratch: no fsync per write-out
                yield one, two
        finally:
            one.close()
            two.close()


def _screen_one(planned: PlannedAction, sim: _Sim, check_stale: bool) -> str | None:
    """Why ``planned`` is skipped (``screening.screen``), or None: then it is
    carried out on ``sim``, for the questions of the actions after it."""
    library = sim.items if planned.item is not None else sim.around(planned)
    problem = None
    if check_stale:
        if planned.item is None:
            problem = _account_wide_done(planned, library, sim.fold)
        else:
            problem = _changed_since(planned, sim.original.get(str(planned.item.get("item_id"))))
    if problem is None and planned.name == "add" and planned.send.get("url") in Urls(library):
        problem = "already done: an item with this URL is saved"
    if problem:
        return problem
    # an action rulebot cannot simulate is sent as planned, and the server decides
    with contextlib.suppress(*UNKNOWN):
        apply_one(planned, library, Urls(library), sim.fold, sim.dirty, sim)
    if library is not sim.items:
        sim.items.update(library)
    return None


def _before_state(planned: PlannedAction, sim: _Sim) -> dict[str, Any]:
    """``states.before_states``'s entry for ``planned``, walked on ``sim``:
    every action is carried out (the skipped ones too), adds create nothing."""
    when = int(planned.send.get("time") or 0)
    try:
        action = from_send(planned.send, sim.fold)
        if action.account_wide:
            library = sim.around(planned)
            effect = action.on_library(library, _NO_URLS, when)
            changed = effect.changed if effect else []
            record: dict[str, Any] = {"items": [item_state(library[c.item_id]) for c in changed]}
            for item in changed:
                sim.put(item)
            return record
        current = sim.items.get(str(planned.send.get("item_id")))
        if current is None:
            return {"item": None}
        record = {"item": item_state(current, action.name)}
        item_effect = action.on_item(current, when)
        if item_effect is not None:
            sim.put(item_effect.changed[0])
        return record
    except UNKNOWN:
        return {"item": None}  # an action rulebot does not know: not undoable


class _Sim:
    """The touchable library as a plan's actions leave it, held in part: the
    items a block of actions names are read (from ``side``, where this
    simulation wrote what it changed, else from the mirror ``store``), and
    written to ``side`` when more than ``limit`` are held. An item the
    simulation deleted stays, deleted, as in the dict it stands for.

    ``original``: each item as the apply found it (``Seen``; None: not in the
    library), for the stale check. As a ``Container``: whether an id is taken."""

    def __init__(self, store: Store, side: Store, limit: int, stale: bool, fold: Fold) -> None:
        self.store, self.side, self.limit, self.stale = store, side, limit, stale
        self.fold = fold  # how the library compares tags, as the plan did
        self.items: dict[str, Item] = {}
        self.dirty: set[str] = set()
        self.original: dict[str, Seen | None] = {}

    def load(self, actions: Iterable[PlannedAction]) -> None:
        """Read the items these actions name that are not held yet."""
        wanted: set[str] = set()
        for action in actions:
            if (item_id := action.send.get("item_id")) is not None:
                wanted.add(str(item_id))
            if self.stale and action.item is not None and action.item.get("item_id") is not None:
                wanted.add(str(action.item["item_id"]))
        self._read(wanted)

    def _read(self, ids: Iterable[str]) -> None:
        ids = [item_id for item_id in ids if item_id not in self.items]
        if not ids:
            return
        written = self.side.get_many(ids, include_deleted=True)
        rest = [item_id for item_id in ids if item_id not in written]
        found = self.store.get_many(rest) if rest else {}
        self.items.update(written)
        self.items.update(found)
        if self.stale:
            for item_id in rest:  # never changed here: as the apply found it
                if item_id not in self.original:
                    item = found.get(item_id)
                    self.original[item_id] = None if item is None else Seen.of(item)

    def put(self, item: Item) -> None:
        self.items[item.item_id] = item
        self.dirty.add(item.item_id)

    def around(self, planned: PlannedAction) -> dict[str, Item]:
        """The items an account-wide action can read or change (``touchable``),
        as this simulation left them, by id."""
        self.flush()  # so the lookups below see what it changed
        ids = sorted(set(touchable_ids(self, [planned])))
        self._read(ids)
        return {item_id: self.items[item_id] for item_id in ids if item_id in self.items}

    # ``touchable_ids`` asks these of the library as this simulation left it
    def ids_tagged(self, tag: str) -> list[str]:
        return self._merged(self.store.ids_tagged(tag), self.side.ids_tagged(tag))

    def ids_with_url(self, url: str) -> list[str]:
        return self._merged(self.store.ids_with_url(url), self.side.ids_with_url(url))

    def _merged(self, mirrored: list[str], written: list[str]) -> list[str]:
        changed = self.side.known_ids(mirrored)
        return [item_id for item_id in mirrored if item_id not in changed] + written

    def __contains__(self, item_id: object) -> bool:
        if item_id in self.items or self.side.known_ids([str(item_id)]):
            return True
        stored = self.store.get(str(item_id))
        return stored is not None and not stored.is_deleted

    def flush(self) -> None:
        """Write the changed items to ``side`` (deleted ones too)."""
        if self.dirty:
            self.side.upsert([self.items[i] for i in self.dirty if i in self.items])
            self.dirty.clear()

    def trim(self) -> None:
        if len(self.items) > self.limit:
            self.flush()
            self.items.clear()
