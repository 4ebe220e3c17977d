"""What every source's ``refine`` shares: the library as a plan's earlier
actions leave it, and an account-wide tag action spelled out per item.

Where a service has no native form of an account-wide action (a tag rename
onto an existing tag, a route that takes one exact spelling), ``refine``
replaces it with the per-item ``tags_remove``/``tags_add`` that do the same,
so the dry run is what will be sent. Two things must hold for those:

- they end exactly where the action itself ends (``on_library``, which the
  planner simulated and the mirror follows): every spelling of the old tag
  goes, and the new one is added back where the removal took it too (a
  link tagged ``Dev`` and ``dev``, renamed ``Dev`` → ``dev``, keeps ``dev``);
- each refers to its item *as the plan found it*, as the planner's own
  actions do (``planner.Originals``), never as the plan's earlier actions
  left it: a saved plan's stale check compares that reference with the item
  as the apply finds it, and rulebot's own earlier actions of the same plan
  are not a change from outside.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any, Protocol, runtime_checkable

from rulebot.library.item import Item
from rulebot.library.tagcase import Fold, loose_tag
from rulebot.planning.plan import Plan, PlannedAction
from rulebot.planning.planner import item_ref
from rulebot.rules.actions import from_send
from rulebot.rules.capabilities import Capabilities


@runtime_checkable
class Lookup(Protocol):
    """A library asked about without being held: the items some ids name, the
    ids of the live items with a tag (by ``loose_tag``: at least those any
    source's fold joins). The pipeline's library reads the store for these
    (the ids and tags a plan names); ``lookup`` gives them of any mapping."""

    def get_many(self, item_ids: Iterable[str]) -> dict[str, Item]: ...

    def ids_tagged(self, tag: str) -> list[str]: ...


def lookup(library: Mapping[str, Item]) -> Lookup:
    """``library``'s own lookups when it has them, else the mapping's."""
    return library if isinstance(library, Lookup) else _Held(library)


class _Held:
    """``Lookup`` of a library held as a mapping."""

    def __init__(self, library: Mapping[str, Item]) -> None:
        self.library = library

    def get_many(self, item_ids: Iterable[str]) -> dict[str, Item]:
        library = self.library
        return {item_id: library[item_id] for item_id in item_ids if item_id in library}

    def ids_tagged(self, tag: str) -> list[str]:
        wanted = loose_tag(tag)
        return [
            item.item_id
            for item in self.library.values()
            if not item.is_deleted and any(loose_tag(t) == wanted for t in item.tags or ())
        ]


class Replay:
    """A plan's actions replayed, in order, on the library ``refine`` was given,
    comparing tags by ``fold``: the source's, as the planner compared them."""

    def __init__(
        self,
        library: Mapping[str, Item],
        fold: Fold,
        *,
        state: Mapping[str, Item] | None = None,
    ) -> None:
        self.found = library  # as the plan found it: what references name
        # as the actions so far leave it (``state``: a part of it, replayed elsewhere)
        self.state: dict[str, Item] = dict(library if state is None else state)
        self.fold = fold

    def ref(self, item: Item) -> dict[str, Any]:
        """``item``'s reference in the plan: the item as the plan found it."""
        return item_ref(self.found.get(item.item_id, item))

    def replay(self, planned: PlannedAction) -> None:
        """What ``planned`` does, for the questions of the actions after it."""
        action = from_send(planned.send, self.fold)
        when = int(planned.send.get("time") or 0)
        if action.account_wide:
            effect = action.on_library(self.state, set(), when)
        else:
            current = self.state.get(str(planned.item_id))
            effect = action.on_item(current, when) if current is not None else None
        for item in effect.changed if effect is not None else ():
            self.state[item.item_id] = item

    def per_item(
        self, planned: PlannedAction, why: str, *, add_first: bool = False
    ) -> list[PlannedAction]:
        """``tag_rename``/``tag_delete`` as ``tags_remove`` (every spelling the
        item loses) and ``tags_add`` (what it gains) on each item it changes,
        oldest first; the state moves on as the action itself would move it.
        ``add_first``: the add before the remove (never for a tag the remove
        would take away again)."""
        when = int(planned.send.get("time") or 0)
        effect = from_send(planned.send, self.fold).on_library(self.state, set(), when)
        changed = sorted(effect.changed, key=lambda i: i.sort_key) if effect is not None else []
        result: list[PlannedAction] = []
        for after in changed:
            before = self.state[after.item_id]
            removed, added = _tag_changes(before.tags or (), after.tags or (), self.fold)
            base = {"item_id": after.item_id, "time": when}
            ref = self.ref(before)
            remove = (
                [{"action": "tags_remove", **base, "tags": ",".join(removed)}] if removed else []
            )
            add = [{"action": "tags_add", **base, "tags": ",".join(added)}] if added else []
            regains = {self.fold(t) for t in removed} & {self.fold(t) for t in added}
            sends = [*add, *remove] if add_first and not regains else [*remove, *add]
            result.extend(PlannedAction(planned.rule, send, ref, (why,)) for send in sends)
            self.state[after.item_id] = after
        return result


def _tag_changes(
    before: tuple[str, ...], after: tuple[str, ...], fold: Fold
) -> tuple[list[str], list[str]]:
    """The ``tags_remove`` and ``tags_add`` (which compare by ``fold``) that
    take ``before`` to ``after``: a tag whose spellings differ goes in every
    spelling it had, and comes back in each spelling it has after."""

    def spellings(tags: tuple[str, ...]) -> dict[str, list[str]]:
        grouped: dict[str, list[str]] = {}
        for tag in tags:
            grouped.setdefault(fold(tag), []).append(tag)
        return grouped

    had, has = spellings(before), spellings(after)
    removed = [t for t in before if had[fold(t)] != has.get(fold(t))]
    added = [t for t in after if has[fold(t)] != had.get(fold(t))]
    return list(dict.fromkeys(removed)), list(dict.fromkeys(added))


# the send keys whose tags the service will store (the others name tags it has)
_STORED_KEYS = {"tags_add": "tags", "tags_replace": "tags", "add": "tags", "tag_rename": "new_tag"}


def as_stored(plan: Plan, caps: Capabilities) -> Plan:
    """The plan with each tag the service will store spelled as it will store
    it (Wallabag lower-cases, Karakeep drops a leading ``#`` …), and a reason
    saying so, so the dry run shows what the service will hold. A tag the
    service would drop (nothing left of it) is left out, and said; a tag
    longer than the service may keep is said, not cut."""
    if not caps.stores and caps.tag_chars is None:
        return plan
    # asked of the plan as it is read first: a plan on disk (a first run's
    # 100k+ actions) stays there unless a tag must be spelled otherwise
    if all(_stored(planned, caps) is planned for planned in plan.actions):
        return plan
    return replace(plan, actions=[_stored(planned, caps) for planned in plan.actions])


def _stored(planned: PlannedAction, caps: Capabilities) -> PlannedAction:
    key = _STORED_KEYS.get(planned.name)
    value = planned.send.get(key) if key is not None else None
    if key is None or not isinstance(value, str) or not value:
        return planned
    given = value.split(",") if key == "tags" else [value]
    stored = [caps.stored_tag(tag) for tag in given]
    said: list[str] = []
    changed = {(g, s) for g, s in zip(given, stored, strict=True) if g != s}
    for was, now in sorted(changed):
        said.append(
            f"{caps.name} stores the tag {was!r} as {now!r}"
            if now
            else f"{caps.name} drops the tag {was!r} (nothing is left of it)"
        )
    if caps.tag_chars is not None:
        said.extend(
            f"{caps.name} may keep only the first {caps.tag_chars} characters of {tag!r}"
            for tag in stored
            if len(tag) > caps.tag_chars
        )
    if not said:
        return planned
    kept = [tag for tag in dict.fromkeys(stored) if tag]
    if key != "tags" and not kept:
        return replace(
            planned, reasons=(*planned.reasons, *said)
        )  # a rename onto nothing: as planned
    send = {**planned.send, key: ",".join(kept)}
    return replace(planned, send=send, reasons=(*planned.reasons, *said))
