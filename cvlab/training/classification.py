"""Classification training: Quick (a linear head on cached frozen embeddings, k-fold evaluated) and Advanced
(LP-FT fine-tuning inside the budget, of the whole network or of the stages after a frozen front; judged against
the probe on a validation split, which a kept partial network then trains on too)."""
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
# Partial fine-tuning (recipes with ``frozen_blocks``; only Lite2's, cvlab.recipes), per image at the backbone's
# native size: caching the frozen stages' maps of one view, and one epoch on those maps. Measured with 4 frozen
# stages at 320 px on a quiet 2-core machine: 0.09 and 0.072 s (0.059 and 0.048 s at Lite2's 260 px); a faster one
# of the same kind measured 0.05 and 0.047 s (benchmarks/training.md). Planned at the slower machine's figures.
PARTIAL_CACHE_SECONDS_PER_IMAGE = {"lite2": 0.06}
PARTIAL_SECONDS_PER_IMAGE = {"lite2": 0.048}
# After the gate keeps the fine-tuned network, it trains a short second cycle on every training image, the
# validation ones included (the gate needed them held back; the shipped model should not waste them): on
# parts-subtle 4 epochs took held-out macro F1 from 0.644 to 0.76-0.79, on parts from 0.929 to 0.92-0.94. Multiclass
# only: on parts-multilabel (sigmoid heads, no label smoothing) every refit tried lowered it, 0.912 to 0.87-0.90
# (benchmarks/training.md).
PARTIAL_REFIT_EPOCHS = 4
MAX_PARTIAL_EPOCHS = 16


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

    from cvlab import embeddings, recipes
    from cvlab.nets.backbones import spec
    from cvlab.nets.classifier import (Classifier, cache_frozen_maps, fine_tune, fit_linear_head,
                                       head_probabilities, partial_fine_tune, predict, set_head)
    from cvlab.nets.preprocess import Preprocessing

    recipe = recipes.for_domain(plan.domain)
    bb, size = spec(recipe.backbone), recipe.size
    multilabel = plan.classification_type == "Multilabel"
    neg = negative_index(plan)
    # Quick's head normalises features by training-set size; Advanced fine-tunes through an L2-normalised head
    quick_norm = recipes.head_feature_norm(len(plan.train))
    model = Classifier(bb.name, len(plan.tags), multilabel=multilabel, negative_index=neg,
                       feature_norm=quick_norm if plan.training_type == "Regular" else "l2")
    y, truth = _targets(plan, plan.train)
    timings, records, extra = {}, [], {}
    frozen_blocks = 0  # Advanced with a partial recipe sets it

    if plan.training_type == "Regular":
        folds = _folds(plan, y)
        q = recipes.quick(ws, recipe, plan.train, plan.holdout, y, folds, multilabel, model, plan.seed, bar,
                          cancelled)
        timings.update(q["timings"])
        extra.update(q["details"])
        for im, f, row in zip(plan.train, q["fold_of"], _prediction_rows(plan, q["oof"])):
            records.append({"image_id": im.id, "split": "cv", "fold": int(f), "truth": _truth_cls(plan, im),
                            "predictions": row})
        hold_probs = q["holdout"]
        k, scheme = len(folds), (f"{len(folds)}-fold cross-validation of the linear head on cached embeddings "
                                 f"(C = {q['details']['C']} chosen by it)")
    else:
        t0 = time.monotonic()
        ft = dict(recipe.fine_tune)
        frozen_blocks, size = int(ft.pop("frozen_blocks", 0)), int(ft.pop("size", size))  # partial: its own size
        pre = Preprocessing(size=size)

        def pixels(images):
            return torch.from_numpy(np.stack([pre.array(embeddings.open_training_image(ws, im)) for im in images]).astype(np.uint8)) \
                if images else torch.zeros((0, 3, size, size), dtype=torch.uint8)

        strata = y if not multilabel else np.array([str(r.astype(int).tolist()) for r in y])
        tr, va = validation_split(plan, strata)
        x_all = pixels(plan.train)
        timings["decode_s"] = round(time.monotonic() - t0, 2)
        yt = torch.from_numpy(np.asarray(y, np.int64 if not multilabel else np.float32))
        budget = plan.budget_hours * plan.seconds_per_budget_hour
        bar(0.02, f"fine-tuning for up to {budget:g} s")
        # LP-FT: start from the linear probe of the training part (cached embeddings), not from a blank head
        w, b, c = recipes.probe_on(ws, recipe, [plan.train[i] for i in tr], y[tr], multilabel, model, plan.seed,
                                   cancelled)
        set_head(model, w, b)
        # the probe as Quick would run it: the recipe's embeddings of the validation images
        probe_val = head_probabilities(model, embeddings.embed_images(ws, [plan.train[i] for i in va], bb.name,
                                                                      recipe.size)) \
            if len(va) else np.zeros((0, len(plan.tags)), np.float32)
        if frozen_blocks:
            epochs, refit_epochs = planned_partial_epochs(bb.name, size, len(tr), len(va), budget,
                                                          refit=not multilabel)
            t_ft = time.monotonic()
            maps = cache_frozen_maps(model, x_all, frozen_blocks)  # every image once: the refit reuses them

            def head_init(features):  # LP-FT at this input size: the probe's C, refitted on these features
                return fit_linear_head(recipes.normalise(features), y[tr], multilabel, model.head.out_features,
                                       plan.seed, C=c, standardize=False)

            info = partial_fine_tune(model, maps[tr], yt[tr], maps.plain[va], yt[va], frozen_blocks=frozen_blocks,
                                     epochs=epochs, time_budget_s=budget - (time.monotonic() - t_ft),
                                     seed=plan.seed, head_init=head_init,
                                     progress=lambda f, m: bar(0.02 + 0.75 * f, m), cancel=cancelled)
            info.update(size=size, cache_s=round(info["cache_s"] + time.monotonic() - t_ft - info["seconds"], 2),
                        seconds=round(time.monotonic() - t_ft, 2))
        else:
            epochs = planned_epochs(recipe, len(tr), budget)
            info = fine_tune(model, x_all[tr], yt[tr], x_all[va], yt[va], time_budget_s=budget, seed=plan.seed,
                             max_epochs=epochs, progress=lambda f, m: bar(0.02 + 0.9 * f, m), cancel=cancelled,
                             **ft)
        info["planned_epochs"] = epochs
        timings["fine_tune_s"] = info["seconds"]
        val_probs = predict(model, x_all[va]).numpy()
        scores = {"probe": recipes.validation_score(probe_val, truth[va], multilabel),
                  "fine_tuned": recipes.validation_score(val_probs, truth[va], multilabel)}
        per_tag = truth.sum(0)
        kept = recipes.keep_fine_tuned(scores["probe"], scores["fine_tuned"], int(per_tag[per_tag > 0].min()))
        info["validation"] = scores
        extra["fine_tune"] = info
        extra.update({"recipe": recipe.to_dict(), "feature_norm": "l2"})
        if kept:
            extra["training_details"] = (f"Fine-tuned network kept: on the validation split log-loss "
                                         f"{scores['fine_tuned']['log_loss']:.3f} against the linear probe's "
                                         f"{scores['probe']['log_loss']:.3f}, macro F1 "
                                         f"{scores['fine_tuned']['macro_f1']:.3f} against "
                                         f"{scores['probe']['macro_f1']:.3f}.")
            if frozen_blocks and refit_epochs:  # the gate is done with the validation images: train on them too
                per_epoch = info["history"][-1]["seconds"] * len(plan.train) / max(1, len(tr))
                left = budget - (time.monotonic() - t_ft)
                if left >= per_epoch:
                    refit = partial_fine_tune(model, maps, yt, None, None, frozen_blocks=frozen_blocks,
                                              epochs=refit_epochs, time_budget_s=left, seed=plan.seed + 1,
                                              progress=lambda f, m: bar(0.77 + 0.15 * f, "all images: " + m),
                                              cancel=cancelled)
                    info["refit"] = {"epochs": refit["epochs"], "planned_epochs": refit_epochs,
                                     "images": len(plan.train), "seconds": refit["seconds"],
                                     "stopped": refit["stopped"]}
                    timings["fine_tune_s"] = round(info["seconds"] + refit["seconds"], 2)
                    extra["training_details"] += (f" Then {refit['epochs']} more epochs on all {len(plan.train)} "
                                                  "training images, the validation ones included (the "
                                                  "validation figures are the network's before them).")
            hold_probs = predict(model, pixels(plan.holdout)).numpy()
        else:  # the probe wins: ship Quick's model (probe on every training image), never worse than Quick
            extra["training_details"] = (f"Fine-tuning did not beat the linear probe on the validation split "
                                         f"(macro F1 {scores['fine_tuned']['macro_f1']:.3f} against "
                                         f"{scores['probe']['macro_f1']:.3f}, log-loss "
                                         f"{scores['fine_tuned']['log_loss']:.3f} against "
                                         f"{scores['probe']['log_loss']:.3f}): kept the probe, trained on all "
                                         f"{len(plan.train)} images as Quick training does.")
            model = Classifier(bb.name, len(plan.tags), multilabel=multilabel, negative_index=neg,
                               feature_norm=quick_norm)
            size = recipe.size  # Quick's model, Quick's input size
            extra["feature_norm"] = quick_norm
            set_head(model, *recipes.probe_on(ws, recipe, plan.train, y, multilabel, model, plan.seed,
                                              cancelled)[:2])
            val_probs = probe_val
            hold_probs = head_probabilities(model, embeddings.embed_images(ws, plan.holdout, bb.name, recipe.size)) \
                if plan.holdout else np.zeros((0, len(plan.tags)), np.float32)
        extra["fine_tune"]["kept"] = "fine_tuned" if kept else "probe"
        for im, row in zip([plan.train[i] for i in va], _prediction_rows(plan, val_probs)):
            records.append({"image_id": im.id, "split": "cv", "fold": 0, "truth": _truth_cls(plan, im),
                            "predictions": row})
        k = 1
        scheme = (f"validation split: {len(va)} of {len(plan.train)} training images held back from fine-tuning "
                  "(also used to choose between the fine-tuned network and the probe"
                  + ("; the kept network then trains on them too)" if "refit" in info else ")"))
        extra["validation_image_ids"] = [plan.train[i].id for i in va]
    notes = [extra.get("training_details"),
             recipes.near_duplicate_note(embeddings.embed_images(ws, plan.train, bb.name, recipe.size), truth,
                                         [t.name for t in plan.tags])]
    if plan.training_type != "Regular" and not frozen_blocks:
        notes.append(recipes.budget_note(recipe, len(tr), plan.budget_hours * plan.seconds_per_budget_hour,
                                         FINE_TUNE_SECONDS_PER_IMAGE))
    elif plan.training_type != "Regular":
        notes.append(partial_budget_note(bb.name, size, len(tr), len(va),
                                         plan.budget_hours * plan.seconds_per_budget_hour))
    if any(notes):
        extra["training_details"] = " ".join(n for n in notes if n)
    for im, row in zip(plan.holdout, _prediction_rows(plan, hold_probs)):
        records.append({"image_id": im.id, "split": "holdout", "fold": None, "truth": _truth_cls(plan, im),
                        "predictions": row})
    bar(0.97, "saving")
    preprocessing = Preprocessing(size=size)  # Quick's, or the fine-tuned network's own (partial recipes)
    return save(ws, plan, iteration, model, records, k, scheme, preprocessing, timings, extra,
                 head="sigmoid" if multilabel else "softmax", backbone=bb.name)


def planned_epochs(recipe_or_backbone, n_train: int, budget_s: float) -> int:
    """Epochs that fit the budget at the planned per-image cost (at least 1, at most MAX_FINE_TUNE_EPOCHS)."""
    from cvlab import recipes

    return recipes.planned_epochs(recipe_or_backbone, n_train, budget_s, FINE_TUNE_SECONDS_PER_IMAGE,
                                  MAX_FINE_TUNE_EPOCHS)


def _partial_costs(backbone: str, size: int, n_train: int, n_val: int) -> tuple[float, float, float]:
    """Planned seconds of partial fine-tuning at ``size`` px: caching every image and its mirror, one epoch on the
    training part, one epoch of the refit on all images."""
    from cvlab.nets.backbones import spec

    scale = (size / spec(backbone).input_size) ** 2
    per_epoch_image = PARTIAL_SECONDS_PER_IMAGE[backbone] * scale
    return (PARTIAL_CACHE_SECONDS_PER_IMAGE[backbone] * scale * 2 * (n_train + n_val),
            per_epoch_image * max(n_train, 1), per_epoch_image * (n_train + n_val))


def planned_partial_epochs(backbone: str, size: int, n_train: int, n_val: int, budget_s: float,
                           refit: bool = True) -> tuple[int, int]:
    """Epochs of partial fine-tuning that fit the budget after caching: (on the training part: at least 1, at most
    MAX_PARTIAL_EPOCHS; of the refit on all images once the gate keeps the network: PARTIAL_REFIT_EPOCHS, fewer
    or none when the budget is short, none without validation images or ``refit``)."""
    cache, epoch, refit_cost = _partial_costs(backbone, size, n_train, n_val)
    refit_epochs = PARTIAL_REFIT_EPOCHS if n_val and refit else 0
    first = int(min(MAX_PARTIAL_EPOCHS, max(1, (budget_s - cache - refit_epochs * refit_cost) // epoch)))
    left = budget_s - cache - first * epoch
    return first, int(min(refit_epochs, max(0, left // refit_cost)))


def partial_budget_note(backbone: str, size: int, n_train: int, n_val: int, budget_s: float) -> str | None:
    """Training details when the budget cannot pay for caching plus one epoch of partial fine-tuning."""
    cache, epoch, _ = _partial_costs(backbone, size, n_train, n_val)
    if budget_s >= cache + epoch:
        return None
    return (f"The reserved budget ({budget_s:g} s of lab time) is less than caching the frozen stages plus one "
            f"fine-tuning epoch of {n_train} images with this domain's recipe (about {cache + epoch:.0f} s planned), "
            "so fine-tuning was cut short. Reserve more budget hours, or train Quick.")
