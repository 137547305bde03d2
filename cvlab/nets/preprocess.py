"""The one host-side preprocessing shared by training, the Predictor and every export.

Host side only: EXIF-orient, RGB, *stretch* resize to size x size (bilinear, Pillow), float32 NCHW RGB 0..255.
Normalisation lives inside the network, so exported models take raw pixels as Azure's do.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image


@dataclass(frozen=True)
class Preprocessing:
    size: int = 224
    resize: str = "stretch"          # no crop, no letterbox: the whole image squashed to size x size
    interpolation: str = "bilinear"  # Pillow's BILINEAR (antialiased when downscaling)
    color: str = "RGB"
    layout: str = "NCHW"
    dtype: str = "float32"
    value_range: tuple = (0.0, 255.0)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["value_range"] = list(self.value_range)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Preprocessing":
        d = dict(d)
        if "value_range" in d:
            d["value_range"] = tuple(d["value_range"])
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})

    def array(self, image: Image.Image) -> np.ndarray:
        """One oriented RGB PIL image -> float32 [3, S, S] in 0..255."""
        from cvlab.images import resize_stretch

        resized = resize_stretch(image if image.mode == "RGB" else image.convert("RGB"), self.size)
        return np.asarray(resized, dtype=np.float32).transpose(2, 0, 1).copy()

    def batch(self, images) -> torch.Tensor:
        """Images (PIL, bytes or paths) -> float32 tensor [B, 3, S, S] in 0..255."""
        return torch.from_numpy(np.stack([self.array(to_pil(im)) for im in images]))


def to_pil(image) -> Image.Image:
    """bytes | path | PIL -> oriented RGB PIL image; decoding and its errors belong to cvlab.images."""
    if not isinstance(image, (Image.Image, bytes, bytearray, memoryview, str, Path)):
        raise TypeError(f"Expected image bytes, a path or a PIL image, got {type(image).__name__}")
    from cvlab.images import is_upright_rgb, load_rgb

    if isinstance(image, Image.Image) and is_upright_rgb(image):
        return image  # preprocessing only reads it: no defensive copy (~0.3 ms for a photo)
    return load_rgb(image)
