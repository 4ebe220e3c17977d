"""The fake Readeck server: ``python -m rulebot.fake.readeck`` (see :mod:`.server`)."""

from rulebot.fake.readeck.server import (
    API_PREFIX,
    DEFAULT_PAGE,
    DEFAULT_TOKEN,
    DELETE_DELAY,
    FAULTS,
    MAX_PAGE,
    Exchange,
    FakeReadeck,
    ReadeckState,
    main,
    seed,
)

__all__ = [
    "API_PREFIX",
    "DEFAULT_PAGE",
    "DEFAULT_TOKEN",
    "DELETE_DELAY",
    "FAULTS",
    "MAX_PAGE",
    "Exchange",
    "FakeReadeck",
    "ReadeckState",
    "main",
    "seed",
]
