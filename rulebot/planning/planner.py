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
- deleted items are never candidates;
- a rule with ``grace`` is two-phase (mark-for-op): a matching item first
  gets the tag ``rulebot:RULE:YYYY-MM-DD`` (the day its actions fall due, in
  the config's timezone); on or after that day, if it still matches and still
  carries the mark, the actions run and the mark goes; a marked item that no
  longer matches loses its mark. Marks are ordinary tag actions in the plan.
  Only a mark rulebot set (``marks``: what the journal confirmed) counts; any
  other is replaced by a fresh one, and the plan says so.

The two ways to plan are here (``make_plan`` with the library in memory,
``plan_in_passes`` a chunk at a time); the pieces they share are their own
modules: ``simulation`` (the library as rules leave it), ``acting`` (one item
rule on it), ``grace`` (mark-for-op), ``one_pass`` (the one pass's state) and
``limits`` (the safety belts checked before sending). Their public names are
importable from here, as the rest of rulebot does.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from rulebot.bulk import gc_paused
from rulebot.library.item import Item
from rulebot.planning.acting import Acted, RuleLike, matching, plan_item_rule
from rulebot.planning.grace import Grace, Marks
from rulebot.planning.limits import Limits, Usage, check_limits
from rulebot.planning.one_pass import OnePass
from rulebot.planning.plan import Plan, PlannedAction
from rulebot.planning.simulation import Originals, Simulation, Urls, item_ref, url_keys
from rulebot.planning.spool import Spool
from rulebot.rules.capabilities import plan_fold

__all__ = [
    "Grace",
    "Limits",
    "Marks",
    "Originals",
    "RuleLike",
    "Simulation",
    "Urls",
    "Usage",
    "check_limits",
    "item_ref",
    "make_plan",
    "one_pass_ok",
    "plan_in_passes",
    "url_keys",
]


def make_plan(
    rules: Sequence[RuleLike],
    items: Iterable[Item],
    now: int,
    *,
    config_sha256: str = "",
    source: dict[str, Any] | None = None,
    observe: Callable[[RuleLike, Simulation], None] | None = None,
    used: Mapping[str, int] | None = None,
    timezone: dt.tzinfo = dt.UTC,
    ordered: bool = False,
    marks: Marks | None = None,
) -> Plan:
    """The plan; ``observe(rule, state)`` sees the library as each rule sees it
    (``explain`` uses it to show conditions against the simulated state).
    ``used`` is how many items each rule already acted on in its current
    schedule period (``Usage.items``): its ``limit`` holds per period.
    ``ordered``: ``items`` already come oldest first (``Store.items()``).
    ``marks``: the grace marks rulebot set (``Usage.marks``); no other counts."""
    used = used or {}
    fold = plan_fold(source)  # how the source compares tags, for grace marks
    state = Simulation(items, ordered=ordered)
    original = Originals(state.by_id)
    urls = Urls(state.by_id)  # the dict rules change as they go
    planned: list[PlannedAction] = []
    matched: dict[str, int] = {}
    for rule in rules:
        if observe is not None:
            observe(rule, state)
        if any(a.account_wide for a in rule.actions):
            planned.extend(_plan_account_rule(rule, state, urls, now))
        else:
            candidates = matching(rule, state, now)
            matched[rule.name] = len(candidates)
            left = None if rule.limit is None else max(0, rule.limit - used.get(rule.name, 0))
            if getattr(rule, "grace", None):
                grace = Grace(rule, now, timezone, (marks or {}).get(rule.name), fold)
                planned.extend(_flat(grace.plan(candidates, left, state, original)))
            else:
                acted = plan_item_rule(rule, candidates, left, state, original, now)
                planned.extend(_flat(acted))
    return _plan(rules, now, planned, matched, config_sha256, source)


def one_pass_ok(rules: Sequence[RuleLike]) -> bool:
    """Whether ``plan_in_passes`` gives ``make_plan``'s answer for these
    rules. ``duplicate`` (groups over the library) needs the whole library;
    so do a second ``keep_newest`` rule, a ``limit`` after one (the items a
    ``keep_newest`` rule holds back go on to later rules late), and
    ``keep_newest`` on a ``grace`` rule."""
    if any(r.where is not None and r.where.library for r in rules):
        return False
    if any(r.keep_newest and getattr(r, "grace", None) for r in rules):
        return False
    keeps = [k for k, rule in enumerate(rules) if rule.keep_newest]
    return len(keeps) <= 1 and not (
        keeps and any(rule.limit is not None for rule in rules[keeps[0] + 1 :])
    )


def plan_in_passes(
    rules: Sequence[RuleLike],
    chunks: Iterable[list[Item]],
    now: int,
    *,
    config_sha256: str = "",
    source: dict[str, Any] | None = None,
    used: Mapping[str, int] | None = None,
    timezone: dt.tzinfo = dt.UTC,
    release: int = 512,
    spill: int | None = None,
    marks: Marks | None = None,
) -> Plan:
    """``make_plan``'s plan, made in one pass over the library a chunk at a
    time (``chunks``: the live items oldest first, as ``Store.iter_items``
    gives them), so the library is never held whole.

    Each chunk goes through the rules in file order, as the whole library
    would: an item rule reads and changes only its own items, a ``limit``
    counts on across chunks (items come oldest first), account-wide actions
    are tallied (items changed, URLs seen) and placed at their rule's
    position at the end, and a ``keep_newest: N`` rule holds its matches
    back (those with N newer matches behind them are acted on, in batches,
    and go on to later rules; the N still held at the end are the ones
    kept), after which each rule's actions are put back in item order. Only for rules
    ``one_pass_ok`` accepts; a property test holds it to ``make_plan``.
    ``release``: held-back items go on in batches of at least this many;
    ``spill``: past this many actions the plan goes to disk (``Spool``;
    default ``spool.SPILL``)."""
    spool = Spool(2 * len(rules), spill)
    graces = {  # grace rules: their marks and due actions, then their unmarks
        k: Grace(rule, now, timezone, (marks or {}).get(rule.name), plan_fold(source))
        for k, rule in enumerate(rules)
        if _grace(rule)
    }
    one_pass = OnePass(rules, now, used or {}, release, graces, spool)
    position = 0
    with gc_paused():  # a first run makes an action, a send and an item per change
        for chunk in chunks:
            one_pass.chunk(chunk, position)
            position += len(chunk)
        actions = one_pass.finish()
    return _plan(rules, now, actions, one_pass.matched, config_sha256, source)


def _plan(
    rules: Sequence[RuleLike],
    now: int,
    actions: Sequence[PlannedAction],
    matched: dict[str, int],
    config_sha256: str,
    source: dict[str, Any] | None,
) -> Plan:
    return Plan(
        created_at=now,
        actions=actions,
        config_sha256=config_sha256,
        source=source or {"kind": "local"},
        rules=[r.name for r in rules],
        matched=matched,
    )


def _flat(acted: Acted) -> list[PlannedAction]:
    return [action for _, actions in acted for action in actions]


def _grace(rule: RuleLike) -> bool:
    return bool(getattr(rule, "grace", None))


def _plan_account_rule(
    rule: RuleLike, state: Simulation, urls: Urls, now: int
) -> list[PlannedAction]:
    planned = []
    for action in rule.actions:
        effect = action.on_library(state.by_id, urls, now)
        if effect is None:
            continue
        for changed in effect.changed:
            state.put(changed)
        if effect.added_url:
            urls.add(effect.added_url)
            why = ("no item has this URL",)
        else:
            count = len(effect.changed)
            why = (f"changes {count} item{'s' if count != 1 else ''}",)
        planned.append(PlannedAction(rule.name, effect.send, None, why))
    return planned
