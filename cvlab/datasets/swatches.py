"""The smallest learnable images: a colour field with seeded grey speckles (the colour is the class, the speckles
make every file unique). Smoke tests, load tests and benchmarks use them where the dataset's content is not the
point and a few milliseconds per image matter."""
from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw

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


def disc_scene(seed: int, size: int = 128) -> tuple[bytes, tuple[float, float, float, float]]:
    """The smallest detection image: one red disc on grey noise, and its box (normalised left, top, width, height)."""
    rng = np.random.default_rng(seed)
    img = Image.fromarray(rng.integers(90, 160, (size, size, 3), dtype=np.uint8))
    s = int(rng.integers(36, 64))
    x, y = int(rng.integers(0, size - s)), int(rng.integers(0, size - s))
    ImageDraw.Draw(img).ellipse([x, y, x + s, y + s], fill=(220, 30, 30))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    return buf.getvalue(), (x / size, y / size, s / size, s / size)
