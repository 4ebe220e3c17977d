"""Plan and Result: the data every renderer, file and applier shares.

A ``Plan`` is the exact list of ``/v3/send`` actions, each with the rule and
reasons behind it. A ``Result`` says what happened when a plan was applied.
Both round-trip through JSON (``format_version: 1``); ``schemas/plan.schema.json``
describes the plan file. The actions themselves and their lines in the file
are ``rulebot.planning.planned`` (``PlannedAction`` is importable from here too).
"""

from __future__ import annotations

import datetime as dt
import io
import itertools
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO, overload

from rulebot.errors import RulebotError
from rulebot.planning.planned import (
    DESTRUCTIVE,
    PlanLines,
    PlannedAction,
    Tally,
    compact,
    decode_line,
)
from rulebot.planning.spool import Spool

FORMAT_VERSION = 1


def iso(ts: int) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> int:
    moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return int(moment.timestamp())


def _summary_of(data: dict[str, Any]) -> dict[str, Any]:
    summary = data.get("summary")
    return summary if isinstance(summary, dict) else {}  # only counts are read from it


def _counts_of(raw: Any) -> dict[str, int]:
    if not isinstance(raw, dict):
        return {}
    return {str(k): v for k, v in raw.items() if isinstance(v, int) and not isinstance(v, bool)}


@dataclass
class Plan:
    created_at: int
    # a list, or for a large plan (planned in one pass, or read from a file) its
    # spool on disk (``SpooledActions``): read it in order, never by index in a
    # loop, and never key on an action's identity
    actions: Sequence[PlannedAction]
    config_sha256: str = ""
    source: dict[str, Any] = field(default_factory=lambda: {"kind": "local"})
    rules: list[str] = field(default_factory=list)  # the rules that were planned
    # items each item rule's `where` matched, before keep_newest/limit: a 0
    # names a silent rule (a typo in a tag, a field the source never has)
    matched: dict[str, int] = field(default_factory=dict)
    # a rate-limited service's estimate (``rulebot.sources.pacing.Estimate``):
    # requests per class, roughly how long, what fits the time budget; None: no limits
    pacing: dict[str, Any] | None = None

    def __len__(self) -> int:
        return len(self.actions)

    def tally(self) -> Tally:
        spooled = getattr(self.actions, "tally", None)  # counted as the spool filled
        return spooled() if spooled is not None else Tally.of(self.actions)

    @property
    def deletes(self) -> int:
        spooled = getattr(self.actions, "deletes", None)  # counted as the spool filled
        if isinstance(spooled, int):
            return spooled
        return sum(1 for action in self.actions if action.send["action"] in DESTRUCTIVE)

    def summary(self) -> dict[str, Any]:
        tally = self.tally()
        by_rule = tally.rules
        return {
            "actions": len(self.actions),
            "by_action": dict(sorted(tally.names.items())),
            "by_rule": {r: by_rule[r] for r in self.rules if by_rule[r]}
            | {r: n for r, n in by_rule.items() if r not in self.rules},
            "items": tally.items,
            "deletes": tally.deletes,
        } | ({"matched": dict(self.matched)} if self.matched else {})

    def lines(self) -> Iterator[str]:
        """The actions as the plan file's compact JSON lines, in order."""
        return _plan_lines(self.actions)

    @property
    def silent_rules(self) -> list[str]:
        """Item rules whose `where` matched no item at all."""
        return [rule for rule in self.rules if self.matched.get(rule) == 0]

    def to_json(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "created_at": iso(self.created_at),
            "config_sha256": self.config_sha256,
            "source": self.source,
            "rules": self.rules,
            "actions": [a.to_json() for a in self.actions],
            "summary": self.summary(),
        } | ({"pacing": self.pacing} if self.pacing else {})

    def write(self, stream: TextIO) -> None:
        """JSON with one action per line: readable, diffable, and streamed.

        Written piece by piece so a first run planning 100k+ actions never
        holds the whole document (or its dicts) in memory; and compact lines
        use the C encoder (``json.dumps(indent=...)`` falls back to the
        pure-Python one, which took seconds on such a plan).
        """
        head = {
            "format_version": FORMAT_VERSION,
            "created_at": iso(self.created_at),
            "config_sha256": self.config_sha256,
            "source": self.source,
            "rules": self.rules,
        }
        stream.write("{\n")
        for key, value in head.items():
            stream.write(f"  {json.dumps(key)}: {compact(value)},\n")
        if not self.actions:
            stream.write('  "actions": [],\n')
        else:
            stream.write('  "actions": [\n')
            lines = (f"    {line}" for line in self.lines())
            # a thousand lines to a write: one write per action cost a second per 100k
            separator = ""
            while block := list(itertools.islice(lines, 1000)):
                stream.write(separator + ",\n".join(block))
                separator = ",\n"
            stream.write("\n  ],\n")
        if self.pacing:  # after the summary, which a reader of the layout expects there
            stream.write(f'  "summary": {compact(self.summary())},\n')
            stream.write(f'  "pacing": {compact(self.pacing)}\n}}\n')
        else:
            stream.write(f'  "summary": {compact(self.summary())}\n}}\n')

    def dumps(self) -> str:
        buffer = io.StringIO()
        self.write(buffer)
        return buffer.getvalue()

    @classmethod
    def from_json(
        cls, data: Any, where: str = "plan", *, actions: Iterator[Any] | None = None
    ) -> Plan:
        """The plan in a plan document; ``actions``: its actions, streamed
        (``read``), read before the rest, which may follow them."""
        try:
            if not isinstance(data, dict):
                raise ValueError("the top level is not an object")
            version = data.get("format_version")
            if version != FORMAT_VERSION:
                raise ValueError(
                    f"format_version is {version!r}; this rulebot reads version {FORMAT_VERSION}"
                )
            if actions is None:
                listed = [_action(index, raw) for index, raw in enumerate(data["actions"])]
            else:  # a large saved plan waits on disk, as the planner's would
                spool = Spool(1, places_are_items=False)
                for index, raw in enumerate(actions):
                    spool.add(0, index, [_action(index, raw)])
            return cls(
                created_at=parse_iso(str(data["created_at"])),
                actions=listed if actions is None else spool.finish(),
                config_sha256=str(data.get("config_sha256", "")),
                source=dict(data.get("source") or {"kind": "local"}),
                rules=[str(r) for r in data.get("rules", [])],
                matched=_counts_of(_summary_of(data).get("matched")),
                pacing=data["pacing"] if isinstance(data.get("pacing"), dict) else None,
            )
        except (KeyError, TypeError, ValueError) as err:
            detail = f"missing field {err}" if isinstance(err, KeyError) else str(err)
            raise RulebotError(f"{where}: not a rulebot plan file: {detail}") from None

    @classmethod
    def read(cls, path: Path) -> Plan:
        """A plan file. One in the layout ``write`` gives (any plan rulebot
        wrote) is read a line at a time, so a first run's saved plan is never
        held whole; any other JSON is read as one document."""
        try:
            with open(path, encoding="utf-8") as stream:
                layout = _Layout(stream)
                if layout.head is not None:
                    try:
                        return cls.from_json(layout.head, str(path), actions=layout.actions())
                    except _NotLayout:
                        pass
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise RulebotError(f"{path}: no such plan file") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise RulebotError(f"{path}: cannot read the plan: {err}") from None
        return cls.from_json(data, str(path))


def _action(index: int, raw: Any) -> PlannedAction:
    send = raw["send"]
    if not isinstance(send, dict) or not isinstance(send.get("action"), str):
        raise ValueError(f"actions[{index}].send is not an action object")
    item = raw.get("item")
    if item is not None and not isinstance(item, dict):
        raise ValueError(f"actions[{index}].item is not an object")
    restore = raw.get("restore")
    if restore is not None and not isinstance(restore, dict):
        raise ValueError(f"actions[{index}].restore is not an object")
    reasons = tuple(raw.get("reasons", ()))
    return PlannedAction(str(raw["rule"]), send, item, reasons, restore)


class _NotLayout(Exception):
    """The file is not laid out as ``Plan.write`` lays it out."""


class _Layout:
    """A plan file as ``Plan.write`` lays it out: a head line per key, an
    action per line, the summary last. ``head`` is None when the file does
    not start that way; ``actions()`` raises ``_NotLayout`` where it stops
    being so (the caller then reads the file as one JSON document, which
    reports any real error), and adds the summary to ``head`` at its end."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.head: dict[str, Any] | None = None
        self.empty = False
        if stream.readline() != "{\n":
            return
        head: dict[str, Any] = {}
        for line in stream:
            if line in ('  "actions": [\n', '  "actions": [],\n'):
                self.empty = line.endswith("[],\n")
                self.head = head
                return
            if not (line.startswith('  "') and line.endswith(",\n")):
                return
            try:
                head.update(json.loads("{" + line[:-2] + "}"))
            except json.JSONDecodeError:
                return

    def actions(self) -> Iterator[Any]:
        lines = iter(self.stream)
        if not self.empty:
            comma = True  # every action line but the last ends with one
            for line in lines:
                if line == "  ],\n" and not comma:
                    break
                if not (comma and line.startswith("    {") and line.endswith("\n")):
                    raise _NotLayout
                text = line[4:-1]
                comma = text.endswith(",")
                try:
                    yield json.loads(text[:-1] if comma else text)
                except json.JSONDecodeError:
                    raise _NotLayout from None
            else:
                raise _NotLayout
        tail = [next(lines, ""), next(lines, ""), next(lines, "")]
        if tail[0].startswith('  "summary": ') and tail[0].endswith(",\n"):
            tail = [tail[0][:-2] + "\n", tail[1], *tail[2:], next(lines, "")]
            extra = [tail.pop(1)]  # the optional keys after the summary: "pacing"
        else:
            extra = []
        if not (tail[0].startswith('  "summary": ') and tail[1:] == ["}\n", ""]):
            raise _NotLayout
        try:
            assert self.head is not None
            for line in (tail[0], *extra):
                self.head.update(json.loads("{" + line.rstrip("\n") + "}"))
        except json.JSONDecodeError:
            raise _NotLayout from None


STATES = ("succeeded", "failed", "skipped")


@dataclass(slots=True)
class Outcome:
    """What became of one planned action."""

    index: int
    action: PlannedAction
    state: str  # succeeded | failed | skipped
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        data = {"index": self.index, "state": self.state, **self.action.to_json()}
        if self.error:
            data["error"] = self.error
        return data


class Outcomes(Sequence[Outcome]):
    """An apply's outcomes at a byte each, in plan order: the actions
    stay in the plan (perhaps spooled to disk) and are read back in step
    when an outcome is asked for. A first run has 1.7M of them at 1M items."""

    UNSET = 255

    def __init__(self, actions: Sequence[PlannedAction], *, by_index: bool = False) -> None:
        """``by_index``: the outcomes come in any order (``put``), else in
        plan order (``add``)."""
        self.actions = actions
        self.states = bytearray([self.UNSET]) * len(actions) if by_index else bytearray()
        self.errors: dict[int, str] = {}

    def add(self, state: str, error: str | None = None) -> None:
        if error:
            self.errors[len(self.states)] = error
        self.states.append(STATES.index(state))

    def put(self, index: int, state: str, error: str | None = None) -> None:
        if error:
            self.errors[index] = error
        self.states[index] = STATES.index(state)

    def known(self, index: int) -> bool:
        """Whether action ``index`` has its outcome (``put``) yet."""
        return self.states[index] != self.UNSET

    def complete(self) -> bool:
        """Whether every action has its outcome."""
        return self.UNSET not in self.states

    def __len__(self) -> int:
        return len(self.states)

    def _outcome(self, index: int, action: PlannedAction) -> Outcome:
        return Outcome(index, action, STATES[self.states[index]], self.errors.get(index))

    def __iter__(self) -> Iterator[Outcome]:
        for index, action in zip(range(len(self.states)), self.actions, strict=False):
            yield self._outcome(index, action)

    @overload
    def __getitem__(self, index: int) -> Outcome: ...
    @overload
    def __getitem__(self, index: slice) -> list[Outcome]: ...
    def __getitem__(self, index: int | slice) -> Outcome | list[Outcome]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        index = range(len(self.states))[index]  # negative, and IndexError
        return self._outcome(index, self.actions[index])

    def count(self, state: object) -> int:
        return self.states.count(STATES.index(state)) if state in STATES else 0

    def of(self, state: str) -> Iterator[Outcome]:
        """The outcomes in ``state``, in order: none without a look when there
        are none (failures, usually); from a list, looked up one by one when
        they are few; from a plan on disk, read in step with its lines and
        only theirs decoded."""
        code = STATES.index(state)
        count = self.count(state)
        if not count:
            return iter(())
        if isinstance(self.actions, list):
            if count * 16 < len(self.states):
                indexes = (i for i, value in enumerate(self.states) if value == code)
                return (self._outcome(i, self.actions[i]) for i in indexes)
            return (outcome for outcome in self if outcome.state == state)
        numbered = zip(range(len(self.states)), _plan_lines(self.actions), strict=False)
        return (
            Outcome(index, decode_line(line), state, self.errors.get(index))
            for index, line in numbered
            if self.states[index] == code
        )

    def encoded(self, state: str) -> Iterator[str]:
        """``compact(outcome.to_json())`` for those in ``state``, made from the
        plan's own lines (a plan line is ``{"rule": …, "reasons": […]}``)."""
        code = STATES.index(state)
        lines = _plan_lines(self.actions)
        for index, line in zip(range(len(self.states)), lines, strict=False):
            if self.states[index] != code:
                continue
            head = f'{{"index": {index}, "state": "{state}", '
            error = self.errors.get(index)
            tail = f', "error": {compact(error)}}}' if error else "}"
            yield head + line[1:-1] + tail


def _plan_lines(actions: Sequence[PlannedAction]) -> Iterator[str]:
    spooled = getattr(actions, "lines", None)  # the spool holds them encoded
    return spooled() if spooled is not None else map(PlanLines().line, actions)


@dataclass
class Result:
    outcomes: Sequence[Outcome]  # a list, or a local apply's compact ``Outcomes``
    started_at: int
    requests: int = 0  # HTTP requests made (sync + send); 0 on the local library
    source: dict[str, Any] = field(default_factory=lambda: {"kind": "local"})

    def each(self, state: str) -> Iterator[Outcome]:
        """The outcomes in ``state``, in plan order."""
        if isinstance(self.outcomes, Outcomes):
            return self.outcomes.of(state)
        return (o for o in self.outcomes if o.state == state)

    def count(self, state: str) -> int:
        if isinstance(self.outcomes, Outcomes):
            return self.outcomes.count(state)
        return sum(1 for o in self.outcomes if o.state == state)

    @property
    def succeeded(self) -> list[Outcome]:
        return list(self.each("succeeded"))

    @property
    def failed(self) -> list[Outcome]:
        return list(self.each("failed"))

    @property
    def skipped(self) -> list[Outcome]:
        return list(self.each("skipped"))

    @property
    def ok(self) -> bool:
        return not self.count("failed")

    def to_json(self, *, lists: bool = True) -> dict[str, Any]:
        """The result document; without ``lists``, only its head and summary."""
        counts = {state: self.count(state) for state in STATES}
        head = {
            "format_version": FORMAT_VERSION,
            "started_at": iso(self.started_at),
            "source": self.source,
            "requests": self.requests,
            "summary": {
                "planned": len(self.outcomes),
                "sent": len(self.outcomes) - counts["skipped"],
                "succeeded": counts["succeeded"],
                "failed": counts["failed"],
                "skipped": counts["skipped"],
            },
        }
        if not lists:
            return head
        return {
            **head,
            "failed": [o.to_json() for o in self.failed],
            "skipped": [o.to_json() for o in self.skipped],
            "succeeded": [o.to_json() for o in self.succeeded],
        }

    def write(self, stream: TextIO) -> None:
        """The result document, one outcome per line (as ``Plan.write``),
        written as it is made: a first run's 100k+ outcomes are never held
        as one list of objects or one string."""
        head = self.to_json(lists=False)
        stream.write("{\n")
        for key, value in head.items():
            stream.write(f"  {json.dumps(key)}: {compact(value)},\n")
        states = ("failed", "skipped", "succeeded")
        for number, state in enumerate(states):
            comma = "," if number < len(states) - 1 else ""
            if isinstance(self.outcomes, Outcomes):
                entries = self.outcomes.encoded(state) if self.count(state) else iter(())
            else:
                entries = (compact(o.to_json()) for o in self.each(state))
            first = next(entries, None)
            if first is None:
                stream.write(f'  "{state}": []{comma}\n')
                continue
            stream.write(f'  "{state}": [\n    {first}')
            while block := list(itertools.islice(entries, 1000)):
                stream.write(",\n    " + ",\n    ".join(block))
            stream.write(f"\n  ]{comma}\n")
        stream.write("}\n")

    def dumps(self) -> str:
        buffer = io.StringIO()
        self.write(buffer)
        return buffer.getvalue()
