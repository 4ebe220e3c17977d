"""What checking a rules file finds: ``Problem`` (one finding, located for
a human and an editor), how problems render (text, JSON, GitHub
annotations), and ``Checked``, what the layers have learned so far."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rulebot.rules.schema_messages import Finding, JsonPath, Mark

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def one_line(text: str) -> str:
    """Control characters escaped: a message is one line, and a terminal obeys none of it."""
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


@dataclass(frozen=True)
class Problem:
    """One finding, located for a human and an editor."""

    file: str
    line: int
    col: int
    message: str
    path: str = "$"
    severity: str = "error"  # "warning": shown, but the config loads and validate exits 0

    def __post_init__(self) -> None:
        # user text (keys, values, file names) reaches messages; none may break the line
        for name in ("file", "message", "path"):
            object.__setattr__(self, name, one_line(getattr(self, name)))

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def __str__(self) -> str:
        label = "" if self.is_error else f"{self.severity}: "
        return f"{self.file}:{self.line}:{self.col}: {label}{self.message} [{self.path}]"

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "line": self.line,
            "col": self.col,
            "severity": self.severity,
            "message": self.message,
            "path": self.path,
        }


def json_path(path: JsonPath) -> str:
    """``("rules", 0, "where", "tag")`` → ``$.rules[0].where.tag``."""
    text = "$"
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", part):
            text += f".{part}"
        else:
            text += "[" + repr(part) + "]"
    return text


def render_problems(problems: Sequence[Problem], fmt: str = "text") -> str:
    """Problems as ``text`` (one a line), ``json`` or ``github`` annotations."""
    if fmt == "text":
        return "\n".join(str(problem) for problem in problems)
    if fmt == "json":
        import json

        return json.dumps([problem.as_dict() for problem in problems], indent=2)
    if fmt == "github":
        return "\n".join(
            f"::{'error' if p.is_error else 'warning'} file={_gh_property(p.file)},"
            f"line={p.line},col={p.col}::{_gh_data(p.message)}"
            for p in problems
        )
    raise ValueError(f"unknown format {fmt!r}; use text, json or github")


def _gh_data(text: str) -> str:
    # GitHub's workflow-command escaping (actions/toolkit, escapeData).
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _gh_property(text: str) -> str:
    return _gh_data(text).replace(":", "%3A").replace(",", "%2C")


@dataclass
class Checked:
    """What validation learned; ``Config`` is built from it when clean."""

    filename: str
    document: Any = None
    marks: dict[JsonPath, tuple[Mark, Mark]] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)  # located, final
    compiled: dict[int, tuple[Any, list[Any]]] = field(default_factory=dict)
    timezone: dt.tzinfo = dt.UTC

    def at(self, line: int, col: int, message: str, path: str = "$") -> None:
        self.problems.append(Problem(self.filename, line, col, message, path))

    def locate(self, finding: Finding) -> Problem:
        path = finding.path
        while path and path not in self.marks:  # a vocabulary path may go deeper
            path = path[:-1]
        key_mark, value_mark = self.marks.get(path, ((1, 1), (1, 1)))
        line, col = key_mark if finding.at_key and path == finding.path else value_mark
        return Problem(self.filename, line, col, finding.message, json_path(path), finding.severity)

    def line_of(self, path: JsonPath) -> int:
        return self.marks.get(path, ((1, 1), (1, 1)))[1][0]
