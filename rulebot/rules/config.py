"""Load the rules file: YAML with marks → JSON Schema → semantic checks → Config.

Validation runs in layers, and each layer speaks in the user's terms:

1. YAML. ``MarkedLoader`` composes the node tree and builds plain values
   itself, so that every value keeps the line and column of its key and of
   itself, duplicate keys are caught (PyYAML silently keeps the last), and
   the YAML 1.1 traps (``on`` read as a boolean, ``1:30`` as 90, a bare date
   as a date object) are reported while the scalar is still visible as
   written.
2. Schema. ``schemas/rules.schema.json`` (built by ``rulebot.rules.schema``) with
   every error translated into a sentence at the offending key or value
   (``rulebot.rules.schema_messages``).
3. Semantics, only on the parts the schema accepted: cron, regexes, dates,
   tags, timezone, unique names, account-wide actions, test references.

``validate_file`` returns every problem at once; ``load_config`` returns the
typed ``Config`` the planner consumes or raises ``ConfigError``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from rulebot.errors import ConfigError
from rulebot.rules import actions as actions_vocab
from rulebot.rules import capabilities
from rulebot.rules import conditions as conditions_vocab
from rulebot.rules import schema as schema_module
from rulebot.rules.schema_messages import (
    TEST_TIME_KEYS,
    Finding,
    JsonPath,
    boolean_keys,
    did_you_mean,
    schema_findings,
    show,
)
from rulebot.rules.vocab import (
    CompileContext,
    VocabError,
    parse_duration,
    parse_instant,
    tag_values,
)

Mark = tuple[int, int]  # 1-based (line, column)

# A document with more nodes than this is an alias bomb, not a rules file.
MAX_NODES = 200_000
# Rules files are a few KiB; a huge one takes seconds to parse before any check runs.
MAX_BYTES = 1024 * 1024
# `where` blocks nested deeper than this are a generated mistake, not a rule (and the
# compiled selector would hit Python's parser limits).
MAX_WHERE_DEPTH = 20
# Pocket keeps the first 25 characters of a tag.
POCKET_TAG_LENGTH = 25

# -- problems -----------------------------------------------------------------


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


# -- YAML with marks ------------------------------------------------------------

_TAG = "tag:yaml.org,2002:"
_SCALAR_TAGS = {_TAG + name for name in ("str", "int", "float", "bool", "null", "timestamp")}
# YAML 1.1 reads these as booleans (PyYAML only some spellings, other tools all):
_BOOLISH = {"on", "off", "yes", "no", "y", "n"}
_LITERAL_BOOLS = {"true", "True", "TRUE", "false", "False", "FALSE"}


def _mark(yaml_mark: yaml.Mark) -> Mark:
    return yaml_mark.line + 1, yaml_mark.column + 1


class _TooLarge(Exception):
    pass


class MarkedLoader(yaml.SafeLoader):
    """A SafeLoader that builds values itself, recording marks and problems.

    PyYAML's constructor loses the scalar as written and the marks, and keeps
    the last of two duplicate keys; this walks the composed nodes instead.
    ``node_marks`` maps each JSON path to the (line, col) of its key and its value.
    """

    def __init__(self, text: str, boolean_keys: frozenset[str] = frozenset()) -> None:
        super().__init__(text)
        self.boolean_keys = boolean_keys
        self.node_marks: dict[JsonPath, tuple[Mark, Mark]] = {}
        self.findings: list[Finding] = []
        self._nodes_left = MAX_NODES
        self._building: set[int] = set()  # collections on the stack: recursive aliases

    def load_document(self) -> Any:
        node = self.get_single_node()
        if node is None:
            return None
        return self.build(node, (), _mark(node.start_mark))

    def build(self, node: yaml.Node, path: JsonPath, key_mark: Mark) -> Any:
        self._nodes_left -= 1
        if self._nodes_left < 0:
            raise _TooLarge
        self.node_marks[path] = (key_mark, _mark(node.start_mark))
        if isinstance(node, yaml.ScalarNode):
            return self.scalar(node, path)
        if id(node) in self._building:
            self.findings.append(Finding(path, "this alias refers to itself; YAML cannot nest it"))
            return None
        self._building.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                return [
                    self.build(child, (*path, index), _mark(child.start_mark))
                    for index, child in enumerate(node.value)
                ]
            assert isinstance(node, yaml.MappingNode)  # the composer makes no other kind
            return self.mapping(node, path)
        finally:
            self._building.discard(id(node))

    def mapping(self, node: yaml.MappingNode, path: JsonPath) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        explicit: dict[str, Any] = {}
        first_line: dict[str, int] = {}
        own_marks = self.node_marks[path]
        for key_node, value_node in node.value:
            if key_node.tag == _TAG + "merge":
                merged = {**self.merge_sources(value_node, path), **merged}
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                self.findings.append(
                    Finding(path, "a key must be a plain word, not a list or mapping")
                )
                continue
            key = key_node.value  # the key as written: `on:` stays "on", `1:` stays "1"
            key_mark = _mark(key_node.start_mark)
            if key in first_line:
                self.node_marks[(*path, key)] = (key_mark, key_mark)
                self.findings.append(
                    Finding(
                        (*path, key),
                        f"duplicate key {key!r} (first at line {first_line[key]}); "
                        "remove one of them",
                        at_key=True,
                    )
                )
            first_line.setdefault(key, key_mark[0])
            explicit[key] = self.build(value_node, (*path, key), key_mark)
        self.node_marks[path] = own_marks  # merge sources were built at this path too
        return {**merged, **explicit}

    def merge_sources(self, node: yaml.Node, path: JsonPath) -> dict[str, Any]:
        """``<<: *anchor`` or ``<<: [*a, *b]`` (earlier sources win)."""
        sources = node.value if isinstance(node, yaml.SequenceNode) else [node]
        merged: dict[str, Any] = {}
        for source in reversed(sources):
            if not isinstance(source, yaml.MappingNode):
                self.findings.append(
                    Finding(path, "`<<` merges a mapping or a list of mappings (use an alias)")
                )
                continue
            built = self.build(source, path, _mark(source.start_mark))
            if isinstance(built, dict):
                merged.update(built)
        return merged

    def scalar(self, node: yaml.ScalarNode, path: JsonPath) -> Any:
        text = node.value
        plain = node.style is None
        if plain and text.lower() in _BOOLISH and text not in _LITERAL_BOOLS:
            if path and path[-1] in self.boolean_keys:
                self._trap(path, f"`{text}` is read as a boolean by YAML; write true or false")
                return text.lower() in {"on", "yes", "y"}
            self._trap(path, f"`{text}` is read as a boolean by YAML; quote it: '{text}'")
            return text
        if node.tag not in _SCALAR_TAGS:
            self._trap(path, f"YAML tag {node.tag} is not supported here; write a plain value")
            return text
        try:
            value = self.construct_object(node)
        except (yaml.YAMLError, ValueError, TypeError, AttributeError, OverflowError):
            if plain:  # e.g. 2025-13-01 looks like a date but is none: the text stands
                return text
            tag = node.tag.removeprefix(_TAG)
            self._trap(path, f"`{text}` cannot be read as {tag}; fix the value or its tag")
            return text
        if plain and ":" in text and node.tag in {_TAG + "int", _TAG + "float"}:
            # YAML 1.1 sexagesimal: 1:30 is 1*60 + 30.
            self._trap(path, f"`{text}` is read as the number {value} by YAML; quote it: '{text}'")
            return text
        if isinstance(value, dt.date):  # a bare date or timestamp
            if _takes_date(path):
                return value.isoformat()
            self._trap(path, f"`{text}` is read as a date by YAML; quote it: '{text}'")
            return text
        return value

    def _trap(self, path: JsonPath, message: str) -> None:
        self.findings.append(Finding(path, message))


def _takes_date(path: JsonPath) -> bool:
    """Where a bare YAML date means what the user meant: a date field."""
    if path and path[-1] in ("before", "after"):
        return True
    if len(path) == 3 and path[0] == "tests" and path[2] == "now":
        return True
    return (
        len(path) == 5 and path[0] == "tests" and path[2] == "items" and path[4] in TEST_TIME_KEYS
    )


def _yaml_error_message(err: yaml.MarkedYAMLError) -> str:
    message = err.problem or err.context or "not valid YAML"
    if err.problem and err.context:
        where = f" at line {err.context_mark.line + 1}" if err.context_mark else ""
        message = f"{err.problem} {err.context}{where}"
    hints = {
        "'\\t'": "indent with spaces, not tabs",
        "mapping values are not allowed": "quote a value that contains ': ', or fix the "
        "indentation",
        "expected a single document": "a rules file is one document; remove the second `---`",
        "found undefined alias": "define the anchor (&name) before using it (*name)",
        "expected <block end>": "check the indentation: entries of one list or mapping "
        "must line up",
    }
    hint = next((h for needle, h in hints.items() if needle in message), None)
    return f"YAML syntax error: {message}" + (f"; {hint}" if hint else "")


# -- the checked document --------------------------------------------------------


@dataclass
class _Checked:
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


def _check_text(text: str, filename: str) -> _Checked:
    checked = _Checked(filename)
    if len(text) > MAX_BYTES:
        checked.at(1, 1, _too_large(len(text.encode("utf-8", "surrogatepass"))))
        return checked
    if "\x00" in text:
        checked.at(1, 1, "this is a binary file (it contains NUL bytes), not YAML text")
        return checked
    try:
        loader = MarkedLoader(text, boolean_keys())  # the reader vets characters here
        try:
            document = loader.load_document()
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line, col = _mark(mark) if mark else (1, 1)
        checked.at(line, col, _yaml_error_message(err))
        return checked
    except yaml.reader.ReaderError as err:
        line = text.count("\n", 0, err.position) + 1
        col = err.position - (text.rfind("\n", 0, err.position) + 1) + 1
        character = chr(err.character) if isinstance(err.character, int) else err.character
        checked.at(line, col, f"character {character!r} is not allowed in YAML; remove it")
        return checked
    except yaml.YAMLError as err:
        checked.at(1, 1, f"YAML error: {err}")
        return checked
    except _TooLarge:
        checked.at(1, 1, f"the document has more than {MAX_NODES} values (an alias bomb?)")
        return checked
    checked.document, checked.marks = document, loader.node_marks
    checked.findings.extend(loader.findings)
    if document is None:
        checked.at(1, 1, "the file is empty; start it with `version: 1` and `rules:`")
        return checked
    if not isinstance(document, dict):
        kind = "a list" if isinstance(document, list) else f"the value {show(document)}"
        checked.at(
            1, 1, f"the top level must be a mapping (`version: 1`, `rules: ...`), not {kind}"
        )
        return checked
    trapped = {finding.path for finding in checked.findings}
    for finding in schema_findings(document):
        if finding.path not in trapped:  # the YAML layer already said it better
            checked.findings.append(finding)
    _Semantics(checked).run()
    return checked


def _check_bytes(data: bytes, filename: str) -> _Checked:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        checked = _Checked(filename)
        checked.at(
            1,
            1,
            f"the file is not UTF-8 text (byte 0x{data[err.start]:02x} at offset {err.start}); "
            "save it as UTF-8",
        )
        return checked
    return _check_text(text, filename)


def _finish(checked: _Checked) -> list[Problem]:
    located = {checked.locate(finding) for finding in checked.findings}
    problems = set(checked.problems) | located
    return sorted(problems, key=lambda p: (p.line, p.col, p.message))


def _run(
    check: Callable[[Any, str], _Checked], source: str | bytes, filename: str
) -> tuple[_Checked, list[Problem]]:
    try:
        checked = check(source, filename)
    except RecursionError:
        checked = _Checked(filename)
        checked.at(1, 1, "the document is nested too deeply")
    return checked, _finish(checked)


# -- semantic layer ---------------------------------------------------------------

_CRON_FIELDS = (
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day-of-month", 1, 31),
    ("month", 1, 12),
    ("day-of-week", 0, 7),
)
_MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
_DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
_NAMES = {
    "month": {m: i + 1 for i, m in enumerate(_MONTHS)},
    "day-of-week": {d: i for i, d in enumerate(_DAYS)},
}
_MONTH_DAYS = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]


class _CronExtension(Exception):
    """Syntax beyond the plain five fields (L, W, #, ?): croniter decides."""


def _cron_field(text: str, name: str, low: int, high: int) -> set[int]:
    """One cron field → its values; raises ValueError with the words to show."""
    names = _NAMES.get(name, {})

    def number(token: str) -> int:
        if token.isdigit():
            value = int(token)
        elif token.lower() in names:
            return names[token.lower()]
        else:
            raise _CronExtension
        if not low <= value <= high:
            raise ValueError(f"{name} field {token!r} is out of range {low}-{high}")
        return value

    values: set[int] = set()
    for part in text.split(","):
        span, _, step_text = part.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) < 1:
                raise ValueError(f"{name} field {part!r}: the step after / must be 1 or more")
            step = int(step_text)
        if span == "*":
            first, last = low, high
        elif "-" in span:
            start, _, end = span.partition("-")
            first, last = number(start), number(end)
            if first > last:
                raise ValueError(f"{name} field {part!r} runs backwards; write {end}-{start}")
        else:
            first = number(span)
            last = high if step_text else first
        values.update(range(first, last + 1, step))
    return values


def cron_problem(expression: str) -> str | None:
    """Why a 5-field cron expression is wrong, in words, or None when it is fine."""
    fields = expression.split()
    if len(fields) != 5:
        return (
            f"schedule {expression!r} has {len(fields)} field(s); write 5: minute hour "
            "day-of-month month day-of-week, e.g. '0 6 * * 1'"
        )
    parsed: list[set[int] | None] = []
    for text, (name, low, high) in zip(fields, _CRON_FIELDS, strict=True):
        try:
            parsed.append(_cron_field(text, name, low, high))
        except _CronExtension:
            parsed.append(None)
        except ValueError as err:
            return str(err)
    # croniter is what schedule.py runs, so it has the last word.
    from croniter import croniter

    if not croniter.is_valid(expression):
        return f"schedule {expression!r} is not a valid cron expression; e.g. '0 6 * * 1'"
    days, months = parsed[2], parsed[3]
    if days and months and fields[4] == "*" and fields[2] != "*":
        longest = max(_MONTH_DAYS[m - 1] for m in months)
        if min(days) > longest:
            return f"schedule {expression!r} never runs: no such day in those months"
    from rulebot.rules.schedule import FIRE_HORIZON_YEARS, fires_within

    if not fires_within(expression, dt.datetime.now()):
        return (
            f"schedule {expression!r} never runs: no time in the next {FIRE_HORIZON_YEARS} "
            "years matches it (check the day-of-month, month and day-of-week together)"
        )
    return None


def _timezone(name: str) -> tuple[dt.tzinfo | None, str | None]:
    try:
        return ZoneInfo(name), None
    except (ZoneInfoNotFoundError, ValueError, OSError):
        pass
    from zoneinfo import available_timezones

    hint = did_you_mean(name, sorted(available_timezones()), "")
    if "?" not in hint:
        hint = "; write an IANA name such as UTC or Europe/Berlin"
    return None, f"unknown timezone {name!r}{hint}"


class _Semantics:
    """Checks the schema cannot express, run only on the parts it accepted."""

    def __init__(self, checked: _Checked) -> None:
        self.checked = checked
        self.dirty = [finding.path for finding in checked.findings]
        self.caps = capabilities.for_document(checked.document)
        self.ctx = CompileContext(fold=self.caps.fold)
        self.rule_names: dict[str, JsonPath] = {}

    def warn(self, path: JsonPath, message: str) -> None:
        self.checked.findings.append(Finding(path, message, at_key=True, severity="warning"))

    def clean(self, path: JsonPath) -> bool:
        """No earlier finding at or below this path: its value is schema-valid."""
        return not any(p[: len(path)] == path for p in self.dirty)

    def add(self, path: JsonPath, message: str) -> None:
        self.checked.findings.append(Finding(path, message))

    def run(self) -> None:
        document = self.checked.document
        zone_name = document.get("timezone", schema_module.DEFAULT_TIMEZONE)
        if self.clean(("timezone",)) and isinstance(zone_name, str):
            zone, message = _timezone(zone_name)
            if message:
                self.add(("timezone",), message)
            self.checked.timezone = zone or dt.UTC
        self.ctx = CompileContext(self.checked.timezone, fold=self.caps.fold)
        blocks = [key for key in ("pocket", *schema_module.SERVICES) if key in document]
        for extra in blocks[1:]:
            self.add(
                (extra,),
                f"a config has at most one source block, and this one already has "
                f"`{blocks[0]}:`; keep the one where your library lives",
            )
        for block in blocks:  # a duration the schema's pattern takes may still be too long
            settings = document.get(block)
            if isinstance(settings, dict) and "full_scan_every" in settings:
                path = (block, "full_scan_every")
                if self.clean(path):
                    self.duration(settings["full_scan_every"], path)
        rules = document.get("rules")
        for index, rule in enumerate(rules if isinstance(rules, list) else []):
            if isinstance(rule, dict):
                self.rule(rule, ("rules", index))
        tests = document.get("tests")
        for index, test in enumerate(tests if isinstance(tests, list) else []):
            if isinstance(test, dict):
                self.test(test, ("tests", index))

    def rule(self, rule: dict[str, Any], path: JsonPath) -> None:
        name = rule.get("name")
        if isinstance(name, str) and self.clean((*path, "name")):
            if name in self.rule_names:
                line = self.checked.line_of(self.rule_names[name])
                self.add(
                    (*path, "name"),
                    f"rule name {name!r} is already used at line {line}; rule names must be unique",
                )
            else:
                self.rule_names[name] = (*path, "name")
        if "grace" in rule and self.clean((*path, "grace")):
            self.duration(rule["grace"], (*path, "grace"))
        schedule = rule.get("schedule")
        if isinstance(schedule, str) and self.clean((*path, "schedule")):
            message = cron_problem(schedule)
            if message:
                self.add((*path, "schedule"), message)
        where = None
        if "where" in rule and self.clean((*path, "where")):
            where = self.where(rule, path)
        compiled = self.actions(rule, path)
        self.checked.compiled[int(path[1])] = (where, compiled)
        if isinstance(name, str):
            self.capabilities(rule, name, compiled, path)
            self.tag_lengths(rule, path)

    def where(self, rule: dict[str, Any], path: JsonPath) -> conditions_vocab.Where | None:
        deepest = _where_depth(rule["where"], (*path, "where"))
        if deepest is not None:
            self.add(
                deepest,
                f"where is nested more than {MAX_WHERE_DEPTH} blocks deep (all/any/not); "
                "flatten it: `all` inside `all` is the same as one `all`",
            )
            return None
        try:
            return conditions_vocab.compile_where(rule["where"], self.ctx)
        except VocabError as err:
            self.add((*path, "where", *err.path), err.message)
            return None

    def capabilities(
        self, rule: dict[str, Any], name: str, compiled: list[actions_vocab.Action], path: JsonPath
    ) -> None:
        """Conditions the source can never answer (warning), actions it cannot do (error)."""
        caps = self.caps
        if self.clean((*path, "where")):
            for gap in capabilities.condition_gaps(rule.get("where"), caps):
                report = self.add if gap.refused else self.warn  # no such notion: an error
                report((*path, "where", *gap.path), capabilities.gap_message(name, gap, caps))
        raw_actions = rule.get("actions")
        for position, raw in enumerate(raw_actions if isinstance(raw_actions, list) else []):
            word = _action_word(raw)
            if word in actions_vocab.REGISTRY and word not in caps.actions:
                self.add(
                    (*path, "actions", position), capabilities.action_message(name, word, caps)
                )
        per_item = [action for action in compiled if not action.account_wide]
        pocket = self.checked.document.get("pocket")
        if caps.batches and per_item and isinstance(pocket, dict):
            size = pocket.get("batch_size", schema_module.DEFAULT_BATCH_SIZE)
            clean = self.clean(("pocket", "batch_size"))
            if clean and isinstance(size, int) and len(per_item) > size:
                # crash recovery relies on one item's actions landing in one request
                self.add(
                    (*path, "actions"),
                    f"rule {name} sends up to {len(per_item)} actions per item, but "
                    f"pocket.batch_size is {size}; one item's actions must travel in one "
                    f"request: set batch_size to at least {len(per_item)}",
                )

    def tag_lengths(self, rule: dict[str, Any], path: JsonPath) -> None:
        """Pocket keeps 25 characters of a tag: a longer one never reads back as written."""
        if self.caps.kind != "pocket":
            return
        mark = f"rulebot:{rule.get('name')}:YYYY-MM-DD"
        if "grace" in rule and len(mark) > POCKET_TAG_LENGTH:
            self.warn(
                (*path, "grace"),
                f"the grace mark {mark} is {len(mark)} characters long; Pocket keeps "
                f"{POCKET_TAG_LENGTH}, so the mark would not read back: use a rule name of at "
                f"most {POCKET_TAG_LENGTH - len(mark) + len(str(rule.get('name')))} characters",
            )
        raw_actions = rule.get("actions")
        for position, raw in enumerate(raw_actions if isinstance(raw_actions, list) else []):
            action_path: JsonPath = (*path, "actions", position)
            if not isinstance(raw, dict) or len(raw) != 1 or not self.clean(action_path):
                continue
            ((word, value),) = raw.items()
            for inner, tag in _written_tags(word, value):
                if len(tag) > POCKET_TAG_LENGTH:
                    self.warn(
                        (*action_path, word, *inner),
                        f"tag {show(tag)} is {len(tag)} characters long; Pocket keeps the first "
                        f"{POCKET_TAG_LENGTH} characters ({show(tag[:POCKET_TAG_LENGTH])}), so "
                        "the tag will not read back as written",
                    )

    def actions(self, rule: dict[str, Any], path: JsonPath) -> list[actions_vocab.Action]:
        compiled: list[actions_vocab.Action] = []
        wide: list[tuple[JsonPath, str]] = []  # account-wide actions
        per_item: list[tuple[JsonPath, str]] = []
        raw_actions = rule.get("actions")
        for position, raw in enumerate(raw_actions if isinstance(raw_actions, list) else []):
            action_path: JsonPath = (*path, "actions", position)
            if not self.clean(action_path):
                continue
            try:
                action = actions_vocab.compile_action(raw, self.ctx)
            except VocabError as err:
                self.add((*action_path, *err.path), err.message)
                continue
            compiled.append(action)
            (wide if action.account_wide else per_item).append((action_path, action.name))
        if "where" in rule:
            for action_path, name in wide:
                self.add(
                    action_path,
                    f"{name} is account-wide (it acts on the whole library), so it cannot be "
                    "in a rule with `where`; move it to a rule without `where`",
                )
        elif per_item and not wide:
            self.checked.findings.append(
                Finding(
                    (*path, "actions"),
                    f"{', '.join(name for _, name in per_item)} acts on matching items, but this "
                    "rule has no `where`; write `where: {}` for every item (the explicit "
                    "'every item'), or add conditions",
                    at_key=True,
                )
            )
        elif wide and per_item:
            names = ", ".join(name for _, name in wide)
            for action_path, name in per_item:
                self.add(
                    action_path,
                    f"{name} acts on matching items, but this rule has no `where` and holds "
                    f"account-wide {names}; put the account-wide actions in a rule of their own",
                )
        if "grace" in rule and (wide or not per_item) and self.clean((*path, "grace")):
            self.add(
                (*path, "grace"),
                "grace delays a rule's item actions, and this rule has none; remove it",
            )
        if wide and not per_item:
            for key in ("limit", "keep_newest"):
                if key in rule and self.clean((*path, key)):
                    self.add(
                        (*path, key),
                        f"{key} counts items, and an account-wide rule acts on none; remove it",
                    )
        return compiled

    def test(self, test: dict[str, Any], path: JsonPath) -> None:
        name = test.get("name")
        if isinstance(name, str) and self.clean((*path, "name")):
            for other in self.checked.document["tests"][: int(path[1])]:
                if isinstance(other, dict) and other.get("name") == name:
                    self.add(
                        (*path, "name"),
                        f"test name {name!r} is used twice; give each test its own name",
                    )
                    break
        if isinstance(test.get("now"), str) and self.clean((*path, "now")):
            self.instant(test["now"], (*path, "now"))
        items = test.get("items")
        for position, item in enumerate(items if isinstance(items, list) else []):
            item_path: JsonPath = (*path, "items", position)
            if not isinstance(item, dict) or not self.clean(item_path):
                continue
            for key in sorted(TEST_TIME_KEYS & item.keys()):
                if re.fullmatch(r"[0-9]+[mhdw]", str(item[key])):
                    self.duration(item[key], (*item_path, key))
                else:
                    self.instant(item[key], (*item_path, key))
            self.tags(item.get("tags"), (*item_path, "tags"))
        expect = test.get("expect")
        for position, expected in enumerate(expect if isinstance(expect, list) else []):
            expect_path: JsonPath = (*path, "expect", position)
            if not isinstance(expected, dict) or not self.clean(expect_path):
                continue
            self.tags(expected.get("tags"), (*expect_path, "tags"))
            rule = expected.get("rule")
            if isinstance(rule, str) and rule not in self.all_rule_names():
                self.add(
                    (*expect_path, "rule"),
                    f"expect names rule {rule!r}, which is not in rules"
                    + did_you_mean(rule, self.all_rule_names(), "rules are"),
                )

    def all_rule_names(self) -> list[str]:
        # Every name written, even one with a problem: that one is reported already.
        rules = self.checked.document.get("rules")
        return [
            rule["name"]
            for rule in (rules if isinstance(rules, list) else [])
            if isinstance(rule, dict) and isinstance(rule.get("name"), str)
        ]

    def instant(self, value: Any, path: JsonPath) -> None:
        try:
            parse_instant(value, self.ctx.timezone)
        except VocabError as err:
            self.add(path, err.message)

    def duration(self, value: Any, path: JsonPath) -> None:
        try:
            parse_duration(str(value))
        except VocabError as err:
            self.add(path, err.message)

    def tags(self, value: Any, path: JsonPath) -> None:
        if isinstance(value, list):
            try:
                tag_values(value)
            except VocabError as err:
                self.add((*path, *err.path), err.message)


def _where_depth(where: Any, path: JsonPath, depth: int = 1) -> JsonPath | None:
    """The path of the first block nested deeper than ``MAX_WHERE_DEPTH``, or None."""
    if not isinstance(where, dict):
        return None
    if depth > MAX_WHERE_DEPTH:
        return path
    for key in ("all", "any"):
        members = where.get(key)
        for index, member in enumerate(members if isinstance(members, list) else []):
            found = _where_depth(member, (*path, key, index), depth + 1)
            if found:
                return found
    return _where_depth(where.get("not"), (*path, "not"), depth + 1)


def _action_word(raw: Any) -> str | None:
    """The action's name as written: `archive` or the key of `{tags_add: [...]}`."""
    if isinstance(raw, dict) and raw:
        raw = next(iter(raw))
    return raw if isinstance(raw, str) else None


def _written_tags(word: str, value: Any) -> list[tuple[JsonPath, str]]:
    """The tags an action writes to items, with their path inside the action's value."""
    base: JsonPath = ()
    if word in ("tags_add", "tags_replace"):
        written = value
    elif word == "add" and isinstance(value, dict):
        written, base = value.get("tags"), ("tags",)
    elif word == "tag_rename" and isinstance(value, dict):
        new = value.get("new_tag")
        return [(("new_tag",), new.strip())] if isinstance(new, str) else []
    else:
        return []
    if isinstance(written, str):
        return [(base, tag.strip()) for tag in written.split(",")]
    if isinstance(written, list):
        return [((*base, i), str(tag).strip()) for i, tag in enumerate(written)]
    return []


# -- the typed model ---------------------------------------------------------------


@dataclass(frozen=True)
class PocketSettings:
    base_url: str
    page_size: int = schema_module.DEFAULT_PAGE_SIZE
    batch_size: int = schema_module.DEFAULT_BATCH_SIZE
    consumer_key_env: str = schema_module.DEFAULT_CONSUMER_KEY_ENV
    access_token_env: str = schema_module.DEFAULT_ACCESS_TOKEN_ENV
    timeout: float = schema_module.DEFAULT_TIMEOUT
    max_rate_wait: float = schema_module.DEFAULT_MAX_RATE_WAIT
    max_items: int | None = None  # a sync's listing bound; None: automatic (rulebot.sources.paging)


@dataclass(frozen=True)
class Limits:
    max_actions: int = schema_module.DEFAULT_MAX_ACTIONS
    max_deletes: int = schema_module.DEFAULT_MAX_DELETES


@dataclass
class Rule:
    name: str
    actions: list[actions_vocab.Action]
    where: conditions_vocab.Where | None = None
    description: str = ""
    enabled: bool = True
    schedule: str | None = None
    limit: int | None = None
    keep_newest: int = 0
    line: int = 0
    grace: int | None = None  # seconds: two-phase mark-for-op (planner.Grace)

    @property
    def account_wide(self) -> bool:
        """No `where`: its actions act on the whole library (tag_rename, …)."""
        return self.where is None and all(a.account_wide for a in self.actions)


@dataclass
class TestCase:
    name: str
    items: list[dict[str, Any]]
    expect: list[dict[str, Any]]
    now: str | None = None
    line: int = 0

    __test__ = False  # not a pytest class


@dataclass(frozen=True)
class ServiceSettings:
    """A native source block (`karakeep:` …): where, how fast, which variables."""

    kind: str
    base_url: str
    page_size: int
    concurrency: int = schema_module.DEFAULT_CONCURRENCY
    timeout: float = schema_module.DEFAULT_TIMEOUT
    max_rate_wait: float = schema_module.DEFAULT_MAX_RATE_WAIT
    max_items: int | None = None  # a sync's listing bound; None: automatic (rulebot.sources.paging)
    env: Mapping[str, str] = field(default_factory=dict)  # `api_key_env` -> variable name
    extra: Mapping[str, Any] = field(default_factory=dict)  # the service's own keys, as written


@dataclass
class Config:
    path: Path
    sha256: str
    version: int
    pocket: PocketSettings | None
    store: Path
    timezone: dt.tzinfo
    timezone_name: str
    limits: Limits
    rules: list[Rule]
    tests: list[TestCase]
    # what `validate` warns about (conditions the source never answers, long tags…);
    # the CLI shows them on stderr, the config works regardless
    warnings: list[Problem] = field(default_factory=list)
    service: ServiceSettings | None = None  # a native source block, if any

    @property
    def source_kind(self) -> str:
        """`local`, `pocket`, or a native source's block name (`karakeep`, …)."""
        if self.pocket is not None:
            return "pocket"
        return self.service.kind if self.service is not None else "local"

    def rule(self, name: str) -> Rule | None:
        return next((rule for rule in self.rules if rule.name == name), None)


def _build(
    checked: _Checked, path: Path, digest: str, warnings: list[Problem] | None = None
) -> Config:
    document = checked.document
    pocket = document.get("pocket")
    settings = None
    if pocket is not None:
        numbers = {
            "page_size": int,
            "batch_size": int,
            "timeout": float,
            "max_rate_wait": float,
            "max_items": int,
        }
        settings = PocketSettings(
            **{key: numbers.get(key, str)(value) for key, value in pocket.items()}
        )
    service = None
    for name, spec in schema_module.SERVICES.items():
        block = document.get(name)
        if isinstance(block, dict):
            service = ServiceSettings(
                kind=name,
                base_url=str(block["base_url"]),
                page_size=int(block.get("page_size", spec.page_size)),
                concurrency=int(block.get("concurrency", schema_module.DEFAULT_CONCURRENCY)),
                timeout=float(block.get("timeout", schema_module.DEFAULT_TIMEOUT)),
                max_rate_wait=float(
                    block.get("max_rate_wait", schema_module.DEFAULT_MAX_RATE_WAIT)
                ),
                max_items=int(block["max_items"]) if "max_items" in block else None,
                env={
                    key: str(block.get(key, default)) for key, default in spec.credentials.items()
                },
                extra={key: block.get(key, rule["default"]) for key, rule in spec.extra.items()},
            )
    store = Path(document.get("store", schema_module.DEFAULT_STORE)).expanduser()
    if not store.is_absolute():  # relative to the config, not to wherever rulebot runs
        store = path.parent / store
    limits = Limits(**{key: int(value) for key, value in document.get("limits", {}).items()})
    rules = []
    for index, raw in enumerate(document["rules"]):
        where, compiled = checked.compiled[index]
        limit = raw.get("limit")
        rules.append(
            Rule(
                name=raw["name"],
                actions=compiled,
                where=where,
                description=raw.get("description", ""),
                enabled=raw.get("enabled", True),
                schedule=raw.get("schedule"),
                limit=None if limit is None else int(limit),
                keep_newest=int(raw.get("keep_newest", 0)),
                line=checked.line_of(("rules", index)),
                grace=parse_duration(raw["grace"]) if "grace" in raw else None,
            )
        )
    tests = [
        TestCase(
            name=raw["name"],
            items=raw["items"],
            expect=raw["expect"],
            now=raw.get("now"),
            line=checked.line_of(("tests", index)),
        )
        for index, raw in enumerate(document.get("tests", []))
    ]
    return Config(
        path=path,
        sha256=digest,
        version=int(document["version"]),
        pocket=settings,
        store=store,
        timezone=checked.timezone,
        timezone_name=document.get("timezone", schema_module.DEFAULT_TIMEZONE),
        limits=limits,
        rules=rules,
        tests=tests,
        warnings=list(warnings or []),
        service=service,
    )


# -- entry points -------------------------------------------------------------------


def _too_large(size: int) -> str:
    return (
        f"the file is {size / 1024 / 1024:.1f} MiB; a rules file may be at most "
        f"{MAX_BYTES // 1024} KiB (is this the right file?)"
    )


def _read(path: Path) -> tuple[bytes | None, list[Problem]]:
    name = str(path)
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_BYTES + 1)  # never more: the cap is checked before parsing
            if len(data) > MAX_BYTES:
                size = max(path.stat().st_size, len(data))
                return None, [Problem(name, 1, 1, _too_large(size))]
            return data, []
    except FileNotFoundError:
        message = "no such file; create it or pass -c FILE"
    except IsADirectoryError:
        message = "is a directory; pass the rules file with -c FILE"
    except OSError as err:
        message = f"cannot read the file: {err.strerror or err}"
    return None, [Problem(name, 1, 1, message)]


def validate_file(path: str | Path) -> list[Problem]:
    """Every problem in the config file, sorted by line; [] when it is valid."""
    data, problems = _read(Path(path))
    if data is None:
        return problems
    return _run(_check_bytes, data, str(path))[1]


def validate_text(text: str, filename: str = "rules.yaml") -> list[Problem]:
    return _run(_check_text, text, filename)[1]


def errors_in(problems: Sequence[Problem]) -> list[Problem]:
    return [problem for problem in problems if problem.is_error]


def load_config(path: str | Path) -> Config:
    """The typed config; raises ``ConfigError`` with every problem."""
    path = Path(path)
    data, problems = _read(path)
    if data is None:
        raise ConfigError(problems)
    checked, problems = _run(_check_bytes, data, str(path))
    if errors_in(problems):
        raise ConfigError(errors_in(problems))
    return _build(checked, path, hashlib.sha256(data).hexdigest(), problems)


def load_config_text(text: str, filename: str = "rules.yaml") -> Config:
    """``load_config`` for text in memory (tests); paths resolve from filename's directory."""
    checked, problems = _run(_check_text, text, filename)
    if errors_in(problems):
        raise ConfigError(errors_in(problems))
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return _build(checked, Path(filename), digest, problems)
