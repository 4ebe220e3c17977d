"""Sync cursors: a server's time, believed only as far as this machine can justify.

A cursor says "every change before this time is in the mirror"; the next
incremental sync asks only for what changed since. One that runs ahead of
the server's real clock hides every change made in between, for good: the
rules then act on a stale mirror (an item the user just tagged ``keep`` is
deleted) until a full sync. Servers hand out their time in a ``Date``
header or a ``since`` field, and either can be wrong (a clock set to 2100,
a proxy's garbled header, ``9999-12-31 … -2359``). So:

- a server's time up to this machine's clock plus ``MAX_SKEW`` is believed;
  beyond that it is not used at all (a warning says so), and the cursor
  stays where the client can vouch for it: where it was, or a time both
  the server's own changes and this machine's clock (less the skew) have
  passed. A cursor held back costs a few changes read twice, never one
  missed;
- a stored cursor beyond that (written by an older rulebot, or before this
  machine's clock was set back) is not used: the sync is a full one, which
  always writes a fresh cursor.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

logger = logging.getLogger("rulebot.sync")

MAX_SKEW = 300  # seconds a server's clock may run ahead of this machine's (Kerberos' 5 min)


def believable(stamp: int, what: str, *, clock: Callable[[], float] = time.time) -> int | None:
    """``stamp`` (a server's time, unix seconds, from ``what``), or None with a
    warning when it is beyond this machine's clock + ``MAX_SKEW``."""
    now = int(clock())
    if stamp <= now + MAX_SKEW:
        return stamp
    logger.warning(
        "%s says %s, %s ahead of this machine's clock; not believed, so the sync "
        "cursor does not move past what this machine can vouch for (check the "
        "server's clock, or the proxy in front of it)",
        what,
        _when(stamp),
        _duration(stamp - now),
    )
    return None


def vouched(newest: int, *, clock: Callable[[], float] = time.time) -> int:
    """A cursor from the newest change a server listed, when its own clock cannot
    be had or believed, and no later than this machine's clock less
    ``MAX_SKEW`` either: each bound is at or behind the server's clock unless
    a change is dated ahead of it (skew, an import) or the server's clock runs
    more than ``MAX_SKEW`` behind ours, so the lower one is, unless both."""
    return max(0, min(newest, int(clock()) - MAX_SKEW))


def from_the_future(cursor: int, what: str, *, clock: Callable[[], float] = time.time) -> bool:
    """Whether a stored ``cursor`` is beyond anything ``believable`` lets through;
    then it must not be used, and a warning says why the sync is a full one."""
    if cursor <= int(clock()) + MAX_SKEW:
        return False
    logger.warning(
        "the stored %s (%s) is ahead of this machine's clock, so changes since the "
        "last sync may be missing from the mirror; syncing everything to repair it",
        what,
        _when(cursor),
    )
    return True


def _when(stamp: int) -> str:
    try:
        return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        return f"{stamp} (unix seconds)"


def _duration(seconds: int) -> str:
    for unit, size in (("days", 86400), ("h", 3600), ("min", 60)):
        if seconds >= 2 * size:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"
