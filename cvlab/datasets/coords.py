"""Box coordinate conventions, and the only place that converts between them.

Custom Vision stores regions as normalised ``left, top, width, height`` (0..1 of the image size). The
file formats each use their own convention:

=========  ===========================================  ==========
format     box                                          units
=========  ===========================================  ==========
Azure      ``left, top, width, height``                 normalised
COCO       ``x, y, w, h`` (top-left corner + size)      pixels
VOC        ``xmin, ymin, xmax, ymax``                   pixels
YOLO       ``cx, cy, w, h`` (centre + size)             normalised
=========  ===========================================  ==========

Every function takes and returns plain floats (tuples), so the formats stay independent of one another.
Whether a box is a usable region is Azure's rule, ``cvlab.rules.box_problem`` (``validate_ltwh`` here).
"""
from __future__ import annotations

from cvlab.rules import box_problem as validate_ltwh  # noqa: F401  (the formats' name for the one rule)

Box = tuple[float, float, float, float]


def _check_size(width: float, height: float) -> None:
    if not (width > 0 and height > 0):
        raise ValueError(f"image size must be positive, got {width}x{height}")


def ltwh_to_coco(box: Box, width: float, height: float) -> Box:
    """Normalised left/top/width/height -> COCO pixel x, y, w, h."""
    _check_size(width, height)
    left, top, w, h = box
    return (left * width, top * height, w * width, h * height)


def coco_to_ltwh(box: Box, width: float, height: float) -> Box:
    """COCO pixel x, y, w, h -> normalised left/top/width/height."""
    _check_size(width, height)
    x, y, w, h = box
    return (x / width, y / height, w / width, h / height)


def ltwh_to_voc(box: Box, width: float, height: float) -> Box:
    """Normalised left/top/width/height -> VOC pixel xmin, ymin, xmax, ymax."""
    _check_size(width, height)
    left, top, w, h = box
    return (left * width, top * height, (left + w) * width, (top + h) * height)


def voc_to_ltwh(box: Box, width: float, height: float) -> Box:
    """VOC pixel xmin, ymin, xmax, ymax -> normalised left/top/width/height."""
    _check_size(width, height)
    x0, y0, x1, y1 = box
    return (x0 / width, y0 / height, (x1 - x0) / width, (y1 - y0) / height)


def ltwh_to_yolo(box: Box) -> Box:
    """Normalised left/top/width/height -> YOLO normalised centre x, centre y, w, h."""
    left, top, w, h = box
    return (left + w / 2, top + h / 2, w, h)


def yolo_to_ltwh(box: Box) -> Box:
    """YOLO normalised centre x, centre y, w, h -> normalised left/top/width/height."""
    cx, cy, w, h = box
    return (cx - w / 2, cy - h / 2, w, h)


def ltwh_to_pixels(box: Box, width: float, height: float) -> Box:
    """Normalised left/top/width/height -> pixel xyxy (the convention drawing code and torchvision use)."""
    return ltwh_to_voc(box, width, height)


def pixels_to_ltwh(box: Box, width: float, height: float) -> Box:
    """Pixel xyxy -> normalised left/top/width/height."""
    return voc_to_ltwh(box, width, height)


def clip_ltwh(box: Box) -> Box:
    """Clip a normalised box to the image (0..1); a box that ends up empty keeps zero width/height."""
    left, top, w, h = box
    x0, y0 = min(max(left, 0.0), 1.0), min(max(top, 0.0), 1.0)
    x1, y1 = min(max(left + w, 0.0), 1.0), min(max(top + h, 0.0), 1.0)
    return (x0, y0, max(x1 - x0, 0.0), max(y1 - y0, 0.0))
