"""Items stored in the planner's order (rulebot.library.item_order): the
mark the store keeps, its writers keeping it honest, and the plan when it
lies. Real SQLite files; plans through the real ``rulebot`` entry point."""

from __future__ import annotations

import itertools
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from rulebot.library.item import Item
from rulebot.library.item_order import MARK, OutOfOrder, in_order, oldest_first
from rulebot.library.store import Store

RULES = """\
version: 1
limits: {max_actions: 100000}
rules:
  - name: first-two
    where: {tag: news}
    limit: 2
    actions: [archive]
  - name: tag-old
    where: {added: {older_than: 30d}}
    actions: [{tags_add: [old]}]
"""
NOW = "2026-01-01T00:00:00Z"
RULEBOT = [sys.executable, "-m", "rulebot"]
PLAN = ["plan", "--format", "json", "--now", NOW]


def stored_rows(path: Path) -> list[tuple[int, str]]:
    """(time_added, item_id) of the live items, as SQLite stores them."""
    conn = sqlite3.connect(path)
    try:
        return conn.execute(
            "SELECT coalesce(time_added, 0), item_id FROM items WHERE status NOT IN (2, 3)"
            " ORDER BY rowid"
        ).fetchall()
    finally:
        conn.close()


def in_sort_order(rows: list[tuple[int, str]]) -> bool:
    keys = [Item(item_id, time_added=added).sort_key for added, item_id in rows]
    return keys == sorted(keys)


def read_all(store: Store) -> list[Item]:
    return [item for chunk in store.iter_items(chunk=3) for item in chunk]


ids = st.sampled_from([str(n) for n in range(1, 13)] + ["x", "07", "b2"])
times = st.one_of(st.none(), st.integers(1_600_000_000, 1_600_000_040))
items = st.builds(
    lambda item_id, added, archived: Item(
        item_id, given_url=f"https://example.com/{item_id}", time_added=added, status=int(archived)
    ),
    ids,
    times,
    st.booleans(),
)
writes = st.lists(
    st.one_of(
        st.tuples(st.just("upsert"), st.lists(items, max_size=5)),
        st.tuples(st.just("insert"), st.lists(items, max_size=5)),
        st.tuples(st.just("delete"), st.lists(ids, max_size=3)),
        st.tuples(st.just("replace_all"), st.lists(items, max_size=6)),
    ),
    max_size=8,
)


@settings(max_examples=120, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(writes)
def test_the_mark_never_lies_and_every_read_is_in_sort_order(
    tmp_path_factory: pytest.TempPathFactory, script: list[tuple[str, list]]
) -> None:
    path = tmp_path_factory.mktemp("order") / "rulebot.db"
    with Store.open(path) as store:
        for kind, batch in script:
            if kind == "insert":  # insert_new takes only ids the store does not hold
                held = {item.item_id for item in store.items(include_deleted=True)}
                fresh = {item.item_id: item for item in batch if item.item_id not in held}
                store.insert_new(fresh.values())
            elif kind == "upsert":
                store.upsert(batch)
            elif kind == "delete":
                store.delete(batch)
            else:
                store.replace_all({item.item_id: item for item in batch}.values())
            if store.stored_in_order():
                assert in_sort_order(stored_rows(path))
            assert read_all(store) == store.items()  # sorted, whichever way it was read


def test_an_import_into_an_empty_store_is_stored_in_order_and_a_run_keeps_it(
    tmp_path: Path,
) -> None:
    export = tmp_path / "export.csv"
    rows = [("Newest", "https://a.example/3", 1_700_000_300, "news", "unread")]
    rows += [("Oldest", "https://a.example/1", 1_600_000_100, "news", "unread")]
    rows += [("Middle", "https://a.example/2", 1_650_000_200, "news|x", "archive")]
    export.write_text(
        "title,url,time_added,tags,status\n" + "".join(",".join(map(str, r)) + "\n" for r in rows)
    )
    config = tmp_path / "rules.yaml"
    config.write_text(RULES)
    store_path = tmp_path / "rulebot.db"
    rulebot = [sys.executable, "-m", "rulebot", "-c", str(config), "--store", str(store_path)]
    subprocess.run([*rulebot, "-q", "import", str(export)], check=True)
    assert [added for added, _ in stored_rows(store_path)] == [
        1_600_000_100,
        1_650_000_200,
        1_700_000_300,
    ]
    with Store.open(store_path) as store:
        assert store.stored_in_order()
    subprocess.run([*rulebot, "-q", "run", "--now", NOW], check=True, capture_output=True)
    with Store.open(store_path) as store:
        assert store.stored_in_order()  # archiving and tagging keep every row's place


@pytest.mark.parametrize(
    "write",
    [
        # an older item added after newer ones
        lambda store: store.upsert([Item("99", given_url="https://b.example", time_added=5)]),
        # a stored item's time_added changed: it keeps its place under another key
        lambda store: store.upsert([store.items()[0].replace(time_added=1_900_000_000)]),
        lambda store: store.insert_new([Item("98", given_url="https://c.example", time_added=5)]),
    ],
    ids=["older-upsert", "time-changed", "older-insert"],
)
def test_a_write_that_breaks_the_order_drops_the_mark(tmp_path: Path, write) -> None:
    with Store.open(tmp_path / "rulebot.db") as store:
        store.insert_new(Item(str(n), time_added=1_600_000_000 + n) for n in range(1, 6))
        assert store.stored_in_order()
        write(store)
        assert not store.stored_in_order()
        assert read_all(store) == store.items()


def test_newer_items_and_unchanged_times_keep_the_mark(tmp_path: Path) -> None:
    with Store.open(tmp_path / "rulebot.db") as store:
        store.insert_new(Item(str(n), time_added=1_600_000_000 + n) for n in range(1, 6))
        store.upsert([Item("6", time_added=1_700_000_000), Item("7", time_added=1_700_000_000)])
        store.upsert([item.replace(status=1, tags=("a",)) for item in store.items()[:3]])
        store.delete(["4"])
        assert store.stored_in_order()


def test_a_store_that_lies_about_its_order_is_caught_and_the_plan_is_the_sorted_one(
    tmp_path: Path,
) -> None:
    """Another program appends an old item behind rulebot's back: the mark
    stays, the read catches the row out of place, and the plan is made
    again, sorted: the same plan as from a store that never had the mark."""
    config = tmp_path / "rules.yaml"
    config.write_text(RULES)
    plans = {}
    for name in ("lied-to", "never-marked"):
        path = tmp_path / f"{name}.db"
        with Store.open(path) as store:
            store.insert_new(
                Item(str(n), given_url=f"https://a.example/{n}", tags=("news",), time_added=10 * n)
                for n in range(1, 2000)
            )
        conn = sqlite3.connect(path)
        conn.execute(
            "INSERT INTO items (item_id, given_url, time_added) VALUES ('5000', 'https://z', 1)"
        )
        conn.execute("INSERT INTO item_tags VALUES ('5000', 'news', 0)")
        if name == "never-marked":
            conn.execute("DELETE FROM meta WHERE key = ?", (MARK,))
        conn.commit()
        conn.close()
        with Store.open(path) as store:
            assert store.stored_in_order() is (name == "lied-to")
            if name == "lied-to":
                with pytest.raises(OutOfOrder):
                    read_all(store)
        plan = subprocess.run(
            [*RULEBOT, "-c", str(config), "--store", str(path), *PLAN],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        plans[name] = [(a["rule"], a["send"]) for a in json.loads(plan)["actions"]]
        with Store.open(path) as store:
            assert not store.stored_in_order()  # found out: sorted from now on
    assert plans["lied-to"] == plans["never-marked"]
    assert plans["lied-to"][:2] == [
        (
            "first-two",
            {"action": "archive", "item_id": "5000", "time": plans["lied-to"][0][1]["time"]},
        ),
        (
            "first-two",
            {"action": "archive", "item_id": "1", "time": plans["lied-to"][0][1]["time"]},
        ),
    ]


def test_a_first_bulk_insert_builds_the_url_indexes_after_and_they_are_the_schemas(
    tmp_path: Path,
) -> None:
    """A first import of many items drops the items' indexes and builds them
    again once the rows are in: the same indexes, by the same SQL, used."""
    fresh = Store.open(tmp_path / "fresh.db")
    fresh.close()
    with Store.open(tmp_path / "bulk.db") as store:
        store.insert_new(
            Item(str(n), given_url=f"https://u.example/{n % 977}/{n}", time_added=n)
            for n in range(1, 6001)
        )
        assert store.find_by_url("https://u.example/5/5867") == store.get("5867")
    indexes = "SELECT name, sql FROM sqlite_master WHERE type = 'index' ORDER BY name"
    expected = sqlite3.connect(tmp_path / "fresh.db").execute(indexes).fetchall()
    conn = sqlite3.connect(tmp_path / "bulk.db")
    assert conn.execute(indexes).fetchall() == expected
    plan = conn.execute(
        "EXPLAIN QUERY PLAN SELECT item_id FROM items WHERE given_url = 'https://x'"
    ).fetchall()
    assert "items_given_url" in str(plan)


@given(st.lists(st.tuples(ids, st.one_of(st.none(), st.integers(0, 3))), max_size=40))
def test_oldest_first_sorts_as_the_sort_key_does(pairs: list[tuple[str, int | None]]) -> None:
    """By time alone, then runs that share a second by the whole key."""
    library = [Item(item_id, time_added=added) for item_id, added in pairs]
    sorted_here = list(library)
    oldest_first(sorted_here)
    assert sorted_here == sorted(library, key=lambda item: item.sort_key)


def test_an_item_out_of_order_is_named_with_its_id_escaped() -> None:
    """The message goes to a log line; the ids come from whatever wrote the store."""
    with pytest.raises(OutOfOrder) as caught:
        in_order([Item("\x1b[31m9", time_added=5)], Item("8\n", time_added=9))
    assert "\x1b" not in str(caught.value) and "\n" not in str(caught.value)
    assert "9" in str(caught.value) and "8" in str(caught.value)


@given(
    st.lists(st.tuples(st.sampled_from(["1", "2", "10", "a", "b"]), st.integers(0, 1)), max_size=8),
    st.integers(1, 4),
)
@example([("b", 0), ("a", 0)], 1)  # a tie across a chunk's edge, in the wrong order
def test_in_order_agrees_with_the_sort_key_over_any_chunking(
    pairs: list[tuple[str, int]], size: int
) -> None:
    """Checked a chunk at a time (as a plan reads, ``last`` carried over), a
    sequence passes exactly when it is in ``Item.sort_key`` order; ties across
    a chunk's edge included (found by mutating the check: kept as a test)."""
    items = [Item(item_id, time_added=added or None) for item_id, added in pairs]
    keys = [item.sort_key for item in items]
    ordered = all(one <= two for one, two in itertools.pairwise(keys))
    last: Item | None = None
    try:
        for start in range(0, len(items), size):
            last = in_order(items[start : start + size], last)
    except OutOfOrder:
        assert not ordered
    else:
        assert ordered
        assert last is (items[-1] if items else None)
