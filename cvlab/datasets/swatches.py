"""The smallest learnable images: a colour field with seeded grey speckles (the colour is the class, the speckles
make every file unique). Smoke tests, load tests and benchmarks use them where the dataset's content is not the
point and a few milliseconds per image matter."""
from __future__ import annotations

import io

import numpy as np
from PIL import Image

COLOURS = {"red": (200, 30, 30), "blue": (30, 40, 200)}


def swatch_jpeg(rgb, seed: int, size: int = 64, quality: int = 90) -> bytes:
    rng = np.random.default_rng(seed)
    arr = np.empty((size, size, 3), np.uint8)
    arr[:] = rgb
    mask = rng.random((size, size)) < 0.08
    arr[mask] = rng.integers(0, 256, (int(mask.sum()), 1), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "JPEG", quality=quality)
    return buf.getvalue()
