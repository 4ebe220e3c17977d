"""The store's SQLite schema: its tables, as an append-only list of forward
migrations (``PRAGMA user_version`` counts those applied), and what tells a
rulebot store from another program's SQLite file. ``Store.open``
(rulebot.library.store) applies them; docs/store.md describes the tables.
"""

from __future__ import annotations

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
