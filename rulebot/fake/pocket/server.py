"""The fake Pocket server: its credentials, OAuth, rate limits and the
``X-Error`` answers around the library's endpoints, and its faults.

Faults (``inject(fault, count, path)``): "503" maintenance (X-Error-Code
199, ``Retry-After: retry_after`` if set), "500", "400", "drop" (close
without answering), "drop_after" (do the work, then close without
answering), "slow" (wait ``seconds``, then answer normally), "garbage" /
"html" (200 with a body that is not JSON), "answer" (200 with ``answer`` as
JSON: a wrong-shaped reply), "die" (``stop`` the server instead of
answering, the work undone).
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlencode, urlsplit

from rulebot.fake.base import Fault, Reply, Request, json_reply
from rulebot.fake.pocket.checks import BAD_REQUEST, FAIL_ALONE, ApiError, bad_request, parse_body
from rulebot.fake.pocket.library import PocketLibrary

DEFAULT_CONSUMER_KEY = "99999-fakepocket0consumer0key000"
DEFAULT_ACCESS_TOKEN = "fa4e0000-7e57-4000-8000-0000000c0de0"
DEFAULT_USERNAME = "fakeuser"
# the variables rulebot reads: a fake started in the same shell accepts them
CONSUMER_KEY_ENV, ACCESS_TOKEN_ENV = "POCKET_CONSUMER_KEY", "POCKET_ACCESS_TOKEN"
FAULTS = ("503", "500", "drop", "drop_after", "slow", "garbage", "html", "400", "answer", "die")
# pocket-api.md gives no X-Error-Code for rate limiting; Pocket documented one
# meaning for 403 ("denied due to lack of permission or rate limiting"), so
# the fake sends the permission code and only X-Limit-*-Remaining: 0 tells the
# two apart -- the one signal a client can rely on.
RATE_LIMIT_CODE = 151
_JSON = "application/json; charset=UTF-8"


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server saw it (headers keyed in lower case)."""

    method: str
    path: str
    url: str  # the request target: path plus query string, exactly as sent
    headers: dict[str, str]
    body: dict[str, Any]  # parsed JSON or form body; {} when unreadable
    raw_body: bytes


class FakePocket(PocketLibrary):
    """The fake server and its state; start with ``with`` or ``start()``."""

    name = "pocket"
    FAULTS: ClassVar[tuple[str, ...]] = FAULTS
    default_headers: ClassVar[Mapping[str, str]] = {"X-Source": "Pocket"}

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        consumer_key: str = DEFAULT_CONSUMER_KEY,
        access_token: str = DEFAULT_ACCESS_TOKEN,
        username: str = DEFAULT_USERNAME,
        now: int | None = None,
        user_limit: int = 320,
        key_limit: int = 10_000,
        reset_seconds: float = 3600.0,
        max_page: int | None = None,
        over_page: int = 0,
        malformed_actions: str = FAIL_ALONE,
        auto_approve: bool = False,
    ) -> None:
        super().__init__(
            host=host,
            port=port,
            now=now,
            max_page=max_page,
            over_page=over_page,
            malformed_actions=malformed_actions,
        )
        self.consumer_key, self.access_token, self.username = consumer_key, access_token, username
        self.permissions = {"retrieve", "modify", "add"}  # drop "modify" to get 403/151 on send
        self.user_limit, self.key_limit, self.reset_seconds = user_limit, key_limit, reset_seconds
        self.reject_authorization = False  # OAuth: the user said no (403/158)
        self.auto_approve = auto_approve  # OAuth: codes count as approved without /auth/authorize
        self._requests: list[RecordedRequest] = []
        self._oauth_codes: dict[str, str] = {}  # request token -> pending/approved/used
        self._window_start = time.monotonic()
        self._user_used = 0
        self._key_used = 0

    # -- test helpers --------------------------------------------------------------
    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def approve(self, request_token: str) -> None:
        """The user approves an OAuth request token (as ``/auth/authorize`` does)."""
        with self._lock:
            if self._oauth_codes.get(request_token) == "pending":
                self._oauth_codes[request_token] = "approved"

    def reset_rate_limits(self) -> None:
        with self._lock:
            self._window_start, self._user_used, self._key_used = time.monotonic(), 0, 0

    # -- request handling ------------------------------------------------------------
    def _arrive(self, request: Request) -> None:
        super()._arrive(request)
        body, _ = parse_body(request.headers.get("content-type", ""), request.raw_body)
        recorded = RecordedRequest(
            request.method, request.path, request.target, request.headers, body, request.raw_body
        )
        self._requests.append(recorded)

    def _answer(self, request: Request, fault: Fault | None) -> Reply:
        body, body_ok = parse_body(request.headers.get("content-type", ""), request.raw_body)
        params = {**dict(parse_qsl(urlsplit(request.target).query)), **body}
        try:
            if not body_ok:
                raise bad_request()
            return self._dispatch(request.method, request.path, params, request.headers)
        except ApiError as err:
            reply = json_reply(
                err.status,
                {"error": err.message},
                _JSON,
                {"X-Error-Code": str(err.code), "X-Error": err.message},
            )
            reply.headers.update(self._limit_headers(err.limits))
            return reply

    def _fault_reply(self, fault: Fault, request: Request) -> Reply:
        limits = self._limit_headers("all")
        if fault.kind == "answer":
            return json_reply(200, fault.answer, _JSON, limits)
        if fault.kind in ("garbage", "html"):
            body = (
                b"<html><body><h1>Pocket</h1><p>Something went wrong.</p></body></html>"
                if fault.kind == "html"
                else b"\x00\x1fnot json{{"
            )
            kind = "text/html; charset=UTF-8" if fault.kind == "html" else "application/json"
            return Reply(200, body, {"Content-Type": kind, **limits})
        status, code, message = {
            "503": (503, 199, "Pocket's sync server is down for scheduled maintenance."),
            "500": (500, 199, "Internal server error"),
            "400": (400, 130, BAD_REQUEST),
        }[fault.kind]
        headers = {
            "Content-Type": "text/html; charset=UTF-8",
            "X-Error-Code": str(code),
            "X-Error": message,
            **limits,
        }
        page = f"<html><body><h1>{status} {HTTPStatus(status).phrase}</h1></body></html>"
        return Reply(status, page.encode(), headers)

    def _dispatch(
        self, method: str, path: str, params: dict[str, Any], headers: Mapping[str, str]
    ) -> Reply:
        routes = {
            "/v3/get": "retrieve",
            "/v3/stats": "retrieve",
            "/v3/send": "modify",
            "/v3/add": "add",
        }
        oauth = ("/v3/oauth/request", "/v3/oauth/authorize")
        if path == "/auth/authorize":  # the page a user opens in a browser
            return self._approval_page(params)
        if path not in routes and path not in oauth:
            raise ApiError(404, 0, "Not Found", limits="none")
        if method not in ("POST", "GET"):
            raise ApiError(405, 0, "Method Not Allowed", limits="none")
        key = params.get("consumer_key")
        if not key:
            raise ApiError(400, 138, "Missing consumer key.", limits="none")
        if key != self.consumer_key:
            raise ApiError(403, 152, "Invalid consumer key.", limits="none")
        with self._lock:
            if not self._spend("key"):
                raise self._rate_limited("key")
        if path in oauth:
            wants_json = "application/json" in headers.get("x-accept", "")
            handler = self._oauth_request if path == oauth[0] else self._oauth_authorize
            answer = handler(params)
            limits = self._limit_headers("key")  # no user yet
            if wants_json:
                return json_reply(200, answer, _JSON, limits)
            form = {"Content-Type": "application/x-www-form-urlencoded", **limits}
            return Reply(200, urlencode(answer).encode(), form)
        token = params.get("access_token")
        if token != self.access_token:
            message = "Invalid access token." if token else "Missing access token."
            raise ApiError(401, 107, message, limits="key")
        with self._lock:
            if not self._spend("user"):
                raise self._rate_limited("user")
            if routes[path] not in self.permissions:
                raise ApiError(
                    403, 151, "User was authenticated, but access denied due to lack of permission"
                )
            handler = {
                "/v3/get": self._get,
                "/v3/stats": self._stats,
                "/v3/send": self._send,
                "/v3/add": self._add,
            }[path]
            return json_reply(200, handler(params), _JSON, self._limit_headers("all"))

    # -- rate limits ---------------------------------------------------------------
    def _roll_window(self) -> float:
        """Refill the budgets when the reset period is over; seconds left."""
        clock = time.monotonic()
        if clock >= self._window_start + self.reset_seconds:
            self._window_start, self._user_used, self._key_used = clock, 0, 0
        return self._window_start + self.reset_seconds - clock

    def _spend(self, which: str) -> bool:
        self._roll_window()
        if which == "user":
            if self._user_used >= self.user_limit:
                return False
            self._user_used += 1
        else:
            if self._key_used >= self.key_limit:
                return False
            self._key_used += 1
        return True

    def _rate_limited(self, which: str) -> ApiError:
        who = "User" if which == "user" else "Consumer key"
        message = f"{who} was authenticated, but access denied due to rate limiting"
        return ApiError(403, RATE_LIMIT_CODE, message)

    def _limit_headers(self, which: str) -> dict[str, str]:
        if which == "none":
            return {}
        with self._lock:
            reset = str(max(1, math.ceil(self._roll_window())))
            budgets = [("Key", self.key_limit, self._key_used)]
            if which == "all":
                budgets.insert(0, ("User", self.user_limit, self._user_used))
        headers = {}
        for name, limit, used in budgets:
            headers[f"X-Limit-{name}-Limit"] = str(limit)
            headers[f"X-Limit-{name}-Remaining"] = str(max(0, limit - used))
            headers[f"X-Limit-{name}-Reset"] = reset
        return headers

    # -- OAuth -------------------------------------------------------------------------
    def _oauth_request(self, params: Mapping[str, Any]) -> dict[str, str]:
        if not params.get("redirect_uri"):
            raise ApiError(400, 140, "Missing redirect url.", limits="key")
        code = str(uuid.uuid4())
        with self._lock:
            self._oauth_codes[code] = "approved" if self.auto_approve else "pending"
        answer = {"code": code}
        if params.get("state"):
            answer["state"] = str(params["state"])
        return answer

    def _oauth_authorize(self, params: Mapping[str, Any]) -> dict[str, str]:
        code = params.get("code")
        if not code:
            raise ApiError(400, 182, "Missing code.", limits="key")
        with self._lock:
            state = self._oauth_codes.get(str(code))
            if state is None:
                raise ApiError(400, 185, "Code not found.", limits="key")
            if state == "used":
                raise ApiError(403, 159, "Code has already been used.", limits="key")
            if self.reject_authorization or (state == "pending" and not self.auto_approve):
                # the real server said the same before the user approved: 403/158
                raise ApiError(403, 158, "User rejected code.", limits="key")
            self._oauth_codes[str(code)] = "used"
        return {"access_token": self.access_token, "username": self.username}

    def _approval_page(self, params: Mapping[str, Any]) -> Reply:
        """``/auth/authorize``: the user approves the request token, then goes to
        ``redirect_uri`` (the real page asked to log in first; the fake approves)."""
        token = str(params.get("request_token") or "")
        with self._lock:
            known = token in self._oauth_codes
            if known and not self.reject_authorization:
                self.approve(token)
        html = {"Content-Type": "text/html; charset=UTF-8"}
        if not known:
            page = "<html><body><h1>Unknown or missing request_token</h1></body></html>"
            return Reply(400, page.encode(), html)
        if self.reject_authorization:
            page = "<html><body><h1>You did not authorize this application.</h1></body></html>"
            return Reply(403, page.encode(), html)
        redirect = str(params.get("redirect_uri") or "")
        if redirect and not any(c in redirect for c in "\r\n"):
            return Reply(302, b"", {**html, "Location": redirect})
        page = "<html><body><h1>Approved.</h1><p>You can close this page.</p></body></html>"
        return Reply(200, page.encode(), html)
