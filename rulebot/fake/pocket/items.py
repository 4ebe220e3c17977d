"""A Pocket item as the server holds and shows it: string-typed fields,
``tags`` absent when untagged, the add shape ``add``/``readd`` answer in."""

from __future__ import annotations

import copy
import time
from collections.abc import Mapping
from typing import Any

_SIMPLE_OMITS = ("tags", "authors", "images", "videos", "domain_metadata")


def haystack(item: Mapping[str, Any]) -> str:
    return f"{title_of(item)} {item['given_url']}".lower()


def add_shape(item: Mapping[str, Any]) -> dict[str, Any]:
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
        "title": title_of(item),
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


def new_item(item_id: str, url: str, title: str, added: int) -> dict[str, Any]:
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


def set_tags(item: dict[str, Any], tags: list[str]) -> None:
    """Pocket's tag shape; the key is absent when there are none."""
    if tags:
        item["tags"] = {t: {"item_id": item["item_id"], "tag": t} for t in tags}
    else:
        item.pop("tags", None)


def lower_keys(tags: Mapping[str, Any]) -> set[str]:
    return {t.lower() for t in tags}


def title_of(item: Mapping[str, Any]) -> str:
    return str(item.get("resolved_title") or item.get("given_title") or "")


def render(item: Mapping[str, Any], detail: str, position: int) -> dict[str, Any]:
    rendered = copy.deepcopy(dict(item))
    rendered["sort_id"] = position
    if detail == "simple":
        for key in _SIMPLE_OMITS:
            rendered.pop(key, None)
    return rendered
