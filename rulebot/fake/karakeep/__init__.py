"""The fake Karakeep server: ``python -m rulebot.fake.karakeep`` (see :mod:`.server`)."""

from rulebot.fake.karakeep.server import (
    API_PREFIX,
    CREATE_CONFLICT,
    DEFAULT_API_KEY,
    DEFAULT_PAGE,
    DEFAULT_USER_ID,
    FAULTS,
    MAX_PAGE,
    MAX_TAG_PAGE,
    MAX_TITLE,
    RENAME_CONFLICT,
    Exchange,
    FakeKarakeep,
    KarakeepState,
    main,
    seed,
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
