"""What the Pocket server accepts, checked as it did: a request's body, the
parameters of ``/v3/get`` (defaults, aliases and 400s) and the actions of
``/v3/send`` (a malformed one refusing the batch or failing alone)."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from rulebot.fake.pocket.items import haystack, lower_keys

TAG_MAX_LEN = 25  # the later server cut tags to 25 characters
ITEM_ACTIONS = (
    "archive",
    "readd",
    "favorite",
    "unfavorite",
    "delete",
    "tags_add",
    "tags_remove",
    "tags_replace",
    "tags_clear",
)
SEND_ACTIONS = ("add", *ITEM_ACTIONS, "tag_rename", "tag_delete")
# How a malformed action is answered: the old server refused the whole batch
# with a 400 before running any action; the later one (2024-25) let an unknown
# action, or an item action given a url instead of an item_id, fail alone.
FAIL_ALONE, REFUSE_BATCH = "fail-alone", "refuse-batch"
MALFORMED_MODES = (FAIL_ALONE, REFUSE_BATCH)
STATES = {"unread": "0", "queue": "0", "archive": "1", "read": "1", "all": ""}
# The later server's code accepts all seven (pocket-api.md, "Real server
# behaviour"); the docs' "title/site were removed and return 400" was the old
# server. Only newest and oldest have a known order: the rest answer newest first.
SORTS = ("newest", "oldest", "title", "site", "relevance", "longest", "shortest")
DEFAULT_COUNT = 30  # items per /v3/get when `count` is absent
SINCE_COUNT = 5000  # ... unless `since` is given (the later server's exception)
MAX_COUNT = 5000
BAD_REQUEST = "Invalid request, please make sure you follow the documentation for proper syntax"


class ApiError(Exception):
    """An error answer: HTTP status, X-Error-Code, X-Error; which limits to show."""

    def __init__(self, status: int, code: int, message: str, limits: str = "all") -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.limits = status, code, message, limits


def bad_request(message: str = BAD_REQUEST) -> ApiError:
    return ApiError(400, 130, message)


class ActionFailed(Exception):
    """An action that failed alone: ``false`` in ``action_results``, this in ``action_errors``."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        try:
            kind = HTTPStatus(code).phrase
        except ValueError:
            kind = "Error"
        self.payload = {"message": message, "type": kind, "code": code}


def parse_body(content_type: str, raw_body: bytes) -> tuple[dict[str, Any], bool]:
    """JSON or form-encoded body -> (params, readable)."""
    if not raw_body.strip():
        return {}, True
    text = raw_body.decode("utf-8", errors="replace")
    if "json" in content_type or text.lstrip().startswith("{"):
        try:
            parsed = json.loads(text)
        except ValueError:
            return {}, False
        return (parsed, True) if isinstance(parsed, dict) else ({}, False)
    return dict(parse_qsl(text, keep_blank_values=True)), True


@dataclass(frozen=True)
class GetQuery:
    """A ``/v3/get`` request's parameters, checked and defaulted as the real server did."""

    status: str  # "0" unread, "1" archived, "" all
    favorite: bool | None
    tag: str
    content: str
    search: str
    sort: str
    detail: str
    since: int | None
    count: int
    offset: int
    total: bool

    @classmethod
    def parse(cls, params: Mapping[str, Any]) -> GetQuery:
        since = _number(params, "since")
        if since is not None and len(str(since)) >= 13:  # milliseconds: the later server converted
            since = round(since / 1000)
        count = _number(params, "count")
        if count is None:
            count = DEFAULT_COUNT if since is None else SINCE_COUNT
        elif not 1 <= count <= MAX_COUNT:
            raise bad_request(f"count must be between 1 and {MAX_COUNT}")
        return cls(
            status=STATES[_choice(params, "state", tuple(STATES), "all")],
            favorite=_flag(params, "favorite"),
            tag=str(params.get("tag") or "").strip().lower(),
            content=_choice(params, "contentType", ("article", "video", "image", "all"), "all"),
            search=str(params.get("search") or "").strip().lower(),
            sort=_choice(params, "sort", SORTS, "newest"),
            detail=_choice(params, "detailType", ("simple", "complete"), "simple"),
            since=since,
            count=count,
            offset=_number(params, "offset") or 0,
            total=_flag(params, "total") is True,
        )

    def matcher(self) -> Callable[[Mapping[str, Any]], bool]:
        def matches(item: Mapping[str, Any]) -> bool:
            tags = item.get("tags", {})
            tag, content = self.tag, self.content
            return (
                item["status"] in ((self.status,) if self.status else ("0", "1"))
                and (self.favorite is None or (item["favorite"] == "1") == self.favorite)
                and (not tag or (not tags if tag == "_untagged_" else tag in lower_keys(tags)))
                and (content != "article" or item["is_article"] == "1")
                and (content != "video" or item["has_video"] != "0")
                and (content != "image" or item["has_image"] == "2")
                and (not self.search or self.search in haystack(item))
            )

        return matches


def _choice(params: Mapping[str, Any], name: str, allowed: tuple[str, ...], default: str) -> str:
    """A keyword parameter, case-insensitive; absent or empty means ``default``."""
    raw = params.get(name)
    value = default if raw is None or raw == "" else str(raw).strip().lower()
    if value not in allowed:
        raise bad_request(f"{name}={raw!r} is not supported")
    return value


def _flag(params: Mapping[str, Any], name: str) -> bool | None:
    """``0``/``1``, ``"true"``/``"false"`` or a JSON boolean; None when absent."""
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    text = str(raw).strip().lower()  # str(True) == "True"
    if text in ("1", "true"):
        return True
    if text in ("0", "false"):
        return False
    raise bad_request(f"{name}={raw!r} is not 0, 1, true or false")


def _number(params: Mapping[str, Any], name: str) -> int | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    text = str(value).strip()
    if not text.isdigit():
        raise bad_request(f"{name} must be a whole number")
    return int(text)


def valid_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname) and " " not in url


def _normalise_tag(tag: str) -> str:
    return tag.strip().lower()[:TAG_MAX_LEN].strip()


def parse_tags(value: Any, where: str) -> list[str]:
    """A comma-separated string (or a list) of tags; an empty name is a 400."""
    if isinstance(value, str):
        raw = value.split(",")
    elif isinstance(value, list) and all(isinstance(t, str) for t in value):
        raw = value
    else:
        raise bad_request(f"{where}: tags must be a comma-separated string")
    tags: list[str] = []
    for tag in map(_normalise_tag, raw):
        if not tag:  # "a,", "a,,b", " , " -- the later server: 400
            raise bad_request(f"{where}: tags {value!r} has an empty tag name")
        if tag not in tags:
            tags.append(tag)
    return tags


def _item_id(value: Any) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return str(value)
    if isinstance(value, str) and value.strip().isdigit():
        return value.strip()
    return None


def _action_time(value: Any, where: str) -> int | None:
    """An action's ``time``: unix seconds as a number or a string of digits."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    raise bad_request(f"{where}: time {value!r} is not unix seconds")


def check_action(action: Any, index: int, mode: str) -> dict[str, Any] | ActionFailed:
    """Validate one action. A malformed action raises a 400 for the whole
    request; in ``FAIL_ALONE`` mode (the later server) an unknown action, an
    item action given a url instead of an item_id, or an ``add`` with only an
    item_id is returned as a failure of its own instead."""
    where = f"action {index}"

    def bad(why: str) -> ApiError:
        return bad_request(f"{where}: {why}")

    def alone_or_bad(why: str) -> ActionFailed:
        if mode == REFUSE_BATCH:
            raise bad(why)
        return ActionFailed(400, f"{where}: {why}")

    if not isinstance(action, dict):
        raise bad("not an object")
    name = action.get("action")
    checked: dict[str, Any] = {"action": name, "sent": copy.deepcopy(action)}
    checked["time"] = _action_time(action.get("time"), where)
    if name not in SEND_ACTIONS:
        return alone_or_bad(f"unknown action {name!r}")
    url = action.get("url")
    if url is not None and (not isinstance(url, str) or not valid_url(url)):
        raise bad("url is not a valid http(s) URL")
    needs_id = name in ITEM_ACTIONS or (name == "add" and not url)
    if needs_id and action.get("item_id") is None:
        if url is not None:
            return alone_or_bad(f"{name} needs an item_id, not a url")
        raise bad("item_id is missing")
    if needs_id:
        item_id = _item_id(action.get("item_id"))
        if item_id is None:
            raise bad(f"item_id {action.get('item_id')!r} is not a number")
        checked["item_id"] = item_id
    if name == "add":
        checked["url"] = url
        checked["title"] = action.get("title") if isinstance(action.get("title"), str) else ""
        checked["tags"] = parse_tags(action["tags"], where) if action.get("tags") else []
        if needs_id and mode == FAIL_ALONE:  # the old server saved that item again
            return ActionFailed(400, f"{where}: add needs a url")
    if name in ("tags_add", "tags_remove", "tags_replace"):
        tags = action.get("tags")
        if name == "tags_replace" and mode == FAIL_ALONE and tags in (None, "", []):
            checked["tags"] = []  # the later server: replace with nothing = tags_clear
        elif tags is None:
            raise bad("tags is missing")
        else:
            checked["tags"] = parse_tags(tags, where)
    for key in {"tag_rename": ("old_tag", "new_tag"), "tag_delete": ("tag",)}.get(name, ()):
        value = action.get(key)
        checked[key] = _normalise_tag(value) if isinstance(value, str) else ""
        if not checked[key]:
            raise bad(f"{key} is missing")
    return checked
