"""The fake Shaarli server: the REST API v1 routes, JWT auth and their
answers (specs/shaarli.md §1-§11), on the links of :mod:`.library`."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from typing import Any, ClassVar
from urllib.parse import parse_qsl

from rulebot.fake.base import Fault, Reply, Request
from rulebot.fake.shaarli.library import ShaarliLibrary
from rulebot.fake.shaarli.model import (
    ApiError,
    Crash,
    Draft,
    Link,
    atom,
    clean_tags,
    clean_url,
    parse_atom,
    php_bool,
    php_empty,
    php_key,
    php_string,
)

API_PREFIX = "/api/v1"
# the real server's tests use their own; this one is distinctive so tests can grep for it
DEFAULT_SECRET = "fake-shaarli-SECRET-0c0de5ecre7"
FAULTS = ("status", "drop", "drop_after", "slow", "die")
DEFAULT_LIMIT = 20  # Links::$DEFAULT_LIMIT
TOKEN_DURATION = 540  # ApiMiddleware::$TOKEN_DURATION: seconds a token stays good
CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Headers": "X-Requested-With, Content-Type, Accept, Origin, Authorization",
    "Access-Control-Allow-Methods": "GET, POST, PUT, DELETE, OPTIONS",
}
CRASH_PAGE = (
    "An unexpected error happened, and the error template could not be displayed.<br />\n"
    "<br />\n{}<br />\n"
)
_NOT_ALLOWED_PAGE = (
    "<html><head><title>Method not allowed</title></head><body><h1>Method not allowed</h1>"
    "<p>Method not allowed. Must be one of: <strong>{}</strong></p></body></html>"
)
_PROXY_PAGE = (
    "<html><head><title>{0}</title></head><body><center><h1>{0}</h1></center></body></html>"
)
# FastRoute without the /u flag: \d and \w are ASCII; (template, pattern, {method: handler})
_ROUTES: tuple[tuple[str, re.Pattern[str], dict[str, str]], ...] = tuple(
    (template, re.compile(pattern), handlers)
    for template, pattern, handlers in (
        ("/info", r"/info", {"GET": "_info"}),
        ("/links", r"/links", {"GET": "_list_links", "POST": "_create_link"}),
        (
            "/links/{id}",
            r"/links/([0-9]+)",
            {"GET": "_get_link", "PUT": "_update_link", "DELETE": "_delete_link"},
        ),
        ("/tags", r"/tags", {"GET": "_list_tags"}),
        (
            "/tags/{name}",
            r"/tags/([A-Za-z0-9_]+)",
            {"GET": "_get_tag", "PUT": "_rename_tag", "DELETE": "_delete_tag"},
        ),
        ("/history", r"/history", {"GET": "_get_history"}),
    )
)


class FakeShaarli(ShaarliLibrary):
    """The fake server and its state; start with ``with`` or ``start()``."""

    name = "shaarli"
    FAULTS: ClassVar[tuple[str, ...]] = FAULTS
    default_headers: ClassVar[dict[str, str]] = {
        "Cache-Control": "no-store, no-cache, must-revalidate, post-check=0, pre-check=0"
    }

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        secret: str = DEFAULT_SECRET,
        latency: float = 0.0,
        now: int | None = None,
        title: str = "Test Shaarli",
        default_private: bool = False,
    ) -> None:
        super().__init__(
            host=host,
            port=port,
            latency=latency,
            now=now,
            title=title,
            default_private=default_private,
        )
        self.secret = secret  # api.secret; "" refuses every token
        self.api_enabled = True  # api.enabled

    # -- request handling ------------------------------------------------------------
    def _resolve(self, method: str, path: str) -> tuple[str, str | None, list[str]]:
        """Slim's routes: ``/index.php/api/v1/…`` too; a path that matches with
        another method is a 405 (``_not_allowed``), no match at all a 404."""
        relative = path.removeprefix("/index.php")
        if relative.startswith(API_PREFIX + "/"):
            relative = relative[len(API_PREFIX) :]
            for template, pattern, handlers in _ROUTES:
                match = pattern.fullmatch(relative)
                if match:
                    handler = handlers.get(method, "_not_allowed")
                    return f"{method} {template}", handler, list(match.groups())
        return f"{method} {path}", None, []

    def _answer(self, request: Request, fault: Fault | None) -> Reply:
        if request.handler is None:  # before auth: no 401, an empty HTML page
            return Reply(404, b"", {"Content-Type": "text/html; charset=UTF-8"})
        if request.handler == "_not_allowed":
            template = request.route.split(" ", 1)[1]
            allowed = ", ".join(next(h for t, _, h in _ROUTES if t == template))
            page = _NOT_ALLOWED_PAGE.format(allowed)
            headers = {"Content-Type": "text/html;charset=UTF-8", "Allow": allowed}
            return Reply(405, page.encode(), headers)
        try:
            self._check_token(request.headers.get("authorization"))
            body = _parsed_body(request.headers, request.raw_body)
            with self._lock:
                status, answer, headers = getattr(self, request.handler)(
                    *request.params, request=request, body=body
                )
        except ApiError as err:
            return _json(err.status, err.message)
        except Crash as err:
            page = CRASH_PAGE.format(err)
            return Reply(200, page.encode(), {"Content-Type": "text/html; charset=UTF-8"})
        if status == 204:
            return Reply(204, b"", dict(CORS))
        return _json(status, answer, headers)

    def _fault_reply(self, fault: Fault, request: Request) -> Reply:
        if fault.status in (502, 503, 504) and fault.body is None:
            reason = {
                502: "502 Bad Gateway",
                503: "503 Service Unavailable",
                504: "504 Gateway Timeout",
            }
            page = _PROXY_PAGE.format(reason[fault.status])
            return Reply(fault.status, page.encode(), {"Content-Type": "text/html"})
        messages = {400: "Bad Request", 401: "Not authorized", 404: "Link not found"}
        message = fault.body if fault.body is not None else messages.get(fault.status, "Error")
        return _json(fault.status, message)

    def _check_token(self, authorization: str | None) -> None:
        """``ApiMiddleware::checkToken`` and ``ApiUtils::validateJwtToken``: every
        failure is the same 401."""
        refused = ApiError(401, "Not authorized")
        if not self.api_enabled or authorization is None or not self.secret:
            raise refused
        match = re.match(r"Bearer (.*)", authorization, re.IGNORECASE | re.DOTALL)
        if match is None:
            raise refused
        parts = match.group(1).split(".")
        if len(parts) != 3 or not parts[0] or not parts[1]:
            raise refused
        signing = f"{parts[0]}.{parts[1]}".encode()
        digest = hmac.new(self.secret.encode(), signing, hashlib.sha512).digest()
        if parts[2] != base64.urlsafe_b64encode(digest).decode().rstrip("="):
            raise refused  # alg/typ are never read: only this signature counts
        header, payload = _b64_json(parts[0]), _b64_json(parts[1])
        if header is None or not isinstance(payload, dict):
            raise refused
        iat = payload.get("iat")
        if isinstance(iat, str) and re.fullmatch(r"\s*[+-]?\d+(\.\d+)?\s*", iat):
            iat = float(iat)  # PHP's loose comparison reads a numeric string
        if isinstance(iat, bool) or not isinstance(iat, int | float) or not iat:
            raise refused
        now = self.now
        if iat > now or now - iat > TOKEN_DURATION:
            raise refused

    # -- the API -------------------------------------------------------------------------
    def _info(self, *, request: Request, body: Any) -> tuple[int, Any, dict[str, str]]:
        links = list(self._links.values())
        info = {
            "global_counter": len(links),
            "private_counter": sum(1 for link in links if link.private),
            "settings": {
                "title": self.title,
                "header_link": "/",
                "timezone": "UTC",
                "enabled_plugins": ["qrcode"],
                "default_private_links": self.default_private,
            },
        }
        return 200, info, {}

    def _list_links(self, *, request: Request, body: Any) -> tuple[int, Any, dict[str, str]]:
        query = request.query
        tags: str | list[str] = query.get("searchtags", "")
        if "searchtags[]" in request.multi:
            tags = request.multi["searchtags[]"]
        listed = self._listed(
            query.get("visibility") or "all", tags=tags, term=query.get("searchterm", "")
        )
        offset = _offset(query.get("offset"))
        if offset > len(listed):
            return 200, [], {}
        limit = query.get("limit")
        if php_empty(limit):
            count = DEFAULT_LIMIT
        elif _digits(limit):
            count = int(limit)  # type: ignore[arg-type]
        elif limit == "all":
            count = len(listed)
        else:
            raise ApiError(400, "Invalid limit")
        index = _index_url(request)
        return 200, [self._render(link, index) for link in listed[offset : offset + count]], {}

    def _get_link(
        self, link_id: str, *, request: Request, body: Any
    ) -> tuple[int, Any, dict[str, str]]:
        return 200, self._render(self._find(int(link_id)), _index_url(request)), {}

    def _create_link(self, *, request: Request, body: Any) -> tuple[int, Any, dict[str, str]]:
        draft = self._draft(body)
        duplicate = self._by_url(draft.url)
        if duplicate is not None:  # nothing created or changed, nothing recorded
            return 409, self._render(duplicate, _index_url(request)), {}
        link = self._insert(draft)
        location = {"Location": f"{API_PREFIX}/links/{link.id}"}  # a path, not a URL
        return 201, self._render(link, _index_url(request)), location

    def _update_link(
        self, link_id: str, *, request: Request, body: Any
    ) -> tuple[int, Any, dict[str, str]]:
        link = self._find(int(link_id))
        draft = self._draft(body)  # every editable field: one left out is reset
        duplicate = self._by_url(draft.url)
        if duplicate is not None and duplicate.id != link.id:
            return 409, self._render(duplicate, _index_url(request)), {}
        link.title, link.url, link.description = draft.title, draft.url, draft.description
        link.tags, link.private = list(draft.tags), draft.private
        self._save(link)  # created/updated in the body are ignored
        return 200, self._render(link, _index_url(request)), {}

    def _delete_link(
        self, link_id: str, *, request: Request, body: Any
    ) -> tuple[int, Any, dict[str, str]]:
        link = self._find(int(link_id))
        del self._links[link.id]
        self._record("DELETED", link.id)
        return 204, None, {}

    def _list_tags(self, *, request: Request, body: Any) -> tuple[int, Any, dict[str, str]]:
        counts = self._tag_counts(request.query.get("visibility") or "all")
        offset = _offset(request.query.get("offset"))
        if offset > len(counts):
            return 200, [], {}
        limit = request.query.get("limit")
        if php_empty(limit) or limit == "all":
            count = len(counts)
        elif _digits(limit):
            count = int(limit)  # type: ignore[arg-type]
        else:
            raise ApiError(400, "Invalid limit")
        shown = counts[offset : offset + count]
        return 200, [{"name": name, "occurrences": n} for name, n in shown], {}

    def _tag_count(self, name: str) -> int:
        """The count the tag list holds under ``name`` (PHP key lookup), or 404."""
        counts = dict(self._tag_counts("all"))
        if php_key(name) not in counts:
            raise ApiError(404, "Tag not found")
        return counts[php_key(name)]

    def _get_tag(
        self, name: str, *, request: Request, body: Any
    ) -> tuple[int, Any, dict[str, str]]:
        return 200, {"name": name, "occurrences": self._tag_count(name)}, {}

    def _rename_tag(
        self, name: str, *, request: Request, body: Any
    ) -> tuple[int, Any, dict[str, str]]:
        self._tag_count(name)
        fields = body if isinstance(body, dict) else {}
        new_name = fields.get("name")
        if php_empty(new_name):
            raise ApiError(400, "New tag name is required in the request body")
        replacement = php_string(new_name).strip()
        for link in self._tagged(name):  # the first exact-case copy only
            if name in link.tags:
                link.tags[link.tags.index(name)] = replacement
            self._save(link)  # hashtag-only links are re-saved too
        counts = dict(self._tag_counts("all"))
        key = php_key(new_name) if isinstance(new_name, str) else new_name
        occurrences = counts.get(key) if isinstance(key, int | str) else None
        return 200, {"name": new_name, "occurrences": occurrences}, {}

    def _delete_tag(
        self, name: str, *, request: Request, body: Any
    ) -> tuple[int, Any, dict[str, str]]:
        self._tag_count(name)
        for link in self._tagged(name):
            if name in link.tags:
                link.tags.remove(name)  # the first exact-case copy only
            self._save(link)
        return 204, None, {}

    def _tagged(self, name: str) -> list[Link]:
        """The links a tag route acts on: a case-sensitive tag search, which also
        finds the tag as a ``#hashtag`` in a description."""
        return self._listed("all", tags=name, case_sensitive=True)

    def _get_history(self, *, request: Request, body: Any) -> tuple[int, Any, dict[str, str]]:
        query = request.query
        since = parse_atom(query.get("since"))  # unreadable: ignored, everything comes back
        offset = _offset(query.get("offset"))
        limit = query.get("limit")
        if php_empty(limit):
            count = len(self._history)
        elif _digits(limit):
            count = int(limit)  # type: ignore[arg-type]
        else:
            raise ApiError(400, "Invalid limit")  # "all" included
        newer = []
        for event in self._history:  # newest first: the walk stops at the first one not newer
            if since is not None and event.at <= since:
                break
            newer.append(event)
        shown = newer[offset : offset + count]
        return 200, [{"event": e.event, "datetime": atom(e.at), "id": e.id} for e in shown], {}

    def _draft(self, body: Any) -> Draft:
        """``ApiUtils::buildBookmarkFromRequest``: what a POST or PUT body says."""
        fields: dict[str, Any] = body if isinstance(body, dict) else {}
        url = clean_url(php_string(fields["url"])) if not php_empty(fields.get("url")) else ""
        private = fields.get("private")
        title = fields.get("title")
        description = fields.get("description")
        return Draft(
            url=url,
            title=php_string(title).strip() if not php_empty(title) else "",
            description=php_string(description) if not php_empty(description) else "",
            tags=clean_tags(fields.get("tags")),
            private=self.default_private if private is None else php_bool(private),
            created=parse_atom(fields.get("created")),
            updated=parse_atom(fields.get("updated")),
        )


def _json(status: int, answer: Any, headers: dict[str, str] | None = None) -> Reply:
    """Slim's ``withJson``: compact, ``\\/`` and ``\\uXXXX`` escapes, the CORS headers."""
    body = json.dumps(answer, separators=(",", ":")).replace("/", "\\/").encode()
    return Reply(status, body, {"Content-Type": "application/json", **CORS, **(headers or {})})


def _digits(value: Any) -> bool:
    """PHP ``ctype_digit`` on a string: ASCII digits only, at least one."""
    return isinstance(value, str) and bool(re.fullmatch(r"[0-9]+", value))


def _offset(value: str | None) -> int:
    if php_empty(value):
        return 0
    if not _digits(value):
        raise ApiError(400, "Invalid offset")
    return int(value)  # type: ignore[arg-type]


def _index_url(request: Request) -> str:
    """``index_url``: from the request's Host, as the real server builds it."""
    return f"http://{request.headers.get('host', '127.0.0.1')}/"


def _b64_json(part: str) -> Any:
    try:
        return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    except (ValueError, binascii.Error):
        return None


def _parsed_body(headers: dict[str, str], raw: bytes) -> Any:
    """Slim's body parsers: JSON (``application/json``, ``*+json``) and forms;
    any other type, or JSON that does not parse, is no body at all."""
    media = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media == "application/json" or media.endswith("+json"):
        try:
            parsed = json.loads(raw or b"null")
        except ValueError:
            return None
        return parsed if isinstance(parsed, dict | list) else None
    if media == "application/x-www-form-urlencoded":
        fields: dict[str, Any] = {}
        for key, value in parse_qsl(raw.decode(errors="replace"), keep_blank_values=True):
            if key.endswith("[]"):
                fields.setdefault(key[:-2], []).append(value)
            else:
                fields[key] = value
        return fields
    return None
