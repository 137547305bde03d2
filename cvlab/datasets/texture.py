"""Vectorised noise, textures and camera effects shared by the generators (numpy + Pillow, no pixel loops).

Images are float32 arrays ``(H, W, 3)`` in 0..1 while being built, and become PIL images at the end.
"""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageChops, ImageFilter
from scipy.ndimage import gaussian_filter


def value_noise(rng: np.random.Generator, size: int, cells: int, height: int | None = None) -> np.ndarray:
    """Smooth noise in 0..1: a ``cells``-sized random grid upsampled bicubically (Pillow does the work)."""
    height = height or size
    cells_y = max(2, round(cells * height / size))
    grid = rng.random((cells_y, max(2, cells)), dtype=np.float32)
    im = Image.fromarray(grid, mode="F").resize((size, height), Image.BICUBIC)
    return np.clip(np.asarray(im, dtype=np.float32), 0.0, 1.0)


def fractal_noise(rng: np.random.Generator, size: int, base: int = 4, octaves: int = 4,
                  height: int | None = None) -> np.ndarray:
    """Several octaves of value noise (coarse blotches plus fine grain), normalised to 0..1."""
    out = np.zeros((height or size, size), np.float32)
    amp, total = 1.0, 0.0
    for o in range(octaves):
        out += amp * value_noise(rng, size, base * 2**o, height)
        total += amp
        amp *= 0.5
    out /= total
    lo, hi = out.min(), out.max()
    return (out - lo) / max(hi - lo, 1e-6)


def grid(size: int, angle: float, height: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates rotated by ``angle`` (radians): (u along the angle, v across it)."""
    h = height or size
    y, x = np.mgrid[0:h, 0:size].astype(np.float32)
    c, s = np.cos(angle), np.sin(angle)
    return x * c + y * s, -x * s + y * c


def jitter_colour(rng: np.random.Generator, rgb, amount: float = 0.05) -> np.ndarray:
    return np.clip(np.asarray(rgb, np.float32) + rng.uniform(-amount, amount, 3).astype(np.float32), 0, 1)


def blur(arr: np.ndarray, radius: float) -> np.ndarray:
    """Gaussian blur of a 2-D float array (scipy; Pillow cannot blur float images)."""
    if radius <= 0:
        return arr
    return gaussian_filter(np.asarray(arr, dtype=np.float32), radius, mode="nearest", truncate=3.0)


def camera(rng: np.random.Generator, img: Image.Image, *, strength: float = 1.0) -> Image.Image:
    """Lighting and sensor effects on an RGB image: uneven light, exposure, white balance, gamma, noise, focus.

    Done with Pillow's C operations (multiply, lookup tables, add) rather than float arrays: it is the part
    of generation that runs on every pixel of every image.
    """
    w, h = img.size
    exposure = rng.uniform(1 - 0.3 * strength, 1 + 0.25 * strength)
    balance = rng.uniform(1 - 0.08 * strength, 1 + 0.08 * strength, 3)
    gamma = rng.uniform(0.85, 1.15)
    # Vignette / uneven light: a broad radial falloff from a random centre, computed small and upsampled.
    cy, cx = rng.uniform(0.2, 0.8, 2)
    k = rng.uniform(0.0, 0.45 * strength)
    yy, xx = np.mgrid[0:32, 0:32].astype(np.float32) / 31
    light = (1 - k * ((xx - cx) ** 2 + (yy - cy) ** 2)) * 255
    light_im = Image.fromarray(np.clip(light, 0, 255).astype(np.uint8), "L").resize((w, h), Image.BILINEAR)
    out = ImageChops.multiply(img.convert("RGB"), Image.merge("RGB", [light_im] * 3))
    lut = []
    for c in range(3):
        lut += [min(255, round(255 * min(1.0, i / 255 * exposure * balance[c]) ** gamma)) for i in range(256)]
    out = out.point(lut)
    # Sensor noise on luminance, seeded (Pillow's effect_noise is not).
    sigma = rng.uniform(0.005, 0.025) * 255
    noise = rng.standard_normal((h, w), dtype=np.float32) * np.float32(sigma) + 128
    noise_im = Image.fromarray(np.clip(noise, 0, 255).astype(np.uint8), "L")
    out = ImageChops.add(out, Image.merge("RGB", [noise_im] * 3), scale=1.0, offset=-128)
    focus = rng.uniform(0, 0.9)
    if focus > 0.35:
        out = out.filter(ImageFilter.GaussianBlur(focus))
    return out
