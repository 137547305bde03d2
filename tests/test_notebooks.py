"""The curriculum notebooks: stored clean, in sync with notebooks/_build.py, and executing top to bottom.

Every notebook runs with CVLAB_PROFILE=fast in one temporary workspace shared by the session (in file order,
as a learner would go), on the venv's python3 kernel. Their assert cells check what each one teaches.
"""
from __future__ import annotations

import importlib.util
import json
import time
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
NB_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NB_DIR.glob("[0-9][0-9]-*.ipynb"))
TIMINGS: dict[str, float] = {}


def _build_module():
    spec = importlib.util.spec_from_file_location("nb_build", NB_DIR / "_build.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_notebooks_exist_in_sync_with_the_build_script():
    mod = _build_module()
    names = [p.stem for p in NOTEBOOKS]
    assert names == sorted(mod.NOTEBOOKS), "run: .venv/bin/python notebooks/_build.py"
    assert names[0].startswith("00-") and any(n.startswith("08-") for n in names)
    for path in NOTEBOOKS:
        stored = nbformat.read(path, as_version=4)
        sources = [("md" if c.cell_type == "markdown" else
                    "exercise" if "exercise" in c.metadata.get("tags", []) else "code", c.source) for c in stored.cells]
        assert sources == mod.NOTEBOOKS[path.stem], f"{path.name} differs from _build.py: rebuild it"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_stored_without_outputs(path):
    raw = json.loads(path.read_text())
    for cell in raw["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None, path.name
    nbformat.validate(nbformat.reads(path.read_text(), as_version=4))


@pytest.fixture(scope="session")
def nb_env(tmp_path_factory):
    return {"CVLAB_PROFILE": "fast", "CVLAB_WORKSPACE": str(tmp_path_factory.mktemp("nb-workspace")),
            "MPLBACKEND": "Agg", "PYTHONHASHSEED": "0"}


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_executes(path, nb_env, monkeypatch):
    from nbclient import NotebookClient

    for key, value in nb_env.items():
        monkeypatch.setenv(key, value)
    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    NotebookClient(nb, timeout=480, kernel_name="python3", resources={"metadata": {"path": str(NB_DIR)}}).execute()
    TIMINGS[path.stem] = time.perf_counter() - start
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
    print(f"{path.stem}: {TIMINGS[path.stem]:.1f} s")
