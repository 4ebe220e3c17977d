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

import itertools
import logging
import sqlite3
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
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
from rulebot.planning.plan import STATES, Outcomes, PlannedAction, Result
from rulebot.planning.states import item_state
from rulebot.rules.actions import from_send
from rulebot.rules.capabilities import plan_fold
from rulebot.sources.base import STOPPED, UNANSWERED
from rulebot.sources.pacing import Cost, TimeBudget
from rulebot.sources.screen_stream import screened_rows
from rulebot.sources.screening import touchable
from rulebot.sources.units import Unit, UnitCounts, plan_units

if TYPE_CHECKING:
    from rulebot.library.item import Item
    from rulebot.library.store import Store
    from rulebot.planning.plan import Plan

logger = logging.getLogger("rulebot.applier")

# errors no later request of the run would do better on: the run stops
FATAL = (CredentialsError, RateLimited)

OUTAGE = 3  # units (or bulk requests) in a row without any answer: the server is down
CACHE = 5_000  # items the screening holds, for each of its two libraries (``screen_stream``)


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
    cache: int = CACHE,
) -> Result:
    """``budget``: a time budget; ``cost`` says what one unit costs against
    it (``sources.pacing``). With a budget, units go one at a time (the rate
    limit, not the round trip, is what bounds a paced service); the first
    unit that would not be done in time, and every unit after it, is
    journaled not sent: whole units, in order.

    Nothing is held whole (#28): the screening reads the items a block of
    actions at a time, holding at most ``cache`` of them
    (``screen_stream``), and journals each action as it goes; the units are
    made from the plan as they are sent (a spooled plan is read back), and
    the outcomes are a byte each (``Outcomes``)."""
    requests_before = requests()
    fold = plan_fold(plan.source)  # how the source compares tags, as the plan did
    outcomes = Outcomes(plan.actions, by_index=True)
    queued = bytearray(len(plan.actions))  # 1: the screening sends it
    rows = screened_rows(store, plan, outcomes, queued, check_stale=check_stale, cache=cache)
    with store.transaction() as conn:
        run_id = store.journal_record(f"apply-{kind}", rows, conn, source=plan.source)
    shown = _Progress(queued.count(1), requests, enabled=progress)
    fatal: BaseException | None = None
    outage = _Outage()
    if bulk is not None:  # units the service takes several to a request go first
        fatal = _apply_bulk(store, run_id, plan, queued, bulk, outcomes, stop, outage, fold, budget)
        shown.count = shown.total - sum(  # those went in bulk requests
            len(unit) for unit in _pending(plan, queued, outcomes)
        )
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

    # the units left after the bulk requests (a fatal one among them left none)
    units = _pending(plan, queued, outcomes) if fatal is None else iter(())
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

    def not_sent(rest: Iterable[Unit]) -> Iterator[Unit]:
        """The ready units (never sent) and ``rest``: what a stop leaves."""
        left = [unit for unit, _ in ready]
        ready.clear()
        ready_items.clear()
        return itertools.chain(left, rest)

    try:
        with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
            for unit in units:
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
                    rest = not_sent(itertools.chain([unit], units))
                    _skip_rest(store, run_id, rest, outcomes, STOPPED)
                    logger.warning("stopping: the rest is not sent; the next run plans it")
                    break
                if fatal is not None:
                    rest = not_sent(itertools.chain([unit], units))
                    _skip_rest(store, run_id, rest, outcomes, _not_sent(fatal))
                    break
                if budget is not None:
                    # one unit at a time: the units under way have taken their
                    # slots, so the budget knows exactly what this one would wait
                    settle_all()
                if budget is not None and not budget.fits(
                    cost([p for _, p in unit]) if cost is not None else {}
                ):
                    rest = not_sent(itertools.chain([unit], units))
                    left = _skip_rest(store, run_id, rest, outcomes, budget.why)
                    logger.warning(
                        "the time budget (%s) is spent: %d action%s left for the next run",
                        budget.text,
                        left,
                        "" if left == 1 else "s",
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
    status = "partial" if outcomes.count("failed") else "ok"
    store.journal_finish(run_id, "failed" if fatal else status)
    if fatal is not None:
        raise fatal
    return Result(
        outcomes=outcomes,
        started_at=plan.created_at,
        requests=requests() - requests_before,
        source=plan.source,
    )


_NO_LIBRARY: Mapping[str, Item] = {}


def _pending(plan: Plan, queued: bytearray, outcomes: Outcomes) -> Iterator[Unit]:
    """The units not done yet (the bulk requests did some), in plan order."""
    return (unit for unit in plan_units(plan, queued) if not outcomes.known(unit[0][0]))


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
    plan: Plan,
    queued: bytearray,
    bulk: Bulk,
    outcomes: Outcomes,
    stop: Callable[[], bool] | None,
    outage: _Outage,
    fold: Fold,
    budget: TimeBudget | None = None,
) -> BaseException | None:
    """Send the units ``bulk`` accepts, ``bulk.size`` to a request, before the
    rest (``_pending`` then gives the rest). Only a unit that is its item's
    only one and that comes before any account-wide unit qualifies, so the
    plan's order holds for every item and every account-wide action; and
    only when two or more do (one unit: its own request costs the same).

    The units are read up to the first account-wide one, a block at a time,
    each block's items' unit counts looked up (``UnitCounts``); a request
    goes as soon as it is full. A fatal error skips every unit not done."""
    with UnitCounts(plan_units(plan, queued)) as counts:
        bulked = _Bulked(store, run_id, bulk, outcomes, stop, outage, fold, budget)
        units = itertools.takewhile(
            lambda unit: unit[0][1].item_id is not None, plan_units(plan, queued)
        )
        while block := list(itertools.islice(units, BLOCK)):
            several = counts.several(unit[0][1].item_id for unit in block)
            for unit in block:
                item_id = unit[0][1].item_id
                assert item_id is not None
                current = store.get(item_id)
                if item_id not in several and bulk.accepts(unit, current):
                    bulked.add(unit, current)
                if bulked.fatal is not None:
                    break
            if bulked.fatal is not None:
                break
        bulked.finish()
    if bulked.fatal is not None:
        _skip_rest(
            store, run_id, _pending(plan, queued, outcomes), outcomes, _not_sent(bulked.fatal)
        )
    return bulked.fatal


BLOCK = 1000  # units read together (their items' counts looked up at once)


class _Bulked:
    """The units chosen for bulk requests, sent ``bulk.size`` at a time once
    two are chosen; after a stop or a spent budget the rest of them is
    skipped, after a fatal error nothing more is sent."""

    def __init__(
        self,
        store: Store,
        run_id: int,
        bulk: Bulk,
        outcomes: Outcomes,
        stop: Callable[[], bool] | None,
        outage: _Outage,
        fold: Fold,
        budget: TimeBudget | None,
    ) -> None:
        self.store, self.run_id, self.bulk, self.outcomes = store, run_id, bulk, outcomes
        self.stop, self.outage, self.fold, self.budget = stop, outage, fold, budget
        self.chosen = 0
        self.waiting: list[tuple[Unit, Item | None]] = []
        self.halted: str | None = None  # why the rest of the chosen units is skipped
        self.fatal: BaseException | None = None

    def add(self, unit: Unit, current: Item | None) -> None:
        self.chosen += 1
        self.waiting.append((unit, current))
        while self.chosen >= 2 and len(self.waiting) >= self.bulk.size and self.fatal is None:
            self._send()

    def finish(self) -> None:
        while self.chosen >= 2 and self.waiting and self.fatal is None:
            self._send()

    def _send(self) -> None:
        size = self.bulk.size
        batch, self.waiting = self.waiting[:size], self.waiting[size:]
        units = [unit for unit, _ in batch]
        if self.halted is None and self.stop is not None and self.stop():
            self.halted = STOPPED
        if (
            self.halted is None
            and self.budget is not None
            and not self.budget.fits(getattr(self.bulk, "cost", {}))
        ):
            self.halted = self.budget.why
        if self.halted is not None:
            _skip_rest(self.store, self.run_id, units, self.outcomes, self.halted)
            return
        store, run_id = self.store, self.run_id
        store.journal_mark(run_id, [i for unit in units for i, _ in unit], "sent")
        fatal: RulebotError | None = None
        try:
            answers = self.bulk(batch)
            self.outage.heard(None)
        except FATAL as err:  # no later request will do better
            answers = [[Answer(False, str(err))] * len(unit) for unit in units]
            fatal = err
        except RulebotError as err:
            self.outage.heard(err)
            answers = [[Answer(False, str(err))] * len(unit) for unit in units]
        with store.transaction():  # one disk sync for the batch, not one per unit
            for unit, unit_answers in zip(units, answers, strict=True):
                _record(store, run_id, unit, unit_answers, self.outcomes, self.fold)
        if fatal is None and self.outage.down:
            fatal = self.outage.last
        self.fatal = fatal


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

    def error(self, outcomes: Outcomes) -> ServerUnreachable:
        """One message for the whole run (every action settled or skipped):
        which server, why, and what is left."""
        assert self.last is not None
        states = [STATES[code] for code in outcomes.states]
        unsent = sum(1 for error in outcomes.errors.values() if error == UNANSWERED)
        return stopped_run(self.last, self.in_a_row, states, unsent)


def _not_sent(fatal: BaseException) -> str:
    return UNANSWERED if isinstance(fatal, ServerUnreachable) else f"not sent: {fatal}"


def _skip_rest(
    store: Store, run_id: int, units: Iterable[Unit], outcomes: Outcomes, why: str
) -> int:
    """Journal ``units`` skipped, with why, a block at a time; how many actions."""
    skipped = 0
    indexes: list[int] = []
    for unit in units:
        for index, _ in unit:
            outcomes.put(index, "skipped", why)
            indexes.append(index)
        if len(indexes) >= BLOCK:
            store.journal_mark(run_id, indexes, "skipped", why)
            skipped, indexes = skipped + len(indexes), []
    if indexes:
        store.journal_mark(run_id, indexes, "skipped", why)
    return skipped + len(indexes)


def _record(
    store: Store,
    run_id: int,
    unit: Unit,
    answers: list[Answer],
    outcomes: Outcomes,
    fold: Fold,
) -> None:
    with store.transaction() as conn:
        created_tags: set[str] = set()  # journaled once per unit
        for (index, planned), answer in zip(unit, answers, strict=True):
            if answer.ok:
                outcomes.put(index, "succeeded")
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
                outcomes.put(index, "failed", answer.error)
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
    if action.account_wide:  # only the items it can touch: never the whole mirror
        library = touchable(store, [planned])
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
