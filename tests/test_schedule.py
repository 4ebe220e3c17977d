"""When rules are due: cron times across boundaries and DST, with an injected clock.

No test sleeps: "now" is a parameter everywhere. ``simulate`` plays a runner
that starts ``rulebot run --due`` at given instants and records a rule's last
run only when it ran, exactly as the CLI does.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from rulebot.cli import main
from rulebot.fake.karakeep import FakeKarakeep
from rulebot.fake.readeck import FakeReadeck
from rulebot.fake.wallabag import FakeWallabag
from rulebot.fakepocket import FakePocket
from rulebot.library.store import Store
from rulebot.rules.schedule import (
    is_due,
    next_due,
    next_fire,
    previous_fire,
    schedule_rows,
    schedule_text,
)
from tests.conftest import ACCESS_TOKEN, CONSUMER_KEY
from tests.helpers import clear_rulebot_env, rb

UTC = dt.UTC
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
MINUTE, HOUR, DAY = 60, 3600, 86400


@dataclass
class R:
    name: str = "r"
    schedule: str | None = None
    enabled: bool = True


def at(tz: dt.tzinfo, *fields: int, fold: int = 0) -> int:
    """Unix seconds of a local wall time in ``tz``."""
    wall = dt.datetime(*fields)  # type: ignore[arg-type]  # (year, month, day, ...)
    return int(wall.replace(tzinfo=tz, fold=fold).timestamp())


def local(ts: int, tz: dt.tzinfo) -> str:
    return dt.datetime.fromtimestamp(ts, tz).isoformat()


def simulate(rule: R, tz: dt.tzinfo, starts: Iterable[int], last_run: int | None) -> list[int]:
    """The starts at which a `run --due` would run ``rule``."""
    ran = []
    for now in starts:
        if is_due(rule, last_run, now, tz):
            ran.append(now)
            last_run = now
    return ran


def every_minute(start: int, end: int) -> range:
    return range(start, end, MINUTE)


# -- boundaries ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "last", "before", "fire"),
    [
        # minute: ran at 10:00:30, due again at 10:01:00, not a second earlier
        ("* * * * *", (2026, 5, 4, 10, 0, 30), (2026, 5, 4, 10, 0, 59), (2026, 5, 4, 10, 1)),
        ("0 * * * *", (2026, 5, 4, 9, 0, 5), (2026, 5, 4, 9, 59, 59), (2026, 5, 4, 10, 0)),
        ("0 6 * * *", (2026, 5, 3, 6, 0, 0), (2026, 5, 4, 5, 59, 59), (2026, 5, 4, 6, 0)),
        ("0 0 1 * *", (2026, 1, 1, 0, 0, 10), (2026, 1, 31, 23, 59, 59), (2026, 2, 1, 0, 0)),
        ("0 0 1 * *", (2026, 12, 1, 0, 0, 0), (2026, 12, 31, 23, 59, 59), (2027, 1, 1, 0, 0)),
        ("0 6 * * 1", (2026, 5, 4, 6, 0, 0), (2026, 5, 11, 5, 59, 0), (2026, 5, 11, 6, 0)),
        ("0 0 29 2 *", (2024, 2, 29, 0, 0, 0), (2028, 2, 28, 23, 59, 0), (2028, 2, 29, 0, 0)),
    ],
)
@pytest.mark.parametrize("tz", [UTC, BERLIN, NEW_YORK], ids=["UTC", "Berlin", "NewYork"])
def test_due_exactly_from_the_cron_time(
    expr: str, last: tuple[int, ...], before: tuple[int, ...], fire: tuple[int, ...], tz: dt.tzinfo
) -> None:
    rule = R(schedule=expr)
    last_run, fire_at = at(tz, *last), at(tz, *fire)
    assert not is_due(rule, last_run, at(tz, *before), tz)
    assert is_due(rule, last_run, fire_at, tz)
    assert is_due(rule, last_run, fire_at + 17 * DAY, tz)  # and stays due until it runs
    assert previous_fire(expr, fire_at, tz) == fire_at  # "at or before" includes now
    assert next_fire(expr, at(tz, *before), tz) == fire_at
    assert next_fire(expr, fire_at, tz) > fire_at  # "strictly after"
    assert next_due(rule, last_run, at(tz, *before), tz) == fire_at


def test_schedule_follows_the_config_timezone() -> None:
    rule = R(schedule="0 6 * * *")
    assert local(next_fire("0 6 * * *", at(UTC, 2026, 7, 1), BERLIN), BERLIN).endswith(
        "T06:00:00+02:00"
    )
    assert local(next_fire("0 6 * * *", at(UTC, 2026, 12, 1), BERLIN), BERLIN).endswith(
        "T06:00:00+01:00"
    )
    # 06:00 in New York is 10:00 or 11:00 UTC: not yet due at 09:00 UTC
    assert not is_due(rule, at(UTC, 2026, 6, 30, 12), at(UTC, 2026, 7, 1, 9), NEW_YORK)
    assert is_due(rule, at(UTC, 2026, 6, 30, 12), at(UTC, 2026, 7, 1, 10), NEW_YORK)


# -- DST ---------------------------------------------------------------------------------

SPRING = [(BERLIN, (2026, 3, 29)), (NEW_YORK, (2026, 3, 8))]
FALL = [(BERLIN, (2026, 10, 25)), (NEW_YORK, (2026, 11, 1))]
IDS = ["Berlin", "NewYork"]


def day_runs(expr: str, tz: dt.tzinfo, day: tuple[int, int, int]) -> list[str]:
    """Start `run --due` every minute of a local day; the local times it ran."""
    start = at(tz, *day)
    end = at(tz, *(dt.date(*day) + dt.timedelta(days=1)).timetuple()[:3])
    rule = R(schedule=expr)
    return [local(t, tz) for t in simulate(rule, tz, every_minute(start, end), start - 1)]


@pytest.mark.parametrize(("tz", "day"), SPRING, ids=IDS)
def test_spring_forward_a_skipped_time_fires_once_after_the_gap(
    tz: dt.tzinfo, day: tuple[int, int, int]
) -> None:
    date = dt.date(*day).isoformat()
    offset = local(at(tz, *day, 12), tz)[-6:]  # summer time
    assert day_runs("30 2 * * *", tz, day) == [f"{date}T03:00:00{offset}"]
    assert day_runs("0 2 * * *", tz, day) == [f"{date}T03:00:00{offset}"]
    assert day_runs("0 3 * * *", tz, day) == [f"{date}T03:00:00{offset}"]
    assert len(day_runs("0 * * * *", tz, day)) == 23  # a 23-hour day
    assert len(day_runs("*/15 2 * * *", tz, day)) == 1  # the whole missing hour: once


@pytest.mark.parametrize(("tz", "day"), FALL, ids=IDS)
def test_fall_back_a_repeated_time_fires_once(tz: dt.tzinfo, day: tuple[int, int, int]) -> None:
    date = dt.date(*day).isoformat()
    repeated = 2 if tz is BERLIN else 1  # the hour that happens twice
    summer = local(at(tz, *day, 0), tz)[-6:]
    assert day_runs(f"30 {repeated} * * *", tz, day) == [f"{date}T0{repeated}:30:00{summer}"]
    assert len(day_runs(f"*/10 {repeated} * * *", tz, day)) == 6
    # a wildcard hour keeps its rhythm through both passes (like cronie)
    assert len(day_runs("0 * * * *", tz, day)) == 25  # a 25-hour day
    assert len(day_runs("*/30 * * * *", tz, day)) == 50


@pytest.mark.parametrize(
    ("tz", "day"), SPRING + FALL, ids=[f"{i}-spring" for i in IDS] + [f"{i}-fall" for i in IDS]
)
@pytest.mark.parametrize("expr", ["30 2 * * *", "30 1 * * *", "0 * * * *", "*/20 * * * *"])
def test_previous_and_next_agree_minute_by_minute(
    tz: dt.tzinfo, day: tuple[int, int, int], expr: str
) -> None:
    start = at(tz, *day) - 2 * HOUR
    fires = [previous_fire(expr, start, tz)]
    while fires[-1] < start + 30 * HOUR:
        fires.append(next_fire(expr, fires[-1], tz))
    assert fires == sorted(set(fires))
    for now in range(start, start + 28 * HOUR, 5 * MINUTE - 7):  # off the minute, too
        latest = max(f for f in fires if f <= now)
        assert previous_fire(expr, now, tz) == latest, local(now, tz)
        assert next_fire(expr, now, tz) == min(f for f in fires if f > now), local(now, tz)


# -- catch-up and windows ------------------------------------------------------------------


def test_late_start_catches_up_once() -> None:
    rule = R(schedule="0 6 * * *")
    ran_yesterday = at(BERLIN, 2026, 5, 3, 6, 0, 4)
    # the machine was off until 09:17; then two more starts that morning
    starts = [
        at(BERLIN, 2026, 5, 4, 9, 17),
        at(BERLIN, 2026, 5, 4, 9, 40),
        at(BERLIN, 2026, 5, 4, 23),
    ]
    assert simulate(rule, BERLIN, starts, ran_yesterday) == starts[:1]
    # off for three days: still one catch-up run, not three
    starts = [at(BERLIN, 2026, 5, 7, 12), at(BERLIN, 2026, 5, 7, 13)]
    assert simulate(rule, BERLIN, starts, ran_yesterday) == starts[:1]


def test_two_starts_in_one_window_run_once() -> None:
    rule = R(schedule="*/15 * * * *")
    starts = [at(UTC, 2026, 5, 4, 10, m, s) for m, s in ((0, 0), (0, 40), (7, 0), (14, 59))]
    assert simulate(rule, UTC, starts, at(UTC, 2026, 5, 4, 9, 45)) == starts[:1]
    # GitHub Actions starts late and twice: 06:00 fires, runs at 06:12 and 06:40
    rule = R(schedule="0 6 * * *")
    starts = [at(UTC, 2026, 5, 4, 6, 12), at(UTC, 2026, 5, 4, 6, 40)]
    assert simulate(rule, UTC, starts, at(UTC, 2026, 5, 3, 6, 3)) == starts[:1]


def test_a_run_exactly_at_the_cron_time_counts_for_that_time() -> None:
    rule = R(schedule="0 6 * * *")
    six = at(UTC, 2026, 5, 4, 6)
    assert simulate(rule, UTC, [six, six, six + 59], at(UTC, 2026, 5, 3, 6)) == [six]


def test_never_ran_is_due_and_unscheduled_is_always_due() -> None:
    now = at(UTC, 2026, 5, 4, 10)
    assert is_due(R(schedule="0 6 1 1 *"), None, now, UTC)
    assert next_due(R(schedule="0 6 1 1 *"), None, now, UTC) == now
    unscheduled = R(schedule=None)
    assert is_due(unscheduled, now, now, UTC)  # even right after a run
    assert simulate(unscheduled, UTC, [now, now + 1, now + 2], now - 1) == [now, now + 1, now + 2]
    assert next_due(unscheduled, now, now, UTC) == now


def test_a_clock_that_went_back_is_not_due_until_the_next_fire() -> None:
    rule = R(schedule="0 * * * *")
    last = at(UTC, 2026, 5, 4, 10, 30)
    assert not is_due(rule, last, at(UTC, 2026, 5, 4, 10, 10), UTC)
    assert is_due(rule, last, at(UTC, 2026, 5, 4, 11), UTC)


def test_schedule_rows_cover_disabled_unscheduled_and_never() -> None:
    now = at(BERLIN, 2026, 5, 4, 10)
    rules = [
        R("daily", "0 6 * * *"),
        R("weekly", "0 6 * * 1", enabled=False),
        R("always"),
        R("fresh", "0 12 * * *"),
    ]
    last = {"daily": at(BERLIN, 2026, 5, 4, 6, 1), "always": at(BERLIN, 2026, 5, 4, 9)}
    rows = {row.name: row for row in schedule_rows(rules, last, now, BERLIN)}
    assert (rows["daily"].due, rows["daily"].next_due) == (False, at(BERLIN, 2026, 5, 5, 6))
    assert (rows["weekly"].due, rows["weekly"].next_due) == (False, None)
    assert (rows["always"].due, rows["always"].next_due) == (True, now)
    assert (rows["fresh"].due, rows["fresh"].last_run) == (True, None)
    text = schedule_text(list(rows.values()), now, BERLIN, "Europe/Berlin")
    assert "Times in Europe/Berlin; now 2026-05-04 10:00 CEST" in text
    lines = {line.split()[0]: line for line in text.splitlines()[3:]}
    assert lines["daily"].split("  ")[-1].strip() == "no"
    assert "2026-05-05 06:00 CEST" in lines["daily"]
    assert "disabled" in lines["weekly"] and "every run" in lines["always"]
    assert "never" in lines["fresh"] and lines["fresh"].endswith("yes")


# -- `rulebot schedule` -------------------------------------------------------------------

CONFIG = """\
version: 1
timezone: Europe/Berlin
rules:
  - name: morning
    schedule: "0 6 * * *"
    where: {tag: read-later}
    actions: [archive]
  - name: rename-js
    actions:
      - tag_rename: {old_tag: js, new_tag: javascript}
  - name: paused
    enabled: false
    schedule: "0 3 * * 0"
    where: {tag: old}
    actions: [delete]
"""


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    clear_rulebot_env(monkeypatch)
    (tmp_path / "rules.yaml").write_text(CONFIG)
    (tmp_path / "export.csv").write_text(
        "title,url,time_added,tags,status\nA,https://a.org/1,1700000000,read-later,unread\n"
    )
    assert main(["import", "export.csv"]) == 0
    return tmp_path


def schedule_json(capsys: pytest.CaptureFixture[str], now: str) -> dict[str, dict[str, object]]:
    capsys.readouterr()
    assert main(["schedule", "--format", "json", "--now", now]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["format_version"] == 1 and document["timezone"] == "Europe/Berlin"
    return {rule["name"]: rule for rule in document["rules"]}


def test_schedule_command_before_and_after_a_due_run(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = schedule_json(capsys, "2026-05-04T05:00:00Z")  # 07:00 in Berlin
    assert rules["morning"] == {
        "name": "morning",
        "enabled": True,
        "schedule": "0 6 * * *",
        "last_run": None,
        "next_due": "2026-05-04T07:00:00+02:00",
        "due": True,
    }
    assert rules["rename-js"]["schedule"] is None and rules["rename-js"]["due"] is True
    assert rules["paused"]["next_due"] is None and rules["paused"]["due"] is False

    assert main(["run", "--due", "--now", "2026-05-04T05:00:00Z"]) == 0
    rules = schedule_json(capsys, "2026-05-04T05:30:00Z")
    assert rules["morning"]["last_run"] == "2026-05-04T07:00:00+02:00"
    assert rules["morning"]["next_due"] == "2026-05-05T06:00:00+02:00"
    assert rules["morning"]["due"] is False
    assert rules["rename-js"]["due"] is True  # every run

    # a due run the next morning, started late: due once
    rules = schedule_json(capsys, "2026-05-05T09:00:00Z")
    assert rules["morning"]["due"] is True
    capsys.readouterr()
    assert main(["plan", "--due", "--now", "2026-05-05T09:00:00Z", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["rules"] == ["morning", "rename-js"]

    assert main(["schedule", "--now", "2026-05-04T05:30:00Z"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("Times in Europe/Berlin; now 2026-05-04 07:30 CEST")
    assert "every run" in text and "disabled" in text and "2026-05-05 06:00 CEST" in text


def test_schedule_command_errors_exit_1(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["schedule", "--now", "yesterday"]) == 1
    assert "--now 'yesterday' is not an ISO 8601" in capsys.readouterr().err
    assert main(["schedule", "--format", "yaml"]) == 1


# -- `--due` with nothing due costs no request, on every source -------------------------

DUE_RULES = """\
timezone: UTC
rules:
  - name: morning
    schedule: "0 6 * * *"
    where: {tag: nope}
    actions: [{tags_add: [seen]}]
"""
T = 1_795_672_800  # 2026-11-26T06:00:00Z: the rule's first fire


@dataclass
class Service:
    """A fake service on 127.0.0.1 as a `--due` run sees it."""

    block: str  # the config's source block
    requests: Callable[[], int] = field(repr=False)  # requests it received so far
    add: Callable[[str], object] = field(repr=False)  # save a URL, behind rulebot's back


@contextlib.contextmanager
def service(kind: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Service]:
    if kind == "pocket":
        with FakePocket(consumer_key=CONSUMER_KEY, access_token=ACCESS_TOKEN, now=T) as pocket:
            monkeypatch.setenv("POCKET_CONSUMER_KEY", CONSUMER_KEY)
            monkeypatch.setenv("POCKET_ACCESS_TOKEN", ACCESS_TOKEN)
            yield Service(
                f"pocket: {{base_url: '{pocket.base_url}'}}", pocket.calls, pocket.add_item
            )
    elif kind == "karakeep":
        with FakeKarakeep(now=T, api_key="kk-due-0123456789") as karakeep:
            monkeypatch.setenv("KARAKEEP_API_KEY", "kk-due-0123456789")
            yield Service(
                f"karakeep: {{base_url: '{karakeep.base_url}'}}",
                karakeep.calls,
                karakeep.add_bookmark,
            )
    elif kind == "wallabag":
        with FakeWallabag(now=T) as wallabag:
            for name, value in wallabag.env.items():
                monkeypatch.setenv(name, value)
            yield Service(
                f"wallabag: {{base_url: '{wallabag.base_url}'}}",
                wallabag.calls,
                wallabag.add_entry,
            )
    else:
        with FakeReadeck(now=T, token="rdk-due-0123456789") as readeck:
            monkeypatch.setenv("READECK_TOKEN", "rdk-due-0123456789")
            yield Service(
                f"readeck: {{base_url: '{readeck.base_url}'}}", readeck.calls, readeck.add_bookmark
            )


@pytest.mark.parametrize("kind", ["pocket", "karakeep", "wallabag", "readeck"])
def test_a_due_run_with_no_rule_due_sends_no_request_and_a_due_one_still_syncs(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    clear_rulebot_env(monkeypatch)
    with service(kind, monkeypatch) as server:
        for n in range(3):
            server.add(f"https://due.example/{n}")
        Path("rules.yaml").write_text(f"version: 1\n{server.block}\n{DUE_RULES}")
        # never ran: due, so it syncs
        assert rb(capsys, "run", "--due", "--now", "2026-11-26T06:00:00Z")[0] == 0
        assert server.requests() > 0
        server.add("https://due.example/new")
        # not due again before tomorrow 06:00: no request at all, one line saying so
        before = server.requests()
        for command in ("run", "plan"):
            code, out, err = rb(capsys, command, "--due", "--now", "2026-11-26T09:00:00Z")
            assert code == 0, err
            assert server.requests() == before
            [line] = err.splitlines()  # one log line (stamped: stderr is not a terminal)
            assert line.endswith(
                " rulebot: no rule is due (next: morning at 2026-11-27 06:00 UTC): "
                "nothing synced, nothing sent"
            )
        assert out.endswith("Plan: no changes. No rule was planned (none due, or none enabled).\n")
        code, out, _ = rb(
            capsys, "run", "--due", "--now", "2026-11-26T09:00:00Z", "--format", "json"
        )
        assert code == 0 and json.loads(out)["requests"] == 0
        assert server.requests() == before
        with Store.open(Path(".rulebot/rulebot.db")) as store:
            assert "https://due.example/new" not in {i.given_url for i in store.items()}
        # due the next morning: it syncs and sees the server's change
        code, _, err = rb(capsys, "run", "--due", "--now", "2026-11-27T06:00:00Z")
        assert code == 0, err
        assert server.requests() > before
        with Store.open(Path(".rulebot/rulebot.db")) as store:
            assert "https://due.example/new" in {i.given_url for i in store.items()}
