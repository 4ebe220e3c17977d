"""``rulebot test``: the config's own ``tests:`` cases.

Each case gives items and the actions the rules should plan for them; the
planner runs on just those items and the planned list is compared, in
order, with ``expect`` (only the fields an expectation names are compared).
"""

from __future__ import annotations

import datetime as dt
import difflib
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rulebot.library.item import ARCHIVED, UNREAD, Item
from rulebot.planning.plan import PlannedAction, parse_iso
from rulebot.planning.planner import make_plan
from rulebot.rules.vocab import VocabError, parse_duration, parse_instant

if TYPE_CHECKING:
    from rulebot.rules.config import Config, TestCase

_TIME_KEYS = {
    "added": "time_added",
    "updated": "time_updated",
    "read": "time_read",
    "favorited": "time_favorited",
}


@dataclass
class CaseResult:
    name: str
    passed: bool
    expected: list[str] = field(default_factory=list)
    planned: list[str] = field(default_factory=list)
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name, "passed": self.passed}
        if not self.passed:
            data.update(expected=self.expected, planned=self.planned)
        if self.error:
            data["error"] = self.error
        return data


def _when(value: Any, now: int, tz: dt.tzinfo) -> int:
    if isinstance(value, str):
        try:
            return now - parse_duration(value)
        except VocabError:
            pass
    return parse_instant(value, tz)


# a test item's key -> the Item.extra flag it sets (Linkding's unread and shared)
_FLAG_KEYS = {"marked_unread": "unread", "shared": "shared"}


def build_item(spec: dict[str, Any], index: int, now: int, tz: dt.tzinfo) -> Item:
    tags = spec.get("tags", [])
    if isinstance(tags, str):
        tags = [t.strip() for t in tags.split(",") if t.strip()]
    kind = spec.get("type")
    fields: dict[str, Any] = {
        "item_id": str(spec.get("id", index + 1)),
        "given_url": str(spec["url"]),
        "given_title": str(spec.get("title", "")),
        "status": ARCHIVED if spec.get("status") == "archived" else UNREAD,
        "favorite": bool(spec.get("favorite", False)),
        "tags": tuple(str(t) for t in tags),
        "word_count": spec.get("word_count"),
        "time_to_read": spec.get("reading_time"),
        "lang": spec.get("lang"),
    }
    if kind is not None:
        fields.update(is_article=kind == "article", has_video=2 if kind == "video" else 0)
        fields["has_image"] = 2 if kind == "image" else 0
    flags = {flag: spec[key] for key, flag in _FLAG_KEYS.items() if key in spec}
    if flags:  # a service's own flags (Linkding's), as its source keeps them
        fields["extra"] = flags
    for key, attr in _TIME_KEYS.items():
        if key in spec:
            fields[attr] = _when(spec[key], now, tz)
    fields.setdefault("time_added", now)
    fields.setdefault("time_updated", fields["time_added"])
    return Item(**fields)


def _tags(value: Any) -> list[str]:
    if isinstance(value, str):
        return [t.strip() for t in value.split(",") if t.strip()]
    return [str(t) for t in value]


def _project(planned: PlannedAction, keys: set[str], items: dict[str, Item]) -> dict[str, Any]:
    send = planned.send
    full: dict[str, Any] = {"action": send["action"], "rule": planned.rule}
    if "item_id" in send:
        item = items.get(send["item_id"])
        full["item"] = send["item_id"]
        full["_url"] = item.url if item else ""
    for key in ("old_tag", "new_tag", "tag", "url"):
        if key in send:
            full[key] = send[key]
    if "tags" in send:
        full["tags"] = _tags(send["tags"])
    return {k: v for k, v in full.items() if k in keys or k == "action"}


def _line(entry: dict[str, Any]) -> str:
    parts = [str(entry["action"])]
    for key in ("item", "tags", "old_tag", "new_tag", "tag", "url", "rule"):
        if key in entry:
            value = entry[key]
            parts.append(f"{key}={','.join(value) if isinstance(value, list) else value}")
    return " ".join(parts)


def run_case(config: Config, case: TestCase) -> CaseResult:
    now = parse_iso(case.now) if case.now else int(time.time())
    try:
        items = [build_item(spec, i, now, config.timezone) for i, spec in enumerate(case.items)]
    except (VocabError, KeyError, TypeError, ValueError) as err:
        return CaseResult(case.name, False, error=f"bad test item: {err}")
    by_id = {item.item_id: item for item in items}
    # a case has no store: a grace mark on its items counts as one rulebot set
    marks = {
        rule.name: {
            item.item_id: {t for t in item.tags or () if t.startswith(f"rulebot:{rule.name}:")}
            for item in items
        }
        for rule in config.rules
        if rule.grace
    }
    rules = [r for r in config.rules if r.enabled]
    plan = make_plan(rules, items, now, timezone=config.timezone, marks=marks)
    expected, planned_lines = [], []
    passed = len(plan.actions) == len(case.expect)
    for position in range(max(len(plan.actions), len(case.expect))):
        want = dict(case.expect[position]) if position < len(case.expect) else None
        got = plan.actions[position] if position < len(plan.actions) else None
        keys = set(want) if want else {"action", "item", "rule", "tags"}
        if want is not None:
            if "tags" in want:
                want["tags"] = _tags(want["tags"])
            if "item" in want:
                want["item"] = str(want["item"])
            expected.append(_line(want))
        if got is not None:
            projected = _project(got, keys | {"_url"}, by_id)
            url = projected.pop("_url", None)
            if want and "item" in want and want["item"] == url:
                projected["item"] = url  # expectation named the item by URL
            planned_lines.append(_line(projected))
            if want is not None and projected != want:
                passed = False
    return CaseResult(case.name, passed, expected, planned_lines)


def run_tests(config: Config) -> list[CaseResult]:
    return [run_case(config, case) for case in config.tests]


def tests_text(results: list[CaseResult], *, colour: bool = False) -> str:
    def paint(code: str, text: str) -> str:
        return f"\033[{code}m{text}\033[0m" if colour else text

    lines = []
    for result in results:
        if result.passed:
            lines.append(paint("32", "PASS") + f" {result.name}")
            continue
        lines.append(paint("31", "FAIL") + f" {result.name}")
        if result.error:
            lines.append(f"    {result.error}")
            continue
        diff = difflib.unified_diff(
            result.expected, result.planned, "expected", "planned", lineterm="", n=2
        )
        lines.extend(f"    {line}" for line in diff)
    failed = sum(1 for r in results if not r.passed)
    if not results:
        lines.append("no tests: add a `tests:` section to the config")
    else:
        lines.append(f"{len(results) - failed} passed, {failed} failed")
    return "\n".join(lines)
