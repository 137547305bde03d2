"""The classification network: pixels 0..255 -> normalise -> EfficientNet-Lite trunk -> linear head -> probabilities.

One exportable ``nn.Module`` for Quick (frozen trunk, head fitted on cached embeddings) and Advanced (fine-tuned)
training.  Output columns follow the iteration's tag order.  Multiclass: softmax over every tag (the Negative tag
is an ordinary class).  Multilabel: one sigmoid per regular tag; a Negative tag, if the project has one, gets the
probability that none of the regular tags applies, prod(1 - p_i), so Negative images (all targets 0) are
predicted as Negative.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from cvlab.nets import NORM_SCALE
from cvlab.nets.backbones import PixelNormalize, new_backbone, spec

# Inference batches no larger than training's: one forward of 30-32 images of Lite2 at 260 px took ~1.9 GB above
# the model (EfficientNet's expanded 130 px maps), more than a training step of 8, and set the process's peak RSS.
EVAL_BATCH = 8
# Gradient checkpointing of the first trunk stages (the 130/65/33 px maps of Lite2 at 260 px): their saved
# activations are recomputed in backward instead of kept, ~330 MB less per batch of 8 for a few per cent of CPU
# (fewer fresh pages to fault in pays for most of the recompute). Checkpointing every stage would save ~300 MB
# more for ~15-20 % more time per step.
CHECKPOINT_STAGES = 3


class Classifier(nn.Module):
    def __init__(self, backbone: str, num_outputs: int, multilabel: bool = False, negative_index: int | None = None,
                 feature_norm: str | None = None):
        """``num_outputs`` counts every output column; in multilabel mode the Negative column (if any) is derived,
        so the linear head has one unit fewer.  ``feature_norm="l2"``: the head sees ``NORM_SCALE * f / |f|``
        (cvlab.recipes), in the graph, so exports do the same."""
        super().__init__()
        if feature_norm not in (None, "l2"):
            raise ValueError(f"feature_norm must be None or 'l2', not {feature_norm!r}")
        self.feature_norm = feature_norm
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
        """Global pooled embedding [B, 1280] of raw 0..255 pixels; when training, the same numbers with the first
        ``CHECKPOINT_STAGES`` stages checkpointed (activations recomputed in backward, not kept)."""
        x = self.normalize(x)
        t = self.trunk
        if not (self.training and torch.is_grad_enabled()):  # inference, exports
            return t(x)
        x = t.bn1(t.conv_stem(x))
        for i, stage in enumerate(t.blocks):  # timm's forward_features, the first stages checkpointed
            x = checkpoint(stage, x, use_reentrant=False) if i < CHECKPOINT_STAGES else stage(x)
        return t.forward_head(t.bn2(t.conv_head(x)))

    def head_input(self, f: torch.Tensor) -> torch.Tensor:
        """Pooled embedding -> what the linear head takes (L2-normalised and scaled, or as is)."""
        if self.feature_norm != "l2":
            return f
        return NORM_SCALE * f / f.norm(dim=1, keepdim=True).clamp_min(1e-12)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.head_input(self.features(x)))

    @classmethod
    def from_info(cls, info: dict) -> "Classifier":
        """The architecture an iteration.json describes (weights loaded by the caller)."""
        return cls(info["backbone"], int(info["num_classes"]), multilabel=info["head"] == "sigmoid",
                   negative_index=info.get("negative_index"), feature_norm=info.get("feature_norm"))

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


def fit_linear_head(features: np.ndarray, targets: np.ndarray, multilabel: bool, num_classes: int,
                    seed: int = 0, C: float = 1.0, standardize: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Logistic regression on embeddings -> (weight [H, F], bias [H]) for ``Classifier.head``.

    Multiclass: ``targets`` are class indices, one multinomial model; classes absent from this fit (possible in a
    cross-validation fold) get a very low bias.  Multilabel: ``targets`` is a 0/1 matrix [N, H], one binary model
    per column; a column with a single value gets a constant (its clipped frequency).  Features are standardised
    and the scaler is folded into the weights, so the head still takes raw embeddings; ``standardize=False``
    fits the features as given (cvlab.recipes passes L2-normalised ones).

    The solver runs on one BLAS thread: at 150 x 1280 a second thread only adds hand-offs, and on a busy
    2-core machine OpenBLAS's waiting threads made each fit 30x slower (benchmarks/training.md, "Speed").
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        return _fit_linear_head(features, targets, multilabel, num_classes, seed, C, standardize)


def _fit_linear_head(features, targets, multilabel, num_classes, seed, C, standardize):
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    if standardize:
        scaler = StandardScaler().fit(features)
        x = scaler.transform(features)
    else:
        x = np.asarray(features, np.float64)
    n_feat = features.shape[1]
    if not multilabel:
        weight = np.zeros((num_classes, n_feat))
        bias = np.full(num_classes, -20.0)
        present = np.unique(targets)
        if len(present) == 1:
            bias[present[0]] = 0.0
        else:
            lr = LogisticRegression(C=C, max_iter=2000, random_state=seed).fit(x, targets)
            coef, intercept = lr.coef_, lr.intercept_
            if len(present) == 2:  # sklearn's binary form: one row for the second class
                coef = np.vstack([-coef[0] / 2, coef[0] / 2])
                intercept = np.array([-intercept[0] / 2, intercept[0] / 2])
            weight[lr.classes_] = coef
            bias[lr.classes_] = intercept
    else:
        targets = np.asarray(targets).reshape(len(features), -1)
        weight = np.zeros((targets.shape[1], n_feat))
        bias = np.zeros(targets.shape[1])
        for j in range(targets.shape[1]):
            y = targets[:, j]
            if y.min() == y.max():
                p = np.clip(y.mean(), 1e-3, 1 - 1e-3)
                bias[j] = np.log(p / (1 - p))
                continue
            lr = LogisticRegression(C=C, max_iter=2000, random_state=seed).fit(x, y)
            weight[j], bias[j] = lr.coef_[0], lr.intercept_[0]
    if not standardize:
        return weight.astype(np.float32), bias.astype(np.float32)
    # fold the standardisation: w.(f - mu)/sigma + b = (w/sigma).f + (b - w.mu/sigma)
    folded = weight / scaler.scale_
    return folded.astype(np.float32), (bias - folded @ scaler.mean_).astype(np.float32)


def set_head(model: Classifier, weight: np.ndarray, bias: np.ndarray) -> Classifier:
    with torch.no_grad():
        model.head.weight.copy_(torch.from_numpy(weight))
        model.head.bias.copy_(torch.from_numpy(bias))
    return model


def head_probabilities(model: Classifier, features: np.ndarray, weight=None, bias=None) -> np.ndarray:
    """Probabilities from embeddings through a head (the model's, or the given weights) without the trunk."""
    w = model.head.weight if weight is None else torch.from_numpy(weight)
    b = model.head.bias if bias is None else torch.from_numpy(bias)
    with torch.inference_mode():
        z = model.head_input(torch.from_numpy(np.asarray(features, np.float32))) @ w.T + b
        return model.probabilities_from_logits(z).numpy()


def predict(model: Classifier, x: torch.Tensor, logits: bool = False) -> torch.Tensor:
    """Probabilities (or logits) of pixels [N, 3, S, S] 0..255, EVAL_BATCH images at a time, without autograd."""
    if len(x) == 0:
        return torch.zeros((0, model.num_outputs if not logits else model.head.out_features))
    fn = model.logits if logits else model
    with torch.inference_mode():
        return torch.cat([fn(x[i:i + EVAL_BATCH].float()) for i in range(0, len(x), EVAL_BATCH)])


def _freeze_batchnorm(model: nn.Module) -> None:
    """Keep ImageNet BN statistics: batches of a few dozen images would only add noise to them."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()


def fine_tune(model: Classifier, train_x: torch.Tensor, train_y: torch.Tensor, val_x: torch.Tensor | None,
              val_y: torch.Tensor | None, *, time_budget_s: float, seed: int = 0, lr: float = 5e-4,
              max_epochs: int = 40, patience: int = 5, batch_size: int = 8, progress=None, cancel=None,
              crop_scale=(0.6, 1.0), color=(0.2, 0.2, 0.2, 0.02), erase: float = 0.0, **_ignored) -> dict:
    """Advanced training: fine-tune the whole network with augmentation, early stopping on the validation split.

    Start from a linear-probe head (LP-FT: the Quick head fitted on the training part's cached embeddings) or a
    zero head; timm's random head init made fine-tuning fail (feasibility.md).  Batches of 8 (training and
    evaluation) and checkpointing (``CHECKPOINT_STAGES``) keep Lite2 at 260 px near 2.3 GB peak RSS.

    ``train_x``/``val_x`` are uint8 [N, 3, S, S] pixels (already stretched to S); targets are class indices
    (multiclass) or 0/1 float rows over the head's outputs (multilabel).  Stops at ``max_epochs``, after
    ``patience`` epochs without a lower validation loss, or when the time budget would be exceeded; keeps the
    weights of the best epoch.  ``crop_scale``, ``color`` (ColorJitter's brightness, contrast, saturation, hue)
    and ``erase`` (RandomErasing's probability) come from the domain's recipe.  ``progress(fraction, message)``; ``cancel()`` -> True raises InterruptedError.
    """
    import copy
    import time

    from torchvision.transforms import v2

    size = train_x.shape[-1]
    steps = [v2.RandomResizedCrop(size, scale=tuple(crop_scale), ratio=(0.8, 1.25), antialias=True),
             v2.RandomHorizontalFlip(),
             v2.ColorJitter(*color)]
    if erase:  # a grey block in front of the subject (the recipe's occlusion, cvlab.recipes)
        steps.append(v2.RandomErasing(p=erase, scale=(0.05, 0.2), value=118))
    augment = v2.Compose(steps)
    loss_fn = nn.BCEWithLogitsLoss() if model.multilabel else nn.CrossEntropyLoss()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=1e-4)
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)  # the v2 transforms draw from the global generator
    start = time.monotonic()
    best = (float("inf"), copy.deepcopy(model.state_dict()), 0)
    history, stale, epoch_time, reason = [], 0, 0.0, "max_epochs"

    def val_loss() -> float:
        model.eval()
        return float(loss_fn(predict(model, val_x, logits=True), val_y))

    has_val = val_x is not None and len(val_x) > 0
    if has_val:  # epoch 0: the starting head (a linear probe) is a candidate too, so fine-tuning never ends worse
        best = (val_loss(), best[1], 0)
        history.append({"epoch": 0, "train_loss": None, "val_loss": round(best[0], 5), "seconds": 0.0})
    for epoch in range(1, max_epochs + 1):
        if epoch > 1 and time.monotonic() - start + epoch_time > time_budget_s:
            reason = "time_budget"
            break
        t0 = time.monotonic()
        model.train()
        _freeze_batchnorm(model)
        order = torch.randperm(len(train_x), generator=gen)
        running, seen, out_of_time = 0.0, 0, False
        for i in range(0, len(order), batch_size):
            if cancel is not None and cancel():
                raise InterruptedError("Cancelled")
            if seen and time.monotonic() - start > time_budget_s:  # never exceed the budget by more than a step
                out_of_time = True
                break
            idx = order[i:i + batch_size]
            x = torch.stack([augment(img) for img in train_x[idx]]).float()
            loss = loss_fn(model.logits(x), train_y[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            running += float(loss.detach()) * len(idx)
            seen += len(idx)
        epoch_time = time.monotonic() - t0
        train_loss = running / seen
        current = val_loss() if has_val else train_loss
        history.append({"epoch": epoch, "train_loss": round(train_loss, 5), "val_loss": round(current, 5),
                        "seconds": round(epoch_time, 2)})
        if current < best[0] - 1e-6:
            best, stale = (current, copy.deepcopy(model.state_dict()), epoch), 0
        else:
            stale += 1
        if progress:
            used = (time.monotonic() - start) / max(time_budget_s, 1e-9)
            progress(min(1.0, max(epoch / max_epochs, used)), f"epoch {epoch}: loss {train_loss:.3f}, "
                                                                f"validation {current:.3f}")
        if out_of_time:
            reason = "time_budget"
            break
        if stale >= patience:
            reason = "early_stopping"
            break
    model.load_state_dict(best[1])
    model.eval()
    return {"epochs": sum(h["epoch"] > 0 for h in history), "best_epoch": best[2], "best_val_loss": round(best[0], 5),
            "stopped": reason, "seconds": round(time.monotonic() - start, 2), "history": history}


# Partial fine-tuning (Advanced for the General domains, cvlab.recipes): the stem and the first ``frozen_blocks``
# trunk stages keep their ImageNet weights, so their output maps are computed once per image and mirror and
# cached; only the later stages, the final 1x1 conv and the head train, on those maps. The result is an ordinary
# Classifier (the same graph as Quick's, new weights), so every export is unchanged.
PARTIAL_LR = 3e-4            # later stages; the head learns at 3x (LP-FT: it starts from the probe)
PARTIAL_BATCH = 16
PARTIAL_LABEL_SMOOTHING = 0.1


def _front(model: Classifier, x: torch.Tensor, k: int) -> torch.Tensor:
    """Raw pixels -> the map after trunk stage ``k`` (frozen part)."""
    t = model.trunk
    x = t.bn1(t.conv_stem(model.normalize(x)))
    for stage in t.blocks[:k]:
        x = stage(x)
    return x


def _pooled(model: Classifier, m: torch.Tensor, k: int) -> torch.Tensor:
    """The map after stage ``k`` -> the pooled embedding [B, F] (the trained part of the trunk)."""
    t = model.trunk
    for stage in t.blocks[k:]:
        m = stage(m)
    return t.forward_head(t.bn2(t.conv_head(m)))


def _back(model: Classifier, m: torch.Tensor, k: int) -> torch.Tensor:
    """The map after stage ``k`` -> head logits; _back(_front(x)) == model.logits(x)."""
    return model.head(model.head_input(_pooled(model, m, k)))


def frozen_maps(model: Classifier, x: torch.Tensor, k: int, mirror: bool = False) -> torch.Tensor:
    """float16 maps after stage ``k`` of uint8 pixels [N, 3, S, S] (mirrored first when ``mirror``)."""
    out = []
    with torch.no_grad():  # not inference_mode: the maps are inputs to training steps later
        for i in range(0, len(x), EVAL_BATCH):
            xb = x[i:i + EVAL_BATCH].float()
            out.append(_front(model, torch.flip(xb, dims=[3]) if mirror else xb, k).half())
    return torch.cat(out) if out else torch.zeros(0)


class FrozenMaps:
    """The cached maps after the frozen stages of a set of images, as they are and mirrored (float16)."""

    def __init__(self, plain: torch.Tensor, mirror: torch.Tensor):
        self.plain, self.mirror = plain, mirror

    def __getitem__(self, rows) -> "FrozenMaps":  # one cache serves the training part and all images alike
        return FrozenMaps(self.plain[rows], self.mirror[rows])

    def __len__(self) -> int:
        return len(self.plain)


def cache_frozen_maps(model: Classifier, x: torch.Tensor, frozen_blocks: int) -> FrozenMaps:
    """The maps partial fine-tuning trains on, computed once: the frozen stages never change."""
    model.eval()
    return FrozenMaps(frozen_maps(model, x, frozen_blocks), frozen_maps(model, x, frozen_blocks, mirror=True))


def partial_fine_tune(model: Classifier, train_x, train_y: torch.Tensor, val_x, val_y: torch.Tensor | None, *,
                      frozen_blocks: int, epochs: int, time_budget_s: float, seed: int = 0, lr: float = PARTIAL_LR,
                      batch_size: int = PARTIAL_BATCH, head_init=None, progress=None, cancel=None) -> dict:
    """Advanced training on cached maps: train the trunk after stage ``frozen_blocks``, the last conv and the head.

    ``train_x``: uint8 pixels [N, 3, S, S] or their FrozenMaps (cache_frozen_maps; a second run on the same
    images then skips the caching); ``val_x``: pixels, their maps after stage ``frozen_blocks``, or None.
    Augmentation on the cached maps: the image or its mirror, and a shift by up to one map cell (16 px at stride
    16). One-cycle learning rate over ``epochs`` (planned from the budget by the caller, so the same data and seed
    give the same model; a machine slower than planned re-plans fewer epochs after the first, so the decay still
    ends in the budget). Returns the network after the last epoch, the end of the decay: on 30 validation images
    the lowest-loss epoch was a noisy choice that picked the high-learning-rate phase; the caller's gate against
    the probe is what keeps Advanced from being worse than Quick. ``head_init(features [N, F]) -> (weight, bias)``
    refits the starting head on this input size's pooled features (LP-FT). Returns fine_tune's dict plus
    ``cache_s``."""
    import time

    k = int(frozen_blocks)
    if not 1 <= k < len(model.trunk.blocks):
        raise ValueError(f"frozen_blocks must be between 1 and {len(model.trunk.blocks) - 1}, got {frozen_blocks}")
    start = time.monotonic()
    model.eval()
    maps = train_x if isinstance(train_x, FrozenMaps) else cache_frozen_maps(model, train_x, k)
    if val_x is None or not len(val_x):
        val_maps = None
    else:
        val_maps = val_x if val_x.dtype != torch.uint8 else frozen_maps(model, val_x, k)
    if head_init is not None:
        with torch.inference_mode():
            feats = torch.cat([_pooled(model, maps.plain[i:i + EVAL_BATCH].float(), k)
                               for i in range(0, len(maps), EVAL_BATCH)])
        set_head(model, *head_init(feats.numpy()))
    cache_s = time.monotonic() - start

    frozen = [model.normalize, model.trunk.conv_stem, model.trunk.bn1, *model.trunk.blocks[:k]]
    for m in frozen:
        m.requires_grad_(False)
    body = [p for m in (*model.trunk.blocks[k:], model.trunk.conv_head, model.trunk.bn2) for p in m.parameters()]
    optimizer = torch.optim.AdamW([{"params": body, "lr": lr}, {"params": list(model.head.parameters()), "lr": 3 * lr}],
                                  weight_decay=1e-4)
    steps_per_epoch = max(1, -(-len(maps) // batch_size))
    peaks = [lr, 3 * lr]

    def set_lr(step: int, total: int) -> None:
        """One cycle: a linear warm-up over the first 15 % of the steps, then a cosine decay to zero."""
        warm = max(1, int(0.15 * total))
        if step < warm:
            f = step / warm
        else:
            f = 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warm) / max(1, total - warm))))
        for group, peak in zip(optimizer.param_groups, peaks):
            group["lr"] = peak * max(f, 0.01)
    if model.multilabel:
        train_loss_fn = val_loss_fn = nn.BCEWithLogitsLoss()
    else:
        train_loss_fn, val_loss_fn = nn.CrossEntropyLoss(label_smoothing=PARTIAL_LABEL_SMOOTHING), nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(seed)

    def val_loss() -> float:
        model.eval()
        with torch.inference_mode():
            z = torch.cat([_back(model, val_maps[i:i + EVAL_BATCH].float(), k)
                           for i in range(0, len(val_maps), EVAL_BATCH)])
        return float(val_loss_fn(z, val_y))

    history = [{"epoch": 0, "train_loss": None, "val_loss": round(val_loss(), 5) if val_maps is not None else None,
                "seconds": round(cache_s, 2)}]
    reason, epoch_time, step, planned = "planned_epochs", 0.0, 0, epochs
    try:
        for epoch in range(1, epochs + 1):
            if epoch > planned:
                break
            if epoch > 1 and time.monotonic() - start + epoch_time > time_budget_s:
                reason = "time_budget"
                break
            t0 = time.monotonic()
            model.train()
            _freeze_batchnorm(model)
            order = torch.randperm(len(maps), generator=gen)
            running = 0.0
            for i in range(0, len(order), batch_size):
                if cancel is not None and cancel():
                    raise InterruptedError("Cancelled")
                idx = order[i:i + batch_size]
                flip = torch.rand(len(idx), generator=gen) < 0.5
                m = torch.where(flip.view(-1, 1, 1, 1), maps.mirror[idx], maps.plain[idx]).float()
                dy, dx = (int(v) for v in torch.randint(-1, 2, (2,), generator=gen))
                m = torch.roll(m, shifts=(dy, dx), dims=(2, 3))
                set_lr(step, planned * steps_per_epoch)
                loss = train_loss_fn(_back(model, m, k), train_y[idx])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                step += 1
                running += float(loss.detach()) * len(idx)
            train_loss = running / len(order)
            current = val_loss() if val_maps is not None else train_loss
            epoch_time = time.monotonic() - t0
            if epoch == 1:  # a machine slower than planned: fewer epochs, so the decay still ends inside the budget
                fit = int((time_budget_s - (time.monotonic() - start)) // max(epoch_time, 1e-9))
                if 1 + fit < planned:
                    planned, reason = max(1, 1 + fit), "time_budget"
            history.append({"epoch": epoch, "train_loss": round(train_loss, 5), "val_loss": round(current, 5),
                            "seconds": round(epoch_time, 2)})
            if progress:
                progress(min(1.0, epoch / epochs), f"epoch {epoch}/{epochs}: loss {train_loss:.3f}, validation "
                                                   f"{current:.3f}")
    finally:
        for m in frozen:
            m.requires_grad_(True)
    model.eval()
    last = history[-1]
    return {"epochs": sum(h["epoch"] > 0 for h in history), "best_epoch": last["epoch"],
            "best_val_loss": last["val_loss"], "stopped": reason, "epochs_after_replanning": planned,
            "seconds": round(time.monotonic() - start, 2),
            "cache_s": round(cache_s, 2), "frozen_blocks": k, "history": history}
