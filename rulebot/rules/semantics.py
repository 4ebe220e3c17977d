"""The semantic layer of checking a rules file: what the schema cannot
express (cron, regexes, dates, tags, timezone, unique names, account-wide
actions, what the source can do, test references), checked only on the parts
the schema accepted."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from rulebot.rules import actions as actions_vocab
from rulebot.rules import capabilities
from rulebot.rules import conditions as conditions_vocab
from rulebot.rules import schema as schema_module
from rulebot.rules.problems import Checked
from rulebot.rules.schema_messages import TEST_TIME_KEYS, Finding, JsonPath, did_you_mean, show
from rulebot.rules.vocab import (
    CompileContext,
    VocabError,
    parse_duration,
    parse_instant,
    tag_values,
)

# `where` blocks nested deeper than this are a generated mistake, not a rule (and the
# compiled selector would hit Python's parser limits).
MAX_WHERE_DEPTH = 20
# Pocket keeps the first 25 characters of a tag.
POCKET_TAG_LENGTH = 25


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


class Semantics:
    """Checks the schema cannot express, run only on the parts it accepted."""

    def __init__(self, checked: Checked) -> None:
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
            for key in ("full_scan_every", "time_budget"):
                if isinstance(settings, dict) and key in settings:
                    path = (block, key)
                    if self.clean(path):
                        self.duration(settings[key], path)
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
