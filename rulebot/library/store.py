"""The SQLite store: the local library (or the mirror of a Pocket server),
key/value meta (sync cursor, source kind), schedule state and the run journal.

One file, WAL mode, schema versioned with ``PRAGMA user_version`` and a list
of forward migrations. Every write goes through ``transaction()`` (``BEGIN
IMMEDIATE``), so a crash leaves either the old or the new state. Methods that
take ``conn=None`` join a caller's ``transaction()`` when given its
connection, and otherwise run in their own. docs/store.md describes the
tables for people who open the file with sqlite3 or Datasette.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import itertools
import json
import os
import socket
import sqlite3
import time
from collections.abc import Generator, Iterable, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from rulebot.bulk import gc_paused
from rulebot.errors import LockHeldError, StoreError
from rulebot.files import PRIVATE_FILE_MODE, make_private_dir
from rulebot.jsonenc import encoder
from rulebot.library.item import DELETED, HIDDEN, NO_EXTRA, Item

# MIGRATIONS[i] takes a store from schema version i to i + 1. Append only:
# never edit a released entry, add a new one instead.
MIGRATIONS: list[tuple[str, ...]] = [
    (
        """CREATE TABLE items (
            item_id        TEXT PRIMARY KEY,
            given_url      TEXT NOT NULL DEFAULT '',
            resolved_url   TEXT NOT NULL DEFAULT '',
            given_title    TEXT NOT NULL DEFAULT '',
            resolved_title TEXT NOT NULL DEFAULT '',
            status         INTEGER NOT NULL DEFAULT 0,
            favorite       INTEGER NOT NULL DEFAULT 0,
            tags_known     INTEGER NOT NULL DEFAULT 1,
            time_added     INTEGER,
            time_updated   INTEGER,
            time_read      INTEGER,
            time_favorited INTEGER,
            word_count     INTEGER,
            time_to_read   INTEGER,
            lang           TEXT,
            is_article     INTEGER,
            has_image      INTEGER,
            has_video      INTEGER,
            excerpt        TEXT NOT NULL DEFAULT '',
            extra          TEXT
        )""",
        "CREATE INDEX items_given_url ON items(given_url)",
        # Partial: items from an export have no resolved_url, so imports skip it.
        "CREATE INDEX items_resolved_url ON items(resolved_url) WHERE resolved_url <> ''",
        """CREATE TABLE item_tags (
            item_id  TEXT NOT NULL,
            tag      TEXT NOT NULL,
            position INTEGER NOT NULL,
            PRIMARY KEY (item_id, position)
        ) WITHOUT ROWID""",
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        "CREATE TABLE schedule (rule TEXT PRIMARY KEY, last_run INTEGER NOT NULL)",
        """CREATE TABLE runs (
            run_id      INTEGER PRIMARY KEY AUTOINCREMENT,
            kind        TEXT NOT NULL,
            status      TEXT NOT NULL DEFAULT 'running',
            started_at  INTEGER NOT NULL,
            finished_at INTEGER
        )""",
        """CREATE TABLE run_actions (
            run_id     INTEGER NOT NULL REFERENCES runs(run_id),
            idx        INTEGER NOT NULL,
            rule       TEXT,
            send       TEXT NOT NULL,
            action     TEXT NOT NULL,
            state      TEXT NOT NULL DEFAULT 'planned',
            error      TEXT,
            updated_at INTEGER NOT NULL,
            PRIMARY KEY (run_id, idx)
        ) WITHOUT ROWID""",
        "CREATE INDEX run_actions_state ON run_actions(state)",
    ),
    # 1 -> 2: ``favorite`` may be NULL ("unknown"): a Pocket export has no
    # favourite column. SQLite cannot relax NOT NULL in place, so the table is
    # rebuilt (same column order). Then, in a local library (no sync cursor
    # ``since`` in meta: it never mirrored a server), every favorite = 0 came
    # from an import (or, rarely, a local ``unfavorite``/``add``), so it becomes
    # unknown; a mirror's values came from the server and stay.
    (
        """CREATE TABLE items_v2 (
            item_id        TEXT PRIMARY KEY,
            given_url      TEXT NOT NULL DEFAULT '',
            resolved_url   TEXT NOT NULL DEFAULT '',
            given_title    TEXT NOT NULL DEFAULT '',
            resolved_title TEXT NOT NULL DEFAULT '',
            status         INTEGER NOT NULL DEFAULT 0,
            favorite       INTEGER,
            tags_known     INTEGER NOT NULL DEFAULT 1,
            time_added     INTEGER,
            time_updated   INTEGER,
            time_read      INTEGER,
            time_favorited INTEGER,
            word_count     INTEGER,
            time_to_read   INTEGER,
            lang           TEXT,
            is_article     INTEGER,
            has_image      INTEGER,
            has_video      INTEGER,
            excerpt        TEXT NOT NULL DEFAULT '',
            extra          TEXT
        )""",
        "INSERT INTO items_v2 SELECT * FROM items",
        "DROP TABLE items",
        "ALTER TABLE items_v2 RENAME TO items",
        "CREATE INDEX items_given_url ON items(given_url)",
        "CREATE INDEX items_resolved_url ON items(resolved_url) WHERE resolved_url <> ''",
        "UPDATE items SET favorite = NULL WHERE favorite = 0"
        " AND NOT EXISTS (SELECT 1 FROM meta WHERE key = 'since')",
    ),
    # 2 -> 3: what `runs` and `undo` need. A run records the command that made
    # it and the library it changed; each action the item state before it (the
    # undo table). Older rows keep NULL: "unknown", and they cannot be undone.
    (
        "ALTER TABLE runs ADD COLUMN command TEXT",
        "ALTER TABLE runs ADD COLUMN source TEXT",
        "ALTER TABLE run_actions ADD COLUMN before TEXT",
    ),
]
SCHEMA_VERSION = len(MIGRATIONS)
# PRAGMA application_id of a rulebot store ("RBOT"): what tells it from
# another program's SQLite file. Stores from before it was set are known by
# their tables.
APPLICATION_ID = 0x52424F54
RULEBOT_TABLES = frozenset({"items", "item_tags", "meta", "schedule", "runs", "run_actions"})

ACTION_STATES = ("planned", "sent", "confirmed", "failed", "skipped")

# Column order of ``items`` as read and written below; it follows Item's fields.
_ITEM_COLUMNS = (
    "item_id, given_url, resolved_url, given_title, resolved_title, status, favorite,"
    " tags_known, time_added, time_updated, time_read, time_favorited, word_count,"
    " time_to_read, lang, is_article, has_image, has_video, excerpt, extra"
)
_UPSERT_ITEM = (
    f"INSERT INTO items ({_ITEM_COLUMNS}) VALUES ({', '.join('?' * 20)})"
    " ON CONFLICT(item_id) DO UPDATE SET "
    + ", ".join(f"{c.strip()} = excluded.{c.strip()}" for c in _ITEM_COLUMNS.split(",")[1:])
)

# Item.sort_key in SQL: time_added (unknown first), then a digits-only id by
# its number (no leading zeros: shorter is smaller, then text order), any
# other id as 0, then the id itself
_DIGITS = "item_id <> '' AND item_id NOT GLOB '*[^0-9]*'"
_SQL_ORDER = (
    f"coalesce(time_added, 0), CASE WHEN {_DIGITS} THEN length(ltrim(item_id, '0')) ELSE 0 END,"
    f" CASE WHEN {_DIGITS} THEN ltrim(item_id, '0') ELSE '' END, item_id"
)

# group_concat takes ORDER BY from SQLite 3.44; before, the rows come in the
# primary key's order (item_id, position), which a test holds it to
_IN_POSITION = " ORDER BY position" if sqlite3.sqlite_version_info >= (3, 44) else ""

_INSERT_ITEM = f"INSERT INTO items ({_ITEM_COLUMNS}) VALUES ({', '.join('?' * 20)})"


@dataclass(frozen=True, slots=True)
class JournalAction:
    """One action row of the run journal."""

    run_id: int
    index: int
    rule: str | None
    send: dict[str, Any]
    action: dict[str, Any]  # the whole plan action as given to journal_begin
    state: str
    error: str | None
    run_kind: str
    run_started_at: int


class JournalRow(NamedTuple):
    """One action of a run whose outcome is known when it is journaled (a
    local apply: the journal and the items are one transaction)."""

    action: dict[str, Any]  # the whole plan action
    before: dict[str, Any] | None  # what undo restores (None: not done)
    state: str  # confirmed | failed | skipped
    error: str | None
    at: int | None = None  # its index in the plan; None: the row's position


# one encoder for the journal's many small objects (rulebot.jsonenc)
_dumps = encoder(sort_keys=True)


def _journal_state(state: str) -> str:
    if state not in ACTION_STATES:
        raise ValueError(f"journal state {state!r} is not one of {ACTION_STATES}")
    return state


@dataclass(frozen=True, slots=True)
class JournalRun:
    run_id: int
    kind: str
    status: str
    started_at: int
    finished_at: int | None
    states: dict[str, int]  # action count per state
    command: str = "unknown"  # plan/run/apply/undo/daemon; "unknown" before schema 3
    source: dict[str, Any] | None = None  # plan.source; None before schema 3


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One action of a run with the item state before it (None: not recorded).

    ``unreadable`` says why a row cannot be used (its JSON damaged, or not
    the object it should be: another program wrote it); its ``send``,
    ``action`` and ``before`` are then empty objects."""

    index: int
    rule: str | None
    send: dict[str, Any]
    action: dict[str, Any]
    state: str
    before: dict[str, Any] | None
    unreadable: str = ""


def _journal_entry(row: Sequence[Any]) -> JournalEntry:
    index, rule, send_text, action_text, state, before_text = row
    problems = []
    decoded: dict[str, Any] = {}
    columns = (("send", send_text), ("action", action_text), ("before", before_text))
    for column, text in columns:
        if column == "before" and not text:
            decoded[column] = None
            continue
        try:
            value = json.loads(text)
        except (TypeError, ValueError, RecursionError):
            problems.append(f"its {column} is not JSON")
            continue
        if not isinstance(value, dict):
            problems.append(f"its {column} is {_json_kind(value)}, not an object")
            continue
        decoded[column] = value
    if problems:
        return JournalEntry(index, rule, {}, {}, str(state), {}, "; ".join(problems))
    return JournalEntry(
        index, rule, decoded["send"], decoded["action"], str(state), decoded["before"]
    )


def _json_kind(value: Any) -> str:
    kinds = {list: "a list", str: "text", bool: "true/false", type(None): "null"}
    return kinds.get(type(value), "a number")


# the command a run is journaled under: set once by the command line (and the
# daemon), read by journal_begin, so no applier has to pass it along
COMMAND: ContextVar[str] = ContextVar("rulebot_command", default="unknown")


class Store:
    """A rulebot store in one SQLite file. Create with ``Store.open(path)``."""

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

    # -- inter-process lock -------------------------------------------------
    @contextlib.contextmanager
    def lock(self, command: str) -> Iterator[None]:
        """Hold the store exclusively for ``command`` (e.g. ``"run"``).

        ``flock`` on ``<db>.lock``: the kernel releases it when the process
        dies, so a crash never leaves a stale lock. Re-entrant within one
        ``Store`` (an inner ``lock()`` just joins the outer one).
        """
        if self._lock_fd is not None:
            yield
            return
        try:
            # No O_TRUNC: the file names the current holder until we own it.
            # O_NOFOLLOW: a link planted at this name must not let us truncate
            # (and write into) whatever it points to.
            fd = os.open(
                self.lock_path,
                os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
                PRIVATE_FILE_MODE,
            )
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise StoreError(
                    f"lock file {self.lock_path} is a symbolic link; rulebot does not follow "
                    "links there. Remove it (rulebot creates the lock file itself)"
                ) from exc
            raise StoreError(
                f"cannot open lock file {self.lock_path}: {exc.strerror or exc}"
            ) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise LockHeldError(
                f"store {self.path} is in use by {holder}; wait for it to finish"
            ) from None
        except OSError as exc:
            os.close(fd)
            raise StoreError(f"cannot lock {self.lock_path}: {exc}") from exc
        self._lock_fd = fd
        holder_info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "command": command if command.startswith("rulebot") else f"rulebot {command}",
            "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(holder_info) + "\n").encode(), 0)
        except OSError as exc:  # e.g. ENOSPC: the disk is full
            self._release_lock()
            raise StoreError(
                f"cannot write lock file {self.lock_path}: {exc.strerror or exc}"
            ) from exc
        try:
            yield
        finally:
            self._release_lock()

    def _release_lock(self) -> None:
        if self._lock_fd is None:
            return
        fd, self._lock_fd = self._lock_fd, None
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)  # clear the holder before letting go
        os.close(fd)  # closing the last descriptor releases the flock

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
            rows = self._conn.execute(f"SELECT {_ITEM_COLUMNS} FROM items{where}")
            items = _rows_to_items(rows, tags)
            items.sort(key=_sort_key)
        return items

    def iter_items(self, chunk: int = 1000) -> Generator[list[Item], None, None]:
        """The live items in ``Item.sort_key`` order, ``chunk`` at a time, all
        read in one snapshot: a pass over the library that never holds all of
        it (the planner's one-pass path). Order by SQL only holds for ids of
        ASCII characters; ``sql_orderable`` says whether they all are."""
        with self._snapshot():
            # each row brings its tags (one indexed lookup in SQLite, joined
            # by the unit separator) unless a tag holds that character
            joined = not self._conn.execute(
                "SELECT 1 FROM item_tags WHERE instr(tag, char(31)) LIMIT 1"
            ).fetchone()
            tags_column = (
                f", (SELECT group_concat(tag, char(31){_IN_POSITION}) FROM item_tags t"
                " WHERE t.item_id = items.item_id)"
                if joined
                else ""
            )
            cursor = self._conn.execute(
                f"SELECT {_ITEM_COLUMNS}{tags_column} FROM items"
                f" WHERE status NOT IN ({DELETED}, {HIDDEN}) ORDER BY {_SQL_ORDER}"
            )
            split: dict[str, tuple[str, ...]] = {}  # one tuple per distinct tag list
            while rows := cursor.fetchmany(chunk):
                with gc_paused():
                    if joined:
                        tags = {
                            row[0]: split.get(row[-1])
                            or split.setdefault(row[-1], tuple(row[-1].split("\x1f")))
                            for row in rows
                            if row[-1] is not None
                        }
                    else:
                        tags = self._tags_of([row[0] for row in rows])
                    items = _rows_to_items(rows, tags)
                yield items

    def get_many(self, item_ids: Iterable[str]) -> dict[str, Item]:
        """The live items among ``item_ids`` (read in one snapshot)."""
        wanted = list(dict.fromkeys(item_ids))
        found: dict[str, Item] = {}
        with self._snapshot():
            for start in range(0, len(wanted), 900):  # under SQLite's variable limit
                part = wanted[start : start + 900]
                rows = self._conn.execute(
                    f"SELECT {_ITEM_COLUMNS} FROM items WHERE status NOT IN ({DELETED}, {HIDDEN})"
                    f" AND item_id IN ({','.join('?' * len(part))})",
                    part,
                ).fetchall()
                tags = self._tags_of([row[0] for row in rows])
                found.update((i.item_id, i) for i in _rows_to_items(rows, tags))
        return found

    def ids_tagged(self, tag: str) -> list[str]:
        """Ids of live items with a tag that case-folds like ``tag``. Full case
        folding joins every pair of tags any source's fold joins (``tagcase``;
        str.lower and ASCII lower-casing both refine it), so these are at least
        the items an action on ``tag`` can touch: what ``engine.touchable`` needs."""
        self._conn.create_function("rb_casefold", 1, str.casefold, deterministic=True)
        with self._snapshot():
            rows = self._conn.execute(
                "SELECT DISTINCT t.item_id FROM item_tags t JOIN items i USING (item_id)"
                f" WHERE rb_casefold(t.tag) = ? AND i.status NOT IN ({DELETED}, {HIDDEN})",
                (tag.casefold(),),
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
                f"SELECT {_ITEM_COLUMNS} FROM items WHERE item_id = ?", (item_id,)
            ).fetchone()
            return None if row is None else self._with_tags(row)

    def find_by_url(self, url: str) -> Item | None:
        """The item saved under ``url`` (given or resolved); live items first."""
        with self._snapshot():
            row = self._conn.execute(
                f"SELECT {_ITEM_COLUMNS} FROM items"
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

    def upsert(self, items: Iterable[Item], conn: sqlite3.Connection | None = None) -> int:
        """Insert or replace items (tags included) in one transaction."""
        batch = list(items)
        # Generators, not lists of rows: for 100k items the row tuples would
        # otherwise hold ~40 MB at once.
        with self._writing(conn) as c, gc_paused():
            c.executemany("DELETE FROM item_tags WHERE item_id = ?", ((i.item_id,) for i in batch))
            c.executemany(_UPSERT_ITEM, map(_item_to_row, batch))
            _insert_tags(c, batch)
        return len(batch)

    def insert_new(self, items: Iterable[Item], conn: sqlite3.Connection | None = None) -> int:
        """Insert items whose ids are not in the store yet (an import's additions).

        Unlike ``upsert`` there is no per-item tag DELETE and no ON CONFLICT
        clause: on a fresh store that DELETE was a B-tree probe per item for
        nothing. An id that does exist fails the transaction (a bug, not data loss).
        """
        batch = list(items)
        with self._writing(conn) as c, gc_paused():
            # most additions (all of an export's) leave 12 columns at their
            # defaults: naming only the other 8 halves the insert's time
            plain = [item for item in batch if _plain(item)]
            c.executemany(_INSERT_PLAIN, map(_plain_row, plain))
            if len(plain) < len(batch):
                c.executemany(_INSERT_ITEM, map(_item_to_row, (i for i in batch if not _plain(i))))
            _insert_tags(c, batch)
        return len(batch)

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
        """Afterwards the store holds exactly ``items`` (a full sync)."""
        with self._writing(conn) as c:
            c.execute("DELETE FROM item_tags")
            c.execute("DELETE FROM items")
            return self.upsert(items, conn=c)

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
        return _rows_to_items([row], {row[0]: tags})[0]

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

    # -- run journal ----------------------------------------------------------
    def journal_begin(
        self,
        kind: str,
        actions: list[dict[str, Any]],
        conn: sqlite3.Connection | None = None,
        *,
        source: dict[str, Any] | None = None,
        before: Sequence[dict[str, Any] | None] | None = None,
    ) -> int:
        """Record a run and its planned actions; returns the run id.

        Each action is a plan action (``{"rule", "send", ...}``); a dict
        without ``send`` is taken to be the send object itself. ``before[i]``
        is the item state before action i (``rulebot.run.lifecycle.before_states``):
        what ``undo`` restores.
        """
        states = before if before is not None else itertools.repeat(None)
        rows = (JournalRow(a, s, "planned", None) for a, s in zip(actions, states, strict=False))
        with self._writing(conn) as c:
            return self.journal_record(kind, rows, c, source=source)

    def journal_record(
        self,
        kind: str,
        rows: Iterable[JournalRow],
        conn: sqlite3.Connection,
        *,
        source: dict[str, Any] | None = None,
    ) -> int:
        """Record a run whose actions' outcomes are already known, each row as
        it comes (``rows`` may be a generator doing the work); the run id.
        Call ``journal_finish`` after, in the same transaction."""
        now = int(time.time())
        cursor = conn.execute(
            "INSERT INTO runs (kind, status, started_at, command, source)"
            " VALUES (?, 'running', ?, ?, ?)",
            (kind, now, COMMAND.get(), json.dumps(source, sort_keys=True) if source else None),
        )
        run_id = int(cursor.lastrowid or 0)
        conn.executemany(
            "INSERT INTO run_actions (run_id, idx, rule, send, action, state, error, updated_at,"
            " before) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                (
                    run_id,
                    position if row.at is None else row.at,
                    row.action.get("rule"),
                    _dumps(row.action.get("send", row.action)),
                    _dumps(row.action),
                    _journal_state(row.state),
                    row.error,
                    now,
                    None if row.before is None else _dumps(row.before),
                )
                for position, row in enumerate(rows)
            ),
        )
        return run_id

    def journal_mark(
        self,
        run_id: int,
        indexes: list[int],
        state: str,
        error: str | None = None,
        conn: sqlite3.Connection | None = None,
    ) -> None:
        state = _journal_state(state)
        now = int(time.time())
        with self._writing(conn) as c:
            before = c.total_changes
            c.executemany(
                "UPDATE run_actions SET state = ?, error = ?, updated_at = ?"
                " WHERE run_id = ? AND idx = ?",
                ((state, error, now, run_id, index) for index in indexes),
            )
            if c.total_changes - before != len(set(indexes)):
                raise StoreError(
                    f"store {self.path}: run {run_id} has no action at some of {indexes}"
                )

    def journal_note(
        self,
        run_id: int,
        index: int,
        key: str,
        value: Any,
        conn: sqlite3.Connection | None = None,
    ) -> None:
        """Add ``key`` to what action ``index`` journaled for ``undo`` (its
        ``before``), learnt from the service's answer: the item an ``add``
        created, the tags a service created."""
        with self._writing(conn) as c:
            c.execute(
                "UPDATE run_actions SET before = json_set(coalesce(before, '{}'), ?, json(?))"
                " WHERE run_id = ? AND idx = ?",
                (f'$."{key}"', _dumps(value), run_id, index),
            )

    def journal_finish(
        self, run_id: int, status: str, conn: sqlite3.Connection | None = None
    ) -> None:
        with self._writing(conn) as c:
            c.execute(
                "UPDATE runs SET status = ?, finished_at = ? WHERE run_id = ?",
                (status, int(time.time()), run_id),
            )

    def journal_pending(self) -> list[JournalAction]:
        """Actions of unfinished runs that were sent but never confirmed or
        failed: after a crash their outcome is unknown and must be checked."""
        with self._snapshot():
            rows = self._conn.execute(
                "SELECT a.run_id, a.idx, a.rule, a.send, a.action, a.state, a.error,"
                " r.kind, r.started_at FROM run_actions a JOIN runs r USING (run_id)"
                " WHERE r.finished_at IS NULL AND a.state = 'sent' ORDER BY a.run_id, a.idx"
            ).fetchall()
            return [
                JournalAction(
                    run_id=row[0],
                    index=row[1],
                    rule=row[2],
                    send=json.loads(row[3]),
                    action=json.loads(row[4]),
                    state=row[5],
                    error=row[6],
                    run_kind=row[7],
                    run_started_at=row[8],
                )
                for row in rows
            ]

    def journal_runs(self, limit: int = 20) -> list[JournalRun]:
        """The most recent runs, newest first, with action counts per state."""
        with self._snapshot():
            runs = self._conn.execute(
                "SELECT run_id, kind, status, started_at, finished_at, command, source FROM runs"
                " ORDER BY run_id DESC LIMIT ?",
                (limit,),
            ).fetchall()
            return [self._journal_run(row) for row in runs]

    def journal_run(self, run_id: int) -> JournalRun | None:
        with self._snapshot():
            row = self._conn.execute(
                "SELECT run_id, kind, status, started_at, finished_at, command, source FROM runs"
                " WHERE run_id = ?",
                (run_id,),
            ).fetchone()
            return None if row is None else self._journal_run(row)

    def _journal_run(self, row: Sequence[Any]) -> JournalRun:
        run_id, kind, status, started_at, finished_at, command, source = row
        states = dict(
            self._conn.execute(
                "SELECT state, count(*) FROM run_actions WHERE run_id = ?"
                " GROUP BY state ORDER BY state",
                (run_id,),
            ).fetchall()
        )
        return JournalRun(
            run_id,
            kind,
            status,
            started_at,
            finished_at,
            states,
            command or "unknown",
            json.loads(source) if source else None,
        )

    def journal_entries(self, run_id: int) -> list[JournalEntry]:
        """Every action of a run, in plan order, with its before-state; a row
        that cannot be read is marked so (``JournalEntry.unreadable``)."""
        with self._snapshot():
            rows = self._conn.execute(
                "SELECT idx, rule, send, action, state, before FROM run_actions"
                " WHERE run_id = ? ORDER BY idx",
                (run_id,),
            ).fetchall()
            return [_journal_entry(row) for row in rows]

    def journal_done_since(self, rule: str, since: int) -> list[tuple[str | None, str]]:
        """(item_id, action) of every action of ``rule`` planned at or after
        ``since`` (the plan's clock) that landed or may have landed: confirmed,
        or sent by a run that crashed before it heard back. What a rule's
        ``limit`` and ``max_deletes`` count per schedule period."""
        with self._snapshot():
            rows = self._conn.execute(
                "SELECT json_extract(send, '$.item_id'), json_extract(send, '$.action')"
                " FROM run_actions WHERE rule = ? AND state IN ('confirmed', 'sent')"
                " AND json_extract(send, '$.time') >= ?",
                (rule, since),
            ).fetchall()
            return [
                (None if item_id is None else str(item_id), str(name)) for item_id, name in rows
            ]

    def grace_marks(self, rules: Iterable[str]) -> dict[str, dict[str, frozenset[str]]]:
        """rule -> item id -> the grace marks (``rulebot:RULE:DATE``) that
        rule's confirmed ``tags_add`` actions gave the item: the marks rulebot
        set itself. Only these start a grace period (``planner.Grace``); a
        mark in the library that is not here was typed, planted or left from
        a lost store, and counts for nothing."""
        names = list(dict.fromkeys(rules))
        if not names:
            return {}
        found: dict[str, dict[str, set[str]]] = {}
        with self._snapshot():
            rows = self._conn.execute(
                "SELECT rule, json_extract(send, '$.item_id'), json_extract(send, '$.tags')"
                f" FROM run_actions WHERE rule IN ({', '.join('?' * len(names))})"
                " AND state = 'confirmed' AND json_extract(send, '$.action') = 'tags_add'"
                " AND instr(json_extract(send, '$.tags'), 'rulebot:') > 0",
                names,
            ).fetchall()
        for rule, item_id, tags in rows:
            prefix = f"rulebot:{rule}:"
            marks = [tag for tag in str(tags).split(",") if tag.startswith(prefix)]
            if marks and item_id is not None:
                found.setdefault(str(rule), {}).setdefault(str(item_id), set()).update(marks)
        return {
            rule: {item_id: frozenset(marks) for item_id, marks in by_item.items()}
            for rule, by_item in found.items()
        }


# -- row conversion ------------------------------------------------------------
def _item_to_row(item: Item) -> tuple[Any, ...]:
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
_INSERT_PLAIN = f"INSERT INTO items ({_PLAIN_COLUMNS}) VALUES ({', '.join('?' * 8)})"


def _plain(item: Item) -> bool:
    """Whether every column ``_INSERT_PLAIN`` leaves out would get its default."""
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


def _plain_row(item: Item) -> tuple[Any, ...]:
    return (
        item.item_id,
        item.given_url,
        item.given_title,
        item.status,
        None if item.favorite is None else int(item.favorite),
        0 if item.tags is None else 1,
        item.time_added,
        item.time_updated,
    )


def _insert_tags(conn: sqlite3.Connection, items: list[Item]) -> None:
    conn.executemany(
        "INSERT INTO item_tags VALUES (?, ?, ?)",
        (
            (item.item_id, tag, position)
            for item in items
            if item.tags
            for position, tag in enumerate(item.tags)
        ),
    )


def _rows_to_items(rows: Iterable[Sequence[Any]], tags: dict[str, tuple[str, ...]]) -> list[Item]:
    # One comprehension with positional Item(...) calls: this loop dominates
    # items() for a large library, and keywords or a helper per row cost ~40%.
    get_tags, loads = tags.get, json.loads
    return [
        Item(
            item_id,
            gu,
            ru,
            gt,
            rt,
            status,
            None if fav is None else fav == 1,
            get_tags(item_id, ()) if known else None,
            ta,
            tu,
            tr,
            tf,
            wc,
            ttr,
            lang,
            None if is_article is None else is_article == 1,
            has_image,
            has_video,
            excerpt,
            loads(extra) if extra else NO_EXTRA,
        )
        for (
            item_id,
            gu,
            ru,
            gt,
            rt,
            status,
            fav,
            known,
            ta,
            tu,
            tr,
            tf,
            wc,
            ttr,
            lang,
            is_article,
            has_image,
            has_video,
            excerpt,
            extra,
            *_,  # iter_items' rows carry their tags after the columns
        ) in rows
    ]


def _sort_key(item: Item) -> tuple[int, int, str]:
    return item.sort_key


def _read_holder(fd: int) -> str:
    """Who holds the lock, from what it wrote into the lock file."""
    try:
        info = json.loads(os.pread(fd, 4096, 0).decode() or "null")
        return f"{info['command']} (pid {info['pid']} on {info['host']}, since {info['since']})"
    except (OSError, ValueError, TypeError, KeyError):
        # The holder took the lock but has not written its details yet.
        return "another rulebot process"
