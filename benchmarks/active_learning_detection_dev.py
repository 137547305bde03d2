"""Detection orders compared on development data: several pool orders share round 0 and the random draw; prints JSON.

    nice -n 19 .venv/bin/python benchmarks/active_learning_detection_dev.py --data-seed 1 [--seeds 0 1 2]
        [--orders top top-plain band ...] [--pool 40] [--test 30] [--image-size N] [--out f.json]
        [--rare-tag vest --rare-fraction 0.15]

The same experiment as ``benchmarks/active_learning.py --only detection`` (``cvlab.experiments.active_learning.learning_curve``: the
same split, oracle, Quick training at 40 epochs, holdout mAP@0.5 and the same seeded random draw), but every
order in ``--orders`` gets its own project after a shared round 0, so one run compares them.  Each order is an
image score from the iteration's stored predictions, spread over the embedding space (``spread_order``) unless
its name ends in ``-plain``.  Choose on data seeds other than 0 (the benchmark's test data).  Each model's pool
picks are kept in the output (``--out``) for offline analysis, and every model's per-tag holdout AP
(``tag_ap``: lane -> one list per split seed of {tag: AP} per round).

``--rare-tag T --rare-fraction f``: an imbalanced pool, the setting a smart labeler exists for.  Only
round(f * pool) pool images contain T (the rest contain none); the initial set (15 images per tag) and the test
set are drawn as usual, so T's AP is still a third of mAP.  More images are generated to fill such a pool
(``pool * 8`` extra, seeded as always), which changes the split against a run without ``--rare-tag``.

``--empty-fraction f``: that share of the pool is empty frames (``datasets.generate(..., empty=True)``), the same
frames in every split, mixed in a seeded order; the oracle deletes an empty frame it is shown.  Lanes run random
last in each round (round 1 reads the shared round-0 model's project, random's); a lane whose picks were all
empty keeps its model and score.

Orders: ``squared`` = summed squared box probability (cvlab's ``suggestion_score`` since 2026-11-26, plain),
``expected`` = summed box probability, ``confident`` = the same over boxes >= 0.3, ``top`` = 1 - top box
probability (cvlab's before), ``band`` = how many boxes lie at probability 0.2-0.8 (all the boxes a labeller
would correct), ``pertag`` = summed per-tag worst ambiguity, ``errors`` = summed min(p, 1 - p).  Every run and
its figures: ``benchmarks/active_learning.md``.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cvlab import active, datasets  # noqa: E402
from cvlab.experiments import active_learning  # noqa: E402
from cvlab.errors import CvlabError  # noqa: E402


def _probs(preds, floor=active.DETECTION_FLOOR):
    p = np.array([float(x["probability"]) for x in preds])
    return p[p >= floor]


def _band(preds, lo=0.2, hi=0.8):
    """How many boxes the detector is undecided on (probability in [lo, hi]), ties broken by 1 - top."""
    p = _probs(preds)
    return float(((p >= lo) & (p <= hi)).sum() + (1.0 - p.max() if p.size else 1.0) * 0.5)


def _per_tag(preds):
    """Sum over tags of the most undecided box of that tag (ambiguity 1 - |2p - 1|)."""
    best: dict[str, float] = {}
    for x in preds:
        if x["probability"] >= active.DETECTION_FLOOR:
            a = 1.0 - abs(2.0 * x["probability"] - 1.0)
            best[x["tag_id"]] = max(best.get(x["tag_id"], 0.0), a)
    return float(sum(best.values()))


def _tags(record) -> set[str]:
    return set(record.tags) | {r.tag for r in record.regions}


def _rare_split(records, tag_names, start, test_size, pool_size, seed, rare, fraction):
    """``active._split`` (same initial and test sets), but the pool holds only round(fraction * pool_size)
    images with tag ``rare``: the first such images of the seeded order, the rest the first without it."""
    initial, test, _ = active_learning._split(records, tag_names, start, test_size, 0, seed)
    used = set(initial) | set(test)
    rest = [int(i) for i in np.random.default_rng(seed).permutation(len(records)) if int(i) not in used]
    n_rare = int(round(fraction * pool_size))
    with_tag = [i for i in rest if rare in _tags(records[i])][:n_rare]
    without = [i for i in rest if rare not in _tags(records[i])][:pool_size - n_rare]
    if len(with_tag) < n_rare or len(without) < pool_size - n_rare:
        raise SystemExit(f"not enough generated images for a pool of {pool_size} with {n_rare} {rare!r} images")
    chosen = set(with_tag) | set(without)
    return initial, test, [i for i in rest if i in chosen]


class _LazyPng(dict):
    """Record index -> PNG bytes, encoded on first use (the rare-tag pool generates many unused images)."""

    def __init__(self, records):
        super().__init__()
        self.records = records

    def __missing__(self, i):
        self[i] = active_learning._png(self.records[i])
        return self[i]


SCORES = {
    "top": lambda preds: active.prediction_uncertainty(preds, "ObjectDetection"),
    "expected": lambda preds: float(_probs(preds).sum()),
    "confident": lambda preds: float(_probs(preds)[_probs(preds) >= 0.3].sum()),
    "squared": lambda preds: active.suggestion_score(preds, "ObjectDetection"),
    "band": _band,
    "pertag": _per_tag,
    "errors": lambda preds: float(np.minimum(_probs(preds), 1 - _probs(preds)).sum()),
}


def _order(ws, project_id, iteration_id, hits, score, spread: bool):
    """``cvlab.active.suggestions._smart_order`` with ``score`` in place of the prediction uncertainty."""
    from cvlab import embeddings
    from cvlab.nets.backbones import spec

    u = [score(h.predictions) for h in hits]
    if not spread:
        return [hits[i] for i in np.argsort(-np.asarray(u), kind="stable")]
    u = np.asarray(u) / max(max(u), 1e-12)
    bb = spec("lite0")
    known = [im for im in ws.iter_images(project_id, tagging_status="Tagged")
             if str((im.metadata or {}).get("holdout", "")).lower() != "true"]
    vectors = embeddings.embed_images(ws, [h.image for h in hits] + known, bb.name, bb.input_size)
    return [hits[i] for i in active.spread_order(u, vectors[:len(hits)], vectors[len(hits):])]


def main(argv=None) -> int:
    from cvlab.datasets.importing import resolve_domain
    from cvlab.metrics import json_number
    from cvlab.performance import get_iteration_performance
    from cvlab.predict import Predictor
    from cvlab.training import train_project
    from cvlab.workspace import Workspace

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-seed", type=int, required=True)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--orders", nargs="+", default=["top", "top-plain", "band"])
    ap.add_argument("--pool", type=int, default=40)
    ap.add_argument("--test", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--per-round", type=int, default=10)
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--image-size", type=int)
    ap.add_argument("--out")
    ap.add_argument("--rare-tag")
    ap.add_argument("--rare-fraction", type=float, default=0.15)
    ap.add_argument("--empty-fraction", type=float, default=0.0,
                    help="share of the pool that is empty frames (nobody in them); the oracle deletes those shown")
    args = ap.parse_args(argv)
    if args.data_seed == 0:
        ap.error("data seed 0 is the benchmark's test data: develop on other seeds")
    meta = datasets.info("site")
    start = 15
    if args.rare_tag is not None and args.rare_tag not in meta.tags:
        ap.error(f"--rare-tag must be one of {meta.tags}")
    extra = 8 * args.pool if args.rare_tag else 0
    records = datasets.generate("site", args.test + args.pool + extra + 2 * start * len(meta.tags),
                                seed=args.data_seed, size=args.image_size)
    n_empty = int(round(args.empty_fraction * args.pool))
    first_empty = len(records)
    records += datasets.generate("site", n_empty, seed=args.data_seed, size=args.image_size, empty=True)
    data = _LazyPng(records)
    lanes = ["random"] + list(args.orders)
    out = {"data_seed": args.data_seed, "settings": vars(args), "runs": {s: [] for s in lanes},
           "tag_ap": {s: [] for s in lanes}, "pool_preds": []}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="cvlab-al-det-") as tmp:
        ws = Workspace(tmp)
        for seed in args.seeds:
            if args.rare_tag:
                initial, test, pool = _rare_split(records, meta.tags, start, args.test, args.pool, seed,
                                                  args.rare_tag, args.rare_fraction)
            else:
                initial, test, pool = active_learning._split(records, meta.tags, start, args.test, args.pool, seed,
                                                    first_empty)
            out.setdefault("pool_rare_images", []).append(
                sum(args.rare_tag in _tags(records[i]) for i in pool) if args.rare_tag else None)
            projects = {}
            for lane in lanes:
                p = ws.create_project(f"dev {seed} {lane} {uuid.uuid4().hex[:6]}",
                                      domain_id=resolve_domain(None, meta.project_type))
                tag_ids = {t: ws.create_tag(p.id, t).id for t in meta.tags}
                active_learning._upload(ws, p.id, initial, data, records, tag_ids, True)
                active_learning._upload(ws, p.id, test, data, records, tag_ids, True, metadata={"holdout": "true"})
                projects[lane] = (p, tag_ids, active_learning._upload(ws, p.id, pool, data, records, tag_ids, False))

            def train(p):
                it = train_project(ws, p.id, seed=seed, show_progress=False, detection_epochs=args.epochs)
                perf = get_iteration_performance(ws, p.id, it.id, split="holdout")
                tag_ap = {t.name: json_number(t.average_precision) for t in perf.per_tag_performance}
                return it, json_number(perf.average_precision), tag_ap

            it0, score0, ap0 = train(projects[lanes[0]][0])
            print(f"seed {seed} round 0: {score0:.4f} {ap0}", file=sys.stderr, flush=True)
            latest = {lane: (projects[lanes[0]][0], it0) for lane in lanes}
            curves = {lane: [score0] for lane in lanes}
            tag_aps = {lane: [ap0] for lane in lanes}
            for r in range(1, args.rounds + 1):
                # random last: round 1's orders read the shared round-0 model's project, which is random's
                for lane in sorted(lanes, key=lambda name: name == "random"):
                    p, tag_ids, unlabelled = projects[lane]
                    if lane == "random":  # as learning_curve: generated order, seeded draw
                        left = sorted((im.id for im in ws.iter_images(p.id, tagging_status="Untagged")),
                                      key=unlabelled.__getitem__)
                        rng = np.random.default_rng([seed, r])
                        chosen = [left[i] for i in rng.choice(len(left), size=args.per_round, replace=False)]
                    else:
                        src, it = latest[lane]
                        # round 1: the shared round-0 model (the random lane's project: same images, other ids)
                        src_ids = next(v[2] for v in projects.values() if v[0].id == src.id)
                        src_pool = [im for im in ws.iter_images(src.id) if im.id in src_ids]
                        found = active.iteration_predictions(ws, src.id, it.id, src_pool)
                        by_sha = {im.sha256: found[im.id] for im in src_pool}
                        hits = []
                        for im in ws.iter_images(p.id, tagging_status="Untagged", order_by="Oldest"):
                            hits.append(active.SuggestedTagAndRegion(im.id, p.id, it.id, im.created, by_sha[im.sha256],
                                                                     0.0, im))
                        name, _, plain = lane.partition("-")  # e.g. top-plain
                        ranked = _order(ws, p.id, it.id, hits, SCORES[name], spread=plain != "plain")
                        chosen = [h.id for h in ranked[:args.per_round]]
                        out["pool_preds"].append({"seed": seed, "round": r, "lane": lane, "chosen": [
                            records[unlabelled[c]].name for c in chosen]})
                        Predictor.clear_cache()
                    for image_id in chosen:
                        labels = active_learning._labels_of(records[unlabelled[image_id]], tag_ids)
                        if labels["regions"]:
                            ws.set_image_labels(p.id, image_id, regions=labels["regions"])
                        else:  # nothing to draw: the labeller deletes the empty frame (it would stay untagged)
                            ws.delete_images(p.id, [image_id])
                    out.setdefault("empty_picked", {}).setdefault(lane, []).append(
                        sum(not records[unlabelled[c]].regions for c in chosen))
                    try:
                        it, score, tag_ap = train(p)
                    except CvlabError as e:  # every pick was an empty frame: the same images, the same model
                        if e.code != "BadRequestTrainingNotNeeded":
                            raise
                        it, score, tag_ap = latest[lane][1], curves[lane][-1], tag_aps[lane][-1]
                    latest[lane] = (p, it)
                    curves[lane].append(score)
                    tag_aps[lane].append(tag_ap)
                    print(f"seed {seed} round {r} {lane}: {score:.4f} {tag_ap} "
                          f"({time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True)
            for lane in lanes:
                out["runs"][lane].append(curves[lane])
                out["tag_ap"][lane].append(tag_aps[lane])
            if args.out:
                Path(args.out).write_text(json.dumps(out, indent=1))
        ws.close()
    rand = np.array(out["runs"]["random"], float)
    out["mean"] = {s: np.round(np.mean(out["runs"][s], 0), 4).tolist() for s in lanes}
    out["gain_per_seed"] = {s: np.round((np.array(out["runs"][s], float) - rand)[:, 1:].mean(1), 4).tolist()
                            for s in args.orders}
    out["seconds"] = round(time.perf_counter() - started, 1)
    text = json.dumps({k: v for k, v in out.items() if k != "pool_preds"}, indent=1)
    print(text)
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
