"""Threshold explorer speed: time per slider move with 1,000 predictions (target: under 200 ms). Prints JSON.

Synthetic, seeded evaluations of the shape training writes: multiclass (200 images x 5 tags), multilabel
(250 x 4) and detection (200 images, 3 tags, ~1,000 predicted boxes). A "move" is setting ``slider.value``: it
recomputes the numbers, updates the HTML table and re-renders the PNG plot, as in a notebook. Wall time and
process CPU time are both reported (on a shared, loaded machine the wall time waits for a core).
"""
from __future__ import annotations

import json
import statistics
import time

import numpy as np


def _tags(n):
    return [{"id": f"00000000-0000-0000-0000-{k:012d}", "name": f"tag{k}", "type": "Regular"} for k in range(n)]


def classification(ctype: str, n_images: int, n_tags: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    tags = _tags(n_tags)
    records = []
    for i in range(n_images):
        if ctype == "Multiclass":
            truth = [int(rng.integers(n_tags))]
            logits = rng.normal(0, 1, n_tags)
            logits[truth[0]] += 1.5
            probs = np.exp(logits) / np.exp(logits).sum()
        else:
            truth = [j for j in range(n_tags) if rng.random() < 0.35]
            probs = np.clip(rng.normal(0.3, 0.2, n_tags) + 0.4 * np.isin(np.arange(n_tags), truth), 0, 1)
        records.append({"image_id": f"img{i}", "split": "cv", "fold": i % 5,
                        "truth": {"tag_ids": [tags[j]["id"] for j in truth], "regions": []},
                        "predictions": [{"tag_id": t["id"], "probability": float(p), "bounding_box": None}
                                        for t, p in zip(tags, probs)]})
    return {"project_type": "Classification", "classification_type": ctype, "k_folds": 5, "tags": tags,
            "records": records}


def detection(n_images: int = 200, n_tags: int = 3, preds_per_image: int = 5, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    tags = _tags(n_tags)
    records = []
    for i in range(n_images):
        regions = []
        for _ in range(rng.integers(1, 5)):
            w, h = rng.uniform(0.05, 0.3, 2)
            regions.append({"tag_id": tags[int(rng.integers(n_tags))]["id"], "left": float(rng.uniform(0, 1 - w)),
                            "top": float(rng.uniform(0, 1 - h)), "width": float(w), "height": float(h)})
        preds = []
        for _ in range(preds_per_image):
            r = regions[int(rng.integers(len(regions)))]
            jit = rng.normal(0, 0.02, 4)
            w, h = float(np.clip(r["width"] + jit[2], 0.01, 1)), float(np.clip(r["height"] + jit[3], 0.01, 1))
            box = {"left": float(np.clip(r["left"] + jit[0], 0, 1 - w)),
                   "top": float(np.clip(r["top"] + jit[1], 0, 1 - h)), "width": w, "height": h}
            preds.append({"tag_id": r["tag_id"], "probability": float(rng.uniform(0.05, 1)), "bounding_box": box})
        records.append({"image_id": f"img{i}", "split": "cv", "fold": 0,
                        "truth": {"tag_ids": sorted({r["tag_id"] for r in regions}), "regions": regions},
                        "predictions": preds})
    return {"project_type": "ObjectDetection", "classification_type": None, "k_folds": 1, "tags": tags,
            "records": records}


def _stats(ms: list[float]) -> dict:
    ms = sorted(ms)
    return {"moves": len(ms), "median_ms": round(statistics.median(ms), 1),
            "p95_ms": round(ms[int(0.95 * (len(ms) - 1))], 1), "max_ms": round(ms[-1], 1)}


def bench(name: str, evaluation: dict, moves: int = 30, seed: int = 1) -> dict:
    from cvlab.performance import Evaluation
    from cvlab.widgets.explorer import ThresholdExplorer

    rng = np.random.default_rng(seed)
    n_pred = sum(len(r["predictions"]) for r in evaluation["records"])
    t0 = time.perf_counter()
    ex = ThresholdExplorer(evaluation)
    build_ms = (time.perf_counter() - t0) * 1000
    prob, prob_cpu = [], []
    for v in rng.uniform(0.05, 0.95, moves):
        t, c = time.perf_counter(), time.process_time()
        ex.threshold.value = round(float(v), 2)
        prob.append((time.perf_counter() - t) * 1000)
        prob_cpu.append((time.process_time() - c) * 1000)
    ev = Evaluation.from_dict(evaluation)
    ev.performance(0.5, 0.5)
    t = time.perf_counter()
    for v in rng.uniform(0.05, 0.95, moves):
        ev.performance(float(v), 0.5)
    numbers_ms = (time.perf_counter() - t) * 1000 / moves
    out = {"case": name, "predictions": n_pred, "images": len(evaluation["records"]),
           "build_ms": round(build_ms, 1), "probability_move": _stats(prob),
           "probability_move_cpu": _stats(prob_cpu),
           "numbers_only_ms": round(numbers_ms, 2)}
    if ex.overlap is not None:
        over, over_cpu = [], []
        for v in [0.3, 0.55, 0.75, 0.5, 0.3, 0.9, 0.5, 0.55]:  # new thresholds, then cached ones
            t, c = time.perf_counter(), time.process_time()
            ex.overlap.value = v
            over.append((time.perf_counter() - t) * 1000)
            over_cpu.append((time.process_time() - c) * 1000)
        out["overlap_move"] = _stats(over)
        out["overlap_move_cpu"] = _stats(over_cpu)
    worst = max(out["probability_move"]["p95_ms"], out.get("overlap_move", {}).get("p95_ms", 0))
    out["under_200ms_p95"] = worst < 200
    return out


def main() -> None:
    import matplotlib

    matplotlib.use("Agg")
    t = time.perf_counter()
    import torchvision.ops  # noqa: F401  (box IoU; imported once per process, timed apart from the build)
    import cvlab.widgets.explorer  # noqa: F401
    imports_s = round(time.perf_counter() - t, 2)
    cases = [("multiclass", classification("Multiclass", 200, 5)),
             ("multilabel", classification("Multilabel", 250, 4)),
             ("detection", detection())]
    results = [bench(name, ev) for name, ev in cases]
    print(json.dumps({"benchmark": "threshold_explorer", "target_ms": 200, "load_average_1min": _load(),
                      "imports_s": imports_s, "results": results}, indent=1))


def _load():
    """The machine's load when measured: wall times on a shared machine inflate; the *_cpu figures do not."""
    import os

    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None


if __name__ == "__main__":
    main()
