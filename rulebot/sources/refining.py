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

from collections.abc import Mapping
from typing import Any

from rulebot.library.item import Item
from rulebot.library.tagcase import Fold
from rulebot.planning.plan import PlannedAction
from rulebot.planning.planner import item_ref
from rulebot.rules.actions import from_send


class Replay:
    """A plan's actions replayed, in order, on the library ``refine`` was given,
    comparing tags by ``fold``: the source's, as the planner compared them."""

    def __init__(self, library: Mapping[str, Item], fold: Fold) -> None:
        self.found = library  # as the plan found it: what references name
        self.state: dict[str, Item] = dict(library)  # as the actions so far leave it
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
