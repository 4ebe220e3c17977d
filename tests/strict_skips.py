"""With ``RULEBOT_REAL_SERVERS=1`` (``.ci/run``) nothing may skip: the machine
is set up to run every test, so a skip means a test did not run that should
have (a server that did not start, a client that did not install, a row that
has no meaning and should not have been generated). The skip's report
becomes a failure naming its reason. An expected failure (``xfail``) is not
a skip and stays as it is.

tests/conftest.py takes this hook; tests/test_ci.py runs it on a test that
skips."""

from __future__ import annotations

import os
from collections.abc import Generator

import pytest


def _strict() -> bool:
    return os.environ.get("RULEBOT_REAL_SERVERS") == "1"


def _as_failure(report: pytest.TestReport | pytest.CollectReport) -> None:
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    report.outcome = "failed"
    report.longrepr = (
        f"skipped where nothing may skip (RULEBOT_REAL_SERVERS=1): {reason}\n"
        "unset RULEBOT_REAL_SERVERS to let a test skip on a machine without "
        "the real servers or the clients' venvs"
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.skipped and not hasattr(report, "wasxfail") and _strict():
        _as_failure(report)
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(
    collector: pytest.Collector,
) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
    """A whole module skipped as it is collected (``allow_module_level``)."""
    report = yield
    if report.skipped and _strict():
        _as_failure(report)
    return report
