"""The Raindrop.io REST API v1 client, and how a raindrop becomes an ``Item``.

Facts from ``specs/raindrop.md`` that shape it (where a fact is unconfirmed,
the client takes either answer):

- the API lives under ``/rest/v1`` of ``https://api.raindrop.io`` (the web
  app's ``/v1`` is forgiven when pasted); the test token travels only in
  ``Authorization: Bearer``; a 401 (plain text ``Unauthorized``) names
  ``RAINDROP_TOKEN`` and where to get one, and is never retried;
- every success is 200 with ``result: true``; a body with ``result: false``
  is an error whatever its status (its ``errorMessage`` is the reason, its
  ``error`` sometimes a code instead of ``status``); an unknown route is an
  HTML 404;
- 120 requests a minute: a run paces itself within it (``sources.pacing``),
  and a 429 still waits for ``Retry-After`` (``rulebot.http``),
  else for ``X-RateLimit-Reset`` against the answer's ``Date``, else backs off;
- lists are paged by a zero-based ``page`` and ``perpage`` (at most 50)
  and end at an empty page or at ``count``; paging is by offset, so the
  caller watches ``count`` and ids seen twice (``first_count``/``last_count``);
- create never deduplicates a link: a create whose answer was lost is sent
  again only after ``POST /import/url/exists`` shows it did not land.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar, Unpack

from rulebot.errors import CredentialsError, ItemDataError, RateLimited
from rulebot.http import MaybeSentError, Response, Secrets
from rulebot.library.item import ARCHIVED, UNREAD, Item
from rulebot.sources.client import (
    Gone,
    ServiceClient,
    ServiceError,
    Settings,
    checked_page_size,
    checked_token,
    path_segment,
)
from rulebot.sources.fields import iso_time, kind, optional_text, seconds, show, text
from rulebot.sources.paging import Bounds

TOKEN_ENV = "RAINDROP_TOKEN"
API_PATH = "/rest/v1"
DEFAULT_URL = "https://api.raindrop.io"
MAX_PAGE_SIZE = 50  # perpage's documented maximum
TRASH, UNSORTED, ALL = -99, -1, 0  # the system collections
TOKEN_HELP = (
    "register an app at app.raindrop.io/settings/integrations, open it and copy its Test token"
)
MAX_ID = 2**63 - 1
LOOKUPS = 3  # looks for a create that timed out, a timeout apart, before giving up on it

logger = logging.getLogger("rulebot.raindrop")


class RaindropError(ServiceError):
    """Raindrop.io failed, or answered something rulebot cannot use."""


class RaindropAuthError(RaindropError, CredentialsError):
    """401: the token is missing, wrong or revoked."""


class RaindropRateLimitError(RaindropError, RateLimited):
    """Still rate limited after the allowed waits: the run stops."""


class NotFound(RaindropError, Gone):
    """404 on a raindrop: it is gone (deleted for good), so the action is moot."""


class RaindropClient(ServiceClient):
    """The Raindrop.io API for one token. ``base_url`` is the API's host."""

    service, config, api_path, pasted = "Raindrop.io", "raindrop", API_PATH, ("/v1",)
    error, not_found, rate_error = RaindropError, NotFound, RaindropRateLimitError
    # 120 requests a minute per user (documented); a run paces itself within it
    rate_limits: ClassVar[Mapping[str, int]] = {"default": 120}

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
            error=RaindropAuthError,
            needs="Raindrop.io needs a token",
            hint=TOKEN_HELP,
        )
        checked_page_size(
            page_size,
            MAX_PAGE_SIZE,
            error=RaindropError,
            config="raindrop",
            answers="Raindrop.io lists 1 to {most} bookmarks per page",
        )
        self.token_env = token_env
        self.first_count: int | None = None  # the last listing's count, on its first page
        self.last_count: int | None = None  # ... and on its last
        self.listed_at: int | None = None  # the server's Date when the last listing began
        super().__init__(base_url, secrets=Secrets([self._token]), page_size=page_size, **settings)

    # -- raindrops ------------------------------------------------------------------
    def iter_raindrops(
        self,
        collection: int = ALL,
        *,
        sort: str = "-created",
        bounds: Bounds | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Every raindrop of ``collection`` (0: all but Trash; -99: Trash),
        in ``sort`` order, one ``GET /raindrops/{id}`` per page; a caller may
        stop early (an incremental sync stops at its cursor)."""
        label = f"GET /raindrops/{collection}"
        listing = self.listing(label, "bookmarks", bounds)
        self.first_count = self.last_count = self.listed_at = None
        page = 0
        while True:
            params = {"page": str(page), "perpage": str(self.page_size), "sort": sort}
            response = self.call("GET", f"/raindrops/{collection}", label=label, params=params)
            if page == 0:
                self.listed_at = _date(response)
            answer = self._ok(response, label)
            items, count = answer.get("items"), answer.get("count")
            if not isinstance(items, list):
                raise RaindropError(f"{label} page {page}: the answer is not a page of bookmarks")
            if isinstance(count, int) and not isinstance(count, bool) and count >= 0:
                listing.announce(count)
                self.first_count = count if self.first_count is None else self.first_count
                self.last_count = count
            if not items:
                return
            ids = [_listed_id(raw) for raw in items]
            listing.page(ids, repeat_ends=True)
            yield from listing.once(items, ids)
            page += 1
            if self.last_count is not None and page * self.page_size >= self.last_count:
                return

    def get(self, raindrop_id: str) -> dict[str, Any]:
        """One raindrop (in Trash too: ``removed: true``); gone is ``NotFound``."""
        path = f"/raindrop/{path_segment(raindrop_id)}"
        return self._item(self.call("GET", path, item=True), f"GET {path}")

    def update(self, raindrop_id: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        """``PUT /raindrop/{id}``: a partial update (``tags`` sets the whole
        list); the full raindrop after it. Safe to repeat."""
        path = f"/raindrop/{path_segment(raindrop_id)}"
        return self._item(self.call("PUT", path, json=dict(fields), item=True), f"PUT {path}")

    def bulk_update(self, collection: int, ids: Sequence[int], fields: Mapping[str, Any]) -> int:
        """``PUT /raindrops/{collection}`` for ``ids`` in that collection only
        (``tags`` appends, ``[]`` clears; ``important``; ``collection`` moves);
        how many it says it modified."""
        label = f"PUT /raindrops/{collection}"
        body = {"ids": list(ids), **fields}
        return self._modified(
            self.call("PUT", f"/raindrops/{collection}", label=label, json=body), label
        )

    def bulk_remove(self, collection: int, ids: Sequence[int]) -> int:
        """``DELETE /raindrops/{collection}`` for ``ids`` in that collection only:
        to Trash, or for good when ``collection`` is Trash. A raindrop no
        longer in ``collection`` is untouched, so a repeat never deletes for good."""
        label = f"DELETE /raindrops/{collection}"
        response = self.call(
            "DELETE", f"/raindrops/{collection}", label=label, json={"ids": list(ids)}
        )
        return self._modified(response, label)

    def create(
        self, link: str, *, title: str | None, tags: Sequence[str], collection: int | None
    ) -> dict[str, Any]:
        """``POST /raindrop``. Raindrop.io never deduplicates a link, so the
        POST is not idempotent: when its answer is lost it is sent again only
        after ``POST /import/url/exists`` shows no raindrop with this link; a
        create past the timeout is looked for up to ``LOOKUPS`` times, a timeout
        apart, and not sent again in this run if it has not appeared."""
        body: dict[str, Any] = {"link": link, "pleaseParse": {}}
        if title:
            body["title"] = title
        if tags:
            body["tags"] = list(tags)
        if collection is not None:
            body["collection"] = {"$id": collection}  # an object: a bare number is ignored
        problems: list[str] = []
        while True:
            try:
                response = self.call("POST", "/raindrop", json=body, idempotent=False)
                return self._item(response, "POST /raindrop")
            except MaybeSentError as lost:
                problems.append(lost.problem)
                landed = self._landed(link, len(problems), lost)
                if landed:
                    logger.info("POST /raindrop: the answer was lost, but %s landed", landed[0])
                    return self.get(str(landed[-1]))
                if lost.timed_out:
                    raise RaindropError(
                        f"POST /raindrop: {lost.problem}, and no bookmark with this link has "
                        f"appeared on {self.origin} since; not sent again in this run, so it is "
                        "never saved twice: the next run sends it if it did not land"
                    ) from None
                if len(problems) > self.max_retries:
                    raise RaindropError(
                        f"POST /raindrop: {lost.problem} {len(problems)} times, and no bookmark "
                        f"with this link appeared on {self.origin}; giving up"
                    ) from None

    def _landed(self, link: str, failures: int, lost: MaybeSentError) -> list[int]:
        """The raindrops with ``link`` after a create whose answer was lost:
        looked for once after the usual pause; after a timeout (the request
        may still be on its way) up to ``LOOKUPS`` times, ``timeout`` apart."""
        http = self._http()
        lookups = LOOKUPS if lost.timed_out else 1
        for _ in range(lookups):
            wait = self._settings["timeout"] if lost.timed_out else None
            http.pause(failures, "POST /raindrop", lost.problem, wait)
            landed = self.exists(link)
            if landed:
                return landed
        return []

    def exists(self, link: str) -> list[int]:
        """The ids of the raindrops with ``link`` (``POST /import/url/exists``)."""
        label = "POST /import/url/exists"
        answer = self.object(
            self.call("POST", "/import/url/exists", json={"urls": [link]}).data, label
        )
        ids = answer.get("ids")
        if not isinstance(ids, list):
            return []
        return [i for i in ids if isinstance(i, int) and not isinstance(i, bool)]

    # -- tags and collections -----------------------------------------------------------
    def list_tags(self) -> list[dict[str, Any]]:
        """``[{"_id": name, "count": n}]``: case variants grouped into one entry."""
        answer = self._ok(self.call("GET", "/tags"), "GET /tags")
        tags = answer.get("items")
        if not isinstance(tags, list) or not all(_is_tag(t) for t in tags):
            raise RaindropError(f"GET /tags: {self.origin} answered a tag list rulebot cannot read")
        return tags

    def rename_tags(self, names: Sequence[str], new: str) -> None:
        """Rename (one name) or merge (several) onto ``new``, in every collection."""
        self._ok(self.call("PUT", "/tags", json={"tags": list(names), "replace": new}), "PUT /tags")

    def delete_tags(self, names: Sequence[str]) -> None:
        """Remove tags from every raindrop that has them."""
        self._ok(self.call("DELETE", "/tags", json={"tags": list(names)}), "DELETE /tags")

    def collections(self) -> list[dict[str, Any]]:
        """Every collection of the user, root and nested (two requests)."""
        found: list[dict[str, Any]] = []
        for path in ("/collections", "/collections/childrens"):
            items = self._ok(self.call("GET", path), f"GET {path}").get("items")
            if not isinstance(items, list):
                raise RaindropError(f"GET {path}: the answer is not a list of collections")
            found.extend(c for c in items if isinstance(c, dict) and _is_id(c.get("_id")))
        return found

    def me(self) -> dict[str, Any]:
        """The token's user: a cheap credentials check."""
        return self.object(
            self._ok(self.call("GET", "/user"), "GET /user").get("user"), "GET /user"
        )

    # -- what is Raindrop.io's own ------------------------------------------------------------
    def token(self) -> str:
        return self._token

    def reason(self, response: Response) -> str:
        """``errorMessage`` of a JSON error, Express's ``Cannot GET …`` page, or the text."""
        text_ = response.text.strip()
        try:
            answer = response.json()
        except ValueError:
            return text_.removeprefix("<pre>").removesuffix("</pre>")
        if isinstance(answer, dict):
            for key in ("errorMessage", "error"):
                if isinstance(answer.get(key), (str, int)) and not isinstance(
                    answer.get(key), bool
                ):
                    return str(answer[key])
        return text_

    def refused(
        self, response: Response, label: str, detail: str, *, item: bool
    ) -> RaindropError | None:
        if response.status == 401:
            return RaindropAuthError(
                f"{label}: Raindrop.io refused the token in {self.token_env} "
                f"(401 {detail or 'Unauthorized'}); check that it is complete and not revoked "
                f"({TOKEN_HELP})",
                status=401,
                detail=detail,
            )
        return None

    def rate_limited(self, response: Response) -> float | None:
        """A 429 without ``Retry-After``: until ``X-RateLimit-Reset`` (epoch
        seconds), measured against the answer's ``Date``; None: the usual
        reading (``Retry-After``, else backoff)."""
        headers = {k.lower(): v for k, v in response.headers.items()}
        if response.status != 429 or "retry-after" in headers:
            return None
        reset, now = headers.get("x-ratelimit-reset", ""), _date(response)
        if not reset.isdigit() or now is None:
            return None
        return float(min(max(1, int(reset) - now), 3600))

    # -- answers ---------------------------------------------------------------------------
    def _ok(self, response: Response, label: str) -> dict[str, Any]:
        """A success body: an object with ``result: true`` (a 200 may still carry an error)."""
        answer = self.object(response.data, label)
        if answer.get("result") is not True:
            detail = self._http().clean(self.reason(response), 160)
            raise RaindropError(f"{label}: Raindrop.io refused it ({detail or 'result: false'})")
        return answer

    def _item(self, response: Response, label: str) -> dict[str, Any]:
        return self.object(self._ok(response, label).get("item"), label)

    def _modified(self, response: Response, label: str) -> int:
        modified = self._ok(response, label).get("modified")
        if isinstance(modified, bool) or not isinstance(modified, int):
            return -1  # not said: the caller checks each raindrop
        return modified


# -- from a raindrop to an Item -----------------------------------------------------------


def raindrop_to_item(raw: Any, archive: int | None = None) -> Item:
    """One raindrop as rulebot sees it.

    ``collectionId`` (or ``collection.$id``) is the archived status when it is
    the ``archive`` collection, and is kept in ``extra["collection"]`` (bulk
    calls are scoped by it); ``important`` is the favourite (absent: false);
    tags as each raindrop spells them; ``created``/``lastUpdate``;
    ``type`` says article, video or image. A raindrop in Trash (``removed``)
    is no item: callers list collection 0, which never holds one."""
    if not isinstance(raw, Mapping):
        raise ItemDataError(f"Raindrop.io bookmark is {kind(raw)}, expected an object")
    raindrop_id = raw.get("_id")
    if not _is_id(raindrop_id):
        raise ItemDataError(
            f"Raindrop.io bookmark has _id {show(raindrop_id)}, expected a number from 1 to 2^63 - 1"
        )
    where = f"Raindrop.io bookmark {raindrop_id}"
    collection = collection_of(raw)
    if collection is None:
        raise ItemDataError(
            f"{where}: field 'collectionId' is {show(raw.get('collectionId'))}, expected a number"
        )
    important = raw.get("important", False)
    if important is None:
        important = False
    if not isinstance(important, bool):
        raise ItemDataError(
            f"{where}: field 'important' is {show(important)}, expected true or false"
        )
    tags = raw.get("tags", [])
    if tags is None:
        tags = []
    if not isinstance(tags, list) or not all(isinstance(t, str) and t for t in tags):
        raise ItemDataError(f"{where}: field 'tags' is {show(tags)}, expected a list of names")
    kind_ = optional_text(raw.get("type"), where, "type") or "link"
    title = text(raw.get("title"), where, "title", optional=True)
    return Item(
        item_id=str(raindrop_id),
        given_url=text(raw.get("link"), where, "link"),
        given_title=title,
        status=ARCHIVED if archive is not None and collection == archive else UNREAD,
        favorite=important,
        tags=tuple(sorted(dict.fromkeys(tags), key=str.casefold)),
        time_added=_time(raw.get("created"), where, "created"),
        time_updated=_time(raw.get("lastUpdate"), where, "lastUpdate"),
        time_read=None,
        time_favorited=None,
        word_count=None,
        time_to_read=None,
        lang=None,
        is_article=kind_ == "article",
        has_image=2 if kind_ == "image" else 0,  # Pocket's 2: it is an image
        has_video=2 if kind_ == "video" else 0,
        excerpt=text(raw.get("excerpt"), where, "excerpt", optional=True),
        extra={"collection": collection},
    )


def collection_of(raw: Mapping[str, Any]) -> int | None:
    """The raindrop's collection: the flat ``collectionId``, else ``collection.$id``."""
    flat = raw.get("collectionId")
    if isinstance(flat, int) and not isinstance(flat, bool):
        return flat
    nested = raw.get("collection")
    if isinstance(nested, Mapping):
        value = nested.get("$id")
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def stamp(raw: Mapping[str, Any], name: str) -> float | None:
    """A raindrop's time field as unix seconds with milliseconds (None: unreadable)."""
    value = raw.get(name)
    parsed = iso_time(value.replace("Z", "+00:00")) if isinstance(value, str) else None
    if parsed is None:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.timestamp()
    except (OverflowError, ValueError):
        return None


def _time(value: Any, where: str, name: str) -> int:
    """``2023-12-12T00:11:50.615Z`` (the docs leave out the milliseconds) as unix seconds."""
    parsed = iso_time(value.replace("Z", "+00:00")) if isinstance(value, str) else None
    if parsed is not None and parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return seconds(parsed, value, where, name, "an ISO-8601 date and time")


def _date(response: Response) -> int | None:
    """The answer's ``Date`` as unix seconds (None: none, or unreadable)."""
    headers = {k.lower(): v for k, v in response.headers.items()}
    try:
        return int(parsedate_to_datetime(headers["date"]).timestamp())
    except (KeyError, TypeError, ValueError, IndexError, OverflowError):
        return None


def _listed_id(raw: Any) -> str | None:
    raindrop_id = raw.get("_id") if isinstance(raw, Mapping) else None
    return str(raindrop_id) if _is_id(raindrop_id) else None


def _is_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_ID


def _is_tag(tag: Any) -> bool:
    return isinstance(tag, Mapping) and isinstance(tag.get("_id"), str)
