"""``Memo``: a bounded cache that hot loops read with a plain subscript."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Memo(dict[K, V], Generic[K, V]):
    """``memo[key]`` is ``compute(key)``, remembered.

    The planner asks the same small questions of every item on every rule
    (an item's folded tags, its host, whether its tags are only grace
    marks), and a library repeats the answers. ``functools.lru_cache`` costs
    a Python-level call per question; a hit here is one dictionary lookup,
    which generated conditions (``Env``) read inline as ``memo[i.tags]``.

    Bounded: past ``kept`` entries it forgets them all at once (a whole
    library's worth would hold megabytes for no gain; an LRU order would
    cost every hit). The callers ask in runs, a chunk of items at a time, so
    what they need again is relearned within one chunk."""

    def __init__(self, compute: Callable[[K], V], kept: int = 8192) -> None:
        super().__init__()
        self.compute, self.kept = compute, kept

    def __missing__(self, key: K) -> V:
        if len(self) >= self.kept:
            self.clear()
        found = self[key] = self.compute(key)
        return found
