"""YAML with marks: the first layer of checking a rules file.

``MarkedLoader`` composes the node tree and builds plain values itself, so
that every value keeps the line and column of its key and of itself,
duplicate keys are caught (PyYAML silently keeps the last), and the YAML 1.1
traps (``on`` read as a boolean, ``1:30`` as 90, a bare date as a date
object) are reported while the scalar is still visible as written.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import yaml

from rulebot.rules.schema_messages import TEST_TIME_KEYS, Finding, JsonPath, Mark

# A document with more nodes than this is an alias bomb, not a rules file.
MAX_NODES = 200_000

_TAG = "tag:yaml.org,2002:"
_SCALAR_TAGS = {_TAG + name for name in ("str", "int", "float", "bool", "null", "timestamp")}
# YAML 1.1 reads these as booleans (PyYAML only some spellings, other tools all):
_BOOLISH = {"on", "off", "yes", "no", "y", "n"}
_LITERAL_BOOLS = {"true", "True", "TRUE", "false", "False", "FALSE"}


def mark_of(yaml_mark: yaml.Mark) -> Mark:
    return yaml_mark.line + 1, yaml_mark.column + 1


class TooLarge(Exception):
    pass


class MarkedLoader(yaml.SafeLoader):
    """A SafeLoader that builds values itself, recording marks and problems.

    PyYAML's constructor loses the scalar as written and the marks, and keeps
    the last of two duplicate keys; this walks the composed nodes instead.
    ``node_marks`` maps each JSON path to the (line, col) of its key and its value.
    """

    def __init__(self, text: str, boolean_keys: frozenset[str] = frozenset()) -> None:
        super().__init__(text)
        self.boolean_keys = boolean_keys
        self.node_marks: dict[JsonPath, tuple[Mark, Mark]] = {}
        self.findings: list[Finding] = []
        self._nodes_left = MAX_NODES
        self._building: set[int] = set()  # collections on the stack: recursive aliases

    def load_document(self) -> Any:
        node = self.get_single_node()
        if node is None:
            return None
        return self.build(node, (), mark_of(node.start_mark))

    def build(self, node: yaml.Node, path: JsonPath, key_mark: Mark) -> Any:
        self._nodes_left -= 1
        if self._nodes_left < 0:
            raise TooLarge
        self.node_marks[path] = (key_mark, mark_of(node.start_mark))
        if isinstance(node, yaml.ScalarNode):
            return self.scalar(node, path)
        if id(node) in self._building:
            self.findings.append(Finding(path, "this alias refers to itself; YAML cannot nest it"))
            return None
        self._building.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                return [
                    self.build(child, (*path, index), mark_of(child.start_mark))
                    for index, child in enumerate(node.value)
                ]
            assert isinstance(node, yaml.MappingNode)  # the composer makes no other kind
            return self.mapping(node, path)
        finally:
            self._building.discard(id(node))

    def mapping(self, node: yaml.MappingNode, path: JsonPath) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        explicit: dict[str, Any] = {}
        first_line: dict[str, int] = {}
        own_marks = self.node_marks[path]
        for key_node, value_node in node.value:
            if key_node.tag == _TAG + "merge":
                merged = {**self.merge_sources(value_node, path), **merged}
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                self.findings.append(
                    Finding(path, "a key must be a plain word, not a list or mapping")
                )
                continue
            key = key_node.value  # the key as written: `on:` stays "on", `1:` stays "1"
            key_mark = mark_of(key_node.start_mark)
            if key in first_line:
                self.node_marks[(*path, key)] = (key_mark, key_mark)
                self.findings.append(
                    Finding(
                        (*path, key),
                        f"duplicate key {key!r} (first at line {first_line[key]}); "
                        "remove one of them",
                        at_key=True,
                    )
                )
            first_line.setdefault(key, key_mark[0])
            explicit[key] = self.build(value_node, (*path, key), key_mark)
        self.node_marks[path] = own_marks  # merge sources were built at this path too
        return {**merged, **explicit}

    def merge_sources(self, node: yaml.Node, path: JsonPath) -> dict[str, Any]:
        """``<<: *anchor`` or ``<<: [*a, *b]`` (earlier sources win)."""
        sources = node.value if isinstance(node, yaml.SequenceNode) else [node]
        merged: dict[str, Any] = {}
        for source in reversed(sources):
            if not isinstance(source, yaml.MappingNode):
                self.findings.append(
                    Finding(path, "`<<` merges a mapping or a list of mappings (use an alias)")
                )
                continue
            built = self.build(source, path, mark_of(source.start_mark))
            if isinstance(built, dict):
                merged.update(built)
        return merged

    def scalar(self, node: yaml.ScalarNode, path: JsonPath) -> Any:
        text = node.value
        plain = node.style is None
        if plain and text.lower() in _BOOLISH and text not in _LITERAL_BOOLS:
            if path and path[-1] in self.boolean_keys:
                self._trap(path, f"`{text}` is read as a boolean by YAML; write true or false")
                return text.lower() in {"on", "yes", "y"}
            self._trap(path, f"`{text}` is read as a boolean by YAML; quote it: '{text}'")
            return text
        if node.tag not in _SCALAR_TAGS:
            self._trap(path, f"YAML tag {node.tag} is not supported here; write a plain value")
            return text
        try:
            value = self.construct_object(node)
        except (yaml.YAMLError, ValueError, TypeError, AttributeError, OverflowError):
            if plain:  # e.g. 2025-13-01 looks like a date but is none: the text stands
                return text
            tag = node.tag.removeprefix(_TAG)
            self._trap(path, f"`{text}` cannot be read as {tag}; fix the value or its tag")
            return text
        if plain and ":" in text and node.tag in {_TAG + "int", _TAG + "float"}:
            # YAML 1.1 sexagesimal: 1:30 is 1*60 + 30.
            self._trap(path, f"`{text}` is read as the number {value} by YAML; quote it: '{text}'")
            return text
        if isinstance(value, dt.date):  # a bare date or timestamp
            if _takes_date(path):
                return value.isoformat()
            self._trap(path, f"`{text}` is read as a date by YAML; quote it: '{text}'")
            return text
        return value

    def _trap(self, path: JsonPath, message: str) -> None:
        self.findings.append(Finding(path, message))


def _takes_date(path: JsonPath) -> bool:
    """Where a bare YAML date means what the user meant: a date field."""
    if path and path[-1] in ("before", "after"):
        return True
    if len(path) == 3 and path[0] == "tests" and path[2] == "now":
        return True
    return (
        len(path) == 5 and path[0] == "tests" and path[2] == "items" and path[4] in TEST_TIME_KEYS
    )


def yaml_error_message(err: yaml.MarkedYAMLError) -> str:
    message = err.problem or err.context or "not valid YAML"
    if err.problem and err.context:
        where = f" at line {err.context_mark.line + 1}" if err.context_mark else ""
        message = f"{err.problem} {err.context}{where}"
    hints = {
        "'\\t'": "indent with spaces, not tabs",
        "mapping values are not allowed": "quote a value that contains ': ', or fix the "
        "indentation",
        "expected a single document": "a rules file is one document; remove the second `---`",
        "found undefined alias": "define the anchor (&name) before using it (*name)",
        "expected <block end>": "check the indentation: entries of one list or mapping "
        "must line up",
    }
    hint = next((h for needle, h in hints.items() if needle in message), None)
    return f"YAML syntax error: {message}" + (f"; {hint}" if hint else "")
