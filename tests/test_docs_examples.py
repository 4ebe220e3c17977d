"""Every ```yaml block in README.md and docs/*.md is a config that validates.

Conventions for the blocks (a marker is a comment line at the top of the block):

- no marker: a whole config file; it must validate with zero problems;
- ``# fragment: top``: top-level keys; ``version: 1`` and ``rules: []`` are
  added when the block lacks them;
- ``# fragment: rules``: a list of rules (the value of ``rules:``);
- ``# fragment: where``: the body of a ``where:`` mapping, wrapped into a
  rule whose action is ``archive``;
- ``# fragment: actions``: a list of item actions, wrapped into a rule with
  ``where: {tag: example}``;
- ``# invalid``: the (wrapped) block must produce at least one problem;
- ``# not-config``: not a rulebot config (a CI workflow, say); skipped.

A whole config with a ``tests:`` section must also pass ``rulebot test``, and
so must ``rules.example.yaml``.

Fragments are wrapped as text, indented, so YAML-level checks (duplicate
keys, `on`/`no` booleans) apply to them exactly as written.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from rulebot.cli import main
from rulebot.rules.config import validate_text

ROOT = Path(__file__).resolve().parent.parent
BLOCK = re.compile(r"^```yaml[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


def _doc_files() -> list[Path]:
    files = sorted((ROOT / "docs").glob("*.md"))
    readme = ROOT / "README.md"
    return ([readme] if readme.exists() else []) + files


def _blocks() -> list[tuple[str, str]]:
    found = []
    for path in _doc_files():
        text = path.read_text(encoding="utf-8")
        for match in BLOCK.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            found.append((f"{path.relative_to(ROOT)}:{line}", match.group(1)))
    return found


def _markers(block: str) -> tuple[str | None, bool, bool]:
    """(fragment kind, expected invalid, skip) from the leading comment lines."""
    kind, invalid, skip = None, False, False
    for line in block.splitlines():
        stripped = line.strip()
        if not stripped.startswith("#"):
            break
        if match := re.fullmatch(r"#\s*fragment:\s*(\w+)", stripped):
            kind = match.group(1)
        invalid = invalid or stripped == "# invalid"
        skip = skip or stripped == "# not-config"
    return kind, invalid, skip


def _indent(block: str, spaces: int) -> str:
    return textwrap.indent(block, " " * spaces)


def wrap(block: str, kind: str | None) -> str:
    if kind is None:
        return block
    if kind == "top":
        head = "" if re.search(r"^version:", block, re.MULTILINE) else "version: 1\n"
        tail = "" if re.search(r"^rules:", block, re.MULTILINE) else "rules: []\n"
        return head + block + tail
    if kind == "rules":
        return "version: 1\nrules:\n" + _indent(block, 2)
    if kind == "where":
        return (
            "version: 1\nrules:\n  - name: doc-example\n    actions: [archive]\n    where:\n"
            + _indent(block, 6)
        )
    if kind == "actions":
        return (
            "version: 1\nrules:\n  - name: doc-example\n    where: {tag: example}\n"
            "    actions:\n" + _indent(block, 6)
        )
    raise AssertionError(f"unknown fragment kind {kind!r}; see the top of {__file__}")


BLOCKS = _blocks()


def test_docs_have_examples() -> None:
    assert len(BLOCKS) >= 20, "docs/config.md should show every key with an example"


@pytest.mark.parametrize(("where", "block"), BLOCKS, ids=[where for where, _ in BLOCKS])
def test_yaml_block(where: str, block: str) -> None:
    kind, invalid, skip = _markers(block)
    if skip:
        pytest.skip("marked # not-config")
    # warnings (a condition the local library cannot answer…) do not make a block invalid
    problems = [p for p in validate_text(wrap(block, kind), filename=where) if p.is_error]
    if invalid:
        assert problems, f"{where}: marked # invalid but validates"
    else:
        assert not problems, "\n".join(str(p) for p in problems)


def test_wrap_keeps_fragment_text() -> None:
    wrapped = wrap("tag: x\nstatus: unread\n", "where")
    assert "      tag: x\n      status: unread\n" in wrapped
    assert validate_text(wrapped) == []


FULL_WITH_TESTS = [
    (where, block)
    for where, block in BLOCKS
    if _markers(block) == (None, False, False) and re.search(r"^tests:", block, re.MULTILINE)
]


@pytest.mark.parametrize(
    "config",
    [block for _, block in FULL_WITH_TESTS] + [None],
    ids=[where for where, _ in FULL_WITH_TESTS] + ["rules.example.yaml"],
)
def test_examples_pass_their_own_tests(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], config: str | None
) -> None:
    path = ROOT / "rules.example.yaml"
    if config is not None:
        path = tmp_path / "rules.yaml"
        path.write_text(config, encoding="utf-8")
    code = main(["-c", str(path), "test"])
    assert code == 0, capsys.readouterr().out
