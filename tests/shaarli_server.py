"""The real Shaarli for the tests: ``rulebot.fake.real_shaarli`` runs it; here, a
missing server skips a test saying so, unless ``RULEBOT_REAL_SERVERS=1`` (CI
installs the packages), where it is a failure."""

from __future__ import annotations

import os

import pytest

from rulebot.fake.real_shaarli import SECRET, ShaarliServer, missing_reason, token

__all__ = ["SECRET", "ShaarliServer", "missing_reason", "require_server", "token"]


def require_server() -> None:
    """Skip (or, with RULEBOT_REAL_SERVERS=1, fail) when the server cannot run."""
    reason = missing_reason()
    if reason is None:
        return
    if os.environ.get("RULEBOT_REAL_SERVERS") == "1":
        pytest.fail(f"RULEBOT_REAL_SERVERS=1 but the real Shaarli cannot run: {reason}")
    pytest.skip(f"real Shaarli server not available: {reason}")
