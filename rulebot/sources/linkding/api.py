"""The Linkding REST API client, and how a bookmark becomes an ``Item``.

Facts from ``specs/linkding.md`` (each checked against a real linkding
1.44.1) that shape it:

- the API lives under ``/api/`` of the instance root and every path ends in
  ``/``: without it Django answers 301, and a redirected POST would turn into
  a GET; rulebot never follows a redirect and says which address to fix;
- the token travels only in ``Authorization: Token`` (never in a URL or a log
  line); a 401 is a credentials error naming ``LINKDING_TOKEN``, never
  retried. The ``detail`` texts are translated (``Accept-Language``): rulebot
  branches on status codes only, and asks for English texts for its messages;
- there is no list of every bookmark: ``/api/bookmarks/`` holds the ones not
  archived and ``/api/bookmarks/archived/`` the archived ones, each paged by
  ``limit``/``offset`` (no maximum) with a ``count``; paging by offset
  shifts when bookmarks come or go meanwhile, so lists go oldest first
  (``sort=added_asc``: new ones land at the end) and a listing whose
  ``count`` changed on the way is read again (``list_bookmarks``);
- ``modified_since`` is strict ``>`` at microseconds, and an unparsable value
  is silently ignored (everything comes back): rulebot sends UTC with ``Z``,
  never a ``+`` that a query string turns into a space;
- ``tag_names`` replaces a bookmark's whole tag set: every tag change is a
  read-modify-write of one bookmark (``get_bookmark`` then ``update_bookmark``);
- ``POST /api/bookmarks/`` of a URL saved already (compared as
  ``normalized_url`` compares) answers 201 too, after overwriting that
  bookmark's title, description, notes, flags and tags with what was sent:
  ``create_bookmark`` asks ``check`` first, and again before sending a create
  whose answer was lost, so it never overwrites a bookmark it did not make;
- no rate limiting (a 429 from a proxy in front is still waited out by
  ``rulebot.http``); an unhandled error is an HTML 500 page, retried.

One ``LinkdingClient`` may be shared by worker threads: each thread gets its
own connection.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from rulebot import __version__
from rulebot.errors import CredentialsError, RulebotError
from rulebot.http import HttpClient, MaybeSentError, RateBudget, Response, describe
from rulebot.library.item import MAX_INT
from rulebot.sources.linkding.items import is_id, show
from rulebot.sources.paging import Bounds, Listing

logger = logging.getLogger("rulebot.linkding")

TOKEN_ENV = "LINKDING_TOKEN"
API_PATH = "/api"
MAX_PAGE_SIZE = 500  # Linkding has no maximum; a page of 500 is ~250 KB of JSON
TOKEN_HELP = "Linkding shows it under Settings > Integrations > REST API"
RELISTS = 2  # a listing whose count changed on the way is read again at most this often


class LinkdingError(RulebotError):
    """Linkding failed, or answered something rulebot cannot use."""

    def __init__(self, message: str, *, status: int | None = None, detail: str = "") -> None:
        super().__init__(message)
        self.status, self.detail = status, detail


class LinkdingAuthError(LinkdingError, CredentialsError):
    """401: the token is missing, wrong or its user inactive (or 403: refused)."""


class NotFound(LinkdingError):
    """404 ``No Bookmark matches the given query.``: the bookmark is gone (moot)."""


@dataclass(frozen=True)
class Listed:
    """One listing read to its end: the bookmarks, their ``count``, and the
    server's clock (its ``Date``, unix seconds) when the first page answered."""

    bookmarks: list[dict[str, Any]]
    count: int
    server_time: int | None


@dataclass(frozen=True)
class Created:
    """What ``create_bookmark`` did: the bookmark it made, or the one that was
    there already (then nothing was sent: a create would have overwritten it)."""

    bookmark: dict[str, Any]
    existed: bool


class LinkdingClient:
    """One Linkding instance. ``base_url`` is the instance root (``/api`` is appended)."""

    def __init__(
        self,
        base_url: str,
        token: str | None,
        *,
        page_size: int = MAX_PAGE_SIZE,
        timeout: float = 30.0,
        max_retries: int = 5,
        backoff_base: float = 0.5,
        max_wait: float = 900.0,
        token_env: str = TOKEN_ENV,
        on_wait: Callable[[str], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not token:
            raise LinkdingAuthError(
                f"Linkding needs its REST API token in the environment variable {token_env}; "
                f"{TOKEN_HELP}"
            )
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise LinkdingError(
                f"linkding page_size is {page_size}; rulebot asks Linkding for 1 to "
                f"{MAX_PAGE_SIZE} bookmarks per page"
            )
        self.base_url = _instance_root(base_url)
        self.page_size = page_size
        self.token_env = token_env
        self._token = token.strip()
        self._settings: dict[str, Any] = {
            "timeout": timeout,
            "max_retries": max_retries,
            "backoff_base": backoff_base,
            "max_wait": max_wait,
            "on_wait": on_wait,
            "rate_budget": RateBudget(),  # one for every thread: spent once, spent for all
            "sleep": sleep,
        }
        self._local = threading.local()
        self._clients: list[HttpClient] = []
        self._clients_lock = threading.Lock()
        self.origin = self._http().origin  # checks the URL now, not at the first request

    def __repr__(self) -> str:  # never the token
        return f"LinkdingClient({self.base_url!r})"

    def __enter__(self) -> LinkdingClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with self._clients_lock:
            for client in self._clients:
                client.close()
            self._clients.clear()

    @property
    def requests_made(self) -> int:
        """HTTP attempts so far, retries included, over every thread."""
        with self._clients_lock:
            return sum(client.requests_made for client in self._clients)

    # -- reading ---------------------------------------------------------------------
    def list_bookmarks(
        self,
        *,
        archived: bool,
        modified_since: int | None = None,
        bounds: Bounds | None = None,
    ) -> Listed:
        """Every bookmark of one list (``archived`` or not), oldest first,
        ``⌈count/page_size⌉`` requests; with ``modified_since`` (unix seconds)
        only those changed after it.

        Offsets shift when a bookmark leaves the list while it is being read
        (deleted, archived), and the bookmark after it would be skipped: a
        listing whose ``count`` changed on the way is read again from the
        start, up to ``RELISTS`` times (then it is used as it is, and the next
        sync's totals check finds what it missed). A bookmark seen twice (one
        was added meanwhile) is yielded once."""
        path = "/bookmarks/archived/" if archived else "/bookmarks/"
        params: dict[str, str] = {"sort": "added_asc", "limit": str(self.page_size)}
        if modified_since is not None:
            params["modified_since"] = _since(modified_since)
        attempt = 0
        while True:
            listed, steady = self._read_list(path, params, bounds)
            if steady or attempt >= RELISTS:
                if not steady:
                    logger.info("GET %s: the list kept changing while it was read", path)
                return listed
            attempt += 1
            logger.info("GET %s: the list changed while it was read; reading it again", path)

    def _read_list(
        self, path: str, params: Mapping[str, str], bounds: Bounds | None
    ) -> tuple[Listed, bool]:
        listing = Listing(
            f"GET {path}",
            "bookmarks",
            origin=self.origin,
            page_size=self.page_size,
            bounds=bounds,
            error=LinkdingError,
        )
        seen: set[int] = set()
        bookmarks: list[dict[str, Any]] = []
        first: int | None = None
        server_time: int | None = None
        steady = True
        offset = 0
        while True:
            response = self._call("GET", path, params={**params, "offset": str(offset)})
            count, results = _page(response.data, f"GET {path}")
            if first is None:
                first = count
                server_time = self._server_date(response)
                listing.announce(count)
            steady = steady and count == first
            last = offset + len(results) >= count
            if results or not last:  # an empty page before the end it announced: refused
                listing.page((_listed_id(raw) for raw in results), repeat_ends=last)
            for raw in results:
                bookmark_id = raw.get("id") if isinstance(raw, Mapping) else None
                if isinstance(bookmark_id, int) and is_id(bookmark_id):
                    if bookmark_id in seen:
                        continue
                    seen.add(bookmark_id)
                bookmarks.append(raw)
            offset += len(results)
            if last:
                return Listed(bookmarks, first, server_time), steady

    def total(self, *, archived: bool) -> int:
        """How many bookmarks one list holds: one request of one bookmark."""
        path = "/bookmarks/archived/" if archived else "/bookmarks/"
        response = self._call("GET", path, params={"limit": "1"})
        count, _ = _page(response.data, f"GET {path}")
        return count

    def tags(self) -> dict[int, str]:
        """Every tag of the account (also those no bookmark carries): id -> name,
        ``⌈tags/page_size⌉`` requests."""
        listing = Listing(
            "GET /tags/", "tags", origin=self.origin, page_size=self.page_size, error=LinkdingError
        )
        names: dict[int, str] = {}
        offset = 0
        while True:
            params = {"limit": str(self.page_size), "offset": str(offset)}
            response = self._call("GET", "/tags/", params=params)
            count, results = _page(response.data, "GET /tags/")
            listing.announce(count)
            last = offset + len(results) >= count
            if results or not last:
                listing.page((_listed_id(raw) for raw in results), repeat_ends=last)
            for raw in results:
                if isinstance(raw, Mapping) and is_id(raw.get("id")):
                    name = raw.get("name")
                    if isinstance(name, str):
                        names[raw["id"]] = name
            offset += len(results)
            if last:
                return names

    def get_bookmark(self, bookmark_id: int) -> dict[str, Any]:
        path = f"/bookmarks/{bookmark_id}/"
        return _object(self._call("GET", path, item=True).data, f"GET {path}")

    def check(self, url: str) -> dict[str, Any] | None:
        """The bookmark saved for ``url`` as Linkding compares URLs
        (``normalized_url``), or None. (The server also reads the page for
        its metadata here, and keeps what it found for the create after.)"""
        response = self._call("GET", "/bookmarks/check/", params={"url": url})
        answer = _object(response.data, "GET /bookmarks/check/")
        found = answer.get("bookmark")
        if found is None:
            return None
        return _object(found, "GET /bookmarks/check/: its bookmark")

    # -- writing ---------------------------------------------------------------------
    def update_bookmark(self, bookmark_id: int, body: Mapping[str, Any]) -> dict[str, Any]:
        """One PATCH (partial: a field left out keeps its value; ``tag_names``
        replaces the whole set); answers the bookmark as it now is."""
        path = f"/bookmarks/{bookmark_id}/"
        answer = self._call("PATCH", path, json=dict(body), item=True).data
        return _object(answer, f"PATCH {path}")

    def delete_bookmark(self, bookmark_id: int) -> None:
        """A hard delete (204). A bookmark already gone raises ``NotFound``."""
        self._call("DELETE", f"/bookmarks/{bookmark_id}/", item=True, expect_json=False)

    def create_bookmark(self, url: str, title: str, tags: Sequence[str]) -> Created:
        """Save ``url`` unless Linkding has it already.

        A create of a saved URL is not refused: Linkding overwrites that
        bookmark's title, notes, flags and tags and answers 201. So ``check``
        asks first, and a bookmark found there is left alone (``existed``).
        When the create's answer is lost, ``check`` asks again: a bookmark
        there now is the one this create made (it was not there a moment
        ago); only when there is none is the create sent again. A late copy
        of the lost one landing after that merges into the new bookmark with
        the same fields: Linkding never holds a URL twice."""
        existing = self.check(url)
        if existing is not None:
            return Created(existing, existed=True)
        body = {"url": url, "title": title, "tag_names": list(tags)}
        problems: list[str] = []
        while True:
            try:
                response = self._call("POST", "/bookmarks/", json=body, idempotent=False)
                return Created(_object(response.data, "POST /bookmarks/"), existed=False)
            except MaybeSentError as lost:
                problems.append(lost.problem)
                self._http().pause(len(problems), "POST /bookmarks/", lost.problem)
                landed = self.check(url)
                if landed is not None:
                    logger.info("POST /bookmarks/: the answer was lost, but the bookmark landed")
                    return Created(landed, existed=False)
                if len(problems) > self._settings["max_retries"]:
                    raise LinkdingError(
                        f"POST /bookmarks/: {lost.problem} {len(problems)} times, and no "
                        f"bookmark for this URL appeared on {self.origin}; giving up"
                    ) from None

    def profile(self) -> dict[str, Any]:
        """The token's user settings (and the server's version): a cheap credentials check."""
        return _object(self._call("GET", "/user/profile/").data, "GET /user/profile/")

    # -- plumbing --------------------------------------------------------------------
    def _server_date(self, response: Response) -> int | None:
        """The answer's ``Date`` as unix seconds (None when absent or garbled; a
        warning for one that is there and is not a date). Not judged here:
        ``rulebot.sources.cursors`` decides how far to believe it."""
        value = response.headers.get("Date")
        stamp = _date(value)
        if stamp is None and value:
            logger.warning(
                "%s: Linkding's Date header %r is not a date; the sync cursor comes from "
                "this machine's clock instead",
                response.path,
                self._http().clean(value, 60),
            )
        return stamp

    def _http(self) -> HttpClient:
        client: HttpClient | None = getattr(self._local, "client", None)
        if client is None:
            client = HttpClient(
                self.base_url,
                **self._settings,
                user_agent=f"rulebot/{__version__}",
                secrets=[self._token],
                error=LinkdingError,
                service="a Linkding server",
                config_key="linkding.base_url",
            )
            self._local.client = client
            with self._clients_lock:
                self._clients.append(client)
        return client

    def _call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        item: bool = False,
        expect_json: bool = True,
        idempotent: bool = True,
    ) -> Response:
        """One API call; a non-2xx answer becomes the matching ``LinkdingError``.

        ``item``: the path names one bookmark, so Linkding's own (JSON) 404 is
        ``NotFound`` (moot). An HTML 404 is a path Linkding does not know: the
        base URL is not a Linkding instance's root."""
        label = f"{method} {path}"
        http = self._http()
        response = http.request(
            method,
            API_PATH + path,
            json=json,
            params=params,
            headers={
                "Authorization": f"Token {self._token}",
                "Accept": "application/json",
                "Accept-Language": "en",
            },
            expect_json=expect_json,
            label=label,
            idempotent=idempotent,
        )
        if 200 <= response.status < 300:
            return response
        detail = _error_text(response, http)
        if response.status == 401:
            raise LinkdingAuthError(
                f"{label}: Linkding at {self.origin} refused the token in {self.token_env} "
                f"(401 {detail or 'Unauthorized'}); check that it is the whole key and that its "
                f"user is active ({TOKEN_HELP})",
                status=401,
                detail=detail,
            )
        if response.status == 403:
            raise LinkdingAuthError(
                f"{label}: Linkding at {self.origin} refused the token in {self.token_env} "
                f"(403 {detail or 'Forbidden'}); {TOKEN_HELP}",
                status=403,
                detail=detail,
            )
        if response.status == 404 and item and _is_json(response):
            raise NotFound(f"{label}: not found on {self.origin}", status=404, detail=detail)
        if response.status == 404:
            raise LinkdingError(
                f"{label}: {self.origin} answered 404; is linkding.base_url the root of a "
                "Linkding instance (the address you open in a browser, without /api)?",
                status=404,
                detail=detail,
            )
        if response.status in (301, 302, 307, 308):
            where = http.clean(response.headers.get("Location", ""), 120)
            raise LinkdingError(
                f"{label}: {self.origin} redirects it to {where or 'another address'}; set "
                "linkding.base_url to the address Linkding answers on (https, a path prefix)",
                status=response.status,
                detail=detail,
            )
        raise LinkdingError(
            f"{label}: Linkding refused it ({response.status} {detail or 'without a reason'})",
            status=response.status,
            detail=detail,
        )


def _since(seconds: int) -> str:
    """A ``modified_since`` value: UTC with ``Z``, never a ``+`` (a query string
    reads it as a space, and Linkding then drops the filter without a word)."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _page(answer: Any, label: str) -> tuple[int, list[Any]]:
    """A DRF page: ``{"count", "next", "previous", "results"}``."""
    if not isinstance(answer, Mapping):
        raise LinkdingError(f"{label}: the answer is {describe(answer)}, expected a page")
    count, results = answer.get("count"), answer.get("results")
    if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= MAX_INT:
        raise LinkdingError(f"{label}: the page's count is {show(count)}, expected a number")
    if not isinstance(results, list):
        raise LinkdingError(f"{label}: the page's results are {describe(results)}, not a list")
    return count, results


def _listed_id(raw: Any) -> str | None:
    """A listed entry's id when it is one rulebot can read (paging progress)."""
    entry_id = raw.get("id") if isinstance(raw, Mapping) else None
    return str(entry_id) if is_id(entry_id) else None


def _date(value: str | None) -> int | None:
    """An HTTP ``Date`` header as unix seconds (None when absent or garbled)."""
    if not value or len(value) > 40:
        return None
    try:
        return int(parsedate_to_datetime(value).timestamp())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _object(answer: Any, label: str) -> dict[str, Any]:
    if not isinstance(answer, dict):
        raise LinkdingError(f"{label}: the answer is {describe(answer)}, expected an object")
    return answer


def _instance_root(base_url: str) -> str:
    """The instance root; a pasted ``…/api`` (or ``…/api/``) is forgiven."""
    root = base_url.strip().rstrip("/")
    return root[: -len(API_PATH)] if root.endswith(API_PATH) else root


def _is_json(response: Response) -> bool:
    return "json" in response.headers.get("Content-Type", "")


def _error_text(response: Response, http: HttpClient) -> str:
    """Linkding's reason: DRF's ``{"detail": …}``, a field's messages
    (``{"url": ["Enter a valid URL."]}``), ``{"error": …}``; else the text
    (an HTML page only when it is short)."""
    text = response.text.strip()
    if text.startswith("{"):
        try:
            answer = json.loads(text)
        except (ValueError, RecursionError):
            answer = None
        if isinstance(answer, dict):
            text = _reason(answer) or text
    elif "text/html" in response.headers.get("Content-Type", ""):
        text = text if len(text) < 200 and "<" not in text else ""
    return http.clean(text, 160)


def _reason(answer: Mapping[str, Any]) -> str:
    for key in ("detail", "error"):
        if isinstance(answer.get(key), str):
            return str(answer[key])
    parts = []
    for field, messages in answer.items():
        if isinstance(messages, list):
            parts.append(f"{field}: {', '.join(str(m) for m in messages)}")
        elif isinstance(messages, dict):  # a list field's items: {"0": ["…"]}
            shown = "; ".join(
                f"{k}: {', '.join(map(str, v)) if isinstance(v, list) else v}"
                for k, v in messages.items()
            )
            parts.append(f"{field} {shown}")
    return "; ".join(parts)
