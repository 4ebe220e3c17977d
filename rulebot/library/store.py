"""The SQLite store: the local library (or the mirror of a Pocket server),
key/value meta (sync cursor, source kind), schedule state and the run journal.

One file, WAL mode, schema versioned with ``PRAGMA user_version`` and a list
of forward migrations (rulebot.library.schema). Every write goes through
``transaction()`` (``BEGIN IMMEDIATE``), so a crash leaves either the old or
the new state. Methods that take ``conn=None`` join a caller's
``transaction()`` when given its connection, and otherwise run in their own.
The journal's methods live in rulebot.library.journal, the items' rows in
rulebot.library.item_rows. docs/store.md describes the tables for people who
open the file with sqlite3 or Datasette.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Container, Generator, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rulebot.bulk import gc_paused
from rulebot.errors import StoreError
from rulebot.files import PRIVATE_FILE_MODE, make_private_dir
from rulebot.library import item_order
from rulebot.library.item import DELETED, HIDDEN, Item
from rulebot.library.item_rows import (
    IN_POSITION,
    INSERT_ITEM,
    INSERT_PLAIN,
    ITEM_COLUMNS,
    SQL_ORDER,
    UPSERT_ITEM,
    export_plain_rows,
    indexes_after,
    insert_export_tags,
    insert_tags,
    item_to_row,
    plain_rows,
    rows_to_items,
    tagged_rows_to_items,
)
from rulebot.library.journal import Journal
from rulebot.library.schema import APPLICATION_ID, MIGRATIONS, RULEBOT_TABLES, SCHEMA_VERSION
from rulebot.library.store_lock import StoreLock
from rulebot.library.tagcase import loose_tag

if TYPE_CHECKING:  # the reader (csv, zipfile, html.parser) is loaded by imports alone
    from rulebot.library.export_reader import ExportRow


class Store(Journal, StoreLock):
    """A rulebot store in one SQLite file. Create with ``Store.open(path)``.

    Its items, meta, schedule state and lock are here; its run journal
    (``journal_*``, ``grace_marks``) is mixed in from rulebot.library.journal."""

    def __init__(self, path: Path, conn: sqlite3.Connection) -> None:
        self.path = path
        self.lock_path = path.with_name(path.name + ".lock")
        self._conn = conn
        self._lock_fd: int | None = None

    # -- opening -----------------------------------------------------------
    @classmethod
    def open(cls, path: str | Path) -> Store:
        db_path = Path(path).expanduser().absolute()
        try:
            # The journal is private data: the directory 0700, the file 0600
            # (SQLite gives -wal and -shm the database file's mode).
            make_private_dir(db_path.parent)
            with contextlib.suppress(FileExistsError):
                os.close(os.open(db_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE))
        except OSError as exc:
            raise StoreError(f"cannot create store {db_path}: {exc.strerror or exc}") from exc
        try:
            # isolation_level=None: we issue BEGIN/COMMIT ourselves.
            conn = sqlite3.connect(db_path, isolation_level=None, timeout=5.0)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open store {db_path}: {exc}") from exc
        store = cls(db_path, conn)
        try:
            store._setup()
        except sqlite3.DatabaseError as exc:
            conn.close()
            if "not a database" in str(exc) or "malformed" in str(exc):
                raise StoreError(
                    f"{db_path} is not a rulebot store (not an SQLite database); "
                    "point --store at another file or move this one away"
                ) from exc
            raise StoreError(f"cannot open store {db_path}: {exc}") from exc
        except BaseException:
            conn.close()
            raise
        return store

    def _setup(self) -> None:
        self._check_identity()  # before anything is written: WAL mode is a write
        mode = self._conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StoreError(f"store {self.path}: cannot switch to WAL mode (got {mode!r})")
        # FULL: a commit that returned is on disk, so the run journal survives
        # power loss too; we commit rarely, so the extra fsync costs little.
        self._conn.execute("PRAGMA synchronous=FULL")
        self._migrate()

    def _check_identity(self) -> None:
        """Refuse a database that is not a rulebot store (or is damaged)."""
        version = self.schema_version()
        if version < 0:
            raise StoreError(
                f"store {self.path} has schema version {version}, which no rulebot writes: "
                "the file is damaged or belongs to another program; restore it from a "
                "backup, or move it away and import (or sync) again"
            )
        app_id = int(self._conn.execute("PRAGMA application_id").fetchone()[0])
        if app_id == APPLICATION_ID:
            return
        tables = sorted(
            str(name)
            for (name,) in self._conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        )
        if app_id == 0 and (not tables if version == 0 else set(tables) >= RULEBOT_TABLES):
            return  # a new, empty database, or a store from before application_id
        shown = ", ".join(tables[:5]) + (f", … ({len(tables)} in all)" if len(tables) > 5 else "")
        raise StoreError(
            f"{self.path} is another program's SQLite database (tables: {shown or 'none'}), "
            "not a rulebot store; rulebot leaves it untouched. Point --store (or `store:` "
            "in the config) at a file of its own, e.g. .rulebot/rulebot.db"
        )

    def _migrate(self) -> None:
        version = self.schema_version()
        if version > SCHEMA_VERSION:
            raise StoreError(self._newer_message(version))
        if version == SCHEMA_VERSION:
            if int(self._conn.execute("PRAGMA application_id").fetchone()[0]) == 0:
                self._conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            return
        with self.transaction() as conn:
            # Re-read under the write lock: another process may have migrated.
            version = self.schema_version()
            if version > SCHEMA_VERSION:
                raise StoreError(self._newer_message(version))
            for target in range(version + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS[target - 1]:
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {target}")
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")

    def _newer_message(self, version: int) -> str:
        return (
            f"store {self.path} has schema version {version}, written by a newer rulebot "
            f"(this one knows versions up to {SCHEMA_VERSION}); upgrade rulebot to use it"
        )

    def schema_version(self) -> int:
        return int(self._conn.execute("PRAGMA user_version").fetchone()[0])

    def close(self) -> None:
        self._release_lock()
        self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- transactions -------------------------------------------------------
    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` … ``COMMIT``, ``ROLLBACK`` on any exception.

        Nested calls join the outer transaction (the outer one commits).
        SQLite failures become ``StoreError``; other exceptions pass through
        after the rollback.
        """
        conn = self._conn
        if conn.in_transaction:
            yield conn
            return
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot write to store {self.path}: {exc}") from exc
        try:
            yield conn
        except sqlite3.Error as exc:
            conn.rollback()
            raise StoreError(f"writing to store {self.path} failed: {exc}") from exc
        except BaseException:
            conn.rollback()
            raise
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            conn.rollback()
            raise StoreError(f"cannot commit to store {self.path}: {exc}") from exc

    @contextlib.contextmanager
    def _snapshot(self) -> Iterator[None]:
        """A read transaction, so reads spanning two tables see one state
        even while another process commits (WAL keeps our snapshot)."""
        try:
            if self._conn.in_transaction:
                yield
                return
            self._conn.execute("BEGIN")
            try:
                yield
            finally:
                self._conn.execute("COMMIT")
        except (sqlite3.DatabaseError, ValueError) as exc:
            # malformed pages, text that is not UTF-8, a broken JSON column
            raise self.damaged(exc) from exc

    def damaged(self, exc: Exception) -> StoreError:
        return StoreError(
            f"store {self.path} cannot be read ({type(exc).__name__}: {str(exc)[:200]}); "
            "the file is damaged: restore it from a backup, or move it away and "
            "import (or sync) again"
        )

    @contextlib.contextmanager
    def _writing(self, conn: sqlite3.Connection | None) -> Iterator[sqlite3.Connection]:
        if conn is not None:
            yield conn
        else:
            with self.transaction() as own:
                yield own

    # -- items ----------------------------------------------------------------
    def items(self, include_deleted: bool = False) -> list[Item]:
        """All items (live only unless ``include_deleted``) by ``Item.sort_key``."""
        where = "" if include_deleted else f" WHERE status NOT IN ({DELETED}, {HIDDEN})"
        with self._snapshot(), gc_paused():
            tags = self._tags_by_item()
            rows = self._conn.execute(f"SELECT {ITEM_COLUMNS} FROM items{where}")
            items = rows_to_items(rows, tags)
            items.sort(key=_sort_key)
        return items

    def iter_items(self, chunk: int = 1000) -> Generator[list[Item], None, None]:
        """The live items in ``Item.sort_key`` order, ``chunk`` at a time, all
        read in one snapshot: a pass over the library that never holds all of
        it (the planner's one-pass path).

        Items stored in that order (``item_order``) are read as stored, each
        checked against the one before: ``item_order.OutOfOrder`` when one is
        not (the caller calls ``forget_order`` and reads again, sorted).
        Otherwise SQL sorts them, which only holds for ids of ASCII
        characters; ``sql_orderable`` says whether they all are."""
        with self._snapshot():
            stored = item_order.state(self._conn) is not None
            # each row brings its tags as a JSON array (one indexed lookup in
            # SQLite; any character may be in a tag, and JSON quotes them all)
            cursor = self._conn.execute(
                f"SELECT {ITEM_COLUMNS}, (SELECT json_group_array(tag{IN_POSITION})"
                " FROM item_tags t WHERE t.item_id = items.item_id) FROM items"
                f" WHERE status NOT IN ({DELETED}, {HIDDEN})"
                + ("" if stored else f" ORDER BY {SQL_ORDER}")
            )
            parsed = _TagLists()
            last: Item | None = None
            with self._page_cache(PASS_CACHE_KIB):
                while rows := cursor.fetchmany(chunk):
                    if len(parsed) > _TAG_LISTS_KEPT:  # items each tagged their own way
                        parsed.clear()
                    with gc_paused():
                        items = tagged_rows_to_items(rows, parsed)
                    if stored:
                        last = item_order.in_order(items, last)
                    yield items

    @contextlib.contextmanager
    def _page_cache(self, kib: int) -> Iterator[None]:
        """SQLite's page cache at ``kib`` (at least) for a while, then as it was."""
        before = int(self._conn.execute("PRAGMA cache_size").fetchone()[0])
        if -before >= kib:  # already as large (a negative size is in KiB)
            yield
            return
        self._conn.execute(f"PRAGMA cache_size = -{int(kib)}")
        try:
            yield
        finally:
            self._conn.execute(f"PRAGMA cache_size = {before}")

    def get_many(self, item_ids: Iterable[str], include_deleted: bool = False) -> dict[str, Item]:
        """The live items among ``item_ids`` (all of them with
        ``include_deleted``), read in one snapshot."""
        wanted = list(dict.fromkeys(item_ids))
        found: dict[str, Item] = {}
        live = "" if include_deleted else f"status NOT IN ({DELETED}, {HIDDEN}) AND "
        with self._snapshot():
            for start in range(0, len(wanted), 900):  # under SQLite's variable limit
                part = wanted[start : start + 900]
                rows = self._conn.execute(
                    f"SELECT {ITEM_COLUMNS} FROM items WHERE {live}"
                    f"item_id IN ({','.join('?' * len(part))})",
                    part,
                ).fetchall()
                tags = self._tags_of([row[0] for row in rows])
                found.update((i.item_id, i) for i in rows_to_items(rows, tags))
        return found

    def known_ids(self, item_ids: Iterable[str]) -> set[str]:
        """Which of ``item_ids`` the store has a row for, live or not."""
        wanted = list(dict.fromkeys(item_ids))
        known: set[str] = set()
        with self._snapshot():
            for start in range(0, len(wanted), 900):  # under SQLite's variable limit
                part = wanted[start : start + 900]
                known.update(
                    row[0]
                    for row in self._conn.execute(
                        f"SELECT item_id FROM items WHERE item_id IN ({','.join('?' * len(part))})",
                        part,
                    )
                )
        return known

    def live_ids(self) -> set[str]:
        """The ids of the live items."""
        with self._snapshot():
            rows = self._conn.execute(
                f"SELECT item_id FROM items WHERE status NOT IN ({DELETED}, {HIDDEN})"
            )
            return {row[0] for row in rows}

    def live_tags(self, skip: Container[str] = ()) -> set[str]:
        """The distinct tags of the live items, leaving out those in ``skip``."""
        with self._snapshot():
            rows = self._conn.execute(
                "SELECT t.item_id, t.tag FROM item_tags t JOIN items i ON i.item_id = t.item_id"
                f" WHERE i.status NOT IN ({DELETED}, {HIDDEN})"
            )
            return {tag for item_id, tag in rows if item_id not in skip}

    def ids_tagged(self, tag: str) -> list[str]:
        """Ids of live items with a tag that folds like ``tag`` by ``loose_tag``:
        full case folding, the ends trimmed and an inner space read as ``-``.
        That joins every pair of tags any source's fold joins (``tagcase``;
        str.lower, ASCII lower-casing and Linkding's ``dashed_lower`` all refine
        it), so these are at least the items an action on ``tag`` can touch:
        what ``screening.touchable`` needs."""
        self._conn.create_function("rb_loose_tag", 1, loose_tag, deterministic=True)
        with self._snapshot():
            rows = self._conn.execute(
                "SELECT DISTINCT t.item_id FROM item_tags t JOIN items i USING (item_id)"
                f" WHERE rb_loose_tag(t.tag) = ? AND i.status NOT IN ({DELETED}, {HIDDEN})",
                (loose_tag(tag),),
            ).fetchall()
        return [row[0] for row in rows]

    def ids_with_url(self, url: str) -> list[str]:
        """Ids of live items saved under ``url`` (given or resolved)."""
        with self._snapshot():
            rows = self._conn.execute(
                "SELECT item_id FROM items WHERE (given_url = ?1"
                " OR (resolved_url = ?1 AND resolved_url <> ''))"
                f" AND status NOT IN ({DELETED}, {HIDDEN})",
                (url,),
            ).fetchall()
        return [row[0] for row in rows]

    def stored_in_order(self) -> bool:
        """Whether ``iter_items`` reads the items as stored (``item_order``)."""
        with self._snapshot():
            return item_order.state(self._conn) is not None

    def sql_orderable(self) -> bool:
        """Whether ``iter_items`` orders exactly like ``Item.sort_key``: every
        id is printable ASCII (Python's ``isdigit`` also takes other digits)."""
        with self._snapshot():
            found = self._conn.execute(
                "SELECT 1 FROM items WHERE item_id GLOB '*[^ -~]*' LIMIT 1"
            ).fetchone()
        return found is None

    def _tags_of(self, item_ids: list[str]) -> dict[str, tuple[str, ...]]:
        grouped: dict[str, list[str]] = {}
        for start in range(0, len(item_ids), 900):  # under SQLite's variable limit
            part = item_ids[start : start + 900]
            for item_id, tag in self._conn.execute(
                f"SELECT item_id, tag FROM item_tags WHERE item_id IN ({','.join('?' * len(part))})"
                " ORDER BY item_id, position",
                part,
            ):
                grouped.setdefault(item_id, []).append(tag)
        return {item_id: tuple(tags) for item_id, tags in grouped.items()}

    def get(self, item_id: str) -> Item | None:
        with self._snapshot():
            row = self._conn.execute(
                f"SELECT {ITEM_COLUMNS} FROM items WHERE item_id = ?", (item_id,)
            ).fetchone()
            return None if row is None else self._with_tags(row)

    def find_by_url(self, url: str) -> Item | None:
        """The item saved under ``url`` (given or resolved); live items first."""
        with self._snapshot():
            row = self._conn.execute(
                f"SELECT {ITEM_COLUMNS} FROM items"
                " WHERE given_url = ?1 OR (resolved_url = ?1 AND resolved_url <> '')"
                f" ORDER BY status IN ({DELETED}, {HIDDEN}), coalesce(time_added, 0),"
                " length(item_id), item_id LIMIT 1",
                (url,),
            ).fetchone()
            return None if row is None else self._with_tags(row)

    def count(self, include_deleted: bool = False) -> int:
        where = "" if include_deleted else f" WHERE status NOT IN ({DELETED}, {HIDDEN})"
        with self._snapshot():
            return int(self._conn.execute(f"SELECT count(*) FROM items{where}").fetchone()[0])

    def is_empty(self) -> bool:
        """No live item: ``count() == 0`` without reading every row (a plan
        asks before it starts, and ``count`` scans the table)."""
        found = self._conn.execute(
            f"SELECT 1 FROM items WHERE status NOT IN ({DELETED}, {HIDDEN}) LIMIT 1"
        ).fetchone()
        return found is None

    def upsert(self, items: Iterable[Item], conn: sqlite3.Connection | None = None) -> int:
        """Insert or replace items (tags included) in one transaction."""
        batch = list(items)
        # Generators, not lists of rows: for 100k items the row tuples would
        # otherwise hold ~40 MB at once.
        with self._writing(conn) as c, gc_paused():
            item_order.keep_mark(c, batch, all_new=False)
            c.executemany("DELETE FROM item_tags WHERE item_id = ?", ((i.item_id,) for i in batch))
            c.executemany(UPSERT_ITEM, map(item_to_row, batch))
            insert_tags(c, batch)
        return len(batch)

    def insert_new(self, items: Iterable[Item], conn: sqlite3.Connection | None = None) -> int:
        """Insert items whose ids are not in the store yet (an import's additions).

        Unlike ``upsert`` there is no per-item tag DELETE and no ON CONFLICT
        clause: on a fresh store that DELETE was a B-tree probe per item for
        nothing. An id that does exist fails the transaction (a bug, not data loss).
        """
        batch = list(items)
        with self._writing(conn) as c, gc_paused():
            item_order.keep_mark(c, batch, all_new=True)
            with indexes_after(c, len(batch)):
                # most additions (all of an export's) leave 12 columns at their
                # defaults: naming only the other 8 halves the insert's time
                rest: list[Item] = []
                c.executemany(INSERT_PLAIN, plain_rows(batch, rest))
                if rest:
                    c.executemany(INSERT_ITEM, map(item_to_row, rest))
            insert_tags(c, batch)
        return len(batch)

    def insert_export(self, rows: list[ExportRow], conn: sqlite3.Connection | None = None) -> int:
        """A first import: an export's rows into a store that has no items,
        stored as ``insert_new`` stores their items (``export_item``) but
        without making them: an ``Item`` per row, and checking the order of
        rows this sorts itself, cost a sixth of a 100k-row import. Sorts
        ``rows`` in place, oldest first (``item_order``)."""
        with self._writing(conn) as c, gc_paused():
            if c.execute("SELECT 1 FROM items LIMIT 1").fetchone():
                raise StoreError("insert_export writes into a store with no items only")
            item_order.oldest_rows_first(rows)
            if rows and item_order.state(c) == "empty":  # in order: plans read them as stored
                item_order.set_mark(c, True)
            with indexes_after(c, len(rows)):
                c.executemany(INSERT_PLAIN, export_plain_rows(rows))
            insert_export_tags(c, rows)
        return len(rows)

    @contextlib.contextmanager
    def bulk_load(self) -> Iterator[None]:
        """``synchronous=NORMAL`` for one bulk transaction, FULL again after.

        Safe in WAL mode: NORMAL skips the fsync at each commit only, so a
        power loss can lose the last commit but never corrupts the database;
        the bulk load is one transaction, so it is either wholly in or out.
        """
        if self._conn.in_transaction:  # the pragma cannot change inside one
            yield
            return
        self._conn.execute("PRAGMA synchronous=NORMAL")
        try:
            yield
        finally:
            self._conn.execute("PRAGMA synchronous=FULL")

    def delete(self, item_ids: Iterable[str], conn: sqlite3.Connection | None = None) -> int:
        """Remove items from the store entirely (not Pocket's "deleted" status)."""
        ids = [(item_id,) for item_id in item_ids]
        with self._writing(conn) as c:
            c.executemany("DELETE FROM item_tags WHERE item_id = ?", ids)
            before = c.total_changes
            c.executemany("DELETE FROM items WHERE item_id = ?", ids)
            return c.total_changes - before

    def replace_all(self, items: Iterable[Item], conn: sqlite3.Connection | None = None) -> int:
        """Afterwards the store holds exactly ``items`` (a full sync), stored
        in ``Item.sort_key`` order (``item_order``)."""
        with self._writing(conn) as c:
            c.execute("DELETE FROM item_tags")
            c.execute("DELETE FROM items")
            return self.upsert(sorted(items, key=_sort_key), conn=c)

    def forget_order(self) -> None:
        """The items were found out of order (``item_order.OutOfOrder``): sort from now on."""
        with self.transaction() as c:
            item_order.set_mark(c, False)

    def _tags_by_item(self) -> dict[str, tuple[str, ...]]:
        grouped: dict[str, list[str]] = {}
        for item_id, tag in self._conn.execute(
            "SELECT item_id, tag FROM item_tags ORDER BY item_id, position"
        ):
            if (found := grouped.get(item_id)) is None:
                grouped[item_id] = [tag]
            else:
                found.append(tag)
        return {item_id: tuple(tags) for item_id, tags in grouped.items()}

    def _with_tags(self, row: Sequence[Any]) -> Item:
        tags = tuple(
            tag
            for (tag,) in self._conn.execute(
                "SELECT tag FROM item_tags WHERE item_id = ? ORDER BY position", (row[0],)
            )
        )
        return rows_to_items([row], {row[0]: tags})[0]

    # -- meta and schedule ----------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        with self._snapshot():
            row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str, conn: sqlite3.Connection | None = None) -> None:
        with self._writing(conn) as c:
            c.execute(
                "INSERT INTO meta VALUES (?, ?)"
                " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    def delete_meta(self, key: str, conn: sqlite3.Connection | None = None) -> None:
        with self._writing(conn) as c:
            c.execute("DELETE FROM meta WHERE key = ?", (key,))

    def last_run(self, rule: str) -> int | None:
        with self._snapshot():
            row = self._conn.execute(
                "SELECT last_run FROM schedule WHERE rule = ?", (rule,)
            ).fetchone()
        return None if row is None else int(row[0])

    def set_last_run(self, rule: str, ts: int, conn: sqlite3.Connection | None = None) -> None:
        with self._writing(conn) as c:
            c.execute(
                "INSERT INTO schedule VALUES (?, ?)"
                " ON CONFLICT(rule) DO UPDATE SET last_run = excluded.last_run",
                (rule, ts),
            )


def _sort_key(item: Item) -> tuple[int, int, str]:
    return item.sort_key


_TAG_LISTS_KEPT = 8192  # tag lists a pass keeps parsed: its memory stays flat


# The page cache of a pass over the library (``iter_items``), in KiB. Items
# are stored in the planner's order and their tags by item id, so each row's
# tag lookup lands on a page of the tag table at random: with SQLite's
# default 2 MiB a pass over 100k items read 83,000 pages from the OS (the tag
# table is 8 MiB there), with 16 MiB 5,900, a tenth of the pass's time
# (docs/performance.md). Bounded: past ~200k items the tag table outgrows it
# and the pass costs what it did, in 14 MiB more at most.
PASS_CACHE_KIB = 16_384


class _TagLists(dict[str, tuple[str, ...]]):
    """A JSON array of tags -> its tuple, parsed once: a library repeats a
    few combinations, and sharing one tuple each saves time and memory."""

    def __missing__(self, raw: str) -> tuple[str, ...]:
        found = self[raw] = tuple(json.loads(raw))
        return found
