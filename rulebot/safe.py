"""Text that came from a library, an export or a server, made safe to print.

A title is data, not terminal input: ``ESC[2J`` would clear the screen and
an OSC sequence would set the window title. Every C0/C1 control character
(and the bidirectional overrides that make text read differently from what
it is) is shown as a visible escape instead; whitespace becomes a space
where the output is one line per entry. JSON on a terminal keeps its data
exact: those characters become ``\\u`` escapes (``json_text``).

Nor is it spreadsheet input: a CSV cell starting with ``=``, ``+``, ``-``,
``@``, tab or CR is run as a formula (``=HYPERLINK(…)``), so every CSV
rulebot writes puts a ``'`` before such a cell (OWASP, ``quote_cell``).
"""

from __future__ import annotations

import json
import re
from typing import Any

# C0 and C1 controls, DEL, and the bidi embedding/override/isolate marks
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_UNSAFE_BUT_NEWLINE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_SPACES = {"\t": " ", "\n": " ", "\r": " "}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    return f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}"


def printable(text: object) -> str:
    """One line: whitespace controls become spaces, other controls visible escapes."""
    value = str(text)
    if not _UNSAFE.search(value):
        return value  # the common case costs one scan
    return _UNSAFE.sub(lambda m: _SPACES.get(m.group()) or _escape(m), value)


def clipped(text: object, width: int) -> str:
    """``printable`` on one line, whitespace runs collapsed, cut at ``width``
    characters with "…": a 100,000-character title is no listing's line."""
    line = " ".join(printable(text).split())
    return line if len(line) <= width else line[: width - 1] + "…"


def printable_lines(text: object) -> str:
    """Like :func:`printable`, but line breaks stay (error messages, logs)."""
    value = str(text)
    if not _UNSAFE_BUT_NEWLINE.search(value):
        return value
    return _UNSAFE_BUT_NEWLINE.sub(lambda m: " " if m.group() == "\t" else _escape(m), value)


# -- JSON --------------------------------------------------------------------------
# what json.dumps(ensure_ascii=False) leaves raw: C1 controls, DEL, bidi marks
_UNSAFE_IN_JSON = re.compile("[\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def json_text(value: Any) -> str:
    """``value`` as indented JSON (non-ASCII text as is) that a terminal
    shows as written: every character ``printable`` would escape is a
    ``\\u`` escape, so a JSON reader gets the exact data back."""
    text = json.dumps(value, indent=2, ensure_ascii=False)
    return _UNSAFE_IN_JSON.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


# -- CSV -----------------------------------------------------------------------------
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _needs_quote(cell: str) -> bool:
    """Would a spreadsheet run this cell (or would ``unquote_cell`` alter it)?"""
    while cell[:1] == "'":
        cell = cell[1:]
    return cell[:1] in FORMULA_START


def quote_cell(cell: str) -> str:
    """OWASP CSV-injection guard: ``'`` before a cell a spreadsheet would run."""
    return "'" + cell if _needs_quote(cell) else cell


def unquote_cell(cell: str) -> str:
    """Undo ``quote_cell`` exactly: drop the one ``'`` it added."""
    return cell[1:] if cell[:1] == "'" and _needs_quote(cell[1:]) else cell


def sheet_cell(value: object) -> str:
    """A CSV cell for a terminal and a spreadsheet alike (``rulebot items``):
    one line with control characters escaped, then guarded against formulas.
    An export file instead keeps its text exact (``quote_cell`` only)."""
    return quote_cell(printable(value))
