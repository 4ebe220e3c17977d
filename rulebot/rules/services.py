"""The native source blocks (`karakeep:`, `wallabag:` …): what each one's
part of the config schema offers, in one table that ``schema`` builds the
blocks from and ``config`` reads them with. A new source adds one entry."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rulebot.rules.vocab import DURATION_PATTERN

__all__ = ["SERVICES", "Service"]


@dataclass(frozen=True)
class Service:
    """A native source block (`karakeep:` …): what its schema offers."""

    name: str  # the block's key
    title: str  # the service, as people name it
    credentials: dict[str, str]  # `*_env` key -> default variable name
    page_size: int  # default and maximum items per list request
    api_hint: str = ""
    # keys only this service's block has (name -> JSON schema); read into ServiceSettings.extra
    extra: dict[str, Any] = field(default_factory=dict)
    # a hosted service's address: ``base_url`` may then be left out
    default_url: str | None = None
    # a rate-limited service's endpoint classes (rulebot.sources.pacing): name ->
    # (requests per minute, what it covers); the block then offers `rate_limits`
    # and `time_budget`
    rate_limits: dict[str, tuple[int, str]] = field(default_factory=dict)


SERVICES: dict[str, Service] = {
    "readeck": Service(
        "readeck",
        "Readeck",
        {"token_env": "READECK_TOKEN"},
        page_size=100,
        api_hint="the instance root, e.g. https://readeck.example.org (rulebot adds /api)",
    ),
    "karakeep": Service(
        "karakeep",
        "Karakeep (formerly Hoarder)",
        {"api_key_env": "KARAKEEP_API_KEY"},
        page_size=100,
        api_hint="the instance root, e.g. https://karakeep.example.org (rulebot adds /api/v1)",
    ),
    "wallabag": Service(
        "wallabag",
        "Wallabag",
        {
            "client_id_env": "WALLABAG_CLIENT_ID",
            "client_secret_env": "WALLABAG_CLIENT_SECRET",
            "username_env": "WALLABAG_USERNAME",
            "password_env": "WALLABAG_PASSWORD",
        },
        page_size=500,
        api_hint="the instance root, e.g. https://app.wallabag.it (rulebot adds /api)",
        extra={
            "full_scan_every": {
                "description": "How often a sync lists every entry to find the ones deleted "
                "on the server (Wallabag's change feed never reports deletions); in between, "
                "syncs fetch only what changed.",
                "type": "string",
                "pattern": DURATION_PATTERN,
                "default": "7d",
            }
        },
    ),
    "readwise": Service(
        "readwise",
        "Readwise Reader",
        {"token_env": "READWISE_TOKEN"},
        page_size=100,
        api_hint="https://readwise.io, the default (rulebot adds /api/v3)",
        default_url="https://readwise.io",
        extra={
            "full_scan_every": {
                "description": "How often a sync lists every document to find the ones "
                "deleted in Reader (its updatedAfter listing never reports deletions); in "
                "between, syncs fetch only what changed. A full scan costs one request per "
                "100 documents, at 20 a minute.",
                "type": "string",
                "pattern": DURATION_PATTERN,
                "default": "7d",
            },
            "include_feed": {
                "description": "true: documents in the Feed (RSS and newsletter items not "
                "saved to the library) are items too, unread, with location feed.",
                "type": "boolean",
                "default": False,
            },
            "readd_to": {
                "description": "Where `readd` (and undoing an archive) puts a document: "
                "new (the Inbox) or later. The API cannot move one to the shortlist.",
                "type": "string",
                "enum": ["new", "later"],
                "default": "new",
            },
            "favorite": {
                "description": "Reader has no favourite. Absent: `favorite` conditions and "
                "actions are refused. `shortlist`: a document in the Shortlist is a "
                "favourite (conditions only: the API cannot move one there). `tag:NAME`: "
                "that tag marks a favourite (conditions and actions).",
                "type": "string",
                "pattern": "^(shortlist|tag:[^,]+)$",
            },
        },
        rate_limits={
            "list": (20, "listing, deleting and every other request"),
            "update": (50, "saving and updating one document"),
        },
    ),
    "raindrop": Service(
        "raindrop",
        "Raindrop.io",
        {"token_env": "RAINDROP_TOKEN"},
        page_size=50,
        api_hint="https://api.raindrop.io (the default; rulebot adds /rest/v1)",
        default_url="https://api.raindrop.io",
        rate_limits={"default": (120, "every request (the documented limit per user)")},
        extra={
            "archive_collection": {
                "description": "The collection that means archived (its title, or its "
                "numeric id): `archive` moves a bookmark there, `readd` moves it back, and "
                "`status` reads whether it is there. Raindrop.io has no read state: without "
                "this, rules on `status`, `archive` and `readd` are refused.",
                "type": ["string", "integer"],
                "minLength": 1,
                "default": None,
            },
            "readd_collection": {
                "description": "Where `readd` moves a bookmark out of the archive collection "
                "(title or id; -1 is Unsorted).",
                "type": ["string", "integer"],
                "minLength": 1,
                "default": -1,
            },
            "full_scan_every": {
                "description": "How often a sync lists every bookmark to find the ones "
                "deleted for good (Raindrop.io has no deleted-since feed); in between, "
                "syncs read only what changed, newest change first.",
                "type": "string",
                "pattern": DURATION_PATTERN,
                "default": "7d",
            },
            "delete_permanently": {
                "description": "`delete` moves a bookmark to Trash (Raindrop.io empties it "
                "after 30 days). True: rulebot then deletes it from Trash for good, which "
                "cannot be undone.",
                "type": "boolean",
                "default": False,
            },
        },
    ),
    "shaarli": Service(
        "shaarli",
        "Shaarli (tags-only bookmarks)",
        {"api_secret_env": "SHAARLI_API_SECRET"},
        page_size=100,
        api_hint="the instance root, e.g. https://links.example.org (rulebot adds /api/v1)",
    ),
    "linkding": Service(
        "linkding",
        "Linkding",
        {"token_env": "LINKDING_TOKEN"},
        page_size=500,
        api_hint="the instance root, e.g. https://links.example.org (rulebot adds /api)",
        extra={
            "full_scan_every": {
                "description": "How often a sync lists every bookmark even when nothing "
                "says it must (every sync already scans in full when Linkding's totals or "
                "tags show a deletion or a tag renamed in its web UI, which its change feed "
                "misses); in between, syncs fetch only what changed.",
                "type": "string",
                "pattern": DURATION_PATTERN,
                "default": "7d",
            }
        },
    ),
}
