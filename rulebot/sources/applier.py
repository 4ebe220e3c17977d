"""Apply a plan request by request, for services without a batch endpoint.

The plan is cut into *units*: one rule's actions on one item (they travel
together, so a crash leaves a unit all-or-nothing as far as the service
allows), or one account-wide action. Units run on a thread pool of
``concurrency`` workers, with two orders kept:

- units on the same item run one after another, in plan order (rule 1's
  ``archive`` lands before rule 2's ``delete``);
- an account-wide unit (``tag_rename``, ``add`` …) runs alone: everything
  before it has settled first, nothing after it starts until it has.

Only the main thread touches the store: each unit is journaled ``sent``
before it is submitted, and its answers are journaled
``confirmed``/``failed`` together with the mirror update in one
transaction. A 404 on an item is *moot* (the item is gone: counted as done,
and it leaves the mirror). A credentials error stops the run, and so does a
rate limit that outlasted the wait allowed (every later unit would wait it
all again: the rest is reported not sent, with when to try again), and so
do ``OUTAGE`` units in a row that got no answer at all (the server died or
was never there): the rest is journaled as not sent, for the next run,
instead of trying every remaining unit against a dead server.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from rulebot.errors import (
    CredentialsError,
    RateLimited,
    RulebotError,
    ServerUnreachable,
    stopped_run,
)
from rulebot.library.tagcase import Fold
from rulebot.planning.plan import Outcome, PlannedAction, Result
from rulebot.planning.states import before_states, item_state
from rulebot.rules.actions import from_send
from rulebot.rules.capabilities import plan_fold
from rulebot.sources.base import STOPPED, UNANSWERED
from rulebot.sources.pacing import Cost, TimeBudget
from rulebot.sources.screening import screen, touchable

if TYPE_CHECKING:
    import sqlite3

    from rulebot.library.item import Item
    from rulebot.library.store import Store
    from rulebot.planning.plan import Plan

logger = logging.getLogger("rulebot.applier")

Unit = list[tuple[int, PlannedAction]]
# errors no later request of the run would do better on: the run stops
FATAL = (CredentialsError, RateLimited)

OUTAGE = 3  # units (or bulk requests) in a row without any answer: the server is down


@dataclass(frozen=True)
class Answer:
    """How one action of a unit went."""

    ok: bool
    error: str | None = None
    moot: bool = False  # the item is gone on the server: done, and out of the mirror
    created: Item | None = None  # `add`: the new item, to mirror
    # the item's tags as the server now spells them (services that keep their
    # own spelling: rulebot compares tags case-insensitively, the mirror must not drift)
    tags: tuple[str, ...] | None = None
    # tags the service created for this unit (a service that keeps a tag no
    # item carries: Karakeep), so that undo can take them away again
    created_tags: tuple[str, ...] = ()


class Performer(Protocol):
    def __call__(
        self, unit: Unit, current: Item | None, library: Mapping[str, Item]
    ) -> list[Answer]:
        """Carry out one unit (in a worker thread; never touch the store).

        ``current`` is the item as the mirror has it (None for account-wide
        units); ``library`` the whole mirror, for account-wide units."""
        ...


def units_of(queue: Sequence[tuple[int, PlannedAction]]) -> list[Unit]:
    units: list[Unit] = []
    for entry in queue:
        planned = entry[1]
        last = units[-1][-1][1] if units else None
        if (
            last is not None
            and planned.item_id is not None
            and (last.rule, last.item_id) == (planned.rule, planned.item_id)
        ):
            units[-1].append(entry)
        else:
            units.append([entry])
    return units


def apply_units(
    store: Store,
    plan: Plan,
    perform: Performer,
    *,
    kind: str,
    concurrency: int,
    requests: Callable[[], int],
    check_stale: bool,
    stop: Callable[[], bool] | None = None,
    progress: bool = False,
    bulk: Bulk | None = None,
    budget: TimeBudget | None = None,
    cost: Callable[[Sequence[PlannedAction]], Cost] | None = None,
) -> Result:
    """``budget``: a time budget; ``cost`` says what one unit costs against
    it (``sources.pacing``). With a budget, units go one at a time (the rate
    limit, not the round trip, is what bounds a paced service); the first
    unit that would not be done in time, and every unit after it, is
    journaled not sent: whole units, in order."""
    requests_before = requests()
    fold = plan_fold(plan.source)  # how the source compares tags, as the plan did
    before = touchable(store, plan.actions)  # all a stale check or undo can ask about
    outcomes, queue = screen(plan, before, check_stale=check_stale)
    run_id = store.journal_begin(
        f"apply-{kind}",
        [a.to_json() for a in plan.actions],
        source=plan.source,
        before=before_states(plan, before),  # what `undo` restores
    )
    for index, outcome in outcomes.items():
        store.journal_mark(run_id, [index], "skipped", outcome.error)
    units = units_of(queue)
    shown = _Progress(sum(map(len, units)), requests, enabled=progress)
    fatal: BaseException | None = None
    outage = _Outage()
    if bulk is not None:  # units the service takes several to a request go first
        units, fatal = _apply_bulk(store, run_id, units, bulk, outcomes, stop, outage, fold, budget)
        shown.count = shown.total - sum(map(len, units))  # those went in bulk requests
    in_flight: dict[Future[list[Answer]], Unit] = {}
    by_item: dict[str, Future[list[Answer]]] = {}

    def settle(future: Future[list[Answer]]) -> None:
        nonlocal fatal
        unit = in_flight.pop(future)
        landed.discard(future)
        item_id = unit[0][1].item_id
        if item_id is not None and by_item.get(item_id) is future:
            del by_item[item_id]
        try:
            answers = future.result()
            outage.heard(None)
        except FATAL as err:  # a wrong key, a spent rate limit: no later request will do better
            fatal = fatal or err
            answers = [Answer(False, str(err))] * len(unit)
        except RulebotError as err:
            outage.heard(err)
            answers = [Answer(False, str(err))] * len(unit)
        _record(store, run_id, unit, answers, outcomes, fold)
        shown.step(len(unit))

    def settle_all() -> None:
        settle_landed()
        while in_flight:
            settle(next(iter(in_flight)))

    # Units ready to go while workers are free: journaled "sent" together, in
    # one transaction (one disk sync, not one per unit), then submitted; and
    # the answers that came in meanwhile are journaled after that, in one
    # transaction, while the new requests are on their way. At a round trip
    # of 50 ms and 16 in flight, a sync per unit before the next request
    # kept the main thread (and so every worker waiting on it) busy for a
    # third of it.
    ready: list[tuple[Unit, Item | None]] = []
    ready_items: set[str] = set()
    # answered without an error, not yet journaled: their slots are free
    landed: set[Future[list[Answer]]] = set()

    def settle_landed() -> None:
        if landed:
            with store.transaction():
                for future in list(landed):
                    settle(future)

    def launch(pool: ThreadPoolExecutor) -> None:
        if not ready:
            return
        store.journal_mark(run_id, [i for unit, _ in ready for i, _ in unit], "sent")
        for unit, current in ready:
            future = pool.submit(perform, unit, current, _NO_LIBRARY)
            in_flight[future] = unit
            by_item[str(unit[0][1].item_id)] = future
        ready.clear()
        ready_items.clear()

    def not_sent(rest: list[Unit]) -> list[Unit]:
        """The ready units (never sent) and ``rest``: what a stop leaves."""
        left = [unit for unit, _ in ready] + rest
        ready.clear()
        ready_items.clear()
        return left

    try:
        with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
            for number, unit in enumerate(units):
                item_id = unit[0][1].item_id
                if item_id is None:
                    launch(pool)
                    settle_all()  # an account-wide unit runs alone
                elif item_id in ready_items:
                    launch(pool)
                    settle(by_item[item_id])  # same item: in plan order
                elif item_id in by_item:
                    settle(by_item[item_id])  # same item: in plan order
                while len(in_flight) - len(landed) + len(ready) >= concurrency:
                    launch(pool)
                    settle_landed()
                    if len(in_flight) >= concurrency:
                        done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                        if any(future.exception() is not None for future in done):
                            # an error may stop the run: journaled before anything more is sent
                            with store.transaction():
                                for future in done:
                                    settle(future)
                        else:
                            landed.update(done)
                if fatal is None and outage.down:
                    fatal = outage.last
                # asked after the waits: what settled meanwhile may have been fatal
                if fatal is None and stop is not None and stop():
                    _skip_rest(store, run_id, not_sent(units[number:]), outcomes, STOPPED)
                    logger.warning("stopping: the rest is not sent; the next run plans it")
                    break
                if fatal is not None:
                    rest = not_sent(units[number:])
                    _skip_rest(store, run_id, rest, outcomes, _not_sent(fatal))
                    break
                if budget is not None:
                    # one unit at a time: the units under way have taken their
                    # slots, so the budget knows exactly what this one would wait
                    settle_all()
                if budget is not None and not budget.fits(
                    cost([p for _, p in unit]) if cost is not None else {}
                ):
                    _skip_rest(store, run_id, units[number:], outcomes, budget.why)
                    logger.warning(
                        "the time budget (%s) is spent: %d action%s left for the next run",
                        budget.text,
                        sum(map(len, units[number:])),
                        "" if sum(map(len, units[number:])) == 1 else "s",
                    )
                    break
                if item_id is not None:
                    ready.append((unit, store.get(item_id)))
                    ready_items.add(item_id)
                    if budget is not None:
                        launch(pool)
                    continue
                library = touchable(store, [p for _, p in unit])
                store.journal_mark(run_id, [i for i, _ in unit], "sent")
                future = pool.submit(perform, unit, None, library)
                in_flight[future] = unit
                settle(future)
            launch(pool)
            settle_all()
    except KeyboardInterrupt:
        store.journal_finish(run_id, "interrupted")
        raise
    finally:
        shown.done()
    if isinstance(fatal, ServerUnreachable):  # one message, now that the last units settled
        fatal = outage.error(outcomes)
    ordered = [outcomes[i] for i in sorted(outcomes)]
    status = "ok" if all(o.state != "failed" for o in ordered) else "partial"
    store.journal_finish(run_id, "failed" if fatal else status)
    if fatal is not None:
        raise fatal
    return Result(
        outcomes=ordered,
        started_at=plan.created_at,
        requests=requests() - requests_before,
        source=plan.source,
    )


_NO_LIBRARY: Mapping[str, Item] = {}


class Bulk(Protocol):
    """A service endpoint that carries several units in one request."""

    size: int  # units per request at most
    # what one bulk request costs against a time budget (``sources.pacing``):
    # requests per rate class, as an optional attribute ``cost`` (default: none)

    def accepts(self, unit: Unit, current: Item | None) -> bool:
        """Whether this unit can travel in a bulk request."""
        ...

    def __call__(self, batch: list[tuple[Unit, Item | None]]) -> list[list[Answer]]:
        """Send one bulk request; the answers per unit, in order."""
        ...


def _apply_bulk(
    store: Store,
    run_id: int,
    units: list[Unit],
    bulk: Bulk,
    outcomes: dict[int, Outcome],
    stop: Callable[[], bool] | None,
    outage: _Outage,
    fold: Fold,
    budget: TimeBudget | None = None,
) -> tuple[list[Unit], BaseException | None]:
    """Send the units ``bulk`` accepts, ``bulk.size`` to a request, before the
    rest; the units left to send one by one. Only a unit that is its item's
    only one and that comes before any account-wide unit qualifies, so the
    plan's order holds for every item and every account-wide action."""
    per_item: dict[str, int] = {}
    for unit in units:
        item_id = unit[0][1].item_id
        if item_id is not None:
            per_item[item_id] = per_item.get(item_id, 0) + 1
    chosen: list[tuple[Unit, Item | None]] = []
    rest: list[Unit] = []
    wide_seen = False
    for unit in units:
        item_id = unit[0][1].item_id
        wide_seen = wide_seen or item_id is None
        current = store.get(item_id) if item_id is not None and not wide_seen else None
        if (
            item_id is not None
            and not wide_seen
            and per_item[item_id] == 1
            and bulk.accepts(unit, current)
        ):
            chosen.append((unit, current))
            continue
        rest.append(unit)
    if len(chosen) < 2:  # one unit: its own request costs the same
        return units, None
    for start in range(0, len(chosen), bulk.size):
        batch = chosen[start : start + bulk.size]
        if stop is not None and stop():
            _skip_rest(store, run_id, [unit for unit, _ in chosen[start:]], outcomes, STOPPED)
            return rest, None
        if budget is not None and not budget.fits(getattr(bulk, "cost", {})):
            _skip_rest(store, run_id, [unit for unit, _ in chosen[start:]], outcomes, budget.why)
            return rest, None
        store.journal_mark(run_id, [i for unit, _ in batch for i, _ in unit], "sent")
        fatal: RulebotError | None = None
        try:
            answers = bulk(batch)
            outage.heard(None)
        except FATAL as err:  # no later request will do better
            answers = [[Answer(False, str(err))] * len(unit) for unit, _ in batch]
            fatal = err
        except RulebotError as err:
            outage.heard(err)
            answers = [[Answer(False, str(err))] * len(unit) for unit, _ in batch]
        with store.transaction():  # one disk sync for the batch, not one per unit
            for (unit, _), unit_answers in zip(batch, answers, strict=True):
                _record(store, run_id, unit, unit_answers, outcomes, fold)
        if fatal is None and outage.down:
            fatal = outage.last
        if fatal is not None:
            left = [unit for unit, _ in chosen[start + bulk.size :]] + rest
            _skip_rest(store, run_id, left, outcomes, _not_sent(fatal))
            return [], fatal
    return rest, None


class _Outage:
    """Counts units in a row that got no answer from the server at all; at
    ``OUTAGE`` the server is down and the run stops, with one message."""

    def __init__(self) -> None:
        self.in_a_row = 0
        self.last: ServerUnreachable | None = None

    def heard(self, error: BaseException | None) -> None:
        """A unit settled: answered (``None``, or an error the server sent), or not."""
        if isinstance(error, ServerUnreachable):
            self.in_a_row += 1
            self.last = error
        else:
            self.in_a_row = 0

    @property
    def down(self) -> bool:
        return self.in_a_row >= OUTAGE

    def error(self, outcomes: Mapping[int, Outcome]) -> ServerUnreachable:
        """One message for the whole run (every action settled or skipped):
        which server, why, and what is left."""
        assert self.last is not None
        states = [outcome.state for outcome in outcomes.values()]
        unsent = sum(1 for o in outcomes.values() if o.error == UNANSWERED)
        return stopped_run(self.last, self.in_a_row, states, unsent)


def _not_sent(fatal: BaseException) -> str:
    return UNANSWERED if isinstance(fatal, ServerUnreachable) else f"not sent: {fatal}"


def _skip_rest(
    store: Store, run_id: int, units: list[Unit], outcomes: dict[int, Outcome], why: str
) -> None:
    unsent = [entry for unit in units for entry in unit]
    for index, planned in unsent:
        outcomes[index] = Outcome(index, planned, "skipped", why)
    if unsent:
        store.journal_mark(run_id, [i for i, _ in unsent], "skipped", why)


def _record(
    store: Store,
    run_id: int,
    unit: Unit,
    answers: list[Answer],
    outcomes: dict[int, Outcome],
    fold: Fold,
) -> None:
    with store.transaction() as conn:
        created_tags: set[str] = set()  # journaled once per unit
        for (index, planned), answer in zip(unit, answers, strict=True):
            if answer.ok:
                outcomes[index] = Outcome(index, planned, "succeeded")
                note = f"moot: {answer.error}" if answer.moot else None
                store.journal_mark(run_id, [index], "confirmed", note, conn)
                if answer.moot:
                    if planned.item_id is not None:
                        store.delete([planned.item_id], conn)
                else:
                    mirror(store, planned, answer.created, conn, fold)
                if answer.created is not None and planned.name == "add":
                    # what undoing this add deletes: that item and no other
                    store.journal_note(run_id, index, "created", item_state(answer.created), conn)
                fresh = [t for t in answer.created_tags if t not in created_tags]
                if fresh:
                    store.journal_note(run_id, index, "created_tags", fresh, conn)
                    created_tags.update(fresh)
            else:
                outcomes[index] = Outcome(index, planned, "failed", answer.error)
                store.journal_mark(run_id, [index], "failed", answer.error, conn)
        spelled = answers[-1].tags if answers else None
        item_id = unit[0][1].item_id
        if spelled is not None and item_id is not None and answers[-1].ok:
            current = store.get(item_id)
            if current is not None:
                store.upsert([current.replace(tags=spelled)], conn)


def mirror(
    store: Store,
    planned: PlannedAction,
    created: Item | None,
    conn: sqlite3.Connection,
    fold: Fold,
) -> None:
    """Bring the mirror in line with a confirmed action (the next sync confirms)."""
    send = planned.send
    when = int(send.get("time") or 0)
    action = from_send(send, fold)
    if planned.name == "add":
        if created is not None:
            store.upsert([created], conn)
        return
    if action.account_wide:
        library = {item.item_id: item for item in store.items()}
        effect = action.on_library(library, set(), when)
        if effect is not None:
            store.upsert(effect.changed, conn)
        return
    current = store.get(str(send["item_id"]))
    if current is None:
        return
    effect = action.on_item(current, when)
    if effect is None:
        return
    changed = effect.changed[0]
    if changed.is_deleted:
        store.delete([changed.item_id], conn)
    else:
        store.upsert([changed], conn)


class _Progress:
    """``applied 12/40 actions (9 requests)`` on a terminal's stderr; nothing
    on a pipe or a log. It counts actions, as the plan does; the requests are
    what they cost so far (an item's actions may share one, or take several)."""

    def __init__(self, total: int, requests: Callable[[], int], *, enabled: bool) -> None:
        self.total = total
        self.count = 0
        self.requests, self.start = requests, requests()
        self.enabled = enabled and total > 1 and sys.stderr.isatty()

    def step(self, actions: int) -> None:
        self.count += actions
        if self.enabled:
            made = self.requests() - self.start
            sys.stderr.write(
                f"\rrulebot: applied {self.count}/{self.total} actions "
                f"({made} request{'' if made == 1 else 's'})"
            )
            sys.stderr.flush()

    def done(self) -> None:
        if self.enabled and self.count:
            sys.stderr.write("\n")


def split_tags(value: Any) -> list[str]:
    """A plan's comma-string of tags as a list."""
    return [tag for tag in str(value or "").split(",") if tag]


def kept_spellings(tags: list[str], wanted: list[str], fold: Fold) -> set[str]:
    """The spellings a ``tags_replace`` by ``wanted`` keeps of ``tags``: one per
    wanted tag, the wanted spelling if the item has it, else the item's first
    (tags compare by the source's ``fold``; the server keeps its spelling)."""
    kept: set[str] = set()
    for tag in wanted:
        same = [t for t in tags if fold(t) == fold(tag)]
        if same:
            kept.add(tag if tag in same else same[0])
    return kept
