"""A Pocket library and what the API does to it: the items, the order of
their changes and of ``since`` cursors, and the work of ``/v3/get``,
``/v3/send`` and ``/v3/add``.

The server clock (``now``) follows the wall clock until a test sets it, and
changes never move it. A change is stamped with its action's ``time`` (or the
clock); a ``since`` cursor still sees every change made after it was handed
out, even within the same second (the library keeps the order of changes and
cursors), so a sync never misses one.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping
from typing import Any

from rulebot.fake.base import FakeServer
from rulebot.fake.pocket.checks import (
    FAIL_ALONE,
    MALFORMED_MODES,
    ActionFailed,
    GetQuery,
    bad_request,
    check_action,
    parse_tags,
    valid_url,
)
from rulebot.fake.pocket.items import add_shape, lower_keys, new_item, render, set_tags

_NOW = "<now>"  # placeholder in _change: the time of the change


class PocketLibrary(FakeServer):
    """The items of one Pocket user and the endpoints' work on them."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        now: int | None = None,
        max_page: int | None = None,
        over_page: int = 0,
        malformed_actions: str = FAIL_ALONE,
    ) -> None:
        if malformed_actions not in MALFORMED_MODES:
            choices = ", ".join(MALFORMED_MODES)
            raise ValueError(f"malformed_actions={malformed_actions!r}; choose from {choices}")
        super().__init__(host=host, port=port, now=now)
        self.max_page = max_page  # answer at most this many items per /v3/get
        self.over_page = over_page  # answer this many more than `count` asked for
        self.fail_actions: dict[str, tuple[int, str]] = {}  # item_id or url -> (code, message)
        self.malformed_actions = malformed_actions  # FAIL_ALONE or REFUSE_BATCH
        self._items: dict[str, dict[str, Any]] = {}
        self._next_id = 1_000_000_001
        self._applied: list[dict[str, Any]] = []  # every action that ran and succeeded
        self._seq = 0  # order of changes and cursors (the clock has whole seconds only)
        self._changed_at: dict[str, int] = {}  # item_id -> _seq of its last change
        self._cursor_seq: dict[int, int] = {}  # since value -> _seq when last handed out

    # -- changes and cursors -----------------------------------------------------------
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
            item = new_item(item_id, url, title, added)
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
            set_tags(item, list(tags))
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
    def applied(self) -> list[dict[str, Any]]:
        """Every ``/v3/send`` action that ran and succeeded, in order, as sent
        (a refused batch adds nothing): "landed exactly once" is checkable."""
        with self._lock:
            return copy.deepcopy(self._applied)

    # -- /v3/get ---------------------------------------------------------------------
    def _get(self, params: Mapping[str, Any]) -> dict[str, Any]:
        query = GetQuery.parse(params)
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
        if query.sort != "oldest":  # newest; every other accepted sort falls back to it
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
                shown = render(item, query.detail, position)
                listing[item["item_id"]] = self._shown(item["item_id"], shown)
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
                raise bad_request("actions is not a JSON array") from None
        if not isinstance(actions, list):
            raise bad_request("actions must be a JSON array")
        if not actions:
            raise bad_request("actions is empty")
        mode = self.malformed_actions
        checked = [check_action(action, index, mode) for index, action in enumerate(actions)]
        results: list[Any] = []
        errors: list[Any] = []
        for action in checked:  # in order, no rollback
            try:
                if isinstance(action, ActionFailed):  # malformed, failing alone
                    raise action
                results.append(self._run_action(action))
                errors.append(None)
                self._applied.append(action["sent"])
            except ActionFailed as failed:
                results.append(False)
                errors.append(failed.payload)
        return {"status": 1, "action_results": results, "action_errors": errors}

    def _run_action(self, action: dict[str, Any]) -> Any:
        name = action["action"]
        when = self.now if action["time"] is None else action["time"]
        target = action.get("item_id") or action.get("url")
        if target in self.fail_actions:
            raise ActionFailed(*self.fail_actions[target])
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
            raise ActionFailed(422, "Invalid/non-existent item")
        tags = list(item.get("tags", {}))
        if name == "archive":
            self._change(item, when, status="1", time_read=_NOW)
        elif name == "readd":
            self._change(item, when, status="0", time_read="0")
            return add_shape(item)  # the later server answered readd like add
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
        set_tags(item, tags)
        item["time_updated"] = str(when)
        self._mark_changed(item)

    def _rename_tag(self, old: str, new: str | None, when: int) -> bool:
        for item in self._items.values():
            tags = list(item.get("tags", {}))
            if item["status"] != "2" and old in lower_keys(item.get("tags", {})):
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
                raise ActionFailed(422, "Invalid/non-existent item")
        if existing is not None:
            if existing["status"] == "2":  # saving a deleted URL again revives it
                self._change(existing, when, status="0", time_read="0", time_added=_NOW)
            tags = list(existing.get("tags", {}))
            self._retag(existing, tags + [t for t in action.get("tags", []) if t not in tags], when)
            return add_shape(existing)
        item = new_item(self._new_id(), action["url"], action.get("title") or "", when)
        set_tags(item, action.get("tags", []))
        self._items[item["item_id"]] = item
        self._mark_changed(item)
        return add_shape(item)

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
        if not isinstance(url, str) or not valid_url(url):
            raise bad_request("url is missing or not a valid http(s) URL")
        tags = parse_tags(params["tags"], "tags") if params.get("tags") else []
        title = params.get("title") if isinstance(params.get("title"), str) else ""
        action = {"action": "add", "url": url, "title": title, "tags": tags}
        return {"item": self._save(action, self.now), "status": 1}
