"""Synthetic construction-site scenes for object detection: ``helmet``, ``vest`` and ``person`` boxes.

People are simple figures drawn in perspective (far ones small, near ones large) in front of scaffolding,
buildings, ground and props. Some wear a helmet, some a hi-vis vest. Confusers keep it honest: hair and
dark beanies instead of helmets, orange/yellow shirts without reflective stripes, yellow scaffolding,
orange cones and barrels.

Boxes are exact: each object is drawn on its own small supersampled layer and its box is that layer's
alpha extent, so a box is the object's full (amodal) extent even where a nearer person overlaps it.
"""
from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

from .coords import clip_ltwh, pixels_to_ltwh
from .records import Record, Region
from .texture import camera, fractal_noise, jitter_colour

TAGS = ("helmet", "vest", "person")
SS = 2  # supersampling for figures

HELMET_COLOURS = ((0.95, 0.80, 0.10), (0.95, 0.95, 0.93), (0.97, 0.50, 0.10), (0.80, 0.12, 0.10),
                  (0.15, 0.35, 0.80), (0.20, 0.60, 0.25))
VEST_COLOURS = ((0.80, 0.95, 0.15), (1.0, 0.45, 0.05), (0.95, 0.85, 0.10))
SHIRT_COLOURS = ((0.20, 0.25, 0.45), (0.55, 0.10, 0.10), (0.30, 0.30, 0.30), (0.85, 0.85, 0.82),
                 (0.15, 0.35, 0.20), (0.45, 0.35, 0.25), (0.10, 0.10, 0.12), (0.35, 0.50, 0.70))
HIVIS_SHIRTS = ((0.98, 0.55, 0.10), (0.95, 0.85, 0.20))  # hard negatives for "vest": no reflective stripes
TROUSERS = ((0.15, 0.20, 0.35), (0.25, 0.25, 0.25), (0.35, 0.28, 0.20), (0.10, 0.10, 0.10), (0.40, 0.40, 0.30))
SKIN = ((0.96, 0.80, 0.69), (0.87, 0.67, 0.52), (0.72, 0.52, 0.38), (0.55, 0.37, 0.25), (0.36, 0.24, 0.16))
HAIR = ((0.08, 0.06, 0.05), (0.30, 0.18, 0.10), (0.75, 0.62, 0.35), (0.55, 0.55, 0.55))


def _c(rgb, alpha: int = 255) -> tuple[int, int, int, int]:
    return tuple(int(max(0, min(1, v)) * 255) for v in rgb) + (alpha,)


# ---------------------------------------------------------------------------------------------- the scene
def _scene(rng: np.random.Generator, n: int) -> tuple[Image.Image, float]:
    """Sky, far buildings, scaffolding, ground; returns the RGB image and the horizon's y (pixels)."""
    horizon = n * rng.uniform(0.28, 0.45)
    top = jitter_colour(rng, [(0.55, 0.68, 0.85), (0.70, 0.72, 0.75), (0.80, 0.78, 0.72)][rng.integers(3)], 0.05)
    bottom = np.clip(top + 0.12, 0, 1)
    t = np.linspace(0, 1, n, dtype=np.float32)[:, None, None]
    img = np.broadcast_to(top * (1 - t) + bottom * t, (n, n, 3)).copy()
    # Ground: earth / gravel / concrete with perspective shading.
    ground = jitter_colour(rng, [(0.50, 0.42, 0.32), (0.55, 0.55, 0.52), (0.42, 0.36, 0.28)][rng.integers(3)], 0.05)
    tex = 0.8 + 0.35 * (fractal_noise(rng, n, 4, 5) - 0.5)
    depth = np.clip((np.arange(n, dtype=np.float32) - horizon) / (n - horizon), 0, 1)[:, None]
    g = ground * (tex * (0.85 + 0.25 * depth))[..., None]
    below = (np.arange(n) >= horizon)[:, None, None]
    img = np.where(below, g, img)
    im = Image.fromarray((np.clip(img, 0, 1) * 255).astype(np.uint8), "RGB")
    d = ImageDraw.Draw(im, "RGBA")

    # Far buildings and a crane.
    x = -rng.uniform(0, 0.1) * n
    while x < n:
        w = rng.uniform(0.12, 0.3) * n
        h = rng.uniform(0.1, 0.3) * n
        col = jitter_colour(rng, (0.55, 0.55, 0.58), 0.08)
        d.rectangle((x, horizon - h, x + w, horizon), fill=_c(col))
        step = max(4.0, n / 40)
        for wy in np.arange(horizon - h + step, horizon - step, step * 1.6):
            for wx in np.arange(x + step * 0.6, x + w - step, step * 1.4):
                d.rectangle((wx, wy, wx + step * 0.6, wy + step * 0.7), fill=_c(col * 0.6))
        x += w + rng.uniform(0, 0.1) * n
    if rng.random() < 0.5:
        cx = rng.uniform(0.1, 0.9) * n
        crane = _c(jitter_colour(rng, (0.85, 0.65, 0.10), 0.05))
        d.line((cx, horizon, cx, horizon - 0.35 * n), fill=crane, width=max(2, n // 120))
        d.line((cx - 0.3 * n, horizon - 0.33 * n, cx + 0.15 * n, horizon - 0.33 * n), fill=crane, width=max(2, n // 160))

    # Scaffolding on a band behind the workers.
    if rng.random() < 0.8:
        pole = _c(jitter_colour(rng, [(0.6, 0.6, 0.62), (0.9, 0.75, 0.1), (0.85, 0.4, 0.1)][rng.integers(3)], 0.04))
        plank = _c(jitter_colour(rng, (0.55, 0.40, 0.22), 0.05))
        x0, x1 = sorted(rng.uniform(-0.1, 1.1, 2) * n)
        if x1 - x0 < 0.3 * n:
            x1 = x0 + 0.3 * n
        base = horizon + rng.uniform(0.02, 0.12) * n
        levels = int(rng.integers(2, 5))
        lh = rng.uniform(0.1, 0.16) * n
        bays = np.arange(x0, x1 + 1, rng.uniform(0.1, 0.18) * n)
        width = max(2, n // 110)
        for bx in bays:
            d.line((bx, base, bx, base - levels * lh), fill=pole, width=width)
        for k in range(levels + 1):
            y = base - k * lh
            d.line((bays[0], y, bays[-1], y), fill=pole, width=width)
            if k:
                d.rectangle((bays[0], y - width * 1.5, bays[-1], y), fill=plank)
        for a, b in zip(bays[:-1], bays[1:]):
            d.line((a, base, b, base - lh), fill=pole, width=max(1, width - 1))
    return im, horizon


def _props(rng: np.random.Generator, im: Image.Image, horizon: float) -> None:
    """Cones, barrels, pallets and bricks on the ground (hi-vis colours that are not vests)."""
    n = im.width
    d = ImageDraw.Draw(im, "RGBA")
    for _ in range(int(rng.integers(0, 5))):
        y = rng.uniform(horizon + 0.05 * n, n)
        s = (0.05 + 0.12 * (y - horizon) / (n - horizon)) * n
        x = rng.uniform(0, n)
        kind = rng.integers(4)
        if kind == 0:  # traffic cone
            d.polygon([(x - s * 0.3, y), (x + s * 0.3, y), (x, y - s)], fill=_c((0.98, 0.45, 0.08)))
            d.polygon([(x - s * 0.17, y - s * 0.45), (x + s * 0.17, y - s * 0.45), (x + s * 0.11, y - s * 0.63),
                       (x - s * 0.11, y - s * 0.63)], fill=_c((0.95, 0.95, 0.95)))
        elif kind == 1:  # barrel
            col = [(0.95, 0.8, 0.1), (0.15, 0.3, 0.7), (0.9, 0.4, 0.1)][rng.integers(3)]
            d.rectangle((x - s * 0.3, y - s * 0.8, x + s * 0.3, y), fill=_c(col))
            for k in (0.25, 0.55):
                d.rectangle((x - s * 0.3, y - s * (k + 0.07), x + s * 0.3, y - s * k), fill=_c((0.15, 0.15, 0.15)))
        elif kind == 2:  # pallet
            d.rectangle((x - s * 0.6, y - s * 0.2, x + s * 0.6, y), fill=_c((0.6, 0.45, 0.28)))
            for k in range(4):
                xx = x - s * 0.6 + k * s * 0.4
                d.rectangle((xx, y - s * 0.12, xx + s * 0.2, y - s * 0.02), fill=_c((0.25, 0.2, 0.15)))
        else:  # brick pile
            col = jitter_colour(rng, (0.62, 0.28, 0.2), 0.05)
            for row in range(3):
                for k in range(3 - row):
                    bx = x + (k - (3 - row) / 2) * s * 0.3
                    by = y - row * s * 0.12
                    d.rectangle((bx, by - s * 0.11, bx + s * 0.28, by), fill=_c(col), outline=_c(col * 0.7))


# --------------------------------------------------------------------------------------------- one person
def _person(rng: np.random.Generator, height: float, helmet: bool, vest: bool):
    """Draw one figure on its own supersampled RGBA layer.

    Returns (layer, helmet_box, vest_box) in layer pixels at final scale; the layer's origin is the top-left
    of its canvas, the feet's centre is at (w/2, h - margin).
    """
    H = height * SS
    m = 0.08 * H
    W = 0.9 * H
    layer = Image.new("RGBA", (int(W + 2 * m), int(H + 2 * m)))
    helmet_mask = Image.new("L", layer.size)
    vest_mask = Image.new("L", layer.size)
    d = ImageDraw.Draw(layer)
    ox, oy = layer.width / 2, H + m  # feet centre

    def P(x, y):  # figure units (fractions of H, y up from the feet) -> layer pixels
        return (ox + x * H, oy - y * H)

    skin = _c(jitter_colour(rng, SKIN[rng.integers(len(SKIN))], 0.03))
    hivis_shirt = not vest and rng.random() < 0.15
    shirt_rgb = HIVIS_SHIRTS[rng.integers(2)] if hivis_shirt else SHIRT_COLOURS[rng.integers(len(SHIRT_COLOURS))]
    shirt = _c(jitter_colour(rng, shirt_rgb, 0.04))
    trousers = _c(jitter_colour(rng, TROUSERS[rng.integers(len(TROUSERS))], 0.04))
    boots = _c((0.12, 0.1, 0.08))
    lean = rng.uniform(-0.03, 0.03)
    head_r = rng.uniform(0.062, 0.072)
    head_y = 1.0 - 0.03 - head_r  # leave room for a helmet's crown
    sh_y, hip_y = 0.80, 0.47
    sw, hw = rng.uniform(0.11, 0.14), rng.uniform(0.085, 0.1)
    limb = int(0.07 * H)

    # Legs (stance varies), then boots.
    spread = rng.uniform(0.02, 0.12)
    for side in (-1, 1):
        foot = P(side * spread + rng.uniform(-0.02, 0.02), 0.02)
        knee = P(side * (spread * 0.6 + 0.04), 0.25)
        d.line([P(side * 0.05 + lean, hip_y), knee, foot], fill=trousers, width=int(0.08 * H), joint="curve")
        d.ellipse((foot[0] - 0.05 * H, foot[1] - 0.03 * H, foot[0] + 0.06 * H, foot[1] + 0.02 * H), fill=boots)
    # Torso.
    torso = [P(-sw + lean, sh_y), P(sw + lean, sh_y), P(hw + lean, hip_y - 0.02), P(-hw + lean, hip_y - 0.02)]
    d.polygon(torso, fill=shirt)
    if vest:
        vcol = _c(jitter_colour(rng, VEST_COLOURS[rng.integers(len(VEST_COLOURS))], 0.03))
        vest_poly = [P(-sw * 0.92 + lean, sh_y - 0.005), P(-0.03 + lean, sh_y - 0.005), P(lean, sh_y - 0.09),
                     P(0.03 + lean, sh_y - 0.005), P(sw * 0.92 + lean, sh_y - 0.005),
                     P(hw * 1.05 + lean, hip_y - 0.05), P(-hw * 1.05 + lean, hip_y - 0.05)]
        d.polygon(vest_poly, fill=vcol)
        ImageDraw.Draw(vest_mask).polygon(vest_poly, fill=255)
        stripe = _c((0.82, 0.84, 0.86))
        for yy in (hip_y + 0.03, hip_y + 0.11):
            fr = (yy - (hip_y - 0.05)) / (sh_y - hip_y + 0.045)
            half = hw * 1.05 + (sw * 0.92 - hw * 1.05) * fr
            d.rectangle((*P(-half + lean, yy + 0.022), *P(half + lean, yy)), fill=stripe)
    # Arms (pose varies: down, bent, one raised).
    for side in (-1, 1):
        sx, sy = side * (sw - 0.02) + lean, sh_y - 0.02
        a = math.radians(rng.uniform(-20, 35) if rng.random() < 0.85 else rng.uniform(100, 160))
        elbow = (sx + side * 0.15 * math.sin(a), sy - 0.15 * math.cos(a))
        b = a + math.radians(rng.uniform(0, 60))
        hand = (elbow[0] + side * 0.14 * math.sin(b), elbow[1] - 0.14 * math.cos(b))
        d.line([P(sx, sy), P(*elbow)], fill=shirt, width=limb, joint="curve")
        d.line([P(*elbow), P(*hand)], fill=shirt if rng.random() < 0.5 else skin, width=int(limb * 0.85))
        hx, hy = P(*hand)
        d.ellipse((hx - limb * 0.55, hy - limb * 0.55, hx + limb * 0.55, hy + limb * 0.55), fill=skin)
    # Neck and head.
    d.line([P(lean, sh_y), P(lean, head_y - head_r * 0.5)], fill=skin, width=int(0.05 * H))
    hx, hy = P(lean, head_y)
    r = head_r * H
    d.ellipse((hx - r, hy - r, hx + r, hy + r), fill=skin)
    if helmet:
        hcol_rgb = jitter_colour(rng, HELMET_COLOURS[rng.integers(len(HELMET_COLOURS))], 0.03)
        dome = (hx - 1.12 * r, hy - 1.45 * r, hx + 1.12 * r, hy + 0.75 * r)
        brim = (hx - 1.35 * r, hy - 0.42 * r, hx + 1.35 * r, hy - 0.18 * r)
        for draw, fill in ((d, _c(hcol_rgb)), (ImageDraw.Draw(helmet_mask), 255)):
            draw.chord(dome, 180, 360, fill=fill)
            draw.rounded_rectangle(brim, radius=0.1 * r, fill=fill)
        d.line([(hx, hy - 1.4 * r), (hx, hy - 0.45 * r)], fill=_c(hcol_rgb * 0.8), width=max(1, int(0.18 * r)))
    else:
        hair = _c(jitter_colour(rng, HAIR[rng.integers(len(HAIR))], 0.03))
        if rng.random() < 0.2:  # knitted beanie: a hat that is not a helmet
            hair = _c(jitter_colour(rng, [(0.1, 0.1, 0.15), (0.3, 0.1, 0.1), (0.2, 0.25, 0.2)][rng.integers(3)], 0.03))
            d.chord((hx - 1.05 * r, hy - 1.25 * r, hx + 1.05 * r, hy + 0.5 * r), 180, 360, fill=hair)
        else:
            d.chord((hx - 1.03 * r, hy - 1.08 * r, hx + 1.03 * r, hy + 0.6 * r), 170, 370, fill=hair)

    small = layer.reduce(SS)
    hbox = _bbox(helmet_mask.reduce(SS)) if helmet else None
    vbox = _bbox(vest_mask.reduce(SS)) if vest else None
    return small, hbox, vbox


def _bbox(mask: Image.Image):
    """Pixel box of the pixels at least a quarter covered (anti-aliased fringes do not count)."""
    return mask.point(lambda a: 255 if a >= 64 else 0).getbbox()


def _overlap(a, b) -> float:
    """Share of the smaller figure's rough box covered by the other: keeps everyone mostly visible."""
    (fa, xa, ha), (fb, xb, hb) = a, b
    w = max(0.0, min(xa + 0.3 * ha, xb + 0.3 * hb) - max(xa - 0.3 * ha, xb - 0.3 * hb))
    h = max(0.0, min(fa, fb) - max(fa - ha, fb - hb))
    return w * h / (0.6 * min(ha, hb) ** 2)


def render(rng: np.random.Generator, n: int, max_people: int = 5) -> tuple[Image.Image, list[Region], dict]:
    """One scene of ``n``×``n`` pixels with 1..``max_people`` workers and their exact boxes (``max_people=0``:
    an empty frame, the site with nobody in it, as most of a fixed camera's footage)."""
    im, horizon = _scene(rng, n)
    _props(rng, im, horizon)
    count = int(rng.integers(min(1, max_people), max_people + 1))
    placed: list[tuple[float, float, float]] = []  # (foot_y, x, height)
    for _ in range(count * 6):
        if len(placed) == count:
            break
        foot = rng.uniform(horizon + 0.08 * n, n * 0.98)
        depth = (foot - horizon) / (n - horizon)
        h = n * (0.22 + 0.6 * depth) * rng.uniform(0.9, 1.1)
        h = min(h, foot * 0.97)  # keep the head inside the image
        x = rng.uniform(0.25 * h, n - 0.25 * h)
        if all(_overlap((foot, x, h), other) < 0.12 for other in placed):
            placed.append((foot, x, h))
    regions: list[Region] = []
    helmets = vests = 0
    for foot, x, h in sorted(placed):  # far (small y) first, near people drawn on top
        helmet = rng.random() < 0.6
        vest = rng.random() < 0.55
        layer, hbox, vbox = _person(rng, h, helmet, vest)
        ox = int(round(x - layer.width / 2))
        oy = int(round(foot - (layer.height - 0.08 * h)))
        im.paste(layer, (ox, oy), layer)
        pbox = _bbox(layer.getchannel("A"))
        for tag, box in (("helmet", hbox), ("vest", vbox), ("person", pbox)):
            if box is None:
                continue
            x0, y0, x1, y1 = box
            px = (max(0, x0 + ox), max(0, y0 + oy), min(n, x1 + ox), min(n, y1 + oy))
            if px[2] - px[0] >= 2 and px[3] - px[1] >= 2:
                regions.append(Region(tag, *clip_ltwh(pixels_to_ltwh(px, n, n))))
        helmets += helmet
        vests += vest
    meta = {"people": str(len(placed)), "helmets": str(helmets), "vests": str(vests)}
    return camera(rng, im, strength=0.7), regions, meta


def iter_records(name: str, count: int, seed: int, size: int, *, start: int = 0, empty: bool = False):
    """Yield ``count`` scenes; scene ``i`` depends only on (name, seed, i, empty).  ``empty``: frames with
    nobody in them (no regions), drawn from their own random stream."""
    salt = sum(name.encode()) + (1 << 20 if empty else 0)
    for i in range(start, start + count):
        rng = np.random.default_rng([seed, i, salt])
        image, regions, meta = render(rng, size, max_people=0) if empty else render(rng, size)
        yield Record(name=f"{name}-{'empty-' if empty else ''}{i:05d}.jpg", image=image, regions=regions,
                     width=size, height=size, metadata=meta)
