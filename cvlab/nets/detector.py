"""The object detector: pretrained EfficientNet-Lite0 trunk + light FPN + FCOS head, exportable as Azure's "S1".

Why FCOS: anchor-free, one prediction per feature-map cell, so decoding is a few tensor ops that trace into
ONNX.  We subclass torchvision's ``FCOS`` to reuse its head, centre-sampling target assignment and losses
(sigmoid focal, GIoU, centre-ness), but replace its forward: eval ``forward(x)`` takes raw RGB 0..255
[B,3,S,S] and returns ``(boxes [B,N,4] xyxy 0..1, classes [B,N] int64, scores [B,N])`` with decoding, score
filtering and NMS (``torchvision.ops.batched_nms``) inside the graph; rows are ordered by score, then box, then
class (``lexsort``: the same order in torch and onnxruntime even for equal scores); N is the largest per-image
detection count of the batch, shorter rows are padded with score 0 (for one image: no padding, like Azure's).

Quick training freezes the trunk (BatchNorm included), caches its features once per image and its mirror
image, and trains only neck + head, so an epoch costs a fraction of a trunk pass.  Advanced training also
fine-tunes the trunk (BatchNorm statistics stay frozen: batches are tiny) on box-aware torchvision v2
augmentations (flip, scale/translate jitter, colour jitter).
"""
from __future__ import annotations

import contextlib
import math
import time
from collections import OrderedDict
from typing import Callable

import numpy as np
import torch
from PIL import Image
from torch import Tensor, nn
from torchvision.models.detection import FCOS
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.fcos import FCOSHead
from torchvision.models.detection.image_list import ImageList
from torchvision.ops import FeaturePyramidNetwork, batched_nms

from cvlab import rules
from cvlab.errors import CvlabError
from cvlab.nets import backbones
from cvlab.nets.preprocess import Preprocessing

STRIDES = (8, 16, 32)          # FPN levels P3..P5 (Lite0 stages 2..4: 40/112/320 channels)
FPN_CHANNELS = 64              # light neck: the head runs on every cell of every level
HEAD_CONVS = 3
SCORE_THRESH = 0.01            # Azure returns low-probability boxes too; clients filter
NMS_IOU = 0.5                  # Azure's S1 samples use 0.5
DETECTIONS_PER_IMAGE = 100
TOPK_CANDIDATES = 1000

Target = tuple[int, float, float, float, float]          # class_index, left, top, width, height (0..1)
Detection = tuple[int, float, float, float, float, float]  # class_index, probability, left, top, width, height


class _Trunk(nn.Module):
    """Lite0 multi-scale features + FPN; FCOS needs ``out_channels`` and an OrderedDict of levels."""

    def __init__(self, backbone_name: str, fpn_channels: int):
        super().__init__()
        self.body = backbones.new_feature_extractor(backbone_name, out_indices=(2, 3, 4))
        self.fpn = FeaturePyramidNetwork(self.body.feature_info.channels(), fpn_channels)
        self.out_channels = fpn_channels

    def neck(self, feats: list[Tensor]) -> list[Tensor]:
        return list(self.fpn(OrderedDict((str(i), f) for i, f in enumerate(feats))).values())

    def forward(self, x: Tensor) -> list[Tensor]:
        return self.neck(self.body(x))


class Detector(FCOS):
    """FCOS with a Lite0 trunk and an exportable eval forward (see module docstring)."""

    def __init__(self, num_classes: int, size: int = 320, backbone: str = "lite0",
                 fpn_channels: int = FPN_CHANNELS, head_convs: int = HEAD_CONVS):
        trunk = _Trunk(backbone, fpn_channels)
        anchor_gen = AnchorGenerator(tuple((s,) for s in STRIDES), ((1.0,),) * len(STRIDES))
        super().__init__(
            trunk, num_classes, min_size=size, max_size=size,
            anchor_generator=anchor_gen,
            head=FCOSHead(fpn_channels, 1, num_classes, num_convs=head_convs),
            score_thresh=SCORE_THRESH, nms_thresh=NMS_IOU,
            detections_per_img=DETECTIONS_PER_IMAGE, topk_candidates=TOPK_CANDIDATES)
        self.num_classes = num_classes
        self.size = size
        self.normalize = backbones.PixelNormalize()
        # The input size is fixed, so the anchors are constants of the graph.
        grids = [(size // s, size // s) for s in STRIDES]
        dummy = ImageList(torch.zeros(1, 3, size, size), [(size, size)])
        anchors = anchor_gen(dummy, [torch.zeros(1, 1, h, w) for h, w in grids])[0]
        self.register_buffer("anchors", anchors, persistent=False)
        self.num_anchors_per_level = [h * w for h, w in grids]

    # --- pieces shared by training and inference -------------------------------------------------------
    def trunk_features(self, x: Tensor) -> list[Tensor]:
        """Raw 0..255 pixels -> the pretrained trunk's multi-scale features (what Quick training caches)."""
        return self.backbone.body(self.normalize(x))

    def head_outputs(self, feats: list[Tensor]) -> dict[str, Tensor]:
        return self.head(self.backbone.neck(feats))

    def losses(self, head_outputs: dict[str, Tensor], targets: list[dict[str, Tensor]]) -> dict[str, Tensor]:
        """FCOS's own target assignment and losses (focal, GIoU, centre-ness)."""
        anchors = [self.anchors] * len(targets)
        return self.compute_loss(targets, head_outputs, anchors, self.num_anchors_per_level)

    # --- exportable inference --------------------------------------------------------------------------
    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:  # type: ignore[override]
        out = self.head_outputs(self.trunk_features(x))
        return self.postprocess(out)

    def postprocess(self, out: dict[str, Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        """Decode, keep the top candidates above the score threshold, class-wise NMS, pad per image."""
        batch = out["cls_logits"].shape[0]
        num_classes = self.num_classes
        boxes = self.box_coder.decode(out["bbox_regression"], self.anchors)          # [B, A, 4] pixels
        boxes = boxes.clamp(0, self.size) / self.size
        scores = torch.sqrt(torch.sigmoid(out["cls_logits"]) * torch.sigmoid(out["bbox_ctrness"]))  # [B, A, C]
        scores = scores.flatten(1)                                                    # [B, A*C]
        k = min(self.topk_candidates, sum(self.num_anchors_per_level) * num_classes)  # static
        top_scores, top_idx = scores.topk(k, dim=1)                                   # [B, k]
        top_boxes = torch.gather(boxes, 1, (top_idx // num_classes).unsqueeze(-1).expand(-1, -1, 4))
        top_classes = top_idx % num_classes
        image_idx = torch.arange(batch, device=boxes.device).unsqueeze(1).expand(-1, k)

        flat_scores, flat_boxes = top_scores.reshape(-1), top_boxes.reshape(-1, 4)
        flat_classes, flat_images = top_classes.reshape(-1), image_idx.reshape(-1)
        cand = torch.nonzero(flat_scores > self.score_thresh).squeeze(1)
        keep = cand[batched_nms(flat_boxes[cand], flat_scores[cand],
                                flat_images[cand] * num_classes + flat_classes[cand], self.nms_thresh)]
        # one defined order in torch and in the exported graph: score descending, then the box, then the class
        # (NMS sorts by score only, and equal scores come out in whatever order a backend's sort leaves them)
        kept_boxes = flat_boxes[keep]
        keep = keep[lexsort([-flat_scores[keep], kept_boxes[:, 0], kept_boxes[:, 1], kept_boxes[:, 2],
                             kept_boxes[:, 3], flat_classes[keep]])]
        # rank each detection within its own image, cap, and scatter into [B, N].
        img = flat_images[keep]
        onehot = (img.unsqueeze(1) == torch.arange(batch, device=img.device).unsqueeze(0)).to(torch.int64)
        rank = (onehot.cumsum(0) * onehot).sum(1) - 1
        capped = rank < self.detections_per_img
        keep, img, rank = keep[capped], img[capped], rank[capped]
        n = torch.clamp(onehot.sum(0), max=self.detections_per_img).max()
        slots = torch.arange(n, device=img.device)                                     # [N], dynamic length
        # zeros [B, N, 4] built by broadcasting, so N stays dynamic in the exported graph
        out_boxes = torch.zeros(batch, 1, 4, device=img.device) + slots.to(torch.float32).view(1, -1, 1) * 0
        out_scores = out_boxes[..., 0].clone()
        out_classes = out_scores.to(torch.int64)
        out_boxes = out_boxes.index_put((img, rank), flat_boxes[keep])
        out_scores = out_scores.index_put((img, rank), flat_scores[keep])
        out_classes = out_classes.index_put((img, rank), flat_classes[keep])
        return out_boxes, out_classes, out_scores


def lexsort(keys: list[Tensor]) -> Tensor:
    """The permutation that sorts by ``keys[0]`` ascending, then ``keys[1]``..., then by position: the same answer
    from any sort, stable or not (torch's, onnxruntime's TopK), because every pass sorts unique int64 keys (a
    value's dense rank times n plus the rank so far). Plain tensor ops, so it traces into ONNX."""
    n = keys[0].shape[0]
    rank = torch.arange(n, device=keys[0].device)
    for key in reversed(keys):
        order = torch.argsort(key)
        ranked = key[order]
        dense = torch.cat([torch.zeros_like(order[:1]), (ranked[1:] != ranked[:-1]).to(torch.int64)]).cumsum(0)
        dense = torch.zeros_like(order).scatter(0, order, dense)
        positions = torch.arange(n, device=order.device)
        rank = torch.zeros_like(order).scatter(0, torch.argsort(dense * n + rank), positions)
    return torch.argsort(rank)


def build_detector(num_classes: int, size: int = 320, seed: int = 0, *, backbone: str = "lite0") -> Detector:
    """A fresh detector (pretrained trunk, seeded head), in eval mode."""
    if not isinstance(num_classes, int) or num_classes < 1:
        raise CvlabError("BadRequestDetectionTrainingValidationFailed",
                         f"A detector needs at least one tag (class); got num_classes={num_classes!r}.")
    if size % max(STRIDES) != 0 or size < 2 * max(STRIDES):
        raise CvlabError("BadRequest", f"Detector input size must be a multiple of {max(STRIDES)} "
                         f"(at least {2 * max(STRIDES)}); got {size}.")
    with torch.random.fork_rng():  # seed the head's initialisation without touching the caller's RNG
        torch.manual_seed(seed)
        return Detector(num_classes, size=size, backbone=backbone).eval()


# --- training ----------------------------------------------------------------------------------------------
DEFAULT_EPOCHS = {False: 40, True: 20}   # Quick epochs are cheap (cached trunk features)
BATCH_SIZE = 8
LR = {"head": 2e-3, "body": 2e-4}
WEIGHT_DECAY = 1e-4
WARMUP_STEPS = 30


def _validate(model: Detector, images: list, targets: list) -> None:
    if not isinstance(model, Detector):
        raise CvlabError("BadRequest", "fit_detector needs a model from build_detector().")
    if len(images) == 0:
        raise CvlabError("BadRequestDetectionTrainingValidationFailed",
                         "Not enough images for training: add tagged images with regions.")
    if len(images) != len(targets):
        raise CvlabError("BadRequestDetectionTrainingValidationFailed",
                         f"{len(images)} images but {len(targets)} target lists: give one list of regions per image.")
    if not any(len(t) for t in targets):
        raise CvlabError("BadRequestDetectionTrainingValidationFailed",
                         "No image has a region: draw at least one box before training a detector.")
    for i, regions in enumerate(targets):
        for region in regions:
            if len(region) != 5:
                raise CvlabError("BadRequestImageRegions", f"Image {i}: a region must be (class_index, left, top, "
                                 f"width, height), got {region!r}.")
            cls, left, top, width, height = region
            if not (isinstance(cls, (int, np.integer)) and 0 <= cls < model.num_classes):
                raise CvlabError("BadRequestImageRegions", f"Image {i}: class index {cls!r} is outside "
                                 f"0..{model.num_classes - 1}; build the detector with one class per tag.")
            vals = (left, top, width, height)
            if rules.box_problem(vals):
                raise CvlabError("BadRequestImageRegions", f"Image {i}: region {vals} must lie inside the image "
                                 "(left, top, width, height normalised to 0..1, width and height > 0).")


def _box_targets(regions: list[Target], size: int) -> dict[str, Tensor]:
    """Normalised (class, l, t, w, h) -> FCOS target dict in input pixels (the resize is a stretch)."""
    if not regions:
        return {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)}
    arr = torch.tensor([r[1:] for r in regions], dtype=torch.float32)
    xyxy = torch.cat([arr[:, :2], arr[:, :2] + arr[:, 2:]], 1).clamp(0, 1) * size
    return {"boxes": xyxy, "labels": torch.tensor([int(r[0]) for r in regions], dtype=torch.int64)}


def _hflip(target: dict[str, Tensor], size: int) -> dict[str, Tensor]:
    b = target["boxes"]
    return {"boxes": torch.stack([size - b[:, 2], b[:, 1], size - b[:, 0], b[:, 3]], 1), "labels": target["labels"]}


@contextlib.contextmanager
def channels_last(model: nn.Module):
    """Run the model's convolutions in channels-last layout (oneDNN's fast path on CPU: trunk features and head
    steps measured about 1.2-1.6x faster), then put its weights back in the default layout, so saving, export
    and ONNX tracing see the same tensors as before."""
    model.to(memory_format=torch.channels_last)
    try:
        yield model
    finally:
        model.to(memory_format=torch.contiguous_format)


def _freeze_batchnorm(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()


class _Schedule:
    """Linear warm-up then cosine decay over a step plan; with a time budget the plan is set after epoch 1."""

    def __init__(self, optimizer: torch.optim.Optimizer, planned_steps: int):
        self.optimizer, self.planned = optimizer, max(1, planned_steps)
        self.base = [g["lr"] for g in optimizer.param_groups]

    def set(self, step: int) -> None:
        warm = min(1.0, (step + 1) / min(WARMUP_STEPS, max(1, self.planned // 5)))
        p = min(1.0, step / self.planned)
        factor = warm * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * p)))
        for g, base in zip(self.optimizer.param_groups, self.base):
            g["lr"] = base * factor


def fit_detector(model: Detector, images: list[Image.Image], targets: list[list[Target]], *,
                 advanced: bool = False, time_budget_s: float | None = None, epochs: int | None = None,
                 seed: int = 0, progress: Callable[[float, str], None] | None = None, cancel=None,
                 scale: tuple = (0.75, 1.25)) -> dict:
    """Train in place. Quick: frozen trunk, cached features, train neck + head. Advanced: fine-tune everything
    with box-aware augmentation. Stops at `epochs`, at `time_budget_s` (after at least one full epoch: an
    untrained head is useless), or when `cancel` is set; the model is left in eval mode either way."""
    with torch.random.fork_rng(), channels_last(model):  # seeded: the caller's RNG is left as it was
        torch.manual_seed(seed)
        return _fit(model, images, targets, advanced=advanced, time_budget_s=time_budget_s, epochs=epochs,
                    seed=seed, progress=progress, cancel=cancel, scale=scale)


def _fit(model, images, targets, *, advanced, time_budget_s, epochs, seed, progress, cancel, scale) -> dict:
    _validate(model, images, targets)
    if epochs is not None and epochs < 1:
        raise CvlabError("BadRequest", f"epochs must be at least 1, got {epochs}.")
    if time_budget_s is not None and time_budget_s <= 0:
        raise CvlabError("BadRequest", f"time_budget_s must be positive, got {time_budget_s}.")
    if epochs is None and time_budget_s is None:
        epochs = DEFAULT_EPOCHS[bool(advanced)]
    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    report = progress or (lambda fraction, message: None)
    size = model.size
    prep = Preprocessing(size=size)
    pixels = torch.stack([torch.from_numpy(prep.array(im).astype(np.uint8)) for im in images])  # uint8 saves RAM
    box_targets = [_box_targets(t, size) for t in targets]
    n = len(images)

    body_params = list(model.backbone.body.parameters())
    head_params = [p for name, p in model.named_parameters() if not name.startswith("backbone.body.")]
    for p in body_params:
        p.requires_grad_(bool(advanced))
    groups = [{"params": head_params, "lr": LR["head"]}]
    if advanced:
        groups.append({"params": body_params, "lr": LR["body"]})
    optimizer = torch.optim.AdamW(groups, weight_decay=WEIGHT_DECAY)

    cache = None
    cache_seconds = 0.0
    if not advanced:
        cache = _cache_features(model, pixels, report, cancel)
        cache_seconds = time.perf_counter() - start

    steps_per_epoch = math.ceil(n / BATCH_SIZE)
    schedule = _Schedule(optimizer, (epochs or 1_000_000) * steps_per_epoch)
    augment = _augmentation(size, scale) if advanced else None
    losses, step, epoch, cancelled, out_of_time = [], 0, 0, False, False
    planned_epochs = epochs
    if cache is None and not advanced:
        cancelled = True
        planned_epochs = 0
    model.train()
    _freeze_batchnorm(model)
    if not advanced:
        model.backbone.body.eval()
    try:
        while planned_epochs is None or epoch < planned_epochs:
            epoch_start, epoch_losses = time.perf_counter(), []
            order = rng.permutation(n)
            for b in range(steps_per_epoch):
                if _is_set(cancel):
                    cancelled = True
                    break
                if time_budget_s is not None and epoch >= 1 and time.perf_counter() - start > time_budget_s:
                    out_of_time = True
                    break
                idx = order[b * BATCH_SIZE:(b + 1) * BATCH_SIZE]
                if cache is not None:
                    flips = rng.random(len(idx)) < 0.5
                    feats = [torch.stack([level[int(f)][i] for i, f in zip(idx, flips)]).float() for level in cache]
                    tgts = [_hflip(box_targets[i], size) if f else box_targets[i] for i, f in zip(idx, flips)]
                    out = model.head_outputs(feats)
                else:
                    batch, tgts = _augmented_batch(augment, pixels, box_targets, idx, size)
                    out = model.head_outputs(model.trunk_features(batch))
                loss_parts = model.losses(out, tgts)
                loss = sum(loss_parts.values())
                schedule.set(step)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_([p for g in groups for p in g["params"]], 10.0)
                optimizer.step()
                step += 1
                epoch_losses.append(float(loss.detach()))
                fraction = _fraction(step, planned_epochs, steps_per_epoch, start, time_budget_s)
                report(fraction, f"epoch {epoch + 1}: loss {epoch_losses[-1]:.3f}")
            if epoch_losses and len(epoch_losses) == steps_per_epoch:
                epoch += 1
            if epoch_losses:
                losses.append(float(np.mean(epoch_losses)))
            if cancelled or out_of_time:
                break
            if epoch == 1 and time_budget_s is not None:
                # Plan the remaining epochs from the measured pace, so the cosine decay ends inside the budget.
                pace = time.perf_counter() - epoch_start
                remaining = max(0, int((time_budget_s - (time.perf_counter() - start)) / pace))
                planned_epochs = 1 + remaining if epochs is None else min(epochs, 1 + remaining)
                schedule.planned = max(1, planned_epochs * steps_per_epoch)
    finally:
        for p in body_params:
            p.requires_grad_(True)
        model.eval()
    seconds = time.perf_counter() - start
    out_of_time = out_of_time or (time_budget_s is not None and not cancelled and (epochs is None or epoch < epochs))
    report(1.0, "cancelled" if cancelled else "done")
    return {"mode": "advanced" if advanced else "quick", "images": n, "epochs": epoch, "steps": step,
            "losses": losses, "seconds": seconds, "cache_seconds": cache_seconds,
            "seconds_per_epoch": (seconds - cache_seconds) / epoch if epoch else None,
            "cancelled": cancelled, "stopped_by_time_budget": out_of_time}


def _is_set(cancel) -> bool:
    """`cancel` may be a threading.Event (or anything with is_set) or a plain callable."""
    if cancel is None:
        return False
    return bool(cancel.is_set() if hasattr(cancel, "is_set") else cancel())


def _fraction(step, planned_epochs, steps_per_epoch, start, budget) -> float:
    parts = []
    if planned_epochs:
        parts.append(step / (planned_epochs * steps_per_epoch))
    if budget:
        parts.append((time.perf_counter() - start) / budget)
    return float(min(1.0, max(parts) if parts else 0.0))


@torch.no_grad()
def _cache_features(model: Detector, pixels: Tensor, report, cancel) -> list[list[Tensor]] | None:
    """Trunk features (float16) of every image and of its mirror: cache[level][flipped] -> [N, C, H, W]."""
    model.eval()
    per_level: list[list[list[Tensor]]] | None = None
    n = len(pixels)
    for b in range(0, n, BATCH_SIZE):
        if _is_set(cancel):
            break
        x = pixels[b:b + BATCH_SIZE].float()
        both = [model.trunk_features(x), model.trunk_features(x.flip(-1))]
        if per_level is None:
            per_level = [[[], []] for _ in both[0]]
        for flipped, feats in enumerate(both):
            for level, f in enumerate(feats):
                per_level[level][flipped].append(f.half())
        report(0.0, f"computing backbone features {min(n, b + BATCH_SIZE)}/{n}")
    if per_level is None or sum(len(c) for c in per_level[0][0]) < n:
        return None  # cancelled
    return [[torch.cat(chunks) for chunks in level] for level in per_level]


def _augmentation(size: int, scale=(0.75, 1.25)):
    """Box-aware torchvision v2 pipeline: mirror, scale/translate jitter, colour jitter, drop vanished boxes."""
    from torchvision.transforms import v2

    return v2.Compose([
        v2.RandomHorizontalFlip(0.5),
        v2.RandomAffine(degrees=0, translate=(0.1, 0.1), scale=tuple(scale)),
        v2.ColorJitter(brightness=0.3, contrast=0.3, saturation=0.3, hue=0.02),
        v2.SanitizeBoundingBoxes(min_size=2),
    ])


def _augmented_batch(augment, pixels: Tensor, box_targets: list[dict], idx, size: int):
    from torchvision import tv_tensors

    images, targets = [], []
    for i in idx:
        sample = {"image": tv_tensors.Image(pixels[i]),
                  "boxes": tv_tensors.BoundingBoxes(box_targets[i]["boxes"], format="XYXY", canvas_size=(size, size)),
                  "labels": box_targets[i]["labels"]}
        out = augment(sample)
        images.append(out["image"].as_subclass(Tensor).float())
        targets.append({"boxes": out["boxes"].as_subclass(Tensor).float(), "labels": out["labels"]})
    return torch.stack(images), targets


# --- inference -----------------------------------------------------------------------------------------------
@torch.no_grad()
def detect(model: Detector, images: list[Image.Image], batch_size: int = BATCH_SIZE) -> list[list[Detection]]:
    """Detections per image, best first: (class_index, probability, left, top, width, height), normalised.
    Same pixel path as the exported graph: stretch-resize to the input size, raw RGB 0..255."""
    prep = Preprocessing(size=model.size)
    model.eval()
    results: list[list[Detection]] = []
    with channels_last(model):
        for b in range(0, len(images), batch_size):
            boxes, classes, scores = model(prep.batch(images[b:b + batch_size]))
            for bx, cl, sc in zip(boxes.tolist(), classes.tolist(), scores.tolist()):
                results.append([(c, p, x1, y1, x2 - x1, y2 - y1)
                                for (x1, y1, x2, y2), c, p in zip(bx, cl, sc) if p > 0])
    return results
