"""Synthetic manufactured parts for classification: ``ok`` / ``cracked`` / ``rusted`` plus a Negative set.

Why the defects look the way they do: frozen ImageNet features (Quick training) barely see small local
marks, so in the default variant every defect changes the part at the scale of the whole object — the
part is cracked in two with a visible gap, a large piece or several gear teeth are broken off, or rust
covers most of the surface. The ``subtle`` variant keeps the same tags with small marks (a hairline crack,
a chip, a few rust spots): the lesson "where Quick training falls short".

Nuisance factors vary independently of the label, so no shortcut solves the task: part type (gear,
washer, bolt, nut), pose, scale, material colour (copper and orange paint look like rust in a colour
histogram), background texture (wood and cardboard are rust-coloured too), clutter and lighting.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageFilter

from .records import NEGATIVE, Record
from .texture import blur, camera, fractal_noise, grid, jitter_colour, value_noise

KINDS = ("gear", "washer", "bolt", "nut")
TAGS = ("ok", "cracked", "rusted")
SS = 2  # supersampling factor for the part's silhouette (anti-aliased edges)

# Materials: (name, base RGB 0..1, specular strength). Copper, brass and orange paint share rust's hue.
MATERIALS = (
    ("steel", (0.62, 0.64, 0.67), 0.45),
    ("dark-steel", (0.36, 0.37, 0.40), 0.35),
    ("zinc", (0.78, 0.79, 0.82), 0.40),
    ("brass", (0.78, 0.63, 0.30), 0.45),
    ("copper", (0.74, 0.42, 0.25), 0.45),
    ("black-oxide", (0.16, 0.16, 0.18), 0.30),
    ("orange-paint", (0.82, 0.40, 0.12), 0.15),
    ("red-paint", (0.66, 0.14, 0.11), 0.15),
    ("blue-paint", (0.16, 0.30, 0.62), 0.15),
    ("green-paint", (0.20, 0.46, 0.24), 0.15),
    ("oxide-primer", (0.50, 0.22, 0.13), 0.08),
    ("bronze", (0.55, 0.37, 0.20), 0.35),
)
RUST = np.array([(0.55, 0.25, 0.09), (0.40, 0.17, 0.07), (0.71, 0.37, 0.13), (0.28, 0.13, 0.06),
                 (0.50, 0.31, 0.17)], np.float32)


# ----------------------------------------------------------------------------------------------- backgrounds
def _bg_concrete(rng, n):
    base = jitter_colour(rng, [(0.55, 0.55, 0.53), (0.42, 0.42, 0.44), (0.66, 0.63, 0.58)][rng.integers(3)], 0.06)
    v = 0.8 + 0.4 * (fractal_noise(rng, n, 3, 5) - 0.5)
    v += (rng.random((n, n), dtype=np.float32) < 0.01) * rng.uniform(-0.3, 0.3)
    return base * v[..., None]


def _bg_wood(rng, n):
    light = jitter_colour(rng, [(0.76, 0.56, 0.34), (0.62, 0.40, 0.22), (0.84, 0.70, 0.50)][rng.integers(3)], 0.05)
    dark = light * rng.uniform(0.55, 0.75)
    u, v = grid(n, rng.uniform(0, math.pi))
    warp = fractal_noise(rng, n, 2, 3)
    rings = 0.5 + 0.5 * np.sin(v * rng.uniform(0.08, 0.25) * 320 / n + 9 * warp)
    grain = value_noise(rng, n, int(n / 3)) * 0.12
    t = (rings ** 3 + grain)[..., None]
    return light * (1 - t) + dark * t


def _bg_brushed(rng, n):
    base = jitter_colour(rng, [(0.60, 0.62, 0.64), (0.45, 0.46, 0.48)][rng.integers(2)], 0.04)
    streaks = rng.random((max(2, n // 2), 3), dtype=np.float32)
    s = np.asarray(Image.fromarray(streaks, "F").resize((n, n), Image.BICUBIC))
    if rng.random() < 0.5:
        s = s.T
    v = 0.85 + 0.25 * (s - 0.5) + 0.15 * (value_noise(rng, n, 3) - 0.5)
    return base * v[..., None]


def _bg_diamond(rng, n):
    base = jitter_colour(rng, (0.55, 0.56, 0.58), 0.06)
    u, v = grid(n, math.pi / 4 + rng.uniform(-0.2, 0.2))
    f = rng.uniform(0.25, 0.45) * 320 / n
    bumps = (np.sin(u * f) * np.sin(v * f * 0.5)) > 0.8
    relief = blur(bumps.astype(np.float32), 1.0)
    shade = 0.85 + 0.3 * (relief - np.roll(relief, 2, axis=0)) + 0.2 * (fractal_noise(rng, n, 3, 3) - 0.5)
    return base * shade[..., None]


def _bg_cardboard(rng, n):
    base = jitter_colour(rng, [(0.70, 0.55, 0.38), (0.80, 0.72, 0.58), (0.60, 0.46, 0.30)][rng.integers(3)], 0.04)
    u, _ = grid(n, rng.choice([0.0, math.pi / 2]) + rng.uniform(-0.1, 0.1))
    ribs = 0.03 * np.sin(u * rng.uniform(0.3, 0.6) * 320 / n)
    v = 0.9 + ribs + 0.15 * (fractal_noise(rng, n, 4, 4) - 0.5)
    return base * v[..., None]


def _bg_belt(rng, n):
    base = jitter_colour(rng, [(0.16, 0.17, 0.18), (0.14, 0.24, 0.17), (0.22, 0.22, 0.26)][rng.integers(3)], 0.03)
    u, _ = grid(n, rng.uniform(-0.15, 0.15) + rng.choice([0.0, math.pi / 2]))
    ribs = (np.sin(u * rng.uniform(0.15, 0.4) * 320 / n) > 0.6) * 0.35
    v = 1.0 + ribs + 0.3 * (fractal_noise(rng, n, 6, 3) - 0.5)
    return base * v[..., None]


def _bg_mat(rng, n):
    base = jitter_colour(rng, [(0.16, 0.42, 0.30), (0.18, 0.26, 0.46), (0.30, 0.30, 0.30)][rng.integers(3)], 0.05)
    u, v = grid(n, rng.uniform(-0.3, 0.3))
    step = rng.uniform(18, 40) * n / 320
    lines = ((u % step) < 1.2) | ((v % step) < 1.2)
    val = 1.0 + 0.6 * lines + 0.1 * (value_noise(rng, n, 5) - 0.5)
    return base * val[..., None]


def _rust_palette() -> list[int]:
    """A 256-entry palette running smoothly through the rust colours (for Pillow's 'P' mode lookup)."""
    xs = np.linspace(0, len(RUST) - 1, 256)
    lo = np.floor(xs).astype(int)
    hi = np.minimum(lo + 1, len(RUST) - 1)
    t = (xs - lo)[:, None]
    return (np.round((RUST[lo] * (1 - t) + RUST[hi] * t) * 255).astype(np.uint8)).ravel().tolist()


_RUST_PALETTE = _rust_palette()


def _rust_texture(rng, w, h=None):
    """Rust colours (float RGB, h×w): a blotchy mix of the rust palette with coarse grain and pits, unshaded."""
    h = h or w
    mix = Image.fromarray((fractal_noise(rng, w, 6, 3, height=h) * 255).astype(np.uint8), "L")
    mix.putpalette(_RUST_PALETTE)  # an 'L' image with a palette becomes 'P': one C lookup per pixel
    rust = np.asarray(mix.convert("RGB"), np.float32) / 255
    pits = blur((rng.random((h, w), dtype=np.float32) < 0.015).astype(np.float32), 0.8) * 1.5
    rough = 1 + 0.35 * (rng.random((h, w), dtype=np.float32) - 0.5)
    return rust * (rough * (1 - np.clip(pits, 0, 0.6)))[..., None]


def _bg_weathered(rng, n):
    """A weathered steel floor plate with rust patches: rust colour in the picture says nothing about the part."""
    steel = _bg_brushed(rng, n) if rng.random() < 0.5 else _bg_concrete(rng, n)
    field = value_noise(rng, n, int(rng.integers(3, 7))) * 0.7 + value_noise(rng, n, 20) * 0.3
    t = np.quantile(field, 1 - rng.uniform(0.25, 0.7))
    alpha = np.clip((field - t) / 0.05, 0, 1)[..., None]
    return steel * (1 - alpha) + _rust_texture(rng, n) * 0.9 * alpha


BACKGROUNDS = (_bg_concrete, _bg_wood, _bg_brushed, _bg_diamond, _bg_cardboard, _bg_belt, _bg_mat, _bg_weathered)


def background(rng: np.random.Generator, n: int) -> np.ndarray:
    """A random workbench / floor / belt texture, ``(n, n, 3)`` float32."""
    return np.clip(BACKGROUNDS[rng.integers(len(BACKGROUNDS))](rng, n), 0, 1).astype(np.float32)


def clutter(rng: np.random.Generator, img: Image.Image, count: int, avoid: tuple[float, float, float] | None = None):
    """Draw ``count`` non-part objects (cables, labels, tape, stains, pencils, rags) on ``img`` in place.

    ``avoid`` = (cx, cy, r) keeps items' centres out of the part's disc so they do not hide the defect.
    """
    n = img.width
    d = ImageDraw.Draw(img, "RGBA")
    for _ in range(count):
        for _try in range(10):
            x, y = rng.uniform(0, n, 2)
            if avoid is None or math.hypot(x - avoid[0], y - avoid[1]) > avoid[2]:
                break
        kind = rng.integers(6)
        col = tuple(int(c) for c in rng.integers(20, 235, 3))
        if kind == 0:  # cable
            pts = [(x, y)] + [tuple(rng.uniform(-0.2, 1.2, 2) * n) for _ in range(3)]
            d.line(pts, fill=col + (255,), width=int(rng.uniform(0.012, 0.03) * n), joint="curve")
        elif kind == 1:  # paper label with "text"
            w, h, a = rng.uniform(0.12, 0.28) * n, rng.uniform(0.06, 0.14) * n, rng.uniform(0, math.pi)
            paper = (235, 232, 220, 255)
            d.polygon(_rect(x, y, w, h, a), fill=paper)
            for k in range(3):
                off = (k - 1) * h * 0.25
                d.line(_rect_line(x, y, w * 0.7, off, a), fill=(40, 40, 40, 255), width=max(1, int(n / 200)))
        elif kind == 2:  # tape strip
            d.polygon(_rect(x, y, rng.uniform(0.2, 0.5) * n, rng.uniform(0.03, 0.06) * n, rng.uniform(0, math.pi)),
                      fill=col + (170,))
        elif kind == 3:  # oil stain
            r = rng.uniform(0.04, 0.12) * n
            d.ellipse((x - r, y - r * 0.7, x + r, y + r * 0.7), fill=(20, 18, 15, int(rng.integers(40, 110))))
        elif kind == 4:  # pencil / marker
            w, a = rng.uniform(0.2, 0.35) * n, rng.uniform(0, math.pi)
            d.polygon(_rect(x, y, w, 0.025 * n, a), fill=col + (255,))
        else:  # rag: an irregular soft polygon
            k = 9
            ang = np.sort(rng.uniform(0, 2 * math.pi, k))
            rad = rng.uniform(0.05, 0.12, k) * n
            d.polygon([(x + r * math.cos(t), y + r * math.sin(t)) for r, t in zip(rad, ang)], fill=col + (200,))


def _rect(cx, cy, w, h, a):
    c, s = math.cos(a), math.sin(a)
    return [(cx + dx * c - dy * s, cy + dx * s + dy * c) for dx, dy in
            ((-w / 2, -h / 2), (w / 2, -h / 2), (w / 2, h / 2), (-w / 2, h / 2))]


def _rect_line(cx, cy, w, off, a):
    c, s = math.cos(a), math.sin(a)
    return [(cx + dx * c - off * s, cy + dx * s + off * c) for dx in (-w / 2, w / 2)]


# ----------------------------------------------------------------------------------------------------- parts
@dataclass
class _Pose:
    cx: float  # centre, supersampled pixels
    cy: float
    r: float  # half the part's extent, supersampled pixels
    angle: float  # radians

    def pt(self, x: float, y: float) -> tuple[float, float]:
        """Part-local (units of r) -> canvas pixels."""
        c, s = math.cos(self.angle), math.sin(self.angle)
        return (self.cx + self.r * (x * c - y * s), self.cy + self.r * (x * s + y * c))

    def circle(self, x: float, y: float, rad: float) -> tuple[float, float, float, float]:
        px, py = self.pt(x, y)
        rr = rad * self.r
        return (px - rr, py - rr, px + rr, py + rr)


BODY, LINE, HOLE = (255, 0, 0), (255, 255, 0), (0, 0, 0)  # layer channels: R=silhouette, G=detail, B=crack


def _draw_part(kind: str, pose: _Pose, rng, size2: int, missing_teeth: int = 0) -> Image.Image:
    """The part as an RGB layer: R = silhouette, G = engraved detail lines, B = (later) hairline cracks."""
    layer = Image.new("RGB", (size2, size2))
    d = ImageDraw.Draw(layer)
    lw = max(2, int(pose.r * 0.035))
    if kind == "gear":
        teeth = int(rng.integers(10, 19))
        root = rng.uniform(0.78, 0.86)
        start = int(rng.integers(teeth))
        gone = {(start + k) % teeth for k in range(missing_teeth)}
        pts = []
        p = 2 * math.pi / teeth
        for i in range(teeth):
            a = i * p
            tip = root * rng.uniform(0.96, 1.0) if i in gone else 1.0
            for frac, rad in ((-0.5, root), (-0.28, root), (-0.16, tip), (0.16, tip), (0.28, root)):
                pts.append(pose.pt(rad * math.cos(a + frac * p), rad * math.sin(a + frac * p)))
        d.polygon(pts, fill=BODY)
        d.ellipse(pose.circle(0, 0, 0.42), outline=LINE, width=lw)
        holes = int(rng.choice([0, 4, 5, 6]))
        for k in range(holes):
            a = 2 * math.pi * k / holes
            d.ellipse(pose.circle(0.6 * math.cos(a), 0.6 * math.sin(a), 0.11), fill=HOLE)
        d.ellipse(pose.circle(0, 0, rng.uniform(0.18, 0.28)), fill=HOLE)
    elif kind == "washer":
        d.ellipse(pose.circle(0, 0, 1.0), fill=BODY)
        inner = rng.uniform(0.42, 0.6)
        d.ellipse(pose.circle(0, 0, inner + 0.06), outline=LINE, width=max(1, lw // 2))
        d.ellipse(pose.circle(0, 0, inner), fill=HOLE)
    elif kind == "nut":
        d.polygon([pose.pt(math.cos(a), math.sin(a)) for a in np.arange(6) * math.pi / 3], fill=BODY)
        d.ellipse(pose.circle(0, 0, 0.84), outline=LINE, width=lw)
        d.ellipse(pose.circle(0, 0, 0.55), outline=LINE, width=lw)
        d.ellipse(pose.circle(0, 0, 0.45), fill=HOLE)
    elif kind == "bolt":
        hw = rng.uniform(0.36, 0.46)
        sw = rng.uniform(0.16, 0.22)
        d.polygon([pose.pt(-1, -hw), pose.pt(-0.56, -hw), pose.pt(-0.56, hw), pose.pt(-1, hw)], fill=BODY)
        d.polygon([pose.pt(-0.56, -sw), pose.pt(0.93, -sw), pose.pt(1.0, -sw * 0.6), pose.pt(1.0, sw * 0.6),
                   pose.pt(0.93, sw), pose.pt(-0.56, sw)], fill=BODY)
        for y in (-hw / 3, hw / 3):
            d.line([pose.pt(-1, y), pose.pt(-0.56, y)], fill=LINE, width=lw)
        pitch = rng.uniform(0.07, 0.1)
        for x in np.arange(-0.05, 0.92, pitch):
            d.line([pose.pt(x, -sw), pose.pt(x + pitch * 0.6, sw)], fill=LINE, width=max(1, lw // 2))
    else:
        raise ValueError(f"unknown part kind {kind!r}; expected one of {KINDS}")
    return layer


def _jagged(rng, p0, p1, steps: int, amp: float) -> list[tuple[float, float]]:
    """Points from p0 to p1 with a random-walk sideways offset: a broken edge."""
    (x0, y0), (x1, y1) = p0, p1
    length = math.hypot(x1 - x0, y1 - y0) or 1.0
    nx, ny = -(y1 - y0) / length, (x1 - x0) / length
    walk = np.cumsum(rng.normal(0, amp, steps + 1))
    walk -= np.linspace(0, walk[-1], steps + 1)  # both ends exactly on the line
    return [(x0 + (x1 - x0) * t + nx * w, y0 + (y1 - y0) * t + ny * w)
            for t, w in zip(np.linspace(0, 1, steps + 1), walk)]


def _split(layer: Image.Image, rng, pose: _Pose, kind: str) -> Image.Image:
    """Crack the part in two along a jagged line and pull the pieces apart (a gap the whole model sees)."""
    if kind == "bolt":
        cx, cy = pose.pt(rng.uniform(-0.25, 0.45), 0)
        a = pose.angle + math.pi / 2 + rng.uniform(-0.4, 0.4)
    else:
        cx, cy = pose.pt(*rng.uniform(-0.15, 0.15, 2))
        a = rng.uniform(0, math.pi)
    far = 3 * pose.r
    dx, dy = math.cos(a), math.sin(a)
    line = _jagged(rng, (cx - far * dx, cy - far * dy), (cx + far * dx, cy + far * dy), 40, pose.r * 0.02)
    nx, ny = -dy, dx
    half = Image.new("L", layer.size, 0)
    ImageDraw.Draw(half).polygon(line + [(line[-1][0] + far * nx, line[-1][1] + far * ny),
                                         (line[0][0] + far * nx, line[0][1] + far * ny)], fill=255)
    turn = rng.uniform(4, 14) * rng.choice([-1, 1])
    # The far end of a turned piece swings by r*sin(turn): pull the pieces apart by that much more.
    gap = pose.r * (rng.uniform(0.12, 0.2) + 1.05 * math.sin(math.radians(abs(turn))))
    # Piece A moves by a whole-pixel offset; piece B is turned (nearest neighbour is enough: the layer is
    # supersampled and reduced afterwards, which smooths the edges).
    out = Image.new("RGB", layer.size)
    out.paste(layer, (round(nx * gap / 2), round(ny * gap / 2)), half)
    b_part = Image.new("RGB", layer.size)
    b_part.paste(layer, (0, 0), ImageChops.invert(half))
    b_part = b_part.rotate(turn, resample=Image.NEAREST, center=(cx, cy), translate=(-nx * gap / 2, -ny * gap / 2))
    return ImageChops.lighter(out, b_part)


def _chunk(layer: Image.Image, rng, pose: _Pose, kind: str) -> Image.Image:
    """Break off a large piece (a sector of a round part, the threaded end of a bolt)."""
    cut = Image.new("L", layer.size, 0)
    d = ImageDraw.Draw(cut)
    if kind == "bolt":
        x = rng.uniform(-0.1, 0.35)
        edge = _jagged(rng, pose.pt(x, -1.5), pose.pt(x, 1.5), 30, pose.r * 0.025)
        d.polygon(edge + [pose.pt(2, 1.5), pose.pt(2, -1.5)], fill=255)
    else:
        mid = rng.uniform(0, 2 * math.pi)
        span = math.radians(rng.uniform(100, 150))
        off = rng.uniform(0.0, 0.15)
        apex = pose.pt(off * math.cos(mid), off * math.sin(mid))
        a0, a1 = mid - span / 2, mid + span / 2
        e0 = _jagged(rng, apex, pose.pt(1.6 * math.cos(a0), 1.6 * math.sin(a0)), 20, pose.r * 0.03)
        e1 = _jagged(rng, pose.pt(1.6 * math.cos(a1), 1.6 * math.sin(a1)), apex, 20, pose.r * 0.03)
        arc = [pose.pt(1.6 * math.cos(t), 1.6 * math.sin(t)) for t in np.linspace(a0, a1, 12)]
        d.polygon(e0 + arc + e1, fill=255)
    return ImageChops.multiply(layer, Image.merge("RGB", [ImageChops.invert(cut)] * 3))


def _hairline(layer: Image.Image, rng, pose: _Pose, kind: str = "washer") -> Image.Image:
    """A thin dark crack across part of the surface, no displacement (subtle variant)."""
    if kind == "bolt":  # across the shank, where a bolt is thin
        x = rng.uniform(-0.4, 0.8)
        start, end = pose.pt(x, -0.3), pose.pt(x + rng.uniform(-0.15, 0.15), 0.3)
    else:  # inwards from the rim
        a = rng.uniform(0, 2 * math.pi)
        start = pose.pt(0.95 * math.cos(a), 0.95 * math.sin(a))
        length = rng.uniform(0.5, 0.9)
        end = pose.pt((0.95 - length) * math.cos(a) + rng.uniform(-0.3, 0.3),
                      (0.95 - length) * math.sin(a) + rng.uniform(-0.3, 0.3))
    crack = Image.new("L", layer.size, 0)
    ImageDraw.Draw(crack).line(_jagged(rng, start, end, 14, pose.r * 0.03), fill=255,
                               width=max(2, int(pose.r * 0.03)), joint="curve")
    crack = ImageChops.multiply(crack, layer.getchannel("R"))
    r, g, b = layer.split()
    return Image.merge("RGB", (r, g, ImageChops.lighter(b, crack)))


def _chip(layer: Image.Image, rng, pose: _Pose) -> Image.Image:
    """A small notch bitten out of the rim (subtle variant)."""
    a = rng.uniform(0, 2 * math.pi)
    rad = rng.uniform(0.12, 0.2)
    cut = Image.new("L", layer.size, 0)
    k = 10
    ang = np.linspace(0, 2 * math.pi, k, endpoint=False)
    radii = rad * rng.uniform(0.6, 1.2, k)
    x0, y0 = 0.95 * math.cos(a), 0.95 * math.sin(a)
    ImageDraw.Draw(cut).polygon([pose.pt(x0 + rr * math.cos(t), y0 + rr * math.sin(t)) for rr, t in zip(radii, ang)],
                                fill=255)
    return ImageChops.multiply(layer, Image.merge("RGB", [ImageChops.invert(cut)] * 3))


def _rust_alpha(rng, mask: np.ndarray, coverage: float) -> np.ndarray:
    """Blotchy rust covering about ``coverage`` of the part's visible surface (``mask``: the part's box)."""
    h, w = mask.shape
    field = (0.65 * value_noise(rng, w, int(rng.integers(4, 9)), h)
             + 0.35 * value_noise(rng, w, int(rng.integers(14, 26)), h))
    inside = field[mask > 0.5]
    if inside.size == 0:
        return np.zeros_like(mask)
    t = np.quantile(inside, 1 - coverage)
    return np.clip((field - t) / 0.05, 0, 1) * mask


def _rust_spots(rng, n: int, mask: np.ndarray) -> np.ndarray:
    """A handful of small rust spots (subtle variant); ``n`` is the image side, ``mask`` the part's box."""
    ys, xs = np.nonzero(mask > 0.9)
    alpha = np.zeros_like(mask)
    if ys.size == 0:
        return alpha
    y, x = np.ogrid[0:mask.shape[0], 0:mask.shape[1]]
    for i in rng.choice(ys.size, size=int(rng.integers(2, 6))):
        r = rng.uniform(0.012, 0.03) * n
        alpha = np.maximum(alpha, np.clip(1.5 - np.hypot(x - xs[i], y - ys[i]) / r, 0, 1))
    return alpha * mask


def _upsample(field: np.ndarray, n: int, box: tuple[int, int, int, int]) -> np.ndarray:
    """The part ``box`` (pixels of an n×n image) of a smooth low-resolution ``field``, at full resolution."""
    k = field.shape[0] / n
    x0, y0, x1, y1 = box
    im = Image.fromarray(field.astype(np.float32), "F")
    return np.asarray(im.resize((x1 - x0, y1 - y0), Image.BILINEAR, box=(x0 * k, y0 * k, x1 * k, y1 * k)),
                      np.float32)


def render(rng: np.random.Generator, n: int, label: set[str], subtle: bool = False) -> tuple[Image.Image, dict]:
    """One image of size ``n``: a part with the defects in ``label`` (empty set = ok), or clutter only if
    ``label == {NEGATIVE}``. Returns the image and metadata describing what was drawn."""
    bg = background(rng, n)
    canvas = Image.fromarray((bg * 255).astype(np.uint8), "RGB")
    if NEGATIVE in label:
        clutter(rng, canvas, int(rng.integers(2, 6)))
        return camera(rng, canvas), {"part": "none"}

    kind = KINDS[rng.integers(len(KINDS))]
    mat_name, base, spec_k = MATERIALS[rng.integers(len(MATERIALS))]
    base = jitter_colour(rng, base, 0.05)
    n2 = n * SS
    r = n2 * rng.uniform(0.25, 0.38) * (1.12 if kind == "bolt" else 1.0)
    slack = (n2 / 2 - r) * 0.55
    pose = _Pose(n2 / 2 + rng.uniform(-slack, slack), n2 / 2 + rng.uniform(-slack, slack), r,
                 rng.uniform(0, 2 * math.pi))
    clutter(rng, canvas, int(rng.integers(0, 2)), avoid=(pose.cx / SS, pose.cy / SS, 1.2 * r / SS))

    meta = {"part": kind, "material": mat_name}
    missing = 0
    mode = None
    if "cracked" in label:
        if subtle:
            mode = "chip" if rng.random() < 0.35 else "hairline"
            if mode == "chip" and kind == "gear":
                mode, missing = "tooth", 1
        else:
            modes = ["split", "chunk"] + (["teeth"] if kind == "gear" else [])
            mode = modes[rng.integers(len(modes))]
            if mode == "teeth":
                missing = int(rng.integers(3, 6))
        meta["crack"] = mode
    layer = _draw_part(kind, pose, rng, n2, missing_teeth=missing)
    if mode == "split":
        layer = _split(layer, rng, pose, kind)
    elif mode == "chunk":
        layer = _chunk(layer, rng, pose, kind)
    elif mode == "hairline":
        layer = _hairline(layer, rng, pose, kind)
    elif mode == "chip":
        layer = _chip(layer, rng, pose)
    small_im = layer.reduce(SS)
    mask_im = small_im.getchannel("R")
    # All per-pixel shading happens inside the part's bounding box only.
    box = mask_im.getbbox() or (0, 0, 1, 1)
    x0, y0, x1, y1 = box
    crop = np.asarray(small_im.crop(box), np.float32) / 255
    mask, detail, crack = crop[..., 0], crop[..., 1], crop[..., 2]

    # Shading: light from a random direction, bevelled edges, a specular band on metals. The smooth fields
    # are computed at a quarter of the resolution and upsampled (they have no fine detail).
    la = rng.uniform(0, 2 * math.pi)
    m = max(16, n // 4)
    u, v = grid(m, la)
    u, v = u * (n / m), v * (n / m)
    g = (u - u.min()) / max(float(u.max() - u.min()), 1.0)
    sx, sy = int(round(2 * math.cos(la))), int(round(2 * math.sin(la)))
    mb_im = mask_im.filter(ImageFilter.GaussianBlur(n / 220))
    mb = np.asarray(mb_im.crop(box), np.float32) / 255
    shifted = np.asarray(ImageChops.offset(mb_im, sx, sy).crop(box), np.float32) / 255
    emboss = mb - shifted
    v0 = rng.uniform(v.min(), v.max())
    spec = spec_k * np.exp(-(((v - v0) / (n * rng.uniform(0.05, 0.15))) ** 2))
    diffuse = _upsample(0.65 + 0.45 * g, n, box)
    spec = _upsample(spec, n, box)
    grain = 1 + 0.05 * (value_noise(rng, n, n // 6)[y0:y1, x0:x1] - 0.5)
    shade = (diffuse * grain + 1.2 * emboss)[..., None]
    part = base * shade + (spec * 0.8)[..., None]
    part *= (1 - 0.35 * detail - 0.8 * crack + 0.28 * detail * crack)[..., None]

    if "rusted" in label:
        if subtle:
            alpha = _rust_spots(rng, n, mask)
        else:
            coverage = rng.uniform(0.5, 0.9)
            alpha = _rust_alpha(rng, mask, coverage)
            meta["rust_coverage"] = f"{coverage:.2f}"
        alpha = alpha[..., None]
        rust = _rust_texture(rng, x1 - x0, y1 - y0) * (diffuse + 0.9 * emboss)[..., None]
        part = part * (1 - alpha) + rust * alpha

    # Contact shadow on the background, then the part on top through its anti-aliased silhouette.
    shadow_im = ImageChops.offset(mask_im, int(-sx * n / 80), int(-sy * n / 80))
    depth = rng.uniform(0.25, 0.5)
    shade_bg = shadow_im.filter(ImageFilter.GaussianBlur(n / 60)).point(lambda a: round(255 - depth * a))
    canvas = ImageChops.multiply(canvas, Image.merge("RGB", [shade_bg] * 3))
    part_im = Image.fromarray((np.clip(part, 0, 1) * 255).astype(np.uint8), "RGB")
    canvas.paste(part_im, (x0, y0), mask_im.crop(box))
    return camera(rng, canvas), meta


# ------------------------------------------------------------------------------------------------ datasets
#: The label cycle of each variant; image ``i`` gets ``cycle[i % len(cycle)]``, so every prefix is balanced.
CYCLES = {
    "multiclass": ({"ok"}, {"cracked"}, {"rusted"}, {NEGATIVE}),
    "multilabel": ({"ok"}, {"cracked"}, {"rusted"}, {"cracked", "rusted"}, {NEGATIVE}),
}


def iter_records(name: str, count: int, seed: int, size: int, *, variant: str = "multiclass",
                 subtle: bool = False, start: int = 0):
    """Yield ``count`` records; image ``i`` depends only on (name, seed, i), so sets are reproducible and
    a larger count extends a smaller one."""
    cycle = CYCLES[variant]
    salt = sum(name.encode())
    for i in range(start, start + count):
        label = cycle[i % len(cycle)]
        rng = np.random.default_rng([seed, i, salt])
        defects = label - {"ok"}
        image, meta = render(rng, size, defects, subtle=subtle)
        tags = [t for t in (*TAGS, NEGATIVE) if t in label]
        yield Record(name=f"{name}-{i:05d}.jpg", image=image, tags=tags, width=size, height=size,
                     metadata={k: str(v) for k, v in meta.items()})
