"""The package's shape, checked from the source: no import cycles, models/ below nas/, modules of a readable size."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORE = ("genotypes.py", "param_setting.py")


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    files = [ROOT / c for c in CORE] + sorted((ROOT / "nas").rglob("*.py")) + sorted((ROOT / "models").rglob("*.py"))
    return {_module_name(f): f for f in files}


def _imports(path: Path, name: str, known: set[str]) -> set[str]:
    """Internal modules ``path`` imports, anywhere in the file (function-level imports count too)."""
    out: set[str] = set()
    is_pkg = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                pkg = name.split(".") if is_pkg else name.split(".")[:-1]
                pkg = pkg[: len(pkg) - (node.level - 1)]
                base = ".".join([*pkg, base] if base else pkg)
            targets = [f"{base}.{a.name}" for a in node.names] + [base]
        else:
            continue
        for t in targets:
            while t and t not in known:  # the longest known module prefix (from pkg import module / name)
                t = t.rpartition(".")[0]
            if t and t != name:
                out.add(t)
    return out


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    known = set(mods)
    return {m: _imports(p, m, known) for m, p in mods.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for d in sorted(graph.get(m, ())):
            if state.get(d) == 1:
                return stack[stack.index(d):] + [d]
            if d not in state:
                found = visit(d)
                if found:
                    return found
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state:
            found = visit(m)
            if found:
                return found
    return None


def test_no_import_cycles():
    graph = _graph()
    assert len(graph) > 30  # the graph was really built
    cycle = _cycle(graph)
    assert cycle is None, " -> ".join(cycle)


def test_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_models_import_nothing_of_nas():
    graph = _graph()
    bad = {m: sorted(d for d in deps if d == "nas" or d.startswith("nas."))
           for m, deps in graph.items() if m.split(".")[0] == "models"}
    assert not any(bad.values()), bad


def test_core_modules_and_scripts_stay_readable():
    long_modules = {str(p.relative_to(ROOT)): n for p in _modules().values()
                    if (n := len(p.read_text().splitlines())) > 460}
    assert not long_modules, long_modules
    scripts = [p for p in ROOT.glob("*.py") if p.name not in CORE]
    long_scripts = {p.name: n for p in scripts if (n := len(p.read_text().splitlines())) > 110}
    assert not long_scripts, long_scripts


OPTIONAL = {"ffcv", "nasbench301", "nas_201_api", "wandb", "matplotlib", "graphviz", "optuna"}


def test_imports_sit_at_the_top_except_optional_packages():
    inside = []
    for name, path in _modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for sub in ast.walk(node):
                    if isinstance(sub, (ast.Import, ast.ImportFrom)):
                        mod = (sub.module if isinstance(sub, ast.ImportFrom) else sub.names[0].name) or ""
                        if mod.split(".")[0] not in OPTIONAL:
                            inside.append(f"{name}:{sub.lineno} {mod}")
    assert not inside, inside
