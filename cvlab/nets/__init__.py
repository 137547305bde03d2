"""Networks: pretrained EfficientNet-Lite backbones, the shared preprocessing, the classifier and the detector.

Submodules are imported on demand (torch/timm are heavy): ``cvlab.nets.backbones``, ``cvlab.nets.preprocess``,
``cvlab.nets.classifier``, ``cvlab.nets.detector``.
"""

#: An L2-normalised linear head sees ``NORM_SCALE * f / |f|``: the recipes fit it so, the classifier's graph (and so
#: every export) computes it so. Here, not in either, so neither imports the other for it.
NORM_SCALE = 8.0
