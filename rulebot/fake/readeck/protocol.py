"""How Readeck's server speaks HTTP: errors in the shape the ``Accept``
header asks for, form errors, ETags, and how it reads its parameters."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from rulebot.fake.base import Reply, json_reply, parse_iso
from rulebot.fake.readeck.model import FormError, ReadeckStatus

MAX_PAGE = 100
DEFAULT_PAGE = 50
HTML_PAGE = "<!DOCTYPE html><html><head><title>{0}</title></head><body><h1>{0}</h1></body></html>"
PROXY_PAGE = "<html><head><title>{0}</title></head><body><h1>{0}</h1></body></html>"
PLAIN = {"Content-Type": "text/plain; charset=utf-8"}
HTML = {"Content-Type": "text/html; charset=utf-8"}


def error_page(status: int, accept: str) -> Reply:
    """``ErrorPages``: the generic status text, shaped by the request's Accept."""
    phrase = HTTPStatus(status).phrase
    wanted = negotiate(accept)
    if wanted == "application/json":
        return json_reply(status, {"status": status, "message": phrase})
    if wanted == "text/plain":
        return Reply(status, f"{phrase}\n".encode(), dict(PLAIN))
    return Reply(status, HTML_PAGE.format(f"{status} {phrase}").encode(), dict(HTML))


def negotiate(accept: str) -> str:
    """Among text/plain, text/html, application/json; text/html when nothing names one."""
    best, best_q = "text/html", 0.0
    for part in accept.split(","):
        kind, _, params = part.strip().partition(";")
        q = 1.0
        match = re.search(r"q=([0-9.]+)", params)
        if match:
            try:
                q = float(match.group(1))
            except ValueError:
                q = 0.0
        for offered in ("application/json", "text/plain", "text/html"):
            if kind.strip() == offered and q > best_q:
                best, best_q = offered, q
                break
    return best


def form_answer(fields: dict[str, list[str]]) -> dict[str, Any]:
    return {
        "is_valid": False,
        "errors": None,
        "fields": {
            name: {"is_null": False, "is_bound": True, "value": None, "errors": errors}
            for name, errors in fields.items()
        },
    }


def etag(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:16] + '"'


def parse_since(text: str) -> int | None:
    """What ``dateparse.ParseAny`` reads that rulebot might send: RFC 3339, a date, unix seconds."""
    text = text.strip()
    if text.isdigit() and len(text) <= 12:
        return int(text) * 1_000_000
    parsed = parse_iso(text)
    return None if parsed is None else int(parsed.timestamp() * 1_000_000)


def page_param(text: str | None, default: int) -> int:
    if text is None or text == "":
        return default
    if not re.fullmatch(r"\d{1,9}", text):
        raise ReadeckStatus(404)  # a negative or non-integer limit/offset: Not Found
    value = int(text)
    return default if value == 0 and default == DEFAULT_PAGE else value


def form_bool(name: str, text: str) -> bool:
    lowered = text.lower()
    if lowered in ("true", "1", "t", "on"):
        return True
    if lowered in ("false", "0", "f", "off"):
        return False
    raise FormError(422, {name: ["invalid boolean"]})


def read_json(headers: Mapping[str, str], raw_body: bytes) -> Any:
    if not raw_body:
        return None
    try:
        return json.loads(raw_body)
    except ValueError:
        raise ReadeckStatus(400) from None
