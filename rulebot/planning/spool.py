"""A plan's actions on disk: flat memory whatever the plan's size.

A first run on a large library plans an action or two per item: 1.7M
actions for 1M items, 1.4 GB as objects. The one-pass planner hands each
rule's actions to a ``Spool`` as it makes them, in the order it makes them
(a chunk of the library at a time, every rule in turn). Small plans stay
objects in memory, exactly as before; past ``limit`` actions the spool
writes them to an unlinked temporary file as the plan's JSON lines, and the
plan reads them back as a sequence (``SpooledActions``), a block at a time.

The plan's order is its parts one after another (rule k's actions, then
its unmarks), as ``OnePass.finish`` concatenates its lists, each part in
item order. The one pass meets the items oldest first, so a part's actions
come in item order, except that the keep rule lets the items it held back
go on late, in batches that are in item order themselves. Each part is
therefore two sorted streams (on time, and late), and reading it merges
them by the item's place in the library: no sort, nothing held.
"""

from __future__ import annotations

import heapq
import itertools
import os
import weakref
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import IO, overload

from rulebot.errors import RulebotError
from rulebot.planning.planned import DESTRUCTIVE, PlanLines, PlannedAction, Tally, decode_line

BLOCK = 256  # lines a stream buffers before they are written (and read back) together
SPILL = 20_000  # actions a plan holds as objects before it goes to disk


class _Stream:
    """One sorted stream of a part: ``place<TAB>line`` rows, in blocks."""

    __slots__ = ("blocks", "buffer", "count")

    def __init__(self) -> None:
        self.blocks: list[tuple[int, int]] = []  # (offset, length) in the file
        self.buffer: list[str] = []
        self.count = 0


class Spool:
    """Actions per part, each added as (the item's place in the library, one
    rule's actions on it, whether it came late); ``limit``: how many stay
    objects before they go to disk."""

    def __init__(
        self, parts: int, limit: int | None = None, *, places_are_items: bool = True
    ) -> None:
        # (place, actions, late) per part while they are held as objects
        self.parts: list[list[tuple[int, list[PlannedAction], bool]]] = [[] for _ in range(parts)]
        self.limit = SPILL if limit is None else limit
        self.held = 0  # actions held as objects
        self.file: IO[bytes] | None = None
        self.streams: list[tuple[_Stream, _Stream]] = []
        self.lines = PlanLines()
        self.names: Counter[str] = Counter()
        self.rules: Counter[str] = Counter()
        # a bit per place (the planner's places are items): an item with an action
        self.items: bytearray | None = bytearray() if places_are_items else None
        self.wide: set[int] = set()  # parts with an account-wide action
        self.end = 0  # the file's length

    def add(self, part: int, place: int, actions: list[PlannedAction], late: bool = False) -> None:
        if self.file is None:
            self.parts[part].append((place, actions, late))
            self.held += len(actions)
            if self.held > self.limit:
                self._spill()
            return
        if not actions:
            return
        stream = self.streams[part][late]
        line, names, buffer = self.lines.line, self.names, stream.buffer
        prefix = f"{place}\t"
        for action in actions:
            names[action.send["action"]] += 1
            buffer.append(f"{prefix}{line(action)}\n")
        self.rules[actions[0].rule] += len(actions)  # one rule's actions on one item
        stream.count += len(actions)
        if actions[0].item is None:
            self.wide.add(part)
        elif self.items is not None:
            byte = place >> 3
            if byte >= len(self.items):
                self.items.extend(bytes(byte + 1 - len(self.items) + 4096))
            self.items[byte] |= 1 << (place & 7)
        if len(buffer) >= BLOCK:
            self._write(stream)

    def _spill(self) -> None:
        import tempfile  # here: it costs every run ~5 ms to import, and most never spill

        try:  # unlinked: gone when the plan is, or if the process dies; the plan owns it
            self.file = tempfile.TemporaryFile()  # noqa: SIM115
        except OSError as err:
            raise _cannot(err) from None
        # closed (not left to the garbage collector) when its owner goes: this
        # spool until ``finish`` hands it on, then the plan's actions
        self._closer = weakref.finalize(self, self.file.close)
        self.streams = [(_Stream(), _Stream()) for _ in self.parts]
        held, self.parts = self.parts, []
        for part, entries in enumerate(held):
            for place, actions, late in entries:  # each stream in its order
                self.add(part, place, actions, late)
        self.held = 0

    def _write(self, stream: _Stream) -> None:
        assert self.file is not None
        data = "".join(stream.buffer).encode("utf-8")
        try:
            self.file.write(data)
        except OSError as err:  # a full disk, mostly
            raise _cannot(err) from None
        stream.blocks.append((self.end, len(data)))
        self.end += len(data)
        stream.buffer.clear()

    def finish(self, late: Sequence[int] = ()) -> Sequence[PlannedAction]:
        """The plan's actions. ``late``: the parts whose items may have come
        late (``add(..., late=True)``)."""
        if self.file is None:
            for part in late:  # stable: one item's actions keep their order
                self.parts[part].sort(key=_place)
            return [
                action for entries in self.parts for _, actions, _ in entries for action in actions
            ]
        for pair in self.streams:
            for stream in pair:
                if stream.buffer:
                    self._write(stream)
        try:
            self.file.flush()
        except OSError as err:
            raise _cannot(err) from None
        self._closer.detach()
        if self.items is None:  # a saved plan's: read in its order, counted when asked
            return SpooledActions(self.file, self.streams, self.names, self.rules)
        items = sum(byte.bit_count() for byte in self.items)
        return SpooledActions(self.file, self.streams, self.names, self.rules, items, self.wide)


def _place(entry: tuple[int, list[PlannedAction], bool]) -> int:
    return entry[0]


def _cannot(err: OSError) -> RulebotError:
    import tempfile

    return RulebotError(
        f"cannot keep a large plan in a temporary file in {tempfile.gettempdir()}: "
        f"{err.strerror or err}; nothing was changed. Point TMPDIR at a disk with room "
        "(a plan takes about 300 bytes an action)"
    )


def _row_place(row: str) -> int:
    return int(row[: row.index("\t")])


def _numbered(n: int, offset: int, rows: Iterator[str]) -> Iterator[tuple[int, int, int, str]]:
    """The ``n``-th merged part's rows as (place, n, index in the plan, row)."""
    for position, row in enumerate(rows):
        yield _row_place(row), n, offset + position, row


class SpooledActions(Sequence[PlannedAction]):
    """A plan's actions read back from the spool's file, a block at a time:
    iterating decodes each line afresh (no two passes share objects, so
    nothing may key on an action's identity); ``lines()`` gives the JSON
    lines themselves, as ``Plan.write`` writes them. Indexing reads up to
    the index: for tests and the odd lookup, not for loops."""

    def __init__(
        self,
        file: IO[bytes],
        streams: list[tuple[_Stream, _Stream]],
        names: Counter[str],
        rules: Counter[str],
        items: int | None = None,  # None: counted when first asked
        wide: set[int] | None = None,
    ) -> None:
        self.file, self.streams = file, streams
        weakref.finalize(self, file.close)
        self.names, self.rules, self.items = names, rules, items
        self.size = sum(stream.count for pair in streams for stream in pair)
        # parts with an account-wide action (None: all, as for a saved plan,
        # whose places are not items): read in order, never merged with others
        self.wide = set(range(len(streams))) if wide is None else wide

    def __len__(self) -> int:
        return self.size

    def _rows(self, stream: _Stream) -> Iterator[str]:
        fd = self.file.fileno()
        for offset, length in stream.blocks:
            # "\n" ends a row: JSON escapes it inside strings (splitlines would
            # also split on U+2028 and the like, which JSON leaves as they are)
            yield from os.pread(fd, length, offset).decode("utf-8").split("\n")[:-1]

    def _part(self, part: int) -> Iterator[str]:
        """A part's rows in item order: its two streams merged."""
        on_time, late = self.streams[part]
        if late.count and on_time.count:
            return heapq.merge(self._rows(on_time), self._rows(late), key=_row_place)
        return self._rows(late if late.count else on_time)

    def lines(self) -> Iterator[str]:
        for part in range(len(self.streams)):
            for row in self._part(part):
                yield row[row.index("\t") + 1 :]

    def by_item(self) -> Iterator[tuple[int, PlannedAction]]:
        """Every action with its index in the plan, in an order that gives
        the same library as the plan's: between account-wide actions (read
        in plan order, each where it stands), the item actions of consecutive
        rules go item by item (each item's in rule order). Item actions
        change only their own item, so one item's order is all that counts;
        a local apply then meets each item once per run of rules, instead of
        once per rule."""
        offsets = list(
            itertools.accumulate((a.count + b.count for a, b in self.streams), initial=0)
        )
        run: list[int] = []
        for part in [*range(len(self.streams)), None]:
            if part is not None and part not in self.wide:
                run.append(part)
                continue
            if run:
                numbered = [_numbered(n, offsets[p], self._part(p)) for n, p in enumerate(run)]
                for _, _, index, row in heapq.merge(*numbered):
                    yield index, decode_line(row[row.index("\t") + 1 :])
                run = []
            if part is not None:
                for position, row in enumerate(self._part(part)):
                    yield offsets[part] + position, decode_line(row[row.index("\t") + 1 :])

    def __iter__(self) -> Iterator[PlannedAction]:
        return map(decode_line, self.lines())

    @overload
    def __getitem__(self, index: int) -> PlannedAction: ...
    @overload
    def __getitem__(self, index: slice) -> list[PlannedAction]: ...
    def __getitem__(self, index: int | slice) -> PlannedAction | list[PlannedAction]:
        if isinstance(index, slice):
            start, stop, step = index.indices(len(self))
            return (
                list(itertools.islice(self, start, stop, step))
                if step > 0
                else [self[i] for i in range(start, stop, step)]
            )
        index = range(len(self))[index]  # negative, and IndexError
        return next(itertools.islice(self, index, None))

    @property
    def deletes(self) -> int:
        return sum(self.names[name] for name in DESTRUCTIVE)

    def tally(self) -> Tally:
        """What ``Plan.summary`` counts, reading the actions back only to
        count the items of a plan that was not planned here (a saved one)."""
        if self.items is None:
            self.items = len({action.item_id for action in self if action.item_id})
        return Tally(self.names, self.rules, self.items, self.deletes)
