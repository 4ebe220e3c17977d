"""Old name of the fake Pocket server, kept so imports and ``python -m`` keep working.

The server lives in :mod:`rulebot.fake.pocket`; ``python -m rulebot.fakepocket``
and ``python -m rulebot.fake.pocket`` start the same thing.
"""

from __future__ import annotations

from rulebot.fake.pocket import (
    DEFAULT_ACCESS_TOKEN,
    DEFAULT_CONSUMER_KEY,
    DEFAULT_USERNAME,
    FAULTS,
    FakePocket,
    RecordedRequest,
    main,
    seed,
)

__all__ = [
    "DEFAULT_ACCESS_TOKEN",
    "DEFAULT_CONSUMER_KEY",
    "DEFAULT_USERNAME",
    "FAULTS",
    "FakePocket",
    "RecordedRequest",
    "main",
    "seed",
]

if __name__ == "__main__":
    raise SystemExit(main())
