"""One item rule acting on the simulated library: the items its ``where``
matches, the sends its actions make on each (changes only: an action that
would change nothing is dropped) and the reasons the plan gives."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any, Protocol, cast

from rulebot.library.item import Item
from rulebot.planning.planned import PlannedAction
from rulebot.planning.simulation import Originals, Simulation
from rulebot.rules.actions import Action
from rulebot.rules.conditions import Where
from rulebot.rules.conditions.base import Env


class RuleLike(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def where(self) -> Where | None: ...
    @property
    def actions(self) -> list[Action]: ...
    @property
    def limit(self) -> int | None: ...
    @property
    def keep_newest(self) -> int | None: ...

    # `grace` (seconds) is optional: read with getattr, so plain test doubles still work


# what a rule did, per item it acted on, in order: the item's id and its actions
Acted = list[tuple[str, list[PlannedAction]]]


def matching(rule: RuleLike, state: Simulation, now: int) -> list[Item]:
    """Live items that match ``where``, oldest first."""
    where = rule.where
    if where is None:
        return [item for item in state.in_order if item is not None]
    return where.select(state.in_order, now)


QuickSelector = Callable[[list[Item | None], int], tuple[int, list[Item]]]


def quick_selector(rule: RuleLike) -> QuickSelector | None:
    """``select(items, now)``: how many live items match the rule's ``where``
    (what the plan reports as matched), and those of them on which some
    action would change something, oldest first: the candidates
    ``plan_item_rule`` acts on, without the ones it would only pass over.

    A nightly plan's rules match many items they have already acted on
    (tagged, archived), and each would cost ``effects`` a call per action
    to find that out; here it is one inline test per item, in the
    comprehension ``Env`` generates for the ``where``. Only for rules whose
    every action says when it changes nothing (``Action.unchanged``); None
    otherwise, and for a ``where`` that looks across the library."""
    where = rule.where
    if where is not None and where.library:
        return None
    env = Env()
    passes = [action.unchanged(env) for action in rule.actions]
    if not passes or None in passes:
        return None
    try:
        true = "True" if where is None else where.truth(env)[0]
        body = (
            f"    found = [i for i in items if i is not None and {true}]\n"
            f"    return len(found), [i for i in found if not ({' and '.join(map(str, passes))})]\n"
        )
        return cast(QuickSelector, env.select_function(body, "<rulebot rule>"))
    except (SyntaxError, RecursionError, MemoryError):  # nested past the parser's limits
        return None  # the general path (``Where.select``) falls back to the reference


def why(rule: RuleLike, item: Item, now: int) -> tuple[str, ...]:
    """The reasons, built only for items that get an action (strings cost).

    Interned: most items of a rule share them ("tag read-later", "status
    unread"), and a first run can plan 100k+ actions."""
    if rule.where is None:
        return ("every item (no where)",)
    fixed = rule.where.fixed  # the same for every item the rule matches
    if fixed is not None:
        return fixed
    return tuple(map(sys.intern, rule.where.because(item, now)))


def plan_item_rule(
    rule: RuleLike,
    candidates: list[Item],
    limit: int | None,
    state: Simulation,
    original: Originals,
    now: int,
    *,
    keep: bool = True,
) -> Acted:
    """``keep``: set ``keep_newest`` aside here (one pass does it itself)."""
    if keep and rule.keep_newest:
        # candidates are oldest first, so the newest N are the last N
        kept = {item.item_id for item in candidates[-rule.keep_newest :]}
        candidates = [item for item in candidates if item.item_id not in kept]
    acted: Acted = []
    name, actions = rule.name, rule.actions
    for item in candidates:
        if limit is not None and len(acted) >= limit:
            break
        sends, current = effects(actions, item, now)
        if sends:
            ref = original.ref(item)
            reasons_ = why(rule, item, now)
            acted.append(
                (item.item_id, [PlannedAction(name, send, ref, reasons_) for send in sends])
            )
            state.put(current)
    return acted


def effects(actions: Sequence[Action], item: Item, now: int) -> tuple[list[dict[str, Any]], Item]:
    """The sends of ``actions`` on ``item`` in order, and the item afterwards."""
    current = item
    sends = []
    for action in actions:
        if current.is_deleted:
            break
        stepped = action.step(current, now)
        if stepped is None:
            continue
        send, current = stepped
        sends.append(send)
    return sends, current
