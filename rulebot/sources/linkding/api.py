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
own connection (``sources.client.ServiceClient``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar, Unpack

from rulebot.errors import CredentialsError
from rulebot.http import MaybeSentError, Response, Secrets, http_date
from rulebot.library.item import MAX_INT
from rulebot.sources.client import (
    Gone,
    ServiceClient,
    ServiceError,
    Settings,
    checked_page_size,
    checked_token,
)
from rulebot.sources.fields import kind, show
from rulebot.sources.linkding.items import is_id
from rulebot.sources.paging import Bounds

logger = logging.getLogger("rulebot.linkding")

TOKEN_ENV = "LINKDING_TOKEN"
API_PATH = "/api"
MAX_PAGE_SIZE = 500  # Linkding has no maximum; a page of 500 is ~250 KB of JSON
TOKEN_HELP = "Linkding shows it under Settings > Integrations > REST API"
RELISTS = 2  # a listing whose count changed on the way is read again at most this often


Kept = TypeVar("Kept")  # what a listing holds of each bookmark


class LinkdingError(ServiceError):
    """Linkding failed, or answered something rulebot cannot use."""


class LinkdingAuthError(LinkdingError, CredentialsError):
    """401: the token is missing, wrong or its user inactive (or 403: refused)."""


class NotFound(LinkdingError, Gone):
    """404 ``No Bookmark matches the given query.``: the bookmark is gone (moot)."""


@dataclass(frozen=True)
class Listed(Generic[Kept]):
    """One listing read to its end: what was kept of each bookmark (the
    caller's ``keep``), their ``count``, and the server's clock (its
    ``Date``, unix seconds) when the first page answered."""

    bookmarks: list[Kept]
    count: int
    server_time: int | None


@dataclass(frozen=True)
class Created:
    """What ``create_bookmark`` did: the bookmark it made, or the one that was
    there already (then nothing was sent: a create would have overwritten it)."""

    bookmark: dict[str, Any]
    existed: bool


class LinkdingClient(ServiceClient):
    """One Linkding instance. ``base_url`` is the instance root (``/api`` is appended)."""

    service, config, api_path = "Linkding", "linkding", API_PATH
    error, not_found = LinkdingError, NotFound

    def __init__(
        self,
        base_url: str,
        token: str | None,
        *,
        page_size: int = MAX_PAGE_SIZE,
        token_env: str = TOKEN_ENV,
        **settings: Unpack[Settings],
    ) -> None:
        self._token = checked_token(
            token,
            token_env,
            error=LinkdingAuthError,
            needs="Linkding needs its REST API token",
            hint=TOKEN_HELP,
        )
        checked_page_size(
            page_size,
            MAX_PAGE_SIZE,
            error=LinkdingError,
            config="linkding",
            answers="rulebot asks Linkding for 1 to {most} bookmarks per page",
        )
        self.token_env = token_env
        super().__init__(base_url, secrets=Secrets([self._token]), page_size=page_size, **settings)

    # -- reading ---------------------------------------------------------------------
    def list_bookmarks(
        self,
        keep: Callable[[Any], Kept],
        *,
        archived: bool,
        modified_since: int | None = None,
        bounds: Bounds | None = None,
    ) -> Listed[Kept]:
        """Every bookmark of one list (``archived`` or not), oldest first,
        ``⌈count/page_size⌉`` requests; with ``modified_since`` (unix seconds)
        only those changed after it. Each bookmark is passed to ``keep`` as
        its page comes, and only what that returns is held: a listing of
        25,000 bookmarks held as JSON was 45 MiB.

        Offsets shift when a bookmark leaves the list while it is being read
        (deleted, archived), and the bookmark after it would be skipped: a
        listing whose ``count`` changed on the way is read again from the
        start, up to ``RELISTS`` times (then it is used as it is, and the next
        sync's totals check finds what it missed). A bookmark seen twice (one
        was added meanwhile) is passed on once."""
        path = "/bookmarks/archived/" if archived else "/bookmarks/"
        params: dict[str, str] = {"sort": "added_asc", "limit": str(self.page_size)}
        if modified_since is not None:
            params["modified_since"] = _since(modified_since)
        attempt = 0
        while True:
            listed, steady = self._read_list(path, params, bounds, keep)
            if steady or attempt >= RELISTS:
                if not steady:
                    logger.info("GET %s: the list kept changing while it was read", path)
                return listed
            attempt += 1
            logger.info("GET %s: the list changed while it was read; reading it again", path)

    def _read_list(
        self,
        path: str,
        params: Mapping[str, str],
        bounds: Bounds | None,
        keep: Callable[[Any], Kept],
    ) -> tuple[Listed[Kept], bool]:
        listing = self.listing(f"GET {path}", "bookmarks", bounds)
        bookmarks: list[Kept] = []
        first: int | None = None
        server_time: int | None = None
        steady = True
        offset = 0
        while True:
            response = self.call("GET", path, params={**params, "offset": str(offset)})
            count, results = self._page(response.data, f"GET {path}")
            if first is None:
                first = count
                server_time = self._server_date(response)
                listing.announce(count)
            steady = steady and count == first
            last = offset + len(results) >= count
            ids = [_listed_id(raw) for raw in results]
            if results or not last:  # an empty page before the end it announced: refused
                listing.page(ids, repeat_ends=last)
            bookmarks.extend(map(keep, listing.once(results, ids)))
            offset += len(results)
            if last:
                return Listed(bookmarks, first, server_time), steady

    def total(self, *, archived: bool) -> int:
        """How many bookmarks one list holds: one request of one bookmark."""
        path = "/bookmarks/archived/" if archived else "/bookmarks/"
        response = self.call("GET", path, params={"limit": "1"})
        count, _ = self._page(response.data, f"GET {path}")
        return count

    def tags(self) -> dict[int, str]:
        """Every tag of the account (also those no bookmark carries): id -> name,
        ``⌈tags/page_size⌉`` requests."""
        listing = self.listing("GET /tags/", "tags")
        names: dict[int, str] = {}
        offset = 0
        while True:
            params = {"limit": str(self.page_size), "offset": str(offset)}
            response = self.call("GET", "/tags/", params=params)
            count, results = self._page(response.data, "GET /tags/")
            listing.announce(count)
            last = offset + len(results) >= count
            ids = [_listed_id(raw) for raw in results]
            if results or not last:
                listing.page(ids, repeat_ends=last)
            for raw in listing.once(results, ids):
                if isinstance(raw, Mapping) and is_id(raw.get("id")):
                    name = raw.get("name")
                    if isinstance(name, str):
                        names[raw["id"]] = name
            offset += len(results)
            if last:
                return names

    def get_bookmark(self, bookmark_id: int) -> dict[str, Any]:
        path = f"/bookmarks/{bookmark_id}/"
        return self.object(self.call("GET", path, item=True).data, f"GET {path}")

    def check(self, url: str) -> dict[str, Any] | None:
        """The bookmark saved for ``url`` as Linkding compares URLs
        (``items.normalized_url``), or None. (The server also reads the page
        for its metadata here, and keeps what it found for the create after.)"""
        response = self.call("GET", "/bookmarks/check/", params={"url": url})
        found = self.object(response.data, "GET /bookmarks/check/").get("bookmark")
        if found is None:
            return None
        return self.object(found, "GET /bookmarks/check/: its bookmark")

    # -- writing ---------------------------------------------------------------------
    def update_bookmark(self, bookmark_id: int, body: Mapping[str, Any]) -> dict[str, Any]:
        """One PATCH (partial: a field left out keeps its value; ``tag_names``
        replaces the whole set); answers the bookmark as it now is."""
        path = f"/bookmarks/{bookmark_id}/"
        answer = self.call("PATCH", path, json=dict(body), item=True).data
        return self.object(answer, f"PATCH {path}")

    def delete_bookmark(self, bookmark_id: int) -> None:
        """A hard delete (204). A bookmark already gone raises ``NotFound``."""
        self.call("DELETE", f"/bookmarks/{bookmark_id}/", item=True, expect_json=False)

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
                response = self.call("POST", "/bookmarks/", json=body, idempotent=False)
                return Created(self.object(response.data, "POST /bookmarks/"), existed=False)
            except MaybeSentError as lost:
                problems.append(lost.problem)
                self._http().pause(len(problems), "POST /bookmarks/", lost.problem)
                landed = self.check(url)
                if landed is not None:
                    logger.info("POST /bookmarks/: the answer was lost, but the bookmark landed")
                    return Created(landed, existed=False)
                if len(problems) > self.max_retries:
                    raise LinkdingError(
                        f"POST /bookmarks/: {lost.problem} {len(problems)} times, and no "
                        f"bookmark for this URL appeared on {self.origin}; giving up"
                    ) from None

    def profile(self) -> dict[str, Any]:
        """The token's user settings (and the server's version): a cheap credentials check."""
        return self.object(self.call("GET", "/user/profile/").data, "GET /user/profile/")

    # -- what is Linkding's own ------------------------------------------------------
    def token(self) -> str:
        return self._token

    def headers(self) -> dict[str, str]:
        """``Authorization: Token``; JSON, and English texts for messages (the
        ``detail`` texts are translated: rulebot decides by status codes)."""
        return {
            "Authorization": f"Token {self._token}",
            "Accept": "application/json",
            "Accept-Language": "en",
        }

    def reason(self, response: Response) -> str:
        """DRF's ``{"detail": …}``, a field's messages (``{"url": ["Enter a
        valid URL."]}``), ``{"error": …}``; else the text (an HTML page only
        when it is short)."""
        answer_text = response.text.strip()
        if answer_text.startswith("{"):
            try:
                answer = json.loads(answer_text)
            except (ValueError, RecursionError):
                answer = None
            if isinstance(answer, dict):
                return _reason(answer) or answer_text
        if "text/html" in response.headers.get("Content-Type", ""):
            return answer_text if len(answer_text) < 200 and "<" not in answer_text else ""
        return answer_text

    def refused(
        self, response: Response, label: str, detail: str, *, item: bool
    ) -> ServiceError | None:
        """A 401 or 403 names the token's variable; an HTML 404 is a path
        Linkding does not know (the base URL), never a gone bookmark (its own
        404 is JSON); a redirect names the address to fix."""
        status = response.status
        if status in (401, 403):
            return LinkdingAuthError(
                f"{label}: Linkding at {self.origin} refused the token in {self.token_env} "
                f"({status} {detail or 'Unauthorized'}); check that it is the whole key and that "
                f"its user is active ({TOKEN_HELP})",
                status=status,
                detail=detail,
            )
        if status == 404 and item and "json" not in response.headers.get("Content-Type", ""):
            return LinkdingError(
                f"{label}: {self.origin} answered 404; is linkding.base_url the root of a "
                "Linkding instance (the address you open in a browser, without /api)?",
                status=404,
                detail=detail,
            )
        if status in (301, 302, 307, 308):
            where = self._http().clean(response.headers.get("Location", ""), 120)
            return LinkdingError(
                f"{label}: {self.origin} redirects it to {where or 'another address'}; set "
                "linkding.base_url to the address Linkding answers on (https, a path prefix)",
                status=status,
                detail=detail,
            )
        return None

    # -- plumbing --------------------------------------------------------------------
    def _page(self, answer: Any, label: str) -> tuple[int, list[Any]]:
        """A DRF page: ``{"count", "next", "previous", "results"}``."""
        page = self.object(answer, label)
        count, results = page.get("count"), page.get("results")
        if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= MAX_INT:
            raise LinkdingError(f"{label}: the page's count is {show(count)}, expected a number")
        if not isinstance(results, list):
            raise LinkdingError(f"{label}: the page's results are {kind(results)}, not a list")
        return count, results

    def _server_date(self, response: Response) -> int | None:
        """The answer's ``Date`` as unix seconds (None when absent or garbled; a
        warning for one that is there and is not a date). Not judged here:
        ``rulebot.sources.cursors`` decides how far to believe it."""
        value = response.headers.get("Date")
        stamp = http_date(value)
        if stamp is None and value:
            logger.warning(
                "%s: Linkding's Date header %r is not a date; the sync cursor comes from "
                "this machine's clock instead",
                response.path,
                self._http().clean(value, 60),
            )
        return stamp


def _since(seconds: int) -> str:
    """A ``modified_since`` value: UTC with ``Z``, never a ``+`` (a query string
    reads it as a space, and Linkding then drops the filter without a word)."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _listed_id(raw: Any) -> str | None:
    """A listed entry's id when it is one rulebot can read (paging progress)."""
    entry_id = raw.get("id") if isinstance(raw, Mapping) else None
    return str(entry_id) if is_id(entry_id) else None


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
