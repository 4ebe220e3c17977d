"""Import's bulk load (#17.4): plain INSERTs for new items, one transaction,
synchronous=NORMAL only while it runs (FULL again after)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rulebot.errors import StoreError
from rulebot.library.export_reader import read_export
from rulebot.library.importer import import_export
from rulebot.library.item import Item
from rulebot.library.item_order import MARK, oldest_first
from rulebot.library.item_rows import BULK_INDEXING, is_plain, plain_rows
from rulebot.library.store import Store
from tests.helpers import examples

CSV = (
    "title,url,time_added,tags,status\n"
    "One,https://a.example/1,1700000000,x|y,unread\n"
    "Two,https://a.example/2,1700000001,,archive\n"
)


def _import_traced(store: Store, export: Path) -> tuple[list[str], list[int]]:
    statements: list[str] = []
    sync_levels: list[int] = []
    conn = store._conn

    def trace(sql: str) -> None:
        statements.append(sql)

    conn.set_trace_callback(trace)

    def spy(write: Any) -> Any:
        def spied(rows: Any, conn: Any = None) -> Any:
            sync_levels.append(store._conn.execute("PRAGMA synchronous").fetchone()[0])
            return write(rows, conn=conn)

        return spied

    # the writes: a first import's (insert_export), a merge's (upsert)
    store.upsert = spy(store.upsert)  # type: ignore[method-assign]
    store.insert_export = spy(store.insert_export)  # type: ignore[method-assign]
    try:
        import_export(store, export, now=1_800_000_000)
    finally:
        conn.set_trace_callback(None)
        del store.upsert, store.insert_export
    return statements, sync_levels


def test_fresh_import_has_no_tag_delete_one_transaction_and_normal_sync(tmp_path: Path) -> None:
    export = tmp_path / "e.csv"
    export.write_text(CSV, encoding="utf-8")
    with Store.open(tmp_path / "s.db") as store:
        statements, sync_levels = _import_traced(store, export)
        assert not [s for s in statements if "DELETE" in s.upper()]
        # one transaction: the read of the existing library joins the write
        assert [s for s in statements if s.upper().startswith("BEGIN")] == ["BEGIN IMMEDIATE"]
        assert sync_levels == [1]  # NORMAL during the load
        assert store._conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL after
        assert {i.given_url for i in store.items()} == {
            "https://a.example/1",
            "https://a.example/2",
        }
        found = store.find_by_url("https://a.example/1")
        assert found is not None and found.tags == ("x", "y")


def test_reimport_still_replaces_tags_and_restores_full_sync(tmp_path: Path) -> None:
    export = tmp_path / "e.csv"
    export.write_text(CSV, encoding="utf-8")
    with Store.open(tmp_path / "s.db") as store:
        import_export(store, export, now=1_800_000_000)
        export.write_text(CSV.replace("x|y", "z"), encoding="utf-8")
        import_export(store, export, now=1_800_000_001)
        found = store.find_by_url("https://a.example/1")
        assert found is not None and found.tags == ("z",)
        assert store._conn.execute("PRAGMA synchronous").fetchone()[0] == 2


def test_insert_new_refuses_an_existing_id_and_sync_is_restored_after_failure(
    tmp_path: Path,
) -> None:
    item = Item(item_id="1", given_url="https://a.example/1", tags=("t",))
    with Store.open(tmp_path / "s.db") as store:
        store.upsert([item])
        with pytest.raises(StoreError), store.bulk_load(), store.transaction() as conn:
            store.insert_new([item], conn=conn)
        assert store._conn.execute("PRAGMA synchronous").fetchone()[0] == 2
        assert store.get("1") == item and store.count() == 1


_OPTIONAL = st.fixed_dictionaries(
    {},
    optional={
        "resolved_url": st.just("https://r.example/x"),
        "resolved_title": st.just("Resolved"),
        "time_read": st.integers(1, 2),
        "time_favorited": st.integers(1, 2),
        "word_count": st.integers(0, 9),
        "time_to_read": st.integers(0, 9),
        "lang": st.just("en"),
        "is_article": st.booleans(),
        "has_image": st.integers(0, 2),
        "has_video": st.integers(0, 2),
        "excerpt": st.just("Some text"),
        "extra": st.just({"k": 1}),
        "favorite": st.one_of(st.none(), st.booleans()),
        "tags": st.one_of(st.none(), st.just(("a", "B"))),
    },
)


@settings(max_examples=examples(60), deadline=None)
@given(st.lists(_OPTIONAL, max_size=12))
def test_plain_rows_split_the_items_as_is_plain_does_and_store_them_whole(
    tmp_path_factory: pytest.TempPathFactory, fields: list[dict[str, object]]
) -> None:
    """``plain_rows`` writes its test out for speed: it must agree with
    ``is_plain``, and what ``insert_new`` stores through it must read back
    as the items themselves."""
    items = [
        Item(str(n), given_url=f"https://a.example/{n}", time_added=n, **extra)  # type: ignore[arg-type]
        for n, extra in enumerate(fields, 1)
    ]
    rest: list[Item] = []
    rows = list(plain_rows(items, rest))
    assert rest == [item for item in items if not is_plain(item)]
    assert [row[0] for row in rows] == [item.item_id for item in items if is_plain(item)]
    with Store.open(tmp_path_factory.mktemp("plain") / "s.db") as store:
        store.insert_new(items)
        assert store.items(include_deleted=True) == items


def _tables(path: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every row a store holds for its items, in the order SQLite stores them
    (a plan reads items as stored, so the order is part of the contract)."""
    conn = sqlite3.connect(path)
    try:
        return {
            "items": conn.execute("SELECT * FROM items ORDER BY rowid").fetchall(),
            "item_tags": conn.execute("SELECT * FROM item_tags").fetchall(),
            "meta": conn.execute("SELECT * FROM meta ORDER BY key").fetchall(),
            "indexes": conn.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' ORDER BY name"
            ).fetchall(),
        }
    finally:
        conn.close()


def _export_text(rows: list[tuple[str, str, int, list[str], str]]) -> str:
    lines = ["title,url,time_added,tags,status"]
    for title, url, added, tags, status in rows:
        lines.append(f"{title},{url},{added},{'|'.join(tags)},{status}")
    return "\n".join(lines) + "\n"


_export_rows = st.lists(
    st.tuples(
        st.sampled_from(["", "Title", "Other"]),
        st.integers(0, 40).map(lambda n: f"https://a.example/{n}"),  # repeats: last row wins
        st.sampled_from([0, 1, 2, 1_700_000_000]),  # 0: never; few values, many ties
        st.lists(st.sampled_from(["a", "B", " a", "", "c d"]), max_size=4),
        st.sampled_from(["unread", "archive"]),
    ),
    max_size=30,
)


def _both_ways(tmp: Path, text: str) -> tuple[Path, Path]:
    """The export imported into an empty store (a first import, which writes
    the rows as read), and its items written into another empty store by the
    general writer (``insert_new``, oldest first, as a merge writes new items)."""
    export = tmp / "e.csv"
    export.write_text(text, encoding="utf-8")
    first, general = tmp / "first.db", tmp / "general.db"
    with Store.open(first) as store:
        import_export(store, export, now=1_800_000_000)
    items = read_export(export)
    oldest_first(items)
    with Store.open(general) as store:
        store.insert_new(items)
    return first, general


@settings(max_examples=examples(80), deadline=None)
@given(rows=_export_rows)
def test_a_first_import_stores_what_the_general_writer_stores(
    tmp_path_factory: pytest.TempPathFactory, rows: list[tuple[str, str, int, list[str], str]]
) -> None:
    """A first import writes the export's rows without making items
    (``Store.insert_export``); its store must equal, row for row and in
    stored order, the one the items make through ``insert_new``."""
    first, general = _both_ways(tmp_path_factory.mktemp("first"), _export_text(rows))
    assert _tables(first) == _tables(general)


def test_a_large_first_import_stores_what_the_general_writer_stores(tmp_path: Path) -> None:
    """Above BULK_INDEXING rows the URL indexes are built after the rows:
    the same tables and the same indexes, and the store is marked in order."""
    rows = [
        (f"T{n}", f"https://u.example/{n % 977}/{n}", n // 3, ["x", "y"][: n % 3], "unread")
        for n in range(BULK_INDEXING + 500)
    ]
    first, general = _both_ways(tmp_path, _export_text(rows))
    tables = _tables(first)
    assert tables == _tables(general)
    assert (MARK, "1") in tables["meta"]


def test_insert_export_refuses_a_store_that_has_items(tmp_path: Path) -> None:
    """Its rows skip the merge by URL and the order check: only an empty store will do."""
    row = ("1", "https://a.example/1", "", 5, ("t",), 0)
    with Store.open(tmp_path / "s.db") as store:
        store.upsert([Item("2", given_url="https://a.example/2")])
        with pytest.raises(StoreError, match="no items"):
            store.insert_export([row])
        assert [item.item_id for item in store.items()] == ["2"]
