"""Building many objects at once: a first-run plan, a library read whole."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

# objects made under one pause past which they are frozen rather than scanned
FREEZE_AFTER = 100_000


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic GC while building many objects at once.

    Items, plan actions, sends and their tuples are acyclic: reference
    counting frees them, and the cyclic collector finds nothing in them. Yet
    their allocations trigger collections, and each full one walks every
    object still alive, so the cost grows with the work: a third of the
    time of loading 100k items, and 0.8 s of the 3 s a first-run plan of
    172k actions took.

    Everything made during the pause waits in the youngest generation, and
    the first collection after it would walk it all (0.2 s for a first-run
    plan). When the pause made more than ``FREEZE_AFTER`` objects they are
    frozen instead (``gc.freeze``): reference counting still frees them, the
    collector no longer walks them. A long-lived process (the daemon) calls
    ``gc.unfreeze`` between runs. Nested pauses keep the outermost one's
    choice."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            if gc.get_count()[0] > FREEZE_AFTER:
                gc.freeze()
            gc.enable()
