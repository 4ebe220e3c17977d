"""Text that came from a library, an export or a server, made safe to print.

A title is data, not terminal input: ``ESC[2J`` would clear the screen and
an OSC sequence would set the window title. Every C0/C1 control character
(and the bidirectional overrides that make text read differently from what
it is) is shown as a visible escape instead; whitespace becomes a space
where the output is one line per entry.
"""

from __future__ import annotations

import re

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


def printable_lines(text: object) -> str:
    """Like :func:`printable`, but line breaks stay (error messages, logs)."""
    value = str(text)
    if not _UNSAFE_BUT_NEWLINE.search(value):
        return value
    return _UNSAFE_BUT_NEWLINE.sub(lambda m: " " if m.group() == "\t" else _escape(m), value)
