"""Classification training: Quick (a linear head on cached frozen embeddings, k-fold evaluated) and Advanced
(LP-FT fine-tuning of the whole network inside the budget, evaluated on a validation split)."""
from __future__ import annotations

import time

import numpy as np

from .outputs import save
from .plan import Plan, negative_index, validation_split
from .progress import Progress

MAX_FOLDS = 5
MAX_FINE_TUNE_EPOCHS = 40
# Fine-tuning cost per training image and epoch on a 2-core laptop (forward + backward + augmentation). Advanced
# training plans its epoch count from the budget with these fixed numbers, so the same data and seed give the
# same model; the measured clock only cuts training short when the machine is slower than planned.
FINE_TUNE_SECONDS_PER_IMAGE = {"lite0": 0.15, "lite1": 0.22, "lite2": 0.35}


def _targets(plan: Plan, images) -> tuple[np.ndarray, np.ndarray]:
    """Class indices (multiclass) or 0/1 rows over the head's outputs (multilabel; Negative -> all zeros),
    plus the full 0/1 truth matrix over every output tag."""
    index = {t.id: i for i, t in enumerate(plan.tags)}
    truth = np.zeros((len(images), len(plan.tags)), np.float32)
    for r, im in enumerate(images):
        for t in im.tags:
            if t.tag_id in index:
                truth[r, index[t.tag_id]] = 1
    if plan.classification_type == "Multiclass":
        return truth.argmax(1), truth
    regular = [i for i, t in enumerate(plan.tags) if t.type != "Negative"]
    return truth[:, regular], truth




def _folds(plan: Plan, y: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    from sklearn.model_selection import KFold, StratifiedKFold

    n = len(y)
    if plan.classification_type == "Multiclass":
        counts = np.bincount(y)
        k = max(2, min(MAX_FOLDS, int(counts[counts > 0].min()), n))
        return list(StratifiedKFold(k, shuffle=True, random_state=plan.seed).split(np.zeros(n), y))
    k = max(2, min(MAX_FOLDS, n))
    return list(KFold(k, shuffle=True, random_state=plan.seed).split(np.zeros(n)))




def _prediction_rows(plan: Plan, probs: np.ndarray) -> list[list[dict]]:
    return [[{"tag_id": t.id, "probability": float(p), "bounding_box": None} for t, p in zip(plan.tags, row)]
            for row in probs]


def _truth_cls(plan: Plan, image) -> dict:
    ids = {t.id for t in plan.tags}
    return {"tag_ids": [t.tag_id for t in image.tags if t.tag_id in ids], "regions": []}


def train_classification(ws, plan: Plan, iteration, bar: Progress, cancelled) -> dict:
    """Train a classifier for the plan (Quick or Advanced) and save its artefacts; returns the iteration's info."""
    import torch

    from cvlab import embeddings
    from cvlab.nets.backbones import spec
    from cvlab.nets.classifier import (Classifier, fine_tune, fit_linear_head, head_probabilities, predict,
                                       set_head)
    from cvlab.nets.preprocess import Preprocessing

    bb = spec(plan.domain.backbone)
    size = bb.input_size
    multilabel = plan.classification_type == "Multilabel"
    neg = negative_index(plan)
    model = Classifier(bb.name, len(plan.tags), multilabel=multilabel, negative_index=neg)
    y, _ = _targets(plan, plan.train)
    timings, records, extra = {}, [], {}

    if plan.training_type == "Regular":
        t0 = time.monotonic()
        feats = embeddings.embed_images(ws, plan.train + plan.holdout, bb.name, size,
                                        progress=lambda d, n: bar(0.8 * d / max(n, 1), f"embedding {d}/{n}"),
                                        cancel=cancelled)
        train_f, hold_f = feats[:len(plan.train)], feats[len(plan.train):]
        timings["embedding_s"] = round(time.monotonic() - t0, 2)
        t0 = time.monotonic()
        folds = _folds(plan, y)
        oof = np.zeros((len(plan.train), len(plan.tags)), np.float32)
        fold_of = np.zeros(len(plan.train), int)
        for f, (tr, te) in enumerate(folds):
            if cancelled():
                raise InterruptedError("Cancelled")
            w, b = fit_linear_head(train_f[tr], y[tr], multilabel, model.head.out_features, plan.seed)
            oof[te] = head_probabilities(model, train_f[te], w, b)
            fold_of[te] = f
            bar(0.8 + 0.15 * (f + 1) / len(folds), f"cross-validation fold {f + 1}/{len(folds)}")
        w, b = fit_linear_head(train_f, y, multilabel, model.head.out_features, plan.seed)
        set_head(model, w, b)
        timings["head_s"] = round(time.monotonic() - t0, 2)
        for im, f, row in zip(plan.train, fold_of, _prediction_rows(plan, oof)):
            records.append({"image_id": im.id, "split": "cv", "fold": int(f), "truth": _truth_cls(plan, im),
                            "predictions": row})
        hold_probs = head_probabilities(model, hold_f) if len(plan.holdout) else np.zeros((0, len(plan.tags)))
        k, scheme = len(folds), f"{len(folds)}-fold cross-validation of the linear head on cached embeddings"
    else:
        t0 = time.monotonic()
        pre = Preprocessing(size=size)

        def pixels(images):
            return torch.from_numpy(np.stack([pre.array(ws.open_image(im)) for im in images]).astype(np.uint8)) \
                if images else torch.zeros((0, 3, size, size), dtype=torch.uint8)

        strata = y if not multilabel else np.array([str(r.astype(int).tolist()) for r in y])
        tr, va = validation_split(plan, strata)
        x_all = pixels(plan.train)
        timings["decode_s"] = round(time.monotonic() - t0, 2)
        yt = torch.from_numpy(np.asarray(y, np.int64 if not multilabel else np.float32))
        budget = plan.budget_hours * plan.seconds_per_budget_hour
        bar(0.02, f"fine-tuning for up to {budget:g} s")
        # LP-FT: start from the linear probe of the training part (cached embeddings), not from a blank head
        feats = embeddings.embed_images(ws, [plan.train[i] for i in tr], bb.name, size,
                                        progress=lambda d, n: bar(0.02 * d / max(n, 1), f"embedding {d}/{n}"),
                                        cancel=cancelled)
        set_head(model, *fit_linear_head(feats, y[tr], multilabel, model.head.out_features, plan.seed))
        epochs = planned_epochs(bb.name, len(tr), budget)
        info = fine_tune(model, x_all[tr], yt[tr], x_all[va], yt[va], time_budget_s=budget, seed=plan.seed,
                         max_epochs=epochs, progress=lambda f, m: bar(0.02 + 0.9 * f, m), cancel=cancelled)
        info["planned_epochs"] = epochs
        timings["fine_tune_s"] = info["seconds"]
        extra["fine_tune"] = info
        val_probs = predict(model, x_all[va]).numpy()
        for im, row in zip([plan.train[i] for i in va], _prediction_rows(plan, val_probs)):
            records.append({"image_id": im.id, "split": "cv", "fold": 0, "truth": _truth_cls(plan, im),
                            "predictions": row})
        hold_probs = predict(model, pixels(plan.holdout)).numpy()
        k = 1
        scheme = (f"validation split: {len(va)} of {len(plan.train)} training images held back from fine-tuning "
                  "(also used for early stopping)")
        extra["validation_image_ids"] = [plan.train[i].id for i in va]
    for im, row in zip(plan.holdout, _prediction_rows(plan, hold_probs)):
        records.append({"image_id": im.id, "split": "holdout", "fold": None, "truth": _truth_cls(plan, im),
                        "predictions": row})
    bar(0.97, "saving")
    preprocessing = Preprocessing(size=size)
    return save(ws, plan, iteration, model, records, k, scheme, preprocessing, timings, extra,
                 head="sigmoid" if multilabel else "softmax", backbone=bb.name)


def planned_epochs(backbone: str, n_train: int, budget_s: float) -> int:
    """Epochs that fit the budget at the planned per-image cost (at least 1, at most MAX_FINE_TUNE_EPOCHS)."""
    per_epoch = FINE_TUNE_SECONDS_PER_IMAGE[backbone] * max(n_train, 1)
    return int(min(MAX_FINE_TUNE_EPOCHS, max(1, budget_s // per_epoch)))
