"""The schema layer of config validation: jsonschema errors in human words.

jsonschema says what failed in schema terms ("'archiv' is not valid under
any of the given schemas"); this module turns each error into a sentence at
the offending key or value, in the user's terms, with what to write instead
("unknown action 'archiv'; did you mean 'archive'?"). ``config`` locates the
findings (line and column) and runs the other layers.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from rulebot.rules import actions as actions_vocab
from rulebot.rules import schema as schema_module

JsonPath = tuple[str | int, ...]
Mark = tuple[int, int]  # 1-based (line, column)
TEST_TIME_KEYS = {"added", "updated", "read", "favorited"}  # a test item's times


@dataclass(frozen=True)
class Finding:
    """A problem before it is located: a path into the document and a message."""

    path: JsonPath
    message: str
    at_key: bool = False  # point at the key (unknown keys) rather than the value
    severity: str = "error"  # or "warning": reported, but the config still loads


@cache
def _validator() -> Any:
    # jsonschema costs ~80 ms to import: only when a file is actually checked.
    from jsonschema import Draft202012Validator, validators
    from jsonschema.exceptions import ValidationError

    def pattern(validator: Any, wanted: str, instance: Any, schema: Any) -> Iterator[Any]:
        if validator.is_type(instance, "string") and not ecma_pattern(wanted).search(instance):
            yield ValidationError(f"{instance!r} does not match {wanted!r}")

    strict = validators.extend(Draft202012Validator, {"pattern": pattern})
    return strict(schema_module.build_schema())


@cache
def ecma_pattern(pattern: str) -> re.Pattern[str]:
    """A schema ``pattern`` as JSON Schema (ECMA-262) reads it: ``$`` is the
    end of the text. Python's ``$`` also matches before a final newline, so
    ``^[a-z0-9][a-z0-9_-]*$`` took a rule name ``"purge\\n"``; here each ``$``
    outside a character class is ``\\Z``."""
    out, escaped, in_class = [], False, False
    for char in pattern:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "[":
            in_class = True
        elif char == "]":
            in_class = False
        elif char == "$" and not in_class:
            char = "\\Z"
        out.append(char)
    return re.compile("".join(out))


@cache
def boolean_keys() -> frozenset[str]:
    """Keys the schema wants a boolean for (`yes` there means "write true")."""
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, sub in node.get("properties", {}).items():
                if isinstance(sub, dict) and sub.get("type") == "boolean":
                    found.add(key)
            for sub in node.values():
                walk(sub)
        elif isinstance(node, list):
            for sub in node:
                walk(sub)

    walk(schema_module.build_schema())
    return frozenset(found)


def schema_findings(document: dict[str, Any]) -> Iterator[Finding]:
    for error in _validator().iter_errors(document):
        for leaf in _relevant(error):
            yield from _describe(leaf)


def _relevant(error: Any) -> list[Any]:
    """jsonschema reports an ``anyOf`` with every branch's complaint; keep the
    complaints of the branch whose type fits the value (a string vs a list)."""
    if error.validator != "anyOf" or not error.context:
        return [error]
    branches: dict[int, list[Any]] = {}
    for sub in error.context:
        branches.setdefault(sub.relative_schema_path[0], []).append(sub)
    depth = len(error.absolute_path)
    fitting = [
        errors
        for errors in branches.values()
        if not any(e.validator == "type" and len(e.absolute_path) == depth for e in errors)
    ]
    if len(fitting) != 1:
        return [error]  # no branch fits the value's type: one "must be X or Y" message
    return [leaf for sub in fitting[0] for leaf in _relevant(sub)]


_TYPE_WORDS = {
    "string": "text",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "array": "a list",
    "object": "a mapping (key: value lines)",
    "null": "empty",
}

_REQUIRED_HINTS = {
    "version": "add `version: 1` at the top",
    "rules": "add `rules:` with a list of rules",
    "name": "add `name: my-rule` (lowercase letters, digits, - and _)",
    "actions": "add `actions:` with at least one action, e.g. `- archive`",
    "url": "add `url: https://...`",
    "items": "add `items:` with the test's library (a list of items)",
    "expect": "add `expect:` with the actions it must plan (`expect: []` for none)",
    "action": "add `action: NAME` (e.g. archive)",
}

_PATTERN_HINTS = {
    "name": "may use only lowercase letters, digits, - and _, starting with a letter or digit",
    "older_than": "is not a duration; write a whole number and a unit: 90m, 12h, 30d, 2w",
    "newer_than": "is not a duration; write a whole number and a unit: 90m, 12h, 30d, 2w",
    "grace": "is not a duration; write a whole number and a unit: 90m, 12h, 30d, 2w",
    "consumer_key_env": "is not an environment variable name; use letters, digits and _",
    "access_token_env": "is not an environment variable name; use letters, digits and _",
    "now": "is not a date; write YYYY-MM-DD or an ISO 8601 date-time",
    "id": "is not an item id; write digits only",
    "url": "is not a URL; write one starting with http:// or https://",
    **{
        key: "is neither a date nor an age; write YYYY-MM-DD, an ISO 8601 date-time, or an "
        "age such as 45d"
        for key in TEST_TIME_KEYS
    },
}


def _server(path: JsonPath) -> tuple[str, str]:
    """The service a source block's ``base_url`` is for (the block's name:
    ``karakeep:``), and an address to show as an example."""
    block = str(path[0]) if path else "server"
    name = "Pocket-compatible" if block == "pocket" else block.capitalize()
    return name, f"https://{block}.example.com"


_EMPTY_WHERE = (
    "where is empty; add a condition (e.g. `tag: read-later`), write `where: {}` for every "
    "item, or remove `where:` for an account-wide rule"
)

_DURATION_KEYS = ("older_than", "newer_than", "grace")


def show(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _key_text(key: Any) -> str:
    """A key as written when it is a plain word, else quoted (one line, always)."""
    text = str(key)
    return text if re.fullmatch(r"[\w-]{1,40}", text) else show(key)


def _label(path: JsonPath) -> str:
    """The name a user sees for a path's value: ``status``, ``tags_add[1]``."""
    label = ""
    for part in reversed(path):
        if isinstance(part, int):
            label = f"[{part}]" + label
        else:
            return part + label
    return label or "the config"


def _is_action(path: JsonPath) -> bool:
    return len(path) == 4 and path[0] == "rules" and path[2] == "actions"


def _is_where_block(path: JsonPath) -> bool:
    if len(path) < 3 or path[0] != "rules" or path[2] != "where":
        return False
    rest = path[3:]
    while rest:
        if rest[0] in ("all", "any") and len(rest) >= 2 and isinstance(rest[1], int):
            rest = rest[2:]
        elif rest[0] == "not":
            rest = rest[1:]
        else:
            return False
    return True


def _container(path: JsonPath) -> str:
    if not path:
        return "at the top level"
    if _is_where_block(path):
        return "in where"
    if len(path) == 2 and path[0] == "rules":
        return "in this rule"
    if len(path) == 2 and path[0] == "tests":
        return "in this test"
    if len(path) == 4 and path[0] == "tests":
        return "in this test item" if path[2] == "items" else "in this expect entry"
    return f"in {_label(path)}"


def did_you_mean(word: str, known: Sequence[str], noun: str = "") -> str:
    import difflib

    folded = {k.casefold(): k for k in known}
    close = [folded[word.casefold()]] if word.casefold() in folded else []
    close = close or difflib.get_close_matches(word, list(known), n=1, cutoff=0.6)
    if close:
        return f"; did you mean {close[0]!r}?"
    return f"; {noun or 'allowed keys'}: {', '.join(known)}" if known else ""


def _unknown_action(name: str) -> str:
    return f"unknown action {name!r}" + did_you_mean(
        name, list(actions_vocab.REGISTRY), "actions are"
    )


def _describe(error: Any) -> Iterator[Finding]:
    path: JsonPath = tuple(error.absolute_path)
    kind, value, label = error.validator, error.instance, _label(path)
    if kind == "additionalProperties":
        known = list(error.schema.get("properties", {}))
        for key in value:
            if key in known:
                continue
            if _is_action(path) and key in actions_vocab.BARE_WORDS:
                message = f"`{key}` takes no argument; write it as a bare word: `- {key}`"
            elif _is_action(path):
                message = _unknown_action(key)
            else:
                noun = "conditions are" if _is_where_block(path) else "allowed keys"
                message = f"unknown key {key!r} {_container(path)}" + did_you_mean(key, known, noun)
            yield Finding((*path, key), message, at_key=True)
    elif kind == "required":
        for name in error.validator_value:
            if isinstance(value, dict) and name not in value:
                hint = _REQUIRED_HINTS.get(name, f"add `{name}:`")
                if name == "base_url":
                    service, example = _server(path)
                    hint = f"add `base_url: {example}` (the address of your {service} server)"
                where = _container(path).removeprefix("in ").removeprefix("at ")
                yield Finding(path, f"{where} is missing `{name}`; {hint}")
    elif kind == "enum" and (_is_action(path) or path[-1:] == ("action",)):
        if value in actions_vocab.REGISTRY:
            yield Finding(path, f"`{value}` needs an argument; write `- {value}: ...`")
        else:
            yield Finding(path, _unknown_action(str(value)))
    elif kind == "enum":
        allowed = [str(v) for v in error.validator_value]
        yield Finding(
            path,
            f"{label} must be one of {', '.join(allowed)}; got {show(value)}"
            + (did_you_mean(str(value), allowed, "allowed") if isinstance(value, str) else ""),
        )
    elif kind == "const":
        yield Finding(
            path,
            f"{label} must be {error.validator_value!r}; got {show(value)}"
            + (" (the only config format so far)" if path == ("version",) else ""),
        )
    elif kind == "type" and value is None and _is_where_block(path) and len(path) == 3:
        yield Finding(path, _EMPTY_WHERE)
    elif kind == "type" and path[-1:] in [(key,) for key in _DURATION_KEYS]:
        yield Finding(
            path,
            f"{label} must be a duration such as 30d; got {show(value)}"
            + _duration_hint(path, value),
        )
    elif kind == "type" and _is_action(path):
        yield Finding(
            path,
            "an action is a word like `archive` or a one-key mapping like "
            f"`tags_add: [tag]`; got {show(value)}",
        )
    elif kind in ("type", "anyOf"):
        yield Finding(path, _type_message(error, label, value))
    elif kind == "pattern":
        hint = _PATTERN_HINTS.get(
            str(path[-1]) if path else "", f"does not match the pattern {error.validator_value}"
        )
        suggestion = _duration_hint(path, value)
        if path[-1:] == ("base_url",):
            service, example = _server(path[:-1])
            hint = f"is not an http:// or https:// URL; write your {service} server's address, e.g. {example}"
        if path[-1:] == ("name",) and path[:1] == ("rules",):
            slug = re.sub(r"[^a-z0-9_-]+", "-", str(value).lower()).strip("-_")
            suggestion = f"; try {slug!r}" if slug else ""
        yield Finding(path, f"{label} {show(value)} {hint}{suggestion}")
    elif kind == "minimum":
        yield Finding(path, f"{label} must be at least {error.validator_value}; got {show(value)}")
    elif kind == "maximum":
        yield Finding(path, f"{label} must be at most {error.validator_value}; got {show(value)}")
    elif kind == "exclusiveMinimum":
        yield Finding(path, f"{label} must be more than {error.validator_value}; got {show(value)}")
    elif kind == "minItems" and path[-1:] == ("actions",):
        yield Finding(path, "actions is empty; add at least one action, e.g. `- archive`")
    elif kind == "minItems":
        yield Finding(path, f"{label} is an empty list; give at least one entry or remove it")
    elif kind == "minProperties":
        choices = ", ".join(error.schema.get("properties", {}))
        if _is_where_block(path) and len(path) == 3:
            message = _EMPTY_WHERE
        elif _is_where_block(path):
            message = f"{label} is empty; give at least one condition, e.g. `tag: read-later`"
        else:
            message = f"{label} is empty; give at least one of: {choices}"
        yield Finding(path, message)
    elif kind == "maxProperties" and _is_action(path):
        yield Finding(
            path,
            f"one action has {len(value)} keys ({', '.join(map(_key_text, value))}); write each "
            "action as its "
            "own list item",
        )
    elif kind == "minLength":
        yield Finding(path, f"{label} must not be empty")
    else:  # not reachable with today's schema; keep jsonschema's words
        yield Finding(path, f"{label}: {error.message}")


def _duration_hint(path: JsonPath, value: Any) -> str:
    """``older_than: 30``: the unit is missing, and days is the likely one."""
    if path[-1:] not in [(key,) for key in _DURATION_KEYS] or isinstance(value, bool):
        return ""
    text = str(value).strip()
    if isinstance(value, int | str) and re.fullmatch(r"[1-9][0-9]{0,5}", text):
        return f"; did you mean '{text}d' ({text} days)?"
    return ""


def _type_message(error: Any, label: str, value: Any) -> str:
    if error.validator == "anyOf":
        words = []
        for branch in error.validator_value:
            if "enum" in branch:
                words.append("one of " + ", ".join(map(str, branch["enum"])))
            else:
                words.append(_TYPE_WORDS.get(branch.get("type", ""), "something else"))
        expected = " or ".join(words)
    else:
        wanted = error.validator_value
        types: list[str] = wanted if isinstance(wanted, list) else [wanted]
        expected = " or ".join(_TYPE_WORDS.get(t, t) for t in types)
    if value is None:
        return f"{label} is empty; write {expected}, or remove the line"
    return f"{label} must be {expected}; got {show(value)}"
