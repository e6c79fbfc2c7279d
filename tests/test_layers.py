"""The package's imports follow its layers: no import cycle between modules, and no module imports
from a layer above its own. Every import counts, a function-local one too (a local import hides a
cycle from Python, not from this test). The layers are the ones docs/configuration.md draws."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "relevance"

# lowest first: a module may import from its own layer and the ones before it
LAYERS = [
    ("foundations", {"files", "hardware", "text_tables", "runtime", "data", "config_choices", "plugins"}),
    ("models and metrics", {"modeling", "training", "evaluation"}),
    ("strategies", {"augment"}),
    ("configuration", {"config", "resolvers", "stored_config"}),
    ("runs", {"tracking", "cost", "compare", "model_digests", "model_card", "artifacts"}),
    ("one run", {"pipeline", "submission"}),
    ("entry points", {"train", "predict", "register", "serving", "ui", "grid_cost", "server"}),
]

# Known climbs, each with why it is still there: the list only shrinks (a new climb fails the test).
KNOWN_CLIMBS: dict[tuple[str, str], str] = {}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Every module of the package that `name` imports, at module level or inside a function."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = package_modules()
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def layer_of(module: str) -> int:
    top = module.split(".")[1] if "." in module else ""
    for rank, (_, members) in enumerate(LAYERS):
        if top in members:
            return rank
    raise AssertionError(f"{module}: in no layer of tests/test_layers.py (add `{top}` to one)")


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
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
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def climbs(graph: dict[str, set[str]]) -> set[tuple[str, str]]:
    return {(a, b) for a, targets in graph.items() for b in targets
            if a != "relevance" and b != "relevance" and layer_of(b) > layer_of(a)}


def test_no_import_cycle_between_modules():
    assert cycles(import_graph()) == []


def test_no_module_imports_from_a_layer_above_its_own():
    found = climbs(import_graph())
    new = sorted(found - set(KNOWN_CLIMBS))
    assert not new, "imports from a higher layer:\n" + "\n".join(
        f"  {a} ({LAYERS[layer_of(a)][0]}) imports {b} ({LAYERS[layer_of(b)][0]})" for a, b in new)
    gone = sorted(set(KNOWN_CLIMBS) - found)
    assert not gone, f"fixed: remove from KNOWN_CLIMBS: {gone}"


def test_the_checks_find_a_cycle_and_a_climb():
    graph = {"relevance.data.a": {"relevance.data.b"}, "relevance.data.b": {"relevance.data.a"},
             "relevance.files": {"relevance.tracking.runs"}, "relevance.tracking.runs": set()}
    assert cycles(graph) == [["relevance.data.a", "relevance.data.b"]]
    assert climbs(graph) == {("relevance.files", "relevance.tracking.runs")}


def test_a_function_local_import_counts(tmp_path):
    source = tmp_path / "relevance" / "data" / "late.py"
    source.parent.mkdir(parents=True)
    source.write_text("def f():\n    from relevance.tracking import runs\n    from ..files import atomic_open\n")
    modules = {"relevance.data.late": source, "relevance.tracking.runs": source, "relevance.files": source}
    assert imports_of("relevance.data.late", source, modules) == {"relevance.tracking.runs", "relevance.files"}
