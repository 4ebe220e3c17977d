"""The Karakeep REST API v1 client, and how a bookmark becomes an ``Item``.

Facts from ``specs/karakeep.md`` that shape it:

- the API lives under ``/api/v1`` of the instance root; the key travels only
  in ``Authorization: Bearer`` (never in a URL or a log line);
- business errors (404 ``Bookmark not found``, a 400 on renaming a tag onto
  an existing name, 403 scope errors) are plain text, not JSON; schema 400s
  are zod JSON: both are read as text for the message;
- 429 carries no ``Retry-After``: the wait is read from the message's
  "Try again in N seconds" when present, else exponential backoff (capped,
  in ``rulebot.http``); 5xx, timeouts and dropped connections are retried;
  401 is a credentials error naming ``KARAKEEP_API_KEY`` and never retried;
- the bookmark list is keyset-paged (``limit`` at most 100) and newest first:
  ``nextCursor: null`` is the only end signal, a short page is not.

One ``KarakeepClient`` may be shared by worker threads: each thread gets its
own connection (``rulebot.http.HttpClient`` keeps a per-attempt deadline).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC
from typing import Any, Unpack

from rulebot.errors import CredentialsError, ItemDataError, RateLimited
from rulebot.http import Response, Secrets, clip
from rulebot.library.item import ARCHIVED, UNREAD, Item
from rulebot.sources.client import Gone, ServiceClient, ServiceError, Settings, path_segment
from rulebot.sources.fields import flag, iso_time, kind, named_tags, optional_text, seconds, show
from rulebot.sources.paging import Bounds

API_KEY_ENV = "KARAKEEP_API_KEY"
API_PATH = "/api/v1"
MAX_PAGE_SIZE = 100  # the server's MAX_NUM_BOOKMARKS_PER_PAGE
KEY_HELP = "create one in Karakeep under Settings -> API Keys"
_RATE_TEXT = re.compile(r"try again in (\d{1,6}) seconds?", re.IGNORECASE)
# cuid2 ids are lower-case alphanumerics; allow a little more, never "/", "?" or spaces
# whole-string only (fullmatch): `$` would take "bm3\n" and send it as bm3%0A
_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


class KarakeepError(ServiceError):
    """Karakeep failed, or answered something rulebot cannot use."""


class KarakeepAuthError(KarakeepError, CredentialsError):
    """401 (the key is missing, wrong or revoked) or 403 for a missing key scope."""


class KarakeepRateLimitError(KarakeepError, RateLimited):
    """Still rate limited after the allowed waits: the run stops."""


class NotFound(KarakeepError, Gone):
    """404 on an item action: the bookmark (or tag) is gone, so the action is moot."""


class TagNameConflict(KarakeepError):
    """A tag rename onto a name that already exists (Karakeep has no merge in REST v1)."""


@dataclass(frozen=True)
class Created:
    """What ``POST /bookmarks`` answered: the bookmark, and whether it was already there.

    ``already_existed`` True means the server *re-saved* an existing bookmark:
    on current versions that un-archived it and moved it to the top."""

    bookmark: dict[str, Any]
    already_existed: bool


class KarakeepClient(ServiceClient):
    """One Karakeep instance. ``base_url`` is the instance root (``/api/v1`` is appended)."""

    service, config, api_path, pasted = "Karakeep", "karakeep", API_PATH, ("/api",)
    error, not_found, rate_error = KarakeepError, NotFound, KarakeepRateLimitError

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        *,
        page_size: int = MAX_PAGE_SIZE,
        api_key_env: str = API_KEY_ENV,
        **settings: Unpack[Settings],
    ) -> None:
        if not api_key:
            raise KarakeepAuthError(
                f"Karakeep needs an API key in the environment variable {api_key_env}; {KEY_HELP}"
            )
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise KarakeepError(
                f"karakeep page_size is {page_size}; Karakeep answers 1 to {MAX_PAGE_SIZE} "
                "bookmarks per page"
            )
        self.api_key_env = api_key_env
        self._api_key = api_key
        super().__init__(
            base_url,
            secrets=Secrets([api_key]),
            page_size=page_size,
            **settings,
        )

    # -- bookmarks ------------------------------------------------------------------
    def iter_bookmarks(
        self,
        *,
        archived: bool | None = None,
        favourited: bool | None = None,
        bounds: Bounds | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Every bookmark (raw dicts, newest first), one ``GET /bookmarks`` per page.

        Newest first on purpose: released servers mis-order ties within a
        second in ascending scans (karakeep.md §5). A bookmark re-saved during
        the scan can still be missed; a bookmark seen twice is yielded once.
        Karakeep announces no count: ``bounds`` (what the mirror holds, the
        config's ``max_items``) and progress end a scan that would not end.
        """
        params: dict[str, str] = {"limit": str(self.page_size), "includeContent": "false"}
        for name, value in (("archived", archived), ("favourited", favourited)):
            if value is not None:
                params[name] = "true" if value else "false"
        listing = self.listing("GET /bookmarks", "bookmarks", bounds)
        cursors: set[str] = set()
        cursor: str | None = None
        while True:
            page = self.call("GET", "/bookmarks", params={**params, **_cursor(cursor)}).data
            bookmarks, cursor = _page(page, "GET /bookmarks")
            ids = [_listed_id(raw) for raw in bookmarks]
            listing.page(ids, repeat_ends=cursor is None)  # the last page may repeat
            if cursor is not None and cursor in cursors:
                raise KarakeepError(
                    f"GET /bookmarks: {self.origin} sent the cursor "
                    f"{self._http().clean(cursor, 60)} a second time; a listing that goes in "
                    f"circles would never end: stopped the sync after {listing.count:,} "
                    "bookmarks, nothing was stored"
                )
            yield from listing.once(bookmarks, ids)
            if cursor is None:
                return
            cursors.add(cursor)

    def get_bookmark(self, bookmark_id: str) -> dict[str, Any]:
        answer = self.call("GET", f"/bookmarks/{path_segment(bookmark_id)}", item=True).data
        return self.object(answer, f"GET /bookmarks/{bookmark_id}")

    def update_bookmark(
        self,
        bookmark_id: str,
        *,
        archived: bool | None = None,
        favourited: bool | None = None,
    ) -> dict[str, Any]:
        """PATCH ``archived``/``favourited``; answers the full bookmark after the change."""
        body = {
            key: value
            for key, value in (("archived", archived), ("favourited", favourited))
            if value is not None
        }
        path = f"/bookmarks/{path_segment(bookmark_id)}"
        return self.object(self.call("PATCH", path, json=body, item=True).data, f"PATCH {path}")

    def delete_bookmark(self, bookmark_id: str) -> None:
        """A hard delete (204). A bookmark already gone raises ``NotFound``."""
        path = f"/bookmarks/{path_segment(bookmark_id)}"
        self.call("DELETE", path, item=True, expect_json=False)

    def create_link(self, url: str, title: str | None = None) -> Created:
        """POST a link bookmark. Beware: re-posting a URL the server already has
        *un-archives* that bookmark (``Created.already_existed``)."""
        body: dict[str, Any] = {"type": "link", "url": url}
        if title:
            body["title"] = title
        bookmark = self.object(self.call("POST", "/bookmarks", json=body).data, "POST /bookmarks")
        return Created(bookmark, bookmark.get("alreadyExists") is True)

    def attach_tags(self, bookmark_id: str, names: Iterable[str]) -> list[str]:
        """Attach tags by name (an unknown name creates the tag); the resolved tag ids."""
        return self._tags("POST", bookmark_id, names, "attached")

    def detach_tags(self, bookmark_id: str, names: Iterable[str]) -> list[str]:
        """Detach tags by their exact (case-sensitive) names; the resolved tag ids."""
        return self._tags("DELETE", bookmark_id, names, "detached")

    # -- tags -----------------------------------------------------------------------------
    def list_tags(self) -> list[dict[str, Any]]:
        """Every tag ``{id, name, numBookmarks, ...}`` (one request: no limit, no paging)."""
        tags = self.object(self.call("GET", "/tags").data, "GET /tags").get("tags")
        if not isinstance(tags, list) or not all(_is_tag(t) for t in tags):
            raise KarakeepError(f"GET /tags: {self.origin} answered a tag list rulebot cannot read")
        return tags

    def rename_tag(self, tag_id: str, new_name: str) -> dict[str, Any]:
        """Rename; onto a name that exists raises ``TagNameConflict`` (no merge)."""
        path = f"/tags/{path_segment(tag_id)}"
        try:
            answer = self.call("PATCH", path, json={"name": new_name}, item=True).data
        except KarakeepError as err:
            if err.status == 400 and "already exists" in err.detail:
                raise TagNameConflict(
                    f"PATCH {path}: Karakeep refused to rename the tag to {clip(new_name, 60)!r}: "
                    f"{err.detail} (Karakeep cannot merge tags through its API; move the "
                    "bookmarks one by one instead)",
                    status=400,
                    detail=err.detail,
                ) from None
            raise
        return self.object(answer, f"PATCH {path}")

    def delete_tag(self, tag_id: str) -> None:
        """Delete a tag everywhere (204). A tag already gone raises ``NotFound``."""
        self.call("DELETE", f"/tags/{path_segment(tag_id)}", item=True, expect_json=False)

    def me(self) -> dict[str, Any]:
        """The key's user: a cheap credentials check."""
        return self.object(self.call("GET", "/users/me").data, "GET /users/me")

    # -- what is Karakeep's own ------------------------------------------------------------
    def token(self) -> str:
        return self._api_key

    def reason(self, response: Response) -> str:
        """Plain-text messages, or a zod JSON 400 as its issues."""
        text = response.text.strip()
        if text.startswith("{"):
            try:
                answer = json.loads(text)
                issues = json.loads(answer["error"]["message"])
                text = "; ".join(
                    f"{'.'.join(str(p) for p in issue.get('path', [])) or 'body'}: "
                    f"{issue['message']}"
                    for issue in issues
                )
            except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
                pass  # not zod's shape: show the text as it came
        return text

    def refused(
        self, response: Response, label: str, detail: str, *, item: bool
    ) -> KarakeepError | None:
        if response.status == 401:
            return KarakeepAuthError(
                f"{label}: Karakeep at {self.origin} refused the API key in {self.api_key_env} "
                f"(401 {detail or 'Unauthorized'}); check that it is complete and not revoked "
                f"({KEY_HELP})",
                status=401,
                detail=detail,
            )
        if response.status == 403 and "scope" in detail.lower():
            return KarakeepAuthError(
                f"{label}: the API key in {self.api_key_env} lacks a permission ({detail}); "
                f"{KEY_HELP} with full access",
                status=403,
                detail=detail,
            )
        return None

    def rate_limited(self, response: Response) -> float | None:
        """A 429's wait from its text ("Try again in N seconds"); None: back off."""
        if response.status != 429:
            return None
        match = _RATE_TEXT.search(response.text[:500])
        return float(match.group(1)) if match else None

    def _tags(self, method: str, bookmark_id: str, names: Iterable[str], key: str) -> list[str]:
        entries = [{"tagName": name, "attachedBy": "human"} for name in names]
        path = f"/bookmarks/{path_segment(bookmark_id)}/tags"
        answer = self.object(self.call(method, path, json={"tags": entries}, item=True).data, path)
        ids = answer.get(key)
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise KarakeepError(f"{method} {path}: the answer has no list of tag ids in {key!r}")
        return ids


# -- from a bookmark to an Item -----------------------------------------------------------


def bookmark_to_item(raw: Any) -> Item:
    """One bookmark as rulebot sees it.

    ``archived`` -> status archived/unread, ``favourited`` -> favorite, tags by
    name, ``createdAt``/``modifiedAt`` -> ``time_added``/``time_updated`` (unix
    seconds), the URL and titles from the link ``content``. What Karakeep does
    not have (read and favourited times, word count, language, ...) stays unknown.
    A bookmark that is not an object, or whose fields have the wrong types or a
    time outside 1900-2999, is an ``ItemDataError`` naming the bookmark and the field.
    """
    if not isinstance(raw, Mapping):
        raise ItemDataError(f"Karakeep bookmark is {kind(raw)}, expected an object")
    bookmark_id = raw.get("id")
    if not isinstance(bookmark_id, str) or not _ID.fullmatch(bookmark_id):
        raise ItemDataError(f"Karakeep bookmark has id {show(bookmark_id)}, expected an id string")
    where = f"Karakeep bookmark {bookmark_id}"
    content = raw.get("content")
    if not isinstance(content, Mapping):
        raise ItemDataError(f"{where}: field 'content' is {kind(content)}, expected an object")
    url = content.get("url") if content.get("type") == "link" else content.get("sourceUrl")
    title = optional_text(raw.get("title"), where, "title")
    crawled = optional_text(content.get("title"), where, "content.title")
    return Item(
        item_id=bookmark_id,
        given_url=optional_text(url, where, "content.url") or "",
        given_title=title or "",
        resolved_title=title or crawled or "",  # Karakeep shows the user's title first
        status=ARCHIVED if flag(raw.get("archived"), where, "archived") else UNREAD,
        favorite=flag(raw.get("favourited"), where, "favourited"),
        tags=named_tags(raw.get("tags"), where, "name"),
        time_added=_time(raw.get("createdAt"), where, "createdAt"),
        time_updated=_time(raw.get("modifiedAt"), where, "modifiedAt", nullable=True),
        time_read=None,
        time_favorited=None,
        word_count=None,
        time_to_read=None,
        lang=None,
        is_article=None,
        has_image=None,
        has_video=None,
    )


def _time(value: Any, where: str, name: str, *, nullable: bool = False) -> int | None:
    """An ISO-8601 timestamp (``2026-11-26T06:00:00.000Z``) as unix seconds."""
    if value is None and nullable:
        return None
    parsed = iso_time(value)
    if parsed is not None and parsed.tzinfo is None:  # the server always says Z: a bare time is UTC
        parsed = parsed.replace(tzinfo=UTC)
    return seconds(parsed, value, where, name, "an ISO-8601 date and time")


# -- helpers --------------------------------------------------------------------------------


def _cursor(cursor: str | None) -> dict[str, str]:
    return {"cursor": cursor} if cursor is not None else {}


def _page(answer: Any, label: str) -> tuple[list[Any], str | None]:
    if not isinstance(answer, Mapping) or not isinstance(answer.get("bookmarks"), list):
        raise KarakeepError(f"{label}: the answer is not a page of bookmarks")
    cursor = answer.get("nextCursor")
    if cursor is not None and (not isinstance(cursor, str) or not cursor):
        raise KarakeepError(f"{label}: the page's nextCursor is {kind(cursor)}")
    return answer["bookmarks"], cursor


def _listed_id(raw: Any) -> str | None:
    """A listed bookmark's id when it is one rulebot can read (paging progress)."""
    bookmark_id = raw.get("id") if isinstance(raw, Mapping) else None
    return bookmark_id if isinstance(bookmark_id, str) and _ID.match(bookmark_id) else None


def _is_tag(tag: Any) -> bool:
    return (
        isinstance(tag, Mapping)
        and isinstance(tag.get("id"), str)
        and _ID.fullmatch(tag["id"]) is not None
        and isinstance(tag.get("name"), str)
    )
