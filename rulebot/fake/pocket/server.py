"""A fake Pocket v3 server that behaves like the real one, quirks included.

Stdlib only, so tests and users can run it anywhere::

    with FakePocket() as server:
        item_id = server.add_item(url="https://example.com/a", tags=["js"])
        client = PocketClient(server.base_url, server.consumer_key, server.access_token)

    python -m rulebot.fake.pocket --port 8080 --seed-items 200

What it reproduces (``pocket-api.md``, "Real server behaviour" included):
string-typed item fields, ``tags`` absent when untagged, ``list: []`` when
nothing matched, deleted stubs on ``since`` calls; ``/v3/get`` defaults
(``count`` 30, ``state=all``, ``detailType=simple``, ``sort=newest``), its
aliases (``queue``/``read``, JSON booleans, ``contentType=all``,
``since`` in milliseconds) and its 400s (``count=0``, ``count>5000``,
``sort=title|site``); per-action ``false`` with ``action_errors`` while
``status`` stays 1; malformed actions refusing the whole batch with a 400 or
failing alone (``malformed_actions``: the old server vs the later one); an
action's ``time`` stamping the item; ``add``/``readd`` answered in the add
shape; ``X-Error``/``X-Error-Code``/``X-Limit-*`` headers, rate limits with a
real reset; OAuth that needs the user's approval at ``/auth/authorize``, with
form-encoded answers unless ``X-Accept: application/json``; and switchable
faults (503, drops, slow answers, garbage bodies).

The server clock (``server.now``) follows the wall clock until a test sets
it, and changes never move it. A change is stamped with its action's
``time`` (or the clock); a ``since`` cursor still sees every change made
after it was handed out, even within the same second (the fake keeps the
order of changes and cursors), so a sync never misses one.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import math
import os
import random
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

logger = logging.getLogger("rulebot.fake.pocket")

DEFAULT_CONSUMER_KEY = "99999-fakepocket0consumer0key000"
DEFAULT_ACCESS_TOKEN = "fa4e0000-7e57-4000-8000-0000000c0de0"
DEFAULT_USERNAME = "fakeuser"
# the variables rulebot reads: a fake started in the same shell accepts them
CONSUMER_KEY_ENV, ACCESS_TOKEN_ENV = "POCKET_CONSUMER_KEY", "POCKET_ACCESS_TOKEN"
TAG_MAX_LEN = 25  # the later server cut tags to 25 characters
FAULTS = ("503", "500", "drop", "drop_after", "slow", "garbage", "html", "400", "answer", "die")
# pocket-api.md gives no X-Error-Code for rate limiting; Pocket documented one
# meaning for 403 ("denied due to lack of permission or rate limiting"), so
# the fake sends the permission code and only X-Limit-*-Remaining: 0 tells the
# two apart -- the one signal a client can rely on.
RATE_LIMIT_CODE = 151
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
SORTS = ("newest", "oldest", "relevance", "longest", "shortest")  # title/site: 400
DEFAULT_COUNT = 30  # items per /v3/get when `count` is absent
SINCE_COUNT = 5000  # ... unless `since` is given (the later server's exception)
MAX_COUNT = 5000
_SIMPLE_OMITS = ("tags", "authors", "images", "videos", "domain_metadata")
_NOW = "<now>"  # placeholder in _change: the time of the change
_BAD_REQUEST = "Invalid request, please make sure you follow the documentation for proper syntax"


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server saw it (headers keyed in lower case)."""

    method: str
    path: str
    url: str  # the request target: path plus query string, exactly as sent
    headers: dict[str, str]
    body: dict[str, Any]  # parsed JSON or form body; {} when unreadable
    raw_body: bytes


@dataclass
class _Fault:
    kind: str
    remaining: int
    path: str | None
    seconds: float
    retry_after: int | None
    answer: Any


@dataclass
class _Reply:
    status: int
    body: bytes
    headers: dict[str, str]


class _ApiError(Exception):
    """An error answer: HTTP status, X-Error-Code, X-Error; which limits to show."""

    def __init__(self, status: int, code: int, message: str, limits: str = "all") -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.limits = status, code, message, limits


def _bad_request(message: str = _BAD_REQUEST) -> _ApiError:
    return _ApiError(400, 130, message)


class FakePocket:
    """The fake server and its state; start with ``with`` or ``start()``."""

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
        if malformed_actions not in MALFORMED_MODES:
            choices = ", ".join(MALFORMED_MODES)
            raise ValueError(f"malformed_actions={malformed_actions!r}; choose from {choices}")
        self.host, self.port = host, port
        self.consumer_key, self.access_token, self.username = consumer_key, access_token, username
        self.permissions = {"retrieve", "modify", "add"}  # drop "modify" to get 403/151 on send
        self.user_limit, self.key_limit, self.reset_seconds = user_limit, key_limit, reset_seconds
        self.max_page = max_page  # answer at most this many items per /v3/get
        self.over_page = over_page  # answer this many more than `count` asked for
        self.fail_actions: dict[str, tuple[int, str]] = {}  # item_id or url -> (code, message)
        self.malformed_actions = malformed_actions  # FAIL_ALONE or REFUSE_BATCH
        self.reject_authorization = False  # OAuth: the user said no (403/158)
        self.auto_approve = auto_approve  # OAuth: codes count as approved without /auth/authorize
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._items: dict[str, dict[str, Any]] = {}
        self._next_id = 1_000_000_001
        self._now = int(time.time()) if now is None else now
        self._clock_frozen = now is not None
        self._requests: list[RecordedRequest] = []
        self._faults: list[_Fault] = []
        self._oauth_codes: dict[str, str] = {}  # request token -> pending/approved/used
        self._applied: list[dict[str, Any]] = []  # every action that ran and succeeded
        self._seq = 0  # order of changes and cursors (the clock has whole seconds only)
        self._changed_at: dict[str, int] = {}  # item_id -> _seq of its last change
        self._cursor_seq: dict[int, int] = {}  # since value -> _seq when last handed out
        self._window_start = time.monotonic()
        self._user_used = 0
        self._key_used = 0
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------
    def start(self) -> FakePocket:
        httpd = _Server((self.host, self.port), _Handler)
        httpd.fake = self
        self.port = httpd.server_address[1]
        self._httpd = httpd
        self._stopping.clear()
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop like a server that died: new connections are refused, and a
        request on a connection still open is dropped unanswered, undone."""
        self._stopping.set()  # cuts "slow" faults short
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakePocket:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # -- clock -----------------------------------------------------------------
    @property
    def now(self) -> int:
        with self._lock:
            if not self._clock_frozen:
                self._now = max(self._now, int(time.time()))
            return self._now

    @now.setter
    def now(self, value: int) -> None:
        with self._lock:
            self._now, self._clock_frozen = int(value), True

    def _mark_changed(self, item: dict[str, Any]) -> None:
        """Note the order of a change, so a cursor of the same second still sees it."""
        self._seq += 1
        self._changed_at[item["item_id"]] = self._seq

    def _changed_since(self, item: Mapping[str, Any], since: int) -> bool:
        stamp = int(item["time_updated"])
        if stamp != since:
            return stamp > since
        # Same second as the cursor: changed after the cursor was handed out?
        # (Its latest handout: exact for one syncing client, which is what
        # keeps an idle sync at one request even within the same second.)
        handed_out = self._cursor_seq.get(since)
        return handed_out is not None and self._changed_at.get(item["item_id"], 0) > handed_out

    def _hand_out_cursor(self) -> int:
        since = self.now
        self._seq += 1
        self._cursor_seq[since] = self._seq
        return since

    # -- test helpers --------------------------------------------------------------
    def add_item(
        self,
        url: str | None = None,
        title: str = "",
        tags: Iterable[str] = (),
        *,
        status: int = 0,
        favorite: bool = False,
        time_added: int | None = None,
        time_updated: int | None = None,
        time_read: int | None = None,
        time_favorited: int | None = None,
        word_count: int = 0,
        time_to_read: int | None = None,
        lang: str = "en",
        excerpt: str = "",
        is_article: bool = True,
        has_image: int = 0,
        has_video: int = 0,
        resolved_url: str | None = None,
        resolved_title: str | None = None,
        item_id: str | None = None,
    ) -> str:
        """Put an item straight into the library; tags are stored as given."""
        with self._lock:
            stamp = self.now
            item_id = item_id or self._new_id()
            url = url or f"https://example.com/articles/{item_id}"
            added = stamp if time_added is None else time_added
            item = _new_item(item_id, url, title, added)
            item.update(
                resolved_url=resolved_url if resolved_url is not None else url,
                resolved_title=resolved_title if resolved_title is not None else title,
                status=str(status),
                favorite="1" if favorite else "0",
                time_updated=str(time_updated if time_updated is not None else stamp),
                time_read=str(time_read or (stamp if status == 1 else 0)),
                time_favorited=str(time_favorited or (stamp if favorite else 0)),
                word_count=str(word_count),
                lang=lang,
                excerpt=excerpt,
                is_article="1" if is_article else "0",
                has_image=str(has_image),
                has_video=str(has_video),
            )
            if time_to_read is not None:
                item["time_to_read"] = time_to_read
            _set_tags(item, list(tags))
            self._items[item_id] = item
            self._mark_changed(item)
            return item_id

    @property
    def items(self) -> dict[str, dict[str, Any]]:
        """A copy of every item, deleted ones included (status "2")."""
        with self._lock:
            return copy.deepcopy(self._items)

    def item(self, item_id: str) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self._items[str(item_id)])

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def applied(self) -> list[dict[str, Any]]:
        """Every ``/v3/send`` action that ran and succeeded, in order, as sent
        (a refused batch adds nothing): "landed exactly once" is checkable."""
        with self._lock:
            return copy.deepcopy(self._applied)

    def approve(self, request_token: str) -> None:
        """The user approves an OAuth request token (as ``/auth/authorize`` does)."""
        with self._lock:
            if self._oauth_codes.get(request_token) == "pending":
                self._oauth_codes[request_token] = "approved"

    def calls(self, path: str | None = None) -> int:
        """How many requests reached the server (for ``path`` only, if given)."""
        return sum(1 for r in self.requests if path is None or r.path == path)

    def inject(
        self,
        fault: str,
        count: int = 1,
        path: str | None = None,
        *,
        seconds: float = 2.0,
        retry_after: int | None = None,
        answer: Any = None,
    ) -> None:
        """Queue a fault for the next ``count`` requests (to ``path`` only, if given).

        "503" maintenance (X-Error-Code 199, ``Retry-After: retry_after`` if
        set), "500", "400", "drop" (close without answering), "drop_after"
        (do the work, then close without answering), "slow" (wait
        ``seconds``, then answer normally), "garbage" / "html" (200 with a
        body that is not JSON), "answer" (200 with ``answer`` as JSON: a
        wrong-shaped reply), "die" (``stop`` the server instead of answering,
        the work undone).
        """
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; choose from {', '.join(FAULTS)}")
        with self._lock:
            self._faults.append(_Fault(fault, count, path, seconds, retry_after, answer))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def reset_rate_limits(self) -> None:
        with self._lock:
            self._window_start, self._user_used, self._key_used = time.monotonic(), 0, 0

    # -- request handling ------------------------------------------------------------
    def _handle(
        self, method: str, target: str, headers: Mapping[str, str], raw_body: bytes
    ) -> _Reply | None:
        """Answer one request; None means: close the connection without answering."""
        if self._stopping.is_set():
            return None  # stopped: a dead server answers nothing and does nothing
        path = urlsplit(target).path
        headers = {k.lower(): v for k, v in headers.items()}
        body, body_ok = _parse_body(headers.get("content-type", ""), raw_body)
        with self._lock:
            self._requests.append(RecordedRequest(method, path, target, headers, body, raw_body))
            fault = self._take_fault(path)
        if fault is not None:
            if fault.kind == "die":
                self.stop()
            if fault.kind in ("drop", "die"):
                return None
            if fault.kind == "slow":
                self._stopping.wait(fault.seconds)
            elif fault.kind != "drop_after":
                return self._fault_reply(fault)
        params = {**dict(parse_qsl(urlsplit(target).query)), **body}
        try:
            if not body_ok:
                raise _bad_request()
            reply = self._dispatch(method, path, params, headers)
        except _ApiError as err:
            reply = _Reply(
                err.status,
                json.dumps({"error": err.message}).encode(),
                {
                    "Content-Type": "application/json; charset=UTF-8",
                    "X-Error-Code": str(err.code),
                    "X-Error": err.message,
                },
            )
            reply.headers.update(self._limit_headers(err.limits))
        if fault is not None and fault.kind == "drop_after":
            return None
        return reply

    def _take_fault(self, path: str) -> _Fault | None:
        for fault in self._faults:
            if fault.path is None or fault.path == path:
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    def _fault_reply(self, fault: _Fault) -> _Reply:
        limits = self._limit_headers("all")
        if fault.kind == "answer":
            return _json_reply(fault.answer, limits)
        if fault.kind in ("garbage", "html"):
            body = (
                b"<html><body><h1>Pocket</h1><p>Something went wrong.</p></body></html>"
                if fault.kind == "html"
                else b"\x00\x1fnot json{{"
            )
            kind = "text/html; charset=UTF-8" if fault.kind == "html" else "application/json"
            return _Reply(200, body, {"Content-Type": kind, **limits})
        status, code, message = {
            "503": (503, 199, "Pocket's sync server is down for scheduled maintenance."),
            "500": (500, 199, "Internal server error"),
            "400": (400, 130, _BAD_REQUEST),
        }[fault.kind]
        headers = {
            "Content-Type": "text/html; charset=UTF-8",
            "X-Error-Code": str(code),
            "X-Error": message,
            **limits,
        }
        if fault.retry_after is not None:
            headers["Retry-After"] = str(fault.retry_after)
        page = f"<html><body><h1>{status} {HTTPStatus(status).phrase}</h1></body></html>"
        return _Reply(status, page.encode(), headers)

    def _dispatch(
        self, method: str, path: str, params: dict[str, Any], headers: Mapping[str, str]
    ) -> _Reply:
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
            raise _ApiError(404, 0, "Not Found", limits="none")
        if method not in ("POST", "GET"):
            raise _ApiError(405, 0, "Method Not Allowed", limits="none")
        key = params.get("consumer_key")
        if not key:
            raise _ApiError(400, 138, "Missing consumer key.", limits="none")
        if key != self.consumer_key:
            raise _ApiError(403, 152, "Invalid consumer key.", limits="none")
        with self._lock:
            if not self._spend("key"):
                raise self._rate_limited("key")
        if path in oauth:
            wants_json = "application/json" in headers.get("x-accept", "")
            handler = self._oauth_request if path == oauth[0] else self._oauth_authorize
            answer = handler(params)
            limits = self._limit_headers("key")  # no user yet
            if wants_json:
                return _json_reply(answer, limits)
            form = {"Content-Type": "application/x-www-form-urlencoded", **limits}
            return _Reply(200, urlencode(answer).encode(), form)
        token = params.get("access_token")
        if token != self.access_token:
            message = "Invalid access token." if token else "Missing access token."
            raise _ApiError(401, 107, message, limits="key")
        with self._lock:
            if not self._spend("user"):
                raise self._rate_limited("user")
            if routes[path] not in self.permissions:
                raise _ApiError(
                    403, 151, "User was authenticated, but access denied due to lack of permission"
                )
            handler = {
                "/v3/get": self._get,
                "/v3/stats": self._stats,
                "/v3/send": self._send,
                "/v3/add": self._add,
            }[path]
            return _json_reply(handler(params), self._limit_headers("all"))

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

    def _rate_limited(self, which: str) -> _ApiError:
        who = "User" if which == "user" else "Consumer key"
        message = f"{who} was authenticated, but access denied due to rate limiting"
        return _ApiError(403, RATE_LIMIT_CODE, message)

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

    # -- /v3/get ---------------------------------------------------------------------
    def _get(self, params: Mapping[str, Any]) -> dict[str, Any]:
        query = _GetQuery.parse(params)
        matches = query.matcher()
        with self._lock:
            since = query.since
            chosen = [
                item
                for item in self._items.values()
                if (since is None or self._changed_since(item, since))
                and (matches(item) or (since is not None and item["status"] == "2"))
            ]
            cursor = self._hand_out_cursor()
        chosen.sort(key=lambda i: (int(i["time_added"]), int(i["item_id"])))
        if query.sort != "oldest":  # newest; relevance and longest/shortest fall back to it
            chosen.reverse()
        limit = query.count + self.over_page
        if self.max_page is not None:
            limit = min(limit, self.max_page)
        page = chosen[query.offset : query.offset + limit]
        listing: dict[str, Any] = {}
        for position, item in enumerate(page):
            if item["status"] == "2":
                listing[item["item_id"]] = {"item_id": item["item_id"], "status": "2"}
            else:
                listing[item["item_id"]] = _render(item, query.detail, position)
        answer: dict[str, Any] = {
            "status": 1 if listing else 2,
            "complete": 1,
            "list": listing or [],  # the real server's quirk: [] when empty
            "error": None,
            "search_meta": {"search_type": "normal"},
            "since": cursor,
            "maxActions": 30,
            "cachetype": "db",
        }
        if query.total:
            answer["total"] = str(len(chosen))
        return answer

    def _stats(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Undocumented but real (pocket-to-sqlite sizes its progress bar with it)."""
        statuses = [item["status"] for item in self._items.values()]
        unread, read = statuses.count("0"), statuses.count("1")
        return {"count_list": unread + read, "count_unread": unread, "count_read": read}

    # -- /v3/send --------------------------------------------------------------------
    def _send(self, params: Mapping[str, Any]) -> dict[str, Any]:
        actions = params.get("actions")
        if isinstance(actions, str):  # form-encoded or the old query-string style
            try:
                actions = json.loads(actions)
            except ValueError:
                raise _bad_request("actions is not a JSON array") from None
        if not isinstance(actions, list):
            raise _bad_request("actions must be a JSON array")
        if not actions:
            raise _bad_request("actions is empty")
        mode = self.malformed_actions
        checked = [_check_action(action, index, mode) for index, action in enumerate(actions)]
        results: list[Any] = []
        errors: list[Any] = []
        for action in checked:  # in order, no rollback
            try:
                if isinstance(action, _ActionFailed):  # malformed, failing alone
                    raise action
                results.append(self._run_action(action))
                errors.append(None)
                self._applied.append(action["sent"])
            except _ActionFailed as failed:
                results.append(False)
                errors.append(failed.payload)
        return {"status": 1, "action_results": results, "action_errors": errors}

    def _run_action(self, action: dict[str, Any]) -> Any:
        name = action["action"]
        when = self.now if action["time"] is None else action["time"]
        target = action.get("item_id") or action.get("url")
        if target in self.fail_actions:
            raise _ActionFailed(*self.fail_actions[target])
        if name == "add":
            return self._save(action, when)
        if name == "tag_rename":
            return self._rename_tag(action["old_tag"], action["new_tag"], when)
        if name == "tag_delete":
            return self._rename_tag(action["tag"], None, when)
        item = self._items.get(action["item_id"])
        if item is not None and item["status"] == "2" and name == "delete":
            return True  # deleting twice is a no-op, so a re-sent batch still succeeds
        if item is None or item["status"] == "2":
            raise _ActionFailed(422, "Invalid/non-existent item")
        tags = list(item.get("tags", {}))
        if name == "archive":
            self._change(item, when, status="1", time_read=_NOW)
        elif name == "readd":
            self._change(item, when, status="0", time_read="0")
            return _add_shape(item)  # the later server answered readd like add
        elif name == "favorite":
            self._change(item, when, favorite="1", time_favorited=_NOW)
        elif name == "unfavorite":
            self._change(item, when, favorite="0", time_favorited="0")
        elif name == "delete":
            self._change(item, when, status="2")
        elif name == "tags_add":
            self._retag(item, tags + [t for t in action["tags"] if t not in tags], when)
        elif name == "tags_remove":
            self._retag(item, [t for t in tags if t.lower() not in action["tags"]], when)
        elif name == "tags_replace":
            self._retag(item, action["tags"], when)
        elif name == "tags_clear":
            self._retag(item, [], when)
        return True

    def _change(self, item: dict[str, Any], when: int, **fields: str) -> None:
        """Set fields (``_NOW`` = the change's time, ``when``); a no-op stamps nothing."""
        if all(item.get(k) == v for k, v in fields.items() if v != _NOW):
            return
        for key, value in fields.items():
            item[key] = str(when) if value == _NOW else value
        item["time_updated"] = str(when)
        self._mark_changed(item)

    def _retag(self, item: dict[str, Any], tags: list[str], when: int) -> None:
        if list(item.get("tags", {})) == tags:
            return
        _set_tags(item, tags)
        item["time_updated"] = str(when)
        self._mark_changed(item)

    def _rename_tag(self, old: str, new: str | None, when: int) -> bool:
        for item in self._items.values():
            tags = list(item.get("tags", {}))
            if item["status"] != "2" and old in _lower_keys(item.get("tags", {})):
                kept = [t for t in tags if t.lower() != old]
                if new is not None and new not in kept:
                    kept.append(new)
                self._retag(item, kept, when)
        return True

    def _save(self, action: Mapping[str, Any], when: int) -> dict[str, Any]:
        """``add``: save a URL (or, old server, an existing item_id); never a duplicate."""
        if action.get("url"):
            existing = self._find_url(action["url"])
        else:
            existing = self._items.get(action["item_id"])
            if existing is None:
                raise _ActionFailed(422, "Invalid/non-existent item")
        if existing is not None:
            if existing["status"] == "2":  # saving a deleted URL again revives it
                self._change(existing, when, status="0", time_read="0", time_added=_NOW)
            tags = list(existing.get("tags", {}))
            self._retag(existing, tags + [t for t in action.get("tags", []) if t not in tags], when)
            return _add_shape(existing)
        item = _new_item(self._new_id(), action["url"], action.get("title") or "", when)
        _set_tags(item, action.get("tags", []))
        self._items[item["item_id"]] = item
        self._mark_changed(item)
        return _add_shape(item)

    def _find_url(self, url: str) -> dict[str, Any] | None:
        for item in self._items.values():
            if url in (item["given_url"], item["resolved_url"]):
                return item
        return None

    def _new_id(self) -> str:
        while str(self._next_id) in self._items:
            self._next_id += 1
        self._next_id += 1
        return str(self._next_id - 1)

    # -- /v3/add ---------------------------------------------------------------------
    def _add(self, params: Mapping[str, Any]) -> dict[str, Any]:
        url = params.get("url")
        if not isinstance(url, str) or not _valid_url(url):
            raise _bad_request("url is missing or not a valid http(s) URL")
        tags = _parse_tags(params["tags"], "tags") if params.get("tags") else []
        title = params.get("title") if isinstance(params.get("title"), str) else ""
        action = {"action": "add", "url": url, "title": title, "tags": tags}
        return {"item": self._save(action, self.now), "status": 1}

    # -- OAuth -------------------------------------------------------------------------
    def _oauth_request(self, params: Mapping[str, Any]) -> dict[str, str]:
        if not params.get("redirect_uri"):
            raise _ApiError(400, 140, "Missing redirect url.", limits="key")
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
            raise _ApiError(400, 182, "Missing code.", limits="key")
        with self._lock:
            state = self._oauth_codes.get(str(code))
            if state is None:
                raise _ApiError(400, 185, "Code not found.", limits="key")
            if state == "used":
                raise _ApiError(403, 159, "Code has already been used.", limits="key")
            if self.reject_authorization or (state == "pending" and not self.auto_approve):
                # the real server said the same before the user approved: 403/158
                raise _ApiError(403, 158, "User rejected code.", limits="key")
            self._oauth_codes[str(code)] = "used"
        return {"access_token": self.access_token, "username": self.username}

    def _approval_page(self, params: Mapping[str, Any]) -> _Reply:
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
            return _Reply(400, page.encode(), html)
        if self.reject_authorization:
            page = "<html><body><h1>You did not authorize this application.</h1></body></html>"
            return _Reply(403, page.encode(), html)
        redirect = str(params.get("redirect_uri") or "")
        if redirect and not any(c in redirect for c in "\r\n"):
            return _Reply(302, b"", {**html, "Location": redirect})
        page = "<html><body><h1>Approved.</h1><p>You can close this page.</p></body></html>"
        return _Reply(200, page.encode(), html)


class _ActionFailed(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        try:
            kind = HTTPStatus(code).phrase
        except ValueError:
            kind = "Error"
        self.payload = {"message": message, "type": kind, "code": code}


# -- the HTTP plumbing -------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakePocket

    def handle_error(self, request: Any, client_address: Any) -> None:
        logger.debug("fake pocket: connection error", exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like the real server behind its proxy
    # Headers and body go out in two writes; with Nagle on, the body waits for
    # the client's delayed ACK of the headers: ~40 ms added to every answer.
    disable_nagle_algorithm = True
    server: _Server

    def do_POST(self) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
            raw_body = self.rfile.read(length) if length > 0 else b""
            headers = dict(self.headers.items())
            reply = self.server.fake._handle(self.command, self.path, headers, raw_body)
            if reply is None:
                self.close_connection = True
                return
            self.send_response(reply.status)
            self.send_header("X-Source", "Pocket")
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)
        except OSError:  # the client gave up (timeout) before we answered
            self.close_connection = True

    do_GET = do_POST
    do_PUT = do_POST
    do_DELETE = do_POST

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("fake pocket: " + format, *args)


# -- helpers -------------------------------------------------------------------------------


def _json_reply(answer: Any, headers: Mapping[str, str]) -> _Reply:
    content = {"Content-Type": "application/json; charset=UTF-8", **headers}
    return _Reply(200, json.dumps(answer).encode(), content)


def _parse_body(content_type: str, raw_body: bytes) -> tuple[dict[str, Any], bool]:
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
class _GetQuery:
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
    def parse(cls, params: Mapping[str, Any]) -> _GetQuery:
        since = _number(params, "since")
        if since is not None and len(str(since)) >= 13:  # milliseconds: the later server converted
            since = round(since / 1000)
        count = _number(params, "count")
        if count is None:
            count = DEFAULT_COUNT if since is None else SINCE_COUNT
        elif not 1 <= count <= MAX_COUNT:
            raise _bad_request(f"count must be between 1 and {MAX_COUNT}")
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
                and (not tag or (not tags if tag == "_untagged_" else tag in _lower_keys(tags)))
                and (content != "article" or item["is_article"] == "1")
                and (content != "video" or item["has_video"] != "0")
                and (content != "image" or item["has_image"] == "2")
                and (not self.search or self.search in _haystack(item))
            )

        return matches


def _haystack(item: Mapping[str, Any]) -> str:
    return f"{_title(item)} {item['given_url']}".lower()


def _choice(params: Mapping[str, Any], name: str, allowed: tuple[str, ...], default: str) -> str:
    """A keyword parameter, case-insensitive; absent or empty means ``default``."""
    raw = params.get(name)
    value = default if raw is None or raw == "" else str(raw).strip().lower()
    if value not in allowed:
        raise _bad_request(f"{name}={raw!r} is not supported")
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
    raise _bad_request(f"{name}={raw!r} is not 0, 1, true or false")


def _number(params: Mapping[str, Any], name: str) -> int | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    text = str(value).strip()
    if not text.isdigit():
        raise _bad_request(f"{name} must be a whole number")
    return int(text)


def _valid_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname) and " " not in url


def _normalise_tag(tag: str) -> str:
    return tag.strip().lower()[:TAG_MAX_LEN].strip()


def _parse_tags(value: Any, where: str) -> list[str]:
    """A comma-separated string (or a list) of tags; an empty name is a 400."""
    if isinstance(value, str):
        raw = value.split(",")
    elif isinstance(value, list) and all(isinstance(t, str) for t in value):
        raw = value
    else:
        raise _bad_request(f"{where}: tags must be a comma-separated string")
    tags: list[str] = []
    for tag in map(_normalise_tag, raw):
        if not tag:  # "a,", "a,,b", " , " -- the later server: 400
            raise _bad_request(f"{where}: tags {value!r} has an empty tag name")
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
    raise _bad_request(f"{where}: time {value!r} is not unix seconds")


def _check_action(action: Any, index: int, mode: str) -> dict[str, Any] | _ActionFailed:
    """Validate one action. A malformed action raises a 400 for the whole
    request; in ``FAIL_ALONE`` mode (the later server) an unknown action, an
    item action given a url instead of an item_id, or an ``add`` with only an
    item_id is returned as a failure of its own instead."""
    where = f"action {index}"

    def bad(why: str) -> _ApiError:
        return _bad_request(f"{where}: {why}")

    def alone_or_bad(why: str) -> _ActionFailed:
        if mode == REFUSE_BATCH:
            raise bad(why)
        return _ActionFailed(400, f"{where}: {why}")

    if not isinstance(action, dict):
        raise bad("not an object")
    name = action.get("action")
    checked: dict[str, Any] = {"action": name, "sent": copy.deepcopy(action)}
    checked["time"] = _action_time(action.get("time"), where)
    if name not in SEND_ACTIONS:
        return alone_or_bad(f"unknown action {name!r}")
    url = action.get("url")
    if url is not None and (not isinstance(url, str) or not _valid_url(url)):
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
        checked["tags"] = _parse_tags(action["tags"], where) if action.get("tags") else []
        if needs_id and mode == FAIL_ALONE:  # the old server saved that item again
            return _ActionFailed(400, f"{where}: add needs a url")
    if name in ("tags_add", "tags_remove", "tags_replace"):
        tags = action.get("tags")
        if name == "tags_replace" and mode == FAIL_ALONE and tags in (None, "", []):
            checked["tags"] = []  # the later server: replace with nothing = tags_clear
        elif tags is None:
            raise bad("tags is missing")
        else:
            checked["tags"] = _parse_tags(tags, where)
    for key in {"tag_rename": ("old_tag", "new_tag"), "tag_delete": ("tag",)}.get(name, ()):
        value = action.get(key)
        checked[key] = _normalise_tag(value) if isinstance(value, str) else ""
        if not checked[key]:
            raise bad(f"{key} is missing")
    return checked


def _add_shape(item: Mapping[str, Any]) -> dict[str, Any]:
    """What ``add`` (and the later server's ``readd``) answered: the add shape,
    not a ``/v3/get`` item (no tags, status or times; ``title`` and URL forms)."""
    added = int(item["time_added"])
    return {
        "item_id": item["item_id"],
        "normal_url": item["given_url"],
        "resolved_id": item["resolved_id"],
        "resolved_url": item["resolved_url"],
        "domain_id": "0",
        "origin_domain_id": "0",
        "response_code": "200",
        "mime_type": "text/html",
        "content_length": "0",
        "encoding": "utf-8",
        "date_resolved": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(added)),
        "date_published": "0000-00-00 00:00:00",
        "title": _title(item),
        "excerpt": item.get("excerpt", ""),
        "word_count": item.get("word_count", "0"),
        "innerdomain_redirect": "0",
        "login_required": "0",
        "has_image": item.get("has_image", "0"),
        "has_video": item.get("has_video", "0"),
        "is_index": item.get("is_index", "0"),
        "is_article": item.get("is_article", "1"),
        "used_fallback": "0",
        "lang": item.get("lang", ""),
        "time_first_parsed": str(added),
        "authors": [],
        "images": [],
        "videos": [],
        "resolved_normal_url": item["resolved_url"],
        "given_url": item["given_url"],
    }


def _new_item(item_id: str, url: str, title: str, added: int) -> dict[str, Any]:
    return {
        "item_id": item_id,
        "resolved_id": item_id,
        "given_url": url,
        "given_title": title,
        "favorite": "0",
        "status": "0",
        "time_added": str(added),
        "time_updated": str(added),
        "time_read": "0",
        "time_favorited": "0",
        "sort_id": 0,
        "resolved_title": title,
        "resolved_url": url,
        "excerpt": "",
        "is_article": "1",
        "is_index": "0",
        "has_video": "0",
        "has_image": "0",
        "word_count": "0",
        "lang": "en",
        "listen_duration_estimate": 0,
    }


def _set_tags(item: dict[str, Any], tags: list[str]) -> None:
    """Pocket's tag shape; the key is absent when there are none."""
    if tags:
        item["tags"] = {t: {"item_id": item["item_id"], "tag": t} for t in tags}
    else:
        item.pop("tags", None)


def _lower_keys(tags: Mapping[str, Any]) -> set[str]:
    return {t.lower() for t in tags}


def _title(item: Mapping[str, Any]) -> str:
    return str(item.get("resolved_title") or item.get("given_title") or "")


def _render(item: Mapping[str, Any], detail: str, position: int) -> dict[str, Any]:
    rendered = copy.deepcopy(dict(item))
    rendered["sort_id"] = position
    if detail == "simple":
        for key in _SIMPLE_OMITS:
            rendered.pop(key, None)
    return rendered


# -- command line ------------------------------------------------------------------------


def seed(server: FakePocket, count: int, *, rng: random.Random | None = None) -> None:
    """Fill ``server`` with ``count`` varied, reproducible items."""
    rng = rng or random.Random(20250708)
    sites = ["example.com", "blog.example.org", "news.example.net", "www.video.example"]
    tags = ["read-later", "js", "python", "news", "recipes", "work", "long-read"]
    start = server.now - 400 * 86400
    for number in range(count):
        site = rng.choice(sites)
        added = start + rng.randrange(400 * 86400)
        status = rng.choice((0, 0, 0, 1))
        server.add_item(
            url=f"https://{site}/post/{number}",
            title=f"Post {number} on {site}",
            tags=rng.sample(tags, rng.choice((0, 0, 1, 2))),
            status=status,
            favorite=rng.random() < 0.1,
            time_added=added,
            time_read=added + 3600 if status == 1 else None,
            word_count=rng.randrange(100, 5000),
            time_to_read=rng.randrange(1, 25),
            has_video=2 if "video" in site else 0,
            is_article="video" not in site,
        )


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be 1 or more")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m rulebot.fake.pocket",
        description="Run a fake Pocket v3 server that behaves like the real one.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080, help="0 picks a free port")
    parser.add_argument("--seed-items", type=int, default=0, metavar="N")
    parser.add_argument(
        "--consumer-key",
        default=os.environ.get(CONSUMER_KEY_ENV) or DEFAULT_CONSUMER_KEY,
        help=f"the consumer key to accept (default: ${CONSUMER_KEY_ENV}, else a test key)",
    )
    parser.add_argument(
        "--access-token",
        default=os.environ.get(ACCESS_TOKEN_ENV) or DEFAULT_ACCESS_TOKEN,
        help=f"the access token to accept and grant (default: ${ACCESS_TOKEN_ENV}, else a test token)",
    )
    parser.add_argument("--username", default=DEFAULT_USERNAME, help="the user OAuth names")
    parser.add_argument(
        "--malformed-actions",
        choices=MALFORMED_MODES,
        default=FAIL_ALONE,
        help="a malformed /v3/send action fails alone (the later server, default) "
        "or refuses the whole batch with 400 (the old server)",
    )
    parser.add_argument(
        "--auto-approve",
        action="store_true",
        help="OAuth request tokens need no visit to /auth/authorize",
    )
    parser.add_argument("--max-page", type=_positive, default=None, help="answer at most N per get")
    parser.add_argument("--user-limit", type=int, default=320, help="calls per reset period")
    parser.add_argument("--key-limit", type=int, default=10_000, help="calls per reset period")
    parser.add_argument("--reset-seconds", type=float, default=3600.0)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    server = FakePocket(
        host=args.host,
        port=args.port,
        consumer_key=args.consumer_key,
        access_token=args.access_token,
        username=args.username,
        max_page=args.max_page,
        user_limit=args.user_limit,
        key_limit=args.key_limit,
        reset_seconds=args.reset_seconds,
        malformed_actions=args.malformed_actions,
        auto_approve=args.auto_approve,
    )
    seed(server, args.seed_items)
    try:
        server.start()
    except OSError as err:
        where = f"{args.host}:{args.port}"
        print(f"python -m rulebot.fake.pocket: cannot listen on {where}: {err.strerror or err}")
        return 1
    print(f"fake Pocket server at {server.base_url} with {args.seed_items} items", flush=True)
    # Only the built-in test credentials are shown: ones you passed stay off the terminal.
    for env, value, default in (
        (CONSUMER_KEY_ENV, server.consumer_key, DEFAULT_CONSUMER_KEY),
        (ACCESS_TOKEN_ENV, server.access_token, DEFAULT_ACCESS_TOKEN),
    ):
        shown = value if value == default else "<the value you gave>"
        print(f"  export {env}={shown}", flush=True)
    approve = "approved automatically" if args.auto_approve else f"{server.base_url}/auth/authorize"
    print(f"  (OAuth: {approve}; malformed actions {args.malformed_actions}; Ctrl-C stops)")
    sys.stdout.flush()
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
