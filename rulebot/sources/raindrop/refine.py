"""Raindrop.io's plan refinement (``RaindropSource.refine``), made as the
plan is read: neither the plan nor the library it touches is held (#28).

What it does to the plan: a ``tag_rename`` whose native merge (``PUT
/tags``) would leave a case variant of the new tag beside it becomes
per-item actions (``refining.Replay.per_item``); every other account-wide
tag action says which spellings it names; and each action whose unit goes
in bulk says so (chosen as the applier chooses, ``bulk.change_of``: a unit
that is its bookmark's only one, before every account-wide action, with a
bulk form on the bookmark as the plan found it; and only when two or more
do).

How, with flat memory:

1. The tag actions ask of the library as the plan's earlier actions leave
   it. That is ``_State``: the library as the plan found it (a
   ``refining.Lookup``: the pipeline's reads the store as asked) under the
   items the earlier actions changed, held up to ``cache`` and written out
   past that to a scratch SQLite file, with their tags folded for lookup.
   A tag action reads only the items that carry its tag. Actions after
   the last tag action are not replayed, and a plan without one is not
   rewritten at all.
2. Each item's units are counted in a scratch table (``units.UnitCounts``)
   as the refined plan is written; then the units before the first
   account-wide one are read a block at a time, with their bookmarks, and
   chosen or not. Nothing of the choice depends on the block: a unit's
   count is the whole plan's, its bookmark the plan's.
3. The refined plan is written to a ``planning.spool.Spool``: objects up to
   ``spill`` actions, on disk past that (a plan on disk goes straight back
   there).
"""

from __future__ import annotations

import itertools
import json
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import fields, replace
from typing import TYPE_CHECKING

from rulebot.library.item import NO_EXTRA, Item
from rulebot.planning.spool import SPILL, Spool, SpooledActions
from rulebot.rules.actions import from_send
from rulebot.rules.capabilities import RAINDROP
from rulebot.sources.raindrop.bulk import change_of
from rulebot.sources.refining import Lookup, Replay
from rulebot.sources.units import Unit, UnitCounts, units_in

if TYPE_CHECKING:
    from rulebot.planning.plan import Plan, PlannedAction

FOLD = RAINDROP.fold  # the tag list groups case variants; each bookmark keeps its spelling
TAG_ACTIONS = ("tag_rename", "tag_delete")
BLOCK = 1000  # actions (or units) read together, their bookmarks looked up at once
CACHE = 5_000  # changed bookmarks the replay holds before it writes them out
IN_BULK = "in bulk: PUT/DELETE /raindrops/{collection} with up to 100 bookmarks a request"

Moves = Callable[[str, Item], int | None]


def spellings(name: str, items: Iterable[Item]) -> list[str]:
    """``name`` and every spelling of it the items carry: what a ``PUT``/``DELETE
    /tags`` names, so it works whether the service matches names exactly or
    case-insensitively (unconfirmed)."""
    found = {t for item in items for t in item.tags or () if FOLD(t) == FOLD(name)}
    return sorted(found | {name})


def native_rename(item: Item, names: list[str], new: str) -> tuple[str, ...]:
    """An item's tags after ``PUT /tags {"tags": names, "replace": new}``."""
    renamed = [new if tag in names else tag for tag in item.tags or ()]
    return tuple(sorted(dict.fromkeys(renamed), key=str.casefold))


def refined_plan(
    plan: Plan,
    library: Lookup,
    moves: Moves,
    *,
    block: int = BLOCK,
    cache: int = CACHE,
    spill: int | None = None,
) -> Plan:
    """``plan`` as Raindrop.io will carry it out (the module's docstring);
    ``plan`` itself when nothing in it changes. ``moves``: where
    ``archive``/``readd`` moves a bookmark (``LookupError``: not known).
    ``spill``: the actions held as objects before the refined plan goes to
    disk; by default none for a plan on disk already, else ``spool.SPILL``."""
    block = max(1, block)
    if spill is None:
        spill = 0 if isinstance(plan.actions, SpooledActions) else SPILL
    last = -1  # the last tag action: the replay stops there
    for index, planned in enumerate(plan.actions):
        if planned.name in TAG_ACTIONS:
            last = index
    refined: Sequence[PlannedAction] = plan.actions
    spool: Spool | None = None
    if last >= 0:
        spool = Spool(1, spill, places_are_items=False)
        with _State(library, cache) as state:
            stream = _refined(plan.actions, state, last, block)
            counts = UnitCounts(units_in(enumerate(_spooled(stream, spool))))
        refined = spool.finish()
    else:
        counts = UnitCounts(units_in(enumerate(refined)))
    with counts:
        choice = _Choice(counts, library, moves, block)
        if not choice.any(units_in(enumerate(refined))):
            return plan if spool is None else replace(plan, actions=refined)
        out = Spool(1, spill, places_are_items=False)
        place = 0
        for unit, chosen in choice.each(units_in(enumerate(refined))):
            actions = [p for _, p in unit]
            if chosen:
                actions = [replace(p, reasons=(*p.reasons, IN_BULK)) for p in actions]
            out.add(0, place, actions)
            place += len(actions)
    marked = out.finish()
    items = getattr(plan.actions, "items", None)
    if spool is None and isinstance(marked, SpooledActions) and isinstance(items, int):
        marked.items = items  # the same items: not counted again by reading it back
    return replace(plan, actions=marked)


def _spooled(actions: Iterable[PlannedAction], spool: Spool) -> Iterator[PlannedAction]:
    """``actions`` as they are read, each written to ``spool`` first."""
    for place, planned in enumerate(actions):
        spool.add(0, place, [planned])
        yield planned


def _refined(
    actions: Iterable[PlannedAction], state: _State, last: int, block: int
) -> Iterator[PlannedAction]:
    """The plan's actions with its tag actions refined, each asked of
    ``state``: the library as the actions before it leave it. ``last``: the
    index of the last tag action (nothing after it is replayed)."""
    numbered = enumerate(actions)
    while chunk := list(itertools.islice(numbered, block)):
        replayed = [p for i, p in chunk if i < last and p.item_id is not None]
        state.load(str(p.item_id) for p in replayed)
        for index, planned in chunk:
            if planned.name in TAG_ACTIONS:
                yield from _tag_action(planned, state)
            elif index < last:
                yield planned
                state.replay(planned)
            else:
                yield planned
        state.trim()


def _tag_action(planned: PlannedAction, state: _State) -> list[PlannedAction]:
    """A ``tag_rename``/``tag_delete`` as Raindrop.io will carry it out, and
    ``state`` moved on past it."""
    old = str(planned.send.get("old_tag") or planned.send.get("tag"))
    around = state.carrying(old)  # all the action can read or change
    replay = Replay(state.library.get_many(around), FOLD, state=around)
    names = spellings(old, around.values())
    if planned.name == "tag_rename" and not _native_exact(planned, replay, names):
        why = (
            f"tag_rename {old} → {planned.send['new_tag']} per item: Raindrop.io's "
            "merge would keep a case variant of the new tag beside it"
        )
        actions = replay.per_item(planned, why)
    else:
        verb = "PUT /tags merges" if planned.name == "tag_rename" else "DELETE /tags removes"
        said = f"one request for every collection: {verb} {', '.join(map(repr, names))}"
        actions = [replace(planned, reasons=(*planned.reasons, said))]
        replay.replay(planned)
    for item_id, item in replay.state.items():
        if around[item_id] is not item:
            state.put(item)
    return actions


def _native_exact(planned: PlannedAction, replay: Replay, names: list[str]) -> bool:
    """Whether the native rename leaves every item as the action itself does."""
    new = str(planned.send["new_tag"])
    when = int(planned.send.get("time") or 0)
    effect = from_send(planned.send, FOLD).on_library(replay.state, set(), when)
    for after in effect.changed if effect is not None else ():
        before = replay.state[after.item_id]
        wanted = tuple(sorted(after.tags or (), key=str.casefold))
        if native_rename(before, names, new) != wanted:
            return False
    return True


class _State:
    """The library as a plan's actions so far leave it, held in part: the
    bookmarks the actions changed, the last ``cache`` of them in ``items``
    and every one in a scratch SQLite file (written out before a tag
    action asks, or when more are held), with each live one's tags folded
    (``FOLD``) to find those with a tag; every other bookmark is the
    library's, as the plan found it."""

    def __init__(self, library: Lookup, cache: int) -> None:
        self.library, self.cache = library, max(1, cache)
        self.items: dict[str, Item | None] = {}  # held, changed or not (None: not there)
        self.dirty: set[str] = set()  # changed since the last write-out
        self.conn = sqlite3.connect("", isolation_level=None)  # a private temporary file
        self.conn.execute("CREATE TABLE items (item_id TEXT PRIMARY KEY, item TEXT NOT NULL)")
        self.conn.execute("CREATE TABLE tags (tag TEXT NOT NULL, item_id TEXT NOT NULL)")
        self.conn.execute("CREATE INDEX tags_tag ON tags(tag)")
        self.conn.execute("CREATE INDEX tags_item ON tags(item_id)")

    def __enter__(self) -> _State:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.conn.close()

    def load(self, item_ids: Iterable[str]) -> None:
        """Hold the bookmarks ``item_ids`` name, as the actions so far leave them."""
        wanted = [i for i in dict.fromkeys(item_ids) if i not in self.items]
        written = self._written(wanted)
        self.items.update(written)
        rest = [i for i in wanted if i not in written]
        found = self.library.get_many(rest) if rest else {}
        self.items.update((i, found.get(i)) for i in rest)

    def _written(self, item_ids: list[str]) -> dict[str, Item]:
        found: dict[str, Item] = {}
        for start in range(0, len(item_ids), 900):  # under SQLite's variable limit
            part = item_ids[start : start + 900]
            rows = self.conn.execute(
                f"SELECT item_id, item FROM items WHERE item_id IN ({','.join('?' * len(part))})",
                part,
            )
            found.update((item_id, _loaded(text)) for item_id, text in rows)
        return found

    def replay(self, planned: PlannedAction) -> None:
        """What the item action ``planned`` does to its bookmark (held: ``load``)."""
        current = self.items.get(str(planned.item_id))
        if current is None:
            from_send(planned.send, FOLD)  # what it is, asked all the same
            return
        effect = from_send(planned.send, FOLD).on_item(current, int(planned.send.get("time") or 0))
        for item in effect.changed if effect is not None else ():
            self.put(item)

    def put(self, item: Item) -> None:
        self.items[item.item_id] = item
        self.dirty.add(item.item_id)

    def carrying(self, tag: str) -> dict[str, Item]:
        """The live bookmarks with ``tag`` (by ``FOLD``), as the actions so far
        leave them, by id."""
        self.flush()  # so the lookups below see every change
        folded = FOLD(tag)
        changed = [
            row[0] for row in self.conn.execute("SELECT item_id FROM tags WHERE tag = ?", (folded,))
        ]
        # a bookmark the actions changed is read as they left it (``load``),
        # whatever the library says of its tags
        wanted = [*changed, *self.library.ids_tagged(tag)]
        self.load(wanted)
        found: dict[str, Item] = {}
        for item_id in wanted:
            item = self.items.get(item_id)
            if item is not None and not item.is_deleted and folded in item.tag_set(FOLD):
                found[item_id] = item
        return found

    def flush(self) -> None:
        """Write the changed bookmarks out (their folded tags, if live)."""
        if not self.dirty:
            return
        changed = [item for i in self.dirty if (item := self.items.get(i)) is not None]
        ids = [(item.item_id,) for item in changed]
        self.conn.execute("BEGIN")
        self.conn.executemany(
            "INSERT OR REPLACE INTO items VALUES (?, ?)",
            ((item.item_id, _dumped(item)) for item in changed),
        )
        self.conn.executemany("DELETE FROM tags WHERE item_id = ?", ids)
        self.conn.executemany(
            "INSERT INTO tags VALUES (?, ?)",
            (
                (tag, item.item_id)
                for item in changed
                if not item.is_deleted
                for tag in item.tag_set(FOLD)
            ),
        )
        self.conn.execute("COMMIT")
        self.dirty.clear()

    def trim(self) -> None:
        if len(self.items) > self.cache:
            self.flush()
            self.items.clear()


_FIELDS = [f.name for f in fields(Item) if f.name != "extra"]


def _dumped(item: Item) -> str:
    """``item`` for the scratch file, as JSON (every field is a JSON value;
    ``extra`` came from a service's JSON)."""
    return json.dumps([[getattr(item, name) for name in _FIELDS], dict(item.extra)])


def _loaded(text: str) -> Item:
    values, extra = json.loads(text)
    found = dict(zip(_FIELDS, values, strict=True))
    if found["tags"] is not None:
        found["tags"] = tuple(found["tags"])
    return Item(**found, extra=extra or NO_EXTRA)


class _Choice:
    """Which units go in bulk: a unit chosen by ``bulk.change_of`` on its
    bookmark as the plan found it, if it is its bookmark's only unit
    (``counts``) and no account-wide unit came before it; read a block of
    units at a time."""

    def __init__(self, counts: UnitCounts, library: Lookup, moves: Moves, block: int) -> None:
        self.counts, self.library, self.moves, self.block = counts, library, moves, block

    def each(self, units: Iterable[Unit], *, head: bool = False) -> Iterator[tuple[Unit, bool]]:
        """Every unit, with whether it is chosen (``head``: only those before
        the first account-wide unit)."""
        stream = iter(units)
        wide = False  # an account-wide unit was read: nothing after it is chosen
        while chunk := list(itertools.islice(stream, self.block)):
            if wide:
                if head:
                    return
                yield from ((unit, False) for unit in chunk)
                continue
            items = list(itertools.takewhile(lambda unit: unit[0][1].item_id is not None, chunk))
            wide = len(items) < len(chunk)
            ids = [str(unit[0][1].item_id) for unit in items]
            several = self.counts.several(ids)
            current = self.library.get_many(ids)
            for unit, item_id in zip(items, ids, strict=True):
                planned = [p for _, p in unit]
                chosen = item_id not in several and (
                    change_of(planned, current.get(item_id), FOLD, self.moves) is not None
                )
                yield unit, chosen
            if not head:
                yield from ((unit, False) for unit in chunk[len(items) :])

    def any(self, units: Iterable[Unit]) -> bool:
        """Whether any unit goes in bulk: two or more are chosen (one goes
        alone: its own request costs the same)."""
        chosen = (unit for unit, chosen in self.each(units, head=True) if chosen)
        return len(list(itertools.islice(chosen, 2))) == 2
