"""`rulebot runs` and `rulebot undo` end to end: the real CLI, a real store
file, on the local library and on the fake Karakeep over 127.0.0.1."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from rulebot.fake.karakeep import FakeKarakeep
from rulebot.item import ARCHIVED, Item
from rulebot.store import Store

from .helpers import clear_rulebot_env, rb
from .test_karakeep_source import KEY, T, configure, library, tags_of

NOW = "2026-11-26T06:00:00Z"
LATER = "2026-11-27T06:00:00Z"
DAY = 86400
STORE = Path(".rulebot/rulebot.db")

LOCAL_RULES = """\
version: 1
limits: {max_actions: 100, max_deletes: 5}
rules:
  - name: purge
    where: {tag: junk}
    actions: [delete]
  - name: archive-stale
    where: {tag: read-later, status: unread}
    actions: [archive, {tags_add: [auto-archived]}]
  - name: fav-rust
    where: {tag: rust}
    actions: [favorite]
  - name: unfav
    where: {tag: unfav}
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


def local_items() -> list[Item]:
    def it(n: int, tags: tuple[str, ...], **kw: object) -> Item:
        return Item(
            item_id=str(n),
            given_url=f"https://a.example/{n}",
            given_title=f"Item {n}",
            tags=tags,
            time_added=T - (100 - n) * DAY,
            time_updated=T - (100 - n) * DAY,
            **kw,  # type: ignore[arg-type]
        )

    return [
        it(1, ("junk", "keep"), status=ARCHIVED, favorite=True),
        it(2, ("Read-Later",)),
        it(3, ("rust",)),
        it(4, ("unfav",), status=ARCHIVED, favorite=True),
        it(5, ("replace-me", "Alpha")),
        it(6, ("clear-me", "x")),
        it(7, ("js", "web")),
        it(8, ("tmp", "keep")),
        it(9, ("plain",)),
    ]


@pytest.fixture
def local(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    clear_rulebot_env(monkeypatch)
    Path("rules.yaml").write_text(LOCAL_RULES)
    with Store.open(STORE) as store:
        store.upsert(local_items())
    return tmp_path


def snapshot() -> dict[str, tuple[object, ...]]:
    with Store.open(STORE) as store:
        return {
            i.item_id: (
                i.url,
                i.given_title,
                i.status,
                i.favorite,
                sorted(i.tags or ()),
                i.time_added,
            )
            for i in store.items()
        }


def runs(capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    code, out, err = rb(capsys, "runs", "--format", "json")
    assert code == 0, err
    return json.loads(out)  # type: ignore[no-any-return]


def test_undo_restores_every_action_of_a_local_run_exactly(
    local: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    original = snapshot()
    code, _, err = rb(capsys, "run", "--now", NOW)
    assert code == 0, err
    changed = snapshot()
    assert "1" not in changed and changed["2"][2] == ARCHIVED  # the run did something
    code, out, err = rb(capsys, "undo", "--dry-run", "--now", LATER)
    assert code == 0, err
    assert "undo-1" in out and "item 1 comes back" in out
    assert snapshot() == changed  # a dry run changes nothing
    code, out, err = rb(capsys, "undo", "--now", LATER)
    assert code == 0, err
    restored = snapshot()
    assert "https://docs.example/new" not in {v[0] for v in restored.values()}  # add undone
    assert restored == original  # same rows, ids, tags, status, favourite, time_added
    listed = runs(capsys)
    assert [(r["run_id"], r["command"]) for r in listed] == [(2, "undo"), (1, "run")]
    assert listed[0]["source"] == {"kind": "local"}
    # the delete comes back as add + archive + favorite (the same row, as it was)
    assert (listed[1]["succeeded"], listed[0]["succeeded"]) == (11, 13)
    # the run is planned again in full, as before it ever ran
    code, out, _ = rb(capsys, "plan", "--now", LATER, "--format", "json")
    assert json.loads(out)["summary"]["actions"] == 11


def test_undoing_an_undo_redoes_the_run(local: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert rb(capsys, "run", "--now", NOW)[0] == 0
    after_run = {k: v[1:5] for k, v in snapshot().items()}
    assert rb(capsys, "undo", "--now", LATER)[0] == 0
    code, _, err = rb(capsys, "undo", "2", "--now", LATER)
    assert code == 0, err
    assert {k: v[1:5] for k, v in snapshot().items()} == after_run


def test_an_item_changed_since_the_run_is_skipped_as_stale(
    local: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert rb(capsys, "run", "--now", NOW)[0] == 0
    with Store.open(STORE) as store:  # the user re-adds item 2 and re-tags item 5 by hand
        two, five = store.get("2"), store.get("5")
        assert two is not None and five is not None
        store.upsert([two.replace(status=0), five.replace(tags=("mine",))])
    code, _, err = rb(capsys, "undo", "--now", LATER, "--format", "json")
    assert code == 0, err
    assert "stale, not undone: run 1 action" in err and "status changed since" in err
    assert "tags changed since" in err
    assert snapshot()["5"][4] == ["mine"]  # left as the user made it
    assert snapshot()["2"][4] == ["Read-Later"]  # its tags_add was still undone


def test_limits_hold_for_undo_and_nothing_is_sent(
    local: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert rb(capsys, "run", "--now", NOW)[0] == 0
    before = snapshot()
    code, _, err = rb(capsys, "undo", "--max-actions", "3", "--now", LATER)
    assert code == 3 and "max_actions" in err
    assert snapshot() == before
    assert len(runs(capsys)) == 1


def test_undo_errors_are_clear(local: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = rb(capsys, "undo")
    assert code == 1 and "nothing to undo" in err and "Traceback" not in err
    code, _, err = rb(capsys, "undo", "42")
    assert code == 1 and "no run 42" in err
    assert rb(capsys, "run", "--now", NOW)[0] == 0
    assert rb(capsys, "run", "--now", NOW)[0] == 0  # nothing left to do: run 2 is empty
    code, _, err = rb(capsys, "undo", "2")
    assert code == 1 and "confirmed no action" in err
    # the default is the latest run that changed something: run 1
    code, out, _ = rb(capsys, "undo", "--dry-run", "--now", LATER)
    assert code == 0 and "undo-1" in out


def test_a_run_journaled_before_the_migration_cannot_be_undone(
    local: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert rb(capsys, "run", "--now", NOW)[0] == 0
    with sqlite3.connect(STORE) as conn:  # what an older rulebot left: no before-state
        conn.execute("UPDATE run_actions SET before = NULL")
        conn.execute("UPDATE runs SET command = NULL, source = NULL")
    code, _, err = rb(capsys, "undo", "1")
    assert code == 1 and "cannot be undone" in err and "older rulebot" in err
    listed = runs(capsys)
    assert listed[0]["command"] == "unknown" and listed[0]["source"] == "unknown"
    code, out, _ = rb(capsys, "runs")
    assert code == 0 and "unknown" in out and "RUN" in out


def test_runs_text_and_limit(local: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = rb(capsys, "runs")
    assert code == 0 and "no runs" in out
    for _ in range(3):
        assert rb(capsys, "run", "--now", NOW)[0] == 0
    code, out, _ = rb(capsys, "runs", "--limit", "2", "--format", "json")
    assert [r["run_id"] for r in json.loads(out)] == [3, 2]
    code, _, err = rb(capsys, "runs", "--limit", "0")
    assert code == 1 and "--limit" in err


def test_the_store_migration_keeps_old_runs(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with Store.open(path) as store:
        store.journal_begin("apply-local", [{"rule": "r", "send": {"action": "archive"}}])
    with sqlite3.connect(path) as conn:  # back to schema 2: drop what migration 3 added
        conn.execute("ALTER TABLE runs DROP COLUMN command")
        conn.execute("ALTER TABLE runs DROP COLUMN source")
        conn.execute("ALTER TABLE run_actions DROP COLUMN before")
        conn.execute("PRAGMA user_version = 2")
    with Store.open(path) as store:
        assert store.schema_version() == 3
        [run] = store.journal_runs()
        assert (run.command, run.source) == ("unknown", None)
        assert store.journal_entries(run.run_id)[0].before is None


# -- on a server: the fake Karakeep ------------------------------------------------------


@pytest.fixture
def karakeep(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeKarakeep]:
    monkeypatch.chdir(tmp_path)
    clear_rulebot_env(monkeypatch)
    monkeypatch.setenv("KARAKEEP_API_KEY", KEY)
    with FakeKarakeep(now=T, api_key=KEY) as fake:
        yield fake


def server_view(fake: FakeKarakeep) -> dict[str, tuple[object, ...]]:
    return {
        b["content"]["url"]: (
            b["archived"],
            b["favourited"],
            sorted(t.casefold() for t in tags_of(fake, b["id"])),
        )
        for b in fake.state.bookmarks.values()
    }


def test_undo_on_karakeep_reverses_every_action_and_a_deleted_item_comes_back_new(
    karakeep: FakeKarakeep, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = library(karakeep)
    original = server_view(karakeep)
    configure(karakeep)
    code, _, err = rb(capsys, "run", "--now", NOW)
    assert code == 0, err
    assert server_view(karakeep) != original
    [run] = runs(capsys)
    assert run["command"] == "run" and run["failed"] == 0
    assert run["source"] == {"kind": "karakeep", "base_url": karakeep.base_url}
    karakeep.now = T + DAY
    code, out, err = rb(capsys, "undo", "--dry-run", "--now", LATER)
    assert code == 0, err
    assert "saved again as a new item" in out
    code, out, err = rb(capsys, "undo", "--now", LATER)
    assert code == 0, err
    assert server_view(karakeep) == original
    junk = karakeep.state.by_url("https://a.example/junk")
    assert junk is not None and junk["id"] != ids["junk"]  # a new id on a server
    assert karakeep.tag_id("js") is not None  # the rename went back
    assert [r["command"] for r in runs(capsys)] == ["undo", "run"]
