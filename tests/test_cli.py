"""CLI frame: lazy dispatch, doctor, lab (dry run), and `import cvlab` staying light."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import types

import nbformat
import pytest

from cvlab import Workspace, cli


def test_import_cvlab_does_not_import_torch():
    code = "import sys, cvlab; cvlab.Workspace; print('torch' in sys.modules, 'ipywidgets' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_help_and_unknown_command(capsys):
    assert cli.main([]) == 2
    out = capsys.readouterr().out
    assert all(name in out for name in cli.COMMANDS)
    with pytest.raises(SystemExit):
        cli.main(["frobnicate"])


def test_missing_module_is_not_available_yet(monkeypatch, capsys):
    monkeypatch.setitem(cli.COMMANDS, "ghost", ("cvlab.ghost_module_xyz", "nothing"))
    assert cli.main(["ghost"]) == 2
    assert "not available yet" in capsys.readouterr().err


def test_dispatch_and_cvlab_errors(monkeypatch, capsys):
    from cvlab.errors import CvlabError
    mod = types.ModuleType("cvlab_fake_cmd")
    mod.configure = lambda p: p.add_argument("--fail", action="store_true")

    def run(args):
        if args.fail:
            raise CvlabError("BadRequestInvalid", "fix the thing")
        return 0
    mod.run = run
    monkeypatch.setitem(sys.modules, "cvlab_fake_cmd", mod)
    monkeypatch.setitem(cli.COMMANDS, "fake", ("cvlab_fake_cmd", "test"))
    assert cli.main(["fake"]) == 0
    assert cli.main(["fake", "--fail"]) == 1
    assert "BadRequestInvalid: fix the thing" in capsys.readouterr().err


def test_doctor_reports_and_repairs(tmp_path, capsys, jpeg_bytes):
    ws = Workspace(tmp_path / "w")
    p = ws.create_project("P")
    ws.create_images(p.id, [jpeg_bytes()])
    ws._write_blob("cd" * 32, b"orphan")
    ws.close()
    assert cli.main(["doctor", "--workspace", str(tmp_path / "w")]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["orphan_blobs"] == ["cd" * 32] and report["counts"]["images"] == 1
    assert cli.main(["doctor", "--workspace", str(tmp_path / "w"), "--repair"]) == 0
    assert json.loads(capsys.readouterr().out)["repaired"]["orphan_blobs"] == 1
    assert cli.main(["doctor", "--workspace", str(tmp_path / "nothing")]) == 1
    assert "NotFound" in capsys.readouterr().err


def test_doctor_walks_workshop_seats(tmp_path, capsys, jpeg_bytes):
    from cvlab import workshop
    ws = Workspace(tmp_path / "room")
    workshop.create_seats(ws, 2)
    seat = workshop.open_seat(ws, "seat-02")
    seat.create_images(seat.create_project("P").id, [jpeg_bytes()])
    seat._write_blob("ef" * 32, b"orphan")  # damage in a learner's seat, not in the instructor's workspace
    seat.close()
    ws.close()
    assert cli.main(["doctor", "--workspace", str(tmp_path / "room")]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["orphan_blobs"] == [] and set(report["seats"]) == {"seat-01", "seat-02"}
    assert report["seats"]["seat-01"]["ok"] and report["seats"]["seat-02"]["orphan_blobs"] == ["ef" * 32]
    assert cli.main(["doctor", "--workspace", str(tmp_path / "room"), "--repair"]) == 0
    assert json.loads(capsys.readouterr().out)["seats"]["seat-02"]["repaired"]["orphan_blobs"] == 1


def test_lab_dry_run_prepares_workspace(tmp_path, monkeypatch, capsys):
    from cvlab import lab
    nb = tmp_path / "notebooks"
    nb.mkdir()
    nbformat.write(nbformat.v4.new_notebook(), nb / "00-welcome.ipynb")  # one lesson to copy
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(lab, "find_notebooks", lambda cwd=None: nb)
    monkeypatch.setenv("CVLAB_WORKSPACE", str(tmp_path / "envws"))
    assert cli.main(["lab", "--dry-run", "--no-seed", "--no-browser", "--port", "8899"]) == 0
    out = capsys.readouterr().out
    assert (tmp_path / "envws" / "cvlab.db").exists()
    lessons = tmp_path / "envws" / "notebooks"  # the learner's own copies, not the tracked files
    assert (lessons / "00-welcome.ipynb").exists()
    assert "--ServerApp.port=8899" in out and "--no-browser" in out and f"--ServerApp.root_dir={lessons}" in out
    assert "--LabApp.default_url=/lab/tree/00-welcome.ipynb" in out
    assert f"CVLAB_WORKSPACE={tmp_path / 'envws'}" in out


def test_lab_seeds_once(tmp_path, monkeypatch, capsys):
    from cvlab import lab
    calls = []
    fake = types.ModuleType("cvlab.datasets")
    fake.seed_default_workspace = lambda ws: calls.append(ws.create_project("Sample").id)
    monkeypatch.setitem(sys.modules, "cvlab.datasets", fake)
    ws = Workspace(tmp_path / "w")
    assert lab.seed_once(ws) and not lab.seed_once(ws)
    assert len(calls) == 1 and ws.find_project("Sample")


def test_console_script_entry_point():
    exe = os.path.join(os.path.dirname(sys.executable), "cvlab")
    if not os.path.exists(exe):
        pytest.skip("cvlab console script not installed in this environment")
    out = subprocess.run([exe, "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and "cvlab" in out.stdout


def test_find_notebooks_in_the_checkout(tmp_path):
    from pathlib import Path

    from cvlab import CvlabError, lab
    repo_nb = Path(lab.__file__).resolve().parent.parent / "notebooks"
    if repo_nb.is_dir():
        assert lab.find_notebooks() == repo_nb
    else:
        with pytest.raises(CvlabError):
            lab.find_notebooks(tmp_path)


def test_lazy_reexports_resolve():
    """Light names resolve for real; heavy ones (torch) are checked to be defined in their module's source."""
    import ast
    import importlib.util

    import cvlab
    heavy = {"cvlab.training", "cvlab.performance", "cvlab.predict"}
    for name, module in cvlab._LAZY.items():
        if module in heavy:
            spec = importlib.util.find_spec(module)
            tree = ast.parse(open(spec.origin).read())
            defined = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
            assert name in defined, (name, module)
        else:
            assert getattr(cvlab, name) is not None
    with pytest.raises(AttributeError):
        cvlab.no_such_name
