"""SIGKILL in the middle of ingestion leaves a workspace that opens and is consistent."""
from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from cvlab import Workspace

WRITER = textwrap.dedent("""
    import io, sys
    import numpy as np
    from PIL import Image
    from cvlab import Workspace, ImageEntry
    ws = Workspace(sys.argv[1])
    p = ws.find_project("crash") or ws.create_project("crash")
    tag = (ws.get_tags(p.id) or [ws.create_tag(p.id, "t")])[0]
    rng = np.random.default_rng(int(sys.argv[2]))
    while True:
        entries = []
        for _ in range(8):
            buf = io.BytesIO()
            Image.fromarray(rng.integers(0, 256, (96, 96, 3), dtype=np.uint8)).save(buf, "PNG")
            entries.append(ImageEntry(buf.getvalue(), "x.png", [tag.id]))
        s = ws.create_images(p.id, entries)
        print(sum(r.status == "OK" for r in s.images), flush=True)
""")


def _run_and_kill(path, seed, min_batches):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.getcwd(), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(seed)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        landed = 0
        for _ in range(min_batches):
            line = proc.stdout.readline()
            if not line:
                pytest.fail("writer died: " + proc.stderr.read())
            landed += int(line)
        time.sleep(0.013 * seed)  # vary where in the next batch the kill lands
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    return landed


@pytest.mark.timeout(120)
def test_sigkill_mid_batch_leaves_a_consistent_workspace(tmp_path):
    path = tmp_path / "ws"
    landed = 0
    for seed in (1, 2, 3):
        landed += _run_and_kill(path, seed, min_batches=3)
        ws = Workspace(path)
        report = ws.check()
        assert report["sqlite_integrity"] == ["ok"] and not report["foreign_key_violations"]
        assert not report["missing_blobs"] and not report["corrupt_blobs"]
        assert report["ok"] or report["repairable"]  # at worst orphan blobs / temp files
        p = ws.find_project("crash")
        images = list(ws.iter_images(p.id))
        assert len(images) >= landed  # every batch the writer reported is there (maybe one more)
        for img in images:
            assert hashlib.sha256(ws.image_path(img).read_bytes()).hexdigest() == img.sha256
            assert img.tag_names == ["t"]  # rows and their labels commit together
        after = ws.check(repair=True)
        assert after["ok"] and after["counts"]["images"] == len(images)
        assert ws.check()["ok"]
        ws.close()
