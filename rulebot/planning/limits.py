"""Safety belts: the limits a plan must keep, what scheduled rules already
did in their period (``Usage``), and ``check_limits``, which fails closed
before anything is sent."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from rulebot.errors import LimitExceededError
from rulebot.planning.grace import Marks
from rulebot.planning.plan import Plan


@dataclass(frozen=True)
class Limits:
    max_actions: int
    max_deletes: int


@dataclass(frozen=True)
class Usage:
    """What scheduled rules already did in their current schedule period,
    as the journal confirmed it (or a crashed run may have done it), and
    the grace marks rules set (whenever they set them).

    A rule's period starts at its most recent cron time; a rule without a
    schedule has no period beyond the run itself, so it has no usage."""

    items: Mapping[str, int] = field(default_factory=dict)  # rule -> items acted on
    deletes: int = 0  # destructive actions of those rules in their periods
    limits: Mapping[str, int] = field(default_factory=dict)  # rule -> its `limit`
    marks: Marks = field(default_factory=dict)  # grace rule -> item id -> marks it set


def check_limits(plan: Plan, limits: Limits, usage: Usage | None = None) -> None:
    """Fail closed, before anything is sent, with the numbers in the error."""
    usage = usage or Usage()
    over = []
    if len(plan) > limits.max_actions:
        over.append(
            f"{len(plan)} actions exceed max_actions {limits.max_actions} "
            f"(override with --max-actions {len(plan)})"
        )
    deletes = plan.deletes + usage.deletes
    if deletes > limits.max_deletes:
        earlier = f" ({usage.deletes} already this schedule period)" if usage.deletes else ""
        over.append(
            f"{deletes} deletions{earlier} exceed max_deletes {limits.max_deletes} "
            f"(override with --max-deletes {deletes})"
        )
    # the planner keeps each rule within its period's budget; a saved plan
    # (`apply`) may have been made before other runs spent it
    spent = {rule: usage.items.get(rule, 0) for rule in usage.limits}
    planned_items: dict[str, set[str]] = {rule: set() for rule, done in spent.items() if done}
    if planned_items:  # only rules that already spent part of their limit this period
        for action in plan.actions:
            item_id = action.send.get("item_id")
            if item_id is not None and action.rule in planned_items:
                planned_items[action.rule].add(item_id)
    for rule, items in planned_items.items():
        limit, done = usage.limits[rule], spent[rule]
        if items and len(items) + done > limit:
            over.append(
                f"rule {rule} would act on {len(items)} items, but {done} of its limit {limit} "
                "were already acted on this schedule period (plan again)"
            )
    if over:
        raise LimitExceededError(
            "safety limit: " + "; ".join(over) + ". Nothing was sent; raise the limits in the "
            "config's `limits:` or on the command line if this plan is what you want."
        )
