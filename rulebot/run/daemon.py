"""`rulebot daemon`: stay up, run scheduled rules when they come due.

The loop, in one place: read each scheduled rule's last run, sleep until the
earliest next due time (in steps, re-reading the clock, so a suspended
laptop or an NTP jump is noticed), then hand the rules to ``run_due``, which
does exactly what ``rulebot run --due`` does under the store lock. The lock
is held only inside ``run_due``, so ``rulebot plan`` works between runs.

Which rules: only enabled rules with a ``schedule:``. "No schedule" means
"every run" for ``run --due``, and a daemon has no runs of its own to attach
that to (running them at every wake-up would tie them to other rules'
schedules), so the CLI names them at start-up and leaves them to ``run``.
A config with no such rule is ``NothingScheduled``: the daemon says so and
exits 0, since there is nothing to do, not something that failed.

Failures (a ``RulebotError``: a held lock, a refused limit, a server
error, a failed action; or any other exception of one cycle, a bug or an
``OSError``: one line, the traceback at debug level) are logged, and the
next attempt waits
``backoff_first`` seconds, doubling up to ``backoff_cap``; a failed rule's
last run is not recorded, so it is retried, once, after the back-off.

Stopping: SIGTERM or SIGINT sets ``stop``; a sleep ends at once; a run in
progress finishes the batch in flight (the sender checks ``stop`` between
batches and reports the rest as skipped) and the loop returns. A
second signal interrupts the run (KeyboardInterrupt); the journal makes
even that safe to resume. The clock, the sleep and ``run_due`` are
injected, so tests drive the loop without waiting.
"""

from __future__ import annotations

import datetime as dt
import gc
import logging
import signal
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import FrameType
from typing import Generic, TypeVar

from rulebot.errors import RulebotError
from rulebot.rules.schedule import Scheduled, next_due

logger = logging.getLogger("rulebot.daemon")


class NothingScheduled(RulebotError):
    """No enabled rule has a ``schedule:``, so the daemon has nothing to wait for.

    Not a failure: the config is valid and its rules are ``rulebot run``'s.
    The daemon says why and exits 0, rulebot's code for "nothing to do" (as
    ``run --due`` when no rule is due). Exiting 1 made a supervisor's
    restart-on-failure (systemd's ``Restart=on-failure``, Docker's
    ``on-failure``) start it again every few seconds, forever, only to read
    the same config; a 0 needs no unit to know a special code.
    """

    exit_code = 0


@dataclass(frozen=True, slots=True)
class CycleReport:
    """What one run did: the rules that ran and the action outcomes."""

    rules: tuple[str, ...] = ()
    succeeded: int = 0
    failed: int = 0
    skipped: int = 0

    def line(self) -> str:
        text = (
            f"ran {len(self.rules)} rule{'s' if len(self.rules) != 1 else ''}: "
            f"{self.succeeded} succeeded, {self.failed} failed"
        )
        return text + (f", {self.skipped} skipped" if self.skipped else "")


R = TypeVar("R", bound=Scheduled)


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 120:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 120:
        return f"{minutes}m{seconds:02d}s" if seconds else f"{minutes}m"
    return f"{minutes // 60}h{minutes % 60:02d}m"


@dataclass
class Daemon(Generic[R]):
    rules: Sequence[R]  # enabled rules with a schedule
    tz: dt.tzinfo
    last_runs: Callable[[], Mapping[str, int | None]]  # reads the store, no lock
    # takes the lock, runs the rules that are due, records them
    run_due: Callable[[Sequence[R], int], CycleReport]
    log: Callable[[str], None]  # one line per run
    warn: Callable[[str], None]  # one line per failure
    clock: Callable[[], float] = time.time
    stop: threading.Event = field(default_factory=threading.Event)
    # Sleep up to N seconds; returns True when stopped. Default: stop.wait.
    sleep: Callable[[float], bool] | None = None
    max_step: float = 60.0  # re-read the clock at least this often
    backoff_first: float = 30.0
    backoff_cap: float = 3600.0
    failures: int = 0  # consecutive failed runs
    cycles: int = 0  # runs attempted

    def next_wake(self, now: int) -> int:
        """The earliest time any rule is due (``now`` if one is due)."""
        last = self.last_runs()
        return min(next_due(rule, last.get(rule.name), now, self.tz) for rule in self.rules)

    def backoff(self) -> float:
        """Seconds to wait after the ``failures``-th failure in a row."""
        exponent = min(max(self.failures - 1, 0), 32)
        return min(self.backoff_first * 2**exponent, self.backoff_cap)

    def serve(self) -> None:
        """Run until ``stop`` is set."""
        retry_at = 0.0
        while not self.stop.is_set():
            try:
                wake = max(float(self.next_wake(int(self.clock()))), retry_at)
            except Exception as err:  # one bad cycle must not end the daemon
                retry_at = self._failed(f"cannot read the schedule: {_describe(err)}")
                continue
            if self._sleep_until(wake):
                break
            self.cycles += 1
            try:
                report = self.run_due(self.rules, int(self.clock()))
            except Exception as err:  # KeyboardInterrupt, SystemExit still stop
                retry_at = self._failed(f"run failed: {_describe(err)}")
                continue
            finally:
                gc.unfreeze()  # what a run froze (bulk.gc_paused) is scanned again while idle
            if not report.rules:
                continue  # another process ran them first
            self.log(report.line())
            if report.failed:
                retry_at = self._failed(
                    f"{report.failed} action{'s' if report.failed != 1 else ''} failed"
                )
            else:
                self.failures, retry_at = 0, 0.0

    def _failed(self, message: str) -> float:
        self.failures += 1
        delay = self.backoff()
        self.warn(f"{message}; retrying in {_duration(delay)}")
        return self.clock() + delay

    def _sleep_until(self, wake: float) -> bool:
        """Sleep until the clock reaches ``wake``; True when stopped first."""
        sleep = self.sleep or self.stop.wait
        while not self.stop.is_set():
            remaining = wake - self.clock()
            if remaining <= 0:
                return False
            logger.debug("sleeping %.0fs", remaining)
            if sleep(min(remaining, self.max_step)):
                break
        return True


def _describe(err: Exception) -> str:
    """A cycle's failure in one line; anything but a RulebotError is a bug
    or an environment problem, so its type is named and its traceback logged."""
    if isinstance(err, RulebotError):
        return str(err)
    logger.debug("cycle failed", exc_info=err)
    text = " ".join(str(err).split())[:300]
    return f"internal error: {type(err).__name__}: {text}" if text else type(err).__name__


def stop_on_signals(stop: threading.Event, received: list[str]) -> Callable[[], None]:
    """SIGTERM/SIGINT set ``stop`` (a second one interrupts); returns a restore."""

    def handle(signum: int, frame: FrameType | None) -> None:
        if received:
            raise KeyboardInterrupt
        received.append(signal.Signals(signum).name)
        # Set from a thread: the handler runs on the main thread, which may be
        # inside Event.wait holding the Event's (non-reentrant) lock.
        threading.Thread(target=stop.set, daemon=True).start()

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGTERM, signal.SIGINT)}

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    return restore
