"""How a client waits, and when it stops: the retry and rate-limit policy.

- a failed attempt worth retrying waits a capped exponential backoff with
  full jitter, or the ``Retry-After`` the server gave, never longer than
  ``max_wait`` (then the caller's error says to try again later);
- a rate limit (429, or what a client's ``rate_limited`` calls one) is
  waited out, ``Retry-After`` honoured and exponential without it, at most
  ``MAX_RATE_WAITS`` times and never longer than ``max_wait`` a wait; then
  (and from then on, for every client sharing its ``RateBudget``) a
  ``RateLimited`` error says when to try again;
- ``give_up`` words the error after the last retry.

The attempts themselves (what failed, whether it may be retried) are
``rulebot.http.client``'s; this module only decides how long to wait.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable

from rulebot.errors import RateLimited, RulebotError

logger = logging.getLogger("rulebot.http")

MAX_BACKOFF = 60.0  # seconds; cap of one backoff sleep
GARBAGE_RETRIES = 2  # a 2xx that should be JSON and is not: retried this often
MAX_RATE_WAITS = 10  # consecutive 429 waits before giving up


class RateBudget:
    """The waiting one run may spend on rate limits, shared by every
    ``HttpClient`` of a service (one per worker thread): once one request
    gave up, the others give up at their next rate limit instead of waiting
    the whole budget again."""

    def __init__(self) -> None:
        self.spent: RateLimited | None = None


class Retry(Exception):
    """A failed attempt. ``unanswered``: no HTTP answer came (a connection
    problem or a timeout); ``final``: and none will come by trying again;
    ``maybe_sent``: False when the request surely never reached the server."""

    def __init__(
        self,
        problem: str,
        wait: float | None = None,
        *,
        garbage: bool = False,
        unanswered: bool = False,
        final: bool = False,
        maybe_sent: bool = True,
        timed_out: bool = False,
    ) -> None:
        super().__init__(problem)
        self.problem, self.wait, self.garbage = problem, wait, garbage
        self.unanswered, self.final = unanswered or final, final
        self.maybe_sent, self.timed_out = maybe_sent, timed_out


class RateLimitAnswer(Exception):
    """An attempt answered with a rate limit."""

    def __init__(self, wait: float | None) -> None:
        super().__init__("rate limited")
        self.wait = wait  # None: back off exponentially


class Waiting:
    """One client's waits: ``origin`` names the server in messages, ``error``
    and ``rate_error`` are the caller's error classes, ``on_wait`` hears
    about rate-limit waits (else a warning), ``sleep`` is injectable."""

    def __init__(
        self,
        origin: str,
        *,
        max_retries: int,
        backoff_base: float,
        max_wait: float,
        sleep: Callable[[float], None],
        on_wait: Callable[[str], None] | None,
        budget: RateBudget,
        error: type[RulebotError],
        rate_error: type[RulebotError],
    ) -> None:
        self.origin = origin
        self.max_retries, self.backoff_base, self.max_wait = max_retries, backoff_base, max_wait
        self._sleep, self._on_wait, self._budget = sleep, on_wait, budget
        self._error, self._rate_error = error, rate_error

    def pause(self, failures: int, label: str, problem: str, after: float | None = None) -> None:
        """Wait before retry number ``failures``: ``after`` seconds when the
        server said so, else capped, jittered backoff."""
        delay = self._backoff(failures, after, label, problem)
        logger.info(
            "%s: %s; retry %d of %d in %.1f s", label, problem, failures, self.max_retries, delay
        )
        self._sleep(delay)

    def rate_wait(self, label: str, wait: float | None, waits: int) -> None:
        """Wait out rate limit number ``waits`` in a row (``wait``: the seconds
        the server asked for, None: back off), or raise when that is too long."""
        told = wait is not None  # the server said how long
        if wait is None:  # no Retry-After: exponential, capped
            wait = min(MAX_BACKOFF, max(1.0, self.backoff_base) * 2 ** (waits - 1))
        seconds = wait
        spent = self._budget.spent
        if spent is not None:  # another request of this run waited it all already: the same end
            error = self._rate_error(str(spent))
            if isinstance(error, RateLimited):
                error.retry_at = spent.retry_at
            raise error
        if waits > MAX_RATE_WAITS:
            raise self._rate_stop(
                f"{label}: {self.origin} still rate limited after waiting {MAX_RATE_WAITS} times",
                time.time() + seconds if told else None,
            )
        if seconds > self.max_wait:
            raise self._rate_stop(
                f"{label}: {self.origin} is rate limiting and asked to wait "
                f"{math.ceil(seconds)} s, longer than the {self.max_wait:g} s allowed",
                time.time() + seconds,
            )
        self.tell(f"rate limit reached; waiting {math.ceil(seconds)} s for reset", label)
        self._sleep(seconds)

    def _rate_stop(self, problem: str, retry_at: float | None) -> RulebotError:
        """The rate-limit error: what happened and when to try again; the
        budget is marked spent for every client sharing it."""
        if retry_at is None:
            hint = "the server did not say when its limit resets; try again later"
        else:
            minutes = max(1, math.ceil((retry_at - time.time()) / 60))
            stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(math.ceil(retry_at)))
            hint = f"try again after {stamp} (in {minutes} min)"
        error = self._rate_error(f"{problem}; {hint}")
        if isinstance(error, RateLimited):
            error.retry_at = retry_at
            self._budget.spent = self._budget.spent or error
        return error

    def _backoff(self, failures: int, after: float | None, label: str, problem: str) -> float:
        if after is not None:
            if after > self.max_wait:
                raise self._error(
                    f"{label}: {problem} and asked to retry after {after:g} s, longer "
                    f"than the {self.max_wait:g} s allowed; try again later"
                )
            return after
        ceiling = min(MAX_BACKOFF, self.backoff_base * 2 ** (failures - 1))
        return random.uniform(0, ceiling)  # full jitter

    def tell(self, message: str, label: str = "") -> None:
        """A wait the user should hear about: via ``on_wait``, else a warning."""
        logged = f"{label}: {message}" if label else message
        if self._on_wait is not None:
            logger.info("%s", logged)
            self._on_wait(message)
        else:
            logger.warning("%s", logged)

    @staticmethod
    def give_up(label: str, problems: list[str]) -> str:
        """The message after the last retry: what failed, how often."""
        count = len(problems)
        times = "once" if count == 1 else f"{count} times"
        if len(set(problems)) == 1:
            return f"{label}: {problems[0]} {times}; giving up"
        return f"{label}: failed {times} (last: {problems[-1]}); giving up"
