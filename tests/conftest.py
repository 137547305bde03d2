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
