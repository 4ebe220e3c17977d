"""Rate-limit pacing: a service's declared limits, kept by every request of a run.

Hosted services (Readwise Reader, Raindrop.io) allow so many requests a
minute per endpoint class, and answer 429 beyond that. rulebot paces itself
*within* the limits instead of running into them:

- a service client declares its classes (``ServiceClient.rate_limits``:
  class -> requests per minute; ``rate_class(method, path)`` names the class
  of one request) and the config may change them (``rate_limits:`` in the
  source block, for a limit the service changed);
- a ``Pacer`` (one per client, shared by its worker threads) keeps at most
  that many requests of a class in any 60-second window: a request that
  would exceed it waits for its slot first. A 429 and its ``Retry-After``
  are still honoured on top (``rulebot.http``);
- ``estimate`` says what a plan costs: requests per class and roughly how
  long they take at those limits, and with a ``time_budget`` how many of
  its actions fit (the plan's ``pacing``, shown in its footer);
- ``TimeBudget`` is the apply's side of ``time_budget``: before each unit
  (one rule's actions on one item, never split) the applier asks whether
  its requests would still finish within the budget; the first that would
  not, and every unit after it, is journaled as not sent and left for the
  next run.

A source that declares limits gives its session a ``unit_cost`` (requests
per class for one unit) and its ``Service`` (``rules.schema``) its classes,
so the config offers ``rate_limits`` and ``time_budget``.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rulebot.planning.render import duration_text

if TYPE_CHECKING:
    from rulebot.planning.plan import PlannedAction

WINDOW = 60.0  # seconds: limits are per minute
# a slot is reused this much after the window: the service counts a request
# when it arrives, and one sent at the start of a window may arrive late (a
# new connection's handshake) while its successor a minute on arrives at
# once; spaced exactly 60 s, 4 of 100 Readwise updates met a 429 and the
# run took twice as long (benchmarks/bench_network.py)
MARGIN = 1.0
LATENCY = 0.3  # seconds one request takes, roughly (an estimate adds it per request)
# what the applier journals for a unit the time budget had no room for
OVER_BUDGET = "not sent: it did not fit in the time budget ({budget}); the next run plans it again"

Cost = Mapping[str, int]  # requests per rate class


class Pacer:
    """At most ``limits[class]`` requests of a class in any ``WINDOW``
    seconds; a class without a limit is never held back. Thread-safe: each
    request reserves its slot under the lock, then sleeps outside it."""

    def __init__(
        self,
        limits: Mapping[str, int],
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        on_wait: Callable[[str], None] | None = None,
    ) -> None:
        self.limits = {name: int(n) for name, n in limits.items() if n and n > 0}
        self.clock, self._sleep, self._on_wait = clock, sleep, on_wait
        self._sent: dict[str, deque[float]] = {name: deque() for name in self.limits}
        self._lock = threading.Lock()
        self.waited = 0.0  # seconds spent waiting for slots, over all threads

    def wait(self, rate_class: str) -> float:
        """Before one request of ``rate_class``: wait for its slot (seconds waited)."""
        with self._lock:
            now = self.clock()
            at = self._reserve(rate_class, now, self._sent)
        delay = max(0.0, at - now)
        if delay > 0:
            with self._lock:
                self.waited += delay
            if delay >= 5 and self._on_wait is not None:
                self._on_wait(
                    f"pacing within the {rate_class} rate limit "
                    f"({self.limits[rate_class]}/min): waiting {math.ceil(delay)} s"
                )
            self._sleep(delay)
        return delay

    def finish_at(self, cost: Cost, latency: float = LATENCY) -> float:
        """When ``cost`` (requests per class), sent one after another from now,
        would be done, on this pacer's clock (nothing is reserved)."""
        with self._lock:
            sent = {name: deque(times) for name, times in self._sent.items()}
            return _simulate(self.limits, [cost], self.clock(), sent, latency)[0]

    def _reserve(self, rate_class: str, now: float, sent: dict[str, deque[float]]) -> float:
        limit = self.limits.get(rate_class)
        if limit is None:
            return now
        times = sent[rate_class]
        while times and times[0] <= now - WINDOW:
            times.popleft()
        at = now
        if len(times) >= limit:
            at = max(at, times[-limit] + WINDOW + MARGIN)
        if times:
            at = max(at, times[-1])  # slots stay in order
        times.append(at)
        return at


def _simulate(
    limits: Mapping[str, int],
    costs: Iterable[Cost],
    start: float,
    sent: dict[str, deque[float]],
    latency: float,
) -> list[float]:
    """When each of ``costs`` would be done, sent one after another from
    ``start`` (``sent``: the slots already taken, changed in place)."""
    pacer = Pacer(limits)
    pacer._sent.update(sent)
    now = start
    done: list[float] = []
    for cost in costs:
        for rate_class, count in sorted(cost.items()):
            for _ in range(count):
                now = pacer._reserve(rate_class, now, pacer._sent) + latency
        done.append(now)
    return done


class TimeBudget:
    """An apply's ``time_budget`` (seconds, from when the apply starts): a
    unit fits when its requests would be done by the deadline at the
    pacer's limits (no pacer: while time is left)."""

    def __init__(self, seconds: int, pacer: Pacer | None, *, text: str = "") -> None:
        self.seconds, self.pacer = seconds, pacer
        self.clock = pacer.clock if pacer is not None else time.monotonic
        self.deadline = self.clock() + seconds
        self.text = text or duration_text(seconds)

    def fits(self, cost: Cost) -> bool:
        if self.pacer is None:
            return self.clock() < self.deadline
        return self.pacer.finish_at(cost) <= self.deadline

    @property
    def why(self) -> str:
        return OVER_BUDGET.format(budget=self.text)


@dataclass
class Estimate:
    """What a plan costs at the service's limits."""

    limits: dict[str, int]
    by_class: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    actions: int = 0
    time_budget: int | None = None
    fits_actions: int | None = None  # with a budget: the actions that fit (a prefix of units)
    fits_requests: int | None = None

    @property
    def requests(self) -> int:
        return sum(self.by_class.values())

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "requests": self.requests,
            "by_class": dict(sorted(self.by_class.items())),
            "seconds": math.ceil(self.seconds),
            "limits": dict(sorted(self.limits.items())),
        }
        if self.time_budget is not None:
            data["time_budget"] = self.time_budget
            data["fits"] = {"actions": self.fits_actions, "requests": self.fits_requests}
        return data


def estimate(
    costs: Iterable[tuple[int, Cost]],
    limits: Mapping[str, int],
    *,
    time_budget: int | None = None,
    latency: float = LATENCY,
) -> Estimate:
    """``costs``: per unit in plan order, its actions and requests per class.
    The time is the pacer's, requests sent one after another, each taking
    ``latency``; with ``time_budget`` the units that fit are a prefix, as
    the applier sends them."""
    result = Estimate(dict(limits), time_budget=time_budget)
    if time_budget is not None:
        result.fits_actions = result.fits_requests = 0
    pacer = Pacer(limits)
    now = 0.0
    fitting = True
    for actions, cost in costs:
        for rate_class, count in sorted(cost.items()):
            result.by_class[rate_class] = result.by_class.get(rate_class, 0) + count
            for _ in range(count):
                now = pacer._reserve(rate_class, now, pacer._sent) + latency
        result.actions += actions
        if time_budget is not None and fitting:
            fitting = now <= time_budget
            if fitting:
                result.fits_actions = (result.fits_actions or 0) + actions
                result.fits_requests = (result.fits_requests or 0) + sum(cost.values())
    result.seconds = now
    return result


def plan_units(actions: Iterable[PlannedAction]) -> Iterator[list[PlannedAction]]:
    """A plan's actions as the applier's units (``applier.units_of``), streamed:
    one rule's consecutive actions on one item, or one account-wide action."""
    unit: list[PlannedAction] = []
    for planned in actions:
        if (
            unit
            and planned.item_id is not None
            and (unit[-1].rule, unit[-1].item_id) == (planned.rule, planned.item_id)
        ):
            unit.append(planned)
            continue
        if unit:
            yield unit
        unit = [planned]
    if unit:
        yield unit


def plan_estimate(
    actions: Iterable[PlannedAction],
    unit_cost: Callable[[Sequence[PlannedAction]], Cost],
    limits: Mapping[str, int],
    time_budget: int | None = None,
) -> Estimate:
    """``estimate`` for a plan's actions, each unit costed by ``unit_cost``."""
    costs = ((len(unit), unit_cost(unit)) for unit in plan_units(actions))
    return estimate(costs, limits, time_budget=time_budget)
