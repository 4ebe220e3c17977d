"""Importing a Pocket export into the store (``rulebot import``): the export
is read whole and checked (rulebot.library.export_reader), then merged keyed
by URL in one transaction, or only counted (``--dry-run``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from rulebot.library.export_reader import (
    ROW_ADDED,
    ROW_URL,
    ExportRead,
    Progress,
    bad_rows_error,
    item_id_for_url,
    read_export_rows,
)
from rulebot.library.item import Item
from rulebot.library.item_order import oldest_first
from rulebot.library.store import Store


@dataclass(frozen=True, slots=True)
class ImportChange:
    """One item an import adds or changes (for ``--dry-run``)."""

    kind: str  # "added" | "updated"
    url: str
    fields: tuple[str, ...] = ()  # what an update changes
    reverts: bool = False  # rulebot (or a newer import) changed the item after this export


@dataclass(frozen=True, slots=True)
class ImportResult:
    added: int
    updated: int
    unchanged: int
    # What the counts do not say; compare=False keeps ImportResult(a, u, n) handy.
    bad_rows: tuple[str, ...] = field(default=(), compare=False)  # all, "where: what"
    duplicates: int = field(default=0, compare=False)  # rows merged into an earlier one
    duplicate_urls: tuple[str, ...] = field(default=(), compare=False)  # the first few
    # every change in a dry run (it lists them); otherwise only the updates
    changes: tuple[ImportChange, ...] = field(default=(), compare=False)
    dry_run: bool = field(default=False, compare=False)

    @property
    def total(self) -> int:
        return self.added + self.updated + self.unchanged

    @property
    def reverts(self) -> int:
        return sum(1 for change in self.changes if change.reverts)


def import_export(
    store: Store,
    path: str | Path,
    *,
    now: int | None = None,
    progress: Progress | bool | None = None,
    skip_bad: bool = False,
    dry_run: bool = False,
) -> ImportResult:
    """Merge an export into ``store`` keyed by URL, in one transaction.

    An item already saved under a URL keeps its item_id and gets the
    export's title, time_added, tags and status; ``time_updated`` becomes
    ``now`` when anything changed (so plans made before see it as changed).
    The whole file is read and checked before anything is written: any bad
    row refuses the import (listing every bad row) unless ``skip_bad``.
    ``dry_run`` computes the same result and writes nothing. The caller
    holds ``store.lock(...)``.
    """
    source = Path(path)
    read = read_export_rows(source, progress)
    if read.bad_rows and not skip_bad:
        raise bad_rows_error(source, read.bad_rows)
    rows = read.rows
    # An export has no time_updated; its newest time_added is the earliest it
    # can have been made. An item the store changed after that, which the
    # import would change again, is an edit the import reverts.
    made_after = max((row[ROW_ADDED] for row in rows), default=0)
    stamp = int(time.time()) if now is None else now
    added = updated = unchanged = 0
    changes: list[ImportChange] = []
    with store.bulk_load(), store.transaction() as conn:
        existing = store.items(include_deleted=True)
        if not existing:
            # A first import: every row is new, under the id it was read
            # with, and is written as read (no Item, no merge by URL).
            added = len(rows)
            if dry_run:  # listed only there; a first import adds 100k+
                changes.extend(ImportChange("added", row[ROW_URL]) for row in rows)
            else:
                store.insert_export(rows, conn=conn)
            return _result(read, added, 0, 0, changes, dry_run)
        imported = read.items
        by_url: dict[str, Item] = {}
        # Live items first, so a URL saved twice resolves to the live copy.
        for item in sorted(existing, key=lambda i: i.is_deleted):
            for url in (item.given_url, item.resolved_url):
                if url:
                    by_url.setdefault(url, item)
        existing_ids = {item.item_id for item in existing}
        taken = existing_ids | {item.item_id for item in imported}
        writes: list[Item] = []
        fresh: list[Item] = []  # ids not in the store: plain INSERTs, no tag DELETE
        for new in imported:
            old = by_url.get(new.given_url)
            if old is None:
                if new.item_id in existing_ids:
                    new = new.replace(item_id=_free_id(new.given_url, taken))
                added += 1
                fresh.append(new)
                if dry_run:
                    changes.append(ImportChange("added", new.given_url))
                continue
            merged = _merge(old, new, stamp)
            if merged is old:
                unchanged += 1
            else:
                updated += 1
                writes.append(merged)
                fields = tuple(
                    name
                    for name in ("title", "time_added", "tags", "status")
                    if getattr(old, name) != getattr(merged, name)
                )
                reverts = (old.time_updated or 0) > made_after
                changes.append(ImportChange("updated", new.given_url, fields, reverts))
        if not dry_run:
            # oldest first, as a plan reads them: stored in that order, a plan
            # reads them as stored instead of sorting (library.item_order)
            oldest_first(fresh)
            store.insert_new(fresh, conn=conn)
            store.upsert(writes, conn=conn)
    return _result(read, added, updated, unchanged, changes, dry_run)


def _result(
    read: ExportRead,
    added: int,
    updated: int,
    unchanged: int,
    changes: list[ImportChange],
    dry_run: bool,
) -> ImportResult:
    return ImportResult(
        added=added,
        updated=updated,
        unchanged=unchanged,
        bad_rows=read.bad_rows,
        duplicates=read.duplicates,
        duplicate_urls=read.duplicate_urls,
        changes=tuple(changes),
        dry_run=dry_run,
    )


def _free_id(url: str, taken: set[str]) -> str:
    attempt = 1
    while (item_id := item_id_for_url(url, attempt)) in taken:
        attempt += 1
    taken.add(item_id)
    return item_id


def _merge(old: Item, new: Item, now: int) -> Item:
    changes: dict[str, object] = {}
    # Compare what an export shows (Item.title), not the raw fields: an item
    # whose given_title equals its URL exported and re-imported is unchanged.
    if old.title != (new.given_title or new.given_url):
        changes.update(given_title=new.given_title, resolved_title="")
    if old.time_added != new.time_added:
        changes["time_added"] = new.time_added
    if old.tags != new.tags:
        changes["tags"] = new.tags
    if old.status != new.status:
        changes["status"] = new.status
    if not changes:
        return old
    return old.replace(time_updated=now, **changes)
