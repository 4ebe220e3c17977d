"""What one unit does to one item, gathered before any request is made.

A unit (one rule's actions on one item, ``sources.applier``) may archive
and favourite, add and remove tags in any order; a service with one request
per kind of change wants the sum: the flags as the last action left them,
and the tags to attach and to detach as the server spells them (rulebot
compares tags by the source's fold, most servers exactly). ``gather`` sums
the unit up; a ``delete`` ends it (what came before is moot, nothing after
it runs). A tag the unit adds and then removes again, or the reverse, is
never sent at all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rulebot.library.tagcase import Fold, folded_tags
from rulebot.sources.applier import kept_spellings, split_tags

if TYPE_CHECKING:
    from rulebot.library.item import Item
    from rulebot.planning.plan import PlannedAction


class TagEdit:
    """A unit's tag actions on one item: ``tags`` as the unit leaves them,
    ``attach`` and ``detach`` the spellings to send. ``spell`` is how the
    service stores a new tag (Wallabag lower-cases it); ``by_name``: a
    removal from an item whose tags the mirror does not know names the tags
    as the plan gives them (else there is nothing to remove)."""

    def __init__(
        self,
        current: Item | None,
        fold: Fold,
        *,
        spell: Callable[[str], str] = str,
        by_name: bool = False,
    ) -> None:
        self.tags: list[str] = list(current.tags or ()) if current is not None else []
        self.known = current is not None and current.tags is not None
        self.attach: list[str] = []
        self.detach: list[str] = []
        self._fold, self._spell = fold, spell
        self._by_name = by_name and current is None

    @property
    def after(self) -> tuple[str, ...] | None:
        """The item's tags after the unit (None: the mirror did not know them)."""
        return tuple(self.tags) if self.known else None

    def add(self, tag: str) -> None:
        tag = self._spell(tag)
        if self._fold(tag) in folded_tags(tuple(self.tags), self._fold):
            return
        self.tags.append(tag)
        if tag in self.detach:
            self.detach.remove(tag)
        else:
            self.attach.append(tag)

    def drop(self, spelling: str) -> None:
        if spelling in self.tags:
            self.tags.remove(spelling)
        if spelling in self.attach:
            self.attach.remove(spelling)  # attached by this unit: never send it
        elif spelling not in self.detach:
            self.detach.append(spelling)

    def apply(self, planned: PlannedAction) -> None:
        """One tag action (any other is not a tag change: nothing to do)."""
        name, fold = planned.name, self._fold
        wanted = split_tags(planned.send.get("tags"))
        if name == "tags_add":
            for tag in wanted:
                self.add(tag)
        elif name == "tags_remove":
            gone = folded_tags(tuple(wanted), fold)
            found = [t for t in self.tags if fold(t) in gone]
            for spelling in found if found or not self._by_name else wanted:
                self.drop(spelling)
        elif name in ("tags_replace", "tags_clear"):
            wanted = wanted if name == "tags_replace" else []
            keep = kept_spellings(self.tags, wanted, fold)  # one spelling per wanted tag
            for spelling in [t for t in self.tags if t not in keep]:
                self.drop(spelling)
            for tag in wanted:
                self.add(tag)


@dataclass
class Edit:
    """A unit, summed up: ``delete`` (then nothing else is sent), the
    archived and favourite flags the unit sets last (None: untouched), and
    its tag changes."""

    tags: TagEdit
    delete: bool = False
    archived: bool | None = None
    favorite: bool | None = None


def gather(
    actions: Iterable[PlannedAction],
    current: Item | None,
    fold: Fold,
    *,
    spell: Callable[[str], str] = str,
    by_name: bool = False,
) -> Edit:
    """The unit's ``actions`` on ``current`` (the item as the mirror has it)
    summed up; ``spell`` and ``by_name`` as ``TagEdit`` takes them."""
    edit = Edit(TagEdit(current, fold, spell=spell, by_name=by_name))
    for planned in actions:
        name = planned.name
        if name == "delete":
            edit.delete = True
            return edit
        if name in ("archive", "readd"):
            edit.archived = name == "archive"
        elif name in ("favorite", "unfavorite"):
            edit.favorite = name == "favorite"
        else:
            edit.tags.apply(planned)
    return edit
