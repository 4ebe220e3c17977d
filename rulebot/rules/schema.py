"""The config's JSON Schema, generated from the vocabularies.

The schema is built here from ``conditions.where_schema()`` and
``actions.action_schema()`` so a new condition or action word reaches the
schema (and every editor that reads it) without a second copy to keep in
sync. ``schemas/rules.schema.json`` and the copy shipped in the wheel
(``rulebot/schemas/rules.schema.json``) are written by
``python -m rulebot.rules.schema --write``; a test fails when they are stale.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

from rulebot.rules import actions, conditions
from rulebot.rules.services import SERVICES, Service
from rulebot.rules.vocab import DURATION_PATTERN, tags_schema

SCHEMA_ID = "https://rulebot.dev/schemas/rules.schema.json"
DRAFT = "https://json-schema.org/draft/2020-12/schema"

RULE_NAME_PATTERN = "^[a-z0-9][a-z0-9_-]*$"
ENV_NAME_PATTERN = "^[A-Za-z_][A-Za-z0-9_]*$"
# Bare dates or date-times, as `before:`/`after:` and test times take them.
DATE_PATTERN = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}"
    r"([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?(Z|[+-][0-9]{2}:?[0-9]{2})?)?$"
)
# A test item's time: a date as above, or an age before the test's `now`.
TEST_TIME_PATTERN = f"({DATE_PATTERN})|({DURATION_PATTERN})"

DEFAULT_PAGE_SIZE = 30
DEFAULT_BATCH_SIZE = 30
DEFAULT_TIMEOUT = 30
DEFAULT_MAX_RATE_WAIT = 300
DEFAULT_MAX_ACTIONS = 500
DEFAULT_MAX_DELETES = 25
DEFAULT_STORE = ".rulebot/rulebot.db"
DEFAULT_TIMEZONE = "UTC"
DEFAULT_CONSUMER_KEY_ENV = "POCKET_CONSUMER_KEY"
DEFAULT_ACCESS_TOKEN_ENV = "POCKET_ACCESS_TOKEN"
DEFAULT_CONCURRENCY = 4
MAX_ITEMS = {
    "description": "Most items one sync may list before rulebot stops it as a listing "
    "that never ends (nothing is stored then). Default: the larger of 100000 and twice "
    "the items the store mirrors; set it for a first sync of a bigger library.",
    "type": "integer",
    "minimum": 1,
}


def _obj(description: str, properties: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """An object schema: described, closed to unknown keys."""
    return {
        "description": description,
        "type": "object",
        "additionalProperties": False,
        **extra,
        "properties": properties,
    }


def _service_schema(service: Service) -> dict[str, Any]:
    env_name = {"type": "string", "pattern": ENV_NAME_PATTERN}
    credentials = {
        key: {
            **env_name,
            "description": "Name of the environment variable holding the credential.",
            "default": default,
        }
        for key, default in service.credentials.items()
    }
    return _obj(
        f"Present: the items live on {service.title}; rulebot syncs a mirror into the "
        "store and applies plans through its API. Credentials come from environment "
        f"variables ({', '.join(service.credentials.values())}), never from this file. "
        "A config has at most one source block.",
        {
            "base_url": {
                "description": f"The server: {service.api_hint or 'its root URL'}.",
                "type": "string",
                "format": "uri",
                "pattern": "^https?://[^\\s/?#]+[^\\s?#]*$",
                **({"default": service.default_url} if service.default_url else {}),
            },
            "page_size": {
                "description": "Items per list request.",
                "type": "integer",
                "minimum": 1,
                "maximum": service.page_size,
                "default": service.page_size,
            },
            "concurrency": {
                "description": "Requests in flight at once while applying (the service "
                "has no batch endpoint).",
                "type": "integer",
                "minimum": 1,
                "maximum": 16,
                "default": DEFAULT_CONCURRENCY,
            },
            "max_items": MAX_ITEMS,
            **credentials,
            **service.extra,
            **_pacing_schema(service),
            "timeout": {
                "description": "Seconds one HTTP request may take in all.",
                "type": "number",
                "exclusiveMinimum": 0,
                "default": DEFAULT_TIMEOUT,
            },
            "max_rate_wait": {
                "description": "Longest wait, in seconds, for a rate limit before giving up.",
                "type": "number",
                "minimum": 0,
                "default": DEFAULT_MAX_RATE_WAIT,
            },
        },
        required=[] if service.default_url else ["base_url"],
    )


def _pacing_schema(service: Service) -> dict[str, Any]:
    """`rate_limits` and `time_budget`, for a service that declares rate limits."""
    if not service.rate_limits:
        return {}
    classes = {
        name: {
            "description": f"Requests per minute: {what} (default {per_minute}, the "
            f"service's documented limit).",
            "type": "integer",
            "minimum": 1,
            "default": per_minute,
        }
        for name, (per_minute, what) in service.rate_limits.items()
    }
    return {
        "rate_limits": _obj(
            f"How many requests a minute rulebot sends {service.title} per endpoint class: "
            "a run paces itself within them (a 429's Retry-After is still honoured). "
            "Change one only when the service changed its limit.",
            classes,
        ),
        "time_budget": {
            "description": "The longest an apply may take at these limits, e.g. 10m: "
            "what does not fit (whole items, in plan order) is left for the next run, "
            "journaled as not sent. The plan says how many requests it needs, roughly "
            "how long they take, and what fits. Absent: no budget.",
            "type": "string",
            "pattern": DURATION_PATTERN,
        },
    }


def _pocket_schema() -> dict[str, Any]:
    env_name = {"type": "string", "pattern": ENV_NAME_PATTERN}
    return _obj(
        "Present: the items live on a server that speaks the Pocket v3 API (rulebot syncs a mirror into the "
        "store). Absent: rulebot works on the local library in the store. Credentials "
        "come from environment variables, never from this file.",
        {
            "base_url": {
                "description": "The server that speaks the Pocket v3 API, e.g. "
                "https://pocket.example.com (http or https).",
                "type": "string",
                "format": "uri",
                "pattern": "^https?://[^\\s/?#]+[^\\s?#]*$",
            },
            "page_size": {
                "description": "Items per /v3/get request.",
                "type": "integer",
                "minimum": 1,
                "maximum": 5000,
                "default": DEFAULT_PAGE_SIZE,
            },
            "max_items": MAX_ITEMS,
            "batch_size": {
                "description": "Actions per /v3/send request.",
                "type": "integer",
                "minimum": 1,
                "maximum": 1000,
                "default": DEFAULT_BATCH_SIZE,
            },
            "consumer_key_env": {
                **env_name,
                "description": "Name of the environment variable holding the consumer key.",
                "default": DEFAULT_CONSUMER_KEY_ENV,
            },
            "access_token_env": {
                **env_name,
                "description": "Name of the environment variable holding the access token.",
                "default": DEFAULT_ACCESS_TOKEN_ENV,
            },
            "timeout": {
                "description": "Seconds to wait for one HTTP response.",
                "type": "number",
                "exclusiveMinimum": 0,
                "default": DEFAULT_TIMEOUT,
            },
            "max_rate_wait": {
                "description": "Longest wait, in seconds, for a rate limit to reset before "
                "giving up (0: never wait).",
                "type": "number",
                "minimum": 0,
                "default": DEFAULT_MAX_RATE_WAIT,
            },
        },
        required=["base_url"],
    )


def _limits_schema() -> dict[str, Any]:
    return _obj(
        "Safety belts: a run that would exceed one is refused before anything is sent.",
        {
            "max_actions": {
                "description": "Refuse the whole run when it plans more actions than this.",
                "type": "integer",
                "minimum": 1,
                "default": DEFAULT_MAX_ACTIONS,
            },
            "max_deletes": {
                "description": "Refuse the whole run when it plans more deletions "
                "(delete + tag_delete) than this.",
                "type": "integer",
                "minimum": 0,
                "default": DEFAULT_MAX_DELETES,
            },
        },
    )


def _rule_schema() -> dict[str, Any]:
    return _obj(
        "A rule: which items (`where`) and what to do with them (`actions`).",
        {
            "name": {
                "description": "Unique name: lowercase letters, digits, - and _.",
                "type": "string",
                "pattern": RULE_NAME_PATTERN,
            },
            "description": {"description": "What the rule is for.", "type": "string"},
            "enabled": {
                "description": "false: the rule is skipped.",
                "type": "boolean",
                "default": True,
            },
            "schedule": {
                "description": "When the rule is due: a 5-field cron expression "
                "(minute hour day-of-month month day-of-week) in the config's timezone. "
                "Absent: due on every run.",
                "type": "string",
                "minLength": 1,
            },
            "where": {
                "description": "Which items: every condition must hold; `{}` means every "
                "item. Absent: an account-wide rule (tag_rename, tag_delete, add).",
                "$ref": "#/$defs/where",
            },
            "actions": {
                "description": "What to do, in order, with each matching item.",
                "type": "array",
                "minItems": 1,
                "items": {"$ref": "#/$defs/action"},
            },
            "limit": {
                "description": "Act on at most this many items per run, oldest first.",
                "type": "integer",
                "minimum": 1,
            },
            "keep_newest": {
                "description": "Leave alone the N most recently added matching items.",
                "type": "integer",
                "minimum": 0,
                "default": 0,
            },
            "grace": {
                "description": "Two-phase: a matching item is first tagged "
                "rulebot:RULE:YYYY-MM-DD (the day its actions fall due, this long from now); "
                "the actions run on or after that day if it still matches and is still "
                "marked. Remove the tag to postpone. e.g. 7d",
                "type": "string",
                "pattern": DURATION_PATTERN,
            },
        },
        required=["name", "actions"],
    )


def _test_item_schema() -> dict[str, Any]:
    time_value = {
        "type": "string",
        "pattern": TEST_TIME_PATTERN,
    }
    times = {
        key: {
            **time_value,
            "description": f"When it was {key}: a date (YYYY-MM-DD or ISO 8601) or an age "
            "such as 45d, meaning that long before the test's `now`.",
        }
        for key in ("added", "updated", "read", "favorited")
    }
    return _obj(
        "A library item as the test sees it; unspecified fields are unknown.",
        {
            "id": {
                "description": "Item id (digits); default: its position in the list, from 1.",
                "type": ["string", "integer"],
                "pattern": "^[0-9]+$",
                "minimum": 0,
            },
            "url": {"description": "The item's URL.", "type": "string", "minLength": 1},
            "title": {"description": "The item's title.", "type": "string"},
            "tags": tags_schema("The item's tags."),
            "status": {
                "description": "unread or archived.",
                "type": "string",
                "enum": ["unread", "archived"],
                "default": "unread",
            },
            "favorite": {"description": "Is a favorite.", "type": "boolean", "default": False},
            **times,
            "word_count": {"description": "Words in the article.", "type": "integer", "minimum": 0},
            "reading_time": {
                "description": "Reading time in minutes.",
                "type": "integer",
                "minimum": 0,
            },
            "lang": {"description": "Language code, e.g. en.", "type": "string"},
            "type": {
                "description": "What the item is.",
                "type": "string",
                "enum": ["article", "video", "image"],
            },
            "marked_unread": {
                "description": "Linkding's own unread (read later) flag; unknown when not given.",
                "type": "boolean",
            },
            "shared": {
                "description": "Linkding's shared flag; unknown when not given.",
                "type": "boolean",
            },
        },
        required=["url"],
    )


def _expect_schema() -> dict[str, Any]:
    text = {"type": "string", "minLength": 1}
    return _obj(
        "One action the plan must contain. Together the entries are the whole plan.",
        {
            "action": {
                "description": "The action's name.",
                "type": "string",
                "enum": list(actions.REGISTRY),
            },
            "item": {
                "description": "The item it acts on: its id or its URL.",
                "type": ["string", "integer"],
                "minLength": 1,
            },
            "rule": {"description": "The rule that planned it.", **text},
            "tags": tags_schema("The tags sent."),
            "old_tag": {"description": "tag_rename: the old tag.", **text},
            "new_tag": {"description": "tag_rename: the new tag.", **text},
            "tag": {"description": "tag_delete: the tag.", **text},
            "url": {"description": "add: the URL.", **text},
        },
        required=["action"],
    )


def _test_schema() -> dict[str, Any]:
    return _obj(
        "A test case: these items, planned at `now`, must give exactly `expect`.",
        {
            "name": {"description": "What the test shows.", "type": "string", "minLength": 1},
            "now": {
                "description": "The clock for the test (YYYY-MM-DD or ISO 8601); default: "
                "the time the tests run.",
                "type": "string",
                "pattern": DATE_PATTERN,
            },
            "items": {
                "description": "The library for the test.",
                "type": "array",
                "items": {"$ref": "#/$defs/test_item"},
            },
            "expect": {
                "description": "Every action the plan must hold, and no others; [] means "
                "nothing is planned.",
                "type": "array",
                "items": {"$ref": "#/$defs/expect"},
            },
        },
        required=["name", "items", "expect"],
    )


def build_schema() -> dict[str, Any]:
    """The whole config schema as a fresh dict (callers may keep it)."""
    return {
        "$schema": DRAFT,
        "$id": SCHEMA_ID,
        "title": "rulebot rules file",
        "description": "Rules for a read-it-later library: a local Pocket export, a Pocket-compatible server, Karakeep, Wallabag, Readeck, Shaarli or Linkding.",
        "type": "object",
        "additionalProperties": False,
        "required": ["version", "rules"],
        "properties": {
            "version": {"description": "Config format version; write 1.", "const": 1},
            "pocket": _pocket_schema(),
            **{name: _service_schema(service) for name, service in SERVICES.items()},
            "store": {
                "description": "SQLite store: the local library (no `pocket:`) or the "
                "server's mirror, plus sync cursor, schedule state and run journal. A "
                "relative path is read from the config file's directory.",
                "type": "string",
                "minLength": 1,
                "default": DEFAULT_STORE,
            },
            "timezone": {
                "description": "IANA timezone for schedules and absolute dates, e.g. "
                "Europe/Berlin.",
                "type": "string",
                "minLength": 1,
                "default": DEFAULT_TIMEZONE,
            },
            "limits": _limits_schema(),
            "rules": {
                "description": "The rules, run in this order; each sees the library as "
                "the earlier ones left it.",
                "type": "array",
                "items": {"$ref": "#/$defs/rule"},
            },
            "tests": {
                "description": "Test cases for `rulebot test`: items in, expected actions out.",
                "type": "array",
                "items": {"$ref": "#/$defs/test"},
            },
        },
        "$defs": {
            "rule": _rule_schema(),
            "where": conditions.where_schema(),
            "action": actions.action_schema(),
            "test": _test_schema(),
            "test_item": _test_item_schema(),
            "expect": _expect_schema(),
        },
    }


@cache
def schema_text() -> str:
    """The schema as it is written to disk: JSON, indent 2, trailing newline."""
    return json.dumps(build_schema(), indent=2, ensure_ascii=False) + "\n"


def schema_files(root: Path | None = None) -> list[Path]:
    """The generated copies: the repo's ``schemas/`` and the package's own."""
    package = Path(__file__).resolve().parent.parent
    root = root or package.parent
    return [root / "schemas" / "rules.schema.json", package / "schemas" / "rules.schema.json"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m rulebot.rules.schema", description="Print or write the config JSON Schema."
    )
    parser.add_argument("--write", action="store_true", help="write the schema files")
    args = parser.parse_args(argv)
    if not args.write:
        sys.stdout.write(schema_text())
        return 0
    for path in schema_files():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(schema_text(), encoding="utf-8")
        print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
