"""The fake Wallabag server: ``python -m rulebot.fake.wallabag`` (see :mod:`.server`)."""

from rulebot.fake.wallabag.server import (
    ACCESS_LIFETIME,
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_EMAIL,
    DEFAULT_PASSWORD,
    DEFAULT_USERNAME,
    FAULTS,
    MASS_ACTION_LIMIT,
    REFRESH_LIFETIME,
    SERVER_TZ,
    Exchange,
    FakeWallabag,
    main,
    seed,
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
