"""The ``items`` and ``item_tags`` tables' rows: an ``Item`` as a row and
back, and the SQL that names their columns (rulebot.library.store reads and
writes items with these). Written for speed: a large library's reads and
imports spend most of their time here.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from operator import itemgetter
from typing import Any, cast

from rulebot.library.item import _FIELD_NAMES, NO_EXTRA, Item, _Filling

# Column order of ``items`` as read and written below; it follows Item's fields.
ITEM_COLUMNS = (
    "item_id, given_url, resolved_url, given_title, resolved_title, status, favorite,"
    " tags_known, time_added, time_updated, time_read, time_favorited, word_count,"
    " time_to_read, lang, is_article, has_image, has_video, excerpt, extra"
)
UPSERT_ITEM = (
    f"INSERT INTO items ({ITEM_COLUMNS}) VALUES ({', '.join('?' * 20)})"
    " ON CONFLICT(item_id) DO UPDATE SET "
    + ", ".join(f"{c.strip()} = excluded.{c.strip()}" for c in ITEM_COLUMNS.split(",")[1:])
)

# Item.sort_key in SQL: time_added (unknown first), then a digits-only id by
# its number (no leading zeros: shorter is smaller, then text order), any
# other id as 0, then the id itself
_DIGITS = "item_id <> '' AND item_id NOT GLOB '*[^0-9]*'"
SQL_ORDER = (
    f"coalesce(time_added, 0), CASE WHEN {_DIGITS} THEN length(ltrim(item_id, '0')) ELSE 0 END,"
    f" CASE WHEN {_DIGITS} THEN ltrim(item_id, '0') ELSE '' END, item_id"
)

# an aggregate (json_group_array) takes ORDER BY from SQLite 3.44; before, the rows come in the
# primary key's order (item_id, position), which a test holds it to
IN_POSITION = " ORDER BY position" if sqlite3.sqlite_version_info >= (3, 44) else ""

INSERT_ITEM = f"INSERT INTO items ({ITEM_COLUMNS}) VALUES ({', '.join('?' * 20)})"


def item_to_row(item: Item) -> tuple[Any, ...]:
    return (
        item.item_id,
        item.given_url,
        item.resolved_url,
        item.given_title,
        item.resolved_title,
        item.status,
        None if item.favorite is None else int(item.favorite),
        0 if item.tags is None else 1,
        item.time_added,
        item.time_updated,
        item.time_read,
        item.time_favorited,
        item.word_count,
        item.time_to_read,
        item.lang,
        None if item.is_article is None else int(item.is_article),
        item.has_image,
        item.has_video,
        item.excerpt,
        # extra is kept as JSON so fields we don't model survive a round trip.
        json.dumps(dict(item.extra), sort_keys=True) if item.extra else None,
    )


_PLAIN_COLUMNS = (
    "item_id, given_url, given_title, status, favorite, tags_known, time_added, time_updated"
)
INSERT_PLAIN = f"INSERT INTO items ({_PLAIN_COLUMNS}) VALUES ({', '.join('?' * 8)})"


def is_plain(item: Item) -> bool:
    """Whether every column ``INSERT_PLAIN`` leaves out would get its default."""
    return (
        not item.resolved_url
        and not item.resolved_title
        and item.time_read is None
        and item.time_favorited is None
        and item.word_count is None
        and item.time_to_read is None
        and item.lang is None
        and item.is_article is None
        and item.has_image is None
        and item.has_video is None
        and not item.excerpt
        and not item.extra
    )


def plain_rows(items: Iterable[Item], rest: list[Item]) -> Iterator[tuple[Any, ...]]:
    """``INSERT_PLAIN``'s rows of the plain items (``is_plain``), made as
    they are written; the other items go to ``rest``. The test is written
    out, not called: 0.27 µs a row against 0.34 µs calling ``is_plain`` and
    a row function for each (benchmarks/bench_items.py)."""
    for i in items:
        if (
            not i.resolved_url
            and not i.resolved_title
            and i.time_read is None
            and i.time_favorited is None
            and i.word_count is None
            and i.time_to_read is None
            and i.lang is None
            and i.is_article is None
            and i.has_image is None
            and i.has_video is None
            and not i.excerpt
            and not i.extra
        ):
            yield (
                i.item_id,
                i.given_url,
                i.given_title,
                i.status,
                None if i.favorite is None else int(i.favorite),
                0 if i.tags is None else 1,
                i.time_added,
                i.time_updated,
            )
        else:
            rest.append(i)


def insert_tags(conn: sqlite3.Connection, items: list[Item]) -> None:
    _write_tags(conn, ((item.item_id, item.tags) for item in items if item.tags))


def _write_tags(conn: sqlite3.Connection, tagged: Iterable[tuple[str, Sequence[str]]]) -> None:
    """Each (item id, tags) pair's rows, in the table's key order: appended
    to its B-tree rather than each row put in a random place (items come
    oldest first, their ids in no order)."""
    conn.executemany(
        "INSERT INTO item_tags VALUES (?, ?, ?)",
        (
            (item_id, tag, position)
            for item_id, tags in sorted(tagged, key=itemgetter(0))
            for position, tag in enumerate(tags)
        ),
    )


def export_plain_rows(rows: Iterable[Sequence[Any]]) -> Iterator[tuple[Any, ...]]:
    """``INSERT_PLAIN``'s rows of an export's rows (``export_reader.ExportRow``:
    id, url, title, time_added with 0 for never, tags, status), equal to
    ``plain_rows`` of their items (``export_reader.export_item``): favourite
    unknown, tags known, ``time_updated = time_added``."""
    for item_id, url, title, added, _, status in rows:
        yield (item_id, url, title, status, None, 1, added or None, added or None)


def insert_export_tags(conn: sqlite3.Connection, rows: Iterable[Sequence[Any]]) -> None:
    """``insert_tags`` for an export's rows (the id first, the tags fifth)."""
    _write_tags(conn, ((row[0], row[4]) for row in rows if row[4]))


# What each of an Item's slots is made of, from a row of ITEM_COLUMNS (and,
# for iter_items, its tags as a JSON array after them): ``_reader`` below.
_ROW = (
    "item_id, given_url, resolved_url, given_title, resolved_title, status, favorite,"
    " known, time_added, time_updated, time_read, time_favorited, word_count,"
    " time_to_read, lang, is_article, has_image, has_video, excerpt, extra"
)
_SLOTS = {
    "favorite": "None if favorite is None else favorite == 1",
    "tags": "{tags} if known else None",
    "is_article": "None if is_article is None else is_article == 1",
    "extra": "_loads(extra) if extra else _NO_EXTRA",
}


def _reader(
    tags_column: bool,
) -> Callable[[Iterable[Sequence[Any]], Mapping[str, Any]], list[Item]]:
    """``rows_to_items``, generated: each ``Item`` filled slot by slot as a
    ``_Filling`` (as ``Item.__init__`` does) inside the loop, without a call
    per row (20 arguments passed per row were half of reading an item:
    ``benchmarks/bench_items.py``). ``tags_column``: the rows carry their
    tags as a JSON array after the columns, and ``tags`` parses one."""
    tags = "tags[raw_tags]" if tags_column else "get_tags(item_id, ())"
    fill = "".join(
        f"        item.{name} = {_SLOTS.get(name, name).format(tags=tags)}\n"
        for name in _FIELD_NAMES
    )
    source = (
        "def rows_to_items(rows, tags):\n"
        "    get_tags, items = tags.get, []\n"
        "    append = items.append\n"
        f"    for {_ROW}{', raw_tags' if tags_column else ''} in rows:\n"
        "        item = _new(_Filling)\n"
        f"{fill}"
        "        item.__class__ = _Item\n"
        "        append(item)\n"
        "    return items\n"
    )
    names = {
        "_new": object.__new__,
        "_Filling": _Filling,
        "_Item": Item,
        "_loads": json.loads,
        "_NO_EXTRA": NO_EXTRA,
    }
    exec(compile(source, "<rows_to_items>", "exec"), names)
    return cast(
        Callable[[Iterable[Sequence[Any]], Mapping[str, Any]], list[Item]], names["rows_to_items"]
    )


rows_to_items = _reader(tags_column=False)
"""Items of rows of ``ITEM_COLUMNS``; ``tags``: item id -> its tags (none
when absent)."""
tagged_rows_to_items = _reader(tags_column=True)
"""Items of rows of ``ITEM_COLUMNS`` and then the tags as a JSON array;
``tags``: that JSON -> the tags (``Store.iter_items``' parsed lists)."""


BULK_INDEXING = 5_000  # new items into an empty table from which indexes are built after


@contextlib.contextmanager
def indexes_after(conn: sqlite3.Connection, count: int) -> Iterator[None]:
    """Many items into an empty table (a first import): its URL indexes are
    dropped and built again once the rows are in, inside the caller's
    transaction. Rows go in oldest first (``item_order``), so their URLs come
    in no order: one index entry at a time in a random place took 0.9 s per
    100k rows, building the index from the rows takes 0.06 s."""
    if count < BULK_INDEXING or conn.execute("SELECT 1 FROM items LIMIT 1").fetchone():
        yield
        return
    made = conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'items'"
        " AND sql IS NOT NULL"
    ).fetchall()
    for name, _ in made:
        conn.execute(f'DROP INDEX "{name}"')
    yield
    for _, sql in made:
        conn.execute(sql)
