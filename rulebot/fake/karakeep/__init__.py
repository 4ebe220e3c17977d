"""A fake Karakeep server (REST API v1) that behaves like the real one, quirks included.

Stdlib only, so tests and users can run it anywhere::

    with FakeKarakeep() as server:
        bookmark_id = server.add_bookmark("https://example.com/a", tags=["js"])
        client = KarakeepClient(server.base_url, server.api_key)

    python -m rulebot.fake.karakeep --port 3000 --seed 200

What it reproduces (``specs/karakeep.md``, the server's code rather than its
OpenAPI document where the two differ): ``Authorization: Bearer`` with a
case-sensitive prefix and a plain-text 401 ``Unauthorized``; business errors
(404 ``Bookmark not found``, 400 on a tag rename onto an existing name) as
plain text, schema errors as zod JSON; keyset cursor paging on
``GET /bookmarks`` (``limit`` 1-100, default 20, ``<id>_<ISO>`` cursors that
point at the first item of the next page, ``createdAt`` then id-desc order);
query booleans only ``true``/``false``; a duplicate link POST answers 200
``alreadyExists: true`` and *un-archives* the bookmark and moves it to the
top; attaching an unknown tag name creates it; tag names are case-sensitive;
``#`` is stripped on attach but not on detach; ``attached``/``detached`` list
the resolved ids even when nothing changed; tag rename/delete do not bump
``modifiedAt``; hard deletes; 429 without ``Retry-After``;
``/bookmarks/check-url`` (URL-normalized) and ``/bookmarks/search`` (offset
cursor; a word match standing in for the search engine) routed before
``/bookmarks/{id}``; under a resource, the key checked before the route
(401 before any 404). Only link
bookmarks are modelled (no text/asset bookmarks, lists, highlights or assets).

Faults are switchable per call: a status code on the Nth (matching) call,
a dropped connection before or after doing the work, added latency; a
bookmark's fields can be garbled in every answer (``garble``); every
request and its answer is recorded (``exchanges``, ``calls(route)``): the
plumbing of :mod:`rulebot.fake.base`.

The modules: ``model`` (the data and the API's errors), ``checks`` (what the
API accepts), ``library`` (the bookmarks and tags, as the API shows them),
``lookup`` (check-url and search), ``server`` (the routes and their
answers), ``command`` (``seed`` and ``main``).
"""

from rulebot.fake.base import (
    Exchange,
)
from rulebot.fake.karakeep.checks import (
    DEFAULT_PAGE,
    MAX_PAGE,
    MAX_TAG_PAGE,
    MAX_TITLE,
)
from rulebot.fake.karakeep.command import (
    main,
    seed,
)
from rulebot.fake.karakeep.model import (
    DEFAULT_USER_ID,
    KarakeepState,
)
from rulebot.fake.karakeep.server import (
    API_PREFIX,
    CREATE_CONFLICT,
    DEFAULT_API_KEY,
    FAULTS,
    RENAME_CONFLICT,
    FakeKarakeep,
)

__all__ = [
    "API_PREFIX",
    "CREATE_CONFLICT",
    "DEFAULT_API_KEY",
    "DEFAULT_PAGE",
    "DEFAULT_USER_ID",
    "FAULTS",
    "MAX_PAGE",
    "MAX_TAG_PAGE",
    "MAX_TITLE",
    "RENAME_CONFLICT",
    "Exchange",
    "FakeKarakeep",
    "KarakeepState",
    "main",
    "seed",
]
