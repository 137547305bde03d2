"""The layout's promises, checked on the source: no import cycle (deferred imports included), the core never
imports the command line, every CVLAB_* setting is read in cvlab/config.py only, and the README lists them all."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "cvlab"


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if "templates" in path.relative_to(PACKAGE).parts:  # files copied into exports, not part of cvlab
            continue
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def import_graph() -> dict[str, set[str]]:
    """Module -> the cvlab modules it imports, from every import statement at any depth (functions too);
    ``from a import b`` points at ``a.b`` when that is a module, else at ``a``; relative imports resolved."""
    mods = _modules()
    graph = {name: set() for name in mods}
    for name, path in mods.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")
                    parts = parts[:len(parts) - node.level + 1]
                    base = ".".join(parts + ([node.module] if node.module else []))
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names]
            else:
                continue
            for target in targets:
                while target and target not in mods:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_walker_sees_deferred_and_relative_imports(tmp_path):
    """The graph is only worth trusting if it finds what hides inside functions: the real cvlab has such edges."""
    graph = import_graph()
    assert "cvlab.errors" in graph["cvlab.rules"]                      # from .errors import CvlabError
    assert "cvlab.predict" in graph["cvlab.active.cache"]              # deferred, inside iteration_predictions
    assert "cvlab.workspace.schema" in graph["cvlab.workspace.store"]  # from . import schema
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles():
    assert cycles(import_graph()) == []


def test_the_core_never_imports_the_command_line():
    graph = import_graph()
    offenders = sorted(m for m, targets in graph.items()
                       if not m.startswith("cvlab.cli") and any(t.startswith("cvlab.cli") for t in targets))
    assert offenders == []


def _setting_reads(path: Path) -> list[str]:
    """CVLAB_* names read from the environment in a file: os.environ[...], os.environ.get(...), os.getenv(...)."""
    found = []
    tree = ast.parse(path.read_text(), str(path))
    named = {}  # module constants holding a setting's name (RUNTIME_ENV = "CVLAB_..."), read through the name
    for node in tree.body:
        if isinstance(node, ast.Assign):
            values = node.value.elts if isinstance(node.value, ast.Tuple) else [node.value]
            targets = node.targets[0].elts if isinstance(node.targets[0], ast.Tuple) else node.targets
            for target, value in zip(targets, values):
                if isinstance(target, ast.Name) and isinstance(value, ast.Constant):
                    named[target.id] = value
    for node in ast.walk(tree):
        key = None
        if isinstance(node, ast.Subscript) and ast.unparse(node.value) == "os.environ":
            key = node.slice
        elif isinstance(node, ast.Call) and ast.unparse(node.func) in ("os.environ.get", "os.getenv",
                                                                      "os.environ.setdefault", "os.environ.pop"):
            key = node.args[0] if node.args else None
        if isinstance(key, ast.Name):
            key = named.get(key.id, key)
        if isinstance(key, ast.Constant) and str(key.value).startswith("CVLAB_"):
            found.append(key.value)
    return found


def test_settings_are_read_in_config_only():
    reads = {str(p.relative_to(ROOT)): _setting_reads(p) for p in _modules().values()}
    offenders = {f: names for f, names in reads.items() if names and f != "cvlab/config.py"}
    assert offenders == {}, offenders


def test_every_setting_has_a_default_a_meaning_and_a_readme_row():
    from cvlab import config

    settings = config.all_settings()
    names = {s.env for s in settings}
    assert len(names) == len(settings) and all(n.startswith("CVLAB_") for n in names)
    assert all(s.meaning and s.shown_default for s in settings)
    used = {n for p in _modules().values() for n in _setting_reads(p)}
    assert used <= names
    assert config.table() in (ROOT / "README.md").read_text(), "paste cvlab.config.table() into the README"


@pytest.mark.parametrize("raw, expected", [("8", 8.0), (" 0.5 ", 0.5)])
def test_settings_are_typed_and_bad_values_say_what_to_do(raw, expected):
    from cvlab import config
    from cvlab.errors import CvlabError

    assert config.settings({"CVLAB_SECONDS_PER_BUDGET_HOUR": raw}).seconds_per_budget_hour == expected
    assert config.settings({}).seconds_per_budget_hour == 60.0 and config.settings({}).detection_epochs is None
    assert config.settings({"CVLAB_PREDICTOR_CACHE": "3"}).predictor_cache == 3
    with pytest.raises(CvlabError) as e:
        config.settings({"CVLAB_PREDICTOR_CACHE": "lots"}).predictor_cache
    assert e.value.code == "BadRequest" and "CVLAB_PREDICTOR_CACHE" in e.value.message
    assert "***" in repr(config.settings({"CVLAB_TRAINING_KEY": "secret"}))
    assert "secret" not in repr(config.settings({"CVLAB_TRAINING_KEY": "secret"}))


def test_every_lazy_widget_name_resolves_to_its_module():
    """``cvlab.widgets.X`` finds every widget a notebook names, the quiz ones included."""
    import importlib

    from cvlab import widgets

    assert {"ExamWidget", "review_cell", "CaseStudyCell", "progress_view", "quiz_cell"} <= set(widgets.__all__)
    for name, module in widgets._EXPORTS.items():
        assert getattr(widgets, name) is getattr(importlib.import_module(f"cvlab.widgets.{module}"), name), name
