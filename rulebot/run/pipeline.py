"""load → sync → plan → limits → apply → record, for any source.

``cli`` parses arguments and maps outcomes to exit codes; the daemon calls
the same functions. Side effects happen only in ``Session.apply`` (and the
sync that fills the mirror); planning is pure.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rulebot.errors import RulebotError
from rulebot.library.item import Item
from rulebot.library.item_order import OutOfOrder
from rulebot.planning import planner
from rulebot.planning.plan import PlannedAction
from rulebot.planning.planner import (
    Limits,
    Usage,
    check_limits,
    item_ref,
    one_pass_ok,
    plan_in_passes,
)
from rulebot.planning.usage import period_usage
from rulebot.rules.actions import from_send
from rulebot.rules.capabilities import plan_fold
from rulebot.rules.vocab import VocabError
from rulebot.sources import source_for
from rulebot.sources.refining import as_stored, lookup
from rulebot.sources.screening import touchable

if TYPE_CHECKING:
    from rulebot.library.journal import JournalAction
    from rulebot.library.store import Store
    from rulebot.planning.plan import Plan, Result
    from rulebot.rules.config import Config, Rule
    from rulebot.sources.base import Session, Source, SyncResult

logger = logging.getLogger("rulebot.pipeline")


def store_path(config: Config, override: str | None = None) -> Path:
    """--store beats $RULEBOT_STORE beats the config's ``store:``."""
    chosen = override or os.environ.get("RULEBOT_STORE")
    return Path(chosen) if chosen else config.store


def source_of(config: Config) -> dict[str, Any]:
    """``plan.source``: which library a plan is for."""
    return source_for(config).describe()


def select_rules(config: Config, names: Sequence[str] = ()) -> list[Rule]:
    """Enabled rules in file order; ``names`` narrows them (unknown is an error)."""
    known = {rule.name: rule for rule in config.rules}
    unknown = [name for name in names if name not in known]
    if unknown:
        raise RulebotError(
            f"no rule named {', '.join(map(repr, unknown))} in {config.path}; "
            f"rules are: {', '.join(known) or '(none)'}"
        )
    disabled = [name for name in names if not known[name].enabled]
    if disabled:
        raise RulebotError(
            f"rule {', '.join(map(repr, disabled))} is disabled (enabled: false) in {config.path}"
        )
    return [r for r in config.rules if r.enabled and (not names or r.name in names)]


def plan_rules(
    config: Config,
    rules: Sequence[Rule],
    items: Sequence[Item],
    now: int,
    usage: Usage | None = None,
    *,
    ordered: bool = False,
) -> Plan:
    """``ordered``: ``items`` come from ``Store.items()``, oldest first."""
    return planner.make_plan(rules, items, now, ordered=ordered, **plan_options(config, usage))


def plan_options(config: Config, usage: Usage | None = None) -> dict[str, Any]:
    """What a plan takes from the config and the period's usage, whichever
    planner makes it (``make_plan`` or ``plan_in_passes``)."""
    return {
        "config_sha256": config.sha256,
        "source": source_of(config),
        "used": usage.items if usage else None,
        "timezone": config.timezone,
        "marks": usage.marks if usage else None,
    }


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
        pending: list[JournalAction] = []
        pending = close_interrupted_runs(store, session)
        if sync and source.remote:
            synced = session.sync(store, full=full, progress=progress)
        yield Connected(source, session, synced, start, pending)


def close_interrupted_runs(store: Store, session: Session) -> list[JournalAction]:
    """Mark the runs a crash left open as interrupted; what they sent without
    hearing back (returned) is finished by this run, once the sync has
    shown which of it landed (the source makes sure it will: ``recover``)."""
    pending = store.journal_pending()
    for run_id in sorted({p.run_id for p in pending}):
        store.journal_finish(run_id, "interrupted")
    session.recover(store, pending)
    if pending:
        logger.warning(
            "a previous run was interrupted with %d sent action%s unconfirmed; "
            "the sync shows which landed, and only the rest is planned again",
            len(pending),
            "" if len(pending) == 1 else "s",
        )
    return pending


@dataclass
class Connected:
    source: Source
    session: Session
    synced: SyncResult | None
    start: int = 0  # requests made before this run's sync
    # actions a crashed run sent without hearing back: finished by this run
    pending: list[JournalAction] = field(default_factory=list)

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
    passed = _one_pass(config, store, rules, now, usage) if one_pass_ok(rules) else None
    if passed is not None:
        # one pass over the store a chunk at a time, never holding the whole
        # library; resuming and refining need only the items the plan touches
        plan = passed
        pending = [str(a.send["item_id"]) for a in live.pending if a.send.get("item_id")]
        library: Mapping[str, Item] = _Loaded(
            lambda: touchable(store, passed.actions, also=pending), store
        )
    else:
        items = store.items()
        plan = plan_rules(config, rules, items, now, usage, ordered=True)
        library = {item.item_id: item for item in items}
    resumed = resume(live.pending, {r.name for r in rules}, plan, library, now)
    if resumed:
        # rare (a crashed run's leftovers) and small in all but a first run: a list
        plan = replace(plan, actions=[*resumed, *plan.actions])
    # as the source will carry it out, its tags spelled as the service stores them
    plan = as_stored(live.source.refine(plan, library), live.source.capabilities)
    # a rate-limited service's: what the plan costs in requests and time
    pacing = getattr(live.source, "pacing", None)
    if pacing is not None and plan.actions:
        plan.pacing = pacing(plan)
    return plan, usage


def _one_pass(
    config: Config, store: Store, rules: Sequence[Rule], now: int, usage: Usage
) -> Plan | None:
    """The plan made in one pass over the store, oldest item first; None
    when the store cannot give its items in that order. Items the store
    says are stored in order but are not (``OutOfOrder``: another program
    wrote them) are read again, sorted, before the plan is used."""
    for _ in range(2):
        if not (store.stored_in_order() or store.sql_orderable()):
            return None
        try:
            with closing(store.iter_items()) as chunks:
                return plan_in_passes(rules, chunks, now, **plan_options(config, usage))
        except OutOfOrder as err:
            logger.info("%s: sorting the library from now on", err)
            store.forget_order()
    return None


class _Loaded(Mapping[str, Item]):
    """A library read from the store when first asked (most plans never ask:
    only a resumption or a source's refine of a tag rename does). Until then
    ``get_many`` and ``ids_tagged`` (``sources.refining.Lookup``) read the
    store itself, for the ids and tags the plan names, without loading it
    all: Raindrop.io's refine asks them of every item a plan touches."""

    def __init__(self, load: Callable[[], dict[str, Item]], store: Store) -> None:
        self._load: Callable[[], dict[str, Item]] | None = load
        self._items: dict[str, Item] = {}
        self._store = store

    def get_many(self, item_ids: Iterable[str]) -> dict[str, Item]:
        if self._load is not None:
            return self._store.get_many(item_ids)
        return {i: self._items[i] for i in item_ids if i in self._items}

    def ids_tagged(self, tag: str) -> list[str]:
        if self._load is not None:
            return self._store.ids_tagged(tag)
        return lookup(self._items).ids_tagged(tag)

    def _all(self) -> dict[str, Item]:
        if self._load is not None:
            self._items, self._load = self._load(), None
        return self._items

    def __getitem__(self, item_id: str) -> Item:
        return self._all()[item_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())


def resume(
    pending: Sequence[JournalAction],
    rules: set[str],
    plan: Plan,
    library: Mapping[str, Item],
    now: int,
) -> list[PlannedAction]:
    """What a crashed run sent without hearing back and did not land.

    Where a service takes one rule's actions on one item in several requests
    (Karakeep: detach a tag, then archive), a crash between them can leave an
    item that no longer matches the rule, so planning again would never
    finish it. The journal knows what was sent: after the sync, each such
    action that would still change its item is planned again, first, unless
    the plan already has it. Only items still in the library, and only the
    rules this run covers."""
    if not pending:
        return []
    state = dict(library)  # changed as each resumed action would change it
    planned = {_key(action.send) for action in plan.actions}
    resumed: list[PlannedAction] = []
    for sent in pending:
        item_id = sent.send.get("item_id")
        current = state.get(str(item_id)) if item_id is not None else None
        if current is None or current.is_deleted or sent.rule not in rules:
            continue
        try:
            effect = from_send(sent.send, plan_fold(plan.source)).on_item(current, now)
        except (RulebotError, VocabError, KeyError, TypeError, ValueError, NotImplementedError):
            continue  # not an action rulebot knows: nothing to finish
        if effect is None or _key(effect.send) in planned:
            continue
        state[current.item_id] = effect.changed[0]
        why = (f"resuming run {sent.run_id}: interrupted before the server answered",)
        # the item as the plan found it, not as the resumed actions before left it:
        # a saved plan's stale check must not count them as a change from outside
        ref = item_ref(library.get(current.item_id, current))
        resumed.append(PlannedAction(str(sent.rule), effect.send, ref, why))
        planned.add(_key(effect.send))
    if resumed:
        logger.warning(
            "finishing %d action%s of an interrupted run",
            len(resumed),
            "" if len(resumed) == 1 else "s",
        )
    return resumed


def _key(send: Mapping[str, Any]) -> tuple[Any, ...]:
    return (send.get("item_id"), send.get("action"), send.get("tags"))


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
    failed = {o.action.rule for state in ("failed", "skipped") for o in result.each(state)}
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
