"""`rulebot daemon`: a real process stopped by signals, and the loop driven
in-process with an injected clock (no test waits for a schedule)."""

from __future__ import annotations

import configparser
import datetime as dt
import os
import queue
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from rulebot.cli import build_parser, main
from rulebot.commands.schedule import daemon_for
from rulebot.errors import LockHeldError, PocketError, StoreError
from rulebot.fakepocket import FakePocket
from rulebot.library.store import Store
from rulebot.run import pipeline
from rulebot.run.daemon import CycleReport, Daemon, stop_on_signals
from tests.helpers import clear_rulebot_env

ROOT = Path(__file__).resolve().parent.parent
T0 = 1_795_672_740  # 2026-11-26T05:59:00Z
DAY = 86400

CONFIG = """\
version: 1
timezone: UTC
rules:
  - name: archive-stale
    schedule: "{schedule}"
    where: {{tag: read-later, added: {{older_than: 30d}}}}
    actions: [archive, {{tags_add: [auto-archived]}}]
  - name: rename-js
    actions:
      - tag_rename: {{old_tag: js, new_tag: javascript}}
  - name: paused
    enabled: false
    schedule: "* * * * *"
    where: {{tag: js}}
    actions: [delete]
"""

CSV = """\
title,url,time_added,tags,status
Old one,https://a.org/old,1700000000,read-later,unread
Old two,https://a.org/old2,1700000100,read-later|js,unread
Fresh,https://a.org/fresh,1795600000,read-later,unread
"""


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    clear_rulebot_env(monkeypatch)
    (tmp_path / "rules.yaml").write_text(CONFIG.format(schedule="0 6 * * *"))
    (tmp_path / "export.csv").write_text(CSV)
    assert main(["import", "export.csv"]) == 0
    return tmp_path


def db(workspace: Path) -> Path:
    return workspace / ".rulebot" / "rulebot.db"


def archived(workspace: Path) -> set[str]:
    with Store.open(db(workspace)) as store:
        return {item.url for item in store.items() if item.status == 1}


def run_statuses(workspace: Path) -> list[str]:
    with sqlite3.connect(db(workspace)) as conn:
        return [status for (status,) in conn.execute("SELECT status FROM runs")]


def iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- a real process ------------------------------------------------------------------------


class Lines:
    """A subprocess's stderr, line by line, readable with a timeout."""

    def __init__(self, stream: object) -> None:
        self.seen: list[str] = []
        self._queue: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream: object) -> None:
        for line in stream:  # type: ignore[attr-defined]
            self._queue.put(line.rstrip("\n"))

    def wait_for(self, text: str, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=0.1)
            except queue.Empty:
                continue
            self.seen.append(line)
            if text in line:
                return line
        raise AssertionError(f"no line with {text!r} within {timeout}s; saw {self.seen}")

    def rest(self) -> list[str]:
        time.sleep(0.2)
        while not self._queue.empty():
            self.seen.append(self._queue.get())
        return self.seen


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["TERM", "INT"])
def test_daemon_process_runs_due_rules_and_stops_cleanly(
    workspace: Path, capsys: pytest.CaptureFixture[str], stop_signal: signal.Signals
) -> None:
    (workspace / "rules.yaml").write_text(CONFIG.format(schedule="* * * * *"))
    # this test runs on the real clock: keep "Fresh" fresh whatever today is
    fresh = CSV.replace("1795600000", str(int(time.time()) - DAY))
    (workspace / "export.csv").write_text(fresh)
    assert main(["import", "export.csv"]) == 0
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "rulebot", "-c", "rules.yaml", "daemon"],
        cwd=workspace,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines = Lines(process.stderr)
        assert "not running rename-js" in lines.wait_for("not running")
        lines.wait_for("started (pid")
        ran = lines.wait_for("ran ")
        assert ran == "rulebot: daemon: ran 1 rule: 4 succeeded, 0 failed"
        assert archived(workspace) == {"https://a.org/old", "https://a.org/old2"}

        # between runs the store is free: plan takes the lock and works
        capsys.readouterr()
        assert main(["plan", "--due", "--format", "json"]) == 0
        assert "tag_rename" in capsys.readouterr().out  # only the unscheduled rule

        started = time.monotonic()
        process.send_signal(stop_signal)
        assert process.wait(timeout=15) == 0
        assert time.monotonic() - started < 10  # the sleep was interrupted, not waited out
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    rest = lines.rest()
    assert rest[-1] == f"rulebot: daemon: stopped ({stop_signal.name})"
    assert not any("Traceback" in line or "error" in line for line in rest), rest
    assert process.stdout is not None and process.stdout.read() == ""

    assert run_statuses(workspace) and "running" not in run_statuses(workspace)
    with Store.open(db(workspace)) as store:
        assert store.last_run("archive-stale") is not None
        assert store.last_run("rename-js") is None and store.last_run("paused") is None
        with store.lock("check"):  # released at exit
            pass
    capsys.readouterr()
    assert main(["plan", "--format", "json"]) == 0


NOTHING_SCHEDULED = """\
version: 1
rules:
  - name: a
    actions: [{tag_delete: x}]
  - name: paused
    enabled: false
    schedule: "0 6 * * *"
    actions: [{tag_delete: old}]
"""


def test_daemon_without_scheduled_rules_exits_0(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Nothing to do is not a failure: exit 1 here made systemd's
    Restart=on-failure start the daemon again every RestartSec, forever."""
    (workspace / "rules.yaml").write_text(NOTHING_SCHEDULED)
    assert main(["daemon"]) == 0
    err = capsys.readouterr().err
    assert "no enabled rule with a `schedule:`" in err and "error" not in err
    # a real problem is still a failure (and worth a restart once it is fixed)
    assert main(["daemon", "--max-deletes", "-1"]) == 1
    (workspace / "rules.yaml").write_text("version: 1\nrules: nope\n")
    assert main(["daemon"]) == 1


def test_daemon_process_with_nothing_scheduled_exits_0_which_systemd_does_not_restart(
    workspace: Path,
) -> None:
    """The real entry point, as the example unit starts it (with -q: the one
    line saying why it ended is still said)."""
    (workspace / "rules.yaml").write_text(NOTHING_SCHEDULED)
    before = run_statuses(workspace)
    done = subprocess.run(
        [sys.executable, "-m", "rulebot", "-q", "-c", "rules.yaml", "daemon"],
        cwd=workspace,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    (line,) = done.stderr.splitlines()
    assert line.startswith(
        "rulebot: daemon: rules.yaml has no enabled rule with a `schedule:`, so the daemon "
        "has nothing to run and exits; give a rule a schedule"
    )
    assert run_statuses(workspace) == before  # nothing ran
    # the unit restarts on failure only, and names no code that 0 would have to dodge
    unit = configparser.ConfigParser(interpolation=None, strict=True)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read_string((ROOT / "examples" / "rulebot-daemon.service").read_text(encoding="utf-8"))
    service = unit["Service"]
    assert service["Restart"] == "on-failure"
    assert "0" not in service.get("RestartForceExitStatus", "").split()
    assert service["ExecStart"].endswith(" -c rules.yaml daemon")


# -- the loop in-process, with a fake clock ---------------------------------------------------


@dataclass
class FakeTime:
    """Injected clock and sleep: sleeping advances the clock; ``until`` stops."""

    now: float
    until: float
    daemon: Daemon | None = None
    on_sleep: Callable[[float], None] | None = None
    slept: float = 0.0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> bool:
        assert self.daemon is not None
        assert 0 < seconds <= self.daemon.max_step
        if self.on_sleep:
            self.on_sleep(self.now)
        self.now += seconds
        self.slept += seconds
        if self.now >= self.until:
            self.daemon.stop.set()
        return self.daemon.stop.is_set()

    def drive(self, daemon: Daemon) -> None:
        self.daemon = daemon
        daemon.clock, daemon.sleep = self.clock, self.sleep
        daemon.serve()


class Log:
    def __init__(self, fake: FakeTime) -> None:
        self.fake = fake
        self.lines: list[tuple[str, str]] = []

    def __call__(self, message: str) -> None:
        self.lines.append((iso(self.fake.now), message))


QUIET = ("not running", "started")  # start-up lines


def make_daemon(fake: FakeTime, log: Log, *argv: str) -> Daemon:
    args = build_parser().parse_args(["daemon", *argv])
    return daemon_for(args, info=log, warn=log)


def test_loop_runs_on_schedule_and_frees_the_lock_between_runs(
    workspace: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeTime(now=T0, until=T0 + DAY + 31 * 60)  # to 2026-11-27T06:30Z
    log = Log(fake)
    daemon = make_daemon(fake, log)
    holders: list[str] = []
    real_apply = pipeline.apply

    def apply_while_checking_the_lock(*args: object, **kwargs: object) -> object:
        with (
            Store.open(db(workspace)) as other,
            pytest.raises(LockHeldError) as held,
            other.lock("plan"),
        ):
            pass
        holders.append(str(held.value))
        return real_apply(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(pipeline, "apply", apply_while_checking_the_lock)
    free_checks: list[int] = []

    def between_runs(now: float) -> None:
        if int(now) % 3600 == 0:  # hourly is plenty: it is a real store each time
            with Store.open(db(workspace)) as other, other.lock("plan"):
                free_checks.append(int(now))

    fake.on_sleep = between_runs
    fake.drive(daemon)

    assert log.lines[0][1].startswith("not running rename-js: the daemon runs only rules")
    runs = [(when, line) for when, line in log.lines if line.startswith("ran ")]
    assert runs == [
        ("2026-11-26T05:59:00Z", "ran 1 rule: 4 succeeded, 0 failed"),  # never ran: due now
        ("2026-11-26T06:00:00Z", "ran 1 rule: 0 succeeded, 0 failed"),
        ("2026-11-27T06:00:00Z", "ran 1 rule: 0 succeeded, 0 failed"),
    ]
    assert all("in use by rulebot daemon (pid" in holder for holder in holders)
    assert len(holders) == 3
    assert len(free_checks) == 25  # every hour from 06:00 to 06:00 the next day
    assert archived(workspace) == {"https://a.org/old", "https://a.org/old2"}
    with Store.open(db(workspace)) as store:
        assert store.last_run("archive-stale") == T0 + DAY + 60
        assert store.last_run("rename-js") is None  # the daemon leaves it to `run`
        old2 = store.find_by_url("https://a.org/old2")
        assert old2 is not None and "js" in (old2.tags or ())
    assert "running" not in run_statuses(workspace)


def test_stop_during_a_run_finishes_and_records_it(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeTime(now=T0 + 60, until=T0 + 10 * DAY)
    log = Log(fake)
    daemon = make_daemon(fake, log)
    real_apply = pipeline.apply

    def signal_arrives_mid_run(*args: object, **kwargs: object) -> object:
        daemon.stop.set()  # what the SIGTERM handler does
        return real_apply(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(pipeline, "apply", signal_arrives_mid_run)
    fake.drive(daemon)
    assert [line for _, line in log.lines if line.startswith("ran")] == [
        "ran 1 rule: 4 succeeded, 0 failed"
    ]
    assert fake.slept == 0 and daemon.cycles == 1
    with Store.open(db(workspace)) as store:
        assert store.last_run("archive-stale") == T0 + 60
    assert run_statuses(workspace) == ["ok"]


def test_a_refused_run_backs_off_and_records_nothing(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = FakeTime(now=T0, until=T0 + 2 * 3600)
    log = Log(fake)
    fake.drive(make_daemon(fake, log, "--max-actions", "3"))
    failures = [(when, line) for when, line in log.lines if "run failed" in line]
    assert [when for when, _ in failures][:5] == [
        "2026-11-26T05:59:00Z",
        "2026-11-26T05:59:30Z",  # +30s
        "2026-11-26T06:00:30Z",  # +1m
        "2026-11-26T06:02:30Z",  # +2m
        "2026-11-26T06:06:30Z",  # +4m
    ]
    assert "4 actions exceed max_actions 3" in failures[0][1]
    assert failures[0][1].endswith("; retrying in 30s")
    assert failures[3][1].endswith("; retrying in 4m")
    assert archived(workspace) == set()
    with Store.open(db(workspace)) as store:
        assert store.last_run("archive-stale") is None
    assert run_statuses(workspace) == []


def test_server_errors_back_off_then_the_run_succeeds(
    fake_pocket: FakePocket, capsys: pytest.CaptureFixture[str]
) -> None:
    old = fake_pocket.add_item("https://a.org/old", "Old", ["read-later"], time_added=1700000000)
    Path("rules.yaml").write_text(
        CONFIG.format(schedule="0 6 * * *").replace(
            "timezone: UTC\n", f"timezone: UTC\npocket:\n  base_url: {fake_pocket.base_url}\n"
        )
    )
    fake_pocket.inject("400", 2, "/v3/get")  # not retried by the client: two failed runs
    fake = FakeTime(now=T0, until=T0 + 600)
    log = Log(fake)
    fake.drive(make_daemon(fake, log))
    events = [(when, line) for when, line in log.lines if not line.startswith(QUIET)]
    lines = [line for _, line in events]
    assert lines[0].startswith("run failed: ") and lines[0].endswith("retrying in 30s")
    assert lines[1].startswith("run failed: ") and lines[1].endswith("retrying in 60s")
    assert lines[2:] == ["ran 1 rule: 2 succeeded, 0 failed"]
    assert [when for when, _ in events] == [
        "2026-11-26T05:59:00Z",
        "2026-11-26T05:59:30Z",
        "2026-11-26T06:00:30Z",  # 06:00 came during the back-off: one run catches up
    ]
    assert fake_pocket.item(old)["status"] == "1"


# -- the loop alone ---------------------------------------------------------------------------


@dataclass
class Rule:
    name: str
    schedule: str | None


def test_backoff_doubles_to_the_cap_and_resets_after_success() -> None:
    fake = FakeTime(now=T0, until=T0 + 3 * 3600)
    log = Log(fake)
    last_runs: dict[str, int | None] = {}
    outcomes = iter(
        [PocketError("503 from the server")] * 5
        + [CycleReport(("hourly",), 3, 1)]  # an action failed: back off too
        + [CycleReport(("hourly",), 1, 0)]
        + [StoreError("disk full")]
    )
    calls: list[str] = []

    def run_due(rules: Sequence[Rule], now: int) -> CycleReport:
        calls.append(iso(now))
        outcome = next(outcomes, CycleReport(("hourly",), 0, 0))
        if isinstance(outcome, Exception):
            raise outcome
        if not outcome.failed:
            last_runs["hourly"] = now
        return outcome

    daemon = Daemon(
        [Rule("hourly", "0 * * * *")],
        dt.UTC,
        lambda: last_runs,
        run_due,
        log=log,
        warn=log,
        backoff_first=30,
        backoff_cap=200,
    )
    fake.drive(daemon)
    assert calls == [
        "2026-11-26T05:59:00Z",
        "2026-11-26T05:59:30Z",  # +30
        "2026-11-26T06:00:30Z",  # +60
        "2026-11-26T06:02:30Z",  # +120
        "2026-11-26T06:05:50Z",  # +200: the cap
        "2026-11-26T06:09:10Z",  # +200; 3 succeeded, 1 failed
        "2026-11-26T06:12:30Z",  # +200, then it works: back on the hourly schedule
        "2026-11-26T07:00:00Z",  # disk full: back-off starts over at 30s
        "2026-11-26T07:00:30Z",
        "2026-11-26T08:00:00Z",
    ]
    messages = [line for _, line in log.lines]
    assert messages[4] == "run failed: 503 from the server; retrying in 3m20s"
    assert messages[5:7] == [
        "ran 1 rule: 3 succeeded, 1 failed",
        "1 action failed; retrying in 3m20s",
    ]
    assert messages[8] == "run failed: disk full; retrying in 30s"


def test_nothing_due_after_another_process_ran_it_is_not_logged() -> None:
    fake = FakeTime(now=T0, until=T0 + 120)
    log = Log(fake)
    last_runs: dict[str, int | None] = {}

    def run_due(rules: Sequence[Rule], now: int) -> CycleReport:
        last_runs["r"] = now  # `rulebot run --due` got there first
        return CycleReport()

    daemon = Daemon([Rule("r", "* * * * *")], dt.UTC, lambda: last_runs, run_due, log, log)
    fake.drive(daemon)
    assert log.lines == [] and daemon.cycles == 2 and daemon.failures == 0


def test_signals_stop_the_loop_and_a_second_one_interrupts() -> None:
    stop, received = threading.Event(), list[str]()
    before = signal.getsignal(signal.SIGTERM)
    restore = stop_on_signals(stop, received)
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.wait(5) and received == ["SIGTERM"]
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(2)  # the handler raises here, at the latest
    finally:
        restore()
    assert signal.getsignal(signal.SIGTERM) is before


@dataclass  # not frozen: Scheduled declares settable attributes, as Rule has
class EveryMinute:
    name: str = "r"
    schedule: str | None = "* * * * *"


def loop_with(run_due: Callable[..., CycleReport], lines: list[str]) -> Daemon:
    """The real loop with an injected cycle and clock; it stops after 10 minutes."""
    fake = FakeTime(now=T0, until=T0 + 600)
    last: dict[str, int | None] = {"r": None}

    def cycle(rules: object, now: int) -> CycleReport:
        report = run_due(rules, now)
        last["r"] = now
        return report

    daemon = Daemon(
        rules=[EveryMinute()],
        tz=dt.UTC,
        last_runs=lambda: last,
        run_due=cycle,
        log=lines.append,
        warn=lines.append,
    )
    fake.drive(daemon)
    return daemon


@pytest.mark.parametrize(
    "error",
    [OSError(28, "No space left on device"), RecursionError("deep"), OverflowError("big")],
    ids=["enospc", "recursion", "overflow"],
)
def test_any_error_of_one_cycle_is_one_line_and_the_daemon_goes_on(error: Exception) -> None:
    """Not only RulebotErrors: whatever one cycle raises is logged, backed off,
    and the next cycle runs (#11.7)."""
    calls: list[int] = []

    def fail_once(rules: object, now: int) -> CycleReport:
        calls.append(now)
        if len(calls) == 1:
            raise error
        return CycleReport(rules=("r",), succeeded=1)

    lines: list[str] = []
    daemon = loop_with(fail_once, lines)
    assert lines[0].startswith(f"run failed: internal error: {type(error).__name__}: ")
    assert lines[0].endswith("retrying in 30s") and "\n" not in lines[0]
    assert lines[1] == "ran 1 rule: 1 succeeded, 0 failed"
    assert daemon.cycles > 2


def test_keyboard_interrupt_in_a_cycle_still_stops_the_daemon() -> None:
    def interrupt(rules: object, now: int) -> CycleReport:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        loop_with(interrupt, [])


def test_what_a_run_froze_is_thawed_before_the_daemon_sleeps(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a big run freezes what its bulk pauses made (bulk.gc_paused); a daemon
    # lives on, so its collector must see those objects again between runs
    import gc

    fake = FakeTime(now=T0, until=T0 + 3600)
    log = Log(fake)
    daemon = make_daemon(fake, log)
    real_apply = pipeline.apply
    frozen_during: list[int] = []

    def apply_then_freeze(*args: object, **kwargs: object) -> object:
        gc.freeze()
        frozen_during.append(gc.get_freeze_count())
        return real_apply(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(pipeline, "apply", apply_then_freeze)
    slept_frozen: list[int] = []
    fake.on_sleep = lambda now: slept_frozen.append(gc.get_freeze_count())
    try:
        fake.drive(daemon)
    finally:
        gc.unfreeze()
    assert frozen_during and frozen_during[0] > 0
    assert slept_frozen and max(slept_frozen) == 0
