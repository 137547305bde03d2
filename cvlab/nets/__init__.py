"""Networks: pretrained EfficientNet-Lite backbones, the shared preprocessing, the classifier and the detector.

Submodules are imported on demand (torch/timm are heavy): ``cvlab.nets.backbones``, ``cvlab.nets.preprocess``,
``cvlab.nets.classifier``, ``cvlab.nets.detector``.
"""
