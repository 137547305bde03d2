"""The curriculum notebooks: stored clean, each in sync with its jupytext source, and executing top to bottom.

Every lesson is a pair (``notebooks/jupytext.toml``): ``NN-name.py`` in jupytext's percent format, the source to
review, and ``NN-name.ipynb``, what JupyterLab and CI run. Every notebook runs with CVLAB_PROFILE=fast in one
temporary workspace shared by the session (in file order, as a learner would go), on the venv's python3 kernel.
Their assert cells check what each one teaches.
"""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import jupytext
import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
NB_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NB_DIR.glob("[0-9][0-9]-*.ipynb"))
SOURCES = sorted(NB_DIR.glob("[0-9][0-9]-*.py"))
TIMINGS: dict[str, float] = {}


def _cells(nb) -> list[tuple]:
    """What a lesson is: each cell's type, text and tags (ids, outputs and counts are not the lesson)."""
    return [(c.cell_type, c.source, c.metadata.get("tags", []), c.metadata.get("exercise_prompt")) for c in nb.cells]


def test_every_notebook_is_in_sync_with_its_jupytext_source():
    assert [p.stem for p in NOTEBOOKS] == [p.stem for p in SOURCES], "pair them: jupytext --sync notebooks/*.ipynb"
    names = [p.stem for p in NOTEBOOKS]
    assert names[0].startswith("00-") and any(n.startswith("08-") for n in names)
    for source, path in zip(SOURCES, NOTEBOOKS):
        assert _cells(jupytext.read(source)) == _cells(nbformat.read(path, as_version=4)), \
            f"{path.name} differs from {source.name}: run jupytext --sync {path.relative_to(ROOT)}"


def test_an_instructor_edit_in_jupyterlab_reaches_both_versions(tmp_path):
    """Save a changed markdown cell of notebook 03 through jupytext's contents manager (what JupyterLab's save
    does with the pairing): both files change, a re-sync changes nothing, and the learner and instructor
    versions carry the new text."""
    from jupytext.cli import jupytext as jupytext_cli
    from jupytext import TextFileContentsManager

    from cvlab import notebook_versions as nv

    work = tmp_path / "notebooks"
    shutil.copytree(NB_DIR, work)
    name = next(p.name for p in NOTEBOOKS if p.name.startswith("03-"))
    cm = TextFileContentsManager(root_dir=str(work))
    model = cm.get(name)
    cell = next(c for c in model["content"].cells if c.cell_type == "markdown" and c.source.startswith("## 1"))
    edit = "An instructor's note: in class we train Quick first, together."
    cell.source += "\n\n" + edit
    cm.save(model, name)
    source = work / name.replace(".ipynb", ".py")
    assert edit in source.read_text() and edit in (work / name).read_text()
    jupytext_cli(["--sync", str(work / name), "--quiet"])
    assert _cells(jupytext.read(source)) == _cells(nbformat.read(work / name, as_version=4))
    versions = tmp_path / "versions"
    nv.write_versions(versions, "both", source=work)
    for version in nv.VERSIONS:
        made = nbformat.read(versions / version / name, as_version=4)
        assert any(edit in c.source for c in made.cells if c.cell_type == "markdown"), version
        assert nv.check_learner(nbformat.read(work / name, as_version=4),
                                nbformat.read(versions / "learner" / name, as_version=4)) == []


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
