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
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from rulebot import __version__
from rulebot.errors import CredentialsError, ItemDataError, RateLimited, RulebotError
from rulebot.http import HttpClient, RateBudget, Response, clip
from rulebot.library.item import ARCHIVED, UNREAD, Item, checked_time
from rulebot.sources.paging import Bounds, Listing

API_KEY_ENV = "KARAKEEP_API_KEY"
API_PATH = "/api/v1"
MAX_PAGE_SIZE = 100  # the server's MAX_NUM_BOOKMARKS_PER_PAGE
KEY_HELP = "create one in Karakeep under Settings -> API Keys"
_RATE_TEXT = re.compile(r"try again in (\d{1,6}) seconds?", re.IGNORECASE)
# cuid2 ids are lower-case alphanumerics; allow a little more, never "/", "?" or spaces
# whole-string only (fullmatch): `$` would take "bm3\n" and send it as bm3%0A
_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


class KarakeepError(RulebotError):
    """Karakeep failed, or answered something rulebot cannot use.

    ``status`` is the HTTP status when there was an answer; ``detail`` the
    server's own text (secrets masked, clipped)."""

    def __init__(self, message: str, *, status: int | None = None, detail: str = "") -> None:
        super().__init__(message)
        self.status, self.detail = status, detail


class KarakeepAuthError(KarakeepError, CredentialsError):
    """401 (the key is missing, wrong or revoked) or 403 for a missing key scope."""


class KarakeepRateLimitError(KarakeepError, RateLimited):
    """Still rate limited after the allowed waits: the run stops."""


class NotFound(KarakeepError):
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


class KarakeepClient:
    """One Karakeep instance. ``base_url`` is the instance root (``/api/v1`` is appended)."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        *,
        page_size: int = MAX_PAGE_SIZE,
        timeout: float = 30.0,
        total_timeout: float | None = None,
        max_retries: int = 5,
        backoff_base: float = 0.5,
        max_wait: float = 900.0,
        api_key_env: str = API_KEY_ENV,
        on_wait: Callable[[str], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
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
        self.base_url = _instance_root(base_url)
        self.page_size = page_size
        self.api_key_env = api_key_env
        self._api_key = api_key
        self._settings: dict[str, Any] = {
            "timeout": timeout,
            "total_timeout": total_timeout,
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

    def __repr__(self) -> str:  # never the key
        return f"KarakeepClient({self.base_url!r})"

    def __enter__(self) -> KarakeepClient:
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
        for name, flag in (("archived", archived), ("favourited", favourited)):
            if flag is not None:
                params[name] = "true" if flag else "false"
        listing = Listing(
            "GET /bookmarks",
            "bookmarks",
            origin=self.origin,
            page_size=self.page_size,
            bounds=bounds,
            error=KarakeepError,
        )
        yielded: set[str] = set()
        cursors: set[str] = set()
        cursor: str | None = None
        while True:
            page = self._call("GET", "/bookmarks", params={**params, **_cursor(cursor)})
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
            for raw, bookmark_id in zip(bookmarks, ids, strict=True):
                if bookmark_id is not None:
                    if bookmark_id in yielded:
                        continue
                    yielded.add(bookmark_id)
                yield raw
            if cursor is None:
                return
            cursors.add(cursor)

    def get_bookmark(self, bookmark_id: str) -> dict[str, Any]:
        answer = self._call("GET", f"/bookmarks/{_path_id(bookmark_id)}", item=True)
        return _object(answer, f"GET /bookmarks/{bookmark_id}")

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
        path = f"/bookmarks/{_path_id(bookmark_id)}"
        return _object(self._call("PATCH", path, json=body, item=True), f"PATCH {path}")

    def delete_bookmark(self, bookmark_id: str) -> None:
        """A hard delete (204). A bookmark already gone raises ``NotFound``."""
        self._call("DELETE", f"/bookmarks/{_path_id(bookmark_id)}", item=True, expect_json=False)

    def create_link(self, url: str, title: str | None = None) -> Created:
        """POST a link bookmark. Beware: re-posting a URL the server already has
        *un-archives* that bookmark (``Created.already_existed``)."""
        body: dict[str, Any] = {"type": "link", "url": url}
        if title:
            body["title"] = title
        answer = self._call("POST", "/bookmarks", json=body)
        bookmark = _object(answer, "POST /bookmarks")
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
        answer = _object(self._call("GET", "/tags"), "GET /tags")
        tags = answer.get("tags")
        if not isinstance(tags, list) or not all(_is_tag(t) for t in tags):
            raise KarakeepError(f"GET /tags: {self.origin} answered a tag list rulebot cannot read")
        return tags

    def rename_tag(self, tag_id: str, new_name: str) -> dict[str, Any]:
        """Rename; onto a name that exists raises ``TagNameConflict`` (no merge)."""
        path = f"/tags/{_path_id(tag_id)}"
        try:
            answer = self._call("PATCH", path, json={"name": new_name}, item=True)
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
        return _object(answer, f"PATCH {path}")

    def delete_tag(self, tag_id: str) -> None:
        """Delete a tag everywhere (204). A tag already gone raises ``NotFound``."""
        self._call("DELETE", f"/tags/{_path_id(tag_id)}", item=True, expect_json=False)

    def me(self) -> dict[str, Any]:
        """The key's user: a cheap credentials check."""
        return _object(self._call("GET", "/users/me"), "GET /users/me")

    # -- plumbing ----------------------------------------------------------------------------
    def _http(self) -> HttpClient:
        """This thread's connection (an ``HttpClient`` keeps per-attempt state)."""
        client: HttpClient | None = getattr(self._local, "client", None)
        if client is None:
            client = HttpClient(
                self.base_url,
                **self._settings,
                user_agent=f"rulebot/{__version__}",
                secrets=[self._api_key],
                rate_limited=_rate_wait,
                error=KarakeepError,
                rate_error=KarakeepRateLimitError,
                service="a Karakeep server",
                config_key="karakeep.base_url",
            )
            self._local.client = client
            with self._clients_lock:
                self._clients.append(client)
        return client

    def _tags(self, method: str, bookmark_id: str, names: Iterable[str], key: str) -> list[str]:
        entries = [{"tagName": name, "attachedBy": "human"} for name in names]
        path = f"/bookmarks/{_path_id(bookmark_id)}/tags"
        answer = _object(self._call(method, path, json={"tags": entries}, item=True), path)
        ids = answer.get(key)
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise KarakeepError(f"{method} {path}: the answer has no list of tag ids in {key!r}")
        return ids

    def _call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        item: bool = False,
        expect_json: bool = True,
    ) -> Any:
        """One API call; a non-2xx answer becomes the matching ``KarakeepError``.

        ``item``: the path names one bookmark or tag, so a 404 is ``NotFound``
        (moot); elsewhere a 404 means the base URL is not a Karakeep API."""
        label = f"{method} {path}"
        http = self._http()
        response = http.request(
            method,
            API_PATH + path,
            json=json,
            params=params,
            headers={"Authorization": f"Bearer {self._api_key}", "Accept": "application/json"},
            expect_json=expect_json,
            label=label,
        )
        if 200 <= response.status < 300:
            return response.data
        detail = _error_text(response, http)
        if response.status == 401:
            raise KarakeepAuthError(
                f"{label}: Karakeep at {self.origin} refused the API key in {self.api_key_env} "
                f"(401 {detail or 'Unauthorized'}); check that it is complete and not revoked "
                f"({KEY_HELP})",
                status=401,
                detail=detail,
            )
        if response.status == 403 and "scope" in detail.lower():
            raise KarakeepAuthError(
                f"{label}: the API key in {self.api_key_env} lacks a permission ({detail}); "
                f"{KEY_HELP} with full access",
                status=403,
                detail=detail,
            )
        if response.status == 404 and item:
            raise NotFound(
                f"{label}: not found on {self.origin} ({detail})", status=404, detail=detail
            )
        if response.status == 404:
            raise KarakeepError(
                f"{label}: {self.origin} answered 404 ({detail}); is karakeep.base_url the root "
                "of a Karakeep instance (the address you open in a browser)?",
                status=404,
                detail=detail,
            )
        raise KarakeepError(
            f"{label}: Karakeep refused it ({response.status} {detail or 'without a reason'})",
            status=response.status,
            detail=detail,
        )


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
        raise ItemDataError(f"Karakeep bookmark is {_kind(raw)}, expected an object")
    bookmark_id = raw.get("id")
    if not isinstance(bookmark_id, str) or not _ID.fullmatch(bookmark_id):
        raise ItemDataError(f"Karakeep bookmark has id {_show(bookmark_id)}, expected an id string")
    where = f"Karakeep bookmark {bookmark_id}"
    content = raw.get("content")
    if not isinstance(content, Mapping):
        raise ItemDataError(f"{where}: field 'content' is {_kind(content)}, expected an object")
    url = content.get("url") if content.get("type") == "link" else content.get("sourceUrl")
    title = _opt_str(raw.get("title"), where, "title")
    crawled = _opt_str(content.get("title"), where, "content.title")
    return Item(
        item_id=bookmark_id,
        given_url=_opt_str(url, where, "content.url") or "",
        given_title=title or "",
        resolved_title=title or crawled or "",  # Karakeep shows the user's title first
        status=ARCHIVED if _flag(raw.get("archived"), where, "archived") else UNREAD,
        favorite=_flag(raw.get("favourited"), where, "favourited"),
        tags=_tag_names(raw.get("tags"), where),
        time_added=_seconds(raw.get("createdAt"), where, "createdAt"),
        time_updated=_seconds(raw.get("modifiedAt"), where, "modifiedAt", nullable=True),
        time_read=None,
        time_favorited=None,
        word_count=None,
        time_to_read=None,
        lang=None,
        is_article=None,
        has_image=None,
        has_video=None,
    )


def _flag(value: Any, where: str, name: str) -> bool:
    if not isinstance(value, bool):
        raise ItemDataError(f"{where}: field {name!r} is {_show(value)}, expected true or false")
    return value


def _opt_str(value: Any, where: str, name: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise ItemDataError(f"{where}: field {name!r} is {_kind(value)}, expected text")


def _tag_names(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise ItemDataError(f"{where}: field 'tags' is {_kind(value)}, expected a list")
    names = []
    for tag in value:
        name = tag.get("name") if isinstance(tag, Mapping) else None
        if not isinstance(name, str) or not name:
            raise ItemDataError(f"{where}: field 'tags' holds {_show(tag)}, expected {{name: ...}}")
        names.append(name)
    return tuple(sorted(dict.fromkeys(names), key=str.casefold))


def _seconds(value: Any, where: str, name: str, *, nullable: bool = False) -> int | None:
    """An ISO-8601 timestamp (``2026-11-26T06:00:00.000Z``) as unix seconds."""
    if value is None and nullable:
        return None
    parsed = None
    if isinstance(value, str) and len(value) <= 40:
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            parsed = None
    if parsed is None:
        raise ItemDataError(
            f"{where}: field {name!r} is {_show(value)}, expected an ISO-8601 date and time"
        )
    if parsed.tzinfo is None:  # the server always says Z; read a bare time as UTC
        parsed = parsed.replace(tzinfo=UTC)
    try:
        seconds = int(parsed.timestamp() // 1)
    except (OverflowError, ValueError):
        seconds = -(2**63)  # out of any range: refused below
    return checked_time(seconds, where, name)


def _show(value: Any) -> str:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return clip(json.dumps(value), 60)
    return _kind(value)


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", type(None): "null"}.get(
        type(value), f"a {type(value).__name__}"
    )


# -- helpers --------------------------------------------------------------------------------


def _instance_root(base_url: str) -> str:
    """The instance root; a pasted ``…/api/v1`` (or ``…/api``) is forgiven."""
    root = base_url.strip().rstrip("/")
    for suffix in (API_PATH, "/api"):
        if root.endswith(suffix):
            return root[: -len(suffix)]
    return root


def _path_id(value: str) -> str:
    """An id is one path segment: anything else is quoted so it cannot change the route."""
    return quote(str(value), safe="")


def _cursor(cursor: str | None) -> dict[str, str]:
    return {"cursor": cursor} if cursor is not None else {}


def _page(answer: Any, label: str) -> tuple[list[Any], str | None]:
    if not isinstance(answer, Mapping) or not isinstance(answer.get("bookmarks"), list):
        raise KarakeepError(f"{label}: the answer is not a page of bookmarks")
    cursor = answer.get("nextCursor")
    if cursor is not None and (not isinstance(cursor, str) or not cursor):
        raise KarakeepError(f"{label}: the page's nextCursor is {_kind(cursor)}")
    return answer["bookmarks"], cursor


def _listed_id(raw: Any) -> str | None:
    """A listed bookmark's id when it is one rulebot can read (paging progress)."""
    bookmark_id = raw.get("id") if isinstance(raw, Mapping) else None
    return bookmark_id if isinstance(bookmark_id, str) and _ID.match(bookmark_id) else None


def _object(answer: Any, label: str) -> dict[str, Any]:
    if not isinstance(answer, dict):
        raise KarakeepError(f"{label}: the answer is {_kind(answer)}, expected an object")
    return answer


def _is_tag(tag: Any) -> bool:
    return (
        isinstance(tag, Mapping)
        and isinstance(tag.get("id"), str)
        and _ID.fullmatch(tag["id"]) is not None
        and isinstance(tag.get("name"), str)
    )


def _error_text(response: Response, http: HttpClient) -> str:
    """The server's reason, read as text: plain-text messages, or a zod JSON 400."""
    text = response.text.strip()
    if text.startswith("{"):
        try:
            answer = json.loads(text)
            issues = json.loads(answer["error"]["message"])
            text = "; ".join(
                f"{'.'.join(str(p) for p in issue.get('path', [])) or 'body'}: {issue['message']}"
                for issue in issues
            )
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
            pass  # not zod's shape: show the text as it came
    return http.clean(text, 160)


def _rate_wait(response: Response) -> float | None:
    """A 429's wait from its text ("Try again in N seconds"); None: back off."""
    if response.status != 429:
        return None
    match = _RATE_TEXT.search(response.text[:500])
    return float(match.group(1)) if match else None
