"""Pocket exports in and out of the local library.

Three forms exist in the wild (pocket-api.md): ``pocket.zip`` holding
``part_000000.csv``…, a single CSV (header ``title,url,time_added,tags,status``
or, before March 2025, with a ``cursor`` column), and the older
``ril_export.html``. ``read_export`` detects the form from the content,
``import_export`` merges into a store keyed by URL, ``write_export`` picks the
form from the file suffix.

Normalisation, chosen so that import → export → import is exact:

- an empty title, or one equal to the URL (Pocket's fallback), is read as
  ``given_title == ""``; export writes ``Item.title``, i.e. the URL again;
- tags are stripped, empty ones and exact duplicates dropped, order kept;
- ``time_added`` 0 means "never" (``None``); ``time_updated = time_added``;
- each item's id is derived from its URL (``item_id_for_url``), so the same export
  always yields the same ids;
- a URL that appears twice in one export: the last row wins (and the import
  says how many were merged);
- what an export never carries (favourite, word count, …) is unknown (None);
- CSV cells that a spreadsheet would run as a formula (starting with ``=``,
  ``+``, ``-``, ``@``, tab or CR) are written with a ``'`` in front (OWASP);
  so that this stays lossless, a cell that starts with ``'`` followed by such
  a cell gets one more ``'``, and reading removes exactly one ``'`` wherever
  it stands before a trigger character or another such ``'``.

Hostile files are bounded: a zip may expand to ``MAX_UNZIPPED_BYTES`` in all
and a member above ``RATIO_CHECK_BYTES`` to ``MAX_RATIO`` times its compressed
size; a CSV line may hold ``MAX_LINE_CHARS`` characters; an HTML tag or text
run ``MAX_HTML_PENDING`` characters. Only http(s) URLs are imported.
"""

from __future__ import annotations

import csv
import hashlib
import html
import io
import sys
import time
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import IO

from rulebot.bulk import gc_paused
from rulebot.errors import ExportFormatError, RulebotError
from rulebot.files import atomic_write
from rulebot.library.item import ARCHIVED, UNREAD, Item
from rulebot.library.store import Store
from rulebot.safe import quote_cell, unquote_cell

CSV_HEADER = ("title", "url", "time_added", "tags", "status")
OLD_CSV_HEADER = ("title", "url", "time_added", "cursor", "tags", "status")
ROWS_PER_PART = 10_000  # what Pocket put in each part_*.csv
LARGE_FILE_BYTES = 1 << 20  # report progress only for files at least this big
_PROGRESS_EVERY = 10_000
# Hostile-file bounds. A 100k-item Pocket export is ~20 MB of CSV that
# deflates about 4:1, so these leave real exports far inside and stop a zip
# bomb (1 MB -> 1 GiB is 1000:1) before it is inflated.
MAX_UNZIPPED_BYTES = 2 << 30  # 2 GiB, all members together
MAX_RATIO = 200  # uncompressed : compressed, for a member above RATIO_CHECK_BYTES
RATIO_CHECK_BYTES = 8 << 20
MAX_LINE_CHARS = 1 << 20  # csv's own field limit is 128 KiB; five fields fit
MAX_HTML_PENDING = 256 << 10  # an unfinished tag or text run html.parser rescans per chunk
MAX_INT64 = (1 << 63) - 1
MAX_BAD_ROWS_SHOWN = 20
MAX_DUPLICATES_SHOWN = 5
_ZIP_METHODS = {
    zipfile.ZIP_STORED: "stored",
    zipfile.ZIP_DEFLATED: "deflate",
    zipfile.ZIP_BZIP2: "bzip2",
    zipfile.ZIP_LZMA: "lzma",
}
_WEB_SCHEMES = ("http://", "https://")

_STATUS_IN = {"unread": UNREAD, "archive": ARCHIVED, "archived": ARCHIVED}  # lower-cased
_STATUS_OUT = {UNREAD: "unread", ARCHIVED: "archive"}
_SECTIONS = {"unread": UNREAD, "read archive": ARCHIVED}

# Called with the number of items read so far; ``done`` on the last call.
Progress = Callable[[int, bool], None]


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


@dataclass(frozen=True, slots=True)
class ExportRead:
    """A whole export: its good items, and what was wrong or merged."""

    items: list[Item]
    bad_rows: tuple[str, ...]
    duplicates: int
    duplicate_urls: tuple[str, ...]


# -- reading -----------------------------------------------------------------
def read_export(path: str | Path, progress: Progress | bool | None = None) -> list[Item]:
    """Every item of a Pocket export, in file order (duplicates: last wins).

    ``progress``: a callback, or True for a counter on stderr when stderr is
    a terminal; used only for exports of at least ``LARGE_FILE_BYTES``
    (uncompressed). Raises ``ExportFormatError`` naming the file, zip member,
    row and problem (every bad row, up to ``MAX_BAD_ROWS_SHOWN``).
    """
    read = read_export_rows(path, progress)
    if read.bad_rows:
        raise bad_rows_error(Path(path), read.bad_rows)
    return read.items


def bad_rows_error(source: Path, bad: tuple[str, ...]) -> ExportFormatError:
    hint = "fix them, or import the other rows with `rulebot import --skip-bad`"
    if len(bad) == 1:
        return ExportFormatError(f"{bad[0]} (nothing imported: {hint.replace('them', 'it')})")
    shown = "\n".join(f"  {problem}" for problem in bad[:MAX_BAD_ROWS_SHOWN])
    more = len(bad) - MAX_BAD_ROWS_SHOWN
    tail = f"\n  … and {more} more" if more > 0 else ""
    return ExportFormatError(
        f"{source}: {len(bad)} bad rows, nothing imported; {hint}:\n{shown}{tail}"
    )


def read_export_rows(path: str | Path, progress: Progress | bool | None = None) -> ExportRead:
    """Like ``read_export``, but bad rows are collected, not raised; the file
    as a whole (its form, encoding, structure) must still be sound."""
    source = Path(path)
    where = str(source)
    report: Progress | None = None
    if progress is True:
        report = tty_progress(f"reading {source.name}")
    elif callable(progress):
        report = progress
    try:
        size = source.stat().st_size
        with source.open("rb") as head:
            start = head.read(4096)
    except OSError as exc:
        raise ExportFormatError(f"cannot read export {source}: {exc.strerror or exc}") from exc
    is_zip = start[:4] in (b"PK\x03\x04", b"PK\x05\x06") or source.suffix.lower() == ".zip"
    # A zip's progress is decided by what it expands to, not its compressed size.
    rows = _Rows(report)
    with gc_paused():
        if is_zip:
            _read_zip(source, rows, report)
        else:
            if size < LARGE_FILE_BYTES:
                rows.progress = None
            first = start.removeprefix(b"\xef\xbb\xbf").lstrip()[:1]
            if not first and source.stat().st_size <= len(start):
                raise ExportFormatError(f"{where} is empty; expected a Pocket export")
            # Streamed, not read whole: a 100k-row export as one str plus
            # csv's copy of it would more than double the peak memory.
            with source.open("rb") as raw:
                try:
                    if first == b"<":
                        _read_html(_text(raw), where, rows)
                    else:
                        _read_csv(_text(raw), where, rows)
                except UnicodeDecodeError:
                    raise _not_utf8(source.read_bytes(), where) from None
        if rows.progress is not None:
            rows.progress(rows.seen, True)
        return ExportRead(
            rows.finish(), tuple(rows.bad), rows.duplicates, tuple(rows.duplicate_urls)
        )


def item_id_for_url(url: str, attempt: int = 0) -> str:
    """A stable item id for an imported URL: the first 13 hex digits of its
    SHA-256 (52 bits, fits Pocket's numeric ids); ``attempt`` > 0 picks
    another id when two URLs collide."""
    key = url if attempt == 0 else f"{url}\n{attempt}"
    return str(int(hashlib.sha256(key.encode()).hexdigest()[:13], 16) or 1)


# (given_title, time_added, tags, status) of one exported row.
_Entry = tuple[str, int | None, tuple[str, ...], int]


class _Rows:
    """Collects items keyed by URL (a later row replaces an earlier one)."""

    def __init__(self, progress: Progress | None) -> None:
        self.by_url: dict[str, Item] = {}
        self.progress = progress
        self.seen = 0
        self.bad: list[str] = []  # "where: what", in file order
        self.duplicates = 0
        self.duplicate_urls: list[str] = []
        # Raw tags field -> tuple: a library repeats a few tag combinations,
        # and sharing one tuple per combination saves time and memory.
        self.tag_tuples: dict[str, tuple[str, ...]] = {}

    def tags(self, raw: str, sep: str) -> tuple[str, ...]:
        if (found := self.tag_tuples.get(raw)) is None:
            found = self.tag_tuples[raw] = _split_tags(raw, sep)
        return found

    def add(self, url: str, entry: _Entry) -> None:
        title, added, tags, status = entry
        if url in self.by_url:
            self.duplicates += 1
            if len(self.duplicate_urls) < MAX_DUPLICATES_SHOWN:
                self.duplicate_urls.append(url)
        # Positional: item_id, given_url, resolved_url, given_title,
        # resolved_title, status, favorite, tags, time_added, time_updated.
        self.by_url[url] = Item(
            # favorite None: an export has no favourite column, so it is unknown
            item_id_for_url(url),
            url,
            "",
            title,
            "",
            status,
            None,
            tags,
            added,
            added,
        )
        self.seen += 1
        if self.progress is not None and self.seen % _PROGRESS_EVERY == 0:
            self.progress(self.seen, False)

    def finish(self) -> list[Item]:
        """The items in file order, with ids made unique (collisions of 52-bit
        hashes are rare but must not merge two items)."""
        items = list(self.by_url.values())
        used: set[str] = set()
        for index, item in enumerate(items):
            attempt, item_id = 0, item.item_id
            while item_id in used:
                attempt += 1
                item_id = item_id_for_url(item.given_url, attempt)
            used.add(item_id)
            if item_id != item.item_id:
                items[index] = item.replace(item_id=item_id)
        return items


def _text(raw: IO[bytes]) -> io.TextIOWrapper:
    # utf-8-sig drops a BOM; newline="" leaves line ends to csv (quoted
    # fields may hold newlines).
    return io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")


def _not_utf8(data: bytes, where: str) -> ExportFormatError:
    """Locate the bad byte exactly (the streaming decoder only knows the chunk)."""
    try:
        data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        return ExportFormatError(
            f"{where}, line {line}: not UTF-8 text (byte 0x{data[exc.start]:02x}); "
            "a Pocket export is UTF-8 — re-save the file as UTF-8 and import again"
        )
    return ExportFormatError(f"{where}: not UTF-8 text")


def _read_zip(source: Path, rows: _Rows, report: Progress | None) -> None:
    try:
        with zipfile.ZipFile(source) as archive:
            members = sorted(
                (
                    info
                    for info in archive.infolist()
                    if not info.is_dir()
                    and info.filename.lower().endswith(".csv")
                    and not info.filename.startswith("__MACOSX/")
                    and not Path(info.filename).name.startswith("._")
                ),
                key=lambda info: info.filename,
            )
            if not members:
                raise ExportFormatError(
                    f"{source}: the zip holds no CSV files; a Pocket export zip holds "
                    "part_000000.csv, part_000001.csv, …"
                )
            _check_members(source, members)
            if sum(info.file_size for info in members) < LARGE_FILE_BYTES:
                report = None
            rows.progress = report
            for info in members:
                where = f"{source} (member {info.filename})"
                try:
                    # zipfile never yields more than the declared file_size
                    # (checked above), so the bounds hold for lying headers too
                    with archive.open(info) as raw:
                        _read_csv(_text(raw), where, rows)
                except UnicodeDecodeError:
                    raise _not_utf8(archive.read(info), where) from None
                except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
                    raise ExportFormatError(f"{where}: cannot be extracted: {exc}") from None
                except (NotImplementedError, RuntimeError) as exc:  # method, encryption
                    raise ExportFormatError(f"{where}: cannot be extracted: {exc}") from None
    except zipfile.BadZipFile as exc:
        raise ExportFormatError(
            f"{source} is not a valid zip file ({exc}); expected Pocket's export zip"
        ) from None
    except OSError as exc:
        raise ExportFormatError(f"cannot read export {source}: {exc.strerror or exc}") from exc


def _check_members(source: Path, members: list[zipfile.ZipInfo]) -> None:
    """Refuse encryption, unknown methods and zip bombs before inflating anything."""
    total = 0
    for info in members:
        where = f"{source} (member {info.filename})"
        if info.flag_bits & 0x1:
            raise ExportFormatError(
                f"{where} is encrypted; Pocket's export zip is not. Unzip it yourself "
                "and import the CSV files"
            )
        if info.compress_type not in _ZIP_METHODS:
            raise ExportFormatError(
                f"{where} uses compression method {info.compress_type}, which rulebot cannot "
                f"read (it reads {', '.join(_ZIP_METHODS.values())}); unzip it with another "
                "tool and import the CSV files"
            )
        total += info.file_size
        if total > MAX_UNZIPPED_BYTES:
            raise ExportFormatError(
                f"{source} expands to more than {MAX_UNZIPPED_BYTES >> 30} GiB; no Pocket "
                "export is that large, so rulebot does not unpack it (a zip bomb?)"
            )
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > RATIO_CHECK_BYTES and ratio > MAX_RATIO:
            raise ExportFormatError(
                f"{where} expands {ratio:,.0f} times ({info.compress_size:,} to "
                f"{info.file_size:,} bytes); CSV text compresses far less than "
                f"{MAX_RATIO}:1, so rulebot does not unpack it (a zip bomb?)"
            )


def _bounded_lines(text: io.TextIOWrapper, where: str) -> Iterator[str]:
    """The physical lines of ``text``, refusing one longer than MAX_LINE_CHARS
    before it is read whole (a 300 MB line would otherwise be held twice)."""
    readline, number = text.readline, 0
    while line := readline(MAX_LINE_CHARS):
        number += 1
        if len(line) >= MAX_LINE_CHARS and line[-1] not in "\r\n":
            raise ExportFormatError(
                f"{where}, line {number}: longer than {MAX_LINE_CHARS:,} characters; "
                "a Pocket CSV export has short lines (is this the right file?)"
            )
        yield line


def _read_csv(text: io.TextIOWrapper, where: str, rows: _Rows) -> None:
    reader = csv.reader(_bounded_lines(text, where), strict=True)
    row_number, line = 0, 1
    try:
        header = next((row for row in reader if row), None)  # skip blank lines
        if header is None:
            raise ExportFormatError(f"{where} is empty; expected a Pocket CSV export")
        columns = tuple(name.strip().lower() for name in header)
        if columns == CSV_HEADER:
            t_col, u_col, a_col, g_col, s_col = 0, 1, 2, 3, 4
        elif columns == OLD_CSV_HEADER:
            t_col, u_col, a_col, g_col, s_col = 0, 1, 2, 4, 5
        else:
            raise ExportFormatError(
                f"{where}: the header is {','.join(header)!r}; a Pocket CSV export starts "
                f"with {','.join(CSV_HEADER)!r} (or the older "
                f"{','.join(OLD_CSV_HEADER)!r})"
            )
        width = len(columns)
        line = reader.line_num + 1
        # The per-row path is written out flat (no helper calls, no message
        # formatting): it runs 100,000 times for a large library.
        status_of, add, web = _STATUS_IN.get, rows.add, _WEB_SCHEMES
        for row in reader:
            row_number += 1
            if len(row) == width:
                url = row[u_col].strip()
                added = row[a_col]
                status = status_of(row[s_col])
                title, tags = row[t_col], row[g_col]
                if (
                    url.startswith(web)
                    and added.isdigit()
                    and added.isascii()
                    and len(added) < 19  # below 2^63
                    and status is not None
                    and title[:1] != "'"
                    and tags[:1] != "'"
                ):
                    if title == url:
                        title = ""  # Pocket's fallback for an empty title
                    add(
                        url,
                        (title, int(added) or None, rows.tags(tags, "|") if tags else (), status),
                    )
                    line = reader.line_num + 1
                    continue
            if row:  # anything but a blank line: find what is wrong, or take it
                at = f"{where}, row {row_number} (line {line})"
                try:
                    if len(row) != width:
                        raise ExportFormatError(
                            f"{at}: {len(row)} fields, expected {width} ({','.join(columns)}); "
                            "a field holding a comma must be in double quotes"
                        )
                    url = unquote_cell(row[u_col].strip())
                    title, tags = unquote_cell(row[t_col]), unquote_cell(row[g_col])
                    add(url, _entry(at, url, title, row[a_col], tags, "|", row[s_col]))
                except ExportFormatError as bad:
                    rows.bad.append(str(bad))
            line = reader.line_num + 1
    except csv.Error as exc:
        raise ExportFormatError(f"{where}, line {reader.line_num}: broken CSV: {exc}") from None


def _entry(at: str, url: str, title: str, added: str, tags: str, sep: str, status: str) -> _Entry:
    """Check one row's fields slowly and thoroughly; raise naming the problem."""
    if not url:
        raise ExportFormatError(f"{at}: the url is missing")
    if not url[:8].lower().startswith(_WEB_SCHEMES):
        raise ExportFormatError(
            f"{at}: the url {_clip(url)!r} is not an http(s) URL; rulebot imports only web links"
        )
    added = added.strip()
    if not added.isdigit() or not added.isascii():
        raise ExportFormatError(
            f"{at}: time_added {_clip(added)!r} is not a unix timestamp (whole seconds since 1970)"
        )
    if int(added) > MAX_INT64:
        raise ExportFormatError(
            f"{at}: time_added {_clip(added)!r} is beyond any date (above 2^63 - 1 seconds)"
        )
    state = _STATUS_IN.get(status.strip().lower())
    if state is None:
        raise ExportFormatError(
            f"{at}: unknown status {_clip(status)!r}; expected unread or archive"
        )
    return ("" if title == url else title, int(added) or None, _split_tags(tags, sep), state)


def _clip(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def _split_tags(raw: str, sep: str) -> tuple[str, ...]:
    parts = raw.split(sep)
    # dict.fromkeys: drop exact duplicates but keep the order written.
    return tuple(dict.fromkeys(tag for tag in (t.strip() for t in parts) if tag))


def _read_html(text: io.TextIOWrapper, where: str, rows: _Rows) -> None:
    parser = _RilParser(where, rows)
    while chunk := text.read(1 << 16):
        parser.feed(chunk)
        # html.parser keeps an unfinished tag (or text run) and rescans it on
        # every chunk: bounding it keeps parsing linear
        if len(parser.rawdata) > MAX_HTML_PENDING:
            line = parser.getpos()[0]
            raise ExportFormatError(
                f"{where}, line {line}: a tag or text longer than {MAX_HTML_PENDING >> 10} KiB "
                "without an end; a Pocket ril_export.html has none (damaged file?)"
            )
    parser.close()
    if not parser.sections_seen:
        raise ExportFormatError(
            f"{where}: no <h1>Unread</h1> or <h1>Read Archive</h1> section; "
            "this is not a Pocket ril_export.html"
        )


class _RilParser(HTMLParser):
    """ril_export.html: an <h1> per section, then <li><a href time_added tags>."""

    def __init__(self, where: str, rows: _Rows) -> None:
        super().__init__(convert_charrefs=True)
        self.where = where
        self.rows = rows
        self.sections_seen = 0
        self.section: int | None = None
        self.heading: list[str] | None = None  # text of an open <h1>
        self.link: dict[str, str | None] | None = None  # attributes of an open <a>
        self.link_line = 0
        self.title: list[str] = []
        self.open_lists = 0  # <ul> not yet closed
        self.html_open = False  # saw <html>: then </html> must come too

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "h1":
            self._finish_link()
            self.heading = []
        elif tag == "a":
            self._finish_link()
            self.link, self.link_line, self.title = dict(attrs), self.getpos()[0], []
        elif tag == "ul":
            self.open_lists += 1
        elif tag == "html":
            self.html_open = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "h1" and self.heading is not None:
            name = " ".join("".join(self.heading).split())
            self.heading = None
            self.section = _SECTIONS.get(name.lower())
            if self.section is None:
                raise ExportFormatError(
                    f"{self.where}, line {self.getpos()[0]}: unknown section {name!r}; "
                    "a Pocket ril_export.html has 'Unread' and 'Read Archive'"
                )
            self.sections_seen += 1
        elif tag == "a":
            self._finish_link()
        elif tag == "ul":
            self.open_lists = max(self.open_lists - 1, 0)
        elif tag == "html":
            self.html_open = False

    def handle_data(self, data: str) -> None:
        if self.heading is not None:
            self.heading.append(data)
        elif self.link is not None:
            self.title.append(data)

    def close(self) -> None:
        cut = self._truncation()
        if cut:
            raise ExportFormatError(
                f"{self.where}: the file ends {cut}; it is truncated (an incomplete "
                "download or copy?). Nothing was imported: get the whole file again"
            )
        super().close()
        self._finish_link()

    def _truncation(self) -> str | None:
        """Where the file stops early, if it does."""
        pending = self.rawdata[self.rawdata.find("<") :] if "<" in self.rawdata else ""
        if pending.strip():
            return f"inside a tag ({_clip(pending.strip(), 40)!r})"
        if self.link is not None:
            return f"inside the link that starts on line {self.link_line}"
        if self.heading is not None:
            return "inside a section heading"
        if self.open_lists:
            return "before a list is closed (no </ul>)"
        if self.html_open:
            return "before </html>"
        return None

    def _finish_link(self) -> None:
        if self.link is None:
            return
        attrs, self.link = self.link, None
        at = f"{self.where}, line {self.link_line}"
        if self.section is None:
            raise ExportFormatError(
                f"{at}: a link outside the 'Unread' and 'Read Archive' sections; "
                "this is not a Pocket ril_export.html"
            )
        url = (attrs.get("href") or "").strip()
        added = attrs.get("time_added")
        status = "archive" if self.section == ARCHIVED else "unread"
        tags = attrs.get("tags") or ""
        try:
            if added is None:
                raise ExportFormatError(f"{at}: the link has no time_added attribute")
            entry = _entry(at, url, "".join(self.title), added, tags, ",", status)
        except ExportFormatError as bad:
            self.rows.bad.append(str(bad))
            return
        self.rows.add(url, entry)


# -- importing into a store ------------------------------------------------------
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
    imported = read.items
    # An export has no time_updated; its newest time_added is the earliest it
    # can have been made. An item the store changed after that, which the
    # import would change again, is an edit the import reverts.
    made_after = max((item.time_added or 0 for item in imported), default=0)
    stamp = int(time.time()) if now is None else now
    added = updated = unchanged = 0
    changes: list[ImportChange] = []
    with store.bulk_load(), store.transaction() as conn:
        existing = store.items(include_deleted=True)
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
                if dry_run:  # listed only there; a first import adds 100k+
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
            store.insert_new(fresh, conn=conn)
            store.upsert(writes, conn=conn)
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


# -- writing -----------------------------------------------------------------------
def write_export(items: Iterable[Item], path: str | Path) -> int:
    """Write ``items`` as a Pocket export; the suffix picks the form
    (``.csv``, ``.zip`` of CSV parts, ``.html``). Deleted items and items
    without a URL are left out. Returns the number of items written. The
    file is replaced atomically (``files.atomic_write``: mode 0600, never
    through a symbolic link)."""
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix not in (".csv", ".zip", ".html", ".htm"):
        raise RulebotError(
            f"cannot export to {target}: unknown file type {suffix or '(none)'!r}; "
            "name the file .csv, .zip or .html"
        )
    live = [item for item in items if not item.is_deleted and item.url]
    separator = "," if suffix in (".html", ".htm") else "|"
    for item in live:
        for tag in item.tags or ():
            if separator in tag:
                raise RulebotError(
                    f"cannot export item {item.item_id}: its tag {tag!r} contains "
                    f"{separator!r}, which this export form uses between tags"
                )

    def writer(handle: IO[bytes]) -> None:
        if suffix == ".csv":
            handle.write(_csv_text(live).encode())
        elif suffix == ".zip":
            _write_zip(live, handle)
        else:
            handle.write(_html_text(live).encode())

    atomic_write(target, writer, what="export")
    return len(live)


def _csv_text(items: list[Item]) -> str:
    out = io.StringIO(newline="")
    # \r\n (RFC 4180): csv quotes a field only for characters in the line
    # terminator, so with "\n" alone a title holding "\r" would break the row.
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    writer.writerows(
        (
            quote_cell(item.title),
            quote_cell(item.url),
            str(item.time_added or 0),
            quote_cell("|".join(item.tags or ())),
            _STATUS_OUT[item.status],
        )
        for item in items
    )
    return out.getvalue()


def _write_zip(items: list[Item], target: IO[bytes]) -> None:
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        # At least one part, so an empty library still reads back as a valid export.
        for part, start in enumerate(range(0, max(len(items), 1), ROWS_PER_PART)):
            chunk = items[start : start + ROWS_PER_PART]
            archive.writestr(f"part_{part:06d}.csv", _csv_text(chunk))


def _html_text(items: list[Item]) -> str:
    lines = [
        "<!DOCTYPE html>",
        "<html>",
        "\t<head>",
        '\t\t<meta http-equiv="Content-Type" content="text/html; charset=UTF-8" />',
        "\t\t<title>Pocket Export</title>",
        "\t</head>",
        "\t<body>",
    ]
    for heading, status in (("Unread", UNREAD), ("Read Archive", ARCHIVED)):
        lines += [f"\t\t<h1>{heading}</h1>", "\t\t<ul>"]
        for item in items:
            if item.status != status:
                continue
            # \r would survive html.parser, but some tools normalise it away.
            title = html.escape(item.title, quote=False).replace("\r", "&#13;")
            if not item.url[:8].lower().startswith(_WEB_SCHEMES):
                # never a link to javascript:, data:, file: …: the URL as text
                # (import refuses such URLs anyway)
                url = html.escape(item.url, quote=False).replace("\r", "&#13;")
                lines.append(f"\t\t\t<li>{title} ({url})</li>")
                continue
            lines.append(
                f'\t\t\t<li><a href="{html.escape(item.url)}" '
                f'time_added="{item.time_added or 0}" '
                f'tags="{html.escape(",".join(item.tags or ()))}">{title}</a></li>'
            )
        lines.append("\t\t</ul>")
    lines += ["\t</body>", "</html>", ""]
    return "\n".join(lines)


def tty_progress(label: str) -> Progress | None:
    """A progress callback writing to stderr, or None when stderr is no TTY
    (so logs and CI output stay clean). For the CLI to pass in."""
    if not sys.stderr.isatty():
        return None

    def report(count: int, done: bool) -> None:
        sys.stderr.write(f"\r{label}: {count:,} items{chr(10) if done else ''}")
        sys.stderr.flush()

    return report
