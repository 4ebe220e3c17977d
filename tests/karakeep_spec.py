"""The fake Karakeep's answers, checked against Karakeep's published OpenAPI document.

The checking is done by openapi-core (a maintained validator from PyPI), not by
hand-written assertions. The document is read from ``$RULEBOT_SPECS/karakeep-openapi.json``
(default: the repository's own copy in ``tests/specs``, see its README for source and
license); where it is absent the spec checks fail, saying where they looked.

Where ``specs/karakeep.md`` says the real server's code and its OpenAPI document
disagree, the fake follows the code; those answers are checked against the shape the
sheet documents instead (``divergence``), never silently waved through.
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from typing import Any

import pytest

from rulebot.fake.karakeep import Exchange, FakeKarakeep

SPEC_FILE = "karakeep-openapi.json"
REPO = Path(__file__).resolve().parent.parent


def spec_dir() -> Path:
    env = os.environ.get("RULEBOT_SPECS")
    return Path(env) if env else REPO / "tests" / "specs"


def missing_reason() -> str | None:
    """Why the spec checks cannot run here, or None when they can."""
    path = spec_dir() / SPEC_FILE
    if not path.is_file():
        where = (
            "RULEBOT_SPECS" if os.environ.get("RULEBOT_SPECS") else "the repository's tests/specs"
        )
        return (
            f"{SPEC_FILE} not found at {path} ({where}); set RULEBOT_SPECS to the directory "
            "holding Karakeep's published OpenAPI document to run the spec checks"
        )
    try:
        import openapi_core  # noqa: F401
    except ImportError:
        return "openapi-core is not installed; pip install -e '.[dev]' to run the spec checks"
    return None


@functools.cache
def _openapi(path: str) -> Any:
    from openapi_core import OpenAPI

    return OpenAPI.from_file_path(path)


def openapi() -> Any:
    """The loaded document; fails the calling test when it is unavailable."""
    reason = missing_reason()
    if reason is not None:
        pytest.fail(reason)  # the definitions are part of the repository
    return _openapi(str(spec_dir() / SPEC_FILE))


def divergence(exchange: Exchange) -> str | None:
    """Why this answer is checked against karakeep.md rather than the spec, or None.

    Asserts the documented shape while deciding, so a divergence is never a free pass.
    """
    if exchange.status is None:
        return "connection dropped (injected fault): no answer to check"
    if not exchange.path.startswith("/api/v1/"):
        return "outside the API's server URL (/api/v1)"
    content_type = exchange.response_headers.get("Content-Type", "")
    if exchange.fault == "status" and not 400 <= exchange.status < 500:
        return "an injected failure or garbage answer (a proxy, a wrong base URL)"
    if exchange.fault == "garble":
        return "an injected malformed bookmark (a data fault): off the spec on purpose"
    if exchange.status == 401 and exchange.route.split(" ", 1)[1] == exchange.path:
        # no route matched (a route is named by its template, relative to /api/v1)
        assert content_type.startswith("text/plain"), exchange
        assert exchange.response_body == b"Unauthorized", exchange
        return "no such route, but under a resource whose router checks the key first"
    if exchange.status >= 400 and exchange.status != 401:
        if content_type.startswith("application/json"):
            # zod-validator 400s: {"success": false, "error": {...}} (karakeep.md §2)
            answer = json.loads(exchange.response_body)
            assert exchange.status == 400 and answer["success"] is False, exchange
            assert answer["error"]["name"] == "ZodError", exchange
            return "zod validation 400 (karakeep.md §2)"
        # tRPC-originated errors: the message alone as text/plain (karakeep.md §2);
        # the spec claims JSON Error {code, message}
        assert content_type.startswith("text/plain"), exchange
        assert exchange.response_body and not exchange.response_body.startswith(b"{"), exchange
        return "business errors are plain text (karakeep.md §2)"
    return None


def check_exchange(api: Any, exchange: Exchange) -> None:
    """Validate one answer (and, for a successful call, its request) against the spec."""
    from openapi_core.testing import MockRequest, MockResponse

    if divergence(exchange) is not None:
        return
    host = "http://" + exchange.headers.get("host", "127.0.0.1")
    request = MockRequest(
        host,
        exchange.method,
        exchange.path,
        args=exchange.query,
        headers=exchange.headers,
        data=exchange.raw_body or None,
        content_type=exchange.headers.get("content-type", ""),
    )
    content_type = exchange.response_headers.get("Content-Type", "").split(";")[0]
    response = MockResponse(
        exchange.response_body, status_code=exchange.status or 0, content_type=content_type
    )
    where = f"{exchange.method} {exchange.target} -> {exchange.status}"
    try:
        api.validate_response(request, response)
        if 200 <= (exchange.status or 0) < 300:
            api.validate_request(request)
    except Exception as err:  # openapi-core raises a family of errors; show the details
        details = getattr(err, "schema_errors", None) or err.__cause__ or ""
        raise AssertionError(f"{where}: {err} {details}") from err


def check_all(server: FakeKarakeep) -> int:
    """Validate every exchange the server recorded; returns how many were spec-checked."""
    api = openapi()
    checked = 0
    for exchange in server.exchanges:
        check_exchange(api, exchange)
        checked += divergence(exchange) is None
    return checked
