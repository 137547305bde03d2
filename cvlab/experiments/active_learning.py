"""The experiment behind ``benchmarks/active_learning.py`` and notebook 07: does labelling the images the smart
labeler suggests beat labelling random ones?

Not part of the core API (nothing in cvlab imports it): it builds throw-away projects, trains many iterations
and scores each one on a held-out set; its results are in ``benchmarks/active_learning.md``.

>>> from cvlab.experiments import active_learning
>>> curve = active_learning.learning_curve("parts", rounds=1, per_round=4, pool_size=6, test_size=8,
...                                        progress=False)        # doctest: +SKIP
>>> curve["uncertainty_minus_random"]                             # doctest: +SKIP
[0.0, 0.021]
"""
from __future__ import annotations

import io
import tempfile
import time
import uuid
from typing import Callable, Sequence

import numpy as np
from tqdm.auto import tqdm

from cvlab import active, datasets, rules
from cvlab.active.suggestions import _untagged_suggestions
from cvlab.datasets.importing import resolve_domain
from cvlab.errors import CvlabError
from cvlab.metrics import json_number
from cvlab.model import ImageEntry
from cvlab.performance import get_iteration_performance
from cvlab.predict import Predictor
from cvlab.training import train_project
from cvlab.workspace import Workspace

STRATEGIES = ("uncertainty", "random")  # the smart labeler's order (query_suggested_images) vs random
ABLATION = "uncertainty-plain"          # top uncertainty without the spread (what cvlab did before)


def _png(record) -> bytes:
    buf = io.BytesIO()
    record.load().convert("RGB").save(buf, "PNG")
    return buf.getvalue()


def _split(records, tag_names, start_per_tag: int, test_size: int, pool_size: int, seed: int,
           first_empty: int | None = None):
    """Seeded split into (initial, test, pool) record indices; initial = the first shuffled images that still
    help some tag reach ``start_per_tag`` labelled images.  Records from ``first_empty`` on are empty frames:
    the pool (``pool_size`` counts them) holds all of them, mixed in a seeded order, in every split."""
    if first_empty is not None and first_empty < len(records):
        initial, test, pool = _split(records[:first_empty], tag_names, start_per_tag, test_size,
                                     pool_size - (len(records) - first_empty), seed)
        rng = np.random.default_rng(seed)
        return initial, test, [int(i) for i in rng.permutation(pool + list(range(first_empty, len(records))))]
    order = np.random.default_rng(seed).permutation(len(records))
    need = {t: start_per_tag for t in tag_names}
    initial, rest = [], []
    for i in order:
        tags = set(records[i].tags) | {r.tag for r in records[i].regions}
        if any(need.get(t, 0) > 0 for t in tags):
            initial.append(int(i))
            for t in tags:
                need[t] = need.get(t, 0) - 1
        else:
            rest.append(int(i))
    short = {t: n for t, n in need.items() if n > 0}
    if short or len(rest) < test_size + pool_size:
        raise CvlabError("BadRequest", f"Not enough generated images for this split (short tags {short}, "
                         f"{len(rest)} left for test {test_size} + pool {pool_size}): lower the sizes.")
    return initial, rest[:test_size], rest[test_size:test_size + pool_size]


def _labels_of(record, tag_ids: dict) -> dict:
    return {"tag_ids": [tag_ids[t] for t in record.tags],
            "regions": [{"tag_id": tag_ids[r.tag], "left": r.left, "top": r.top, "width": r.width,
                         "height": r.height} for r in record.regions]}


def _upload(ws, project_id, indices, data, records, tag_ids, labelled: bool, metadata=None) -> dict[str, int]:
    """Create images in batches of 64; returns {image id: record index}."""
    out: dict[str, int] = {}
    cap = rules.limit("images_per_batch")
    for start in range(0, len(indices), cap):
        chunk = indices[start:start + cap]
        entries = [ImageEntry(data=data[i], name=records[i].name,
                              **(_labels_of(records[i], tag_ids) if labelled else {})) for i in chunk]
        summary = ws.create_images(project_id, entries, metadata=metadata)
        for i, res in zip(chunk, summary.images):
            if res.status not in ("OK", "OKDuplicate") or res.image is None:
                raise CvlabError("ErrorUnknown", f"Could not add {records[i].name}: {res.status} {res.message}")
            out[res.image.id] = i
    return out


def _mean(values: Sequence[float | None]) -> float | None:
    """Mean of the defined values (None: a metric undefined on that run)."""
    kept = [v for v in values if v is not None]
    return sum(kept) / len(kept) if kept else None


def learning_curve(dataset: str = "parts", *, rounds: int = 3, per_round: int = 10, start_per_tag: int | None = None,
                   pool_size: int = 100, test_size: int = 100, seeds: Sequence[int] = (0,), data_seed: int = 0,
                   image_size: int | None = None, detection_epochs: int | None = None, workspace=None,
                   backend: str | None = None, progress: bool = True, strategies: Sequence[str] = STRATEGIES,
                   random_draws: int = 1, on_seed: Callable[[int, dict], None] | None = None,
                   empty_fraction: float = 0.0) -> dict:
    """Label ``per_round`` more images per round, chosen by uncertainty (the smart labeler's order) or at
    random, retrain (Quick training) and score each model on a held-out test set (metadata holdout=true):
    micro F1 at threshold 0.5 for classification, mAP@0.5 for detection.

    Per seed the images are split afresh (``start_per_tag`` labelled images per tag, default Azure's minimum:
    5 classification, 15 detection; a test set; an unlabelled pool); both strategies share round 0.  Returns
    ``{"curves": {strategy: {"labelled", "mean", "std", "runs"}}, "settings", "seconds", ...}`` (JSON-ready).
    ``workspace`` (a Workspace or folder) keeps the projects; default: a temporary folder, deleted after.
    ``detection_epochs`` fixes the detector's epochs (passed to ``train_project``) to keep rounds short.
    ``on_seed(seed, {strategy: scores per round})`` is called as each seed finishes (for partial results).
    ``strategies`` may add ``ABLATION`` (plain top uncertainty); ``picked`` counts the tags of the images each
    strategy labelled (summed over seeds and rounds), to see a strategy lean on one tag.
    ``random_draws`` > 1 averages random over that many draws per seed (each its own project and trainings):
    one draw is a noisy baseline, its spread about 0.05 F1 per seed on ``parts``; the expected curve is the fair one.
    ``empty_fraction`` (detection): that share of the pool is empty frames, as most of a fixed site camera's
    footage; an empty frame shown to the oracle is deleted (nothing to draw, and it would stay untagged).
    """
    strategies = tuple(strategies)
    if set(strategies) - set(STRATEGIES + (ABLATION,)) or not set(STRATEGIES) <= set(strategies):
        raise CvlabError("BadRequest", f"strategies must include {STRATEGIES} and may add {ABLATION!r}.")
    if rounds < 1 or per_round < 1 or random_draws < 1 or not seeds:
        raise CvlabError("BadRequest", "rounds, per_round and random_draws must be at least 1, and seeds must not "
                         "be empty.")
    lanes = strategies + tuple(f"random#{d}" for d in range(1, random_draws))  # random#d: the d-th extra draw
    meta = datasets.info(dataset)
    ptype = meta.project_type
    start_per_tag = start_per_tag or rules.min_images_per_tag(ptype)
    if not 0.0 <= empty_fraction < 1.0 or (empty_fraction and ptype != "ObjectDetection"):
        raise CvlabError("BadRequest", f"empty_fraction={empty_fraction!r}: use 0 <= f < 1, on a detection dataset.")
    if pool_size < rounds * per_round:
        raise CvlabError("BadRequest", f"The pool ({pool_size}) must hold rounds x per_round = "
                         f"{rounds * per_round} images.")
    started = time.perf_counter()
    tmp = None
    if workspace is None:
        tmp = tempfile.TemporaryDirectory(prefix="cvlab-al-")
        ws = Workspace(tmp.name)
    else:
        ws = workspace if hasattr(workspace, "create_project") else Workspace(workspace)
    metric = "mAP@0.5" if ptype == "ObjectDetection" else "F1@0.5"
    count = test_size + pool_size + 2 * start_per_tag * len(meta.tags)
    n_empty = int(round(empty_fraction * pool_size))
    records = datasets.generate(dataset, count, seed=data_seed, size=image_size)
    first_empty = len(records)
    records += datasets.generate(dataset, n_empty, seed=data_seed, size=image_size, empty=True) if n_empty else []
    data = [_png(r) for r in records]
    runs: dict[str, list[list[float | None]]] = {s: [] for s in strategies}
    counted = list(meta.tags) + (["(empty)"] if n_empty else [])
    picked: dict[str, dict[str, int]] = {s: {t: 0 for t in counted} for s in strategies}
    labelled_counts: list[int] = []
    trainings = len(seeds) * (len(strategies) - 1 + rounds * len(lanes))
    bar = tqdm(total=trainings, desc=f"active learning on {dataset}", disable=not progress)
    try:
        for seed in seeds:
            initial, test, pool = _split(records, meta.tags, start_per_tag, test_size, pool_size, seed, first_empty)
            labelled_counts = [len(initial) + r * per_round for r in range(rounds + 1)]
            projects = {}
            for strategy in lanes:
                p = ws.create_project(f"al {dataset} seed {seed} {strategy} {uuid.uuid4().hex[:6]}",
                                      domain_id=resolve_domain(None, ptype),
                                      classification_type=meta.classification_type)
                tag_ids = {t: ws.create_tag(p.id, t, type="Negative" if t == datasets.NEGATIVE and
                                            ptype == "Classification" else "Regular").id for t in meta.tags}
                _upload(ws, p.id, initial, data, records, tag_ids, True)
                _upload(ws, p.id, test, data, records, tag_ids, True, metadata={"holdout": "true"})
                unlabelled = _upload(ws, p.id, pool, data, records, tag_ids, False)
                projects[strategy] = (p, tag_ids, unlabelled)

            def train_and_score(project, previous=None):
                try:
                    it = train_project(ws, project.id, seed=seed, show_progress=False, detection_epochs=detection_epochs)
                except CvlabError as e:  # every pick was an empty frame (deleted): the same images, the same model
                    if previous is None or e.code != "BadRequestTrainingNotNeeded":
                        raise
                    bar.update(1)
                    return previous
                bar.update(1)
                if it.status != "Completed":
                    raise CvlabError("ErrorUnknown", f"Training {project.name} failed: {it.training_error_details}")
                perf = get_iteration_performance(ws, project.id, it.id, split="holdout")
                value = perf.average_precision if ptype == "ObjectDetection" else perf.f1
                return it, json_number(value)

            first, score0 = train_and_score(projects["uncertainty"][0])
            latest = {"uncertainty": first}
            if ABLATION in strategies:  # same images and seed as the first: its own copy of round 0
                latest[ABLATION] = train_and_score(projects[ABLATION][0])[0]
            curves = {s: [score0] for s in lanes}
            for r in range(1, rounds + 1):
                for strategy in lanes:
                    p, tag_ids, unlabelled = projects[strategy]
                    if not strategy.startswith("random"):
                        it = latest[strategy]
                        predictor = Predictor.load(ws, it.id, backend=backend) if backend else None
                        if strategy == "uncertainty":  # exactly what the smart labeler returns
                            found = active.query_suggested_images(ws, p.id, it.id, max_count=per_round,
                                                                  predictor=predictor).results
                        else:
                            hits = _untagged_suggestions(ws, p.id, it.id, None, 0.0, predictor)[3]
                            found = active.rank_by_uncertainty(hits, lambda s: s.prediction_uncertainty)[:per_round]
                        chosen = [s.id for s in found]
                        Predictor.clear_cache()  # many iterations: keep only the models in use in memory
                    else:
                        # in generated order, not by (random) image id, so the draw repeats run to run
                        left = sorted((im.id for im in ws.iter_images(p.id, tagging_status="Untagged")),
                                      key=unlabelled.__getitem__)
                        draw = int(strategy.partition("#")[2] or 0)
                        rng = np.random.default_rng([seed, r] + ([draw] if draw else []))
                        chosen = [left[i] for i in rng.choice(len(left), size=per_round, replace=False)]
                    counts = picked[strategy.partition("#")[0]]
                    for image_id in chosen:  # the oracle: the generator's true labels
                        record = records[unlabelled[image_id]]
                        for t in set(record.tags) | {g.tag for g in record.regions}:
                            counts[t] += 1
                        labels = _labels_of(record, tag_ids)
                        if ptype == "ObjectDetection" and not labels["regions"]:
                            counts["(empty)"] += 1
                            ws.delete_images(p.id, [image_id])
                        elif ptype == "ObjectDetection":
                            ws.set_image_labels(p.id, image_id, regions=labels["regions"])
                        else:
                            ws.set_image_labels(p.id, image_id, tag_ids=labels["tag_ids"])
                    previous = (latest[strategy], curves[strategy][-1]) if strategy in latest else None
                    latest[strategy], score = train_and_score(p, previous)
                    curves[strategy].append(score)
            draws = [curves.pop(s) for s in lanes if s.startswith("random")]
            curves["random"] = [_mean([d[r] for d in draws]) for r in range(rounds + 1)]
            for s in strategies:
                runs[s].append(curves[s])
            if on_seed is not None:
                on_seed(seed, {"labelled": labelled_counts, **curves})
    finally:
        bar.close()
        if tmp is not None:
            ws.close()
            tmp.cleanup()

    def summary(values):
        arr = np.array([[np.nan if v is None else v for v in run] for run in values], dtype=float)
        return [json_number(float(x)) if not np.isnan(x) else None for x in np.nanmean(arr, 0)], \
               [json_number(float(x)) if not np.isnan(x) else None for x in np.nanstd(arr, 0)]

    out_curves = {}
    for s in strategies:
        mean, std = summary(runs[s])
        out_curves[s] = {"labelled": labelled_counts, "mean": mean, "std": std, "runs": runs[s]}
    gain = [None if a is None or b is None else round(a - b, 4)
            for a, b in zip(out_curves["uncertainty"]["mean"], out_curves["random"]["mean"])]
    return {"dataset": dataset, "project_type": ptype, "metric": metric, "curves": out_curves,
            "uncertainty_minus_random": gain, "picked": picked,
            "settings": {"rounds": rounds, "per_round": per_round, "start_per_tag": start_per_tag,
                         "pool_size": pool_size, "empty_frames_in_pool": n_empty, "test_size": test_size,
                         "seeds": list(seeds),
                         "data_seed": data_seed, "image_size": image_size or meta.default_size,
                         "random_draws": random_draws,
                         "detection_epochs": detection_epochs, "training": "Quick (Regular)",
                         "order": "cvlab.active.suggestion_score (summed squared box probability), plain"
                         if ptype == "ObjectDetection" else
                         f"cvlab.active.prediction_uncertainty, spread_order DIVERSITY={active.uncertainty.DIVERSITY}"},
            "seconds": round(time.perf_counter() - started, 1)}
