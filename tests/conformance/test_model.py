"""The contract as a model-based test: Hypothesis draws a library, a rules
file from the vocabulary the source allows, and an interleaving of edits made
on the service by another client, clock skew, ``plan``, ``run``,
``plan --out`` + ``apply`` and ``undo``; after every step the invariants of
design.md hold on the service itself:

- what the dry run showed is what happened: after ``run`` or ``apply`` the
  service holds the planner's simulated library (tags compared the service's
  way: case-insensitively);
- the next plan is exactly what the planner plans on that simulated library
  (so a second run plans nothing unless the rules themselves keep working);
- ``undo`` right after a run gives back what the service held before it,
  tag spelling included;
- the mirror an incremental sync keeps is the library a full sync reads.

CI runs a few derandomized examples per source (``RULEBOT_MODEL_EXAMPLES``,
default 2 of 6 steps, 20 under ``HYPOTHESIS_PROFILE=thorough``;
``RULEBOT_MODEL_STEPS``); run it long with, for instance::

    RULEBOT_MODEL_EXAMPLES=300 HYPOTHESIS_PROFILE=explore \\
        .venv/bin/pytest tests/conformance/test_model.py -p no:cacheprovider

Every failure it finds is kept as a named test in test_found.py.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from tests.helpers import examples

from .backends import BACKENDS, DAY, STORE, Backend, Held, Seed
from .model import assert_holds, folded, held_of, id_free, mirror, replanned, simulated

EXAMPLES = int(os.environ.get("RULEBOT_MODEL_EXAMPLES", str(examples(2))))
STEPS = int(os.environ.get("RULEBOT_MODEL_STEPS", "6"))
TAG_POOL = ("news", "News", "dev", "Dev", "python", "keep", "tmp", "js", "javascript")
tag = st.sampled_from(TAG_POOL)


def item_rules(caps_refuses: frozenset[str], actions: frozenset[str]) -> st.SearchStrategy[str]:
    """One rule with a `where`, as YAML flow text."""
    wheres = [
        st.builds(lambda t: f"{{tag: {t}}}", tag),
        st.builds(lambda t: f"{{not: {{tag: {t}}}}}", tag),
        st.just("{added: {older_than: 30d}}"),
        st.just("{untagged: false}"),
    ]
    if "status" not in caps_refuses:
        wheres.append(st.builds(lambda t: f"{{tag: {t}, status: unread}}", tag))
    if "favorite" not in caps_refuses:
        wheres.append(st.just("{favorite: true}"))
    words = [
        st.builds(lambda t: f"{{tags_add: [{t}]}}", tag),
        st.builds(lambda t: f"{{tags_remove: [{t}]}}", tag),
        st.builds(lambda a, b: f"{{tags_replace: [{a}, {b}]}}", tag, tag),
        st.just("tags_clear"),
        st.just("delete"),
    ]
    words += [st.just(w) for w in ("archive", "readd", "favorite", "unfavorite") if w in actions]
    return st.builds(
        lambda where, acts: f"    where: {where}\n    actions: [{', '.join(acts)}]\n",
        st.one_of(wheres),
        st.lists(st.one_of(words), min_size=1, max_size=2),
    )


def wide_rules() -> st.SearchStrategy[str]:
    return st.one_of(
        st.builds(
            lambda a, b: f"    actions: [{{tag_rename: {{old_tag: {a}, new_tag: {b}}}}}]\n",
            tag,
            tag,
        ).filter(lambda text: "old_tag: x, new_tag: x" not in text),
        st.builds(lambda t: f"    actions: [{{tag_delete: {t}}}]\n", tag),
        st.builds(
            lambda n, t: (
                f'    actions: [{{add: {{url: "https://new.example/{n}", tags: [{t}]}}}}]\n'
            ),
            st.integers(0, 2),
            tag,
        ),
    )


class Contract(RuleBasedStateMachine):
    """One source, one library, one rules file; steps in any order."""

    backend: Backend

    def __init__(self) -> None:
        super().__init__()
        self.backend = type(self).backend
        self.before_run: dict[str, Held] | None = None
        self.urls = 0

    @initialize(
        data=st.data(),
        seeds=st.lists(
            st.tuples(
                st.lists(tag, max_size=3, unique=True),
                st.booleans(),
                st.booleans(),
                st.sampled_from([1, 40, 400]),
            ),
            min_size=1,
            max_size=6,
        ),
    )
    def setup(self, data: st.DataObject, seeds: list[tuple[list[str], bool, bool, int]]) -> None:
        backend = self.backend
        caps = backend.caps
        library = [
            Seed(
                f"https://m.example/{n}",
                f"Item {n}",
                tuple(tags),
                archived=archived and "status" not in caps.refuses,
                favorite=favorite and "favorite" not in caps.refuses,
                age_days=age,
            )
            for n, (tags, archived, favorite, age) in enumerate(seeds)
        ]
        backend.seed(library)
        count = data.draw(st.integers(1, 3), label="rules")
        texts = []
        for number in range(count):
            if data.draw(st.integers(0, 3), label="kind") == 0:
                body = data.draw(wide_rules(), label="account-wide rule")
            else:
                body = data.draw(item_rules(caps.refuses, caps.actions), label="rule")
            texts.append(f"  - name: r{number}\n{body}")
        self.config = backend.configure(
            "limits: {max_actions: 1000, max_deletes: 1000}\nrules:\n" + "".join(texts)
        )
        backend.sync()

    # -- another client edits the service --------------------------------------------------
    def _ids(self) -> list[str]:
        return sorted(self.backend.held())

    @rule(data=st.data(), tags=st.lists(tag, max_size=3))
    def edit_tags(self, data: st.DataObject, tags: list[str]) -> None:
        ids = self._ids()
        if ids:
            self.backend.set_tags(data.draw(st.sampled_from(ids)), tags)
            self.before_run = None

    @rule(data=st.data(), archived=st.booleans())
    def edit_status(self, data: st.DataObject, archived: bool) -> None:
        ids = self._ids()
        if ids and "status" not in self.backend.caps.refuses:
            self.backend.set_archived(data.draw(st.sampled_from(ids)), archived)
            self.before_run = None

    @rule(data=st.data())
    def edit_delete(self, data: st.DataObject) -> None:
        ids = self._ids()
        if ids:
            self.backend.remove(data.draw(st.sampled_from(ids)))
            self.before_run = None

    @rule(tags=st.lists(tag, max_size=2, unique=True))
    def edit_add(self, tags: list[str]) -> None:
        self.urls += 1
        self.backend.add(Seed(f"https://e.example/{self.urls}", "Edited in", tuple(tags)))
        self.before_run = None

    @rule(old=tag, new=tag)
    def edit_rename(self, old: str, new: str) -> None:
        if old.lower() != new.lower():
            self.backend.rename_tag(old, new)
            self.before_run = None

    @rule(hours=st.sampled_from([2, 30]))
    def time_passes(self, hours: int) -> None:
        self.backend.advance(hours * 3600)

    @rule(hours=st.sampled_from([-3, 0, 3]))
    def clocks_disagree(self, hours: int) -> None:
        """rulebot's clock runs ahead of or behind the service's."""
        self.backend.skew = hours * 3600

    # -- rulebot ----------------------------------------------------------------------------
    def _planned(self) -> tuple[dict[str, Held], dict[str, object], list[tuple[str, ...]]]:
        # a source whose capabilities say only a full scan sees deletions gets
        # one: the model plans on the library as the service holds it
        full = ("--full",) if self.backend.caps.deletions_found_by is not None else ()
        self.backend.sync(*full)
        library, _ = simulated(self.config, self.backend.now + self.backend.skew)
        expected = {item.url: held_of(item, self.backend.caps) for item in library.values()}
        now = self.backend.now + self.backend.skew
        return expected, library, replanned(self.config, library, now)  # type: ignore[return-value]

    def _check_after(self, expected: dict[str, Held], next_plan: list[tuple[str, ...]]) -> None:
        assert_holds(self.backend, expected, what="after the apply")
        code, out, err = self.backend.cli("plan", "--format", "json")
        assert code == 0, err
        shown = json.loads(out)["actions"]
        current = {item.item_id: item for item in mirror().values()}
        from rulebot.planning.plan import PlannedAction

        real = sorted(
            id_free(PlannedAction(a["rule"], a["send"], a.get("item")), current) for a in shown
        )
        if not next_plan:
            assert real == [], f"a second run planned {real}"

    @rule()
    def run(self) -> None:
        expected, _, next_plan = self._planned()
        before = self.backend.by_url()
        code, out, err = self.backend.cli("run", "--format", "json")
        assert code == 0, err + out
        assert json.loads(out)["summary"]["failed"] == 0, out
        self._check_after(expected, next_plan)
        self.before_run = before if self.backend.by_url() != before else None

    @rule()
    def plan_then_apply(self) -> None:
        expected, _, next_plan = self._planned()
        code, _, err = self.backend.cli("plan", "--out", "plan.json")
        assert code == 0, err
        code, out, err = self.backend.cli("apply", "plan.json", "--format", "json")
        assert code == 0, err + out
        result = json.loads(out)
        assert result["summary"]["failed"] == result["summary"]["skipped"] == 0, out
        self._check_after(expected, next_plan)
        self.before_run = None

    @precondition(lambda self: self.before_run is not None)
    @rule()
    def undo(self) -> None:
        before = self.before_run
        assert before is not None
        code, out, err = self.backend.cli("undo", "--format", "json")
        assert code == 0, err + out
        after = self.backend.by_url()
        assert sorted(after) == sorted(before), "undo: the items differ"
        for url, held in before.items():
            assert after[url] == held, f"undo left {url} as {after[url]}, was {held}"
        self.before_run = None

    @invariant()
    def incremental_sync_is_a_full_sync(self) -> None:
        if not hasattr(self, "config") or self.backend.kind == "local":
            return
        self.backend.sync()
        incremental = {i.url: held_of(i, self.backend.caps) for i in mirror().values()}
        gone = set(incremental) - set(self.backend.by_url())
        if self.backend.caps.deletions_found_by is not None:
            for url in gone:  # the capability says only its full scan sees these
                incremental.pop(url)
        assert folded(incremental) == folded(self.backend.by_url())


@pytest.mark.parametrize("name", list(BACKENDS))
def test_the_contract_holds_on_random_libraries_and_interleavings(
    name: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    request: pytest.FixtureRequest,
) -> None:
    from tests.helpers import clear_rulebot_env

    monkeypatch.chdir(tmp_path)
    clear_rulebot_env(monkeypatch)

    class OnThisSource(Contract):  # one per example: a fresh store and a running backend
        def __init__(self) -> None:
            shutil.rmtree(STORE.parent, ignore_errors=True)
            Path("plan.json").unlink(missing_ok=True)
            machine_backend = BACKENDS[name](monkeypatch, capsys, request)
            self.context = machine_backend.running()
            OnThisSource.backend = self.context.__enter__()
            super().__init__()

        def teardown(self) -> None:
            self.context.__exit__(None, None, None)

    run_state_machine_as_test(
        OnThisSource,
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=STEPS,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        ),
    )


_ = DAY
