"""The package's shape, checked: imports go down the layers, no module
imports another that imports it back (even lazily, inside a function), each
source keeps to its own package, and no module grows past ~600 lines.

docs/architecture.md draws the same layers; this is what keeps it true.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "rulebot"
MAX_LINES = 600

# lowest first: a module may import from its own layer and the ones before it
LAYERS = (
    ("infra", ("__init__", "errors", "files", "http", "safe", "jsonenc", "bulk", "memo")),
    ("library", ("library",)),
    ("rules", ("rules",)),
    ("planning", ("planning",)),
    ("sources", ("sources",)),
    ("run", ("run",)),
    ("entry", ("cli", "commands", "__main__")),
)
FAKES = ("fake", "fakepocket")  # the fake servers stand apart: infra only


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """Every rulebot module ``name`` imports, at the top or inside a function."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for target in targets:
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _layer(name: str) -> int | None:
    parts = name.split(".")
    top = parts[1] if len(parts) > 1 else "__init__"
    for rank, (_, tops) in enumerate(LAYERS):
        if top in tops:
            return rank
    return None


def _source_package(name: str) -> str | None:
    """``sources.karakeep`` for anything in a source's own package."""
    parts = name.split(".")
    if len(parts) >= 3 and parts[1] == "sources" and (PACKAGE / "sources" / parts[2]).is_dir():
        return ".".join(parts[:3])
    return None


def test_every_module_has_a_layer() -> None:
    unplaced = [
        name
        for name in MODULES
        if _layer(name) is None and name.split(".")[1:2] and name.split(".")[1] not in FAKES
    ]
    assert not unplaced, (
        f"modules in no layer (add them to LAYERS and docs/architecture.md): {unplaced}"
    )


def test_imports_go_down_the_layers() -> None:
    upward = []
    for name, targets in GRAPH.items():
        rank = _layer(name)
        top = name.split(".")[1] if "." in name else ""
        for target in targets:
            if top in FAKES:
                if _layer(target) not in (0,) and target.split(".")[1] not in FAKES:
                    upward.append(f"{name} -> {target} (a fake imports only infra)")
                continue
            if rank is not None and (_layer(target) or 0) > rank:
                upward.append(f"{name} -> {target}")
    assert not upward, "imports up the layers:\n" + "\n".join(sorted(upward))


def test_a_source_keeps_to_its_own_package() -> None:
    """Only the registry (``rulebot.sources``) names every source; shared
    pieces (``sources.base``, the applier…) name none."""
    crossing = []
    for name, targets in GRAPH.items():
        if name == "rulebot.sources" or _layer(name) != LAYERS.index(("sources", ("sources",))):
            continue
        own = _source_package(name)
        for target in targets:
            theirs = _source_package(target)
            if theirs is not None and theirs != own:
                crossing.append(f"{name} -> {target}")
    assert not crossing, "a source reaching into another's package:\n" + "\n".join(crossing)


def test_no_import_cycles() -> None:
    """No module imports one that (directly or through others) imports it back."""
    cycles = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for target in sorted(GRAPH.get(name, ())):
            # a package's __init__ importing its own submodules is not a cycle
            # of responsibilities: skip parent -> child edges
            if target.startswith(name + "."):
                continue
            if state.get(target) == 1:
                cycles.append(" -> ".join([*path[path.index(target) :], target]))
            elif target not in state:
                visit(target, [*path, target])
        state[name] = 2

    for name in sorted(GRAPH):
        if name not in state:
            visit(name, [name])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_module_is_a_big_room(name: str) -> None:
    lines = len(MODULES[name].read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{MODULES[name]} has {lines} lines; split it by responsibility"
