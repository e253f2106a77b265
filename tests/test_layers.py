"""The house has one direction: every production module's imports (read from its source with `ast`, at any depth of
the file) point to its own layer or a lower one, and no modules import each other in a circle.

Layers, lowest first: models/config/extensions < database < billing, ingest < jobs, reports
< views, api, web, commands < app < dev, gunicorn.conf. tests/, bench/ and migrations/ are not production code.
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOT_PRODUCTION = {"tests", "bench", "migrations", "instance", "static", "templates", ".venv", "node_modules"}
LAYERS = (
    ("models", "config", "extensions"),
    ("database",),
    ("billing", "ingest"),
    ("jobs", "reports", "webhooks"),
    ("views", "api", "web", "commands"),
    ("app",),
    ("dev", "gunicorn"),  # what starts the app: make run's devserver, gunicorn's settings file (gunicorn.conf.py)
)
LAYER = {top: number for number, tops in enumerate(LAYERS) for top in tops}


def production_modules() -> dict[str, Path]:
    """Dotted module name -> file, for every .py file of the app (packages by their __init__.py)."""
    found = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT).parts
        if parts[0] in NOT_PRODUCTION or parts[0].startswith("."):
            continue
        names = list(parts[:-1]) + ([] if path.name == "__init__.py" else [path.stem])
        found[".".join(names)] = path
    return found


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The production modules `name` imports anywhere in its file (module level or inside functions)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: set[str] = set()

    def nearest(dotted: str) -> str | None:
        while dotted and dotted not in modules:
            dotted = dotted.rpartition(".")[0]
        return dotted or None

    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets.update(filter(None, (nearest(alias.name) for alias in node.names)))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                target = nearest(f"{base}.{alias.name}") if f"{base}.{alias.name}" in modules else nearest(base)
                if target:
                    targets.add(target)
    targets.discard(name)
    return targets


def import_graph() -> dict[str, set[str]]:
    modules = production_modules()
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def layer_of(module: str) -> int | None:
    return LAYER.get(module.split(".")[0])


def test_every_production_module_has_a_layer():
    assert [name for name in import_graph() if layer_of(name) is None] == []


def test_no_import_points_up_a_layer():
    graph = import_graph()
    upward = sorted(f"{name} (layer {layer_of(name)}) imports {target} (layer {layer_of(target)})"
                    for name, targets in graph.items() for target in targets
                    if layer_of(target) is not None and layer_of(name) is not None and layer_of(target) > layer_of(name))
    assert upward == []


def test_no_modules_import_each_other_in_a_circle():
    assert circles(import_graph()) == []


def test_the_walk_sees_imports_inside_functions_and_finds_a_circle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert circles(graph) == [["a", "b", "c"]]
    modules = production_modules()
    # app.py imports views only inside create_app: the walk still sees it
    assert "views" in imports_of("app", modules["app"], modules)
