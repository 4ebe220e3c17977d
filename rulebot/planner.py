"""The planner: rules × library × now → Plan. Pure: it reads, never writes.

Semantics (design.md, "Planner semantics"):

- rules run in file order, each seeing the library as earlier rules left
  it (a simulated state); a deleted item is gone for later rules;
- actions that would change nothing are dropped, so planning again right
  after a successful apply plans nothing (except what ``limit`` held back);
- within a rule, items go oldest ``time_added`` first, then by numeric
  ``item_id``; within an item, actions in the order written;
- ``keep_newest: N`` sets aside the N most recently added matches, then
  ``limit: N`` acts on the oldest N of the rest that get at least one action;
- deleted items are never candidates.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from rulebot.actions import Action
from rulebot.conditions import Where, reasons
from rulebot.errors import LimitExceededError
from rulebot.item import Item
from rulebot.plan import Plan, PlannedAction


class RuleLike(Protocol):
    name: str
    where: Where | None
    actions: list[Action]
    limit: int | None
    keep_newest: int | None


def item_ref(item: Item) -> dict[str, Any]:
    return {
        "item_id": item.item_id,
        "title": item.title,
        "url": item.url,
        "time_updated": item.time_updated or 0,
    }


def url_keys(item: Item) -> set[str]:
    return {u for u in (item.given_url, item.resolved_url) if u}


def make_plan(
    rules: Sequence[RuleLike],
    items: Iterable[Item],
    now: int,
    *,
    config_sha256: str = "",
    source: dict[str, Any] | None = None,
) -> Plan:
    original = {item.item_id: item for item in items if not item.is_deleted}
    library = dict(original)  # the simulated state
    urls = {url for item in original.values() for url in url_keys(item)}
    # time_added and item_id never change, so one sort serves every rule
    order = sorted(original, key=lambda item_id: original[item_id].sort_key)
    planned: list[PlannedAction] = []
    for rule in rules:
        if any(a.account_wide for a in rule.actions):
            planned.extend(_plan_account_rule(rule, library, urls, now))
        else:
            planned.extend(_plan_item_rule(rule, library, original, order, now))
    return Plan(
        created_at=now,
        actions=planned,
        config_sha256=config_sha256,
        source=source or {"kind": "local"},
        rules=[r.name for r in rules],
    )


def matching(
    rule: RuleLike, library: dict[str, Item], order: Sequence[str], now: int
) -> list[Item]:
    """Live items that match ``where``, in ``order`` (oldest first)."""
    where = rule.where
    items = (library.get(item_id) for item_id in order)
    if where is None:
        return [item for item in items if item is not None]
    return [item for item in items if item is not None and where.matches(item, now) is True]


def why(rule: RuleLike, item: Item, now: int) -> tuple[str, ...]:
    """The reasons, built only for items that get an action (strings cost)."""
    if rule.where is None:
        return ("every item (no where)",)
    return tuple(reasons(rule.where.test(item, now)))


def _plan_item_rule(
    rule: RuleLike,
    library: dict[str, Item],
    original: dict[str, Item],
    order: Sequence[str],
    now: int,
) -> list[PlannedAction]:
    candidates = matching(rule, library, order, now)
    if rule.keep_newest:
        # candidates are oldest first, so the newest N are the last N
        kept = {item.item_id for item in candidates[-rule.keep_newest :]}
        candidates = [item for item in candidates if item.item_id not in kept]
    planned: list[PlannedAction] = []
    acted = 0
    for item in candidates:
        if rule.limit is not None and acted >= rule.limit:
            break
        current = item
        sends = []
        for action in rule.actions:
            if current.is_deleted:
                break
            effect = action.on_item(current, now)
            if effect is None:
                continue
            current = effect.changed[0]
            sends.append(effect.send)
        if sends:
            acted += 1
            ref = item_ref(original.get(item.item_id, item))
            reasons_ = why(rule, item, now)
            planned.extend(PlannedAction(rule.name, send, ref, reasons_) for send in sends)
            if current.is_deleted:
                del library[item.item_id]
            else:
                library[item.item_id] = current
    return planned


def _plan_account_rule(
    rule: RuleLike, library: dict[str, Item], urls: set[str], now: int
) -> list[PlannedAction]:
    planned = []
    for action in rule.actions:
        effect = action.on_library(library, urls, now)
        if effect is None:
            continue
        for changed in effect.changed:
            library[changed.item_id] = changed
        if effect.added_url:
            urls.add(effect.added_url)
            why = ("no item has this URL",)
        else:
            count = len(effect.changed)
            why = (f"changes {count} item{'s' if count != 1 else ''}",)
        planned.append(PlannedAction(rule.name, effect.send, None, why))
    return planned


@dataclass(frozen=True)
class Limits:
    max_actions: int
    max_deletes: int


def check_limits(plan: Plan, limits: Limits) -> None:
    """Fail closed, before anything is sent, with the numbers in the error."""
    over = []
    if len(plan) > limits.max_actions:
        over.append(
            f"{len(plan)} actions exceed max_actions {limits.max_actions} "
            f"(override with --max-actions {len(plan)})"
        )
    if plan.deletes > limits.max_deletes:
        over.append(
            f"{plan.deletes} deletions exceed max_deletes {limits.max_deletes} "
            f"(override with --max-deletes {plan.deletes})"
        )
    if over:
        raise LimitExceededError(
            "safety limit: " + "; ".join(over) + ". Nothing was sent; raise the limits in the "
            "config's `limits:` or on the command line if this plan is what you want."
        )
