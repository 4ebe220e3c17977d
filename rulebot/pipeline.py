"""load → sync → plan → limits → apply → record, for any source.

``cli`` parses arguments and maps outcomes to exit codes; the daemon calls
the same functions. Side effects happen only in ``Session.apply`` (and the
sync that fills the mirror); planning is pure.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rulebot.engine import period_usage, plan_rules
from rulebot.planner import Limits, Usage, check_limits
from rulebot.sources import source_for

if TYPE_CHECKING:
    from rulebot.config import Config, Rule
    from rulebot.plan import Plan, Result
    from rulebot.sources.base import Session, Source, SyncResult
    from rulebot.store import Store

logger = logging.getLogger("rulebot.pipeline")


@contextmanager
def connected(
    config: Config,
    store: Store,
    *,
    sync: bool = True,
    full: bool = False,
    progress: bool = False,
) -> Iterator[Connected]:
    """The config's source, connected; for a server: runs a crash left open
    are closed, and the mirror is synced before anything is planned."""
    source = source_for(config)
    with source.connect() as session:
        start = session.requests_made
        synced = None
        if source.remote:
            from rulebot.sender import close_interrupted_runs

            close_interrupted_runs(store)
            if sync:
                synced = session.sync(store, full=full, progress=progress)
        yield Connected(source, session, synced, start)


@dataclass
class Connected:
    source: Source
    session: Session
    synced: SyncResult | None
    start: int = 0  # requests made before this run's sync

    @property
    def requests(self) -> int:
        """What this run cost so far: its sync and its sends."""
        return self.session.requests_made - self.start


def make_plan(
    config: Config, store: Store, live: Connected, rules: Sequence[Rule], now: int
) -> tuple[Plan, Usage]:
    """The exact plan for ``rules`` on the store as it is now, as the source
    will carry it out, and what the rules already did this schedule period."""
    usage = period_usage(config, store, [r.name for r in rules], now)
    items = store.items()
    plan = plan_rules(config, rules, items, now, usage)
    plan = live.source.refine(plan, {item.item_id: item for item in items})
    return plan, usage


def apply(
    store: Store,
    plan: Plan,
    live: Connected,
    *,
    check_stale: bool,
    stop: Callable[[], bool] | None = None,
    progress: bool = False,
) -> Result:
    result = live.session.apply(store, plan, check_stale=check_stale, stop=stop, progress=progress)
    result.requests = live.requests  # the run's whole cost, sync included
    return result


def record_runs(store: Store, plan: Plan, result: Result, now: int) -> None:
    """A rule's last run is recorded only when all its actions succeeded
    (a failed rule is due again; its `limit` still holds per period)."""
    failed = {o.action.rule for o in result.outcomes if o.state != "succeeded"}
    with store.transaction() as conn:
        for rule in plan.rules:
            if rule not in failed:
                store.set_last_run(rule, now, conn)


def run_checked(
    config: Config,
    store: Store,
    live: Connected,
    rules: Sequence[Rule],
    now: int,
    limits: Limits,
    *,
    stop: Callable[[], bool] | None = None,
) -> tuple[Plan, Result]:
    """Plan, check the safety belts (raising before anything is sent), apply,
    record: one unattended run (the daemon's cycle)."""
    plan, usage = make_plan(config, store, live, rules, now)
    check_limits(plan, limits, usage)
    result = apply(store, plan, live, check_stale=False, stop=stop)
    record_runs(store, plan, result, now)
    return plan, result
