"""The Readeck source end to end: the real CLI against the fake Readeck on
127.0.0.1, a real store file, and every answer the fake gave checked against
Readeck's published API definition at teardown."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rulebot.fake.readeck import FakeReadeck
from rulebot.library.item import Item
from rulebot.library.store import Store
from rulebot.rules.schema import DEFAULT_CONCURRENCY
from rulebot.sources.applier import OUTAGE
from rulebot.sources.readeck.source import CURSOR_KEY, DATE_MARGIN
from tests import readeck_spec

from .helpers import clear_rulebot_env, rb

T = 1_795_672_800  # 2026-11-26T06:00:00Z
NOW = "2026-11-26T06:00:00Z"
DAY = 86400
TOKEN = "rdk-SECRET-0b1c2d3e4f5a6b7c8d9e"

RULES = """\
limits: {max_actions: 500, max_deletes: 25}
rules:
  - name: purge
    where: {tag: junk}
    actions: [delete]
  - name: archive-stale
    where: {tag: read-later, status: unread, added: {older_than: 30d}}
    actions: [archive, favorite, {tags_add: [auto-archived]}, {tags_remove: [read-later]}]
  - name: long-videos
    where: {type: video, reading_time: {gt: 30}, lang: de}
    actions: [{tags_add: [watch]}]
  - name: big
    where: {word_count: {gt: 5000}}
    actions: [{tags_add: [big]}]
  - name: unfav-ancient
    where: {favorite: true, added: {older_than: 700d}}
    actions: [unfavorite, readd]
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
def readeck(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeReadeck]:
    monkeypatch.chdir(tmp_path)
    clear_rulebot_env(monkeypatch)
    monkeypatch.setenv("READECK_TOKEN", TOKEN)
    with FakeReadeck(now=T, token=TOKEN) as fake:
        yield fake
    if readeck_spec.missing_reason() is None:
        assert readeck_spec.check_all(fake) > 0 or not fake.exchanges


def configure(fake: FakeReadeck, rules: str = RULES, **settings: object) -> Path:
    extra = "".join(f", {k}: {v}" for k, v in settings.items())
    path = Path("rules.yaml")
    path.write_text(f"version: 1\nreadeck: {{base_url: '{fake.base_url}'{extra}}}\n{rules}")
    return path


def library(fake: FakeReadeck) -> dict[str, str]:
    old = T - 60 * DAY
    return {
        "junk": fake.add_bookmark("https://a.example/junk", "Junk", labels=["junk"], created=old),
        "stale": fake.add_bookmark(
            "https://a.example/stale", "Stale", labels=["Read-Later", "keep"], created=old
        ),
        "fresh": fake.add_bookmark(
            "https://a.example/fresh", "Fresh", labels=["read-later"], created=T - DAY
        ),
        "video": fake.add_bookmark(
            "https://v.example/v", "Video", kind="video", reading_time=45, lang="de"
        ),
        "short-video": fake.add_bookmark(
            "https://v.example/s", "Short", kind="video", reading_time=3, lang="de"
        ),
        "book": fake.add_bookmark("https://a.example/book", "Book", word_count=9000),
        "ancient": fake.add_bookmark(
            "https://a.example/ancient",
            "Ancient",
            archived=True,
            marked=True,
            created=T - 800 * DAY,
        ),
        "replace": fake.add_bookmark(
            "https://a.example/replace", "Replace", labels=["replace-me", "Alpha"]
        ),
        "clear": fake.add_bookmark("https://a.example/clear", "Clear", labels=["clear-me", "x"]),
        "js": fake.add_bookmark("https://a.example/js", "JS", labels=["js", "web"]),
        "both": fake.add_bookmark("https://a.example/both", "Both", labels=["javascript", "js"]),
        "tmp": fake.add_bookmark("https://a.example/tmp", "Tmp", labels=["tmp", "keep"]),
    }


def labels_of(fake: FakeReadeck, bookmark_id: str) -> list[str]:
    return sorted(fake.state.labels(bookmark_id))


def test_the_whole_flow_maps_every_action_in_one_patch_per_unit(
    readeck: FakeReadeck, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = library(readeck)
    configure(readeck)
    code, out, _ = rb(capsys, "plan", "--now", NOW)
    assert code == 0 and "Readeck merges js into the existing label javascript" in out
    code, out, err = rb(capsys, "run", "--now", NOW, "--format", "json")
    assert code == 0, err
    assert json.loads(out)["summary"]["failed"] == 0
    state = readeck.state
    assert ids["junk"] not in state.bookmarks and ids["junk"] in state.removed  # delete: immediate
    stale = state.bookmarks[ids["stale"]]
    assert (stale["is_archived"], stale["is_marked"]) == (True, True)
    # tags compare case-insensitively: the server's spelling is what was removed
    assert labels_of(readeck, ids["stale"]) == ["auto-archived", "keep"]
    assert labels_of(readeck, ids["fresh"]) == ["read-later"]
    assert labels_of(readeck, ids["video"]) == ["watch"]  # type, reading_time, lang
    assert labels_of(readeck, ids["short-video"]) == []
    assert labels_of(readeck, ids["book"]) == ["big"]  # word_count
    ancient = state.bookmarks[ids["ancient"]]
    assert (ancient["is_marked"], ancient["is_archived"]) == (False, False)
    assert labels_of(readeck, ids["replace"]) == ["Alpha", "beta"]  # tags_replace
    assert labels_of(readeck, ids["clear"]) == []  # tags_clear
    assert labels_of(readeck, ids["js"]) == ["javascript", "web"]  # native rename
    assert labels_of(readeck, ids["both"]) == ["javascript"]  # ... merged
    assert labels_of(readeck, ids["tmp"]) == ["keep"]  # tag_delete
    (added,) = state.by_url("https://docs.example/new")
    assert added["labels"] == ["docs"] and added["loaded"] is False
    # one PATCH per unit: archive-stale's four actions travelled together
    patches = [e for e in readeck.exchanges if e.route == "PATCH /bookmarks/{id}"]
    stale_patch = [json.loads(e.raw_body) for e in patches if ids["stale"] in e.path]
    assert stale_patch == [
        {
            "is_archived": True,
            "is_marked": True,
            "add_labels": ["auto-archived"],
            "remove_labels": ["Read-Later"],
        }
    ]
    assert readeck.calls("PATCH /bookmarks/labels") == 1
    assert all(e.headers.get("accept") == "application/json" for e in readeck.exchanges)
    # the next run fetches what the apply changed (the feed names them), then the mirror agrees
    readeck.now = T + 1  # the second the run read and wrote in has ended
    assert rb(capsys, "sync")[0] == 0
    with Store.open(Path(".rulebot/rulebot.db")) as store:
        mirrored = {item.item_id: item for item in store.items()}
    assert set(mirrored) == set(readeck.state.bookmarks)
    assert mirrored[ids["replace"]].tags == ("Alpha", "beta")
    # idle: one request, the change feed
    before, feeds = readeck.calls(), readeck.calls("GET /bookmarks/sync")
    code, out, _ = rb(capsys, "run", "--now", NOW, "--detailed-exitcode")
    assert code == 0 and "Applied: 0 succeeded (1 request)" in out
    assert readeck.calls() - before == 1 == readeck.calls("GET /bookmarks/sync") - feeds


def test_an_edit_in_the_second_the_mirror_was_read_is_still_synced(
    readeck: FakeReadeck, capsys: pytest.CaptureFixture[str]
) -> None:
    """Readeck's times are whole seconds: a bookmark edited again in the very
    second its copy was read carries the same `updated`. Found by the
    conformance model (tests/conformance/test_model.py): such an edit was taken
    for the overlap re-sending what the mirror had, and never synced."""
    bookmark_id = readeck.add_bookmark("https://s.example/1", "Same second", created=T, updated=T)
    configure(readeck, "rules:\n  - name: a\n    actions: [{tag_delete: nope}]\n")
    assert rb(capsys, "sync")[0] == 0  # read at T
    assert rb(capsys, "sync")[0] == 0  # an incremental sync, still at T
    readeck.touch(bookmark_id, is_archived=True)
    assert readeck.state.bookmarks[bookmark_id]["updated"].startswith("2026-11-26T06:00:00")
    assert rb(capsys, "sync")[0] == 0
    with Store.open(Path(".rulebot/rulebot.db")) as store:
        assert store.get(bookmark_id).status == 1  # type: ignore[union-attr]


def test_an_idle_scheduled_run_on_1000_bookmarks_is_one_request_and_ten_changes_two(
    readeck: FakeReadeck, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = [
        readeck.add_bookmark(f"https://b.example/{n}", f"B {n}", created=T - DAY - n)
        for n in range(1000)
    ]
    configure(
        readeck,
        "rules:\n  - name: a\n    schedule: '0 6 * * *'\n    where: {tag: nope}\n"
        "    actions: [archive]\n",
    )
    assert rb(capsys, "sync")[0] == 0
    assert readeck.calls() == readeck.calls("GET /bookmarks") == 10  # limit=100 pages
    assert rb(capsys, "run", "--due", "--now", NOW)[0] == 0
    assert readeck.calls() - 10 == 1 == readeck.calls("GET /bookmarks/sync")
    readeck.now = T + 120
    for bookmark_id in ids[:10]:
        readeck.touch(bookmark_id, labels=["changed"])
    readeck.remove(ids[10])
    before = readeck.calls()
    # due again the next morning (a run --due before then sends nothing at all)
    assert rb(capsys, "run", "--due", "--now", "2026-11-27T06:00:00Z")[0] == 0
    assert readeck.calls() - before == 2  # 1 sync + ceil(10/100) fetches
    with Store.open(Path(".rulebot/rulebot.db")) as store:
        assert store.get(ids[0]).tags == ("changed",)  # type: ignore[union-attr]
        assert store.get(ids[10]) is None and store.count() == 999
    readeck.now = T + 121
    before = readeck.calls()
    assert rb(capsys, "run", "--due", "--now", "2026-11-28T06:00:00Z")[0] == 0
    # the last sync read in the second the ten were changed in (the fake's clock
    # stood still): they are fetched once more, in case an edit came in that second
    assert readeck.calls() - before == 2
    before = readeck.calls()
    assert rb(capsys, "run", "--due", "--now", "2026-11-29T06:00:00Z")[0] == 0
    assert readeck.calls() - before == 1  # the boundary second re-sent, not re-fetched


def test_add_relies_on_the_mirror_and_plan_apply_apply_adds_once(
    readeck: FakeReadeck, capsys: pytest.CaptureFixture[str]
) -> None:
    library(readeck)
    configure(readeck)
    assert rb(capsys, "plan", "--now", NOW, "--out", "plan.json")[0] == 0
    plan = json.loads(Path("plan.json").read_text())
    assert plan["source"] == {"kind": "readeck", "base_url": readeck.base_url}
    assert readeck.calls("POST /bookmarks") == 0  # planning sends nothing
    readeck.now = T + 60  # the apply runs a minute later: changes get a later `updated`
    assert rb(capsys, "apply", "plan.json")[0] == 0
    code, out, _ = rb(capsys, "apply", "plan.json", "--format", "json")
    assert code == 0 and json.loads(out)["summary"]["succeeded"] == 0
    assert readeck.calls("POST /bookmarks") == 1
    assert len(readeck.state.by_url("https://docs.example/new")) == 1


@pytest.mark.parametrize(
    ("fault", "posts"),
    [
        ("drop_after", 1),  # Readeck made the bookmark, the answer was lost: not posted again
        ("drop", 2),  # the POST never ran: the newest bookmarks say so, and it is sent again
        ("status", 2),  # a proxy's 502: checked the same way, then sent again
    ],
)
def test_add_whose_answer_is_lost_is_checked_by_url_before_it_is_sent_again(
    readeck: FakeReadeck, capsys: pytest.CaptureFixture[str], fault: str, posts: int
) -> None:
    readeck.add_bookmark("https://a.example/other", "Other")
    configure(
        readeck,
        "rules:\n  - name: add-docs\n"
        "    actions: [{add: {url: 'https://docs.example/new', title: New, tags: [docs]}}]\n",
    )
    readeck.inject(fault, status=502, route="POST /bookmarks")
    code, out, err = rb(capsys, "run", "--now", NOW, "--format", "json")
    assert code == 0, out + err
    assert json.loads(out)["summary"]["succeeded"] == 1
    assert readeck.calls("POST /bookmarks") == posts
    assert len(readeck.state.by_url("https://docs.example/new")) == 1  # Readeck keeps no dupe check
    code, out, _ = rb(capsys, "plan", "--now", NOW, "--detailed-exitcode")
    assert code == 0 and "no changes" in out  # the mirror has it: nothing left to add


def test_tags_replace_on_a_bookmark_with_two_spellings_of_a_label_keeps_one_and_converges(
    readeck: FakeReadeck, capsys: pytest.CaptureFixture[str]
) -> None:
    both = readeck.add_bookmark("https://a.example/b", "B", labels=["javascript", "JavaScript"])
    configure(
        readeck,
        "rules:\n  - name: r\n    where: {tag: javascript}\n"
        "    actions: [{tags_replace: [JavaScript, web]}]\n",
    )
    code, out, err = rb(capsys, "run", "--now", NOW)
    assert code == 0, out + err
    assert labels_of(readeck, both) == ["JavaScript", "web"]
    code, out, _ = rb(capsys, "plan", "--now", NOW, "--detailed-exitcode")
    assert code == 0 and "no changes" in out


def test_validate_warns_only_about_what_readeck_lacks(
    readeck: FakeReadeck, capsys: pytest.CaptureFixture[str]
) -> None:
    configure(
        readeck,
        "rules:\n  - name: r\n    where: {read: {older_than: 5d}}\n    actions: [archive]\n"
        "  - name: w\n    where: {word_count: {gt: 5}, type: video, lang: en}\n"
        "    actions: [archive]\n",
    )
    code, out, _ = rb(capsys, "validate")
    assert code == 0
    assert "is never known in Readeck" in out and "rule w" not in out


# -- the sync cursor: never past what the client can justify (#22.3, #23.1) --------------

KEEP_RULES = """\
rules:
  - name: purge
    where: {tag: inbox, tags: {none: [keep]}}
    actions: [delete]
"""


def mirrored(bookmark_id: str) -> Item | None:
    with Store.open(Path(".rulebot/rulebot.db")) as store:
        return store.get(bookmark_id)


def test_a_bookmark_dated_ahead_of_the_servers_clock_does_not_hide_later_edits(
    readeck: FakeReadeck, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = library(readeck)
    configure(readeck, KEEP_RULES)
    assert rb(capsys, "sync")[0] == 0
    # Readeck's clock says T; a bookmark carries an `updated` a day ahead of it
    # (a server clock set back, an import): the feed names it...
    ahead = readeck.add_bookmark("https://a.example/ahead", "Ahead", updated=T + DAY)
    assert rb(capsys, "sync")[0] == 0
    assert mirrored(ahead) is not None
    # ... and the cursor must not jump to its time: an edit made before then is synced
    readeck.now = T + 60
    readeck.touch(ids["fresh"], labels=["keep", "read-later"])
    assert rb(capsys, "sync")[0] == 0
    assert mirrored(ids["fresh"]).tags == ("keep", "read-later")  # type: ignore[union-attr]


def test_one_answer_dated_2100_does_not_hide_a_keep_tag_from_the_next_run(
    readeck: FakeReadeck, capsys: pytest.CaptureFixture[str]
) -> None:
    kept = readeck.add_bookmark("https://a.example/k", "K", labels=["inbox"], created=T - 9 * DAY)
    configure(readeck, KEEP_RULES)
    assert rb(capsys, "sync")[0] == 0
    readeck.date_header = "Fri, 01 Jan 2100 00:00:00 GMT"  # answers from a clock gone wrong:
    for command in (["sync", "--full"], ["sync"]):  # the list's Date, then the feed's
        code, _, err = rb(capsys, *command)
        assert code == 0 and "2100-01-01T00:00:00Z" in err and "not believed" in err
    readeck.date_header = None
    readeck.now = T + 60
    readeck.touch(kept, labels=["inbox", "keep"])  # the user keeps it
    code, _, err = rb(capsys, "run", "--now", NOW)
    assert code == 0, err
    assert kept in readeck.state.bookmarks
    assert readeck.calls("DELETE /bookmarks/{id}") == 0


def test_an_out_of_range_date_header_is_a_warning_and_every_later_plan_works(
    readeck: FakeReadeck, capsys: pytest.CaptureFixture[str]
) -> None:
    library(readeck)
    configure(readeck)
    readeck.date_header = "Fri, 31 Dec 9999 23:59:59 -2359"  # past year 9999 in UTC
    for command in ("sync", "sync", "plan", "plan"):  # full, then incremental, twice
        code, _, err = (
            rb(capsys, command, "--now", NOW) if command == "plan" else rb(capsys, command)
        )
        assert code == 0, err
        assert "not believed" in err and "internal error" not in err
    with Store.open(Path(".rulebot/rulebot.db")) as store:
        assert int(store.get_meta(CURSOR_KEY) or 0) <= T  # the changes' time at most


def test_a_cursor_left_in_the_future_by_an_older_rulebot_is_repaired_by_a_full_sync(
    readeck: FakeReadeck, capsys: pytest.CaptureFixture[str]
) -> None:
    kept = readeck.add_bookmark("https://a.example/k", "K", labels=["inbox"], created=T - 9 * DAY)
    configure(readeck, KEEP_RULES)
    assert rb(capsys, "sync")[0] == 0
    readeck.now = T + 60
    readeck.touch(kept, labels=["inbox", "keep"])
    for poisoned in ("4102444800", "253402387139"):  # 2100; 9999-12-31 23:59:59 -2359
        with Store.open(Path(".rulebot/rulebot.db")) as store:
            store.set_meta(CURSOR_KEY, poisoned)
        code, out, err = rb(capsys, "plan", "--now", NOW)
        assert code == 0, err
        assert "syncing everything to repair it" in err and "no changes" in out
        with Store.open(Path(".rulebot/rulebot.db")) as store:
            assert store.get_meta(CURSOR_KEY) == str(T + 60 - DATE_MARGIN)
    assert mirrored(kept).tags == ("inbox", "keep")  # type: ignore[union-attr]


# -- faults ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("garbled", "field"),
    [
        ({"word_count": 2**64}, "word_count"),
        ({"reading_time": 2**70}, "reading_time"),
        ({"created": "9999-12-31T23:59:59Z"}, "created"),
        ({"created": "10000-01-01T00:00:00Z"}, "created"),
        ({"created": "9999-12-31T23:59:59-14:00"}, "created"),
    ],
)
def test_a_malformed_bookmark_is_reported_skipped_and_never_stored(
    readeck: FakeReadeck, capsys: pytest.CaptureFixture[str], garbled: dict[str, object], field: str
) -> None:
    good = readeck.add_bookmark("https://r.example/good", "Good", labels=["old"])
    bad = readeck.add_bookmark("https://r.example/bad", "Bad", labels=["old"])
    readeck.garble(bad, **garbled)
    configure(readeck, "rules:\n  - name: r\n    where: {tag: old}\n    actions: [archive]\n")
    code, out, err = rb(capsys, "run", "--now", NOW)
    assert code == 0, out + err
    assert f"Readeck bookmark {bad}: field {field!r}" in err
    assert readeck.state.bookmarks[good]["is_archived"] is True
    with Store.open(Path(".rulebot/rulebot.db")) as store:
        assert store.get(bad) is None and store.get(good) is not None
    for args in (("items",), ("sync",), ("sync", "--full")):
        code, out, err = rb(capsys, *args)
        assert code == 0 and "Traceback" not in err and "internal error" not in err, err


def test_503_while_listing_and_on_the_feed_is_retried(
    readeck: FakeReadeck, capsys: pytest.CaptureFixture[str]
) -> None:
    library(readeck)
    configure(readeck)
    readeck.inject("status", status=503, route="GET /bookmarks")
    assert rb(capsys, "sync")[0] == 0
    readeck.inject("status", status=502, route="GET /bookmarks/sync")
    code, _, err = rb(capsys, "run", "--now", NOW)
    assert code == 0, err
    assert readeck.calls("GET /bookmarks/sync") == 2


def test_401_is_a_credentials_error_never_retried(
    readeck: FakeReadeck, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    library(readeck)
    configure(readeck)
    monkeypatch.setenv("READECK_TOKEN", "rdk-WRONG-token-123456")
    code, out, err = rb(capsys, "run", "--now", NOW)
    assert code == 1 and "READECK_TOKEN" in err and "Traceback" not in err
    assert "rdk-WRONG-token-123456" not in out + err
    assert readeck.calls() == 1
    monkeypatch.delenv("READECK_TOKEN")
    code, _, err = rb(capsys, "plan", "--now", NOW)
    assert code == 1 and "READECK_TOKEN" in err and readeck.calls() == 1


def test_a_page_size_over_100_is_refused_before_any_request(
    readeck: FakeReadeck, capsys: pytest.CaptureFixture[str]
) -> None:
    configure(readeck, page_size=101)
    code, _, err = rb(capsys, "sync")
    assert code == 1 and "page_size" in err and "Traceback" not in err
    assert readeck.calls() == 0


def test_a_server_that_dies_mid_apply_stops_the_run_with_one_message_and_the_next_run_finishes(
    readeck: FakeReadeck, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = [
        readeck.add_bookmark(f"https://m.example/{n}", f"M {n}", labels=["inbox"], created=T - n)
        for n in range(16)
    ]
    configure(readeck, "rules:\n  - name: file\n    where: {tag: inbox}\n    actions: [archive]\n")
    assert rb(capsys, "sync")[0] == 0
    readeck.inject("die", route="PATCH /bookmarks/{id}", nth=5)  # 4 units land, then it is gone
    started = time.monotonic()
    code, out, err = rb(capsys, "run", "--now", NOW)
    took = time.monotonic() - started
    assert code == 1
    # one message naming the server, not a failure line per remaining unit
    (message,) = [line for line in err.splitlines() if line.startswith("rulebot: error:")]
    assert readeck.base_url in message and "did not answer" in message and "not sent" in message
    assert "failed  " not in out + err and "Traceback" not in err
    assert took < 5  # a refused connection is not retried with backoff (was ~25 s here)
    code, listed, _ = rb(capsys, "runs", "--format", "json")
    run = json.loads(listed)[0]
    assert run["status"] == "failed" and run["unconfirmed"] == 0
    assert run["succeeded"] <= 4 and run["failed"] <= OUTAGE + DEFAULT_CONCURRENCY
    assert run["succeeded"] + run["failed"] + run["skipped"] == 16 and run["skipped"] >= 5
    readeck.start()  # back on the same port: the next run finishes the rest
    code, _, err = rb(capsys, "run", "--now", NOW)
    assert code == 0, err
    assert all(readeck.state.bookmarks[i]["is_archived"] for i in ids)
    landed = [e.path for e in readeck.exchanges if e.route == "PATCH /bookmarks/{id}" and e.status]
    assert sorted(landed) == sorted(f"/api/bookmarks/{i}" for i in ids)  # each exactly once


def test_a_dropped_connection_and_a_refusal_then_a_rerun_converges(
    readeck: FakeReadeck, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = library(readeck)
    configure(readeck, concurrency=1)
    readeck.inject("drop", route="PATCH /bookmarks/{id}")
    readeck.inject("status", status=400, route="PATCH /bookmarks/{id}", nth=2, body="busy")
    code, out, _ = rb(capsys, "run", "--now", NOW)
    assert code == 1 and "busy" in out
    readeck.clear_faults()
    code, _, err = rb(capsys, "run", "--now", NOW)
    assert code == 0, err
    assert readeck.state.bookmarks[ids["stale"]]["is_archived"] is True
    assert len(readeck.state.by_url("https://docs.example/new")) == 1
    code, out, _ = rb(capsys, "plan", "--now", NOW)
    assert "no changes" in out


# -- secrets ----------------------------------------------------------------------------


def test_the_token_never_leaves_the_environment(readeck: FakeReadeck, tmp_path: Path) -> None:
    library(readeck)
    configure(readeck)
    env = {"PATH": "/usr/bin:/bin", "READECK_TOKEN": TOKEN, "HOME": str(tmp_path)}
    outputs = []
    for args in (
        ["validate"],
        ["sync"],
        ["plan", "--out", "plan.json", "--now", NOW],
        ["apply", "plan.json", "--format", "json"],
        ["run", "--now", NOW, "--format", "markdown"],
    ):
        done = subprocess.run(
            [sys.executable, "-m", "rulebot", "-v", "-v", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        outputs.append(done.stdout + done.stderr)
    readeck.inject("status", status=400, route="GET /bookmarks/sync", body=f"bad token {TOKEN} !")
    done = subprocess.run(
        [sys.executable, "-m", "rulebot", "-v", "-v", "sync"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    outputs.append(done.stdout + done.stderr)
    assert done.returncode == 1
    for text in outputs:
        assert TOKEN not in text
    for path in Path().rglob("*"):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), path
    for exchange in readeck.exchanges:
        assert TOKEN not in exchange.target
