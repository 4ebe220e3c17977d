"""`rulebot runs` and `rulebot undo` end to end: the real CLI, a real store
file, on the local library and on the fake Karakeep over 127.0.0.1."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from rulebot.fake.karakeep import FakeKarakeep
from rulebot.fakepocket import FakePocket
from rulebot.library.item import ARCHIVED, Item
from rulebot.library.store import Store

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
    return json.loads(out)


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
    # the delete comes back as add + archive + favorite (the same row, as it was), and
    # the tags_replace as tags_remove + tags_add (`alpha` respelled `Alpha`, as it was)
    assert (listed[1]["succeeded"], listed[0]["succeeded"]) == (11, 14)
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


def test_numbers_beyond_the_store_are_usage_errors_not_internal_ones(
    local: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    huge = "99999999999999999999999999"
    for args in (
        ("undo", huge),
        ("undo", "--max-deletes", huge),
        ("runs", "--limit", huge),
        ("items", "--limit", huge),
        ("run", "--max-actions", "9" * 5000),
    ):
        code, _, err = rb(capsys, *args)
        assert code == 1 and "too large; at most 9223372036854775807" in err, (args, err)
        assert "internal error" not in err and "Traceback" not in err and len(err) < 600
    code, _, err = rb(capsys, "runs", "--limit", "12x")
    assert code == 1 and "'12x' is not a whole number" in err
    code, _, err = rb(capsys, "undo", "9223372036854775807")  # the largest is a run id
    assert code == 1 and "no run 9223372036854775807" in err


# every way another program may leave a journal row: not JSON, JSON of the
# wrong type at the top, an item that is no object, a field of the wrong type
DAMAGE = {
    "1": "before = 'not json'",
    "2": "action = '[]', before = '[1]'",
    "3": "send = '5'",
    "4": "before = '{\"item\": 5}'",
    "5": """before = json_set(before, '$.item.tags', 5)""",
    "6": """before = json_set(before, '$.item.time_added', 'x')""",
}


def test_a_damaged_journal_row_is_reported_per_action_and_the_rest_is_undone(
    local: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    original = snapshot()
    assert rb(capsys, "run", "--now", NOW)[0] == 0
    with sqlite3.connect(STORE) as conn:
        rows = conn.execute(
            "SELECT idx, json_extract(send, '$.item_id') FROM run_actions WHERE run_id = 1"
        ).fetchall()
        for index, item_id in rows:
            if item_id in DAMAGE:
                conn.execute(f"UPDATE run_actions SET {DAMAGE[item_id]} WHERE idx = ?", (index,))
    damaged = [index for index, item_id in rows if item_id in DAMAGE]
    code, out, err = rb(capsys, "undo", "--now", LATER, "--format", "json")
    assert code == 0, err
    assert "internal error" not in err and "Traceback" not in err
    notes = [line for line in err.splitlines() if "cannot be reversed" in line]
    assert len(notes) == len(damaged), err
    assert "the journal's record of it is damaged (its before is not JSON)" in err
    assert "(its action is a list, not an object; its before is a list, not an object)" in err
    assert "(its send is a number, not an object)" in err
    assert "the journal holds a number where an item belongs" in err
    assert "field 'tags' is a number" in err and "field 'time_added' is text" in err
    assert json.loads(out)["summary"]["failed"] == 0
    after = snapshot()
    for item_id in ("7", "8", "9"):  # the undamaged rows were undone
        assert after[item_id] == original[item_id]
    assert "https://docs.example/new" not in {v[0] for v in after.values()}


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


def test_runs_show_says_what_one_run_did(local: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`runs` could not show what one run did (#26): `runs show N` lists each
    action with its outcome and why it failed or was skipped."""
    assert rb(capsys, "run", "--now", NOW)[0] == 0
    with sqlite3.connect(STORE) as conn:  # one failure and one skip, as an applier records them
        conn.execute(
            "UPDATE run_actions SET state = 'failed', error = 'the server said no' WHERE idx = 0"
        )
        conn.execute(
            "UPDATE run_actions SET state = 'skipped', error = 'already done' WHERE idx = 1"
        )
        count = conn.execute("SELECT count(*) FROM run_actions WHERE run_id = 1").fetchone()[0]
    code, out, err = rb(capsys, "runs", "show", "1")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("run 1: run on local, started ")
    assert f"{count - 2} succeeded, 1 failed, 1 skipped" in lines[1]
    assert len(lines) == 2 + count
    assert "failed" in lines[2] and lines[2].endswith(": the server said no")
    assert "skipped" in lines[3] and lines[3].endswith(": already done")
    assert 'archive "Item 2"' in out  # each action as the plan reads it
    code, out, _ = rb(capsys, "runs", "show", "1", "--format", "json")
    shown = json.loads(out)
    assert shown["run_id"] == 1 and len(shown["actions"]) == count
    assert shown["actions"][0]["state"] == "failed"
    assert shown["actions"][0]["error"] == "the server said no"
    assert {a["state"] for a in shown["actions"][2:]} == {"succeeded"}
    code, _, err = rb(capsys, "runs", "show", "7")
    assert code == 1 and "no run 7" in err
    code, _, err = rb(capsys, "runs", "show")
    assert code == 1 and "needs a run id" in err


def test_a_run_where_nothing_succeeded_is_failed_not_partial(
    local: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert rb(capsys, "run", "--now", NOW)[0] == 0
    with sqlite3.connect(STORE) as conn:
        conn.execute("UPDATE run_actions SET state = 'failed' WHERE run_id = 1")
        conn.execute("UPDATE runs SET status = 'partial' WHERE run_id = 1")
    assert runs(capsys)[0]["status"] == "failed"
    _, out, _ = rb(capsys, "runs")
    header, row = out.splitlines()[:2]
    assert header.split()[-1] == "SOURCE" and row.split()[3] == "failed"


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
    # what a server cannot give back is said, per item
    assert "not restored exactly" in err and "it gets a new id" in err
    assert server_view(karakeep) == original
    junk = karakeep.state.by_url("https://a.example/junk")
    assert junk is not None and junk["id"] != ids["junk"]  # a new id on a server
    assert karakeep.tag_id("js") is not None  # the rename went back
    assert [r["command"] for r in runs(capsys)] == ["undo", "run"]


def test_undo_of_a_tagged_then_deleted_bookmark_brings_it_back_with_its_tags_from_before_the_run(
    karakeep: FakeKarakeep, capsys: pytest.CaptureFixture[str]
) -> None:
    """Found by the conformance model's long runs on every server source: one
    rule tags an item, a later rule deletes it. On a server the item comes
    back under a new id, so the tag's own reversal had nothing to act on and
    the item came back with the run's tag. The re-added item now carries the
    tags from before the run's first action on it."""
    karakeep.add_bookmark("https://a.example/old", "Old", tags=["old"])
    karakeep.add_tag("doomed")  # the user's tag: the undo keeps it (it did not create it)
    configure(
        karakeep,
        "rules:\n  - name: mark\n    where: {tag: old}\n    actions: [archive, {tags_add: [doomed]}]\n"
        "  - name: purge\n    where: {tag: doomed}\n    actions: [delete]\n",
    )
    original = server_view(karakeep)
    assert rb(capsys, "run", "--now", NOW)[0] == 0
    assert server_view(karakeep) == {}
    karakeep.now = T + DAY
    code, out, err = rb(capsys, "undo", "--now", LATER)
    assert code == 0, out + err
    assert server_view(karakeep) == original, server_view(
        karakeep
    )  # ["old"], not ["doomed", "old"]
    assert "the item is gone" not in out + err, out + err  # the re-add carries it
    # it was unread before the run: coming back unread is exact, and not said otherwise
    assert "saved again as a new item: it gets a new id" in err
    assert "comes back unread" not in out + err


# -- undo is exact: every field an action wrote comes back as it was ----------------------


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    clear_rulebot_env(monkeypatch)
    return tmp_path


def local_library(rules: str, items: list[Item]) -> None:
    Path("rules.yaml").write_text(f"version: 1\nlimits: {{max_deletes: 10}}\nrules:\n{rules}")
    with Store.open(STORE) as store:
        store.upsert(items)


def stored() -> dict[str, Item]:
    with Store.open(STORE) as store:
        return {item.item_id: item for item in store.items()}


def as_it_was(item: Item) -> tuple[Item, dict[str, object]]:
    """Every field but ``time_updated`` (an undo is a change, stamped as one)."""
    return item.replace(time_updated=None), dict(item.extra)


def test_a_deleted_item_comes_back_whole_its_unknown_favourite_unknown_and_its_read_time(
    here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    imported = Item(  # archived, favourite unknown (a Pocket export has no such column)
        item_id="1",
        given_url="https://a.example/1",
        resolved_url="https://a.example/one",
        given_title="Item 1",
        resolved_title="The first item",
        status=ARCHIVED,
        favorite=None,
        tags=("junk", "Keep"),
        time_added=T - 90 * DAY,
        time_updated=T - 80 * DAY,
        time_read=T - 80 * DAY,
        word_count=1234,
        lang="en",
        is_article=True,
        excerpt="An excerpt",
        extra={"authors": {"7": {"name": "A. Writer"}}},
    )
    local_library("  - name: purge\n    where: {tag: junk}\n    actions: [delete]\n", [imported])
    assert rb(capsys, "run", "--now", NOW)[0] == 0
    assert stored() == {}
    code, out, err = rb(capsys, "undo", "--now", LATER)
    assert code == 0, err
    assert as_it_was(stored()["1"]) == as_it_was(imported)
    # unknown stays unknown: a `favorite: false` rule does not take it for one
    code, out, _ = rb(capsys, "items", "--where", "{favorite: false}")
    assert code == 0 and out.strip() == "0 items"


def test_an_undone_archive_or_readd_puts_the_read_time_back(
    here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    unread = Item(
        item_id="2",
        given_url="https://a.example/2",
        tags=("to-archive",),
        time_added=T - 9 * DAY,
        time_updated=T - 9 * DAY,
    )
    read = Item(
        item_id="3",
        given_url="https://a.example/3",
        status=ARCHIVED,
        tags=("to-readd",),
        time_added=T - 9 * DAY,
        time_updated=T - 5 * DAY,
        time_read=T - 5 * DAY,
    )
    local_library(
        "  - name: a\n    where: {tag: to-archive}\n    actions: [archive]\n"
        "  - name: r\n    where: {tag: to-readd}\n    actions: [readd]\n",
        [unread, read],
    )
    assert rb(capsys, "run", "--now", NOW)[0] == 0
    assert stored()["2"].time_read == T  # the archive stamped it
    code, _, err = rb(capsys, "undo", "--now", LATER)
    assert code == 0, err
    back = stored()
    assert as_it_was(back["2"]) == as_it_was(unread)  # never read again
    assert as_it_was(back["3"]) == as_it_was(read)  # read 5 days ago, not at the undo


def test_an_undone_favourite_or_unfavourite_puts_the_favourite_and_its_time_back(
    here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    unknown = Item(  # imported: whether it is a favourite is unknown
        item_id="4",
        given_url="https://a.example/4",
        favorite=None,
        tags=("fav",),
        time_added=T - 9 * DAY,
        time_updated=T - 9 * DAY,
    )
    starred = Item(
        item_id="5",
        given_url="https://a.example/5",
        favorite=True,
        tags=("unfav",),
        time_added=T - 9 * DAY,
        time_updated=T - 3 * DAY,
        time_favorited=T - 3 * DAY,
    )
    local_library(
        "  - name: f\n    where: {tag: fav}\n    actions: [favorite]\n"
        "  - name: u\n    where: {tag: unfav}\n    actions: [unfavorite]\n",
        [unknown, starred],
    )
    assert rb(capsys, "run", "--now", NOW)[0] == 0
    code, _, err = rb(capsys, "undo", "--now", LATER)
    assert code == 0, err
    back = stored()
    assert back["4"].favorite is None and as_it_was(back["4"]) == as_it_was(unknown)
    assert as_it_was(back["5"]) == as_it_was(starred)  # favourited 3 days ago


def test_undoing_a_rename_gives_each_tag_its_original_spelling_and_place(
    here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def it(n: int, tags: tuple[str, ...]) -> Item:
        return Item(
            item_id=str(n),
            given_url=f"https://a.example/{n}",
            tags=tags,
            time_added=T - n * DAY,
            time_updated=T - n * DAY,
        )

    one = [it(6, ("Python", "web")), it(7, ("Python",))]
    local_library("  - name: r\n    actions: [{tag_rename: {old_tag: python, new_tag: py}}]\n", one)
    assert rb(capsys, "run", "--now", NOW)[0] == 0
    assert {i.item_id: i.tags for i in stored().values()} == {"6": ("py", "web"), "7": ("py",)}
    code, _, err = rb(capsys, "undo", "--now", LATER)
    assert code == 0, err
    assert {i.item_id: i.tags for i in stored().values()} == {
        "6": ("Python", "web"),
        "7": ("Python",),
    }
    # two spellings before the run (one rename merged them): each item gets its own back
    with Store.open(STORE) as store:
        store.upsert([it(8, ("python", "x"))])
    assert rb(capsys, "run", "--now", NOW)[0] == 0
    code, _, err = rb(capsys, "undo", "--now", LATER)
    assert code == 0, err
    assert {i.item_id: i.tags for i in stored().values()} == {
        "6": ("Python", "web"),
        "7": ("Python",),
        "8": ("python", "x"),
    }


ADD_RULE = (
    '  - name: add-docs\n    actions: [{add: {url: "https://docs.example/new", tags: [docs]}}]\n'
)


def test_undo_of_an_add_spares_the_item_once_the_user_changed_it(
    here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    local_library(ADD_RULE, [])
    assert rb(capsys, "run", "--now", NOW)[0] == 0
    [added] = stored().values()
    with Store.open(STORE) as store:  # the user favourites and tags it
        store.upsert([added.replace(favorite=True, tags=("docs", "mine"))])
    code, _, err = rb(capsys, "undo", "--now", LATER)
    assert code == 0, err
    assert "stale, not undone" in err and "changed since (favourite, tags)" in err
    assert set(stored()) == {added.item_id}  # still there


def test_undo_of_an_add_deletes_only_the_item_the_run_created(
    here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    local_library(ADD_RULE, [])
    assert rb(capsys, "run", "--now", NOW)[0] == 0
    [added] = stored().values()
    other = Item(  # saved since, from elsewhere: it resolves to the same URL
        item_id="99",
        given_url="https://docs.example/new?ref=feed",
        resolved_url="https://docs.example/new",
        tags=(),
        time_added=T + 60,
        time_updated=T + 60,
    )
    with Store.open(STORE) as store:
        store.upsert([other])
    code, out, err = rb(capsys, "undo", "--dry-run", "--now", LATER, "--format", "json")
    assert code == 0, err
    assert [a["send"]["item_id"] for a in json.loads(out)["actions"]] == [added.item_id]
    assert rb(capsys, "undo", "--now", LATER)[0] == 0
    assert set(stored()) == {"99"}


def test_a_local_undo_saved_as_a_plan_file_is_valid_and_applies_as_undo_does(
    here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from jsonschema import Draft202012Validator

    schema = json.loads((Path(__file__).parent.parent / "schemas/plan.schema.json").read_text())
    Path("rules.yaml").write_text(LOCAL_RULES)
    with Store.open(STORE) as store:
        store.upsert(
            [i.replace(time_read=T - DAY) if i.status == ARCHIVED else i for i in local_items()]
        )
    original = {i.item_id: as_it_was(i) for i in stored().values()}
    assert rb(capsys, "run", "--now", NOW)[0] == 0
    code, out, err = rb(capsys, "undo", "--dry-run", "--now", LATER, "--format", "json")
    assert code == 0, err
    plan = json.loads(out)
    assert list(Draft202012Validator(schema).iter_errors(plan)) == []
    assert any("restore" in action for action in plan["actions"])  # e.g. a read time
    Path("undo.json").write_text(out)
    code, _, err = rb(capsys, "apply", "undo.json")
    assert code == 0, err
    assert {i.item_id: as_it_was(i) for i in stored().values()} == original


def test_undo_on_karakeep_takes_away_the_tags_the_run_created_so_a_rename_onto_one_works(
    karakeep: FakeKarakeep, capsys: pytest.CaptureFixture[str]
) -> None:
    karakeep.add_bookmark("https://a.example/js", "JS", tags=["js", "web"])
    karakeep.add_bookmark("https://a.example/rust", "Rust", tags=["rust"])
    karakeep.add_tag("empty-before")  # a tag with no bookmark that the user keeps
    tags_before = sorted(karakeep.state.tags.values())
    configure(
        karakeep,
        "rules:\n  - name: t\n    where: {tag: rust}\n    actions: [{tags_add: [javascript, web]}]\n"
        + ADD_RULE,
    )
    assert rb(capsys, "run", "--now", NOW)[0] == 0
    assert {"javascript", "docs"} <= set(karakeep.state.tags.values())
    karakeep.now = T + DAY
    code, out, err = rb(capsys, "undo", "--now", LATER)
    assert code == 0, out + err
    assert sorted(karakeep.state.tags.values()) == tags_before  # `web` and `empty-before` kept
    configure(
        karakeep,
        "rules:\n  - name: r\n    actions: [{tag_rename: {old_tag: js, new_tag: javascript}}]\n",
    )
    code, out, err = rb(capsys, "run", "--now", LATER)
    assert code == 0, out + err
    assert karakeep.calls("PATCH /tags/{id}") == 1  # natively: nothing stood in its way


def test_undo_of_an_add_on_karakeep_spares_a_bookmark_tagged_since(
    karakeep: FakeKarakeep, capsys: pytest.CaptureFixture[str]
) -> None:
    from rulebot.sources.karakeep.api import KarakeepClient

    configure(karakeep, "rules:\n" + ADD_RULE)
    assert rb(capsys, "run", "--now", NOW)[0] == 0
    added = karakeep.state.by_url("https://docs.example/new")
    assert added is not None
    with KarakeepClient(karakeep.base_url, KEY) as client:  # the user tags it in the app
        client.attach_tags(added["id"], ["mine"])
    code, _, err = rb(capsys, "undo", "--now", LATER)
    assert code == 0, err
    assert "changed since (tags)" in err
    assert karakeep.state.by_url("https://docs.example/new") is not None


# -- on Readeck --------------------------------------------------------------------------


def test_undo_on_readeck_of_renames_gives_back_each_label_as_it_was_spelled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from rulebot.fake.readeck import FakeReadeck

    from .test_readeck_source import TOKEN
    from .test_readeck_source import configure as configure_readeck

    monkeypatch.chdir(tmp_path)
    clear_rulebot_env(monkeypatch)
    monkeypatch.setenv("READECK_TOKEN", TOKEN)
    with FakeReadeck(now=T, token=TOKEN) as fake:
        both = fake.add_bookmark("https://a.example/both", "Both", labels=["js", "JavaScript"])
        cased = fake.add_bookmark("https://a.example/cased", "Cased", labels=["Python", "web"])
        configure_readeck(
            fake,
            "rules:\n  - name: r\n    actions:\n"
            "      - {tag_rename: {old_tag: js, new_tag: javascript}}\n"
            "      - {tag_rename: {old_tag: python, new_tag: py}}\n",
        )
        assert rb(capsys, "run", "--now", NOW)[0] == 0
        # labels are case-sensitive on Readeck: the rename onto a case variant keeps both
        assert sorted(fake.state.labels(both)) == ["JavaScript", "javascript"]
        fake.now = T + DAY
        code, out, err = rb(capsys, "undo", "--now", LATER)
        assert code == 0, out + err
        assert sorted(fake.state.labels(both)) == ["JavaScript", "js"]
        assert sorted(fake.state.labels(cased)) == ["Python", "web"]


def test_undo_of_an_add_on_pocket_deletes_the_item_the_server_created(
    fake_pocket: FakePocket, capsys: pytest.CaptureFixture[str]
) -> None:
    Path("rules.yaml").write_text(
        f"version: 1\npocket: {{base_url: '{fake_pocket.base_url}'}}\nrules:\n" + ADD_RULE
    )
    assert rb(capsys, "run", "--now", NOW)[0] == 0
    [added] = fake_pocket.items
    # saved since from a feed's link, which resolves to the same URL: not the run's
    kept = fake_pocket.add_item(
        url="https://feed.example/r/1", resolved_url="https://docs.example/new", title="Kept"
    )
    code, out, err = rb(capsys, "undo", "--dry-run", "--now", LATER, "--format", "json")
    assert code == 0, err
    assert [a["send"] for a in json.loads(out)["actions"]] == [
        {"action": "delete", "item_id": added, "time": T + DAY}
    ]
    assert rb(capsys, "undo", "--now", LATER)[0] == 0
    assert fake_pocket.item(added)["status"] == "2" and fake_pocket.item(kept)["status"] == "0"


def test_undo_on_pocket_says_per_item_that_the_server_stamps_the_read_time_anew(
    fake_pocket: FakePocket, capsys: pytest.CaptureFixture[str]
) -> None:
    read = fake_pocket.add_item(
        url="https://a.example/read", tags=["again"], status=1, time_read=T - 5 * DAY
    )
    Path("rules.yaml").write_text(
        f"version: 1\npocket: {{base_url: '{fake_pocket.base_url}'}}\nrules:\n"
        "  - name: r\n    where: {tag: again}\n    actions: [readd]\n"
    )
    assert rb(capsys, "run", "--now", NOW)[0] == 0
    code, out, err = rb(capsys, "undo", "--dry-run", "--now", LATER, "--format", "json")
    assert code == 0, err
    note = "its read time becomes the undo's (was 2026-11-21T06:00:00Z): the server stamps it"
    assert f"not restored exactly: run 1 action 0 (readd {read}): {note}" in err
    [archive] = json.loads(out)["actions"]
    assert archive["send"]["action"] == "archive" and note in archive["reasons"]
