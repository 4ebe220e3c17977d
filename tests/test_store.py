"""The SQLite store, against real files in tmp_path."""

from __future__ import annotations

import os
import selectors
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rulebot.library.store as store_module
from rulebot.errors import LockHeldError, StoreError
from rulebot.library.item import ARCHIVED, DELETED, HIDDEN, UNREAD, Item
from rulebot.library.schema import APPLICATION_ID, SCHEMA_VERSION
from rulebot.library.store import Store
from tests.helpers import examples


@pytest.fixture
def store(tmp_path: Path):
    with Store.open(tmp_path / "rulebot.db") as opened:
        yield opened


def item(item_id: str, **fields: object) -> Item:
    fields.setdefault("given_url", f"https://example.com/{item_id}")
    fields.setdefault("time_added", 1_700_000_000 + int(item_id))
    return Item(item_id=item_id, **fields)  # type: ignore[arg-type]


# -- opening, versions, migrations ---------------------------------------------------
def test_open_creates_parent_dirs_and_uses_wal(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "rulebot.db"
    with Store.open(path) as opened:
        assert opened.schema_version() == SCHEMA_VERSION
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"items", "item_tags", "meta", "schedule", "runs", "run_actions"} <= tables


@pytest.mark.parametrize("kind", ["empty-file", "empty-database"])
def test_migrates_a_version_0_file(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "old.db"
    if kind == "empty-file":
        path.write_bytes(b"")  # a zero-byte file is an empty SQLite database
    else:
        sqlite3.connect(path).execute("PRAGMA page_size = 4096").connection.close()
    with Store.open(path) as opened:
        assert opened.schema_version() == SCHEMA_VERSION
        opened.upsert([item("1")])
        assert opened.count() == 1
    assert sqlite3.connect(path).execute("PRAGMA application_id").fetchone() == (APPLICATION_ID,)


@pytest.mark.parametrize("user_version", [0, 1, 7])
def test_another_programs_database_is_refused_untouched(tmp_path: Path, user_version: int) -> None:
    path = tmp_path / "firefox-places.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE notes (text TEXT)")
    conn.execute("INSERT INTO notes VALUES ('kept')")
    conn.execute(f"PRAGMA user_version = {user_version}")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    with pytest.raises(StoreError, match=r"another program's SQLite database \(tables: notes\)"):
        Store.open(path)
    # not switched to WAL, no tables added: not one byte changed
    assert path.read_bytes() == before
    assert not Path(f"{path}-wal").exists()


def test_a_store_written_before_application_id_still_opens(tmp_path: Path) -> None:
    path = tmp_path / "rulebot.db"
    with Store.open(path) as opened:
        opened.upsert([item("1")])
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA application_id = 0")
    conn.commit()
    conn.close()
    with Store.open(path) as opened:
        assert opened.count() == 1


def test_a_negative_schema_version_is_a_clean_error(tmp_path: Path) -> None:
    path = tmp_path / "rulebot.db"
    Store.open(path).close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = -3")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="schema version -3, which no rulebot writes") as caught:
        Store.open(path)
    assert str(path) in str(caught.value)


def test_undecodable_text_in_the_store_is_a_clean_error(tmp_path: Path, capsys) -> None:
    from tests.helpers import rb

    path = tmp_path / "rulebot.db"
    with Store.open(path) as opened:
        opened.upsert([item("1")])
        opened._conn.execute("UPDATE items SET given_title = CAST(x'ff41' AS TEXT)")
    with Store.open(path) as opened, pytest.raises(StoreError, match="damaged") as caught:
        opened.items()
    assert str(path) in str(caught.value)
    config = tmp_path / "rules.yaml"
    config.write_text("version: 1\nrules: []\n")
    code, _, err = rb(
        capsys, "-c", str(config), "--store", str(path), "export", str(tmp_path / "x.csv")
    )
    assert code == 1 and "damaged" in err and str(path) in err and "Traceback" not in err


def test_a_damaged_journal_is_a_clean_error(store: Store) -> None:
    run_id = store.journal_begin("apply-pocket", _actions(1))
    store.journal_mark(run_id, [0], "sent")
    store._conn.execute("UPDATE run_actions SET action = '{broken'")
    with pytest.raises(StoreError, match="damaged") as caught:
        store.journal_pending()
    assert str(store.path) in str(caught.value)
    store._conn.execute("UPDATE runs SET kind = CAST(x'ff' AS TEXT)")  # not UTF-8
    with pytest.raises(StoreError, match="damaged"):
        store.journal_runs()


def test_a_malformed_store_is_a_clean_error(tmp_path: Path) -> None:
    path = tmp_path / "rulebot.db"
    with Store.open(path) as opened:
        opened.upsert([item(str(n), given_title="x" * 500) for n in range(1, 400)])
    data = bytearray(path.read_bytes())
    assert len(data) > 8 * 4096
    data[3 * 4096 : 6 * 4096] = b"\xa5" * (3 * 4096)  # garbage over b-tree pages
    path.write_bytes(bytes(data))
    with pytest.raises(StoreError, match=r"damaged|malformed") as caught:  # noqa: SIM117
        with Store.open(path) as opened:  # either open or the read finds the damage
            opened.items()
    assert str(path) in str(caught.value)


# -- files: permissions, the lock file ----------------------------------------------------
def test_store_directory_and_files_are_private(tmp_path: Path) -> None:
    old_umask = os.umask(0o022)
    try:
        path = tmp_path / ".rulebot" / "rulebot.db"
        with Store.open(path) as opened, opened.lock("run"):
            opened.upsert([item("1")])
            modes = {
                p.name: p.stat().st_mode & 0o777
                for p in path.parent.iterdir()
                if p.name.startswith("rulebot.db")
            }
        assert path.parent.stat().st_mode & 0o777 == 0o700
        assert set(modes) >= {"rulebot.db", "rulebot.db-wal", "rulebot.db-shm", "rulebot.db.lock"}
        assert set(modes.values()) == {0o600}, modes
    finally:
        os.umask(old_umask)


def test_a_symlink_at_the_lock_path_is_refused_and_its_target_untouched(tmp_path: Path) -> None:
    victim = tmp_path / "precious.txt"
    victim.write_text("keep me\n")
    path = tmp_path / "rulebot.db"
    with Store.open(path) as opened:
        opened.lock_path.symlink_to(victim)
        with pytest.raises(StoreError, match="is a symbolic link") as caught, opened.lock("run"):
            pass
    assert str(opened.lock_path) in str(caught.value)
    assert victim.read_text() == "keep me\n"


def test_a_full_disk_writing_the_lock_file_is_a_clean_error(tmp_path: Path, monkeypatch) -> None:
    import errno

    def full(fd: int, data: bytes, offset: int) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with Store.open(tmp_path / "rulebot.db") as opened:
        monkeypatch.setattr(store_module.os, "pwrite", full)
        with (
            pytest.raises(StoreError, match="No space left on device") as caught,
            opened.lock("run"),
        ):
            pass
        assert str(opened.lock_path) in str(caught.value)
        monkeypatch.undo()
        with opened.lock("run"):  # released: the next attempt works
            pass


def test_migrations_apply_in_order_and_keep_data(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "rulebot.db"
    with Store.open(path) as opened:
        opened.upsert([item("1", tags=("a",))])
    later = [*store_module.MIGRATIONS, ("ALTER TABLE items ADD COLUMN note TEXT",)]
    later.append(("UPDATE items SET note = 'v' || (SELECT count(*) FROM items)",))
    monkeypatch.setattr(store_module, "MIGRATIONS", later)
    monkeypatch.setattr(store_module, "SCHEMA_VERSION", len(later))
    with Store.open(path) as opened:
        assert opened.schema_version() == SCHEMA_VERSION + 2
        assert opened.get("1") == item("1", tags=("a",))
        assert opened._conn.execute("SELECT note FROM items").fetchone() == ("v1",)


def test_refuses_a_store_from_a_newer_rulebot(tmp_path: Path) -> None:
    path = tmp_path / "rulebot.db"
    Store.open(path).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="newer rulebot") as caught:
        Store.open(path)
    assert str(path) in str(caught.value)
    assert f"schema version {SCHEMA_VERSION + 1}" in str(caught.value)


def test_a_file_that_is_not_sqlite_is_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("title,url\n" * 200)
    with pytest.raises(StoreError, match="not an SQLite database") as caught:
        Store.open(path)
    assert str(path) in str(caught.value)
    assert path.read_text() == "title,url\n" * 200  # untouched


# -- items ----------------------------------------------------------------------------
def test_items_sorted_and_deleted_hidden_by_default(store: Store) -> None:
    store.upsert(
        [
            item("30", time_added=5),
            item("4", time_added=5),
            item("7", time_added=1),
            item("8", status=DELETED, tags=None, time_added=0),
            item("9", status=HIDDEN),
            item("10", status=ARCHIVED),
        ]
    )
    assert [i.item_id for i in store.items()] == ["7", "4", "30", "10"]
    assert [i.item_id for i in store.items(include_deleted=True)] == [
        "8",
        "7",
        "4",
        "30",
        "9",
        "10",
    ]
    assert store.count() == 4
    assert store.count(include_deleted=True) == 6


def test_unknown_tags_round_trip_distinct_from_no_tags(store: Store) -> None:
    store.upsert([item("1", tags=None), item("2", tags=()), item("3", tags=("b", "A", "b2"))])
    assert store.get("1").tags is None  # type: ignore[union-attr]
    assert store.get("2").tags == ()  # type: ignore[union-attr]
    assert store.get("3").tags == ("b", "A", "b2")  # type: ignore[union-attr]
    by_id = {i.item_id: i.tags for i in store.items()}
    assert by_id == {"1": None, "2": (), "3": ("b", "A", "b2")}


def test_upsert_replaces_fields_and_tags(store: Store) -> None:
    store.upsert([item("1", given_title="old", tags=("a", "b"))])
    store.upsert([item("1", given_title="new", tags=("c",))])
    assert store.get("1") == item("1", given_title="new", tags=("c",))
    store.upsert([item("1", tags=None)])
    assert store.get("1").tags is None  # type: ignore[union-attr]
    assert store._conn.execute("SELECT count(*) FROM item_tags").fetchone()[0] == 0


def test_get_find_by_url_and_delete(store: Store) -> None:
    store.upsert(
        [
            item("1", given_url="https://a.test/x", resolved_url="https://a.test/x-resolved"),
            item("2", given_url="https://b.test/", status=DELETED),
            item("3", given_url="https://b.test/"),
        ]
    )
    assert store.get("99") is None
    assert store.find_by_url("https://a.test/x").item_id == "1"  # type: ignore[union-attr]
    assert store.find_by_url("https://a.test/x-resolved").item_id == "1"  # type: ignore[union-attr]
    assert store.find_by_url("https://b.test/").item_id == "3"  # type: ignore[union-attr]
    assert store.find_by_url("") is None
    assert store.find_by_url("https://nowhere.test/") is None
    assert store.delete(["3", "404"]) == 1
    assert store.find_by_url("https://b.test/").item_id == "2"  # type: ignore[union-attr]
    assert store.get("3") is None


def test_replace_all_leaves_exactly_the_given_items(store: Store) -> None:
    store.upsert([item("1", tags=("a",)), item("2")])
    store.replace_all([item("2", given_title="t"), item("3", tags=("z",))])
    assert store.items() == [item("2", given_title="t"), item("3", tags=("z",))]
    rows = store._conn.execute("SELECT item_id, tag FROM item_tags").fetchall()
    assert rows == [("3", "z")]


_text = st.text(st.characters(blacklist_categories=["Cs"]), max_size=30)
_int64 = st.integers(-(2**63), 2**63 - 1)
_json = st.recursive(
    st.none() | st.booleans() | _int64 | st.floats(allow_nan=False, allow_infinity=False) | _text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=8,
)
_items = st.builds(
    Item,
    item_id=st.from_regex(r"\A[0-9]{1,19}\Z"),
    given_url=_text,
    resolved_url=_text,
    given_title=_text,
    resolved_title=_text,
    status=st.sampled_from([UNREAD, ARCHIVED, DELETED, HIDDEN]),
    favorite=st.none() | st.booleans(),
    tags=st.none() | st.lists(_text, max_size=4).map(tuple),
    time_added=st.none() | _int64,
    time_updated=st.none() | _int64,
    time_read=st.none() | _int64,
    time_favorited=st.none() | _int64,
    word_count=st.none() | _int64,
    time_to_read=st.none() | _int64,
    lang=st.none() | _text,
    is_article=st.none() | st.booleans(),
    has_image=st.none() | st.integers(0, 2),
    has_video=st.none() | st.integers(0, 2),
    excerpt=_text,
    extra=st.dictionaries(_text, _json, max_size=3),
)


@settings(
    max_examples=examples(60),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(st.lists(_items, max_size=8, unique_by=lambda i: i.item_id))
def test_every_item_field_round_trips(tmp_path: Path, generated: list[Item]) -> None:
    path = tmp_path / "prop.db"
    with Store.open(path) as opened:
        opened.replace_all(generated)
    with Store.open(path) as reopened:  # a fresh connection: nothing cached
        loaded = reopened.items(include_deleted=True)
        assert loaded == sorted(generated, key=lambda i: i.sort_key)
        # Item equality skips `extra`, and bools must come back as bools.
        by_id = {i.item_id: i for i in generated}
        for got in loaded:
            want = by_id[got.item_id]
            assert dict(got.extra) == dict(want.extra)
            assert got.favorite is None or type(got.favorite) is bool
            assert got.is_article is None or type(got.is_article) is bool
            assert reopened.get(got.item_id) == want


_PLAIN: dict[str, object] = dict(
    resolved_url="",
    resolved_title="",
    time_read=None,
    time_favorited=None,
    word_count=None,
    time_to_read=None,
    lang=None,
    is_article=None,
    has_image=None,
    has_video=None,
    excerpt="",
    extra={},
)


@settings(
    max_examples=examples(60),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    st.lists(
        st.tuples(_items, st.sampled_from([None, "all", *_PLAIN])),
        max_size=8,
        unique_by=lambda pair: pair[0].item_id,
    )
)
def test_insert_new_stores_every_field_of_plain_and_full_items(
    tmp_path: Path, generated: list[tuple[Item, str | None]]
) -> None:
    # an export's items (12 columns at their defaults) take a narrower INSERT;
    # an item with all but one of them at the default must not
    items = [
        item if keep is None else item.replace(**{k: v for k, v in _PLAIN.items() if k != keep})
        for item, keep in generated
    ]
    path = Path(tempfile.mkdtemp(dir=tmp_path)) / "insert.db"  # one per example
    with Store.open(path) as opened:
        opened.insert_new(items)
    with Store.open(path) as reopened:
        loaded = reopened.items(include_deleted=True)
        assert loaded == sorted(items, key=lambda i: i.sort_key)
        by_id = {i.item_id: i for i in items}
        assert all(dict(got.extra) == dict(by_id[got.item_id].extra) for got in loaded)


def test_unknown_favorite_is_stored_as_null(store: Store) -> None:
    store.upsert([item("1", favorite=None), item("2", favorite=False), item("3", favorite=True)])
    raw = store._conn.execute("SELECT item_id, favorite FROM items ORDER BY item_id").fetchall()
    assert raw == [("1", None), ("2", 0), ("3", 1)]
    assert [store.get(i).favorite for i in "123"] == [None, False, True]  # type: ignore[union-attr]


def _version_1_store(path: Path, monkeypatch, *, mirror: bool) -> None:
    """A store as the first release wrote it: favorite NOT NULL, imports stored 0."""
    with monkeypatch.context() as patched:
        patched.setattr(store_module, "MIGRATIONS", store_module.MIGRATIONS[:1])
        patched.setattr(store_module, "SCHEMA_VERSION", 1)
        with Store.open(path) as old:
            old.upsert([item("1", favorite=False), item("2", favorite=True, tags=("a",))])
            if mirror:
                old.set_meta("since", "1700000000")
            assert old.schema_version() == 1


@pytest.mark.parametrize("mirror", [False, True])
def test_version_1_store_migrates_favorite_to_unknown_in_a_local_library(
    tmp_path: Path, monkeypatch, mirror: bool
) -> None:
    path = tmp_path / "rulebot.db"
    _version_1_store(path, monkeypatch, mirror=mirror)
    with Store.open(path) as opened:
        assert opened.schema_version() == SCHEMA_VERSION
        # a local library's 0 came from an export, which never said; a mirror's from the server
        assert opened.get("1") == item("1", favorite=False if mirror else None)
        assert opened.get("2") == item("2", favorite=True, tags=("a",))
        opened.upsert([item("3", favorite=None)])  # the column now takes NULL
        names = {r[0] for r in opened._conn.execute("SELECT name FROM sqlite_master")}
        assert {"items_given_url", "items_resolved_url"} <= names and "items_v2" not in names


# -- transactions, meta, schedule -------------------------------------------------------
def test_transaction_rolls_back_everything_on_error(store: Store) -> None:
    store.upsert([item("1")])
    with pytest.raises(RuntimeError), store.transaction() as conn:
        store.upsert([item("2")], conn=conn)
        store.set_meta("since", "123", conn=conn)
        store.set_last_run("r", 5, conn=conn)
        store.delete(["1"], conn=conn)
        raise RuntimeError("boom")
    assert [i.item_id for i in store.items()] == ["1"]
    assert store.get_meta("since") is None
    assert store.last_run("r") is None


def test_sqlite_failures_become_store_errors(store: Store) -> None:
    with pytest.raises(StoreError, match="failed"), store.transaction() as conn:
        conn.execute("INSERT INTO no_such_table VALUES (1)")


def test_meta_and_schedule_standalone_and_in_a_transaction(store: Store) -> None:
    assert store.get_meta("since") is None
    store.set_meta("since", "1700000000")
    store.set_meta("since", "1700000100")
    assert store.get_meta("since") == "1700000100"
    with store.transaction() as conn:
        store.set_meta("source", "local", conn=conn)
        store.set_last_run("archive-stale", 1_800_000_000, conn=conn)
        store.set_last_run("archive-stale", 1_800_000_060)  # joins the outer transaction
    assert store.get_meta("source") == "local"
    assert store.last_run("archive-stale") == 1_800_000_060
    assert store.last_run("never") is None


def test_writes_are_visible_to_another_connection(tmp_path: Path) -> None:
    path = tmp_path / "rulebot.db"
    with Store.open(path) as first, Store.open(path) as second:
        first.upsert([item("1")])
        first.set_meta("since", "9")
        assert second.get("1") == item("1")
        assert second.get_meta("since") == "9"


# -- run journal ---------------------------------------------------------------------------
def _actions(n: int) -> list[dict]:
    return [
        {"rule": f"r{i % 2}", "send": {"action": "archive", "item_id": str(i)}, "reasons": ["x"]}
        for i in range(n)
    ]


def test_journal_lifecycle_and_pending(store: Store) -> None:
    run_id = store.journal_begin("run", _actions(4))
    assert store.journal_pending() == []  # planned, nothing sent yet
    store.journal_mark(run_id, [0, 1, 2], "sent")
    store.journal_mark(run_id, [0], "confirmed")
    store.journal_mark(run_id, [1], "failed", error="422 Invalid URL")
    pending = store.journal_pending()
    assert [(p.run_id, p.index, p.state) for p in pending] == [(run_id, 2, "sent")]
    assert pending[0].send == {"action": "archive", "item_id": "2"}
    assert pending[0].rule == "r0"
    assert pending[0].action["reasons"] == ["x"]
    assert pending[0].run_kind == "run"

    other = store.journal_begin("apply", _actions(1))
    store.journal_mark(other, [0], "sent")
    store.journal_finish(other, "ok")  # finished runs are never pending
    assert [(p.run_id, p.index) for p in store.journal_pending()] == [(run_id, 2)]

    runs = store.journal_runs(10)
    assert [r.run_id for r in runs] == [other, run_id]
    assert runs[1].status == "running" and runs[1].finished_at is None
    assert runs[1].states == {"confirmed": 1, "failed": 1, "planned": 1, "sent": 1}
    assert runs[0].status == "ok" and runs[0].finished_at is not None
    assert len(store.journal_runs(1)) == 1


def test_journal_mark_inside_an_outer_transaction_rolls_back(store: Store) -> None:
    run_id = store.journal_begin("run", _actions(2))
    with pytest.raises(RuntimeError), store.transaction() as conn:
        store.journal_mark(run_id, [0, 1], "sent", conn=conn)
        raise RuntimeError
    assert [r.states for r in store.journal_runs(1)] == [{"planned": 2}]


def test_journal_mark_rejects_unknown_states_and_indexes(store: Store) -> None:
    run_id = store.journal_begin("run", _actions(1))
    with pytest.raises(ValueError, match="not one of"):
        store.journal_mark(run_id, [0], "done")
    with pytest.raises(StoreError, match="no action"):
        store.journal_mark(run_id, [0, 5], "sent")
    assert store.journal_runs(1)[0].states == {"planned": 1}  # rolled back


# -- the inter-process lock ------------------------------------------------------------------
_HOLDER = textwrap.dedent(
    """
    import sys
    from rulebot.library.store import Store
    store = Store.open(sys.argv[1])
    with store.lock("run"):
        print("locked", flush=True)
        sys.stdin.read()  # hold until the parent closes our stdin
    """
)


def _spawn_holder(db: Path) -> subprocess.Popen[str]:
    child = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(db)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(child.stdout, selectors.EVENT_READ)
        if not selector.select(timeout=30):
            child.kill()
            pytest.fail("the child process never took the lock")
    assert child.stdout.readline().strip() == "locked"
    return child


def test_two_processes_cannot_hold_the_store_at_once(tmp_path: Path) -> None:
    db = tmp_path / "rulebot.db"
    child = _spawn_holder(db)
    try:
        with Store.open(db) as mine:
            with pytest.raises(LockHeldError) as caught, mine.lock("plan"):
                pytest.fail("took a lock another process holds")
            message = str(caught.value)
            assert f"store {db} is in use by rulebot run (pid {child.pid} on " in message
            assert socket.gethostname() in message
            assert "wait for it to finish" in message
            child.communicate("", timeout=30)  # close stdin: the child lets go
            with mine.lock("plan"):
                assert f'"pid": {os.getpid()}' in mine.lock_path.read_text()
            assert mine.lock_path.read_text() == ""  # released and cleared
    finally:
        child.kill()


def test_a_killed_holder_releases_the_lock(tmp_path: Path) -> None:
    db = tmp_path / "rulebot.db"
    with _spawn_holder(db) as child:  # its pipes closed after
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    with Store.open(db) as mine, mine.lock("run"):
        assert "rulebot run" in mine.lock_path.read_text()


def test_lock_is_reentrant_within_one_store_but_not_across_stores(tmp_path: Path) -> None:
    db = tmp_path / "rulebot.db"
    with Store.open(db) as first, Store.open(db) as second:
        with (
            first.lock("run"),
            first.lock("import"),
            pytest.raises(LockHeldError, match=r"rulebot run \(pid"),
            second.lock("plan"),
        ):
            pass
        with second.lock("plan"):
            pass


# -- performance -----------------------------------------------------------------------------------
@pytest.mark.slow
def test_100k_items_upsert_and_load(store: Store) -> None:
    """A large library goes in and comes back whole, in order (how fast is
    measured by benchmarks/, not here: CI times nothing)."""
    many = [
        item(str(n), given_title=f"title {n}", tags=("read-later", "js") if n % 3 else ())
        for n in range(100_000)
    ]
    store.upsert(many)
    assert store.items() == many


@settings(
    max_examples=examples(40),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(st.lists(st.sampled_from([UNREAD, ARCHIVED, DELETED, HIDDEN]), max_size=4))
def test_is_empty_says_what_count_says_without_reading_every_row(
    tmp_path: Path, statuses: list[int]
) -> None:
    path = tmp_path / f"s{len(statuses)}-{'-'.join(map(str, statuses))}.db"
    with Store.open(path) as store:
        store.upsert([Item(str(n), status=status) for n, status in enumerate(statuses, 1)])
        assert store.is_empty() == (store.count() == 0)


def test_a_pass_over_the_library_reads_with_a_larger_page_cache_then_gives_it_back(
    tmp_path: Path,
) -> None:
    with Store.open(tmp_path / "s.db") as store:
        store.upsert([Item(str(n), tags=("a",), time_added=n) for n in range(1, 6)])
        size = store._conn.execute("PRAGMA cache_size").fetchone()[0]
        sizes = [
            store._conn.execute("PRAGMA cache_size").fetchone()[0] for _ in store.iter_items(2)
        ]
        assert sizes == [-store_module.PASS_CACHE_KIB] * 3
        assert store._conn.execute("PRAGMA cache_size").fetchone()[0] == size
        passing = store.iter_items(2)
        next(passing)
        passing.close()  # a pass left early gives it back too
        assert store._conn.execute("PRAGMA cache_size").fetchone()[0] == size
