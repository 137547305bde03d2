"""Exports print nothing (issue 18, finding 5): notebook 06 showed two screens of absl / oneDNN / torch
deprecation lines, 24 "LiteRT-Torch Convert > ..." progress lines, a temporary path and an XNNPACK line. The
converters' output, native lines included, is kept in the export's `conversion.log` instead.

Runs in a fresh Python process, as a kernel does, so TensorFlow is imported (and prints its notices) inside it.
"""
from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = """
import sys, zipfile
from pathlib import Path
import numpy as np
from cvlab.workspace import Workspace
from cvlab.export import export_iteration, export_file, wait
from cvlab.export.convert import TFLiteRunner, log_summary
ws = Workspace(Path(sys.argv[1]))
record = export_iteration(ws, sys.argv[2], sys.argv[3], "TensorFlow", "TensorFlowLite")
record = wait(ws, record.id) if record.status != "Done" else record
assert record.status == "Done", record
folder = Path(sys.argv[4])
with zipfile.ZipFile(export_file(ws, Path(record.path).stem)) as zf:
    zf.extractall(folder)
probs = TFLiteRunner(folder / "model.tflite")(np.zeros((1, 3, 224, 224), dtype=np.float32))[0]
print("OK", probs.shape, log_summary((folder / "conversion.log").read_text()))
"""


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_tflite_export_and_runner_print_nothing_and_keep_the_log(trained_colours, tmp_path):
    path, info = trained_colours()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(path), info["project_id"], info["iteration_id"],
                           str(tmp_path / "unzipped")], env=env, capture_output=True, text=True, timeout=540)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stderr == "", f"an export printed to stderr:\n{done.stderr[-3000:]}"
    assert done.stdout.startswith("OK (1, 2)") and done.stdout.count("\n") == 1, done.stdout
    log = (tmp_path / "unzipped" / "conversion.log").read_text()
    assert log.strip() and "kept in conversion.log" in done.stdout
