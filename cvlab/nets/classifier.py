"""The classification network: pixels 0..255 -> normalise -> EfficientNet-Lite trunk -> linear head -> probabilities.

One exportable ``nn.Module`` for Quick (frozen trunk, head fitted on cached embeddings) and Advanced (fine-tuned)
training.  Output columns follow the iteration's tag order.  Multiclass: softmax over every tag (the Negative tag
is an ordinary class).  Multilabel: one sigmoid per regular tag; a Negative tag, if the project has one, gets the
probability that none of the regular tags applies, prod(1 - p_i), so Negative images (all targets 0) are
predicted as Negative.
"""
from __future__ import annotations

import torch
from torch import nn

from cvlab.nets.backbones import PixelNormalize, new_backbone, spec


class Classifier(nn.Module):
    def __init__(self, backbone: str, num_outputs: int, multilabel: bool = False, negative_index: int | None = None):
        """``num_outputs`` counts every output column; in multilabel mode the Negative column (if any) is derived,
        so the linear head has one unit fewer."""
        super().__init__()
        self.backbone_name = spec(backbone).name
        self.multilabel = bool(multilabel)
        self.num_outputs = int(num_outputs)
        self.negative_index = negative_index if multilabel else None
        self.normalize = PixelNormalize()
        self.trunk = new_backbone(self.backbone_name)
        head_out = num_outputs - (1 if self.negative_index is not None else 0)
        self.head = nn.Linear(spec(backbone).num_features, head_out)
        nn.init.zeros_(self.head.weight)  # zero init: fine-tuning failed with timm's default init (feasibility.md)
        nn.init.zeros_(self.head.bias)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Global pooled embedding [B, 1280] of raw 0..255 pixels."""
        return self.trunk(self.normalize(x))

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    def probabilities_from_logits(self, z: torch.Tensor) -> torch.Tensor:
        if not self.multilabel:
            return torch.softmax(z, dim=1)
        p = torch.sigmoid(z)
        if self.negative_index is None:
            return p
        none = torch.prod(1.0 - p, dim=1, keepdim=True)
        return torch.cat([p[:, : self.negative_index], none, p[:, self.negative_index:]], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, 3, S, S] RGB 0..255 -> probabilities [B, T] in tag order."""
        return self.probabilities_from_logits(self.logits(x))
