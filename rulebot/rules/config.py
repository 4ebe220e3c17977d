"""Load the rules file: YAML with marks → JSON Schema → semantic checks → Config.

Validation runs in layers, and each layer speaks in the user's terms:

1. YAML (``rulebot.rules.marked_yaml``). ``MarkedLoader`` composes the node
   tree and builds plain values itself, so that every value keeps the line
   and column of its key and of itself, duplicate keys are caught (PyYAML
   silently keeps the last), and the YAML 1.1 traps (``on`` read as a
   boolean, ``1:30`` as 90, a bare date as a date object) are reported
   while the scalar is still visible as written.
2. Schema. ``schemas/rules.schema.json`` (built by ``rulebot.rules.schema``) with
   every error translated into a sentence at the offending key or value
   (``rulebot.rules.schema_messages``).
3. Semantics (``rulebot.rules.semantics``), only on the parts the schema
   accepted: cron, regexes, dates, tags, timezone, unique names, account-wide
   actions, test references.

Each finding becomes a located ``Problem`` (``rulebot.rules.problems``).
A text the first two layers found nothing in is remembered as read
(``rulebot.rules.validated``): the next time, neither runs (nor is PyYAML
imported), and the semantic checks run on the document and marks recalled.

``validate_file`` returns every problem at once; ``load_config`` returns the
typed ``Config`` the planner consumes or raises ``ConfigError``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rulebot.errors import ConfigError
from rulebot.rules import actions as actions_vocab
from rulebot.rules import conditions as conditions_vocab
from rulebot.rules import schema as schema_module
from rulebot.rules import validated
from rulebot.rules.problems import Checked, Problem
from rulebot.rules.problems import render_problems as render_problems  # cli.py's, re-exported
from rulebot.rules.schema_messages import boolean_keys, schema_findings, show
from rulebot.rules.semantics import Semantics
from rulebot.rules.vocab import parse_duration

# Rules files are a few KiB; a huge one takes seconds to parse before any check runs.
MAX_BYTES = 1024 * 1024

# -- the layers in turn ---------------------------------------------------------


def _check_text(text: str, filename: str) -> Checked:
    checked = Checked(filename)
    if len(text) > MAX_BYTES:
        checked.at(1, 1, _too_large(len(text.encode("utf-8", "surrogatepass"))))
        return checked
    if "\x00" in text:
        checked.at(1, 1, "this is a binary file (it contains NUL bytes), not YAML text")
        return checked
    recalled = validated.recall(text)  # read before, and nothing found: no YAML, no schema
    if recalled is not None:
        checked.document, checked.marks = recalled
    elif _read_yaml(text, checked):
        _check_schema(text, checked)
    else:
        return checked
    Semantics(checked).run()
    return checked


def _read_yaml(text: str, checked: Checked) -> bool:
    """The YAML layer: the document and its marks into ``checked``, False
    when there is no mapping to check further."""
    import yaml  # here, not above: a remembered file is never read as YAML

    from rulebot.rules.marked_yaml import (
        MAX_NODES,
        MarkedLoader,
        TooLarge,
        mark_of,
        yaml_error_message,
    )

    try:
        loader = MarkedLoader(text, boolean_keys())  # the reader vets characters here
        try:
            document = loader.load_document()
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line, col = mark_of(mark) if mark else (1, 1)
        checked.at(line, col, yaml_error_message(err))
        return False
    except yaml.reader.ReaderError as err:
        line = text.count("\n", 0, err.position) + 1
        col = err.position - (text.rfind("\n", 0, err.position) + 1) + 1
        character = chr(err.character) if isinstance(err.character, int) else err.character
        checked.at(line, col, f"character {character!r} is not allowed in YAML; remove it")
        return False
    except yaml.YAMLError as err:
        checked.at(1, 1, f"YAML error: {err}")
        return False
    except TooLarge:
        checked.at(1, 1, f"the document has more than {MAX_NODES} values (an alias bomb?)")
        return False
    checked.document, checked.marks = document, loader.node_marks
    checked.findings.extend(loader.findings)
    if document is None:
        checked.at(1, 1, "the file is empty; start it with `version: 1` and `rules:`")
        return False
    if not isinstance(document, dict):
        kind = "a list" if isinstance(document, list) else f"the value {show(document)}"
        checked.at(
            1, 1, f"the top level must be a mapping (`version: 1`, `rules: ...`), not {kind}"
        )
        return False
    return True


def _check_schema(text: str, checked: Checked) -> None:
    """The schema layer; a text with no finding at all so far is remembered."""
    trapped = {finding.path for finding in checked.findings}
    clean = True
    for finding in schema_findings(checked.document):
        clean = False
        if finding.path not in trapped:  # the YAML layer already said it better
            checked.findings.append(finding)
    if clean and not checked.findings:
        validated.remember(text, checked.document, checked.marks)


def _check_bytes(data: bytes, filename: str) -> Checked:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        checked = Checked(filename)
        checked.at(
            1,
            1,
            f"the file is not UTF-8 text (byte 0x{data[err.start]:02x} at offset {err.start}); "
            "save it as UTF-8",
        )
        return checked
    return _check_text(text, filename)


def _finish(checked: Checked) -> list[Problem]:
    located = {checked.locate(finding) for finding in checked.findings}
    problems = set(checked.problems) | located
    return sorted(problems, key=lambda p: (p.line, p.col, p.message))


def _run(
    check: Callable[[Any, str], Checked], source: str | bytes, filename: str
) -> tuple[Checked, list[Problem]]:
    try:
        checked = check(source, filename)
    except RecursionError:
        checked = Checked(filename)
        checked.at(1, 1, "the document is nested too deeply")
    return checked, _finish(checked)


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
    grace: int | None = None  # seconds: two-phase mark-for-op (planning.grace.Grace)

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
    # a rate-limited service's (rulebot.sources.pacing): requests per minute per
    # endpoint class, the documented ones unless the block changes them
    rate_limits: Mapping[str, int] = field(default_factory=dict)
    time_budget: int | None = None  # seconds an apply may take; None: no budget


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
    checked: Checked, path: Path, digest: str, warnings: list[Problem] | None = None
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
                base_url=str(block.get("base_url") or spec.default_url),
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
                extra={
                    key: block.get(key, rule.get("default")) for key, rule in spec.extra.items()
                },
                rate_limits={
                    name: int(block.get("rate_limits", {}).get(name, default))
                    for name, (default, _) in spec.rate_limits.items()
                },
                time_budget=parse_duration(block["time_budget"])
                if "time_budget" in block
                else None,
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
