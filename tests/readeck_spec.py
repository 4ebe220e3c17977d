"""The fake Readeck's answers, checked against Readeck's published API definition.

The checking is done by openapi-core (a maintained validator from PyPI), not by
hand-written assertions. The definition is Readeck's own YAML tree, read from
``$RULEBOT_SPECS/readeck-api/`` (default: the repository's own copy in ``tests/specs``,
see its README for source and license); where it is absent the spec checks fail, saying
where they looked.

That tree is not a plain OpenAPI document: it uses Readeck's ``$merge`` and
``$include`` preprocessing keys and a few non-standard types (``[string]``,
``any``). ``assemble`` does what Readeck's build does (merge the named
fragments; an included Markdown text becomes a placeholder) and writes those
types the standard way. Where ``specs/readeck.md`` says the code and the YAML
disagree, the code wins and the correction is applied here, each one named
(``CORRECTIONS``); answers the YAML does not describe at all are checked
against the shape the sheet documents (``divergence``), never waved through.
"""

from __future__ import annotations

import copy
import functools
import json
import os
from pathlib import Path
from typing import Any

import pytest

from rulebot.fake.readeck import Exchange, FakeReadeck

SPEC_DIR = "readeck-api"
REPO = Path(__file__).resolve().parent.parent

# readeck.md §3, §7, §9: where the server's code differs from its YAML
CORRECTIONS = {
    "bookmarkUpdated: is_* are booleans and labels an array, not strings (§7)": (
        "bookmarkUpdated",
        {
            "is_archived": {"type": "boolean"},
            "is_marked": {"type": "boolean"},
            "is_deleted": {"type": "boolean"},
            "labels": {"type": "array", "items": {"type": "string"}},
        },
    ),
    "bookmarkSummary: authors can be null (a nil Go slice) and text_direction empty (§3)": (
        "bookmarkSummary",
        {
            "authors": {"type": "array", "items": {"type": "string"}, "nullable": True},
            "text_direction": {"type": "string", "enum": ["ltr", "rtl", ""]},
        },
    ),
    "bookmarkUpdate: text_direction may be set to empty (§7)": (
        "bookmarkUpdate",
        {"text_direction": {"type": "string", "enum": ["ltr", "rtl", ""]}},
    ),
}


SERVED = (
    "/info",
    "/profile",
    "/bookmarks",
    "/bookmarks/{id}",
    "/bookmarks/sync",
    "/bookmarks/labels",
)


def spec_dir() -> Path:
    env = os.environ.get("RULEBOT_SPECS")
    return Path(env) if env else REPO / "tests" / "specs"


def missing_reason() -> str | None:
    """Why the spec checks cannot run here, or None when they can."""
    path = spec_dir() / SPEC_DIR / "api.yaml"
    if not path.is_file():
        where = (
            "RULEBOT_SPECS" if os.environ.get("RULEBOT_SPECS") else "the repository's tests/specs"
        )
        return (
            f"{SPEC_DIR}/api.yaml not found at {path} ({where}); set RULEBOT_SPECS to the "
            "directory holding Readeck's API YAML tree (readeck-api/) to run the spec checks"
        )
    try:
        import openapi_core  # noqa: F401
        import yaml  # noqa: F401
    except ImportError:
        return "openapi-core is not installed; pip install -e '.[dev]' to run the spec checks"
    return None


# -- assembling Readeck's YAML tree into one OpenAPI 3.0 document ----------------------


def _load(root: Path, name: str) -> Any:
    import yaml

    return yaml.safe_load((root / name).read_text())


def _lookup(root: Path, current: str, ref: str) -> Any:
    """``file#.a.b``, ``file#a`` or ``#.a``: a fragment of the tree."""
    file_name, _, pointer = ref.partition("#")
    node = _load(root, file_name or current)
    for key in [k for k in pointer.split(".") if k]:
        node = node[key]
    return node


def _deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        elif isinstance(value, list) and isinstance(merged.get(key), list):
            merged[key] = merged[key] + value
        else:
            merged[key] = value
    return merged


def _resolve(root: Path, current: str, node: Any) -> Any:
    if isinstance(node, list):
        return [_resolve(root, current, n) for n in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#") and not ref.startswith("#/"):
        node = {**node, "$ref": "#/" + ref[1:]}  # a few refs lack the slash: #components/…
    if "$include" in node and len(node) == 1:
        return "(text included from Markdown, not copied)"
    result: dict[str, Any] = {}
    for ref in node.get("$merge", []):
        file_name = ref.partition("#")[0] or current
        fragment = _resolve(root, file_name, copy.deepcopy(_lookup(root, current, ref)))
        result = _deep_merge(result, fragment)
    for key, value in node.items():
        if key == "$merge":
            continue
        resolved = _resolve(root, current, value)
        if isinstance(resolved, dict) and isinstance(result.get(key), dict):
            result[key] = _deep_merge(result[key], resolved)
        else:
            result[key] = resolved
    return _standard_types(result)


def _standard_types(node: dict[str, Any]) -> dict[str, Any]:
    """Readeck's ``type: [string]``/``[string, 'null']``/``"[integer]"``/``any`` in OAS 3.0."""
    kind = node.get("type")
    if isinstance(kind, list):
        named = [k for k in kind if k != "null"]
        node["type"] = named[0] if named else "string"
        if "null" in kind:
            node["nullable"] = True
    elif isinstance(kind, str) and kind.startswith("[") and kind.endswith("]"):
        node["type"], node["items"] = "array", {"type": kind[1:-1]}
    elif kind == "any":
        del node["type"]
    return node


def assemble(root: Path) -> dict[str, Any]:
    document = _resolve(root, "api.yaml", _load(root, "api.yaml"))
    document["servers"] = [{"url": "/api"}]
    # `/bookmarks/labels?name={name}` (not in SERVED) puts a query in a path template, which
    # OpenAPI cannot match: those answers are checked in `divergence`
    # only what rulebot and the fake use: the other routes are not checked here
    document["paths"] = {p: v for p, v in document["paths"].items() if p in SERVED}
    for operations in document["paths"].values():
        for operation in operations.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            # YAML reads `200:` as a number; OAS 3.0 wants text and a description
            responses = {str(code): r for code, r in operation["responses"].items()}
            for response in responses.values():
                response.setdefault("description", "(not described)")
            operation["responses"] = responses
    # HTTP auth schemes are case-insensitive; openapi-core compares with "bearer"
    document["components"]["securitySchemes"]["bearer"]["scheme"] = "bearer"
    schemas = document["components"]["schemas"]
    for name, properties in CORRECTIONS.values():
        target = schemas[name]
        holder = target["allOf"][0] if "allOf" in target else target
        holder.setdefault("properties", {}).update(properties)
    schemas["bookmarkUpdated"]["required"] = ["href", "id"]  # `{}` changes nothing: no updated
    return document


@functools.cache
def _openapi(path: str) -> Any:
    from openapi_core import Config, OpenAPI

    # the document as a whole uses a few OAS 3.1 words (const, examples) in routes
    # rulebot never calls: skip the whole-document check, validate every answer
    return OpenAPI.from_dict(assemble(Path(path)), config=Config(spec_validator_cls=None))


def openapi() -> Any:
    """The assembled document; fails the calling test when it is unavailable."""
    reason = missing_reason()
    if reason is not None:
        pytest.fail(reason)  # the definitions are part of the repository
    return _openapi(str(spec_dir() / SPEC_DIR))


def _schema(name: str) -> Any:
    """One component schema, with a validator for single values (label info)."""
    from openapi_schema_validator import OAS30Validator

    document = assemble(spec_dir() / SPEC_DIR)
    schema = {**document["components"]["schemas"][name], "components": document["components"]}
    return OAS30Validator(schema)


def divergence(exchange: Exchange) -> str | None:
    """Why this answer is checked against readeck.md rather than the YAML, or None.

    Asserts the documented shape while deciding, so a divergence is never a free pass."""
    status = exchange.status
    if status is None:
        return "connection dropped (injected fault): no answer to check"
    if not exchange.path.startswith("/api/"):
        return "outside the API"
    content_type = exchange.response_headers.get("Content-Type", "")
    if exchange.fault == "status":
        return "an injected failure (a proxy, a broken server)"
    if exchange.fault == "garble":
        return "an injected malformed bookmark (a data fault): off the spec on purpose"
    if status == 304:
        assert exchange.response_body == b"" and "ETag" in exchange.response_headers
        return "304 Not Modified: no body (readeck.md §2, caching)"
    if status >= 400 and status != 422:
        accept = exchange.headers.get("accept", "")
        if content_type.startswith("application/json"):
            answer = json.loads(exchange.response_body)
            if status == 400 and "fields" in answer:
                assert answer["is_valid"] is False, exchange
                return "PATCH validation errors are 400 form JSON, not 422 (readeck.md §2, §7)"
            assert answer == {"status": status, "message": answer["message"]}, exchange
            assert "application/json" in accept, exchange  # else text or HTML
            if status in (401, 403):
                return None  # declared: the `message` schema
            return "ErrorPages JSON {status, message} for an undeclared status (readeck.md §2)"
        assert "application/json" not in accept, exchange
        return "an error page shaped by Accept: text or HTML (readeck.md §2)"
    if exchange.route == "GET /bookmarks/labels" and "name" in exchange.query:
        errors = list(_schema("labelInfo").iter_errors(json.loads(exchange.response_body)))
        assert not errors and isinstance(json.loads(exchange.response_body), dict), errors
        return "label info answers one object, the YAML says an array (readeck.md §9)"
    if exchange.route in ("PATCH /bookmarks/labels", "DELETE /bookmarks/labels"):
        assert status in (200, 204), exchange
        if status == 200:
            answer = json.loads(exchange.response_body)
            assert set(answer) == {"name"} and isinstance(answer["name"], str), exchange
        return "label routes take ?name= in the query: OpenAPI cannot template it (readeck.md §9)"
    return None


def check_exchange(api: Any, exchange: Exchange) -> None:
    """Validate one answer (and, for a successful call, its request) against the YAML."""
    from openapi_core.testing import MockRequest, MockResponse

    if divergence(exchange) is not None:
        return
    host = "http://" + exchange.headers.get("host", "127.0.0.1")
    args = {k: v for k, v in exchange.query.items()}
    request = MockRequest(
        host,
        exchange.method.lower(),
        exchange.path,
        args=args,
        headers={k.title(): v for k, v in exchange.headers.items()},  # security looks by case
        data=exchange.raw_body or None,
        content_type=exchange.headers.get("content-type", ""),
    )
    content_type = exchange.response_headers.get("Content-Type", "").split(";")[0]
    response = MockResponse(
        exchange.response_body,
        status_code=exchange.status or 0,
        content_type=content_type or "application/json",
        headers=exchange.response_headers,
    )
    where = f"{exchange.method} {exchange.target} -> {exchange.status}"
    try:
        api.validate_response(request, response)
        # Basic with the token as the password works (readeck.md §1), the YAML names only
        # bearer: such a request's answer is checked, the request is not
        basic = exchange.headers.get("authorization", "").lower().startswith("basic ")
        if 200 <= (exchange.status or 0) < 300 and not basic:
            api.validate_request(request)
    except Exception as err:  # openapi-core raises a family of errors; show the details
        details = getattr(err, "schema_errors", None) or err.__cause__ or ""
        raise AssertionError(f"{where}: {err} {details}") from err


def check_all(server: FakeReadeck) -> int:
    """Validate every exchange the server recorded; returns how many were spec-checked."""
    api = openapi()
    checked = 0
    for exchange in server.exchanges:
        check_exchange(api, exchange)
        checked += divergence(exchange) is None
    return checked
