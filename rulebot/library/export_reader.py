"""Reading Pocket exports.

Three forms exist in the wild (pocket-api.md): ``pocket.zip`` holding
``part_000000.csv``…, a single CSV (header ``title,url,time_added,tags,status``
or, before March 2025, with a ``cursor`` column), and the older
``ril_export.html``. ``read_export`` detects the form from the content;
rulebot.library.importer merges an export into a store,
rulebot.library.export_writer writes one.

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
import io
import sys
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import IO, Final

from rulebot.bulk import gc_paused
from rulebot.errors import ExportFormatError
from rulebot.library.item import ARCHIVED, UNREAD, Item
from rulebot.safe import unquote_cell

CSV_HEADER = ("title", "url", "time_added", "tags", "status")
OLD_CSV_HEADER = ("title", "url", "time_added", "cursor", "tags", "status")
LARGE_FILE_BYTES = 1 << 20  # report progress only for files at least this big
_PROGRESS_EVERY = 10_000
_TAG_FIELDS_KEPT = 8192  # distinct tags fields kept split: a library repeats a few
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
WEB_SCHEMES = ("http://", "https://")

_STATUS_IN = {"unread": UNREAD, "archive": ARCHIVED, "archived": ARCHIVED}  # lower-cased
_SECTIONS = {"unread": UNREAD, "read archive": ARCHIVED}

# Called with the number of items read so far; ``done`` on the last call.
Progress = Callable[[int, bool], None]


# One exported item as read: (item_id, url, given_title, time_added, tags,
# status), with time_added 0 for "never" (None in an Item). A first import
# writes these straight into an empty store (``Store.insert_export``): an
# ``Item`` per row cost a sixth of a 100k-row import.
ExportRow = tuple[str, str, str, int, tuple[str, ...], int]
ROW_URL: Final = 1
ROW_ADDED: Final = 3


@dataclass(frozen=True, slots=True)
class ExportRead:
    """A whole export: its good rows, and what was wrong or merged."""

    rows: list[ExportRow]
    bad_rows: tuple[str, ...]
    duplicates: int
    duplicate_urls: tuple[str, ...]

    @property
    def items(self) -> list[Item]:
        """The rows as items, in file order (made afresh on each access)."""
        return [export_item(row) for row in self.rows]


def export_item(row: ExportRow) -> Item:
    """One exported row as the item an import stores: favourite unknown (an
    export has no such column), ``time_updated = time_added``."""
    item_id, url, title, added, tags, status = row
    # Positional: item_id, given_url, resolved_url, given_title,
    # resolved_title, status, favorite, tags, time_added, time_updated.
    return Item(item_id, url, "", title, "", status, None, tags, added or None, added or None)


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
            with source.open("rb") as raw, _text(raw) as text:
                try:
                    if first == b"<":
                        _read_html(text, where, rows)
                    else:
                        _read_csv(text, where, rows)
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


# (given_title, time_added, tags, status) of one exported row; time_added 0: never.
_Entry = tuple[str, int, tuple[str, ...], int]


class _Rows:
    """Collects items keyed by URL (a later row replaces an earlier one)."""

    def __init__(self, progress: Progress | None) -> None:
        self.by_url: dict[str, _Entry] = {}
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
            if len(self.tag_tuples) >= _TAG_FIELDS_KEPT:  # rows each tagged their own way
                self.tag_tuples.clear()
            found = self.tag_tuples[raw] = _split_tags(raw, sep)
        return found

    def add(self, url: str, entry: _Entry) -> None:
        if url in self.by_url:
            self.duplicates += 1
            if len(self.duplicate_urls) < MAX_DUPLICATES_SHOWN:
                self.duplicate_urls.append(url)
        self.by_url[url] = entry  # a URL seen again keeps its first place
        self.seen += 1
        if self.progress is not None and self.seen % _PROGRESS_EVERY == 0:
            self.progress(self.seen, False)

    def finish(self) -> list[ExportRow]:
        """The rows in file order, each with its id (``item_id_for_url``), made
        unique: collisions of 52-bit hashes are rare but must not merge two items."""
        rows: list[ExportRow] = []
        used: set[str] = set()
        for url, (title, added, tags, status) in self.by_url.items():
            attempt, item_id = 0, item_id_for_url(url)
            while item_id in used:
                attempt += 1
                item_id = item_id_for_url(url, attempt)
            used.add(item_id)
            rows.append((item_id, url, title, added, tags, status))
        return rows


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
                    with archive.open(info) as raw, _text(raw) as text:
                        _read_csv(text, where, rows)
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
        status_of, add, web = _STATUS_IN.get, rows.add, WEB_SCHEMES
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
                        (title, int(added), rows.tags(tags, "|") if tags else (), status),
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
    if not url[:8].lower().startswith(WEB_SCHEMES):
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
    return ("" if title == url else title, int(added), _split_tags(tags, sep), state)


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


def tty_progress(label: str) -> Progress | None:
    """A progress callback writing to stderr, or None when stderr is no TTY
    (so logs and CI output stay clean). For the CLI to pass in."""
    if not sys.stderr.isatty():
        return None

    def report(count: int, done: bool) -> None:
        sys.stderr.write(f"\r{label}: {count:,} items{chr(10) if done else ''}")
        sys.stderr.flush()

    return report
