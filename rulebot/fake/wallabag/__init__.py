"""A fake Wallabag server (v2 API with OAuth2) that behaves like the real one, quirks included.

Stdlib only, so tests and users can run it anywhere::

    with FakeWallabag() as server:
        entry_id = server.add_entry("https://example.com/a", tags=["js"])
        # WALLABAG_CLIENT_ID=server.client_id, ... and base_url=server.base_url

    python -m rulebot.fake.wallabag --port 8081 --seed 200

What it reproduces (``specs/wallabag.md``): ``/oauth/v2/token`` with the
password and refresh grants (form, query or JSON parameters; every failure a
400 ``{error, error_description}``; refresh rotates the refresh token);
access tokens that expire after ``access_lifetime`` seconds of the fake's
clock (401 ``invalid_grant`` "has expired" with ``WWW-Authenticate``); a
missing token is 401 ``access_denied``; every success is 200 (create and
delete too); ``is_archived``/``is_starred`` as 0/1 integers; dates as
``2016-04-05T09:07:54+0200`` in the server's time zone; global lower-case
tags ``{id, label, slug}``; HAL paging (``page``/``limit``/``pages``/
``total``/``_links``/``_embedded.items``; ``pages`` at least 1, a page past
the end 404); ``since`` strictly after ``updated_at``; every change bumps
``updated_at``; hard deletes (invisible to ``since``); a duplicate POST
merges tags and keeps the archive state (found by the sha1 of the
urldecoded URL, as ``exists`` finds ``url``/``hashed_url``/``urls[]``/
``hashed_urls[]``); PATCH ``tags`` replaces, an empty
one changes nothing; bulk endpoints read JSON from the query string; only
``POST /entries/lists`` enforces the mass-action limit (10); no tag rename;
another user's entry is a 404; no rate limiting (a 429 only by injection).

Faults are switchable per call: a status code on the Nth (matching) call,
a dropped connection before or after doing the work, a slow answer, or
``expire`` (the presented access token expires just before the call); an
entry's fields can be garbled in every answer (``garble``).
Every request and its answer is recorded (``exchanges``, ``calls(route)``):
the plumbing of :mod:`rulebot.fake.base`.

The modules: ``model`` (the data, errors and formats), ``library`` (the
entries and tags, as the API shows them), ``oauth`` (the token endpoint and
tokens), ``server`` (the routes and their answers), ``command`` (``seed``
and ``main``).
"""

from rulebot.fake.base import (
    Exchange,
)
from rulebot.fake.wallabag.command import (
    main,
    seed,
)
from rulebot.fake.wallabag.model import (
    ACCESS_LIFETIME,
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_EMAIL,
    DEFAULT_PASSWORD,
    DEFAULT_USERNAME,
    MASS_ACTION_LIMIT,
    REFRESH_LIFETIME,
    SERVER_TZ,
)
from rulebot.fake.wallabag.server import (
    FAULTS,
    FakeWallabag,
)

__all__ = [
    "ACCESS_LIFETIME",
    "DEFAULT_CLIENT_ID",
    "DEFAULT_CLIENT_SECRET",
    "DEFAULT_EMAIL",
    "DEFAULT_PASSWORD",
    "DEFAULT_USERNAME",
    "FAULTS",
    "MASS_ACTION_LIMIT",
    "REFRESH_LIFETIME",
    "SERVER_TZ",
    "Exchange",
    "FakeWallabag",
    "main",
    "seed",
]
