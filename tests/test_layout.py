"""The tree shows the architecture: one package per concept, one-way imports (function-level
imports included), modules of a readable size, and the pipeline as the one orchestrator."""
from __future__ import annotations

import ast
from pathlib import Path

from tests.helpers import ROOT

PACKAGE = ROOT / "brittle"
# the packages of brittle, bottom to top; a package may import its own and those below it
LAYERS = [("runtime",), ("data", "ssl", "retrain", "counterfactual", "eval"), ("scorers",),
          ("stages",), ("pipeline", "api"), ("report", "cli")]


def _module(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def _imports() -> dict[str, set[str]]:
    modules = {_module(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.ImportFrom) and node.module
                and node.module.startswith("brittle")):
                found.add(node.module)
                found.update(f"{node.module}.{a.name}" for a in node.names)
            elif isinstance(node, ast.Import):
                found.update(a.name for a in node.names if a.name.startswith("brittle"))
        graph[name] = {m for m in found if m in modules and m != name}
    return graph


def _layer(module: str) -> int:
    top = module.split(".")[1] if "." in module else ""
    return next((i for i, names in enumerate(LAYERS) if top in names), -1)


def test_import_graph_has_no_cycle():
    graph, state = _imports(), {}

    def visit(m: str, path: list[str]) -> None:
        state[m] = "open"
        for n in graph[m]:
            if n.startswith(m + ".") or m.startswith(n + "."):
                continue  # a package and its own modules (re-exports)
            assert state.get(n) != "open", " -> ".join([*path, m, n])
            if n not in state:
                visit(n, [*path, m])
        state[m] = "done"

    for module in graph:
        if module not in state:
            visit(module, [])


def test_imports_go_down_the_layers():
    upward = [f"{m} imports {n}" for m, deps in _imports().items() for n in deps
              if _layer(m) >= 0 and _layer(n) > _layer(m)]
    assert not upward, upward


def test_every_concept_has_one_package():
    tops = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert tops == {"runtime", "data", "ssl", "retrain", "counterfactual", "eval", "scorers",
                    "stages", "report", "cli"}
    loose = {p.name for p in PACKAGE.glob("*.py")}
    assert loose == {"__init__.py", "__main__.py", "api.py", "pipeline.py"}, loose


def test_modules_are_small():
    big = {str(p.relative_to(ROOT)): n for p in PACKAGE.rglob("*.py")
           if (n := len(p.read_text().splitlines())) > 260}
    assert not big, big


def test_only_the_pipeline_calls_stages():
    """No stage runs another stage: each `run` is called from brittle/pipeline.py (or the API).
    A stage may reuse another's declared slice (DEPENDS_ON) or key, never its run()."""
    stages = sorted((PACKAGE / "stages").glob("*.py"))
    calls = [f"{path.name} calls {other.stem}.run" for path in stages for other in stages
             if other != path and any(f"{other.stem}{alias}.run(" in path.read_text()
                                      for alias in ("", "_stage"))]
    assert not calls, calls
