"""Training benchmark: wall time, peak RSS and held-out metrics per scenario, one JSON object per line.

    .venv/bin/python benchmarks/train.py                      # the default scenarios, each in a fresh process
    .venv/bin/python benchmarks/train.py --only parts-quick   # one scenario
    .venv/bin/python benchmarks/train.py --baseline 3fd02c6 --repeat 3   # also today's code: medians, ratios
    CVLAB_SECONDS_PER_BUDGET_HOUR=60 ... --budget 4           # Advanced budget in hours

Scenarios (datasets from ``cvlab.datasets``; training images and held-out images are disjoint, held-out images
are passed as ``holdout=`` so they are never trained on):
- parts-quick:     Quick classification, 150 training + 100 held-out ``parts`` images
- subtle-quick:    Quick classification on ``parts-subtle`` (small defects), same sizes
- subtle-advanced: Advanced classification on the same ``parts-subtle`` data (compare with subtle-quick)
- site-quick:      Quick object detection, 60 training + 60 held-out ``site`` images
- parts-advanced, multilabel-quick, multilabel-advanced: the same sizes on ``parts`` and ``parts-multilabel``
- site-advanced:   Advanced object detection on the same ``site`` data (compare with site-quick)
  (multilabel F1: each tag at probability >= 0.5)
The ONNX trunk is built before the clock starts (once per machine, cached; ``cvlab.embeddings.prepare``).
Targets (2-core laptop): Quick classification <= 30 s with held-out macro F1 >= 0.90; Advanced within budget
and better than Quick; Quick detection <= 4 min with held-out mAP@0.5 >= 0.85; peak RSS <= 3 GB.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SCENARIOS = {
    "parts-quick": dict(dataset="parts", train=150, holdout=100, training_type="Regular"),
    "parts-advanced": dict(dataset="parts", train=150, holdout=100, training_type="Advanced"),
    "subtle-quick": dict(dataset="parts-subtle", train=150, holdout=100, training_type="Regular"),
    "subtle-advanced": dict(dataset="parts-subtle", train=150, holdout=100, training_type="Advanced"),
    "multilabel-quick": dict(dataset="parts-multilabel", train=150, holdout=100, training_type="Regular"),
    "multilabel-advanced": dict(dataset="parts-multilabel", train=150, holdout=100, training_type="Advanced"),
    "site-quick": dict(dataset="site", train=60, holdout=60, training_type="Regular"),
    "site-advanced": dict(dataset="site", train=60, holdout=60, training_type="Advanced"),
}
DEFAULT_ONLY = "parts-quick,subtle-quick,subtle-advanced,multilabel-quick,site-quick"
# Azure's default classification domain (General: Lite2 at 260 px; on parts it beats compact Lite0, 0.91 vs
# 0.85 held-out macro F1) and the compact detection domain (the detector is Lite0 at 320 px either way).
DEFAULT_DOMAIN = {"Classification": "General", "ObjectDetection": "General (compact)"}


def _macro_f1(ws, project_id, iteration_id, multilabel: bool = False) -> dict:
    """Held-out metrics from evaluation.json: multiclass, top-1 tag vs the truth (Negative included); multilabel,
    macro F1 over the tags with each tag predicted at probability >= 0.5."""
    import numpy as np
    from sklearn.metrics import accuracy_score, f1_score

    ev = json.loads((ws.iteration_dir(iteration_id) / "evaluation.json").read_text())
    rows = [r for r in ev["records"] if r["split"] == "holdout"]
    if multilabel:
        ids = [t["id"] for t in ev["tags"]]
        truth = np.array([[t in r["truth"]["tag_ids"] for t in ids] for r in rows])
        pred = np.array([[{p["tag_id"]: p["probability"] for p in r["predictions"]}[t] >= 0.5 for t in ids]
                         for r in rows])
        return {"heldout_images": len(rows),
                "heldout_macro_f1": round(float(f1_score(truth, pred, average="macro", zero_division=0)), 4),
                "heldout_exact_match": round(float((truth == pred).all(1).mean()), 4)}
    truth = [r["truth"]["tag_ids"][0] for r in rows]
    pred = [max(r["predictions"], key=lambda p: p["probability"])["tag_id"] for r in rows]
    return {"heldout_images": len(rows), "heldout_macro_f1": round(float(f1_score(truth, pred, average="macro")), 4),
            "heldout_accuracy": round(float(accuracy_score(truth, pred)), 4)}


def _cpu() -> float:
    """CPU seconds of this process (all threads): on a shared machine a steadier cost than wall time."""
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime


def _latency(ws, iteration_id, image, n: int = 30) -> dict:
    """Predictor latency for a 640 px JPEG (decode + preprocess + model), as the REST endpoint pays it."""
    import io

    import numpy as np

    from cvlab.predict import Predictor

    buf = io.BytesIO()
    image.convert("RGB").resize((640, 480)).save(buf, "JPEG", quality=90)
    data = buf.getvalue()
    t0 = time.perf_counter()
    pred = Predictor.load(ws, iteration_id)
    load_s = time.perf_counter() - t0
    pred.predict(data)
    times = []
    for _ in range(n):
        t = time.perf_counter()
        pred.predict(data)
        times.append(time.perf_counter() - t)
    return {"predictor_backend": pred.backend, "predictor_load_s": round(load_s, 2),
            "predict_640px_jpeg_p50_ms": round(1000 * float(np.median(times)), 1),
            "predict_640px_jpeg_p90_ms": round(1000 * float(np.percentile(times, 90)), 1)}


def run_scenario(name: str, budget: int, domain: str | None, seed: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="cvlab-bench-") as tmp:  # removed even when a scenario fails
        return _run_scenario(Path(tmp), name, budget, domain, seed)


def _run_scenario(tmp: Path, name: str, budget: int, domain: str | None, seed: int) -> dict:
    import cvlab
    from cvlab import datasets, training
    from cvlab.datasets.importing import import_records
    from cvlab.domains import find_domain
    from cvlab.performance import get_iteration_performance

    spec = SCENARIOS[name]
    meta = datasets.info(spec["dataset"])
    records = datasets.generate(spec["dataset"], spec["train"] + spec["holdout"], seed=seed)
    ws = cvlab.Workspace(tmp / "ws")
    dom = find_domain(domain or DEFAULT_DOMAIN[meta.project_type], meta.project_type)
    p = ws.create_project(name, domain_id=dom.id, classification_type=meta.classification_type)
    import_records(ws, p.id, records[:spec["train"]])
    before = {im.id for im in ws.iter_images(p.id)}
    import_records(ws, p.id, records[spec["train"]:])
    held = [im.id for im in ws.iter_images(p.id) if im.id not in before]
    try:  # the ONNX trunk is exported once per machine, not per training: build it before the clock starts
        from cvlab import embeddings, recipes

        if meta.project_type == "Classification":
            r = recipes.for_domain(dom)
            embeddings.prepare(r.backbone, r.size)
    except (ImportError, AttributeError):
        pass  # code from before recipes (a --baseline tree)
    t0, c0 = time.perf_counter(), _cpu()
    it = training.train_project(ws, p.id, training_type=spec["training_type"],
                                reserved_budget_in_hours=budget if spec["training_type"] == "Advanced" else 0,
                                seed=seed, holdout=held, show_progress=False)
    wall, cpu = time.perf_counter() - t0, _cpu() - c0
    info = json.loads((ws.iteration_dir(it.id) / "iteration.json").read_text()) if it.status == "Completed" else {}
    out = {"scenario": name, "dataset": spec["dataset"], "domain": f"{dom.name} ({dom.type})",
           "backbone": info.get("backbone"), "training_type": spec["training_type"], "status": it.status,
           "error": it.training_error_details, "train_images": spec["train"], "wall_s": round(wall, 1),
           "cpu_s": round(cpu, 1),
           "timings": info.get("timings")}
    if spec["training_type"] == "Advanced":
        out["budget_hours"] = budget
        out["budget_s"] = budget * seconds_per_budget_hour()
        ft = info.get("fine_tune", {})
        out["fine_tune"] = {k: ft.get(k) for k in ("epochs", "best_epoch", "stopped", "seconds", "kept",
                                                   "validation")}
        out["training_details"] = info.get("training_details")
        if "fit" in info:  # detection: the Quick head, then fine-tuning from it, and which the gate kept
            fit = info["fit"]
            out["fit"] = {"kept": fit.get("kept"), "validation_mAP": fit.get("validation_mAP"),
                          **{part: {k: fit[part].get(k) for k in ("epochs", "seconds")}
                             for part in ("quick", "advanced") if isinstance(fit.get(part), dict)}}
    if it.status == "Completed":
        if meta.project_type == "Classification":
            out.update(_macro_f1(ws, p.id, it.id, meta.classification_type == "Multilabel"))
        perf = get_iteration_performance(ws, p.id, it.id, split="holdout", overlap_threshold=0.5)
        fmt = lambda v: None if v is None or str(v) == "n/a" else round(float(v), 4)  # noqa: E731
        out["heldout_precision@0.5"] = fmt(perf.precision)
        out["heldout_recall@0.5"] = fmt(perf.recall)
        out["heldout_AP" if meta.project_type == "Classification" else "heldout_mAP@0.5"] = fmt(
            perf.average_precision)
        out["per_tag_AP"] = {t.name: fmt(t.average_precision) for t in perf.per_tag_performance}
    if it.status == "Completed":
        out.update(_latency(ws, it.id, records[0].load()))
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    try:
        out["load_avg_1m"] = round(os.getloadavg()[0], 2)
    except OSError:
        pass
    return out


def _child(name: str, args, tree: str | None) -> dict:
    """One scenario in a fresh process (peak RSS and caches are per scenario); ``tree`` puts another cvlab first
    on the path (the --baseline code)."""
    env = dict(os.environ)
    if tree:
        env["PYTHONPATH"] = tree + os.pathsep + env.get("PYTHONPATH", "")
    cmd = [sys.executable, __file__, "--in-process", "--only", name, "--budget", str(args.budget),
           "--seed", str(args.seed)] + (["--domain", args.domain] if args.domain else [])
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    return json.loads(lines[-1]) if lines else {"scenario": name, "status": "crashed", "rc": proc.returncode,
                                                  "stderr": proc.stderr[-2000:]}


COMPARED = ("wall_s", "cpu_s", "peak_rss_mb", "heldout_macro_f1", "heldout_mAP@0.5", "heldout_AP",
            "predict_640px_jpeg_p50_ms")


def _median(rows, key):
    import statistics

    vals = [r[key] for r in rows if isinstance(r.get(key), (int, float))]
    return round(statistics.median(vals), 4) if vals else None


def seconds_per_budget_hour() -> float:
    """cvlab's lab seconds per budget hour (cvlab.config since the re-layout; training before it)."""
    try:
        from cvlab.config import settings

        return float(settings().seconds_per_budget_hour)
    except ImportError:
        from cvlab import training

        return training.seconds_per_budget_hour()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default=DEFAULT_ONLY, help=f"comma-separated scenarios of {list(SCENARIOS)}")
    ap.add_argument("--budget", type=int, default=4, help="Advanced budget in hours (x CVLAB_SECONDS_PER_BUDGET_HOUR)")
    ap.add_argument("--domain", default=None, help="domain name (default: General; General (compact) for detection)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--baseline", default=None, help="a git commit (or a folder holding a cvlab/ package): run "
                    "every scenario with that code too, alternating, and report medians and ratios new/baseline")
    ap.add_argument("--repeat", type=int, default=1, help="runs per scenario and code (medians are reported)")
    ap.add_argument("--in-process", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        ap.error(f"unknown scenario(s) {unknown}; choose from {list(SCENARIOS)}")
    if args.in_process:
        for n in names:
            print(json.dumps(run_scenario(n, args.budget, args.domain, args.seed)), flush=True)
        return 0
    with tempfile.TemporaryDirectory(prefix="cvlab-baseline-") as tmp:
        tree = None
        if args.baseline:
            tree = args.baseline if Path(args.baseline, "cvlab").is_dir() else tmp
            if tree == tmp:  # a commit: its cvlab/ package, unpacked
                archive = subprocess.run(["git", "-C", str(Path(__file__).resolve().parents[1]), "archive",
                                          args.baseline, "cvlab"], capture_output=True, check=True).stdout
                subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        summary = []
        for n in names:
            runs = {"new": [], "baseline": []}
            for _ in range(args.repeat):
                for which in (("new", "baseline") if tree else ("new",)):
                    row = _child(n, args, tree if which == "baseline" else None)
                    row["code"] = which
                    print(json.dumps(row), flush=True)
                    runs[which].append(row)
            if tree:
                entry = {"scenario": n, "runs": args.repeat}
                for key in COMPARED:
                    new, old = _median(runs["new"], key), _median(runs["baseline"], key)
                    if new is None and old is None:
                        continue
                    entry[key] = {"new": new, "baseline": old,
                                  "ratio": round(new / old, 3) if new is not None and old else None}
                summary.append(entry)
        if tree:
            print(json.dumps({"summary": summary, "baseline": args.baseline,
                              "load_avg_1m_end": round(os.getloadavg()[0], 2)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
