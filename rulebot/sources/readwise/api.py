"""The Readwise Reader API v3 client, and how a document becomes an ``Item``.

Facts from ``specs/readwise-reader.md`` that shape it:

- the API lives under ``/api/v3/`` of ``https://readwise.io``, every path
  with a trailing slash; the token travels only in ``Authorization: Token``
  (not ``Bearer``), from ``READWISE_TOKEN``; a 401 (and a 403, which a
  lapsed subscription is reported to give: unconfirmed) is a credentials
  error naming the variable and where the token comes from;
- rate limits per token: 20 requests a minute by default, 50 for save and
  update (``rate_limits``: the classes ``list`` and ``update``; rulebot
  paces within them, ``sources.pacing``); 429 carries ``Retry-After``, and
  its DRF body "Expected available in N seconds" is read when the header is
  missing (seen on the v2 API; unconfirmed for v3);
- ``GET /list/`` pages with ``pageCursor``/``nextPageCursor`` (null or
  absent at the end), up to 100 a page (``limit`` is sent only when the
  config asks for fewer: it is documented only since 2026); ``?id=`` that
  finds nothing is an empty page, not a 404;
- ``PATCH /update/<id>/`` is partial and answers only ``{id, url}``; its
  ``tags`` replace the whole set; ``location`` takes ``new``, ``later``,
  ``archive``, ``feed`` but not ``shortlist``;
- ``POST /save/`` answers 201 for a new document and 200 for a URL it
  already has (the same ``{id, url}``): a retried save never makes a copy;
- ``DELETE /delete/<id>/`` answers 204; an unknown id is expected to be a
  404 (unconfirmed), which is moot.

Where the spec says a shape is unconfirmed the reader is tolerant: ``tags``
may be a key -> ``{name}`` map (every sample), a list of names or objects,
or null; ``published_date`` a date or a number; error bodies any text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC
from typing import Any, Unpack

from rulebot.errors import CredentialsError, ItemDataError, RateLimited
from rulebot.http import Response, Secrets, http_date
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
from rulebot.sources.fields import iso_time, kind, optional_text, seconds, show, whole
from rulebot.sources.paging import Bounds

TOKEN_ENV = "READWISE_TOKEN"
API_PATH = "/api/v3"
DEFAULT_BASE_URL = "https://readwise.io"
MAX_PAGE_SIZE = 100
TOKEN_HELP = "copy it from https://readwise.io/access_token"
# the documented limits per token (requests a minute): save and update 50, all else 20
RATE_LIMITS = {"list": 20, "update": 50}
LOCATIONS = ("new", "later", "shortlist", "archive", "feed")
UNREAD_LOCATIONS = ("new", "later", "shortlist")
_THROTTLED = re.compile(r"available in (\d{1,6}) seconds?", re.IGNORECASE)
# ULID-style ids: lower-case alphanumerics; allow a little more, never "/", "?" or spaces
_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_MINUTES = re.compile(r"\s*(\d{1,6})\s*min")


class ReadwiseError(ServiceError):
    """Readwise Reader failed, or answered something rulebot cannot use."""


class ReadwiseAuthError(ReadwiseError, CredentialsError):
    """401: the token is missing, wrong or revoked (403: the subscription, perhaps)."""


class ReadwiseRateLimitError(ReadwiseError, RateLimited):
    """Still rate limited after the allowed waits: the run stops."""


class NotFound(ReadwiseError, Gone):
    """404 on a document: it is gone, so the action is moot."""


class ReadwiseClient(ServiceClient):
    """Readwise Reader. ``base_url`` is ``https://readwise.io`` (or a fake's root)."""

    service, config, api_path, pasted = "Readwise Reader", "readwise", API_PATH, ("/api",)
    error, not_found, rate_error = ReadwiseError, NotFound, ReadwiseRateLimitError
    rate_limits = RATE_LIMITS

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
            error=ReadwiseAuthError,
            needs="Readwise Reader needs an access token",
            hint=TOKEN_HELP,
        )
        checked_page_size(
            page_size,
            MAX_PAGE_SIZE,
            error=ReadwiseError,
            config="readwise",
            answers="Reader lists 1 to {most} documents per page",
        )
        self.token_env = token_env
        # the server's clock (its Date header) when the last listing began: a
        # sync cursor must not pass it (a document dated ahead of it would hide
        # every change made in between)
        self.listed_at: int | None = None
        super().__init__(base_url, secrets=Secrets([self._token]), page_size=page_size, **settings)

    # -- documents -----------------------------------------------------------------
    def iter_documents(
        self,
        *,
        updated_after: str | None = None,
        location: str | None = None,
        bounds: Bounds | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Every document (raw dicts, highlights and feed items included), one
        ``GET /list/`` per page; ``updated_after``: only those updated after
        that ISO time (the incremental sync)."""
        params: dict[str, str] = {}
        if updated_after is not None:
            params["updatedAfter"] = updated_after
        if location is not None:
            params["location"] = location
        if self.page_size < MAX_PAGE_SIZE:
            params["limit"] = str(self.page_size)
        listing = self.listing("GET /list/", "documents", bounds)
        cursors: set[str] = set()
        cursor: str | None = None
        self.listed_at = None
        while True:
            query = {**params, **({"pageCursor": cursor} if cursor else {})}
            response = self.call("GET", "/list/", params=query)
            if cursor is None:
                self.listed_at = http_date(response.headers.get("Date"))
            answer = response.data
            documents, count, cursor = _page(answer, "GET /list/")
            if count is not None:
                listing.announce(count)
            ids = [_listed_id(raw) for raw in documents]
            listing.page(ids, repeat_ends=cursor is None)
            if cursor is not None and cursor in cursors:
                raise ReadwiseError(
                    f"GET /list/: {self.origin} sent the page cursor "
                    f"{self._http().clean(cursor, 60)} a second time; a listing that goes in "
                    f"circles would never end: stopped the sync after {listing.count:,} "
                    "documents, nothing was stored"
                )
            yield from listing.once(documents, ids)
            if cursor is None:
                return
            cursors.add(cursor)

    def get_document(self, document_id: str) -> dict[str, Any] | None:
        """One document by ``?id=`` (None: Reader has no such document)."""
        answer = self.call("GET", "/list/", params={"id": document_id}).data
        documents, _, _ = _page(answer, "GET /list/?id=")
        found = [d for d in documents if isinstance(d, Mapping) and d.get("id") == document_id]
        return dict(found[0]) if found else None

    def update_document(self, document_id: str, **fields: Any) -> None:
        """PATCH only ``fields`` (``location``, ``tags`` as the whole list, ``seen`` …)."""
        path = f"/update/{path_segment(document_id)}/"
        self.object(self.call("PATCH", path, json=fields, item=True).data, f"PATCH {path}")

    def delete_document(self, document_id: str) -> None:
        """Delete (204). A document already gone raises ``NotFound``."""
        path = f"/delete/{path_segment(document_id)}/"
        self.call("DELETE", path, item=True, expect_json=False)

    def save(
        self,
        url: str,
        *,
        title: str | None = None,
        tags: Sequence[str] = (),
        location: str | None = None,
    ) -> tuple[str, bool]:
        """POST ``/save/``: (the document's id, whether it was new). A URL Reader
        already has answers 200 with that document: saving twice makes no copy."""
        body: dict[str, Any] = {"url": url, "saved_using": "rulebot"}
        if title:
            body["title"] = title
        if tags:
            body["tags"] = list(tags)
        if location:
            body["location"] = location
        response = self.call("POST", "/save/", json=body)
        answer = self.object(response.data, "POST /save/")
        document_id = answer.get("id")
        if not isinstance(document_id, str) or not _ID.fullmatch(document_id):
            raise ReadwiseError(f"POST /save/: the answer has id {show(document_id)}")
        return document_id, response.status == 201

    def list_tags(self) -> list[dict[str, Any]]:
        """Every tag ``{key, name}`` (``GET /tags/``, paged by cursor)."""
        tags: list[dict[str, Any]] = []
        cursor: str | None = None
        seen: set[str] = set()
        while True:
            answer = self.call("GET", "/tags/", params={"pageCursor": cursor} if cursor else {})
            page, _, cursor = _page(answer.data, "GET /tags/")
            tags += [dict(t) for t in page if isinstance(t, Mapping)]
            if cursor is None or cursor in seen:
                return tags
            seen.add(cursor)

    def check_token(self) -> None:
        """``GET /api/v2/auth/``: 204 when the token is good (a 401 raises)."""
        label = "GET /api/v2/auth/"
        response = self._http().request("GET", "/api/v2/auth/", headers=self.headers(), label=label)
        if response.status != 204 and not 200 <= response.status < 300:
            raise self.refusal(response, label)

    # -- what is Reader's own ----------------------------------------------------------
    def token(self) -> str:
        return self._token

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Token {self._token}", "Accept": "application/json"}

    def rate_class(self, method: str, path: str) -> str:
        """Save and update count against 50 a minute; everything else 20."""
        tail = path.removeprefix(API_PATH)
        return "update" if tail.startswith(("/save", "/update/")) else "list"

    def reason(self, response: Response) -> str:
        """DRF's JSON (``{"detail": …}`` or ``{"field": ["…"]}``), else the text."""
        text = response.text.strip()
        if text.startswith("{"):
            try:
                answer = json.loads(text)
                if isinstance(answer.get("detail"), str):
                    return str(answer["detail"])
                return "; ".join(
                    f"{key}: {' '.join(map(str, value)) if isinstance(value, list) else value}"
                    for key, value in answer.items()
                )
            except (ValueError, AttributeError, TypeError, RecursionError):
                pass
        return text

    def refused(
        self, response: Response, label: str, detail: str, *, item: bool
    ) -> ReadwiseError | None:
        if response.status in (401, 403):
            why = "refused" if response.status == 401 else "forbade"
            return ReadwiseAuthError(
                f"{label}: Readwise Reader {why} the token in {self.token_env} "
                f"({response.status} {detail or 'without a reason'}); check that it is "
                f"complete and current ({TOKEN_HELP}), and that the subscription is active",
                status=response.status,
                detail=detail,
            )
        return None

    def rate_limited(self, response: Response) -> float | None:
        """A 429 without ``Retry-After``: the wait from its DRF text; None: the header's."""
        if response.status != 429 or response.headers.get("Retry-After"):
            return None
        match = _THROTTLED.search(response.text[:500])
        return float(match.group(1)) if match else None


# -- from a document to an Item ----------------------------------------------------------


def is_library_document(raw: Any, *, include_feed: bool) -> bool:
    """A saved document, not a highlight or note (those have a ``parent_id``)
    and not a feed item unless the config opts in. Anything rulebot cannot
    tell passes (``document_to_item`` reports it)."""
    if not isinstance(raw, Mapping):
        return True
    if raw.get("parent_id") not in (None, ""):
        return False
    if raw.get("category") in ("highlight", "note"):
        return False
    return include_feed or raw.get("location") != "feed"


def document_to_item(raw: Any, *, favorite: str | None = None) -> Item:
    """One document as rulebot sees it.

    ``source_url`` (the saved page; ``url`` is the Reader link) is the URL;
    ``location`` ``archive`` is archived and every other one unread, and it
    is kept in ``extra["location"]`` for the ``location`` condition;
    tags by name; ``saved_at`` (else ``created_at``) is when it was added,
    ``updated_at`` when it changed; an archived document's ``last_moved_at``
    is its read time (the time it moved to the archive, by its name:
    unconfirmed); ``word_count``, ``reading_time`` in minutes; ``category``
    says whether it is an article or a video. Favourite: unknown unless the
    config maps it (``favorite``: ``shortlist``, or ``tag:NAME``)."""
    if not isinstance(raw, Mapping):
        raise ItemDataError(f"Reader document is {kind(raw)}, expected an object")
    document_id = raw.get("id")
    if not isinstance(document_id, str) or not _ID.fullmatch(document_id):
        raise ItemDataError(f"Reader document has id {show(document_id)}, expected an id string")
    where = f"Reader document {document_id}"
    location = raw.get("location")
    if location not in LOCATIONS:
        raise ItemDataError(
            f"{where}: field 'location' is {show(location)}, expected one of {', '.join(LOCATIONS)}"
        )
    category = optional_text(raw.get("category"), where, "category") or ""
    url = optional_text(raw.get("source_url"), where, "source_url") or ""
    title = optional_text(raw.get("title"), where, "title") or ""
    tags = _tag_names(raw.get("tags"), where)
    archived = location == "archive"
    added = _time(raw.get("saved_at") or raw.get("created_at"), where, "saved_at")
    moved = _time(raw.get("last_moved_at"), where, "last_moved_at", nullable=True)
    return Item(
        item_id=document_id,
        given_url=url,
        given_title=title,
        resolved_title=title,
        status=ARCHIVED if archived else UNREAD,
        favorite=_favorite(favorite, location, tags),
        tags=tags,
        time_added=added,
        time_updated=_time(raw.get("updated_at"), where, "updated_at", nullable=True),
        time_read=moved if archived else None,
        time_favorited=None,
        word_count=whole(raw.get("word_count"), where, "word_count"),
        time_to_read=_minutes(raw.get("reading_time")),
        lang=None,
        is_article=category == "article" if category else None,
        has_image=None,
        has_video=(2 if category == "video" else 0) if category else None,
        excerpt=optional_text(raw.get("summary"), where, "summary") or "",
        extra={"location": location, "category": category},
    )


def _favorite(mapping: str | None, location: str, tags: tuple[str, ...]) -> bool | None:
    if mapping == "shortlist":
        return location == "shortlist"
    if mapping is not None and mapping.startswith("tag:"):
        wanted = mapping[4:].casefold()
        return any(tag.casefold() == wanted for tag in tags)
    return None


def _tag_names(value: Any, where: str) -> tuple[str, ...]:
    """The documents' ``tags``: a key -> ``{name}`` map (every sample); a list of
    names or ``{name}`` objects and null are taken too (unconfirmed shapes)."""
    if value is None:
        return ()
    if isinstance(value, Mapping):
        entries: list[Any] = [
            entry.get("name") if isinstance(entry, Mapping) and entry.get("name") else key
            for key, entry in value.items()
        ]
    elif isinstance(value, list):
        entries = [t.get("name") if isinstance(t, Mapping) else t for t in value]
    else:
        raise ItemDataError(f"{where}: field 'tags' is {kind(value)}, expected an object")
    names = []
    for name in entries:
        if not isinstance(name, str) or not name:
            raise ItemDataError(f"{where}: field 'tags' holds {show(name)}, expected a tag name")
        names.append(name)
    return tuple(sorted(dict.fromkeys(names), key=str.casefold))


def _minutes(value: Any) -> int | None:
    """``"11 mins"`` -> 11; anything else: unknown."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 10**6:
        return value
    match = _MINUTES.match(value) if isinstance(value, str) else None
    return int(match.group(1)) if match else None


def _time(value: Any, where: str, name: str, *, nullable: bool = False) -> int | None:
    """``2022-12-08T02:53:29.639650+00:00`` as unix seconds (a bare time is UTC)."""
    if value in (None, "") and nullable:
        return None
    parsed = iso_time(value)
    if parsed is not None and parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return seconds(parsed, value, where, name, "an ISO-8601 date and time")


# -- helpers --------------------------------------------------------------------------------


def _page(answer: Any, label: str) -> tuple[list[Any], int | None, str | None]:
    if not isinstance(answer, Mapping) or not isinstance(answer.get("results"), list):
        raise ReadwiseError(f"{label}: the answer is not a page of results")
    cursor = answer.get("nextPageCursor")
    if cursor is not None and (not isinstance(cursor, str | int) or isinstance(cursor, bool)):
        raise ReadwiseError(f"{label}: the page's nextPageCursor is {kind(cursor)}")
    count = answer.get("count")
    total = count if isinstance(count, int) and not isinstance(count, bool) else None
    return answer["results"], total, str(cursor) if cursor not in (None, "") else None


def _listed_id(raw: Any) -> str | None:
    document_id = raw.get("id") if isinstance(raw, Mapping) else None
    return document_id if isinstance(document_id, str) and _ID.fullmatch(document_id) else None
