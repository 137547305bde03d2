"""Shared base fixtures (keep small; append new fixtures with targeted edits)."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image


@pytest.fixture
def ws(tmp_path):
    """A fresh, empty Workspace in tmp_path."""
    from cvlab import Workspace
    w = Workspace(tmp_path / "ws")
    yield w
    w.close()


def make_image_bytes(w: int = 320, h: int = 240, color=None, seed: int | None = 0, fmt: str = "JPEG",
                     **save_kwargs) -> bytes:
    """Small image bytes: a solid `color` or (default) seeded noise, so different seeds give different hashes."""
    if color is not None:
        img = Image.new("RGB", (w, h), color)
    else:
        rng = np.random.default_rng(seed)
        img = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    buf = io.BytesIO()
    img.save(buf, fmt, **save_kwargs)
    return buf.getvalue()


@pytest.fixture
def jpeg_bytes():
    """Factory: jpeg_bytes(w=320, h=240, color=None, seed=0) -> JPEG bytes."""
    def make(w: int = 320, h: int = 240, color=None, seed: int | None = 0) -> bytes:
        return make_image_bytes(w, h, color, seed, "JPEG")
    return make


@pytest.fixture(scope="session")
def trained_colours(tmp_path_factory):
    """Factory: a copy of one workspace holding project "colours" (General (compact), tags red/blue, 5 small
    images each, one Completed Quick iteration). Trained once per session; each call copies the folder, so tests
    may change or kill servers on their copy. Returns (path, {"project_id", "iteration_id", "tags", "hashes"})."""
    import hashlib
    import shutil

    from cvlab import Workspace
    from cvlab.datasets.swatches import swatch_jpeg
    from cvlab.training import train_project
    from cvlab.workspace import ImageEntry

    src = tmp_path_factory.mktemp("trained-colours") / "ws"
    ws = Workspace(src)
    p = ws.create_project("colours", domain_id="0732100f-1a38-4e49-a514-c9b44c697ab5")
    tags, hashes = {}, {}
    for name, rgb, offset in (("red", (200, 30, 30), 0), ("blue", (30, 40, 200), 100)):
        tags[name] = ws.create_tag(p.id, name).id
        entries = []
        for i in range(5):
            entries.append(ImageEntry(swatch_jpeg(rgb, i + offset), f"{name}{i}.jpg", [tags[name]]))
        for r in ws.create_images(p.id, entries).images:
            hashes[r.image.id] = (hashlib.sha256(ws.read_image_bytes(r.image)).hexdigest(), tags[name])
    it = train_project(ws, p.id, show_progress=False)
    assert it.status == "Completed", it.training_error_details
    ws.close()
    info = {"project_id": p.id, "iteration_id": it.id, "tags": tags, "hashes": hashes}
    copies = iter(range(10_000))

    def copy():
        dst = tmp_path_factory.mktemp(f"colours-copy{next(copies)}") / "ws"
        shutil.copytree(src, dst)
        return dst, dict(info)
    return copy


# Property tests: no per-example deadline (CI machines are noisy) and the same examples on every run (derandomize),
# so a workshop laptop and CI see the same results; explicit @settings in a test still win.
from hypothesis import settings as _hypothesis_settings  # noqa: E402

_hypothesis_settings.register_profile("cvlab", deadline=None, derandomize=True, database=None)
_hypothesis_settings.load_profile("cvlab")
