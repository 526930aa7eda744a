"""The package's import structure (DESIGN.md, "The shape"), checked by walking the source's AST.

No module is imported: the test reads every ``colorcli/**/*.py``, collects its imports (module
level and function-local; ``if TYPE_CHECKING:`` blocks count for the layers, not for cycles, since
they never run) and checks:

- typer and rich are imported only by the CLI (``colorcli.cli``);
- imports run downward: cli -> workflows -> services -> foundations (a module may import its own
  layer or a lower one);
- no workflow imports another workflow;
- ``color/`` and ``models/`` import only foundations, and never model files, checkpoints or image
  files (``checkpoint``, ``modelfile``, ``weights``, ``imageio``);
- no import cycle between modules.

Every module must have a layer: a new top-level module or package is added to ``LAYERS`` below
(the test fails until it is), which keeps this picture and DESIGN.md's true.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "colorcli"

CLI, WORKFLOW, SERVICE, FOUNDATION = 0, 1, 2, 3
LAYER_NAMES = {CLI: "cli", WORKFLOW: "workflow", SERVICE: "service", FOUNDATION: "foundation"}

#: Layer of every top-level module or package of colorcli (by its first name below ``colorcli``).
LAYERS: dict[str, int] = {
    # the console entry points and the public facade (``colorcli.Colorizer``, lazy)
    "": CLI,
    "__main__": CLI,
    "cli": CLI,
    # one package or module per job a user starts
    "colorize": WORKFLOW,
    "evaluate": WORKFLOW,
    "training": WORKFLOW,
    "turing": WORKFLOW,
    "gamut": WORKFLOW,
    # shared services
    "checkpoint": SERVICE,
    "modelfile": SERVICE,
    "modelcard": SERVICE,
    "critic": SERVICE,
    "inference": SERVICE,
    "onnx": SERVICE,
    "interpretability": SERVICE,
    "labels": SERVICE,
    "data": SERVICE,
    "plots": SERVICE,
    "losses": SERVICE,
    "metrics": SERVICE,
    # foundations
    "color": FOUNDATION,
    "imageio": FOUNDATION,
    "models": FOUNDATION,
    "events": FOUNDATION,
    "choices": FOUNDATION,
    "device": FOUNDATION,
    "errors": FOUNDATION,
    "fsutil": FOUNDATION,
    "weights": FOUNDATION,
}

#: What ``color/`` and ``models/`` may import: pure colour science, networks and their small needs.
PURE = ("color", "models")
PURE_MAY_IMPORT = {"color", "models", "errors", "device", "choices", "fsutil"}

CLI_ONLY_PACKAGES = {"typer", "rich", "click"}


@dataclass(frozen=True)
class Import:
    target: str  # a colorcli module name, or a third-party top-level package
    line: int
    typing_only: bool


def module_names() -> dict[str, Path]:
    names: dict[str, Path] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = ("colorcli", *path.relative_to(PACKAGE).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


MODULES = module_names()


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _walk(node: ast.AST, typing_only: bool = False) -> Iterator[tuple[ast.AST, bool]]:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child.test):
            for part in child.body:
                yield part, True
                yield from _walk(part, True)
            for part in child.orelse:
                yield part, typing_only
                yield from _walk(part, typing_only)
            continue
        yield child, typing_only
        yield from _walk(child, typing_only)


def _owner(name: str) -> str:
    """The colorcli module that ``name`` (a module or a module's attribute) lives in."""
    while name not in MODULES and "." in name:
        name = name.rsplit(".", 1)[0]
    return name


def imports_of(module: str) -> list[Import]:
    path = MODULES[module]
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[Import] = []
    for node, typing_only in _walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*up, base] if base else up)
            names = [alias.name for alias in node.names]
            if base == "colorcli" and names == ["__version__"]:
                continue  # the version string: a constant, not a dependency on the facade
            targets = [f"{base}.{n}" if f"{base}.{n}" in MODULES else base for n in names]
        for target in targets:
            if target == "colorcli" or target.startswith("colorcli."):
                target = _owner(target)
                if target != module:
                    found.append(Import(target, node.lineno, typing_only))
            else:
                found.append(Import(target.split(".")[0], node.lineno, typing_only))
    return list(dict.fromkeys(found))  # one entry per (target, line)


def top_name(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def layer_of(module: str) -> int:
    return LAYERS[top_name(module)]


#: Imports between modules that have a layer (an unknown one fails test_every_module_has_a_layer).
GRAPH = {
    module: [
        imp
        for imp in imports_of(module)
        if imp.target not in MODULES or top_name(imp.target) in LAYERS
    ]
    for module in MODULES
    if top_name(module) in LAYERS
}


def _where(module: str, imp: Import) -> str:
    return f"{MODULES[module].relative_to(PACKAGE.parent)}:{imp.line} imports {imp.target}"


def test_every_module_has_a_layer() -> None:
    unknown = sorted({top_name(m) for m in MODULES} - set(LAYERS))
    assert not unknown, f"give these a layer in LAYERS (and DESIGN.md): {unknown}"


def test_typer_and_rich_only_in_the_cli() -> None:
    bad = [
        _where(m, imp)
        for m, imps in GRAPH.items()
        for imp in imps
        if imp.target in CLI_ONLY_PACKAGES and layer_of(m) != CLI
    ]
    assert not bad, "typer/rich outside colorcli.cli:\n" + "\n".join(bad)


def test_imports_run_downward() -> None:
    bad = [
        f"{_where(m, imp)} ({LAYER_NAMES[layer_of(m)]} -> {LAYER_NAMES[layer_of(imp.target)]})"
        for m, imps in GRAPH.items()
        for imp in imps
        if imp.target in MODULES and layer_of(imp.target) < layer_of(m)
    ]
    assert not bad, "upward imports:\n" + "\n".join(bad)


def test_no_workflow_imports_another() -> None:
    bad = [
        _where(m, imp)
        for m, imps in GRAPH.items()
        for imp in imps
        if imp.target in MODULES
        and layer_of(m) == WORKFLOW
        and layer_of(imp.target) == WORKFLOW
        and top_name(imp.target) != top_name(m)
    ]
    assert not bad, "a workflow imports another workflow:\n" + "\n".join(bad)


def test_colour_science_and_models_stay_pure() -> None:
    bad = [
        _where(m, imp)
        for m, imps in GRAPH.items()
        if top_name(m) in PURE
        for imp in imps
        if imp.target in MODULES and top_name(imp.target) not in PURE_MAY_IMPORT
    ]
    assert not bad, "color/ or models/ import beyond the foundations:\n" + "\n".join(bad)


def find_cycle(graph: dict[str, list[str]]) -> list[str] | None:
    """A cycle of ``graph`` as a list of nodes (first == last), or None. Iterative DFS."""
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    for root in sorted(graph):
        if state.get(root):
            continue
        stack: list[tuple[str, Iterator[str]]] = [(root, iter(graph[root]))]
        path = [root]
        state[root] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                path.pop()
                state[node] = 2
            elif state.get(child) == 1:
                return [*path[path.index(child) :], child]
            elif not state.get(child):
                state[child] = 1
                path.append(child)
                stack.append((child, iter(graph.get(child, []))))
    return None


def test_find_cycle_finds_cycles() -> None:
    assert find_cycle({"a": ["b"], "b": ["c"], "c": []}) is None
    assert find_cycle({"a": ["b"], "b": ["c"], "c": ["a"]}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": ["a"]}) == ["a", "a"]
    assert find_cycle({"a": ["b", "c"], "b": ["d"], "c": ["d"], "d": []}) is None


def test_no_import_cycles() -> None:
    runtime = {
        m: sorted({imp.target for imp in imps if imp.target in MODULES and not imp.typing_only})
        for m, imps in GRAPH.items()
    }
    # a package imports its own submodules through __init__ re-exports; a submodule that imports
    # its package back is the cycle this finds
    cycle = find_cycle(runtime)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import typer\n", ["typer"]),
        ("from colorcli.color.lab import rgb_to_lab\n", ["colorcli.color.lab"]),
        ("from colorcli import fsutil\n", ["colorcli.fsutil"]),
        ("def f():\n    from colorcli.errors import UsageError\n", ["colorcli.errors"]),
        ("from colorcli import __version__\n", []),
    ],
)
def test_imports_are_collected(tmp_path: Path, source: str, expected: list[str]) -> None:
    # the collector on a stand-in module (function-local imports and package attributes included)
    name = "colorcli.device"
    original = MODULES[name]
    probe = tmp_path / "device.py"
    probe.write_text(source, encoding="utf-8")
    MODULES[name] = probe
    try:
        assert [imp.target for imp in imports_of(name)] == expected
    finally:
        MODULES[name] = original


def test_type_checking_imports_are_marked() -> None:
    tree = ast.parse("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import torch\n")
    marks = [(type(n).__name__, t) for n, t in _walk(tree) if isinstance(n, ast.Import)]
    assert marks == [("Import", True)]
