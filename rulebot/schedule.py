"""Cron schedules: when a rule is due, when it runs next.

A rule is due when it never ran, or when its most recent cron time at or
before now is later than its last successful run: a late start (GitHub
Actions ``schedule:`` is often minutes late) still catches up, once, and two
starts inside one window run it once. Times are in the config's timezone,
so "0 6 * * *" means 06:00 local, across DST changes.
"""

from __future__ import annotations

import datetime as dt
from typing import Protocol


class Scheduled(Protocol):
    name: str
    schedule: str | None


def _cron(expr: str, start: dt.datetime):  # type: ignore[no-untyped-def]
    from croniter import croniter  # lazy: only schedules need it

    return croniter(expr, start)


def previous_fire(expr: str, now: int, tz: dt.tzinfo) -> int:
    """The latest cron time at or before ``now``."""
    # croniter's get_prev is strictly before its start; start a second later
    start = dt.datetime.fromtimestamp(now + 1, tz)
    return int(_cron(expr, start).get_prev(dt.datetime).timestamp())


def next_fire(expr: str, now: int, tz: dt.tzinfo) -> int:
    """The first cron time strictly after ``now``."""
    start = dt.datetime.fromtimestamp(now, tz)
    return int(_cron(expr, start).get_next(dt.datetime).timestamp())


def is_due(rule: Scheduled, last_run: int | None, now: int, tz: dt.tzinfo) -> bool:
    if not rule.schedule or last_run is None:
        return True
    return previous_fire(rule.schedule, now, tz) > last_run


def next_due(rule: Scheduled, last_run: int | None, now: int, tz: dt.tzinfo) -> int:
    """When the rule will next be due (now, if it is due already)."""
    if is_due(rule, last_run, now, tz) or not rule.schedule:
        return now
    return next_fire(rule.schedule, now, tz)
