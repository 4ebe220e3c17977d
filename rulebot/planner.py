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
from rulebot.conditions import Check, Where, reasons
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
) -> list[tuple[Item, Check | None]]:
    """Live items that match ``where``, in ``order`` (oldest first)."""
    found = []
    for item_id in order:
        item = library.get(item_id)
        if item is None:
            continue
        if rule.where is None:
            found.append((item, None))
            continue
        if rule.where.matches(item, now) is True:
            found.append((item, rule.where.test(item, now)))
    return found


def _plan_item_rule(
    rule: RuleLike,
    library: dict[str, Item],
    original: dict[str, Item],
    order: Sequence[str],
    now: int,
) -> list[PlannedAction]:
    candidates = matching(rule, library, order, now)
    if rule.keep_newest:
        newest_first = sorted(candidates, key=lambda pair: pair[0].sort_key, reverse=True)
        kept = {pair[0].item_id for pair in newest_first[: rule.keep_newest]}
        candidates = [pair for pair in candidates if pair[0].item_id not in kept]
    planned: list[PlannedAction] = []
    acted = 0
    for item, check in candidates:
        if rule.limit is not None and acted >= rule.limit:
            break
        why = tuple(reasons(check)) if check else ("every item (no where)",)
        ref = item_ref(original.get(item.item_id, item))
        current = item
        steps = []
        for action in rule.actions:
            if current.is_deleted:
                break
            effect = action.on_item(current, now)
            if effect is None:
                continue
            current = effect.changed[0]
            steps.append(PlannedAction(rule.name, effect.send, ref, why))
        if steps:
            acted += 1
            planned.extend(steps)
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
