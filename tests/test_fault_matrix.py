"""The fault matrix: one table row per way a Pocket server can fail, over real sockets.

Every row runs the real CLI (``rulebot run``) against a fake Pocket server on
127.0.0.1 that has the row's faults injected, then checks the same four
things:

- the exit code, and the message a user sees;
- the server's final state (every rule converged, or exactly the row's
  failed items left as they were);
- nothing applied twice: the server records each action it actually
  *executed* (not merely received); each (action, target) runs once, except
  in rows where a lost answer makes the client re-send a batch the server
  already ran (``drop_after``, a timeout), which Pocket's set-state actions
  make safe; there the state is checked and the ``add`` must not have
  created a second item;
- the store mirrors the server after a successful run.

Rows that end in an error are followed by a clean re-run, which must finish
the work without repeating any of it. ``test_pocket_mode.py`` holds the
narrative tests of the same behaviours; this file is the organised table.
"""

from __future__ import annotations

import math
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from rulebot.fakepocket import FakePocket
from tests.conftest import ACCESS_TOKEN, CONSUMER_KEY, use_fake_credentials
from tests.helpers import rb
from tests.test_pocket_mode import (
    DOCS_URL,
    action_key,
    expected_action_count,
    expected_state,
    live_state,
    populate,
    server_state,
    store_state,
    subprocess_env,
    tags_of,
    write_config,
)

ITEMS = 24
PAGE = 10
BATCH = 8
PLANNED = expected_action_count(ITEMS)
BATCHES = math.ceil(PLANNED / BATCH)
GETS = math.ceil(ITEMS / PAGE) + 1


class RecordingPocket(FakePocket):
    """The fake server, also recording every action it actually executed."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.executed: list[tuple[str, str]] = []
        self.ids: list[str] = []
        self.in_flight = 0  # requests being handled (a slow one outlives its client)

    def _handle(self, *args: Any) -> Any:
        with self._lock:
            self.in_flight += 1
        try:
            return super()._handle(*args)
        finally:
            with self._lock:
                self.in_flight -= 1

    def _run_action(self, action: dict[str, Any]) -> Any:
        result = super()._run_action(action)  # raises when the action fails
        self.executed.append(action_key(action))
        return result


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[RecordingPocket]:
    use_fake_credentials(tmp_path, monkeypatch)
    # Backoff sleeps stay real but short: the matrix tests outcomes, not the jitter.
    # (The retry loop's cap is rulebot.http.waiting's; Pocket's rate waits use its own.)
    monkeypatch.setattr("rulebot.http.waiting.MAX_BACKOFF", 0.05)
    monkeypatch.setattr("rulebot.sources.pocket.api.MAX_BACKOFF", 0.05)
    with RecordingPocket(consumer_key=CONSUMER_KEY, access_token=ACCESS_TOKEN) as fake:
        yield fake


# -- the rows -------------------------------------------------------------------------------


def faults(*specs: tuple[Any, ...]) -> Callable[[FakePocket], None]:
    """Inject (fault, count, path[, kwargs]) in order."""

    def setup(server: FakePocket) -> None:
        for fault, count, path, *kw in specs:
            server.inject(fault, count, path, **(kw[0] if kw else {}))

    return setup


def fail_item(
    index: int, code: int = 422, message: str = "Invalid request"
) -> Callable[[RecordingPocket], None]:
    def setup(server: RecordingPocket) -> None:
        server.fail_actions[server.ids[index]] = (code, message)

    return setup


def rate_limited(limit: int, reset: float) -> Callable[[FakePocket], None]:
    def setup(server: FakePocket) -> None:
        server.user_limit, server.reset_seconds = limit, reset
        server.reset_rate_limits()

    return setup


def no_modify(server: FakePocket) -> None:
    server.permissions.discard("modify")


def garbled_send_answer(server: FakePocket) -> None:
    server.inject("answer", 1, "/v3/send", answer={"status": 1, "action_results": [True]})


@dataclass(frozen=True)
class Row:
    id: str
    setup: Callable[[RecordingPocket], object]  # on the fixture's server; what it returns is unused
    code: int = 0
    says: tuple[str, ...] = ()  # each must appear in stdout + stderr
    extra: str = ""  # more lines under `pocket:`
    failed_items: frozenset[int] = frozenset()  # left as they were on the server
    resend_ok: bool = False  # a lost answer may make the client run a batch twice
    gets: int | None = None  # exact /v3/get count, when the row pins it
    sends: int | None = None  # exact /v3/send count
    executed: int | None = None  # how many actions the server ran; default: all planned
    undo: Callable[[FakePocket], None] | None = None  # before the re-run of a failed row


ROWS = [
    # -- 5xx ------------------------------------------------------------------------------
    Row(
        "503-on-get-retried",
        faults(("503", 2, "/v3/get", {"retry_after": 0})),
        says=(),  # retries are logged at info only
        gets=GETS + 2,
        sends=BATCHES,
    ),
    Row(
        "503-on-send-retried",
        faults(("503", 3, "/v3/send", {"retry_after": 0})),
        says=(),
        sends=BATCHES + 3,
    ),
    Row(
        "503-until-give-up",
        faults(("503", 6, "/v3/send", {"retry_after": 0})),
        code=1,
        says=("/v3/send: server answered 503", "6 times; giving up"),
        sends=6,
        executed=0,
        undo=lambda s: s.clear_faults(),
    ),
    Row(
        "500-on-get-until-give-up",
        faults(("500", 6, "/v3/get")),
        code=1,
        says=("/v3/get: server answered 500", "giving up"),
        gets=6,
        sends=0,
        executed=0,
        undo=lambda s: s.clear_faults(),
    ),
    # -- dropped connections ---------------------------------------------------------------
    Row(
        "drop-before-work-on-get",
        faults(("drop", 2, "/v3/get")),
        says=(),
        gets=GETS + 2,
        sends=BATCHES,
    ),
    Row(
        "drop-before-work-on-send",
        faults(("slow", 1, "/v3/send", {"seconds": 0}), ("drop", 2, "/v3/send")),
        says=(),
        sends=BATCHES + 2,
    ),
    Row(
        "drop-after-work-on-send",
        # Batches 1 and 2 each run, lose their answer, and are re-sent once.
        faults(
            ("drop_after", 1, "/v3/send"),
            ("slow", 1, "/v3/send", {"seconds": 0}),
            ("drop_after", 1, "/v3/send"),
        ),
        says=(),
        resend_ok=True,
        sends=BATCHES + 2,
        executed=PLANNED + 2 * BATCH,
    ),
    # -- slow answers past the client's timeout --------------------------------------------
    Row(
        "slow-get-past-timeout",
        faults(("slow", 1, "/v3/get", {"seconds": 0.8})),
        extra="  timeout: 0.3\n",
        says=(),
        gets=GETS + 1,
        sends=BATCHES,
    ),
    Row(
        # The server runs the slow batch after the client gave up on it: the
        # retry and the late original both land (set-state actions: harmless).
        "slow-send-past-timeout",
        faults(("slow", 1, "/v3/send", {"seconds": 0.8})),
        extra="  timeout: 0.3\n",
        says=(),
        resend_ok=True,
        sends=BATCHES + 1,
        executed=PLANNED + BATCH,
    ),
    Row(
        "slow-until-give-up",
        # the answer comes twice the timeout after the request arrives; a timeout of
        # 0.5 s (not 0.1) leaves a loaded machine time to take each attempt in
        # before the client gives up on it, so the server counts all six
        faults(("slow", 6, "/v3/get", {"seconds": 1.0})),
        extra="  timeout: 0.5\n",
        code=1,
        says=("/v3/get: no complete answer within 0.5 s (timeout) 6 times; giving up",),
        gets=6,
        sends=0,
        executed=0,
        undo=lambda s: s.clear_faults(),
    ),
    # -- bodies that are not what Pocket sends ---------------------------------------------
    Row(
        "garbage-200-on-get-retried",
        faults(("garbage", 2, "/v3/get")),
        says=(),
        gets=GETS + 2,
    ),
    Row(
        "html-200-on-send-retried",
        faults(("html", 1, "/v3/send")),
        says=(),
        sends=BATCHES + 1,
    ),
    Row(
        "garbage-200-until-give-up",
        faults(("garbage", 3, "/v3/get")),
        code=1,
        says=("does not look like a Pocket v3 server", "pocket.base_url"),
        gets=3,
        sends=0,
        executed=0,
        undo=lambda s: s.clear_faults(),
    ),
    Row(
        "html-error-page-500",
        faults(("500", 1, "/v3/send")),
        says=(),
        sends=BATCHES + 1,
    ),
    Row(
        "wrong-shaped-send-answer",
        garbled_send_answer,
        code=1,
        says=("/v3/send: the server's answer is not what a Pocket v3 server sends",),
        sends=1,
        executed=0,
        undo=lambda s: None,  # the fault was used up
    ),
    # -- rate limits ----------------------------------------------------------------------
    Row(
        "rate-limit-waits-for-reset",
        rate_limited(GETS + 1, 1.0),
        says=("rate limit reached; waiting",),
        gets=GETS,
        sends=BATCHES,
    ),
    Row(
        "rate-limit-reset-beyond-max-rate-wait",
        rate_limited(2, 3600.0),
        extra="  max_rate_wait: 5\n",
        code=1,
        says=("rate limit reached", "longer than max_rate_wait (5 s)"),
        sends=0,
        executed=0,
        undo=rate_limited(10_000, 3600.0),
    ),
    # -- the server refuses ----------------------------------------------------------------
    Row(
        "per-action-failure",
        fail_item(3),
        code=1,
        says=("Invalid request (422)", "2 failed"),
        failed_items=frozenset({3}),
        executed=PLANNED - 2,
        undo=lambda s: s.fail_actions.clear(),
    ),
    Row(
        "per-action-failures-in-several-batches",
        lambda s: [fail_item(i, 404, "Not found")(s) for i in (3, 15, 20)],
        code=1,
        # 3: archive + tags_add; 15: those and favorite; 20: favorite
        says=("Not found (404)", "6 failed"),
        failed_items=frozenset({3, 15, 20}),
        executed=PLANNED - 6,
        undo=lambda s: s.fail_actions.clear(),
    ),
    Row(
        "whole-batch-400-split-and-applied",
        faults(("400", 1, "/v3/send")),
        sends=BATCHES + 2,  # the refused batch, then its two halves
    ),
    Row(
        "403-no-modify-permission",
        no_modify,
        code=1,
        says=("access denied (403", "lacks the permission", "POCKET_CONSUMER_KEY"),
        sends=1,
        executed=0,
        undo=lambda s: s.permissions.add("modify"),
    ),
]


def settle(server: RecordingPocket, timeout: float = 5.0) -> None:
    """Wait until no request is being handled (a slow one outlives its client)."""
    deadline = time.monotonic() + timeout
    while server.in_flight and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not server.in_flight, "the server is still busy"


def check_state(server: FakePocket, failed_items: frozenset[int]) -> None:
    state = server_state(server)
    for i in range(ITEMS):
        url = f"https://site{i % 4}.example/post/{i}"
        if i in failed_items:
            want = ("1" if i % 11 == 0 else "0", "0", set(tags_of(i)))
        else:
            want = expected_state(i)
        assert state[url] == want, f"item {i}"
    assert state[DOCS_URL] == ("0", "0", {"docs"})
    saved = [item for item in server.items.values() if item["given_url"] == DOCS_URL]
    assert len(saved) == 1, "the add created a second item"


def check_once(server: RecordingPocket, resend_ok: bool) -> None:
    """Each action ran once; where a batch may be re-sent, at most twice (and
    ``check_state`` shows the add made one item)."""
    counts = Counter(server.executed)
    most = 2 if resend_ok else 1
    over = {key: n for key, n in counts.items() if n > most}
    assert not over, f"applied too often: {over}"


def check_mirror(server: FakePocket) -> None:
    """After a successful run the store equals the server (live items)."""
    assert store_state() == live_state(server)


@pytest.mark.parametrize("row", ROWS, ids=[row.id for row in ROWS])
def test_fault_matrix(
    server: RecordingPocket, capsys: pytest.CaptureFixture[str], row: Row
) -> None:
    """One row: run, check code/message/requests/state/once; failed rows re-run clean."""
    server.ids = populate(server, ITEMS)
    write_config(server, page_size=PAGE, batch_size=BATCH, extra=row.extra)
    row.setup(server)

    code, out, err = rb(capsys, "run")
    settle(server)
    said = out + err
    assert code == row.code, said
    for text in row.says:
        assert text in said, f"{text!r} not in:\n{said}"
    assert "Traceback" not in said and "internal error" not in said
    assert "retry 1 of" not in err  # retries are logged at info (-v), not shown (#10.8)
    if row.code == 1:
        lines = [line for line in err.splitlines() if line.startswith("rulebot: error:")]
        assert len(lines) <= 1, err  # at most one error paragraph
    if row.gets is not None:
        assert server.calls("/v3/get") == row.gets
    if row.sends is not None:
        assert server.calls("/v3/send") == row.sends
    assert len(server.executed) == (PLANNED if row.executed is None else row.executed)
    check_once(server, row.resend_ok)

    if row.code == 0:
        check_state(server, row.failed_items)
        check_mirror(server)
        return

    # The failed run changed only what it says it did; a clean re-run finishes
    # the work, and over both runs nothing ran twice.
    if row.failed_items:
        check_state(server, row.failed_items)
    assert row.undo is not None, "a failing row needs an undo for its re-run"
    row.undo(server)
    code, out, err = rb(capsys, "run")
    settle(server)
    assert code == 0, out + err
    check_state(server, frozenset())
    check_once(server, row.resend_ok)
    executed = Counter(server.executed)
    assert sum(executed.values()) == PLANNED
    check_mirror(server)


# -- SIGKILL during a run, then a re-run -----------------------------------------------------


@pytest.mark.parametrize(
    ("path", "nth"),
    [("/v3/get", 2), ("/v3/send", 1), ("/v3/send", 3)],
    ids=["during-sync", "during-first-batch", "during-third-batch"],
)
def test_sigkill_then_rerun(server: RecordingPocket, tmp_path: Path, path: str, nth: int) -> None:
    populate(server, ITEMS)
    write_config(server, page_size=PAGE, batch_size=BATCH)
    if nth > 1:
        server.inject("slow", nth - 1, path, seconds=0)
    server.inject("slow", 1, path, seconds=1.0)  # in flight when the process dies
    command = [sys.executable, "-m", "rulebot", "run"]
    env = subprocess_env()
    victim = subprocess.Popen(
        command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 20
    while server.calls(path) < nth and victim.poll() is None:
        assert time.monotonic() < deadline, "the run never reached the request to kill it in"
        time.sleep(0.01)
    victim.send_signal(signal.SIGKILL)
    victim.communicate(timeout=10)
    assert victim.returncode == -signal.SIGKILL
    time.sleep(1.2)  # the server finishes the request nobody waits for
    landed = len(server.executed)
    assert landed == (0 if path == "/v3/get" else min(nth * BATCH, PLANNED))

    done = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    if path == "/v3/send":
        assert "interrupted" in done.stderr
        assert f"Applied: {PLANNED - landed} succeeded" in done.stdout, done.stderr
    check_state(server, frozenset())
    check_once(server, resend_ok=False)
    assert len(server.executed) == PLANNED
    check_mirror(server)
