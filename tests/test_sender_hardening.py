"""The sender under faults: groups never split, Ctrl-C, progress, long tags (#11.3, #10.9, #10.12, #11.13).

Real fake Pocket server, real store file, the real CLI (in-process via
``rb`` or as a ``python -m rulebot`` subprocess for signals and a pty).
"""

from __future__ import annotations

import dataclasses
import json
import os
import pty
import select
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rulebot.errors import PocketError
from rulebot.fake.pocket import FakePocket
from rulebot.library.store import Store
from rulebot.rules.config import load_config
from rulebot.run.pipeline import plan_rules
from rulebot.sources.pocket.sender import apply_remote
from rulebot.sources.pocket.sync import connect, sync_store
from tests.helpers import rb
from tests.test_pocket_mode import (
    action_key,
    assert_server_converged,
    expected_action_count,
    populate,
    subprocess_env,
    write_config,
)


def sends(server: FakePocket) -> list[list[dict[str, object]]]:
    return [r.body["actions"] for r in server.requests if r.path == "/v3/send"]


def run_statuses(path: Path = Path(".rulebot/rulebot.db")) -> list[str]:
    with sqlite3.connect(path) as db:
        return [row[0] for row in db.execute("SELECT status FROM runs ORDER BY run_id")]


# -- #11.3: one rule's actions on one item travel together ----------------------------------------


def test_batch_size_1_sends_a_rules_actions_on_an_item_together_and_a_rerun_converges(
    fake_pocket: FakePocket, capsys: pytest.CaptureFixture[str]
) -> None:
    # `validate` refuses batch_size 1 for this rule set now; the sender must
    # hold on its own all the same, so it is driven directly here.
    ids = populate(fake_pocket, 12)
    write_config(fake_pocket, batch_size=2)
    config = load_config("rules.yaml")
    assert config.pocket is not None
    config = dataclasses.replace(config, pocket=dataclasses.replace(config.pocket, batch_size=1))
    with Store.open(Path(".rulebot/rulebot.db")) as store, connect(config) as client:
        sync_store(config, store, client)
        plan = plan_rules(config, config.rules, store.items(), int(time.time()))
        # The first request lands, the second fails until rulebot gives up.
        fake_pocket.inject("slow", 1, "/v3/send", seconds=0)
        fake_pocket.inject("503", 6, "/v3/send", retry_after=0)
        with pytest.raises(PocketError, match="giving up"):
            apply_remote(config, store, plan, client, check_stale=True)
    first = sends(fake_pocket)[0]
    assert [a["action"] for a in first] == ["archive", "tags_add"]  # one request, not two
    assert first[0]["item_id"] == first[1]["item_id"]
    fake_pocket.clear_faults()
    code, _out, err = rb(capsys, "run")
    assert code == 0, err
    assert_server_converged(fake_pocket, ids)  # archived *and* tagged, every one


def test_a_refused_group_fails_whole_and_is_never_split(
    fake_pocket: FakePocket, capsys: pytest.CaptureFixture[str]
) -> None:
    populate(fake_pocket, 12)
    write_config(fake_pocket, batch_size=4)
    fake_pocket.inject("400", 2, "/v3/send")  # the batch, then its first half (one group)
    code, out, err = rb(capsys, "run", "--format", "json")
    assert code == 1, err
    result = json.loads(out)
    failed = result["failed"]
    assert [f["send"]["action"] for f in failed] == ["archive", "tags_add"]
    assert failed[0]["send"]["item_id"] == failed[1]["send"]["item_id"]
    assert all("the server refused these 2 actions on one item" in f["error"] for f in failed)
    # Neither ran: a group is refused together, not sent piecemeal.
    item = fake_pocket.item(failed[0]["send"]["item_id"])
    assert item["status"] == "0" and "auto-archived" not in item.get("tags", {})
    assert all(len(actions) != 1 for actions in sends(fake_pocket)[:3])


# -- #22.7: a server that dies mid-send ------------------------------------------------------


def test_a_server_that_dies_mid_send_stops_the_run_at_once_and_the_next_run_finishes(
    fake_pocket: FakePocket, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = populate(fake_pocket, 60)
    write_config(fake_pocket, batch_size=4)
    planned = expected_action_count(60)
    fake_pocket.inject("slow", 2, "/v3/send", seconds=0)  # two batches land
    fake_pocket.inject("die", 1, "/v3/send")  # the third finds the server dead
    started = time.monotonic()
    code, out, err = rb(capsys, "run")
    took = time.monotonic() - started
    assert code == 1 and "failed  " not in out + err
    (message,) = [line for line in err.splitlines() if line.startswith("rulebot: error:")]
    assert fake_pocket.base_url in message and "did not answer" in message
    assert f"8 of {planned} actions done, 4 failed, {planned - 12} not sent" in message
    assert took < 3  # a refused connection is not retried with backoff (was ~8 s)
    code, listed, _ = rb(capsys, "runs", "--format", "json")
    run = json.loads(listed)[0]
    assert (run["status"], run["succeeded"], run["failed"]) == ("failed", 8, 4)
    assert (run["skipped"], run["unconfirmed"]) == (planned - 12, 0)  # journaled as not sent
    fake_pocket.start()  # back on the same port: the next run finishes the rest
    code, _, err = rb(capsys, "run")
    assert code == 0, err
    assert_server_converged(fake_pocket, ids)
    landed = [action_key(action) for action in fake_pocket.applied]
    assert len(landed) == len(set(landed)) == planned  # nothing applied twice


# -- #10.9: Ctrl-C during a send -------------------------------------------------------------


def test_sigint_during_a_send_closes_the_run_as_interrupted_and_says_what_landed(
    fake_pocket: FakePocket, tmp_path: Path
) -> None:
    populate(fake_pocket, 12)
    write_config(fake_pocket, batch_size=3)
    planned = expected_action_count(12)
    fake_pocket.inject("slow", 1, "/v3/send", seconds=0)  # batch 1 lands
    fake_pocket.inject("slow", 1, "/v3/send", seconds=30)  # batch 2 hangs
    process = subprocess.Popen(
        [sys.executable, "-m", "rulebot", "run"],
        cwd=tmp_path,
        env=subprocess_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 20
    while fake_pocket.calls("/v3/send") < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    _out, err = process.communicate(timeout=20)
    assert process.returncode == 130, err
    landed = len(sends(fake_pocket)[0])
    assert (
        f"rulebot: interrupted: {landed} of {planned} actions landed; "
        "the next run finishes the rest" in err
    )
    assert "Traceback" not in err
    assert run_statuses(tmp_path / ".rulebot/rulebot.db")[-1] == "interrupted"
    fake_pocket.clear_faults()
    rerun = subprocess.run(
        [sys.executable, "-m", "rulebot", "run"],
        cwd=tmp_path,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert rerun.returncode == 0, rerun.stderr
    assert "running" not in run_statuses(tmp_path / ".rulebot/rulebot.db")


# -- #10.12: progress while sending, on a terminal only --------------------------------------------


def run_with_stderr_on_a_pty(cwd: Path, *args: str) -> tuple[int, str]:
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "rulebot", *args],
        cwd=cwd,
        env=subprocess_env(),
        stdout=subprocess.DEVNULL,
        stderr=follower,
    )
    os.close(follower)
    chunks: list[bytes] = []
    while True:
        ready, _, _ = select.select([leader], [], [], 30)
        if not ready:
            break
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the pty closed with the process
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    return process.wait(timeout=30), b"".join(chunks).decode()


def test_sending_shows_batch_progress_on_a_terminal_and_nothing_on_a_pipe(
    fake_pocket: FakePocket, tmp_path: Path
) -> None:
    populate(fake_pocket, 12)
    write_config(fake_pocket, batch_size=4)
    planned = expected_action_count(12)
    code, err = run_with_stderr_on_a_pty(tmp_path, "plan", "--out", "plan.json")
    assert code in (0, 2), err
    code, err = run_with_stderr_on_a_pty(tmp_path, "apply", "plan.json")
    assert code == 0, err
    batches = len(sends(fake_pocket))
    assert f"sent batch 1/{batches} (" in err
    assert f"sent batch {batches}/{batches} ({planned}/{planned} actions)" in err

    populate(fake_pocket, 3)  # something new to do, on a pipe this time
    done = subprocess.run(
        [sys.executable, "-m", "rulebot", "run"],
        cwd=tmp_path,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "sent batch" not in done.stderr


# -- #11.13: tags longer than Pocket keeps ---------------------------------------------------------

LONG_TAG = "a-tag-much-longer-than-twenty-five-characters"


def test_a_tag_longer_than_pocket_keeps_leaves_the_mirror_unknown_until_the_next_sync(
    fake_pocket: FakePocket, capsys: pytest.CaptureFixture[str]
) -> None:
    item_id = fake_pocket.add_item(url="https://example.com/x", tags=["keep"])
    fake_pocket.add_item(url="https://example.com/y", tags=["other"])
    Path("rules.yaml").write_text(
        "version: 1\n"
        f"pocket:\n  base_url: {fake_pocket.base_url}\n"
        "rules:\n"
        "  - name: long\n"
        "    where: {tag: keep}\n"
        f"    actions: [{{tags_add: [{LONG_TAG}]}}]\n"
        "  - name: short\n"
        "    where: {tag: other}\n"
        "    actions: [{tags_add: [short]}]\n",
        encoding="utf-8",
    )
    code, _out, err = rb(capsys, "run")
    assert code == 0, err
    with Store.open(Path(".rulebot/rulebot.db")) as store:
        held = store.get(item_id)
        assert held is not None and held.tags is None  # not a guess at what the server kept
        other = next(i for i in store.items() if i.given_url.endswith("/y"))
        assert set(other.tags or ()) == {"other", "short"}
    code, _out, err = rb(capsys, "sync")
    assert code == 0, err
    with Store.open(Path(".rulebot/rulebot.db")) as store:
        kept = set(fake_pocket.item(item_id).get("tags", {}))
        synced = store.get(item_id)
        assert synced is not None and set(synced.tags or ()) == kept


# -- #10.11: "1 requests" ---------------------------------------------------------------------


def test_one_request_is_said_in_the_singular(
    fake_pocket: FakePocket, capsys: pytest.CaptureFixture[str]
) -> None:
    write_config(fake_pocket)
    code, _out, err = rb(capsys, "-v", "sync")
    assert code == 0, err
    assert "full sync: 0 received, 0 deleted, 1 request" in err
    assert "1 requests" not in err


def test_after_a_crash_the_cursor_goes_back_before_the_unconfirmed_actions(tmp_path: Path) -> None:
    """The server stamps time_updated with an action's `time` (the plan's
    clock), which can be older than the cursor of the sync just before the
    send: without moving the cursor back, the next incremental sync would
    not show that those actions landed, and the re-run would send them again."""
    from rulebot.run.pipeline import close_interrupted_runs
    from rulebot.sources.pocket.source import PocketSession
    from rulebot.sources.pocket.sync import CURSOR_KEY

    session = PocketSession(None, None)  # type: ignore[arg-type]  # recover needs neither

    with Store.open(tmp_path / "store.db") as store:
        store.set_meta(CURSOR_KEY, "1700000010")
        run_id = store.journal_begin(
            "apply-pocket",
            [
                {"action": "archive", "item_id": "1", "time": 1700000009},
                {"action": "archive", "item_id": "2", "time": 1700000009},
            ],
        )
        store.journal_mark(run_id, [0, 1], "sent")
        assert len(close_interrupted_runs(store, session)) == 2
        assert store.get_meta(CURSOR_KEY) == "1700000008"
        assert close_interrupted_runs(store, session) == []  # once closed, the cursor stays
        assert store.get_meta(CURSOR_KEY) == "1700000008"
