"""tests/isolation.py: a test sees the root logger as the session began,
whatever the CLI run in an earlier test of the same worker set up."""

from __future__ import annotations

import pytest

QUIET_THEN_WARN = """
import contextlib
import io
import logging

import pytest

from rulebot.cli import main
from tests.helpers import rb


def test_a_quiet_cli_run(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "rules.yaml").write_text("version: 1\\nrules: []\\n")
    code, _out, err = rb(capsys, "-q", "-c", "rules.yaml", "validate")
    assert code == 0, err
    assert logging.getLogger().level == logging.ERROR  # main's, for its process


def test_then_a_warning_reaches_caplog(caplog):
    logging.getLogger("rulebot.readeck").warning("a warning the test expects")
    assert "a warning the test expects" in caplog.text
    stray = [h for h in logging.getLogger().handlers if not type(h).__module__.startswith("_pytest")]
    assert not stray, stray


@pytest.fixture(scope="module")
def quiet_module_fixture(tmp_path_factory):
    rules = tmp_path_factory.mktemp("m") / "rules.yaml"
    rules.write_text("version: 1\\nrules: []\\n")
    with contextlib.redirect_stderr(io.StringIO()):
        assert main(["-q", "-c", str(rules), "validate"]) == 0


def test_after_a_module_fixture_ran_the_cli_a_warning_reaches_caplog(quiet_module_fixture, caplog):
    logging.getLogger("rulebot.readeck").warning("a warning the test expects")
    assert "a warning the test expects" in caplog.text
"""


@pytest.mark.parametrize("isolated", [True, False])
def test_a_quiet_cli_run_leaves_no_level_or_handler_to_the_next_test(
    pytester: pytest.Pytester, isolated: bool
) -> None:
    if isolated:
        pytester.makeconftest("from tests.isolation import root_logging_as_it_was\n")
    pytester.makepyfile(test_order=QUIET_THEN_WARN)
    result = pytester.runpytest("-p", "no:xdist", "-p", "no:cacheprovider", "-p", "no:randomly")
    if isolated:
        result.assert_outcomes(passed=3)
    else:  # the fault the fixture is there for
        result.assert_outcomes(passed=1, failed=2)
        result.stdout.fnmatch_lines(["*assert 'a warning the test expects' in ''*"])
