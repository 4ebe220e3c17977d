"""The Wallabag source end to end: the real CLI against the fake Wallabag on
127.0.0.1 (OAuth2 included), a real store file, every action's mapping checked
on the fake's final state."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from rulebot.fake.wallabag import FakeWallabag
from rulebot.library.store import Store
from rulebot.sources.wallabag.source import FULL_SCAN_KEY, SINCE_KEY

from .helpers import clear_rulebot_env, rb

T = 1_795_672_800  # 2026-11-26T06:00:00Z
NOW = "2026-11-26T06:00:00Z"
DAY = 86400
CREDENTIALS = {
    "client_id": "7_SECRETclientid0c0ffee0000000000000000000000000",
    "client_secret": "SECRETclientsecret5e5e5e5e5e5e5e5e5e5e5e5e5e5e",
    "username": "SECRETuser-rulebot",
    "password": "SECRETpassword-0b1c2d3e4f",
}
VARIABLES = ("WALLABAG_CLIENT_ID", "WALLABAG_CLIENT_SECRET", "WALLABAG_USERNAME")

RULES = """\
limits: {max_actions: 500, max_deletes: 25}
rules:
  - name: purge
    where: {tag: junk}
    actions: [delete]
  - name: archive-stale
    where: {tag: read-later, status: unread, added: {older_than: 30d}}
    actions: [archive, {tags_add: [Auto-Archived]}]
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
def wallabag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeWallabag]:
    monkeypatch.chdir(tmp_path)
    clear_rulebot_env(monkeypatch)
    with FakeWallabag(
        now=T,
        client_id=CREDENTIALS["client_id"],
        client_secret=CREDENTIALS["client_secret"],
        username=CREDENTIALS["username"],
        password=CREDENTIALS["password"],
    ) as fake:
        for name, value in fake.env.items():
            monkeypatch.setenv(name, value)
        yield fake


@pytest.mark.parametrize(
    ("garbled", "field"),
    [
        ({"reading_time": 2**64}, "reading_time"),
        ({"created_at": "9999-12-31T23:59:59-1400"}, "created_at"),
        ({"updated_at": "9999-06-01T00:00:00+0000"}, "updated_at"),
    ],
)
def test_a_malformed_entry_is_reported_skipped_and_never_stored(
    wallabag: FakeWallabag,
    capsys: pytest.CaptureFixture[str],
    garbled: dict[str, object],
    field: str,
) -> None:
    good = wallabag.add_entry("https://w.example/good", "Good", tags=["old"])
    bad = wallabag.add_entry("https://w.example/bad", "Bad", tags=["old"])
    wallabag.garble(bad, **garbled)
    configure(wallabag, "rules:\n  - name: r\n    where: {tag: old}\n    actions: [archive]\n")
    code, out, err = rb(capsys, "run", "--now", NOW)
    assert code == 0, out + err
    assert f"Wallabag entry {bad}: field {field!r}" in err
    assert wallabag.entries[good]["is_archived"] == 1
    with Store.open(Path(".rulebot/rulebot.db")) as store:
        assert store.get(str(bad)) is None and store.get(str(good)) is not None
    for args in (("items",), ("sync",), ("sync", "--full")):
        code, out, err = rb(capsys, *args)
        assert code == 0 and "Traceback" not in err and "internal error" not in err, err


def configure(fake: FakeWallabag, rules: str = RULES, **settings: object) -> Path:
    extra = "".join(f", {k}: {v}" for k, v in settings.items())
    path = Path("rules.yaml")
    path.write_text(f"version: 1\nwallabag: {{base_url: '{fake.base_url}'{extra}}}\n{rules}")
    return path


def library(fake: FakeWallabag) -> dict[str, int]:
    old = T - 60 * DAY
    return {
        "junk": fake.add_entry("https://a.example/junk", "Junk", tags=["junk"], created_at=old),
        "stale": fake.add_entry(
            "https://a.example/stale", "Stale", tags=["read-later"], created_at=old
        ),
        "fresh": fake.add_entry(
            "https://a.example/fresh", "Fresh", tags=["read-later"], created_at=T - DAY
        ),
        "rust": fake.add_entry("https://a.example/rust", "Rust", tags=["rust"], created_at=old),
        "ancient": fake.add_entry(
            "https://a.example/ancient",
            "Ancient",
            archived=True,
            starred=True,
            created_at=T - 800 * DAY,
        ),
        "sorted": fake.add_entry(
            "https://a.example/sorted", "Sorted", tags=["to-sort", "keep"], archived=True
        ),
        "replace": fake.add_entry(
            "https://a.example/replace", "Replace", tags=["replace-me", "alpha"]
        ),
        "clear": fake.add_entry("https://a.example/clear", "Clear", tags=["clear-me", "x"]),
        "js": fake.add_entry("https://a.example/js", "JS", tags=["js", "web"]),
        "tmp": fake.add_entry("https://a.example/tmp", "Tmp", tags=["tmp", "keep"]),
    }


def mirror() -> dict[str, object]:
    with Store.open(Path(".rulebot/rulebot.db")) as store:
        return {item.item_id: item for item in store.items()}


def test_the_whole_flow_maps_every_action_and_a_second_run_is_idle(
    wallabag: FakeWallabag, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = library(wallabag)
    configure(wallabag)
    code, out, err = rb(capsys, "run", "--now", NOW, "--format", "json")
    assert code == 0, err
    assert json.loads(out)["summary"]["failed"] == 0
    entries = wallabag.entries
    assert ids["junk"] not in entries  # delete: a hard delete
    stale = entries[ids["stale"]]
    assert stale["is_archived"] == 1 and stale["archived_at"] is not None  # archive
    assert wallabag.labels(ids["stale"]) == ["auto-archived", "read-later"]  # lower-cased
    assert entries[ids["fresh"]]["is_archived"] == 0
    assert entries[ids["rust"]]["is_starred"] == 1  # favorite
    ancient = entries[ids["ancient"]]
    assert (ancient["is_starred"], ancient["is_archived"]) == (0, 0)  # unfavorite, readd
    assert ancient["starred_at"] is None and ancient["archived_at"] is None
    assert wallabag.labels(ids["sorted"]) == ["keep"]  # tags_remove
    assert wallabag.labels(ids["replace"]) == ["alpha", "beta"]  # tags_replace
    assert wallabag.labels(ids["clear"]) == []  # tags_clear: per-tag DELETEs
    assert wallabag.labels(ids["js"]) == ["javascript", "web"]  # tag_rename, per entry
    assert wallabag.labels(ids["tmp"]) == ["keep"] and wallabag.tag_id("tmp") is None
    added = next(e for e in wallabag.entries.values() if e["url"] == "https://docs.example/new")
    assert [t["label"] for t in added["tags"]] == ["docs"]  # add, with its tags, one POST
    assert wallabag.calls("POST /api/entries") == 1
    mirrored = mirror()
    assert set(mirrored) == {str(i) for i in wallabag.entries}
    # a second run: token + one `since` query, nothing else
    before = wallabag.calls()
    code, out, _ = rb(capsys, "run", "--now", NOW, "--detailed-exitcode")
    assert code == 0 and "Applied: 0 succeeded (2 requests)" in out
    assert wallabag.calls() - before == 2
    assert wallabag.calls("POST /oauth/v2/token") == 2


def test_labels_compare_as_wallabag_lower_cases_them_not_case_folded(
    wallabag: FakeWallabag, capsys: pytest.CaptureFixture[str]
) -> None:
    """Wallabag lower-cases labels (`Maße` is stored `maße`), it does not case
    fold them: `maße` and `masse` are two labels there, and for rulebot too,
    so the plan adds `Maße` (shown as the `maße` Wallabag stores) and the entry
    ends with both."""
    mass = wallabag.add_entry("https://m.example/1", "Mass", tags=["masse"])
    configure(
        wallabag, "rules:\n  - name: mark\n    where: {}\n    actions: [{tags_add: [Maße]}]\n"
    )
    code, out, err = rb(capsys, "plan", "--now", NOW, "--format", "json")
    assert code == 0, err
    assert [a["send"]["tags"] for a in json.loads(out)["actions"]] == ["maße"]  # as stored
    code, _, err = rb(capsys, "run", "--now", NOW)
    assert code == 0, err
    assert wallabag.labels(mass) == ["masse", "maße"]
    code, out, _ = rb(capsys, "plan", "--now", NOW, "--format", "json")
    assert json.loads(out)["actions"] == []  # `Maße` is `maße`: nothing more to add


def test_the_mapping_of_every_field(
    wallabag: FakeWallabag, capsys: pytest.CaptureFixture[str]
) -> None:
    entry = wallabag.add_entry(
        "https://www.example.com/a",
        "A",
        tags=["One", "two"],
        archived=True,
        starred=True,
        created_at=T - 10 * DAY,
        updated_at=T - DAY,
        archived_at=T - 2 * DAY,
        starred_at=T - 3 * DAY,
        language="de_AT",
        reading_time=7,
    )
    bare = wallabag.add_entry("https://b.example/", None, created_at=T)
    configure(wallabag, "rules: []\n")
    assert rb(capsys, "sync")[0] == 0
    items = mirror()
    item = items[str(entry)]
    assert item.status == 1 and item.favorite is True  # type: ignore[attr-defined]
    assert item.tags == ("one", "two")  # type: ignore[attr-defined]
    assert item.time_added == T - 10 * DAY and item.time_updated == T - DAY  # type: ignore[attr-defined]
    assert item.time_read == T - 2 * DAY and item.time_favorited == T - 3 * DAY  # type: ignore[attr-defined]
    assert item.time_to_read == 7 and item.lang == "de_AT"  # type: ignore[attr-defined]
    assert item.word_count is None and item.is_article is None  # type: ignore[attr-defined]
    other = items[str(bare)]
    assert other.status == 0 and other.favorite is False and other.tags == ()  # type: ignore[attr-defined]
    assert other.time_read is None and other.time_to_read is None and other.lang is None  # type: ignore[attr-defined]


def test_conditions_on_read_and_favorited_times_language_and_reading_time(
    wallabag: FakeWallabag, capsys: pytest.CaptureFixture[str]
) -> None:
    hit = wallabag.add_entry(
        "https://c.example/hit",
        "Hit",
        archived=True,
        archived_at=T - 40 * DAY,
        language="en",
        reading_time=30,
    )
    miss = wallabag.add_entry(
        "https://c.example/miss", "Miss", archived=True, archived_at=T - DAY, reading_time=30
    )
    configure(
        wallabag,
        "rules:\n  - name: old-reads\n    where: {read: {older_than: 30d}, lang: en,"
        " reading_time: {gt: 20}}\n    actions: [delete]\n",
    )
    code, out, err = rb(capsys, "validate")
    assert code == 0 and "never known" not in out + err
    assert rb(capsys, "run", "--now", NOW)[0] == 0
    assert hit not in wallabag.entries and miss in wallabag.entries


def test_validate_warns_about_what_wallabag_lacks(
    wallabag: FakeWallabag, capsys: pytest.CaptureFixture[str]
) -> None:
    configure(
        wallabag,
        "rules:\n  - name: long\n    where: {word_count: {gt: 5000}}\n    actions: [archive]\n",
    )
    code, out, _ = rb(capsys, "validate")
    assert code == 0 and "rule long: `word_count` is never known in Wallabag" in out


def test_a_rename_is_planned_as_the_per_entry_actions_that_run(
    wallabag: FakeWallabag, capsys: pytest.CaptureFixture[str]
) -> None:
    a = wallabag.add_entry("https://d.example/a", "A", tags=["js"])
    b = wallabag.add_entry("https://d.example/b", "B", tags=["js", "javascript"])
    configure(
        wallabag,
        "rules:\n  - name: rename\n    actions:\n"
        "      - tag_rename: {old_tag: js, new_tag: javascript}\n",
    )
    code, out, _ = rb(capsys, "plan", "--now", NOW)
    assert code == 0 and "tag_rename" not in out
    assert 'tags_add javascript "A"' in out and 'tags_remove js "A"' in out
    assert 'tags_remove js "B"' in out and 'tags_add javascript "B"' not in out
    assert rb(capsys, "run", "--now", NOW)[0] == 0
    assert wallabag.labels(a) == ["javascript"] == wallabag.labels(b)
    code, out, _ = rb(capsys, "plan", "--now", NOW)
    assert "no changes" in out


def test_apply_of_a_saved_plan_sends_per_entry_renames_on_entries_its_earlier_rules_changed(
    wallabag: FakeWallabag, capsys: pytest.CaptureFixture[str]
) -> None:
    a = wallabag.add_entry("https://d.example/a", "A", tags=["js"], created_at=T - DAY)
    configure(
        wallabag,
        "rules:\n  - name: seen\n    where: {tag: js}\n    actions: [{tags_add: [seen]}]\n"
        "  - name: rename\n    actions:\n"
        "      - tag_rename: {old_tag: js, new_tag: javascript}\n",
    )
    assert rb(capsys, "plan", "--now", NOW, "--out", "plan.json")[0] == 0
    wallabag.now = T + 60  # merged and applied a minute later
    code, out, err = rb(capsys, "apply", "plan.json", "--format", "json")
    assert code == 0, err
    summary = json.loads(out)["summary"]
    # rule `seen` changing A is the plan's own doing, not a change since the plan
    assert (summary["succeeded"], summary["skipped"]) == (3, 0), out
    assert sorted(wallabag.labels(a)) == ["javascript", "seen"]


def test_add_never_reposts_a_url_the_mirror_has(
    wallabag: FakeWallabag, capsys: pytest.CaptureFixture[str]
) -> None:
    wallabag.add_entry("https://docs.example/new", "Docs", archived=True, tags=["x"])
    configure(
        wallabag,
        "rules:\n  - name: add\n    actions:\n"
        '      - add: {url: "https://docs.example/new", tags: [docs]}\n',
    )
    assert rb(capsys, "run", "--now", NOW)[0] == 0
    assert wallabag.calls("POST /api/entries") == 0


# -- sync: since, overlap, full scans ----------------------------------------------------


def test_incremental_sync_uses_since_with_an_overlap_and_a_full_scan_finds_deletions(
    wallabag: FakeWallabag, capsys: pytest.CaptureFixture[str]
) -> None:
    a = wallabag.add_entry("https://e.example/a", "A", created_at=T - 5 * DAY)
    b = wallabag.add_entry("https://e.example/b", "B", created_at=T - 4 * DAY)
    configure(wallabag, "rules: []\n", full_scan_every="2d")
    code, out, _ = rb(capsys, "sync")
    assert code == 0 and "full" in out
    with Store.open(Path(".rulebot/rulebot.db")) as store:
        since = int(store.get_meta(SINCE_KEY) or 0)
    assert since == T - 3600  # the server's clock (Date) minus the overlap
    wallabag.now = T + 60
    wallabag.touch(a, title="A2")
    wallabag.remove_entry(b)  # hard delete: `since` never says
    code, out, _ = rb(capsys, "sync")
    assert code == 0 and "incremental" in out
    queries = [x for x in wallabag.exchanges if x.route == "GET /api/entries"]
    assert f"since={since}" in queries[-1].target
    assert mirror()[str(a)].given_title == "A2"  # type: ignore[attr-defined]
    assert str(b) in mirror()  # not yet known to be gone
    # the full scan is due after full_scan_every (its time is in the store)
    with Store.open(Path(".rulebot/rulebot.db")) as store:
        store.set_meta(FULL_SCAN_KEY, str(int(store.get_meta(FULL_SCAN_KEY) or 0) - 3 * DAY))
    code, out, _ = rb(capsys, "sync")
    assert code == 0 and "full" in out
    assert str(b) not in mirror()
    assert (
        "since=" not in [x for x in wallabag.exchanges if x.route == "GET /api/entries"][-1].target
    )


def test_sync_full_forces_a_full_scan(
    wallabag: FakeWallabag, capsys: pytest.CaptureFixture[str]
) -> None:
    b = wallabag.add_entry("https://e.example/b", "B")
    configure(wallabag, "rules: []\n")
    assert rb(capsys, "sync")[0] == 0
    wallabag.remove_entry(b)
    assert rb(capsys, "sync")[0] == 0 and str(b) in mirror()
    assert rb(capsys, "sync", "--full")[0] == 0 and str(b) not in mirror()


def test_one_answer_dated_2100_does_not_hide_a_star_from_the_next_run(
    wallabag: FakeWallabag, capsys: pytest.CaptureFixture[str]
) -> None:
    kept = wallabag.add_entry("https://e.example/k", "K", tags=["inbox"], created_at=T - 9 * DAY)
    configure(
        wallabag,
        "rules:\n  - name: purge\n    where: {tag: inbox, favorite: false}\n"
        "    actions: [delete]\n",
    )
    assert rb(capsys, "sync")[0] == 0
    wallabag.date_header = "Fri, 01 Jan 2100 00:00:00 GMT"  # one answer from a clock gone wrong
    code, _, err = rb(capsys, "sync")
    assert code == 0 and "2100-01-01T00:00:00Z" in err and "not believed" in err
    wallabag.date_header = None
    wallabag.now = T + 60
    wallabag.touch(kept, is_starred=True, starred_at=T + 60)  # the user keeps it
    code, _, err = rb(capsys, "run", "--now", NOW)
    assert code == 0, err
    assert kept in wallabag.entries and wallabag.calls("DELETE /api/entries/{id}") == 0


def test_sync_full_replaces_a_cursor_left_in_the_future(
    wallabag: FakeWallabag, capsys: pytest.CaptureFixture[str]
) -> None:
    a = wallabag.add_entry("https://e.example/a", "A", created_at=T - 5 * DAY)
    configure(wallabag, "rules: []\n")
    assert rb(capsys, "sync")[0] == 0
    with Store.open(Path(".rulebot/rulebot.db")) as store:  # as an older rulebot left it
        store.set_meta(SINCE_KEY, str(4_102_444_800 - 3600))
    code, out, _ = rb(capsys, "sync", "--full")  # the server's clock is right again
    assert code == 0 and "full" in out
    with Store.open(Path(".rulebot/rulebot.db")) as store:
        assert store.get_meta(SINCE_KEY) == str(T - 3600)  # replaced, not max(old, new)
    wallabag.now = T + 60
    wallabag.touch(a, title="A2")
    code, out, _ = rb(capsys, "sync")
    assert code == 0 and "incremental" in out
    assert mirror()[str(a)].given_title == "A2"  # type: ignore[attr-defined]
    # a cursor from the future is not used even without --full: the sync is a full one
    with Store.open(Path(".rulebot/rulebot.db")) as store:
        store.set_meta(SINCE_KEY, str(4_102_444_800 - 3600))
    wallabag.now = T + 120
    wallabag.touch(a, title="A3")
    code, out, err = rb(capsys, "sync")
    assert code == 0 and "full" in out and "syncing everything to repair it" in err
    assert mirror()[str(a)].given_title == "A3"  # type: ignore[attr-defined]


def test_an_idle_scheduled_run_on_1000_entries_makes_two_requests(
    wallabag: FakeWallabag, capsys: pytest.CaptureFixture[str]
) -> None:
    for n in range(1000):
        wallabag.add_entry(f"https://b.example/{n}", f"B {n}", created_at=T - DAY - n)
    configure(
        wallabag,
        "rules:\n  - name: a\n    schedule: '0 6 * * *'\n    where: {tag: nope}\n"
        "    actions: [archive]\n",
    )
    assert rb(capsys, "sync")[0] == 0  # the first sync is a full scan: token + 2 pages of 500
    assert wallabag.calls() == 3
    before = wallabag.calls()
    assert rb(capsys, "run", "--due", "--now", NOW)[0] == 0
    assert wallabag.calls() - before == 2  # token + one `since` query


# -- tokens and faults ------------------------------------------------------------------


def test_a_token_expiring_mid_run_is_renewed_once_and_the_run_finishes(
    wallabag: FakeWallabag, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = library(wallabag)
    configure(wallabag, concurrency=1)
    wallabag.inject("expire", route="PATCH /api/entries/{id}")
    code, out, err = rb(capsys, "run", "--now", NOW, "--format", "json")
    assert code == 0, err
    assert json.loads(out)["summary"]["failed"] == 0
    assert wallabag.entries[ids["stale"]]["is_archived"] == 1
    refreshes = [
        x
        for x in wallabag.exchanges
        if x.route == "POST /oauth/v2/token" and b"refresh" in x.raw_body
    ]
    assert len(refreshes) == 1 and wallabag.calls("POST /oauth/v2/token") == 2


def test_an_expired_refresh_token_falls_back_to_the_password(
    wallabag: FakeWallabag, capsys: pytest.CaptureFixture[str]
) -> None:
    library(wallabag)
    configure(wallabag, concurrency=1)
    wallabag.refresh_lifetime = -1  # refresh tokens are born expired
    wallabag.inject("expire", route="PATCH /api/entries/{id}")
    code, _, err = rb(capsys, "run", "--now", NOW)
    assert code == 0, err
    assert wallabag.calls("POST /oauth/v2/token") == 3  # password, refused refresh, password


def test_a_wrong_password_is_a_credentials_error_never_retried(
    wallabag: FakeWallabag, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    library(wallabag)
    configure(wallabag)
    monkeypatch.setenv("WALLABAG_PASSWORD", "SECRETwrong-password")
    code, out, err = rb(capsys, "run", "--now", NOW)
    assert code == 1 and "WALLABAG_PASSWORD" in err and "WALLABAG_USERNAME" in err
    assert "SECRETwrong-password" not in out + err
    assert wallabag.calls() == 1
    monkeypatch.setenv("WALLABAG_CLIENT_SECRET", "SECRETwrong-secret")
    code, _, err = rb(capsys, "plan", "--now", NOW)
    assert code == 1 and "WALLABAG_CLIENT_SECRET" in err and wallabag.calls() == 2
    monkeypatch.delenv("WALLABAG_CLIENT_ID")
    code, _, err = rb(capsys, "plan", "--now", NOW)
    assert code == 1 and "WALLABAG_CLIENT_ID" in err and wallabag.calls() == 2


def test_a_401_with_a_fresh_token_stops_the_run_without_looping(
    wallabag: FakeWallabag, capsys: pytest.CaptureFixture[str]
) -> None:
    library(wallabag)
    configure(wallabag, concurrency=1)
    wallabag.inject("status", status=401, route="PATCH /api/entries/{id}", count=50)
    code, _out, err = rb(capsys, "run", "--now", NOW)
    assert code == 1 and "WALLABAG_CLIENT_ID" in err
    # each unit: the call, one renewal, one retry; the unit already queued
    # when the first failed is the only other one sent
    patches, tokens = (
        wallabag.calls("PATCH /api/entries/{id}"),
        wallabag.calls("POST /oauth/v2/token"),
    )
    assert patches <= 4 and patches == 2 * (tokens - 1)


def test_503_while_listing_is_retried(
    wallabag: FakeWallabag, capsys: pytest.CaptureFixture[str]
) -> None:
    library(wallabag)
    configure(wallabag)
    wallabag.inject("status", status=503, route="GET /api/entries")
    code, _, err = rb(capsys, "run", "--now", NOW)
    assert code == 0, err
    assert wallabag.calls("GET /api/entries") == 2


def test_a_dropped_connection_mid_apply_then_a_rerun_converges(
    wallabag: FakeWallabag, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = library(wallabag)
    configure(wallabag, concurrency=1)
    wallabag.inject("drop_after", route="POST /api/entries")  # retried: a re-post merges
    wallabag.inject("drop", route="PATCH /api/entries/{id}")
    wallabag.inject("status", status=400, route="PATCH /api/entries/{id}", nth=2, body="busy")
    code, out, _ = rb(capsys, "run", "--now", NOW)
    assert code == 1 and "busy" in out
    wallabag.clear_faults()
    code, _, err = rb(capsys, "run", "--now", NOW)
    assert code == 0, err
    docs = [e for e in wallabag.entries.values() if e["url"] == "https://docs.example/new"]
    assert len(docs) == 1
    assert wallabag.entries[ids["stale"]]["is_archived"] == 1
    assert wallabag.entries[ids["rust"]]["is_starred"] == 1
    assert "no changes" in rb(capsys, "plan", "--now", NOW)[1]


# -- secrets ------------------------------------------------------------------------------


def test_credentials_and_tokens_never_leave_the_process(
    wallabag: FakeWallabag, tmp_path: Path
) -> None:
    library(wallabag)
    configure(wallabag)
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
        **wallabag.env,
    }
    outputs = []

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-m", "rulebot", "-v", "-v", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        outputs.append(done.stdout + done.stderr)
        return done

    for args in (
        ["validate"],
        ["sync"],
        ["plan", "--out", "plan.json", "--now", NOW],
        ["apply", "plan.json", "--format", "json"],
        ["run", "--now", NOW, "--format", "markdown"],
        ["sync", "--full"],
        ["schedule"],
    ):
        cli(*args)
    # a server echoing every secret and the tokens in its errors
    echoed = " ".join([*CREDENTIALS.values(), "{token}"])
    wallabag.inject("status", status=400, route="GET /api/entries", body=f"bad {echoed} !")
    assert cli("sync").returncode == 1
    wallabag.inject("expire", route="GET /api/entries")
    wallabag.inject("status", status=500, route="POST /oauth/v2/token", count=20)
    assert cli("sync").returncode == 1
    secrets = [*CREDENTIALS.values(), *wallabag.issued]
    assert len(wallabag.issued) >= 10
    for text in outputs:
        for secret in secrets:
            assert secret not in text
    for path in Path().rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for secret in secrets:
                assert secret.encode() not in data, path
    for exchange in wallabag.exchanges:
        for secret in secrets:
            assert secret not in exchange.target  # never in a URL


def test_tagging_many_entries_goes_through_the_bulk_endpoint_ten_at_a_time(
    wallabag: FakeWallabag, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = [wallabag.add_entry(f"https://g.example/{n}", f"G{n}", tags=["Inbox"]) for n in range(25)]
    configure(
        wallabag,
        "rules:\n  - name: tag\n    where: {tag: inbox}\n    actions: [{tags_add: [Todo]}]\n",
    )
    assert rb(capsys, "sync")[0] == 0
    wallabag.remove_entry(ids[3])  # gone behind rulebot's back: the bulk answer says so
    code, out, _ = rb(capsys, "plan", "--now", NOW)
    assert code == 0 and out.count("tags_add todo") == 25  # per entry, as Wallabag stores it
    code, out, err = rb(capsys, "run", "--now", NOW, "--format", "json")
    assert code == 0, err
    assert json.loads(out)["summary"] == {**json.loads(out)["summary"], "failed": 0}
    assert wallabag.calls("POST /api/entries/tags/lists") == 3  # 10 + 10 + 5
    assert wallabag.calls("POST /api/entries/{id}/tags") == 0
    for entry_id in ids[:3] + ids[4:]:
        assert wallabag.labels(entry_id) == ["inbox", "todo"]
    assert str(ids[3]) not in mirror()  # moot: out of the mirror
    assert mirror()[str(ids[0])].tags == ("inbox", "todo")  # type: ignore[attr-defined]
    assert "no changes" in rb(capsys, "plan", "--now", NOW)[1]


def test_one_tagging_unit_or_mixed_units_go_one_by_one(
    wallabag: FakeWallabag, capsys: pytest.CaptureFixture[str]
) -> None:
    a = wallabag.add_entry("https://h.example/a", "A", tags=["inbox"])
    configure(
        wallabag,
        "rules:\n  - name: tag\n    where: {tag: inbox}\n    actions: [{tags_add: [todo]}]\n",
    )
    assert rb(capsys, "run", "--now", NOW)[0] == 0
    assert wallabag.calls("POST /api/entries/tags/lists") == 0
    assert wallabag.calls("POST /api/entries/{id}/tags") == 1
    assert wallabag.labels(a) == ["inbox", "todo"]


# -- listings the library moves under -------------------------------------------------------


def _after_first_page(monkeypatch: pytest.MonkeyPatch, change: Callable[[], None]) -> None:
    """Make ``change`` happen on the server right after it answers the first
    page of the next listing (another client at work while rulebot pages on)."""
    listing = FakeWallabag._list
    served: list[int] = []

    def patched(self: FakeWallabag, **kwargs: Any) -> Any:
        answer = listing(self, **kwargs)
        served.append(answer["page"])
        if len(served) == 1:
            change()
        return answer

    monkeypatch.setattr(FakeWallabag, "_list", patched)


def test_an_entry_deleted_during_a_full_scan_hides_no_other_entry(
    wallabag: FakeWallabag, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = [wallabag.add_entry(f"https://s.example/{n}", f"S{n}") for n in range(5)]
    configure(wallabag, "rules: []\n", page_size=2)
    # offset paging: deleting an entry of page 1 shifts entry 2 onto page 1, unread
    _after_first_page(monkeypatch, lambda: wallabag.remove_entry(ids[0]))
    assert rb(capsys, "sync")[0] == 0
    assert sorted(mirror(), key=int) == [str(i) for i in ids[1:]]


def test_an_entry_changed_during_an_incremental_listing_hides_no_other_change(
    wallabag: FakeWallabag, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = [wallabag.add_entry(f"https://u.example/{n}", f"U{n}") for n in range(5)]
    configure(wallabag, "rules: []\n", page_size=2)
    assert rb(capsys, "sync")[0] == 0
    for n, entry_id in enumerate(ids):  # five changes, oldest first: three pages of `since`
        wallabag.now = T + 60 + n
        wallabag.touch(entry_id, title=f"U{n} changed")
    wallabag.now = T + 120

    def change_again() -> None:  # moves U0 to the end: page 2 starts one entry later
        wallabag.touch(ids[0], title="U0 changed twice")

    _after_first_page(monkeypatch, change_again)
    code, out, _ = rb(capsys, "sync")
    assert code == 0 and "incremental" in out
    titles = {item_id: item.given_title for item_id, item in mirror().items()}  # type: ignore[attr-defined]
    assert titles == {
        str(ids[0]): "U0 changed twice",
        **{str(i): f"U{n} changed" for n, i in enumerate(ids) if n},
    }


def test_an_unreadable_entry_does_not_make_every_full_scan_list_twice(
    wallabag: FakeWallabag, capsys: pytest.CaptureFixture[str]
) -> None:
    for n in range(3):
        wallabag.add_entry(f"https://v.example/{n}", f"V{n}")
    broken = wallabag.add_entry("https://v.example/broken", "Broken")
    wallabag.touch(broken, reading_time="soon")  # rendered as is: not minutes
    configure(wallabag, "rules: []\n")
    assert rb(capsys, "sync", "--full")[0] == 0
    assert wallabag.calls("GET /api/entries") == 1
    assert len(mirror()) == 3


def test_the_dry_run_shows_tags_as_wallabag_will_store_them(
    wallabag: FakeWallabag, capsys: pytest.CaptureFixture[str]
) -> None:
    """The plan showed `tags_add Video` where Wallabag stores `video` (#26):
    the dry run now shows what the service will hold, and says why."""
    entry = wallabag.add_entry("https://v.example/1", "A video", tags=["inbox"])
    configure(
        wallabag,
        rules="rules:\n  - name: tag-videos\n    where: {tag: inbox}\n"
        "    actions: [{tags_add: [' Video ', Inbox-Done]}]\n",
    )
    code, out, err = rb(capsys, "plan", "--format", "json")
    assert code == 0, err
    [action] = json.loads(out)["actions"]
    assert action["send"]["tags"] == "video,inbox-done"
    assert "Wallabag stores the tag 'Video' as 'video'" in action["reasons"]
    code, _, err = rb(capsys, "run")
    assert code == 0, err
    assert sorted(wallabag.labels(entry)) == ["inbox", "inbox-done", "video"]  # as shown
    code, out, _ = rb(capsys, "plan")
    assert code == 0 and "no changes" in out  # and nothing left to do
