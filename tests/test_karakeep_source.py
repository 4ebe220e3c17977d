"""The Karakeep source end to end: the real CLI against the fake Karakeep on
127.0.0.1, a real store file, and every answer the fake gave checked against
Karakeep's published OpenAPI document at teardown."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from rulebot.fake.karakeep import FakeKarakeep
from rulebot.library.store import Store
from tests import karakeep_spec

from .helpers import clear_rulebot_env, rb

T = 1_795_672_800  # 2026-11-26T06:00:00Z
NOW = "2026-11-26T06:00:00Z"
DAY = 86400
KEY = "kk-SECRET-0b1c2d3e4f5a6b7c8d9e"

RULES = """\
limits: {max_actions: 500, max_deletes: 25}
rules:
  - name: purge
    where: {tag: junk}
    actions: [delete]
  - name: archive-stale
    where: {tag: read-later, status: unread, added: {older_than: 30d}}
    actions: [archive, {tags_add: [auto-archived]}]
  - name: fav-rust
    where: {tag: rust, favorite: false}
    actions: [favorite]
  - name: unfav-ancient
    where: {favorite: true, added: {older_than: 700d}}
    actions: [unfavorite, readd]
  - name: tidy
    where: {tag: to-sort, status: archived}
    actions: [{tags_remove: [TO-SORT]}]
  - name: replace
    where: {tag: replace-me}
    actions: [{tags_replace: [alpha, beta]}]
  - name: clear
    where: {tag: clear-me}
    actions: [tags_clear]
  - name: rename-js
    actions: [{tag_rename: {old_tag: js, new_tag: javascript}}]
  - name: drop-tmp
    actions: [{tag_delete: tmp}]
  - name: add-docs
    actions: [{add: {url: "https://docs.example/new", title: New docs, tags: [docs]}}]
"""


@pytest.fixture
def karakeep(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeKarakeep]:
    monkeypatch.chdir(tmp_path)
    clear_rulebot_env(monkeypatch)
    monkeypatch.setenv("KARAKEEP_API_KEY", KEY)
    with FakeKarakeep(now=T, api_key=KEY) as fake:
        yield fake
    if karakeep_spec.missing_reason() is None:
        karakeep_spec.check_all(fake)


def configure(fake: FakeKarakeep, rules: str = RULES, **settings: object) -> Path:
    extra = "".join(f", {k}: {v}" for k, v in settings.items())
    path = Path("rules.yaml")
    path.write_text(f"version: 1\nkarakeep: {{base_url: '{fake.base_url}'{extra}}}\n{rules}")
    return path


def library(fake: FakeKarakeep) -> dict[str, str]:
    """The fixtures of the whole-flow test: name -> bookmark id."""
    old = T - 60 * DAY
    return {
        "junk": fake.add_bookmark("https://a.example/junk", "Junk", tags=["junk"], created_at=old),
        "stale": fake.add_bookmark(
            "https://a.example/stale", "Stale", tags=["Read-Later"], created_at=old
        ),
        "fresh": fake.add_bookmark(
            "https://a.example/fresh", "Fresh", tags=["read-later"], created_at=T - DAY
        ),
        "rust": fake.add_bookmark("https://a.example/rust", "Rust", tags=["rust"], created_at=old),
        "ancient": fake.add_bookmark(
            "https://a.example/ancient",
            "Ancient",
            archived=True,
            favourited=True,
            created_at=T - 800 * DAY,
        ),
        "sorted": fake.add_bookmark(
            "https://a.example/sorted", "Sorted", tags=["To-Sort", "keep"], archived=True
        ),
        "replace": fake.add_bookmark(
            "https://a.example/replace", "Replace", tags=["replace-me", "Alpha"]
        ),
        "clear": fake.add_bookmark("https://a.example/clear", "Clear", tags=["clear-me", "x"]),
        "js": fake.add_bookmark("https://a.example/js", "JS", tags=["js", "web"]),
        "tmp": fake.add_bookmark("https://a.example/tmp", "Tmp", tags=["tmp", "keep"]),
    }


def tags_of(fake: FakeKarakeep, bookmark_id: str) -> list[str]:
    return sorted(fake.state.tag_names(bookmark_id))


def test_the_whole_flow_maps_every_action_and_a_second_run_is_idle(
    karakeep: FakeKarakeep, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = library(karakeep)
    configure(karakeep)
    code, out, err = rb(capsys, "run", "--now", NOW, "--format", "json")
    assert code == 0, err
    result = json.loads(out)
    assert result["summary"]["failed"] == 0
    state = karakeep.state
    assert ids["junk"] not in state.bookmarks  # delete
    stale = state.bookmarks[ids["stale"]]
    assert stale["archived"] is True  # archive
    # tags compare case-insensitively; the server's spelling is kept
    assert tags_of(karakeep, ids["stale"]) == ["Read-Later", "auto-archived"]
    fresh = state.bookmarks[ids["fresh"]]
    assert fresh["archived"] is False and tags_of(karakeep, ids["fresh"]) == ["read-later"]
    assert state.bookmarks[ids["rust"]]["favourited"] is True  # favorite
    ancient = state.bookmarks[ids["ancient"]]
    assert (ancient["favourited"], ancient["archived"]) == (False, False)  # unfavorite, readd
    assert tags_of(karakeep, ids["sorted"]) == ["keep"]  # tags_remove, server's spelling
    assert tags_of(karakeep, ids["replace"]) == ["Alpha", "beta"]  # tags_replace
    assert tags_of(karakeep, ids["clear"]) == []  # tags_clear
    assert tags_of(karakeep, ids["js"]) == ["javascript", "web"]  # tag_rename, native
    assert karakeep.tag_id("javascript") is not None and karakeep.tag_id("js") is None
    assert tags_of(karakeep, ids["tmp"]) == ["keep"] and karakeep.tag_id("tmp") is None
    added = state.by_url("https://docs.example/new")  # add, with its tags
    assert added is not None and tags_of(karakeep, added["id"]) == ["docs"]
    assert karakeep.calls("PATCH /tags/{id}") == 1  # the rename went natively
    # the mirror agrees with the server
    with Store.open(Path(".rulebot/rulebot.db")) as store:
        mirrored = {item.item_id: item for item in store.items()}
    assert set(mirrored) == set(state.bookmarks)
    assert sorted(mirrored[ids["replace"]].tags or ()) == ["Alpha", "beta"]
    # a second run: one list request (11 bookmarks < 100) and nothing else
    before = karakeep.calls()
    code, out, _ = rb(capsys, "run", "--now", NOW, "--detailed-exitcode")
    assert code == 0 and "Applied: 0 succeeded (1 request)" in out
    assert karakeep.calls() - before == 1 == karakeep.calls("GET /bookmarks") - 1


def test_an_idle_scheduled_run_on_1000_bookmarks_costs_ten_list_requests(
    karakeep: FakeKarakeep, capsys: pytest.CaptureFixture[str]
) -> None:
    for n in range(1000):
        karakeep.add_bookmark(f"https://b.example/{n}", f"B {n}", created_at=T - n)
    configure(
        karakeep,
        "rules:\n  - name: a\n    schedule: '0 6 * * *'\n    where: {tag: nope}\n"
        "    actions: [archive]\n",
    )
    assert rb(capsys, "run", "--due", "--now", NOW)[0] == 0
    assert karakeep.calls() == karakeep.calls("GET /bookmarks") == 10


def test_plan_out_then_apply_then_apply_again_does_nothing_twice(
    karakeep: FakeKarakeep, capsys: pytest.CaptureFixture[str]
) -> None:
    library(karakeep)
    configure(karakeep)
    assert rb(capsys, "plan", "--now", NOW, "--out", "plan.json")[0] == 0
    plan = json.loads(Path("plan.json").read_text())
    assert plan["source"] == {"kind": "karakeep", "base_url": karakeep.base_url}
    assert karakeep.calls("POST /bookmarks") == 0  # planning sends nothing
    karakeep.now = T + 60  # the apply runs a minute later: changes get a new modifiedAt
    assert rb(capsys, "apply", "plan.json")[0] == 0
    assert len(karakeep.state.bookmarks) == 10  # junk deleted, docs added
    code, out, _ = rb(capsys, "apply", "plan.json", "--format", "json")
    result = json.loads(out)
    assert code == 0 and result["summary"]["succeeded"] == 0
    assert karakeep.calls("POST /bookmarks") == 1  # the add, once
    assert len(karakeep.state.bookmarks) == 10  # junk deleted, docs added


def test_a_rename_onto_an_existing_tag_is_planned_per_item(
    karakeep: FakeKarakeep, capsys: pytest.CaptureFixture[str]
) -> None:
    a = karakeep.add_bookmark("https://c.example/a", "A", tags=["js"])
    b = karakeep.add_bookmark("https://c.example/b", "B", tags=["js", "JavaScript"])
    c = karakeep.add_bookmark("https://c.example/c", "C", tags=["JavaScript"])
    configure(
        karakeep,
        "rules:\n  - name: rename\n    actions:\n"
        "      - tag_rename: {old_tag: js, new_tag: javascript}\n",
    )
    code, out, _ = rb(capsys, "plan", "--now", NOW)
    assert code == 0
    assert "tag_rename" not in out  # the dry run is what will be sent
    assert 'tags_remove js "A"' in out and 'tags_add javascript "A"' in out
    assert 'tags_remove js "B"' in out and 'tags_add javascript "B"' not in out
    assert rb(capsys, "run", "--now", NOW)[0] == 0
    assert tags_of(karakeep, a) == ["javascript"]
    assert tags_of(karakeep, b) == ["JavaScript"] == tags_of(karakeep, c)
    assert karakeep.calls("PATCH /tags/{id}") == 0
    code, out, _ = rb(capsys, "plan", "--now", NOW, "--detailed-exitcode")
    assert code == 0 and "no changes" in out


def test_a_case_only_rename_of_a_bookmark_with_both_spellings_keeps_the_new_one(
    karakeep: FakeKarakeep, capsys: pytest.CaptureFixture[str]
) -> None:
    both = karakeep.add_bookmark("https://c.example/both", "Both", tags=["Dev", "dev", "python"])
    old = karakeep.add_bookmark("https://c.example/old", "Old", tags=["Dev"])
    configure(
        karakeep,
        "rules:\n  - name: one-dev\n    actions:\n"
        "      - tag_rename: {old_tag: Dev, new_tag: dev}\n",
    )
    code, out, _ = rb(capsys, "plan", "--now", NOW)
    assert code == 0
    # removing `Dev` removes every spelling (tags compare case-insensitively): `dev` comes back
    assert 'tags_remove Dev,dev "Both"' in out and 'tags_add dev "Both"' in out
    assert 'tags_remove Dev "Old"' in out and 'tags_add dev "Old"' in out
    assert rb(capsys, "run", "--now", NOW)[0] == 0
    assert tags_of(karakeep, both) == ["dev", "python"]
    assert tags_of(karakeep, old) == ["dev"]


def test_a_rename_onto_a_tag_only_the_server_has_is_planned_per_item_and_not_stuck(
    karakeep: FakeKarakeep, capsys: pytest.CaptureFixture[str]
) -> None:
    # an empty tag (what an undone tags_add leaves): no bookmark, so no mirror item, has it
    karakeep.add_tag("javascript")
    a = karakeep.add_bookmark("https://c.example/a", "A", tags=["js", "web"])
    configure(
        karakeep,
        "rules:\n  - name: rename\n    actions:\n"
        "      - tag_rename: {old_tag: js, new_tag: javascript}\n",
    )
    code, out, _ = rb(capsys, "plan", "--now", NOW)
    assert code == 0
    assert "tag_rename" not in out  # the plan is what will be sent: per item
    assert 'tags_remove js "A"' in out and 'tags_add javascript "A"' in out
    code, out, err = rb(capsys, "run", "--now", NOW)
    assert code == 0, out + err
    assert tags_of(karakeep, a) == ["javascript", "web"]
    assert karakeep.calls("PATCH /tags/{id}") == 0  # never tried natively (it would be a 400)
    code, out, _ = rb(capsys, "plan", "--now", NOW, "--detailed-exitcode")
    assert code == 0 and "no changes" in out


def test_apply_of_a_saved_plan_sends_per_item_renames_on_bookmarks_its_earlier_rules_changed(
    karakeep: FakeKarakeep, capsys: pytest.CaptureFixture[str]
) -> None:
    a = karakeep.add_bookmark("https://c.example/a", "A", tags=["js"], created_at=T - DAY)
    karakeep.add_bookmark("https://c.example/b", "B", tags=["JavaScript"], created_at=T - DAY)
    configure(
        karakeep,
        "rules:\n  - name: seen\n    where: {tag: js}\n    actions: [{tags_add: [seen]}]\n"
        "  - name: rename\n    actions:\n"
        "      - tag_rename: {old_tag: js, new_tag: javascript}\n",
    )
    assert rb(capsys, "plan", "--now", NOW, "--out", "plan.json")[0] == 0
    karakeep.now = T + 60  # merged and applied a minute later
    code, out, err = rb(capsys, "apply", "plan.json", "--format", "json")
    assert code == 0, err
    summary = json.loads(out)["summary"]
    # rule `seen` changing A is the plan's own doing, not a change since the plan
    assert (summary["succeeded"], summary["skipped"]) == (3, 0), out
    assert tags_of(karakeep, a) == ["javascript", "seen"]


def test_a_saved_plan_is_stale_for_a_bookmark_a_tag_rename_gave_keep_since(
    karakeep: FakeKarakeep, capsys: pytest.CaptureFixture[str]
) -> None:
    """Karakeep's tag rename keeps every bookmark's ``modifiedAt``: the stale
    check compares the tags (and status, favourite) the plan saw, not only
    the time, so the bookmark that gained `keep` is not deleted."""
    spared = karakeep.add_bookmark("https://k.example/1", "Pin", tags=["old", "pin"])
    gone = karakeep.add_bookmark("https://k.example/2", "Old", tags=["old"])
    configure(
        karakeep,
        "rules:\n  - name: purge\n    where: {tag: old, tags: {none: [keep]}}\n"
        "    actions: [delete]\n",
    )
    assert rb(capsys, "plan", "--now", NOW, "--out", "plan.json")[0] == 0
    stamped = karakeep.bookmark(spared)["modifiedAt"]
    renamed = httpx.patch(
        f"{karakeep.base_url}/api/v1/tags/{karakeep.tag_id('pin')}",
        json={"name": "keep"},
        headers={"Authorization": f"Bearer {KEY}"},
    )
    assert renamed.status_code == 200
    assert karakeep.bookmark(spared)["modifiedAt"] == stamped  # as on the real server
    code, out, err = rb(capsys, "apply", "plan.json", "--format", "json")
    assert code == 0, err
    result = json.loads(out)
    assert (result["summary"]["succeeded"], result["summary"]["skipped"]) == (1, 1)
    assert result["skipped"][0]["error"] == "the item's tags changed since the plan was made"
    assert set(karakeep.state.bookmarks) == {spared}
    assert gone not in karakeep.state.bookmarks


def test_tags_replace_on_a_bookmark_with_two_spellings_of_a_tag_keeps_one_and_converges(
    karakeep: FakeKarakeep, capsys: pytest.CaptureFixture[str]
) -> None:
    both = karakeep.add_bookmark("https://a.example/b", "B", tags=["javascript", "JavaScript"])
    configure(
        karakeep,
        "rules:\n  - name: r\n    where: {tag: javascript}\n"
        "    actions: [{tags_replace: [JavaScript, web]}]\n",
    )
    code, out, err = rb(capsys, "run", "--now", NOW)
    assert code == 0, out + err
    assert tags_of(karakeep, both) == ["JavaScript", "web"]
    code, out, _ = rb(capsys, "plan", "--now", NOW, "--detailed-exitcode")
    assert code == 0 and "no changes" in out


def test_validate_refuses_nothing_but_warns_about_fields_karakeep_lacks(
    karakeep: FakeKarakeep, capsys: pytest.CaptureFixture[str]
) -> None:
    configure(
        karakeep,
        "rules:\n  - name: long\n    where: {word_count: {gt: 5000}}\n    actions: [archive]\n",
    )
    code, out, _ = rb(capsys, "validate")
    assert code == 0
    assert "rule long: `word_count` is never known in Karakeep" in out


# -- faults ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "created",
    [
        "9999-12-31T23:59:59.000-14:00",  # the year 10000 in UTC: `items` could not show it
        "9999-06-01T00:00:00.000Z",
        "10000-01-01T00:00:00.000Z",
    ],
)
def test_a_bookmark_with_an_impossible_date_is_reported_skipped_and_never_stored(
    karakeep: FakeKarakeep, capsys: pytest.CaptureFixture[str], created: str
) -> None:
    good = karakeep.add_bookmark("https://k.example/good", "Good", tags=["old"])
    bad = karakeep.add_bookmark("https://k.example/bad", "Bad", tags=["old"])
    karakeep.garble(bad, createdAt=created)
    configure(karakeep, "rules:\n  - name: r\n    where: {tag: old}\n    actions: [archive]\n")
    code, out, err = rb(capsys, "run", "--now", NOW)
    assert code == 0, out + err
    assert f"Karakeep bookmark {bad}: field 'createdAt'" in err
    assert karakeep.state.bookmarks[good]["archived"] is True
    assert karakeep.state.bookmarks[bad]["archived"] is False  # never acted on unread
    with Store.open(Path(".rulebot/rulebot.db")) as store:
        assert store.get(bad) is None and store.get(good) is not None
    for args in (("items",), ("items", "--format", "json"), ("sync", "--full")):
        code, out, err = rb(capsys, *args)
        assert code == 0 and "Traceback" not in err and "internal error" not in err, err


def test_503_while_listing_is_retried(
    karakeep: FakeKarakeep, capsys: pytest.CaptureFixture[str]
) -> None:
    library(karakeep)
    configure(karakeep)
    karakeep.inject("status", status=503, route="GET /bookmarks")
    code, _, err = rb(capsys, "run", "--now", NOW)
    assert code == 0, err
    assert karakeep.calls("GET /bookmarks") == 2


@pytest.mark.parametrize(
    ("wait", "patches", "said"),
    [
        # the server keeps saying "now": one unit waits the whole budget (10 waits), then stops
        (0, 11, "still rate limited after waiting 10 times; try again after "),
        # a reset 2 hours away, beyond max_rate_wait: stopped at once, saying when
        (7200, 1, "asked to wait 7200 s, longer than the 300 s allowed; try again after "),
    ],
)
def test_a_rate_limit_that_outlasts_the_wait_stops_the_run_and_says_when_to_retry(
    karakeep: FakeKarakeep,
    capsys: pytest.CaptureFixture[str],
    wait: int,
    patches: int,
    said: str,
) -> None:
    ids = [karakeep.add_bookmark(f"https://r.example/{n}", tags=["old"]) for n in range(4)]
    configure(
        karakeep,
        "rules:\n  - name: r\n    where: {tag: old}\n    actions: [archive]\n",
        concurrency=2,
        max_rate_wait=300,
    )
    karakeep.inject(
        "status",
        status=429,
        route="PATCH /bookmarks/{id}",
        count=1000,
        body=f"Rate limit exceeded. Try again in {wait} seconds.",
    )
    code, out, err = rb(capsys, "run", "--now", NOW)
    assert code == 1, out + err
    assert said in err and "(in " in err and "Traceback" not in err
    # before #23, every remaining unit waited the whole budget again: 4 x 11 requests
    assert karakeep.calls("PATCH /bookmarks/{id}") <= 2 * patches  # the units in flight at most
    code, out, _ = rb(capsys, "runs", "--format", "json")
    last = json.loads(out)[0]
    assert last["failed"] <= 2 and last["skipped"] >= 2, last
    karakeep.clear_faults()  # the reset came: the next run finishes the work
    assert rb(capsys, "run", "--now", NOW)[0] == 0
    assert all(karakeep.state.bookmarks[i]["archived"] for i in ids)


def test_401_is_a_credentials_error_never_retried(
    karakeep: FakeKarakeep, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    library(karakeep)
    configure(karakeep)
    monkeypatch.setenv("KARAKEEP_API_KEY", "kk-WRONG-key-123456")
    code, out, err = rb(capsys, "run", "--now", NOW)
    assert code == 1 and "KARAKEEP_API_KEY" in err
    assert "kk-WRONG-key-123456" not in out + err
    assert karakeep.calls() == 1
    monkeypatch.delenv("KARAKEEP_API_KEY")
    code, _, err = rb(capsys, "plan", "--now", NOW)
    assert code == 1 and "KARAKEEP_API_KEY" in err and karakeep.calls() == 1


def test_a_dropped_connection_mid_apply_then_a_rerun_converges_without_a_double_add(
    karakeep: FakeKarakeep, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = library(karakeep)
    configure(karakeep, concurrency=1)
    # the create lands but its answer is lost: the client's retry finds the
    # bookmark its first attempt made, which is no second bookmark
    karakeep.inject("drop_after", route="POST /bookmarks")
    # a connection dropped before the work, retried; then a refusal that fails a unit
    karakeep.inject("drop", route="PATCH /bookmarks/{id}")
    karakeep.inject("status", status=400, route="PATCH /bookmarks/{id}", nth=2, body="busy")
    code, out, _ = rb(capsys, "run", "--now", NOW)
    assert code == 1 and "busy" in out
    karakeep.clear_faults()
    code, _, err = rb(capsys, "run", "--now", NOW)
    assert code == 0, err
    assert len([b for b in karakeep.state.bookmarks.values() if "docs.example" in str(b)]) == 1
    assert karakeep.state.bookmarks[ids["stale"]]["archived"] is True
    assert karakeep.state.bookmarks[ids["rust"]]["favourited"] is True
    code, out, _ = rb(capsys, "plan", "--now", NOW)
    assert "no changes" in out


# -- secrets ----------------------------------------------------------------------------


def test_the_api_key_never_leaves_the_environment(karakeep: FakeKarakeep, tmp_path: Path) -> None:
    library(karakeep)
    configure(karakeep)
    env = {
        "PATH": "/usr/bin:/bin",
        "KARAKEEP_API_KEY": KEY,
        "HOME": str(tmp_path),
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
    }
    outputs = []
    for args in (
        ["validate"],
        ["sync"],
        ["plan", "--out", "plan.json", "--now", NOW],
        ["apply", "plan.json", "--format", "json"],
        ["run", "--now", NOW, "--format", "markdown"],
        ["explain", "nope"],
        ["schedule"],
    ):
        done = subprocess.run(
            [sys.executable, "-m", "rulebot", "-v", "-v", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        outputs.append(done.stdout + done.stderr)
    karakeep.inject("status", status=400, route="GET /bookmarks", body=f"bad key {KEY} !")
    done = subprocess.run(
        [sys.executable, "-m", "rulebot", "-v", "-v", "sync"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    outputs.append(done.stdout + done.stderr)
    assert done.returncode == 1
    for text in outputs:
        assert KEY not in text
    for path in Path().rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path
    for exchange in karakeep.exchanges:
        assert KEY not in exchange.path


def test_a_karakeep_plan_file_validates_against_the_plan_schema(
    karakeep: FakeKarakeep, capsys: pytest.CaptureFixture[str]
) -> None:
    from jsonschema import Draft202012Validator

    library(karakeep)
    configure(karakeep)
    assert rb(capsys, "plan", "--now", NOW, "--out", "plan.json")[0] == 0
    schema_path = Path(__file__).resolve().parent.parent / "schemas" / "plan.schema.json"
    schema = json.loads(schema_path.read_text())
    plan = json.loads(Path("plan.json").read_text())
    assert plan["actions"] and all(
        not a["send"].get("item_id", "x").isdigit() for a in plan["actions"]
    )
    assert list(Draft202012Validator(schema).iter_errors(plan)) == []


def test_a_crash_between_a_units_requests_is_finished_by_the_next_run(
    karakeep: FakeKarakeep, tmp_path: Path
) -> None:
    """Karakeep takes one rule's actions on one bookmark in several requests.
    Killed after `tags_remove inbox` landed and before `archive` did, the item
    no longer matches `tag: inbox`: only the journal knows the archive is owed."""
    import os
    import signal
    import time

    target = karakeep.add_bookmark("https://e.example/inbox", "Inbox", tags=["inbox"])
    configure(
        karakeep,
        "rules:\n  - name: file-inbox\n    where: {tag: inbox}\n"
        "    actions: [{tags_remove: [inbox]}, archive]\n",
    )
    # the archive never lands: its connection drops, and the client is killed retrying
    karakeep.inject("drop", route="PATCH /bookmarks/{id}", count=99)
    env = {**os.environ, "KARAKEEP_API_KEY": KEY}
    command = [sys.executable, "-m", "rulebot", "run", "--now", NOW]
    victim = subprocess.Popen(
        command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 20
    while karakeep.calls("PATCH /bookmarks/{id}") < 1 and victim.poll() is None:
        assert time.monotonic() < deadline, "the run never reached the archive"
        time.sleep(0.01)
    victim.send_signal(signal.SIGKILL)
    victim.communicate(timeout=10)
    karakeep.clear_faults()
    assert tags_of(karakeep, target) == []  # half done: the tag is gone ...
    assert karakeep.state.bookmarks[target]["archived"] is False  # ... the archive is not
    done = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert karakeep.state.bookmarks[target]["archived"] is True
    assert "finishing 1 action of an interrupted run" in done.stderr
    code = subprocess.run(
        [*command[:3], "plan", "--now", NOW], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert "no changes" in code.stdout


def test_a_run_that_deletes_a_bookmark_and_adds_its_url_back_sends_both(
    karakeep: FakeKarakeep, capsys: pytest.CaptureFixture[str]
) -> None:
    # the planner sees the URL gone after the delete, so it plans the add; the
    # applier must decide on the same simulated library, not skip the add as "saved"
    old = karakeep.add_bookmark("https://a.example/again", "Again", tags=["junk"])
    configure(
        karakeep,
        "rules:\n"
        "  - {name: purge, where: {tag: junk}, actions: [delete]}\n"
        "  - name: want\n"
        "    actions: [{add: {url: 'https://a.example/again', tags: [fresh]}}]\n",
    )
    code, out, err = rb(capsys, "run", "--now", NOW, "--format", "json")
    assert code == 0, err
    result = json.loads(out)
    assert (result["summary"]["succeeded"], result["summary"]["skipped"]) == (2, 0), out
    bookmarks = karakeep.state.bookmarks
    assert old not in bookmarks
    [again] = [b for b in bookmarks.values() if b["content"]["url"] == "https://a.example/again"]
    assert tags_of(karakeep, again["id"]) == ["fresh"]
    code, out, err = rb(capsys, "run", "--now", NOW, "--format", "json")
    assert code == 0 and json.loads(out)["summary"]["succeeded"] == 0, out  # settled


def test_progress_on_a_terminal_counts_actions_and_says_what_they_cost(
    karakeep: FakeKarakeep, tmp_path: Path
) -> None:
    """The progress line counted units (an item's group of actions) and called
    them requests; it now counts the plan's actions, with the requests so far."""
    from tests.test_sender_hardening import run_with_stderr_on_a_pty

    for n in range(6):
        karakeep.add_bookmark(
            f"https://p.example/{n}", f"P{n}", tags=["junk"], created_at=T - 9 * DAY
        )
    configure(
        karakeep,
        rules="rules:\n  - name: tidy\n    where: {tag: junk}\n    actions: [archive, {tags_add: [seen]}]\n",
    )
    before = karakeep.calls()
    code, err = run_with_stderr_on_a_pty(tmp_path, "run", "--now", "2026-03-02T00:00:00Z")
    assert code == 0, err
    line = err.replace("\r", "\n").splitlines()
    shown = [text for text in line if text.startswith("rulebot: applied ")]
    assert shown[-1].startswith("rulebot: applied 12/12 actions (")
    made = int(shown[-1].split("(")[1].split(" ")[0])
    assert 0 < made <= karakeep.calls() - before  # the apply's requests, not the sync's
