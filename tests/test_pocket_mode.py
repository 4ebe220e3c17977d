"""Pocket mode end to end: the real CLI against the fake Pocket server over real sockets.

Each test drives ``rulebot.cli.main`` (or ``python -m rulebot`` in a
subprocess) against ``FakePocket`` on 127.0.0.1 and checks both sides: what
the command printed and stored, and what the server received and holds.
"""

from __future__ import annotations

import io
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from rulebot.cli import main
from rulebot.fakepocket import FakePocket
from rulebot.library.store import Store
from rulebot.planning.plan import iso
from rulebot.sources.pocket.api import PocketClient
from tests.conftest import ACCESS_TOKEN, CONSUMER_KEY
from tests.helpers import rb

BASE_ADDED = 1_600_000_000
DOCS_URL = "https://docs.example.org/handbook"

RULES = f"""\
rules:
  - name: archive-read-later
    where: {{tag: read-later, status: unread}}
    actions:
      - archive
      - tags_add: [auto-archived]
  - name: star-python
    where: {{tag: python, favorite: false}}
    actions: [favorite]
  - name: rename-js
    actions:
      - tag_rename: {{old_tag: js, new_tag: javascript}}
  - name: save-docs
    actions:
      - add: {{url: "{DOCS_URL}", tags: [docs]}}
"""


# -- helpers ------------------------------------------------------------------------------


def write_config(
    server: FakePocket,
    *,
    page_size: int = 30,
    batch_size: int = 30,
    rules: str = RULES,
    extra: str = "",
) -> Path:
    path = Path("rules.yaml")
    path.write_text(
        "version: 1\n"
        "pocket:\n"
        f"  base_url: {server.base_url}\n"
        f"  page_size: {page_size}\n"
        f"  batch_size: {batch_size}\n"
        f"{extra}"
        "limits: {max_actions: 1000, max_deletes: 100}\n" + rules,
        encoding="utf-8",
    )
    return path


def tags_of(i: int) -> list[str]:
    return [tag for tag, every in (("read-later", 3), ("python", 5), ("js", 7)) if i % every == 0]


def populate(server: FakePocket, count: int) -> list[str]:
    """Items 0..count-1 with tags by divisibility; every 11th is archived."""
    return [
        server.add_item(
            url=f"https://site{i % 4}.example/post/{i}",
            title=f"Post {i}",
            tags=tags_of(i),
            status=1 if i % 11 == 0 else 0,
            time_added=BASE_ADDED + 60 * i,
        )
        for i in range(count)
    ]


def expected_state(i: int) -> tuple[str, str, set[str]]:
    """(status, favorite, tags) of item i after RULES ran once."""
    tags = set(tags_of(i))
    archived = i % 11 == 0
    if "read-later" in tags and not archived:
        archived = True
        tags.add("auto-archived")
    if "js" in tags:
        tags = (tags - {"js"}) | {"javascript"}
    return ("1" if archived else "0", "1" if "python" in tags else "0", tags)


def expected_action_count(count: int) -> int:
    archive_rule = sum(2 for i in range(count) if i % 3 == 0 and i % 11 != 0)
    star_rule = sum(1 for i in range(count) if i % 5 == 0)
    return archive_rule + star_rule + 1 + 1  # + tag_rename + add


def server_state(server: FakePocket) -> dict[str, tuple[str, str, set[str]]]:
    return {
        item["given_url"]: (item["status"], item["favorite"], set(item.get("tags", {})))
        for item in server.items.values()
    }


def live_state(server: FakePocket) -> dict[str, tuple[str, str, set[str]]]:
    """``server_state`` without the deleted items: what the mirror should hold."""
    return {url: state for url, state in server_state(server).items() if state[0] != "2"}


def assert_server_converged(server: FakePocket, ids: list[str]) -> None:
    state = server_state(server)
    for i in range(len(ids)):
        assert state[f"https://site{i % 4}.example/post/{i}"] == expected_state(i), i
    assert state[DOCS_URL] == ("0", "0", {"docs"})
    assert [i for i in server.items.values() if i["given_url"] == DOCS_URL].__len__() == 1


def store_state(
    path: Path = Path(".rulebot/rulebot.db"),
) -> dict[str, tuple[str, str, set[str] | None]]:  # None: tags unknown (never equals a set)
    with Store.open(path) as store:
        return {
            item.given_url: (
                str(item.status),
                "1" if item.favorite else "0",
                None if item.tags is None else set(item.tags),
            )
            for item in store.items()
        }


def sent_actions(server: FakePocket) -> list[dict[str, Any]]:
    return [action for r in server.requests if r.path == "/v3/send" for action in r.body["actions"]]


def action_key(action: dict[str, Any]) -> tuple[str, str]:
    name = action["action"]
    target = action.get("item_id") or action.get("url") or action.get("old_tag") or ""
    return name, str(target)


def other_device(server: FakePocket) -> PocketClient:
    """Changes made elsewhere (another app), over the same HTTP API."""
    return PocketClient(server.base_url, CONSUMER_KEY, ACCESS_TOKEN, max_retries=0)


def subprocess_env() -> dict[str, str]:
    root = Path(__file__).resolve().parent.parent
    return {
        **os.environ,
        "NO_COLOR": "1",
        "PYTHONPATH": str(root) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    }


# -- 1. paging ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("page_size", "max_page", "over_page", "gets"),
    [
        (30, None, 0, math.ceil(95 / 30) + 1),  # 30, 30, 30, 5, then the empty page
        (30, 7, 0, math.ceil(95 / 7) + 1),  # short pages: what arrived + the empty page
        (30, None, 10, math.ceil(95 / 40) + 1),  # a server that sends more than asked
    ],
)
def test_full_sync_pages_until_the_empty_page(
    fake_pocket: FakePocket,
    capsys: pytest.CaptureFixture[str],
    page_size: int,
    max_page: int | None,
    over_page: int,
    gets: int,
) -> None:
    fake_pocket.max_page, fake_pocket.over_page = max_page, over_page
    populate(fake_pocket, 95)
    write_config(fake_pocket, page_size=page_size)
    code, out, err = rb(capsys, "sync")
    assert code == 0, err
    assert fake_pocket.calls("/v3/get") == gets
    assert fake_pocket.calls() == gets
    assert "full sync: 95 received, 0 deleted, 95 items in the store" in out
    bodies = [r.body for r in fake_pocket.requests]
    assert all(b["count"] == page_size for b in bodies)
    assert all(b["state"] == "all" and b["detailType"] == "complete" for b in bodies)
    step = min(page_size + over_page, max_page or 10**9)
    assert [b["offset"] for b in bodies] == [min(n * step, 95) for n in range(gets)]
    assert len(store_state()) == 95


# -- 2. incremental sync ---------------------------------------------------------------------


def test_incremental_sync_sees_deletes_tag_changes_and_new_items(
    fake_pocket: FakePocket, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = populate(fake_pocket, 12)
    write_config(fake_pocket, page_size=5)
    assert rb(capsys, "sync")[0] == 0
    full_requests = fake_pocket.calls()
    assert full_requests == math.ceil(12 / 5) + 1

    with other_device(fake_pocket) as device:
        device.send(
            [
                {"action": "delete", "item_id": ids[1]},
                {"action": "tags_add", "item_id": ids[2], "tags": "fresh"},
                {"action": "tags_clear", "item_id": ids[3]},
                {"action": "archive", "item_id": ids[4]},
            ]
        )
        new_item = device.add("https://new.example/item", title="Brand new", tags="inbox")
    before = fake_pocket.calls()

    code, out, err = rb(capsys, "sync")
    assert code == 0, err
    assert out.startswith("incremental sync: 5 received, 1 deleted, 12 items in the store")
    assert fake_pocket.calls() - before == 2  # one page of changes, one empty page
    since_sent = [r.body.get("since") for r in fake_pocket.requests[before:]]
    assert all(isinstance(s, int) for s in since_sent)

    state = store_state()
    assert "https://site1.example/post/1" not in state  # deleted on the server
    assert state["https://site2.example/post/2"][2] == {"fresh"}
    assert state["https://site3.example/post/3"][2] == set()  # tags cleared
    assert state["https://site0.example/post/4"][0] == "1"  # archived elsewhere
    assert state["https://new.example/item"] == ("0", "0", {"inbox"})
    with Store.open(Path(".rulebot/rulebot.db")) as store:
        assert store.get(str(new_item["item_id"])) is not None

    # Nothing changed since: an idle incremental sync is exactly one request.
    before = fake_pocket.calls()
    code, out, _ = rb(capsys, "sync")
    assert code == 0
    assert fake_pocket.calls() - before == 1
    assert "incremental sync: 0 received, 0 deleted, 12 items in the store (1 request)" in out
    # ... and so is an idle plan.
    before, sends = fake_pocket.calls(), fake_pocket.calls("/v3/send")
    code, out, _ = rb(capsys, "plan", "--rule", "archive-read-later", "--format", "json")
    assert code == 0
    assert fake_pocket.calls() - before == 1 and fake_pocket.calls("/v3/send") == sends


def test_sync_full_flag_rebuilds_the_mirror(
    fake_pocket: FakePocket, capsys: pytest.CaptureFixture[str]
) -> None:
    populate(fake_pocket, 8)
    write_config(fake_pocket, page_size=30)
    assert rb(capsys, "sync")[0] == 0
    before = fake_pocket.calls()
    code, out, _ = rb(capsys, "sync", "--full")
    assert code == 0
    assert out.startswith("full sync: 8 received")
    assert fake_pocket.calls() - before == 2
    assert "since" not in fake_pocket.requests[-1].body


# -- 3. dry runs send nothing ------------------------------------------------------------------


def test_plan_and_dry_run_make_no_send_calls(
    fake_pocket: FakePocket, capsys: pytest.CaptureFixture[str]
) -> None:
    populate(fake_pocket, 20)
    write_config(fake_pocket, batch_size=4)
    before = server_state(fake_pocket)
    code, out, err = rb(capsys, "plan", "--format", "json", "--detailed-exitcode")
    assert code == 2, err
    plan = json.loads(out)
    assert len(plan["actions"]) == expected_action_count(20)
    assert plan["source"] == {"kind": "pocket", "base_url": fake_pocket.base_url}
    code, out, err = rb(capsys, "run", "--dry-run")
    assert code == 0, err
    assert f"Plan: {expected_action_count(20)} actions" in out
    assert fake_pocket.calls("/v3/send") == 0
    assert fake_pocket.calls("/v3/add") == 0
    assert server_state(fake_pocket) == before


def test_a_refused_run_sends_nothing(
    fake_pocket: FakePocket, capsys: pytest.CaptureFixture[str]
) -> None:
    populate(fake_pocket, 20)
    write_config(fake_pocket)
    code, _out, err = rb(capsys, "run", "--max-actions", "3")
    assert code == 3
    assert "--max-actions" in err
    assert fake_pocket.calls("/v3/send") == 0


def test_apply_a_saved_plan_skips_what_changed_on_the_server(
    fake_pocket: FakePocket, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = populate(fake_pocket, 12)
    write_config(fake_pocket, batch_size=4)
    assert rb(capsys, "plan", "--out", "plan.json")[0] == 0
    with other_device(fake_pocket) as device:  # item 6 changes after planning (a minute on)
        later = fake_pocket.now + 60
        device.send([{"action": "tags_add", "item_id": ids[6], "tags": "touched", "time": later}])
    sends = fake_pocket.calls("/v3/send")
    code, out, err = rb(capsys, "apply", "plan.json")
    assert code == 0, err
    skipped = [line for line in out.splitlines() if line.startswith("skipped")]
    assert len(skipped) == 2 and all('"Post 6"' in line for line in skipped)
    assert "changed since the plan was made" in skipped[0]
    planned = expected_action_count(12)
    assert f"Applied: {planned - 2} succeeded, 2 skipped" in out
    assert fake_pocket.calls("/v3/send") - sends == math.ceil((planned - 2) / 4)
    assert fake_pocket.item(ids[6])["status"] == "0"


# -- 4. run: final state and batch count ---------------------------------------------------------


@pytest.mark.parametrize(
    ("plan_lag", "gets_back"),
    [
        pytest.param(0, 2, id="writes-stamped-in-the-cursor-second"),
        # CI found this one: the run's clock is read before its sync, so a
        # second can pass between them; the server stamps each write with the
        # plan's (older) time, and the next sync's cursor is past it.
        pytest.param(1, 1, id="writes-stamped-before-the-cursor"),
    ],
)
def test_run_converges_the_server_in_the_fewest_batches(
    fake_pocket: FakePocket, capsys: pytest.CaptureFixture[str], plan_lag: int, gets_back: int
) -> None:
    ids = populate(fake_pocket, 40)
    write_config(fake_pocket, page_size=30, batch_size=10)
    planned = expected_action_count(40)
    server_second = fake_pocket.now
    fake_pocket.now = server_second  # pinned: the cursor is this second
    clock = ("--now", iso(server_second - plan_lag))
    code, out, err = rb(capsys, "run", *clock)
    assert code == 0, err
    assert fake_pocket.calls("/v3/send") == math.ceil(planned / 10)
    assert len(sent_actions(fake_pocket)) == planned
    assert all(len(r.body["actions"]) <= 10 for r in fake_pocket.requests if r.path == "/v3/send")
    assert {a["time"] for a in sent_actions(fake_pocket)} == {server_second - plan_lag}
    assert f"Applied: {planned} succeeded" in out
    assert_server_converged(fake_pocket, ids)
    # The mirror was updated from confirmed results: it equals the server.
    assert store_state() == live_state(fake_pocket)

    # The next run has nothing to do. Its sync shows the run's own writes
    # (one page + the empty page) only when they are stamped in the cursor's
    # second; stamped before it, they are not shown, and need not be: the
    # mirror already holds what the server confirmed. The run after is idle:
    # a single /v3/get.
    for gets in (gets_back, 1):
        before = fake_pocket.calls()
        code, out, _ = rb(capsys, "run", "--detailed-exitcode", *clock)
        assert code == 0
        assert "Applied: 0 succeeded" in out
        assert fake_pocket.calls() - before == gets
        assert store_state() == live_state(fake_pocket)
    assert fake_pocket.calls("/v3/send") == math.ceil(planned / 10)


# -- 5. credentials never leak ------------------------------------------------------------------


def test_credentials_never_leak(fake_pocket: FakePocket, tmp_path: Path) -> None:
    ids = populate(fake_pocket, 12)
    write_config(fake_pocket, page_size=5, batch_size=3)
    fake_pocket.inject("503", 1, "/v3/send", retry_after=0)  # error paths log too
    fake_pocket.fail_actions[ids[3]] = (422, "nope")
    outputs = []
    for args in (
        ["plan", "--out", "plan.json"],
        ["run", "--format", "json"],
        ["sync", "--full"],
    ):
        done = subprocess.run(
            [sys.executable, "-m", "rulebot", "-v", "-v", *args],
            capture_output=True,
            text=True,
            env=subprocess_env(),
            cwd=tmp_path,
            timeout=30,
            check=False,
        )
        outputs += [done.stdout, done.stderr]
    assert "HTTP 200" in outputs[1] or "HTTP 200" in outputs[3]  # -vv really logged
    files = [tmp_path / "plan.json", *(tmp_path / ".rulebot").iterdir()]
    blobs = [text.encode() for text in outputs] + [path.read_bytes() for path in files]
    assert json.loads(outputs[2])["format_version"] == 1
    for secret in (CONSUMER_KEY, ACCESS_TOKEN):
        for blob in blobs:
            assert secret.encode() not in blob
        for request in fake_pocket.requests:
            assert secret not in request.url
            assert all(secret not in value for value in request.headers.values())
    # ... while every request did carry them, in the JSON body.
    assert all(r.body.get("access_token") == ACCESS_TOKEN for r in fake_pocket.requests)
    assert all(r.method == "POST" and "?" not in r.url for r in fake_pocket.requests)


# -- 6. retries and rate limits ---------------------------------------------------------------


def test_503s_and_dropped_connections_are_retried_to_convergence(
    fake_pocket: FakePocket, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = populate(fake_pocket, 30)
    write_config(fake_pocket, page_size=10, batch_size=8)
    fake_pocket.inject("503", 2, "/v3/get", retry_after=0)
    fake_pocket.inject("drop", 1, "/v3/get")
    # One fault per batch ("slow" 0 s lets the retry through):
    fake_pocket.inject("503", 1, "/v3/send", retry_after=0)  # batch 1: not applied
    fake_pocket.inject("slow", 1, "/v3/send", seconds=0)
    fake_pocket.inject("drop", 1, "/v3/send")  # batch 2: not applied
    fake_pocket.inject("slow", 1, "/v3/send", seconds=0)
    fake_pocket.inject("drop_after", 1, "/v3/send")  # batch 3: applied, the answer lost
    planned = expected_action_count(30)
    code, out, err = rb(capsys, "run")
    assert code == 0, err
    assert f"Applied: {planned} succeeded" in out
    assert "retry 1 of" not in err  # retries are logged at info (-v) only
    batches = math.ceil(planned / 8)
    assert fake_pocket.calls("/v3/send") == batches + 3
    assert fake_pocket.calls("/v3/get") == math.ceil(30 / 10) + 1 + 3
    assert_server_converged(fake_pocket, ids)
    # The first three batches went twice (same actions, in order), the rest once.
    bodies = [r.body["actions"] for r in fake_pocket.requests if r.path == "/v3/send"]
    assert bodies[0] == bodies[1] and bodies[2] == bodies[3] and bodies[4] == bodies[5]
    keys = [action_key(a) for body in bodies[1::2][:3] + bodies[6:] for a in body]
    assert len(keys) == len(set(keys)) == planned
    # The store mirrors the server.
    assert store_state() == live_state(fake_pocket)


def test_rate_limit_waits_for_the_reset_and_says_so(
    fake_pocket: FakePocket, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = populate(fake_pocket, 10)
    fake_pocket.user_limit, fake_pocket.reset_seconds = 3, 1.0
    fake_pocket.reset_rate_limits()
    write_config(fake_pocket, page_size=4, batch_size=30)
    started = time.monotonic()
    code, _out, err = rb(capsys, "run")
    assert code == 0, err
    assert "rate limit reached; waiting" in err
    assert time.monotonic() - started >= 0.9
    # The client waited instead of hammering: no request was refused.
    assert fake_pocket.calls() == math.ceil(10 / 4) + 1 + 1
    assert_server_converged(fake_pocket, ids)


def test_rate_limit_longer_than_max_rate_wait_fails_clearly(
    fake_pocket: FakePocket, capsys: pytest.CaptureFixture[str]
) -> None:
    populate(fake_pocket, 10)
    fake_pocket.user_limit, fake_pocket.reset_seconds = 2, 3600.0
    fake_pocket.reset_rate_limits()
    write_config(fake_pocket, page_size=4, extra="  max_rate_wait: 5\n")
    code, _out, err = rb(capsys, "run")
    assert code == 1
    assert "rate limit" in err and "max_rate_wait" in err and "longer than" in err
    assert "Traceback" not in err
    assert fake_pocket.calls("/v3/send") == 0
    with Store.open(Path(".rulebot/rulebot.db")) as store:
        assert store.get_meta("since") is None  # an unfinished sync saves no cursor
        assert store.count() == 0


# -- 7. per-action and whole-batch failures ------------------------------------------------------


def test_per_action_failure_is_reported_and_the_rest_kept(
    fake_pocket: FakePocket, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = populate(fake_pocket, 16)
    write_config(fake_pocket, batch_size=6)
    fake_pocket.fail_actions[ids[3]] = (422, "Invalid request")
    code, out, _err = rb(capsys, "run")
    assert code == 1
    failed_lines = [line for line in out.splitlines() if line.startswith("failed")]
    assert len(failed_lines) == 2  # archive and tags_add of item 3
    assert all("archive-read-later" in line and '"Post 3"' in line for line in failed_lines)
    assert all("Invalid request (422)" in line for line in failed_lines)
    planned = expected_action_count(16)
    assert f"Applied: {planned - 2} succeeded, 2 failed" in out
    server = server_state(fake_pocket)
    stored = store_state()
    for i in range(16):
        url = f"https://site{i % 4}.example/post/{i}"
        want = ("0", "0", {"read-later"}) if i == 3 else expected_state(i)
        assert server[url] == want, i
        assert stored[url] == want, i  # the store holds only what was confirmed
    with Store.open(Path(".rulebot/rulebot.db")) as store:
        run = store.journal_runs(1)[0]
    assert run.status == "partial" and run.states.get("failed") == 2
    assert run.states.get("confirmed") == planned - 2


def test_whole_batch_400_is_narrowed_down_to_the_culprit(
    fake_pocket: FakePocket, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = populate(fake_pocket, 10)
    bad_url = "https://[::1/x"  # passes the config's pattern, refused by the server
    rules = RULES + f'  - name: save-bad\n    actions:\n      - add: {{url: "{bad_url}"}}\n'
    write_config(fake_pocket, batch_size=30, rules=rules)
    fake_pocket.inject("400", 1, "/v3/send")  # one spurious whole-batch refusal as well
    code, out, _err = rb(capsys, "run", "--format", "json")
    assert code == 1
    result = json.loads(out)
    planned = expected_action_count(10) + 1
    assert result["summary"]["failed"] == 1
    assert result["summary"]["succeeded"] == planned - 1
    (failed,) = result["failed"]
    assert failed["rule"] == "save-bad" and failed["send"]["url"] == bad_url
    assert "refused" in failed["error"]
    assert_server_converged(fake_pocket, ids)
    # Every good action landed exactly once (the refused requests ran nothing).
    applied = [
        action_key(a)
        for r in fake_pocket.requests
        if r.path == "/v3/send"
        for a in r.body["actions"]
    ]
    assert applied.count(("add", DOCS_URL)) >= 1
    assert len([i for i in fake_pocket.items.values() if i["given_url"] == DOCS_URL]) == 1


# -- 8. SIGKILL mid-apply, then run again ----------------------------------------------------------


def test_sigkill_mid_apply_then_rerun_finishes_without_doing_anything_twice(
    fake_pocket: FakePocket, tmp_path: Path
) -> None:
    ids = populate(fake_pocket, 40)
    # save-docs first, so the add is in the batch that lands before the kill.
    rules = RULES.replace(
        "rules:\n",
        "rules:\n  - name: save-docs-first\n    actions:\n"
        f'      - add: {{url: "{DOCS_URL}", tags: [docs]}}\n',
        1,
    )
    write_config(fake_pocket, page_size=30, batch_size=6, rules=rules)
    fake_pocket.inject("slow", 1, "/v3/send", seconds=0)  # batch 1: answered at once
    fake_pocket.inject("slow", 1, "/v3/send", seconds=1.5)  # batch 2: in flight when killed
    command = [sys.executable, "-m", "rulebot", "run"]
    env = subprocess_env()
    victim = subprocess.Popen(
        command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 20
    while fake_pocket.calls("/v3/send") < 2 and victim.poll() is None:
        assert time.monotonic() < deadline, "the run never reached its second batch"
        time.sleep(0.01)
    victim.send_signal(signal.SIGKILL)
    victim.communicate(timeout=10)
    assert victim.returncode == -signal.SIGKILL
    time.sleep(2.0)  # the server finishes the batch the client no longer waits for
    assert fake_pocket.calls("/v3/send") == 2

    with Store.open(tmp_path / ".rulebot" / "rulebot.db") as store:
        (open_run,) = store.journal_runs(1)
        assert open_run.status == "running" and open_run.states.get("sent") == 6

    done = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "interrupted" in done.stderr

    assert_server_converged(fake_pocket, ids)
    keys = [action_key(a) for a in sent_actions(fake_pocket)]
    assert len(keys) == len(set(keys)), "an action was sent twice"
    assert keys.count(("add", DOCS_URL)) == 1
    assert len(keys) == expected_action_count(40)
    with Store.open(tmp_path / ".rulebot" / "rulebot.db") as store:
        second, first = store.journal_runs(2)
    assert first.status == "interrupted" and first.finished_at is not None
    assert second.status == "ok"


# -- 9. OAuth ---------------------------------------------------------------------------------


def test_auth_flow_prints_the_token_once(
    fake_pocket: FakePocket, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("POCKET_ACCESS_TOKEN")
    monkeypatch.setattr("sys.stdin", io.StringIO("\n"))
    fake_pocket.auto_approve = True  # as if the user approved at /auth/authorize
    code, out, err = rb(capsys, "auth", "--base-url", fake_pocket.base_url)
    assert code == 0, err
    assert out == ACCESS_TOKEN + "\n"
    assert ACCESS_TOKEN not in err
    assert "/auth/authorize?request_token=" in err and "fakeuser" in err
    assert fake_pocket.calls("/v3/oauth/request") == 1
    assert fake_pocket.calls("/v3/oauth/authorize") == 1
    assert all("access_token" not in r.body for r in fake_pocket.requests)


def test_auth_goes_on_when_the_browser_comes_back(
    fake_pocket: FakePocket, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The browser used to be sent to a dead https://localhost/rulebot-auth and
    the user had to press Enter; now it comes back to a page rulebot serves on
    127.0.0.1, and rulebot goes on by itself (no Enter: stdin never answers)."""
    import threading

    import httpx

    monkeypatch.delenv("POCKET_ACCESS_TOKEN")
    read_end, write_end = os.pipe()  # an input that never sends a line
    monkeypatch.setattr("sys.stdin", os.fdopen(read_end, "r"))
    pages: list[httpx.Response] = []

    def browser() -> None:
        deadline = time.monotonic() + 10
        while fake_pocket.calls("/v3/oauth/request") == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        asked = next(r for r in fake_pocket.requests if r.path == "/v3/oauth/request")
        token = next(iter(fake_pocket._oauth_codes))  # the request token it handed out
        redirect = asked.body["redirect_uri"]
        pages.append(
            httpx.get(
                f"{fake_pocket.base_url}/auth/authorize",
                params={"request_token": token, "redirect_uri": redirect},
                follow_redirects=True,
            )
        )

    thread = threading.Thread(target=browser)
    thread.start()
    code, out, err = rb(capsys, "auth", "--base-url", fake_pocket.base_url)
    thread.join()
    os.close(write_end)
    assert code == 0, err
    assert out == ACCESS_TOKEN + "\n"
    assert "localhost/rulebot-auth" not in err
    [page] = pages
    assert page.status_code == 200 and "rulebot is approved" in page.text
    assert str(page.url).startswith("http://127.0.0.1:") and page.url.path == "/rulebot-auth"


def test_auth_errors_are_clear(
    fake_pocket: FakePocket, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    write_config(fake_pocket)
    fake_pocket.reject_authorization = True
    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # EOF instead of Enter is fine too
    code, out, err = rb(capsys, "auth")  # the base_url from the config
    assert code == 1 and out == ""
    assert "did not approve" in err and "158" in err

    monkeypatch.setenv("POCKET_CONSUMER_KEY", "ck-WRONG-0000")
    code, out, err = rb(capsys, "auth", "--base-url", fake_pocket.base_url)
    assert code == 1 and out == ""
    assert "POCKET_CONSUMER_KEY" in err and "ck-WRONG-0000" not in err

    monkeypatch.delenv("POCKET_CONSUMER_KEY")
    code, _, err = rb(capsys, "auth", "--base-url", fake_pocket.base_url)
    assert code == 1 and "POCKET_CONSUMER_KEY is not set" in err


# -- 10. the result document ---------------------------------------------------------------------


def test_run_format_json_emits_the_result_document(
    fake_pocket: FakePocket, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = populate(fake_pocket, 12)
    write_config(fake_pocket, page_size=5, batch_size=4)
    fake_pocket.fail_actions[ids[5]] = (422, "Invalid request")
    code, out, _err = rb(capsys, "run", "--format", "json")
    assert code == 1
    result = json.loads(out)
    planned = expected_action_count(12)
    sends = fake_pocket.calls("/v3/send")
    assert result["format_version"] == 1
    assert result["source"] == {"kind": "pocket", "base_url": fake_pocket.base_url}
    assert result["requests"] == fake_pocket.calls() == math.ceil(12 / 5) + 1 + sends
    assert result["summary"] == {
        "planned": planned,
        "sent": planned,
        "succeeded": planned - 1,
        "failed": 1,
        "skipped": 0,
    }
    (failed,) = result["failed"]
    assert failed["rule"] == "star-python" and failed["send"]["item_id"] == ids[5]
    assert failed["error"] == "Invalid request (422)"


# -- 11. credentials: rejected or missing ------------------------------------------------------------


def test_401_names_the_variable_and_makes_one_request(
    fake_pocket: FakePocket, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    populate(fake_pocket, 3)
    write_config(fake_pocket)
    monkeypatch.setenv("POCKET_ACCESS_TOKEN", "at-WRONG-9999")
    code, _out, err = rb(capsys, "run")
    assert code == 1
    assert "POCKET_ACCESS_TOKEN" in err and "at-WRONG-9999" not in err
    assert "rulebot auth" in err and "Traceback" not in err
    assert fake_pocket.calls() == 1


@pytest.mark.parametrize("missing", ["POCKET_CONSUMER_KEY", "POCKET_ACCESS_TOKEN"])
def test_missing_credentials_name_the_variable(
    fake_pocket: FakePocket,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    missing: str,
) -> None:
    write_config(fake_pocket)
    monkeypatch.delenv(missing)
    for command in (["plan"], ["run"], ["sync"]):
        code, _out, err = rb(capsys, *command)
        assert code == 1, command
        assert f"{missing} is not set" in err
        assert CONSUMER_KEY not in err and ACCESS_TOKEN not in err
    assert fake_pocket.calls() == 0


def test_split_point_keeps_one_rules_actions_on_an_item_together() -> None:
    from rulebot.planning.plan import PlannedAction
    from rulebot.sources.pocket.sender import _split_point

    def act(rule: str, item_id: str | None) -> tuple[int, PlannedAction]:
        send = {"action": "archive", "time": 1} | ({"item_id": item_id} if item_id else {})
        return 0, PlannedAction(rule, send)

    batch = [
        act("r", "1"),
        act("r", "1"),
        act("r", "1"),
        act("r", "2"),
        act("r", "2"),
        act("s", "2"),
    ]
    assert _split_point(batch) == 3  # not 3 of item 1 | … but at the item boundary
    batch = [act("r", "1"), act("r", "1"), act("r", "2"), act("r", "2")]
    assert _split_point(batch) == 2
    assert _split_point([act("r", "1")] * 4) is None  # one group: never split (#11.3)
    assert _split_point([act("r", "1")]) is None
    assert _split_point([act("a", None), act("b", None), act("c", None)]) == 1


def test_a_stop_between_batches_sends_nothing_more_and_the_next_run_finishes(
    fake_pocket: FakePocket,
) -> None:
    """The daemon's SIGTERM: the batch in flight completes, no further batch
    is sent, the unsent actions are reported as skipped and the journal is
    closed; the next run plans and sends exactly those."""
    from rulebot.rules.config import load_config
    from rulebot.run import pipeline
    from rulebot.run.pipeline import plan_rules
    from rulebot.sources.pocket.sender import STOPPED

    ids = populate(fake_pocket, 40)
    config = load_config(write_config(fake_pocket, batch_size=10))
    asked = []

    def stop() -> bool:
        asked.append(1)
        return len(asked) > 1  # let the first batch go, then stop

    with Store.open(config.store) as store, pipeline.connected(config, store) as live:
        plan = plan_rules(config, config.rules, store.items(), 1_795_672_800)
        result = pipeline.apply(store, plan, live, check_stale=False, stop=stop)
        runs = store.journal_runs(1)
    assert fake_pocket.calls("/v3/send") == 1
    assert len(result.succeeded) == len(sent_actions(fake_pocket)) <= 10
    assert len(result.skipped) == len(plan.actions) - len(result.succeeded)
    assert {o.error for o in result.skipped} == {STOPPED}
    assert runs[0].status == "ok" and runs[0].finished_at is not None
    assert "sent" not in runs[0].states  # nothing left half-recorded
    assert main(["-q", "run"]) == 0
    assert_server_converged(fake_pocket, ids)
    assert len(sent_actions(fake_pocket)) == expected_action_count(40)  # nothing twice


def test_a_resent_batch_does_not_fail_on_what_its_own_delete_removed(
    fake_pocket: FakePocket, capsys: pytest.CaptureFixture[str]
) -> None:
    """The answer to [archive X, delete X] is lost after the server ran it; the
    client sends it again, and the server answers 422 for the archive (X is
    gone). The run did what it planned: exit 0, X deleted once, no failure."""
    item_id = fake_pocket.add_item(url="https://old.example/x", tags=["junk"])
    write_config(
        fake_pocket,
        rules="rules:\n  - name: purge\n    where: {tag: junk}\n    actions: [archive, delete]\n",
    )
    fake_pocket.inject("drop_after", 1, "/v3/send")
    code, out, err = rb(capsys, "run", "--format", "json")
    assert code == 0, err
    result = json.loads(out)
    assert result["summary"]["failed"] == 0 and result["summary"]["succeeded"] == 2
    assert fake_pocket.calls("/v3/send") == 2  # the batch really was sent twice
    assert fake_pocket.item(item_id)["status"] == "2"


def test_sync_progress_only_on_a_terminal(fake_pocket: FakePocket) -> None:
    """A long sync counts on stderr when a person watches (a real pty), and
    keeps CI logs clean otherwise."""
    import pty

    populate(fake_pocket, 45)
    write_config(fake_pocket, page_size=10)
    command = [sys.executable, "-m", "rulebot", "sync", "--full"]
    leader, follower = pty.openpty()
    try:
        done = subprocess.run(
            command, stderr=follower, stdout=subprocess.PIPE, env=subprocess_env(), timeout=60
        )
        os.close(follower)
        follower = -1
        seen = b""
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the pty is drained once the child is gone
                break
            if not chunk:
                break
            seen += chunk
    finally:
        if follower != -1:
            os.close(follower)
        os.close(leader)
    assert done.returncode == 0
    assert b"synced 45 items" in seen
    piped = subprocess.run(command, capture_output=True, env=subprocess_env(), timeout=60)
    assert piped.returncode == 0 and b"synced" not in piped.stderr
    assert b"full sync: 45 received" in piped.stdout


def test_a_run_that_deletes_an_item_and_adds_its_url_back_sends_both(
    fake_pocket: FakePocket, capsys: pytest.CaptureFixture[str]
) -> None:
    # the sender decides what to skip on the library as earlier actions leave it,
    # as the planner did: the add is not "already saved" once the delete is sent
    old = fake_pocket.add_item(url="https://again.example/", title="Again", tags=["junk"])
    write_config(
        fake_pocket,
        rules="rules:\n"
        "  - {name: purge, where: {tag: junk}, actions: [delete]}\n"
        "  - name: want\n"
        "    actions: [{add: {url: 'https://again.example/', tags: [fresh]}}]\n",
    )
    code, out, err = rb(capsys, "run", "--format", "json")
    assert code == 0, err
    summary = json.loads(out)["summary"]
    assert (summary["succeeded"], summary["skipped"]) == (2, 0), out
    # Pocket brings a re-added URL back under its old id (pocket-api.md)
    again = fake_pocket.item(old)
    assert again["status"] == "0" and "fresh" in again.get("tags", {})
