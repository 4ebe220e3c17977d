"""Writing the library as a Pocket export: ``write_export`` picks the form
(CSV, a zip of CSV parts, ``ril_export.html``) from the file suffix, in the
shape rulebot.library.export_reader reads back exactly (its docstring lists
the normalisation both sides keep).
"""

from __future__ import annotations

import csv
import html
import io
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import IO

from rulebot.errors import RulebotError
from rulebot.files import atomic_write
from rulebot.library.export_reader import CSV_HEADER, WEB_SCHEMES
from rulebot.library.item import ARCHIVED, UNREAD, Item
from rulebot.safe import quote_cell

ROWS_PER_PART = 10_000  # what Pocket put in each part_*.csv
_STATUS_OUT = {UNREAD: "unread", ARCHIVED: "archive"}


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
            if not item.url[:8].lower().startswith(WEB_SCHEMES):
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
