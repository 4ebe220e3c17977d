"""A fake Pocket v3 server that behaves like the real one, quirks included.

Stdlib only, so tests and users can run it anywhere::

    with FakePocket() as server:
        item_id = server.add_item(url="https://example.com/a", tags=["js"])
        client = PocketClient(server.base_url, server.consumer_key, server.access_token)

    python -m rulebot.fake.pocket --port 8080 --seed-items 200

What it reproduces (``pocket-api.md``, "Real server behaviour" included):
string-typed item fields, ``tags`` absent when untagged, ``list: []`` when
nothing matched, deleted stubs on ``since`` calls; ``/v3/get`` defaults
(``count`` 30, ``state=all``, ``detailType=simple``, ``sort=newest``), its
aliases (``queue``/``read``, JSON booleans, ``contentType=all``,
``since`` in milliseconds, every sort it took: those but newest/oldest
answered newest first) and its 400s (``count=0``, ``count>5000``); per-action ``false`` with ``action_errors`` while
``status`` stays 1; malformed actions refusing the whole batch with a 400 or
failing alone (``malformed_actions``: the old server vs the later one); an
action's ``time`` stamping the item; ``add``/``readd`` answered in the add
shape; ``X-Error``/``X-Error-Code``/``X-Limit-*`` headers, rate limits with a
real reset; OAuth that needs the user's approval at ``/auth/authorize``, with
form-encoded answers unless ``X-Accept: application/json``; and switchable
faults (503, drops, slow answers, garbage bodies: :mod:`.server`).

The modules: ``items`` (an item's shapes), ``checks`` (what the server
accepts), ``library`` (the items and each endpoint's work on them),
``server`` (credentials, OAuth, rate limits, errors and faults around
them, on :mod:`rulebot.fake.base`), ``command`` (``seed`` and ``main``).

The server clock (``server.now``) follows the wall clock until a test sets
it, and changes never move it. A change is stamped with its action's
``time`` (or the clock); a ``since`` cursor still sees every change made
after it was handed out, even within the same second (the fake keeps the
order of changes and cursors), so a sync never misses one.
"""

from rulebot.fake.base import Exchange
from rulebot.fake.pocket.checks import (
    DEFAULT_COUNT,
    FAIL_ALONE,
    ITEM_ACTIONS,
    MALFORMED_MODES,
    MAX_COUNT,
    REFUSE_BATCH,
    SEND_ACTIONS,
    SINCE_COUNT,
    SORTS,
    STATES,
    TAG_MAX_LEN,
)
from rulebot.fake.pocket.command import (
    main,
    seed,
)
from rulebot.fake.pocket.server import (
    ACCESS_TOKEN_ENV,
    CONSUMER_KEY_ENV,
    DEFAULT_ACCESS_TOKEN,
    DEFAULT_CONSUMER_KEY,
    DEFAULT_USERNAME,
    FAULTS,
    RATE_LIMIT_CODE,
    FakePocket,
    RecordedRequest,
)

__all__ = [
    "ACCESS_TOKEN_ENV",
    "CONSUMER_KEY_ENV",
    "DEFAULT_ACCESS_TOKEN",
    "DEFAULT_CONSUMER_KEY",
    "DEFAULT_COUNT",
    "DEFAULT_USERNAME",
    "FAIL_ALONE",
    "FAULTS",
    "ITEM_ACTIONS",
    "MALFORMED_MODES",
    "MAX_COUNT",
    "RATE_LIMIT_CODE",
    "REFUSE_BATCH",
    "SEND_ACTIONS",
    "SINCE_COUNT",
    "SORTS",
    "STATES",
    "TAG_MAX_LEN",
    "Exchange",
    "FakePocket",
    "RecordedRequest",
    "main",
    "seed",
]
