"""Raindrop.io's plan refinement as it was before #28 made it flat: the
whole plan held as a list, replayed over a copy of the library, and the
bulk choice made over that list. tests/test_raindrop_refine.py holds the
streamed refinement (``rulebot.sources.raindrop.refine``) to it. The code
below is ``RaindropSource.refine``, ``_native_exact`` and ``bulk.bulk_units``
as they were, unchanged but for their names."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

from rulebot.library.item import Item
from rulebot.library.tagcase import Fold
from rulebot.planning.plan import Plan, PlannedAction
from rulebot.rules.actions import from_send
from rulebot.sources.applier import Unit
from rulebot.sources.raindrop.bulk import change_of
from rulebot.sources.raindrop.refine import FOLD, native_rename, spellings
from rulebot.sources.refining import Replay
from rulebot.sources.units import units_of

Moves = Callable[[str, Item], int | None]


def legacy_refine(plan: Plan, library: Mapping[str, Item], moves: Moves) -> Plan:
    actions: list[PlannedAction] = []
    replay = Replay(library, FOLD)
    for planned in plan.actions:
        if planned.name in ("tag_rename", "tag_delete"):
            old = str(planned.send.get("old_tag") or planned.send.get("tag"))
            names = spellings(old, (i for i in replay.state.values() if not i.is_deleted))
            if planned.name == "tag_rename" and not _native_exact(planned, replay, names):
                why = (
                    f"tag_rename {old} → {planned.send['new_tag']} per item: Raindrop.io's "
                    "merge would keep a case variant of the new tag beside it"
                )
                actions.extend(replay.per_item(planned, why))
                continue
            verb = "PUT /tags merges" if planned.name == "tag_rename" else "DELETE /tags removes"
            said = f"one request for every collection: {verb} {', '.join(map(repr, names))}"
            planned = replace(planned, reasons=(*planned.reasons, said))
        actions.append(planned)
        replay.replay(planned)
    chosen = bulk_units(actions, library, FOLD, moves)
    if chosen:
        said = "in bulk: PUT/DELETE /raindrops/{collection} with up to 100 bookmarks a request"
        actions = [
            replace(p, reasons=(*p.reasons, said)) if i in chosen else p
            for i, p in enumerate(actions)
        ]
    if actions == list(plan.actions):
        return plan
    return replace(plan, actions=actions)


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


def bulk_units(
    actions: Sequence[PlannedAction],
    library: Mapping[str, Item],
    fold: Fold,
    moves: Moves,
) -> set[int]:
    """The positions in ``actions`` that an apply sends in bulk, chosen as the
    applier chooses (``sources.applier._apply_bulk``), for the plan's reasons."""
    units = units_of(list(enumerate(actions)))
    per_item: dict[str, int] = {}
    for unit in units:
        item_id = unit[0][1].item_id
        if item_id is not None:
            per_item[item_id] = per_item.get(item_id, 0) + 1
    chosen: list[Unit] = []
    for unit in units:
        item_id = unit[0][1].item_id
        if item_id is None:
            break  # nothing after an account-wide action goes in bulk
        current = library.get(item_id)
        planned = [p for _, p in unit]
        if per_item[item_id] == 1 and change_of(planned, current, fold, moves) is not None:
            chosen.append(unit)
    if len(chosen) < 2:
        return set()
    return {index for unit in chosen for index, _ in unit}
