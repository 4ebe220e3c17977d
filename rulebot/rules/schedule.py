"""Cron schedules: when a rule is due, when it runs next.

A rule is due when it never ran, or when its most recent cron time at or
before now is later than its last successful run: a late start (GitHub
Actions ``schedule:`` is often minutes late) still catches up, once, and two
starts inside one window run it once. A rule without a schedule is due on
every run.

Times are in the config's timezone, so "0 6 * * *" means 06:00 local, and
DST changes behave like Vixie cron / cronie:

- spring forward: a wall time that does not exist (02:30 on the day clocks
  jump from 02:00 to 03:00) fires once, at the end of the gap (03:00);
- fall back: a wall time that happens twice (02:30 on the day clocks go
  from 03:00 back to 02:00) fires once, the first time, unless the hour
  field is a wildcard (``* * * * *``, ``0 * * * *``, ``*/2 …``): those keep
  firing every real minute or hour through the repeated hour.

croniter walks naive wall-clock times (no DST at all); each wall time is
then mapped to instants here, so the rules above are ours, not croniter's.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

# Wider than any DST shift (Antarctica/Troll moves by 2 h): a wall time
# farther than this from now's wall time cannot map to an instant near now.
_MARGIN = dt.timedelta(hours=3)


class Scheduled(Protocol):
    name: str
    schedule: str | None


def _walk(expr: str, start: dt.datetime, *, backwards: bool) -> Iterator[dt.datetime]:
    """Naive wall-clock cron times strictly after (or before) ``start``."""
    from croniter import croniter  # lazy: only schedules need it

    times = croniter(expr, start)
    step = times.get_prev if backwards else times.get_next
    while True:
        yield step(dt.datetime)


# A schedule with no fire time in this many years is a mistake (31 February), not a plan.
FIRE_HORIZON_YEARS = 8


def fires_within(expr: str, start: dt.datetime, years: int = FIRE_HORIZON_YEARS) -> bool:
    """Whether a (valid) cron expression fires in the ``years`` after ``start``, any field
    combination (``0 0 31 2 ?``, ``0 0 30 2 mon#5``): croniter, which runs it, decides."""
    from croniter import croniter

    try:
        croniter(expr, start, max_years_between_matches=years).get_next(dt.datetime)
    except (ValueError, KeyError, OverflowError):  # CroniterBadDateError is a ValueError
        return False
    return True


def _repeats_in_fold(expr: str) -> bool:
    """A wildcard hour fires in both passes of a repeated hour (cronie's HR_STAR)."""
    fields = expr.split()
    return len(fields) >= 2 and fields[1].startswith("*")


def _offset(ts: int, tz: dt.tzinfo) -> dt.timedelta | None:
    return dt.datetime.fromtimestamp(ts, tz).utcoffset()


def _gap_end(before: int, after: int, tz: dt.tzinfo) -> int:
    """The instant a clock jump happens, between ``before`` and ``after``."""
    target = _offset(after, tz)
    while after - before > 1:  # offset(before) != target == offset(after)
        middle = (before + after) // 2
        if _offset(middle, tz) == target:
            after = middle
        else:
            before = middle
    return after


def _instants(wall: dt.datetime, tz: dt.tzinfo, *, repeat: bool) -> list[int]:
    """The instants at which a cron wall time fires (see the module docstring)."""
    first = int(wall.replace(tzinfo=tz, fold=0).timestamp())
    second = int(wall.replace(tzinfo=tz, fold=1).timestamp())
    if first == second:
        return [first]
    if first < second:  # happens twice (fall back)
        return [first, second] if repeat else [first]
    return [_gap_end(second, first, tz)]  # does not exist (spring forward)


def _wall(ts: int, tz: dt.tzinfo) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, tz).replace(tzinfo=None)


def previous_fire(expr: str, now: int, tz: dt.tzinfo) -> int:
    """The latest cron time at or before ``now``."""
    repeat = _repeats_in_fold(expr)
    best: int | None = None
    best_wall = dt.datetime.min
    start = _wall(now, tz) + _MARGIN + dt.timedelta(seconds=1)
    for wall in _walk(expr, start, backwards=True):
        if best is not None and wall < best_wall - _MARGIN:
            return best
        for instant in _instants(wall, tz, repeat=repeat):
            if instant <= now and (best is None or instant > best):
                best, best_wall = instant, wall
    raise AssertionError("unreachable")  # pragma: no cover - the walk is endless


def next_fire(expr: str, now: int, tz: dt.tzinfo) -> int:
    """The first cron time strictly after ``now``."""
    repeat = _repeats_in_fold(expr)
    best: int | None = None
    best_wall = dt.datetime.max
    for wall in _walk(expr, _wall(now, tz) - _MARGIN, backwards=False):
        if best is not None and wall > best_wall + _MARGIN:
            return best
        for instant in _instants(wall, tz, repeat=repeat):
            if instant > now and (best is None or instant < best):
                best, best_wall = instant, wall
    raise AssertionError("unreachable")  # pragma: no cover - the walk is endless


def is_due(rule: Scheduled, last_run: int | None, now: int, tz: dt.tzinfo) -> bool:
    if not rule.schedule or last_run is None:
        return True
    return previous_fire(rule.schedule, now, tz) > last_run


def next_due(rule: Scheduled, last_run: int | None, now: int, tz: dt.tzinfo) -> int:
    """When the rule will next be due (``now``, if it is due already)."""
    if not rule.schedule or is_due(rule, last_run, now, tz):
        return now
    return next_fire(rule.schedule, now, tz)


def nothing_due(
    rules: Sequence[Scheduled], last_runs: Mapping[str, int | None], now: int, tz: dt.tzinfo
) -> str:
    """What `--due` says, in one line, when none of ``rules`` is due."""
    upcoming = sorted((next_due(r, last_runs.get(r.name), now, tz), r.name) for r in rules)
    if not upcoming:
        return "no rule is due (no rule is enabled): nothing synced, nothing sent"
    when, name = upcoming[0]
    return f"no rule is due (next: {name} at {_local(when, tz)}): nothing synced, nothing sent"


# -- the `rulebot schedule` report -------------------------------------------------


class ScheduledRule(Scheduled, Protocol):
    enabled: bool


@dataclass(frozen=True, slots=True)
class ScheduleRow:
    """One rule in `rulebot schedule`: times are unix seconds or None."""

    name: str
    enabled: bool
    schedule: str | None
    last_run: int | None
    next_due: int | None  # None: disabled, never runs
    due: bool


def schedule_rows(
    rules: Sequence[ScheduledRule], last_runs: Mapping[str, int | None], now: int, tz: dt.tzinfo
) -> list[ScheduleRow]:
    rows = []
    for rule in rules:
        last = last_runs.get(rule.name)
        enabled = rule.enabled
        rows.append(
            ScheduleRow(
                name=rule.name,
                enabled=enabled,
                schedule=rule.schedule or None,
                last_run=last,
                next_due=next_due(rule, last, now, tz) if enabled else None,
                due=enabled and is_due(rule, last, now, tz),
            )
        )
    return rows


def _iso(ts: int | None, tz: dt.tzinfo) -> str | None:
    return None if ts is None else dt.datetime.fromtimestamp(ts, tz).isoformat()


def schedule_json(rows: Sequence[ScheduleRow], now: int, tz: dt.tzinfo, tz_name: str) -> str:
    document: dict[str, Any] = {
        "format_version": 1,
        "timezone": tz_name,
        "now": _iso(now, tz),
        "rules": [
            {
                "name": row.name,
                "enabled": row.enabled,
                "schedule": row.schedule,
                "last_run": _iso(row.last_run, tz),
                "next_due": _iso(row.next_due, tz),
                "due": row.due,
            }
            for row in rows
        ],
    }
    return json.dumps(document, indent=2, ensure_ascii=False)


def _local(ts: int, tz: dt.tzinfo) -> str:
    return dt.datetime.fromtimestamp(ts, tz).strftime("%Y-%m-%d %H:%M %Z")


def schedule_text(rows: Sequence[ScheduleRow], now: int, tz: dt.tzinfo, tz_name: str) -> str:
    table = [("rule", "schedule", "last run", "next due", "due now")]
    for row in rows:
        if not row.enabled:
            upcoming = "disabled"
        elif row.due:
            upcoming = "now"
        else:
            upcoming = _local(row.next_due or now, tz)
        table.append(
            (
                row.name,
                row.schedule or "every run",
                "never" if row.last_run is None else _local(row.last_run, tz),
                upcoming,
                "yes" if row.due else "no",
            )
        )
    widths = [max(len(line[i]) for line in table) for i in range(len(table[0]))]
    lines = [f"Times in {tz_name}; now {_local(now, tz)}", ""]
    lines += [
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
        for line in table
    ]
    if not rows:
        lines.append("(no rules)")
    return "\n".join(lines)
