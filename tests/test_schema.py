"""The config JSON Schema: well-formed, complete, and the files on disk are current."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from rulebot.cli import main
from rulebot.rules import actions, conditions
from rulebot.rules.schema import build_schema, schema_files, schema_text

ROOT = Path(__file__).resolve().parent.parent
REGENERATE = "regenerate with: python -m rulebot.rules.schema --write"


def _subschemas(node: Any, path: str = "#") -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            yield from _subschemas(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _subschemas(value, f"{path}/{index}")


def test_schema_is_valid_draft_2020_12() -> None:
    schema = build_schema()
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] and schema["title"]


def test_cli_schema_prints_the_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    printed = capsys.readouterr().out
    assert printed == schema_text()
    Draft202012Validator.check_schema(json.loads(printed))


def test_schema_needs_no_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-c", str(tmp_path / "missing.yaml"), "schema"]) == 0


def test_schema_text_is_pretty_json() -> None:
    text = schema_text()
    assert text.endswith("}\n") and not text.endswith("\n\n")
    assert text == json.dumps(json.loads(text), indent=2, ensure_ascii=False) + "\n"
    assert list(json.loads(text))[:3] == ["$schema", "$id", "title"]  # insertion order kept


@pytest.mark.parametrize("path", schema_files(ROOT), ids=lambda p: str(p.relative_to(ROOT)))
def test_schema_files_are_current(path: Path) -> None:
    assert path.exists(), f"{path} is missing; {REGENERATE}"
    assert path.read_text(encoding="utf-8") == schema_text(), f"{path} is stale; {REGENERATE}"


def test_every_property_is_described() -> None:
    missing = [
        f"{path}/properties/{name}"
        for path, node in _subschemas(build_schema())
        for name, sub in node.get("properties", {}).items()
        if isinstance(sub, dict) and "description" not in sub
    ]
    assert not missing


def test_every_object_is_closed() -> None:
    open_objects = [
        path
        for path, node in _subschemas(build_schema())
        if node.get("type") == "object" and node.get("additionalProperties") is not False
    ]
    assert not open_objects


def test_defaults_are_shown() -> None:
    schema = build_schema()
    pocket = schema["properties"]["pocket"]["properties"]
    assert pocket["page_size"]["default"] == 30 and pocket["batch_size"]["default"] == 30
    assert (pocket["page_size"]["minimum"], pocket["page_size"]["maximum"]) == (1, 5000)
    assert (pocket["batch_size"]["minimum"], pocket["batch_size"]["maximum"]) == (1, 1000)
    limits = schema["properties"]["limits"]["properties"]
    assert limits["max_actions"] == {**limits["max_actions"], "default": 500, "minimum": 1}
    assert limits["max_deletes"] == {**limits["max_deletes"], "default": 25, "minimum": 0}
    assert schema["properties"]["store"]["default"] == ".rulebot/rulebot.db"
    assert schema["properties"]["timezone"]["default"] == "UTC"
    assert schema["$defs"]["rule"]["properties"]["enabled"]["default"] is True


def test_vocabulary_reaches_the_schema() -> None:
    schema = build_schema()
    where = schema["$defs"]["where"]["properties"]
    assert set(conditions.REGISTRY) | {"all", "any", "not"} == set(where)
    action = schema["$defs"]["action"]
    assert action["then"]["enum"] == actions.BARE_WORDS
    with_argument = {name for name, cls in actions.REGISTRY.items() if cls.schema is not None}
    assert set(action["else"]["properties"]) == with_argument
    assert schema["$defs"]["expect"]["properties"]["action"]["enum"] == list(actions.REGISTRY)


def test_rule_shape() -> None:
    rule = build_schema()["$defs"]["rule"]
    assert rule["required"] == ["name", "actions"]
    assert rule["properties"]["name"]["pattern"] == "^[a-z0-9][a-z0-9_-]*$"
    assert rule["properties"]["where"] == {**rule["properties"]["where"], "$ref": "#/$defs/where"}
    assert rule["properties"]["actions"]["minItems"] == 1


def _validator() -> Draft202012Validator:
    return Draft202012Validator(build_schema())


@pytest.mark.parametrize(
    "document",
    [
        {"version": 1, "rules": []},
        {
            "version": 1,
            "pocket": {"base_url": "http://127.0.0.1:8080"},
            "rules": [
                {
                    "name": "a",
                    "where": {"any": [{"tag": "x"}, {"not": {"untagged": True}}]},
                    "actions": ["archive", {"tags_add": "a, b"}],
                },
                {"name": "b", "actions": [{"add": {"url": "https://x.example", "tags": ["t"]}}]},
            ],
            "tests": [
                {
                    "name": "t",
                    "now": "2026-01-01",
                    "items": [
                        {"id": "7", "url": "u", "added": "45d", "read": "2025-12-01T10:00:00Z"}
                    ],
                    "expect": [{"action": "archive", "item": 7}],
                },
            ],
        },
    ],
)
def test_schema_accepts(document: dict[str, Any]) -> None:
    assert list(_validator().iter_errors(document)) == []


@pytest.mark.parametrize(
    "document",
    [
        {"version": 1},  # rules required
        {"version": 1, "rules": [], "pocket": {}},  # base_url required
        {"version": 1, "rules": [], "pocket": {"base_url": "ftp://x"}},
        {"version": 1, "rules": [], "pocket": {"base_url": "https://x", "consumer_key_env": "1A"}},
        {"version": 1, "rules": [], "limits": {"max_actions": 0}},
        {"version": 1, "rules": [{"name": "a", "actions": ["archive", "archive2"]}]},
        {"version": 1, "rules": [{"name": "a", "actions": [{"archive": None, "delete": None}]}]},
        {"version": 1, "rules": [{"name": "a", "actions": ["archive"], "keep_newest": -1}]},
        {
            "version": 1,
            "rules": [],
            "tests": [{"name": "t", "items": [{"url": "u", "added": "yesterday"}], "expect": []}],
        },
        {"version": 1, "rules": [], "tests": [{"name": "t", "items": [], "expect": [{}]}]},
    ],
)
def test_schema_rejects(document: dict[str, Any]) -> None:
    assert list(_validator().iter_errors(document))
