"""Training recipes: what each domain really trains in cvlab (backbone, input size, augmented views, fine-tuning).

A domain keeps Azure's id and name (``cvlab.domains``) and points at one recipe here; the recipe's ``summary``
is what the domain's description says cvlab does.  Figures behind every choice: ``benchmarks/training.md``.

Quick classification (``fit_probe``): frozen embeddings of the recipe's backbone, L2-normalised below
``STANDARDISE_FROM`` training images (20 samples do not estimate 1280 means and deviations) and standardised per
dimension from there on (``head_feature_norm``), a logistic-regression head whose regularisation C is chosen from
``C_GRID`` by the out-of-fold log-loss of the k-fold cross-validation the evaluation runs anyway.  Few-shot: while ``n_train * views <= MAX_VIEW_EMBEDDINGS`` the recipe's augmented
views (mirror, crops, ...) of every training image join the head's training set as extra samples (folds are
split by image, so an image's views never sit on both sides of a fold).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from cvlab.nets import NORM_SCALE  # the head's input scale, in the classifier's graph too

C_GRID = (0.1, 0.3, 1.0, 3.0, 10.0)
STANDARDISE_FROM = 100      # training images from which the head standardises per dimension instead of L2
MAX_VIEW_EMBEDDINGS = 200   # extra views only for small training sets: parts (150 images) keeps one view


@dataclass(frozen=True)
class Recipe:
    name: str
    backbone: str                   # lite0 | lite1 | lite2
    size: int                       # classification input size (stretch resize)
    views: tuple = ("orig", "flip", "crop1", "crop2")   # few-shot views for the head (first is always orig)
    fine_tune: dict = field(default_factory=dict)       # overrides of cvlab.nets.classifier.fine_tune settings
    summary: str = ""

    def head_views(self, n_train: int) -> tuple:
        """The views used for a training set of ``n_train`` images (fewer as the set grows, at least orig)."""
        k = max(1, min(len(self.views), MAX_VIEW_EMBEDDINGS // max(n_train, 1)))
        return tuple(self.views[:k])

    def to_dict(self) -> dict:
        return {"name": self.name, "backbone": self.backbone, "size": self.size, "views": list(self.views),
                "fine_tune": dict(self.fine_tune)}


_FT_GENERAL = {"crop_scale": (0.6, 1.0), "color": (0.2, 0.2, 0.2, 0.02), "erase": 0.0}
# Advanced on the General domains: partial fine-tuning (cvlab.nets.classifier.partial_fine_tune) at a finer input
# size: the first 4 of Lite2's 7 stages frozen and cached, the rest trained. On parts-subtle (small defects) this
# learnt what frozen features miss, where fine-tuning everything at 260 px fitted only ~5 epochs into the budget
# and never beat the probe (benchmarks/training.md, "Advanced on parts-subtle").
_FT_PARTIAL = {"frozen_blocks": 4}
RECIPES = {r.name: r for r in [
    Recipe("general", "lite2", 260, fine_tune=dict(_FT_PARTIAL, size=320),
           summary="EfficientNet-Lite2 at 260 px; few-shot views: mirror and two crops; Advanced fine-tunes the "
                   "last three trunk stages at 320 px (the first four frozen, their maps cached; mirror and "
                   "shift augmentation)"),
    Recipe("general-a1", "lite2", 300, views=("orig", "flip", "crop1", "crop2", "crop3", "tight1"),
           fine_tune=dict(_FT_PARTIAL, size=352),
           summary="EfficientNet-Lite2 at 300 px (more pixels: slower to train and to run, finer detail) with "
                   "more augmentation: five few-shot views; Advanced fine-tunes the last three trunk stages at "
                   "352 px"),
    Recipe("general-a2", "lite2", 224, views=("orig", "flip"), fine_tune=dict(_FT_PARTIAL, size=288),
           summary="EfficientNet-Lite2 at 224 px (a quarter fewer pixels than General: faster inference and "
                   "training) with one few-shot view (mirror); Advanced fine-tunes the last three trunk stages "
                   "at 288 px"),
    Recipe("food", "lite2", 260, views=("orig", "flip", "tight1", "tight2"),
           fine_tune=dict(_FT_GENERAL, color=(0.2, 0.2, 0.0, 0.0)),
           summary="EfficientNet-Lite2 at 260 px; few-shot views close in on the subject (crops of 40-75 %) and "
                   "fine-tuning never shifts hue or saturation, because colour tells foods apart"),
    Recipe("landmarks", "lite2", 260, views=("orig", "flip", "erase1", "erase2"),
           fine_tune=dict(_FT_GENERAL, erase=0.5),
           summary="EfficientNet-Lite2 at 260 px; few-shot views and fine-tuning hide part of the picture "
                   "(random grey blocks), so something in front of the subject does not change the answer"),
    Recipe("retail", "lite2", 260, views=("orig", "flip"), fine_tune=dict(_FT_GENERAL, crop_scale=(0.85, 1.0)),
           summary="EfficientNet-Lite2 at 260 px; catalogue photos show the whole product, so no crops: few-shot "
                   "view and fine-tuning only mirror (and barely crop)"),
    Recipe("compact", "lite0", 224, fine_tune=_FT_GENERAL,
           summary="EfficientNet-Lite0 at 224 px (exportable, ~4.7 M parameters); few-shot views: mirror and "
                   "two crops"),
    Recipe("compact-s1", "lite0", 288, fine_tune=_FT_GENERAL,
           summary="EfficientNet-Lite0 at 288 px (same size on disk as General (compact), finer detail, ~1.6x "
                   "the inference time)"),
    Recipe("food-compact", "lite0", 224, views=("orig", "flip", "tight1", "tight2"),
           fine_tune=dict(_FT_GENERAL, color=(0.2, 0.2, 0.0, 0.0)),
           summary="EfficientNet-Lite0 at 224 px with Food's views and colour-keeping fine-tuning"),
    Recipe("landmarks-compact", "lite0", 224, views=("orig", "flip", "erase1", "erase2"),
           fine_tune=dict(_FT_GENERAL, erase=0.5),
           summary="EfficientNet-Lite0 at 224 px with Landmarks' occluding views and fine-tuning"),
    Recipe("retail-compact", "lite0", 224, views=("orig", "flip"), fine_tune=dict(_FT_GENERAL, crop_scale=(0.85, 1.0)),
           summary="EfficientNet-Lite0 at 224 px with Retail's mirror-only views"),
]}


# ---------------------------------------------------------------------------------------------------------------
# detection recipes
# ---------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DetectionRecipe:
    name: str
    size: int                 # detector input size (multiple of 32)
    quick_epochs: int
    advanced_scale: tuple     # scale jitter of Advanced's box-aware augmentation
    summary: str = ""

    def to_dict(self) -> dict:
        return {"name": self.name, "size": self.size, "quick_epochs": self.quick_epochs,
                "advanced_scale": list(self.advanced_scale)}


DETECTION_RECIPES = {r.name: r for r in [
    DetectionRecipe("od-general", 320, 40, (0.75, 1.25),
                    summary="EfficientNet-Lite0 FCOS detector at 320 px, 40 Quick epochs"),
    DetectionRecipe("od-general-a1", 320, 60, (0.6, 1.4),
                    summary="the General detector trained longer (60 Quick epochs, 1.5x the time) with wider "
                            "scale jitter when fine-tuning; deterministic: the same images and seed give the same "
                            "model"),
    DetectionRecipe("od-logo", 384, 30, (0.75, 1.25),
                    summary="the detector at 384 px (small logos keep more pixels; ~1.4x the time)"),
    DetectionRecipe("od-shelves", 384, 30, (0.9, 1.1),
                    summary="the detector at 384 px with little scale jitter (products on a shelf keep their "
                            "size)"),
    DetectionRecipe("od-compact", 320, 40, (0.75, 1.25),
                    summary="the same network as General (Lite0 at 320 px), exportable"),
    DetectionRecipe("od-compact-s1", 320, 50, (0.75, 1.25),
                    summary="the compact detector with 50 Quick epochs (a quarter more training time)"),
]}


def get(name: str):
    return RECIPES.get(name) or DETECTION_RECIPES[name]


# ---------------------------------------------------------------------------------------------------------------
# the Quick head
# ---------------------------------------------------------------------------------------------------------------
def normalise(features: np.ndarray) -> np.ndarray:
    """What the Classifier does in its graph before the head: NORM_SCALE * f / |f|."""
    f = np.asarray(features, np.float32)
    return NORM_SCALE * f / np.maximum(np.linalg.norm(f, axis=-1, keepdims=True), 1e-12)


def head_feature_norm(n_images: int) -> str | None:
    """The Quick head's feature normalisation for a training set: "l2" for few images, None (per-dimension
    standardisation, folded into the weights) from STANDARDISE_FROM images up, where it held out better over
    four seeds of parts and parts-subtle (benchmarks/training.md, "Quick head on 150 images")."""
    return "l2" if n_images < STANDARDISE_FROM else None


def _expand(features_v: np.ndarray, y: np.ndarray, idx) -> tuple[np.ndarray, np.ndarray]:
    """Rows of every view of the images ``idx`` ([N, V, F] -> [N*V, F]) with their targets repeated."""
    x = features_v[idx]
    return x.reshape(-1, x.shape[-1]), np.repeat(y[idx], x.shape[1], axis=0)


def _log_loss(logits: np.ndarray, y: np.ndarray, multilabel: bool) -> float:
    """Mean log-loss of head logits against the head's targets (class indices, or 0/1 rows)."""
    z = np.asarray(logits, np.float64)
    if multilabel:
        return float(np.mean(np.logaddexp(0, z) - y * z))
    z = z - z.max(1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(1, keepdims=True))
    return float(-np.mean(logp[np.arange(len(y)), y]))


def fit_probe(features_v: np.ndarray, y: np.ndarray, folds, multilabel: bool, num_head: int, seed: int = 0,
              grid=C_GRID, cancel=None, progress=None, feature_norm: str | None = "l2") -> dict:
    """Quick head: choose C by out-of-fold log-loss over ``grid``, then fit on every image.

    ``features_v`` [N, V, F] raw embeddings (view 0 = the image itself, the only view predicted out of fold);
    ``y`` the head's targets.  Returns ``{"weight", "bias", "C", "oof_logits" [N, H], "fold_of" [N],
    "cv_log_loss" {C: loss}}``; the weights take ``normalise``d embeddings (``feature_norm="l2"``) or raw ones
    (None: each fit standardises its own training rows and folds the scaler into the weights)."""
    from cvlab.nets.classifier import fit_linear_head

    std = feature_norm is None
    x = np.asarray(features_v, np.float32) if std else normalise(features_v)
    n = len(x)
    fold_of = np.zeros(n, int)
    for f, (_, te) in enumerate(folds):
        fold_of[te] = f
    losses, oofs = {}, {}
    steps, done = len(grid) * len(folds), 0
    for C in grid:
        oof = np.zeros((n, num_head), np.float32)
        for tr, te in folds:
            if cancel is not None and cancel():
                raise InterruptedError("Cancelled")
            w, b = fit_linear_head(*_expand(x, y, tr), multilabel, num_head, seed, C=C, standardize=std)
            oof[te] = x[te, 0] @ w.T + b
            done += 1
            if progress:
                progress(done / steps)
        losses[C], oofs[C] = _log_loss(oof, y, multilabel), oof
    best = min(grid, key=lambda c: (round(losses[c], 6), c))
    w, b = fit_linear_head(*_expand(x, y, np.arange(n)), multilabel, num_head, seed, C=best, standardize=std)
    return {"weight": w, "bias": b, "C": best, "oof_logits": oofs[best], "fold_of": fold_of,
            "cv_log_loss": {str(c): round(v, 5) for c, v in losses.items()}}


# ---------------------------------------------------------------------------------------------------------------
# what train_project calls
# ---------------------------------------------------------------------------------------------------------------
def for_domain(domain) -> Recipe:
    return get(domain.recipe)


def epoch_seconds(recipe_or_backbone, n_train: int, per_image: dict) -> float:
    """Planned seconds of one fine-tuning epoch: the per-image cost scaled by the recipe's pixels over the
    backbone's native size."""
    from cvlab.nets.backbones import spec

    if isinstance(recipe_or_backbone, Recipe):
        bb, size = spec(recipe_or_backbone.backbone), recipe_or_backbone.size
    else:
        bb = spec(recipe_or_backbone)
        size = bb.input_size
    return per_image[bb.name] * (size / bb.input_size) ** 2 * max(n_train, 1)


def planned_epochs(recipe_or_backbone, n_train: int, budget_s: float, per_image: dict, max_epochs: int) -> int:
    """Epochs that fit the budget at the planned per-image cost (at least 1, at most ``max_epochs``)."""
    return int(min(max_epochs, max(1, budget_s // epoch_seconds(recipe_or_backbone, n_train, per_image))))


def budget_note(recipe_or_backbone, n_train: int, budget_s: float, per_image: dict) -> str | None:
    """Training details when the reserved budget cannot pay for one fine-tuning epoch of this training set."""
    cost = epoch_seconds(recipe_or_backbone, n_train, per_image)
    if budget_s >= cost:
        return None
    return (f"The reserved budget ({budget_s:g} s of lab time) is less than one fine-tuning epoch of {n_train} "
            f"images with this domain's recipe (about {cost:.0f} s planned), so fine-tuning stopped before it "
            "saw every image once. Reserve more budget hours, or train Quick.")


NEAR_DUPLICATE_COSINE = 0.97  # distinct photos of one tag never all sit this close (parts: min 0.24, fruit < 0.9)


def near_duplicate_note(features: np.ndarray, truth: np.ndarray, tag_names) -> str | None:
    """Training details naming each tag whose training images are all near-duplicates of each other (every
    pair of embeddings at cosine similarity >= NEAR_DUPLICATE_COSINE): such a tag teaches one picture."""
    f = np.asarray(features, np.float64)
    f = f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12)
    flagged = []
    for j, name in enumerate(tag_names):
        rows = f[np.asarray(truth)[:, j] > 0]
        if len(rows) >= 2 and float((rows @ rows.T).min()) >= NEAR_DUPLICATE_COSINE:
            flagged.append(f"{name!r} ({len(rows)} images)")
    if not flagged:
        return None
    return (f"Every training image of {', '.join(flagged)} is a near-duplicate of the others (in cvlab: every pair "
            f"of embeddings at cosine similarity >= {NEAR_DUPLICATE_COSINE}), so the model learns one picture of "
            "that tag and will not recognise it in other photos. Add photos with other backgrounds, angles, "
            "distances and lighting, then train again.")


def quick(ws, recipe: Recipe, train, holdout, y, folds, multilabel: bool, model, seed: int, bar, cancelled) -> dict:
    """Quick classification: embed (cached, with few-shot views), choose C by the k-fold, fit the head into
    ``model``.  Returns out-of-fold probabilities, the fold of each image, holdout probabilities, timings and
    the details that go into iteration.json."""
    import time

    from cvlab import embeddings
    from cvlab.nets.classifier import head_probabilities, set_head

    views = recipe.head_views(len(train))
    t0 = time.monotonic()
    train_f = embeddings.embed_views(ws, train, recipe.backbone, recipe.size, views,
                                     progress=lambda d, n: bar(0.75 * d / max(n, 1), f"embedding {d}/{n}"),
                                     cancel=cancelled)
    hold_f = embeddings.embed_images(ws, holdout, recipe.backbone, recipe.size, cancel=cancelled)
    timings = {"embedding_s": round(time.monotonic() - t0, 2)}
    t0 = time.monotonic()
    probe = fit_probe(train_f, y, folds, multilabel, model.head.out_features, seed, cancel=cancelled,
                      progress=lambda f: bar(0.75 + 0.2 * f, "cross-validation"), feature_norm=model.feature_norm)
    set_head(model, probe["weight"], probe["bias"])
    import torch

    with torch.inference_mode():
        oof = model.probabilities_from_logits(torch.from_numpy(probe["oof_logits"])).numpy()
    hold = head_probabilities(model, hold_f) if len(holdout) else np.zeros((0, model.num_outputs), np.float32)
    timings["head_s"] = round(time.monotonic() - t0, 2)
    details = {"recipe": recipe.to_dict(), "head_views": list(views), "C": probe["C"],
               "cv_log_loss": probe["cv_log_loss"], "feature_norm": model.feature_norm,
               "runtime": embeddings.runtime()}
    return {"oof": oof, "fold_of": probe["fold_of"], "holdout": hold, "timings": timings, "details": details}


def probe_on(ws, recipe: Recipe, images, y, multilabel: bool, model, seed: int, cancelled, max_folds: int = 5):
    """The Quick head fitted on ``images`` alone (C chosen by its own k-fold, features normalised as
    ``model.feature_norm`` says): the Advanced baseline."""
    from cvlab import embeddings

    views = recipe.head_views(len(images))
    f = embeddings.embed_views(ws, images, recipe.backbone, recipe.size, views, cancel=cancelled)
    probe = fit_probe(f, y, _folds(y, multilabel, seed, max_folds), multilabel, model.head.out_features, seed,
                      cancel=cancelled, feature_norm=model.feature_norm)
    return probe["weight"], probe["bias"], probe["C"]


def _folds(y, multilabel: bool, seed: int, max_folds: int):
    from sklearn.model_selection import KFold, StratifiedKFold

    n = len(y)
    if not multilabel:
        counts = np.bincount(y)
        k = max(2, min(max_folds, int(counts[counts > 0].min()), n))
        return list(StratifiedKFold(k, shuffle=True, random_state=seed).split(np.zeros(n), y))
    return list(KFold(max(2, min(max_folds, n)), shuffle=True, random_state=seed).split(np.zeros(n)))


def validation_score(probs: np.ndarray, truth: np.ndarray, multilabel: bool) -> dict:
    """Macro F1 (top tag, or each tag at 0.5 when multilabel) and log-loss of predictions on the validation split;
    ``truth`` is the 0/1 matrix over every output column."""
    from sklearn.metrics import f1_score

    p = np.clip(np.asarray(probs, np.float64), 1e-7, 1 - 1e-7)
    if multilabel:
        f1 = f1_score(truth, p >= 0.5, average="macro", zero_division=0)
        loss = -np.mean(truth * np.log(p) + (1 - truth) * np.log(1 - p))
    else:
        t = truth.argmax(1)
        f1 = f1_score(t, p.argmax(1), average="macro", labels=np.unique(t), zero_division=0)
        loss = -np.mean(np.log(p[np.arange(len(t)), t]))
    return {"macro_f1": round(float(f1), 4), "log_loss": round(float(loss), 4)}


FEW_IMAGES_PER_TAG = 30


def keep_fine_tuned(probe: dict, tuned: dict, min_images_per_tag: int) -> bool:
    """Advanced keeps the fine-tuned network only when it beats the probe on the validation split: a higher
    macro F1, or (from FEW_IMAGES_PER_TAG images per tag up, where the split is big enough to trust it) a lower
    log-loss. Log-loss scores every probability, so it is the steadier judge on a 30-image split, where one image
    moves macro F1 by ~0.03: on parts and parts-subtle F1 ranked the fine-tuned network below the probe (0.870 vs
    0.935, 0.621 vs 0.675) while log-loss ranked it above, and held out it was better (0.929 vs 0.909, 0.644 vs
    0.604; benchmarks/training.md). With fewer images only a higher F1 keeps it: a handful of validation photos
    cannot tell generalisation from memorising (the compact Advanced case of issue 19)."""
    if tuned["macro_f1"] > probe["macro_f1"] + 1e-9:
        return True
    return (min_images_per_tag >= FEW_IMAGES_PER_TAG
            and tuned["log_loss"] < probe["log_loss"])
