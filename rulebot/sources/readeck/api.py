"""The Readeck API client, and how a bookmark becomes an ``Item``.

Facts from ``specs/readeck.md`` that shape it:

- the API lives under ``/api`` of the instance root; the token travels only
  in ``Authorization: Bearer`` (never in a URL or a log line), and every
  request says ``Accept: application/json``: without it Readeck answers its
  errors as HTML pages;
- the bookmark list is offset-paged, ``limit`` at most 100 (above, the server
  answers **404**, not a 400), a bare JSON array with a ``Total-Count`` header;
  paging goes ``offset += limit`` until ``Total-Count`` (the ``Link`` headers
  can skip the last items);
- ``GET /bookmarks/sync?since=`` is the change feed: every bookmark updated
  and every id deleted at or after ``since`` (inclusive, whole seconds on
  SQLite), not paginated;
- ``POST /bookmarks`` never detects a duplicate URL: a create whose answer
  was lost is not re-sent until the newest bookmarks show that it did not
  land (``create_bookmark``);
- a PATCH carries ``is_archived``, ``is_marked``, ``add_labels`` and
  ``remove_labels`` together and answers only the changed fields; labels are
  case-sensitive; a label rename merges onto an existing label;
- no rate limiting (a 429 from a proxy is still waited out by ``rulebot.http``);
  401 is a credentials error naming ``READECK_TOKEN``, never retried.

One ``ReadeckClient`` may be shared by worker threads: each thread gets its
own connection.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Unpack

from rulebot.errors import CredentialsError, ItemDataError
from rulebot.http import MaybeSentError, Response, Secrets, header_number, http_date
from rulebot.library.item import ARCHIVED, EARLIEST, LATEST, UNREAD, Item
from rulebot.sources.client import (
    Gone,
    ServiceClient,
    ServiceError,
    Settings,
    checked_page_size,
    checked_token,
    path_segment,
)
from rulebot.sources.fields import flag, kind, seconds, show, text, whole
from rulebot.sources.paging import Bounds

logger = logging.getLogger("rulebot.readeck")

TOKEN_ENV = "READECK_TOKEN"
API_PATH = "/api"
MAX_PAGE_SIZE = 100  # GetPageParams: Lte(100); above it the server answers 404
TOKEN_HELP = "create one in Readeck under Profile -> API tokens"
# base58 uids; the route accepts 18-22 alphanumerics: anything else is not an id
# whole-string only (fullmatch): `$` would take "id\n" and send it as id%0A
_ID = re.compile(r"[A-Za-z0-9]{1,64}")


class ReadeckError(ServiceError):
    """Readeck failed, or answered something rulebot cannot use."""


class ReadeckAuthError(ReadeckError, CredentialsError):
    """401 (the token is missing, wrong, expired or disabled) or 403 (a token role is missing)."""


class NotFound(ReadeckError, Gone):
    """404 on an item or label action: it is gone, so the action is moot."""


@dataclass(frozen=True)
class Change:
    """One entry of the change feed."""

    bookmark_id: str
    time: datetime
    deleted: bool


@dataclass(frozen=True)
class Created:
    """What ``POST /bookmarks`` answered (202): the new bookmark's id."""

    bookmark_id: str


class ReadeckClient(ServiceClient):
    """One Readeck instance. ``base_url`` is the instance root (``/api`` is appended)."""

    service, config, api_path = "Readeck", "readeck", API_PATH
    error, not_found = ReadeckError, NotFound

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
            error=ReadeckAuthError,
            needs="Readeck needs an API token",
            hint=TOKEN_HELP,
        )
        checked_page_size(
            page_size,
            MAX_PAGE_SIZE,
            error=ReadeckError,
            config="readeck",
            answers="Readeck answers 1 to {most} bookmarks per page (and 404 above that)",
        )
        self.token_env = token_env
        # the server's clock (its Date header, unix seconds) when the first list
        # page since it was reset, or the last change feed, answered
        self.server_time: int | None = None
        super().__init__(
            base_url,
            secrets=Secrets([self._token]),
            page_size=page_size,
            **settings,
        )

    # -- reading ---------------------------------------------------------------------
    def iter_bookmarks(
        self, ids: Sequence[str] | None = None, *, bounds: Bounds | None = None
    ) -> Iterator[dict[str, Any]]:
        """Every bookmark (or only ``ids``), one ``GET /bookmarks`` per page.

        Offset paging until ``Total-Count``; a bookmark seen twice (pages shift
        when one is added meanwhile) is yielded once. The listing is stopped
        (``rulebot.sources.paging``) past the announced count, past ``bounds``, or at a
        page with nothing new. ``ids`` are asked for in chunks of
        ``page_size``, each one request."""
        if ids is not None:
            for start in range(0, len(ids), self.page_size):
                chunk = list(ids[start : start + self.page_size])
                yield from self._pages({"id": chunk}, len(chunk), None)
            return
        yield from self._pages({}, None, bounds)

    def _pages(
        self, extra: Mapping[str, Any], expected: int | None, bounds: Bounds | None
    ) -> Iterator[dict[str, Any]]:
        listing = self.listing("GET /bookmarks", "bookmarks", bounds)
        offset = 0
        while True:
            params = {"limit": str(self.page_size), "offset": str(offset), **extra}
            response = self.call("GET", "/bookmarks", params=params)
            page = response.data
            if not isinstance(page, list):
                raise ReadeckError(
                    f"GET /bookmarks: {self.origin} answered {kind(page)}, "
                    "expected a list of bookmarks"
                )
            total = header_number(response.headers, "Total-Count", 12)
            if self.server_time is None:
                self.server_time = self._server_date(response)
            ids = [_listed_id(raw) for raw in page]
            if expected is None and page:  # past the end, Readeck answers []
                listing.announce(total)
                # the last page may hold only repeats: bookmarks shifted by one added meanwhile
                last = total is None or offset + self.page_size >= total
                listing.page(ids, repeat_ends=last)
            yield from listing.once(page, ids)
            offset += self.page_size
            if expected is not None or not page or total is None or offset >= total:
                return

    def changes(self, since: int) -> list[Change]:
        """The change feed since ``since`` (unix seconds, inclusive): one request."""
        stamp = datetime.fromtimestamp(since, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        response = self.call("GET", "/bookmarks/sync", params={"since": stamp})
        self.server_time = self._server_date(response)
        answer = response.data
        if not isinstance(answer, list):
            raise ReadeckError(
                f"GET /bookmarks/sync: {self.origin} answered {kind(answer)}, "
                "expected a list of changes"
            )
        changes = []
        for entry in answer:
            try:
                change = _change(entry)
            except ItemDataError as err:
                # its own fetch would refuse the bookmark, and its time must not
                # become the cursor: reported and skipped
                logger.warning("skipped a change rulebot cannot read: %s", err)
                continue
            if change is None:
                raise ReadeckError(
                    f"GET /bookmarks/sync: {self.origin} answered a change rulebot cannot read "
                    f"({kind(entry)}); run `rulebot sync --full`"
                )
            changes.append(change)
        return changes

    # -- writing ---------------------------------------------------------------------
    def update_bookmark(self, bookmark_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """One PATCH; answers the changed fields (``labels`` as the server now spells them)."""
        path = f"/bookmarks/{path_segment(bookmark_id)}"
        return self.object(
            self.call("PATCH", path, json=dict(body), item=True).data, f"PATCH {path}"
        )

    def delete_bookmark(self, bookmark_id: str) -> None:
        """Immediate hard delete (204). A bookmark already gone raises ``NotFound``."""
        path = f"/bookmarks/{path_segment(bookmark_id)}"
        self.call("DELETE", path, item=True, expect_json=False)

    def create_bookmark(self, url: str, title: str | None, labels: Sequence[str]) -> Created:
        """202 with ``Bookmark-Id``. Readeck never detects a duplicate URL, so
        the POST is not idempotent: when its answer is lost (a dropped
        connection, a timeout, a 5xx), it is sent again only after the newest
        bookmarks (one list request) show no bookmark with this URL."""
        body: dict[str, Any] = {"url": url}
        if title:
            body["title"] = title
        if labels:
            body["labels"] = list(labels)
        problems: list[str] = []
        while True:
            try:
                response = self.call(
                    "POST", "/bookmarks", json=body, expect_json=False, idempotent=False
                )
                break
            except MaybeSentError as lost:
                problems.append(lost.problem)
                self._http().pause(len(problems), "POST /bookmarks", lost.problem)  # let it settle
                landed = self._newest_with_url(url)
                if landed is not None:
                    logger.info("POST /bookmarks: the answer was lost, but %s landed", landed)
                    return Created(landed)
                if lost.timed_out:
                    # a request past the timeout may still be on its way and land after
                    # any check: sent again now, it could be saved twice
                    raise ReadeckError(
                        f"POST /bookmarks: {lost.problem}, and no bookmark with this URL has "
                        f"appeared on {self.origin} yet; not sent again in this run, so it is "
                        "never saved twice: the next run sends it if it did not land"
                    ) from None
                if len(problems) > self.max_retries:
                    raise ReadeckError(
                        f"POST /bookmarks: {lost.problem} {len(problems)} times, and no "
                        f"bookmark with this URL appeared on {self.origin}; giving up"
                    ) from None
        bookmark_id = response.headers.get("Bookmark-Id", "")
        if not _ID.fullmatch(bookmark_id):
            location = response.headers.get("Location", "")
            bookmark_id = location.rstrip("/").rsplit("/", 1)[-1]
        if not _ID.fullmatch(bookmark_id):
            raise ReadeckError("POST /bookmarks: the answer names no Bookmark-Id")
        return Created(bookmark_id)

    def _newest_with_url(self, url: str) -> str | None:
        """The id of a bookmark of ``url`` among the newest ``page_size`` (the
        list's default order is ``created`` descending, and a bookmark just
        created is the newest), compared as Readeck stores a URL."""
        stored = _stored_url(url)
        response = self.call("GET", "/bookmarks", params={"limit": str(self.page_size)})
        page = response.data if isinstance(response.data, list) else []
        for raw in page:
            if isinstance(raw, Mapping) and _stored_url(raw.get("url")) == stored:
                return _listed_id(raw)
        return None

    def rename_label(self, old: str, new: str) -> None:
        """Rename in every bookmark (merging onto ``new`` where it exists)."""
        self.call(
            "PATCH",
            "/bookmarks/labels",
            params={"name": old},
            json={"name": new},
            item=True,
            label="PATCH /bookmarks/labels",
        )

    def delete_label(self, name: str) -> None:
        self.call(
            "DELETE",
            "/bookmarks/labels",
            params={"name": name},
            item=True,
            expect_json=False,
            label="DELETE /bookmarks/labels",
        )

    def label_names(self) -> list[str]:
        answer = self.call("GET", "/bookmarks/labels").data
        if not isinstance(answer, list):
            raise ReadeckError("GET /bookmarks/labels: the answer is not a list of labels")
        return [
            str(label["name"])
            for label in answer
            if isinstance(label, Mapping) and isinstance(label.get("name"), str)
        ]

    def profile(self) -> dict[str, Any]:
        """The token's user: a cheap credentials check."""
        answer = self.call("GET", "/profile").data
        return answer if isinstance(answer, dict) else {}

    # -- plumbing --------------------------------------------------------------------
    def _server_date(self, response: Response) -> int | None:
        """The answer's ``Date`` (a warning when there is one rulebot cannot read)."""
        value = response.headers.get("Date")
        stamp = http_date(value)
        if stamp is None and value:
            logger.warning(
                "%s: Readeck's Date header %r is not a date; the sync cursor comes from "
                "the changes it listed instead",
                response.path,
                self._http().clean(value, 60),
            )
        return stamp

    # -- what is Readeck's own ---------------------------------------------------------
    def token(self) -> str:
        return self._token

    def reason(self, response: Response) -> str:
        """``{"status","message"}``, a form's field errors, or the text."""
        answer_text = response.text.strip()
        if answer_text.startswith("{"):
            try:
                answer = json.loads(answer_text)
                if "message" in answer:
                    answer_text = str(answer["message"])
                elif isinstance(answer.get("fields"), dict):
                    answer_text = (
                        "; ".join(
                            f"{name}: {', '.join(map(str, field['errors']))}"
                            for name, field in answer["fields"].items()
                            if isinstance(field, dict) and field.get("errors")
                        )
                        or "invalid input"
                    )
            except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
                pass
        return answer_text

    def refused(
        self, response: Response, label: str, detail: str, *, item: bool
    ) -> ReadeckError | None:
        if response.status == 401:
            return ReadeckAuthError(
                f"{label}: Readeck at {self.origin} refused the token in {self.token_env} "
                f"(401 {detail or 'Unauthorized'}); check that it is complete, enabled and not "
                f"expired ({TOKEN_HELP})",
                status=401,
                detail=detail,
            )
        if response.status == 403:
            return ReadeckAuthError(
                f"{label}: the token in {self.token_env} may not do this (403 {detail}); give it "
                "the bookmarks:read and bookmarks:write roles, or none (full access)",
                status=403,
                detail=detail,
            )
        return None


# -- from a bookmark to an Item -----------------------------------------------------------


def bookmark_to_item(raw: Any) -> Item:
    """One bookmark as rulebot sees it.

    ``is_archived`` -> status, ``is_marked`` -> favorite, ``labels`` -> tags
    (the server's spelling), ``created``/``updated`` -> ``time_added``/
    ``time_updated``, ``word_count``, ``reading_time`` -> ``time_to_read``,
    ``lang``, ``type`` (article/photo/video) -> is_article/has_image/has_video;
    ``site`` and the exact ``updated`` are kept in ``extra``. Readeck omits
    ``word_count``/``reading_time`` when 0 or unknown: absent is unknown.
    A malformed bookmark (a field of the wrong type, a number past 2^63-1, a
    time outside 1900-2999) is an ``ItemDataError`` naming it and the field.
    """
    if not isinstance(raw, Mapping):
        raise ItemDataError(f"Readeck bookmark is {kind(raw)}, expected an object")
    bookmark_id = raw.get("id")
    if not isinstance(bookmark_id, str) or not _ID.fullmatch(bookmark_id):
        raise ItemDataError(f"Readeck bookmark has id {show(bookmark_id)}, expected an id string")
    where = f"Readeck bookmark {bookmark_id}"
    shape = raw.get("type")
    if shape not in ("article", "photo", "video", None):
        raise ItemDataError(f"{where}: field 'type' is {show(shape)}, expected article/photo/video")
    updated = text(raw.get("updated"), where, "updated")
    site = raw.get("site")
    extra = {"updated": updated}
    if isinstance(site, str) and site:
        extra["site"] = site
    title = text(raw.get("title"), where, "title", optional=True)
    lang = text(raw.get("lang"), where, "lang", optional=True)
    return Item(
        item_id=bookmark_id,
        given_url=text(raw.get("url"), where, "url"),
        given_title=title,
        resolved_title=title,
        status=ARCHIVED if flag(raw.get("is_archived"), where, "is_archived") else UNREAD,
        favorite=flag(raw.get("is_marked"), where, "is_marked"),
        tags=_labels(raw.get("labels"), where),
        time_added=_time(raw.get("created"), where, "created"),
        time_updated=_time(updated, where, "updated"),
        time_read=None,
        time_favorited=None,
        word_count=whole(raw.get("word_count"), where, "word_count"),
        time_to_read=whole(raw.get("reading_time"), where, "reading_time"),
        lang=lang or None,
        is_article=None if shape is None else shape == "article",
        has_image=None if shape is None else (2 if shape == "photo" else 0),
        has_video=None if shape is None else (2 if shape == "video" else 0),
        extra=extra,
    )


def is_scheduled_for_deletion(raw: Any) -> bool:
    """``is_deleted``: a deletion the web UI scheduled (20 s): not in the library."""
    return isinstance(raw, Mapping) and raw.get("is_deleted") is True


def parse_time(value: Any) -> datetime | None:
    """An RFC 3339 time (any fraction length, Go writes up to nanoseconds) in UTC."""
    if not isinstance(value, str) or len(value) > 40:
        return None
    text = value.strip()
    match = re.fullmatch(
        r"(.*T[0-9]{2}:[0-9]{2}:[0-9]{2})(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})", text
    )
    if match is None:
        return None
    head, fraction, zone = match.groups()
    micro = (fraction or ".0")[1:7].ljust(6, "0")
    try:
        parsed = datetime.fromisoformat(f"{head}.{micro}{'+00:00' if zone == 'Z' else zone}")
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError):  # year 10000, or past year 9999 once in UTC
        return None


def _stored_url(url: Any) -> str | None:
    """A URL as Readeck stores it on create: trimmed, without its fragment."""
    return url.strip().split("#", 1)[0] if isinstance(url, str) else None


def _listed_id(raw: Any) -> str | None:
    """A listed bookmark's id when it is one rulebot can read (paging progress)."""
    bookmark_id = raw.get("id") if isinstance(raw, Mapping) else None
    return bookmark_id if isinstance(bookmark_id, str) and _ID.fullmatch(bookmark_id) else None


def _change(entry: Any) -> Change | None:
    """One feed entry; None when unreadable. A readable one whose time is no
    time (outside 1900-2999: Readeck's `updated` of a garbled bookmark) is an
    ``ItemDataError``."""
    if not isinstance(entry, Mapping):
        return None
    bookmark_id, change, when = entry.get("id"), entry.get("type"), parse_time(entry.get("time"))
    if not isinstance(bookmark_id, str) or not _ID.fullmatch(bookmark_id):
        return None
    if change not in ("update", "delete"):
        return None
    if when is None or not EARLIEST <= when.timestamp() < LATEST:
        raise ItemDataError(
            f"Readeck bookmark {bookmark_id} changed at {show(entry.get('time'))}, "
            "not a time between the years 1900 and 3000"
        )
    return Change(bookmark_id, when, change == "delete")


def _labels(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
        raise ItemDataError(f"{where}: field 'labels' is {kind(value)}, expected a list of text")
    return tuple(sorted(dict.fromkeys(t for t in value if t), key=str.casefold))


def _time(value: Any, where: str, name: str) -> int:
    return seconds(parse_time(value), value, where, name, "an RFC 3339 time")
