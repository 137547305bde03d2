"""Real-photo benchmark on Microsoft Learn's fruit photos (``data/mslearn-fruit``, MIT), one JSON object.

    .venv/bin/python benchmarks/real_photos.py                       # every enabled domain, Quick and Advanced
    .venv/bin/python benchmarks/real_photos.py --domains "General,General (compact)" --types Regular
    .venv/bin/python benchmarks/real_photos.py --detection-only

Classification (the "Classify images" lab), for each domain and training type, in a fresh workspace:
- trained on the lab's 45 training photos (15 apple, banana, orange); training time is the wall time of
  ``train_project`` from an empty embedding cache;
- ``test``: the three lab test photos (IMG_TEST_1/2/3 = apple, banana, orange) and ``more``: the six "more
  training images", predicted through ``Predictor`` (what the endpoint uses), never trained on: top tag and
  probability of the right tag;
- ``derived``: photos made from those nine held-out photos to probe generalisation (below), accuracy and mean
  probability of the right tag per kind; ``new_background_accuracy`` pools the plain and textured composites;
- ``loo``: leave-one-out over the 45 training photos for Quick (45 trainings, each with one photo as holdout);
  Advanced costs a fine-tuning per fold, so it runs ``--advanced-folds`` stratified folds (default 3) instead;
- ``ece``: expected calibration error (10 equal-width bins of the top probability) of the out-of-sample
  predictions (the LOO/fold records), and of the held-out + derived predictions.

Derived photos (all seeded; the foreground mask is the same for every kind):
- mask: the fruit is the saturated part of a photo taken on a white cloth: HSV saturation > 0.25 on a 256 px
  copy, morphological closing (3 px), holes filled, largest connected component, upsampled bilinearly to full
  size and feathered by a 2 px Gaussian blur (``fruit_mask``); shadows (unsaturated) stay out of the mask;
- ``plain-grey`` (128,128,128), ``plain-black`` (28,28,28), ``plain-blue`` (60,95,165): fruit composited with
  the mask onto a flat colour;
- ``texture-wood``, ``texture-concrete``, ``texture-cardboard``: onto cvlab's ``parts`` backgrounds of that name
  (``cvlab.datasets.parts``), seed = 1000 * kind + photo; ``texture-foliage``: onto green fractal noise (leaves,
  as in the public plant sample where cvlab failed);
- ``crop-tight``: the mask's bounding box padded by 10 % of its size; ``crop-offcentre``: a window of 60 % of
  each side that contains the fruit's centre, placed at a seeded position;
- ``scale-half``: the photo shrunk to half size, centred on a canvas of its own median border colour;
- ``light-dark`` (brightness x0.5), ``light-bright`` (brightness x1.35, contrast x1.1), ``light-warm``
  (red x1.12, blue x0.78: tungsten light).

Detection (the "Detect objects" lab): the 23 tagged photos of ``tagged-images.json`` (33 boxes) reach only 9
apple images, below Azure's 15 per tag; the lab's learner tags ``training-images/image1..10`` by hand. The
benchmark instead adds the 45 classification training photos with one box each, the bounding box of
``fruit_mask``. A seeded split holds 6 of the 23 tagged photos out (leave-some-out): mAP@0.5 on them, and the
fruits found in ``produce.jpg`` and ``IMG_TEST_OBJECTS.jpg`` (probability >= ``--min-probability``) by the
same model.

The machine is shared: ``load_avg_1m`` is recorded with each training's time.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance

ROOT = Path(__file__).resolve().parents[1]
FRUIT = ROOT / "data" / "mslearn-fruit"
TAGS = ("apple", "banana", "orange")
TEST_TRUTH = {"IMG_TEST_1.jpg": "apple", "IMG_TEST_2.jpg": "banana", "IMG_TEST_3.jpg": "orange"}
PLAIN = {"plain-grey": (128, 128, 128), "plain-black": (28, 28, 28), "plain-blue": (60, 95, 165)}
TEXTURES = {"texture-wood": "_bg_wood", "texture-concrete": "_bg_concrete", "texture-cardboard": "_bg_cardboard",
            "texture-foliage": None}
DERIVED_KINDS = (list(PLAIN) + list(TEXTURES) + ["crop-tight", "crop-offcentre", "scale-half", "light-dark",
                                                  "light-bright", "light-warm"])
NEW_BACKGROUND = tuple(k for k in DERIVED_KINDS if k.startswith(("plain-", "texture-")))
DETECTION_HELD_OUT = 6


# ----------------------------------------------------------------------------------------------------------------
# photos
# ----------------------------------------------------------------------------------------------------------------
def training_photos() -> list[tuple[Path, str]]:
    return [(p, t) for t in TAGS for p in sorted((FRUIT / "classification" / "training-images" / t).glob("*.jpg"))]


def heldout_photos() -> list[tuple[str, Path, str]]:
    """(group, path, truth): the three lab test photos, then the six "more training images"."""
    tests = [("test", FRUIT / "classification" / "test-images" / n, t) for n, t in TEST_TRUTH.items()]
    more = [("more", p, t) for t in TAGS
            for p in sorted((FRUIT / "classification" / "more-training-images" / t).glob("*.jpg"))]
    return tests + more


def fruit_mask(img: Image.Image) -> np.ndarray:
    """Soft foreground mask (float32 H x W in 0..1) of a fruit photographed on a white cloth (see module doc)."""
    from scipy import ndimage

    small = img.convert("RGB").resize((256, round(256 * img.height / img.width)), Image.BILINEAR)
    sat = np.asarray(small.convert("HSV"), np.float32)[..., 1] / 255.0
    fg = ndimage.binary_closing(sat > 0.25, structure=np.ones((3, 3)), iterations=1)
    fg = ndimage.binary_fill_holes(fg)
    labels, n = ndimage.label(fg)
    if n > 1:
        sizes = ndimage.sum(fg, labels, range(1, n + 1))
        fg = labels == (1 + int(np.argmax(sizes)))
    big = Image.fromarray((fg * 255).astype(np.uint8), "L").resize(img.size, Image.BILINEAR)
    return np.clip(ndimage.gaussian_filter(np.asarray(big, np.float32) / 255.0, 2.0), 0.0, 1.0)


def mask_box(mask: np.ndarray) -> tuple[float, float, float, float]:
    """Normalised (left, top, width, height) of the mask's confident part (> 0.5)."""
    ys, xs = np.nonzero(mask > 0.5)
    h, w = mask.shape
    return xs.min() / w, ys.min() / h, (xs.max() + 1 - xs.min()) / w, (ys.max() + 1 - ys.min()) / h


def _texture(kind: str, seed: int, w: int, h: int) -> np.ndarray:
    from cvlab.datasets import parts, texture

    rng = np.random.default_rng(seed)
    n = max(w, h)
    if TEXTURES[kind] is None:  # foliage: dark and light greens in fractal blotches
        f = texture.fractal_noise(rng, n, base=6, octaves=5)[..., None]
        dark, light = np.array([0.10, 0.25, 0.08]), np.array([0.35, 0.62, 0.22])
        arr = dark + (light - dark) * f
    else:
        arr = getattr(parts, TEXTURES[kind])(rng, n)
    return np.clip(np.asarray(arr, np.float32)[:h, :w, :3], 0, 1) * 255.0


def _composite(img: Image.Image, mask: np.ndarray, background: np.ndarray) -> Image.Image:
    fg = np.asarray(img.convert("RGB"), np.float32)
    out = fg * mask[..., None] + background * (1 - mask[..., None])
    return Image.fromarray(np.clip(out + 0.5, 0, 255).astype(np.uint8))


def derive(img: Image.Image, kind: str, seed: int) -> Image.Image:
    """One derived photo of ``kind`` (see the module doc) from a held-out photo; ``seed`` makes it reproducible."""
    img = img.convert("RGB")
    w, h = img.size
    if kind in PLAIN:
        return _composite(img, fruit_mask(img), np.broadcast_to(np.array(PLAIN[kind], np.float32), (h, w, 3)))
    if kind in TEXTURES:
        return _composite(img, fruit_mask(img), _texture(kind, 1000 * DERIVED_KINDS.index(kind) + seed, w, h))
    if kind.startswith("crop-"):
        left, top, bw, bh = (v * s for v, s in zip(mask_box(fruit_mask(img)), (w, h, w, h)))
        if kind == "crop-tight":
            pad_w, pad_h = 0.1 * bw, 0.1 * bh
            box = (max(0, left - pad_w), max(0, top - pad_h), min(w, left + bw + pad_w), min(h, top + bh + pad_h))
        else:
            rng = np.random.default_rng(seed)
            cw, ch = 0.6 * w, 0.6 * h
            cx, cy = left + bw / 2, top + bh / 2
            x0 = float(np.clip(cx - rng.uniform(0.2, 0.8) * cw, 0, w - cw))
            y0 = float(np.clip(cy - rng.uniform(0.2, 0.8) * ch, 0, h - ch))
            box = (x0, y0, x0 + cw, y0 + ch)
        return img.crop(tuple(round(v) for v in box))
    if kind == "scale-half":
        arr = np.asarray(img)
        border = np.concatenate([arr[0], arr[-1], arr[:, 0], arr[:, -1]])
        canvas = Image.new("RGB", (w, h), tuple(int(v) for v in np.median(border, axis=0)))
        canvas.paste(img.resize((w // 2, h // 2), Image.BILINEAR), (w // 4, h // 4))
        return canvas
    if kind == "light-dark":
        return ImageEnhance.Brightness(img).enhance(0.5)
    if kind == "light-bright":
        return ImageEnhance.Contrast(ImageEnhance.Brightness(img).enhance(1.35)).enhance(1.1)
    if kind == "light-warm":
        r, g, b = img.split()
        return Image.merge("RGB", (r.point(lambda v: min(255, round(v * 1.12))), g,
                                   b.point(lambda v: round(v * 0.78))))
    raise ValueError(f"unknown derived kind {kind!r}")


def derived_photos() -> list[tuple[str, str, str, bytes]]:
    """(kind, name, truth, JPEG bytes) for every derived kind of every held-out photo."""
    out = []
    for i, (_, path, truth) in enumerate(heldout_photos()):
        img = Image.open(path).convert("RGB")
        for kind in DERIVED_KINDS:
            buf = io.BytesIO()
            derive(img, kind, seed=i).save(buf, "JPEG", quality=92)
            out.append((kind, f"{path.stem}-{kind}.jpg", truth, buf.getvalue()))
    return out


# ----------------------------------------------------------------------------------------------------------------
# metrics
# ----------------------------------------------------------------------------------------------------------------
def ece(confidences, correct, bins: int = 10) -> float | None:
    """Expected calibration error of top-1 predictions: sum over equal-width bins of |accuracy - confidence|
    weighted by the bin's share of predictions."""
    c, ok = np.asarray(confidences, float), np.asarray(correct, float)
    if not len(c):
        return None
    edges = np.linspace(0, 1, bins + 1)
    total = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = (c > lo) & (c <= hi) if lo > 0 else (c >= lo) & (c <= hi)
        if sel.any():
            total += sel.mean() * abs(ok[sel].mean() - c[sel].mean())
    return round(float(total), 4)


def _by_name(predictions) -> dict[str, float]:
    return {p["tag_name"]: float(p["probability"]) for p in predictions}


def _row(name, truth, probs: dict) -> dict:
    top = max(probs, key=probs.get)
    return {"photo": name, "truth": truth, "top": top, "p_top": round(probs[top], 4),
            "p_truth": round(probs.get(truth, 0.0), 4), "correct": top == truth}


def _summary(rows) -> dict:
    return {"accuracy": round(float(np.mean([r["correct"] for r in rows])), 4) if rows else None,
            "min_p_truth": round(min(r["p_truth"] for r in rows), 4) if rows else None,
            "mean_p_truth": round(float(np.mean([r["p_truth"] for r in rows])), 4) if rows else None}


def _create(ws, project_id, entries) -> list:
    """create_images in batches of 64 (Azure's limit); the created Image records in input order."""
    out = []
    for i in range(0, len(entries), 64):
        summary = ws.create_images(project_id, entries[i:i + 64])
        assert summary.is_batch_successful, summary
        out += [r.image for r in summary.images]
    return out


def _load() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


# ----------------------------------------------------------------------------------------------------------------
# classification
# ----------------------------------------------------------------------------------------------------------------
def _train(ws, project_id, training_type, budget, holdout=None, seed=0):
    from cvlab import training

    t0 = time.perf_counter()
    it = training.train_project(ws, project_id, training_type=training_type,
                                reserved_budget_in_hours=budget if training_type == "Advanced" else 0,
                                force_train=True, seed=seed, holdout=holdout, show_progress=False)
    return it, time.perf_counter() - t0


def _holdout_rows(ws, iteration_id, names: dict) -> list[dict]:
    ev = json.loads((Path(ws.iteration_dir(iteration_id)) / "evaluation.json").read_text())
    tag_name = {t["id"]: t["name"] for t in ev["tags"]}
    rows = []
    for r in ev["records"]:
        if r["split"] == "holdout":
            probs = {tag_name[p["tag_id"]]: p["probability"] for p in r["predictions"]}
            rows.append(_row(names[r["image_id"]], tag_name[r["truth"]["tag_ids"][0]], probs))
    return rows


def classification(domain_name: str, training_type: str, budget: int, advanced_folds: int, loo: bool,
                   derived, seed: int = 0) -> dict:
    import cvlab
    from cvlab.domains import find_domain
    from cvlab.predict import Predictor

    domain = find_domain(domain_name, "Classification")
    with tempfile.TemporaryDirectory(prefix="cvlab-fruit-") as tmp:
        ws = cvlab.Workspace(Path(tmp) / "ws")
        p = ws.create_project(f"fruit {domain.name}", domain_id=domain.id, classification_type="Multiclass")
        tags = {t: ws.create_tag(p.id, t) for t in TAGS}
        from cvlab.workspace import ImageEntry

        entries = [ImageEntry(data=path.read_bytes(), name=path.name, tag_ids=(tags[t].id,))
                   for path, t in training_photos()]
        created = _create(ws, p.id, entries)
        ids = [im.id for im in created]
        names = {im.id: e.name for im, e in zip(created, entries)}
        truth_of = {im.id: t for im, (_, t) in zip(created, training_photos())}
        load = _load()
        it, wall = _train(ws, p.id, training_type, budget, seed=seed)
        out = {"domain": domain.name, "domain_id": domain.id, "training_type": training_type,
               "status": it.status, "error": it.training_error_details, "train_s": round(wall, 1),
               "load_avg_1m": load}
        if training_type == "Advanced":
            out["budget_hours"] = budget
        if it.status != "Completed":
            return out
        info = json.loads((Path(ws.iteration_dir(it.id)) / "iteration.json").read_text())
        out["backbone"] = info.get("backbone")
        out["recipe"] = info.get("recipe")
        out["training_details"] = it.training_error_details or info.get("training_details")
        pred = Predictor.load(ws, it.id)
        held = heldout_photos()
        rows = [_row(path.name, truth, _by_name(o)) for (_, path, truth), o in
                zip(held, pred.predict_batch([path.read_bytes() for _, path, _ in held]))]
        out["test"] = rows[:3]
        out["test_summary"] = _summary(rows[:3])
        out["more"] = rows[3:]
        out["more_summary"] = _summary(rows[3:])
        drows = []
        for start in range(0, len(derived), 16):
            chunk = derived[start:start + 16]
            for (kind, name, truth, data), o in zip(chunk, pred.predict_batch([d[3] for d in chunk])):
                drows.append(dict(_row(name, truth, _by_name(o)), kind=kind))
        out["derived"] = {k: _summary([r for r in drows if r["kind"] == k]) for k in DERIVED_KINDS}
        out["new_background_accuracy"] = _summary([r for r in drows if r["kind"] in NEW_BACKGROUND])["accuracy"]
        out["derived_accuracy"] = _summary(drows)["accuracy"]
        out["derived_wrong"] = [r["photo"] for r in drows if not r["correct"]]
        heldout_all = rows + drows
        out["ece_heldout_and_derived"] = ece([r["p_top"] for r in heldout_all], [r["correct"] for r in heldout_all])
        Predictor.clear_cache()
        ws.delete_iteration(p.id, it.id)
        # out-of-sample predictions on the training photos
        if training_type == "Regular" and loo:
            folds, scheme = [[i] for i in ids], "leave-one-out (45 trainings)"
        elif training_type == "Advanced" and advanced_folds > 1:
            from sklearn.model_selection import StratifiedKFold

            y = [truth_of[i] for i in ids]
            folds = [[ids[j] for j in te] for _, te in
                     StratifiedKFold(advanced_folds, shuffle=True, random_state=seed).split(ids, y)]
            scheme = f"{advanced_folds}-fold stratified (a fine-tuning per fold; LOO would take 45)"
        else:
            folds, scheme = [], None
        oos, fold_s = [], []
        for fold in folds:
            fit, s = _train(ws, p.id, training_type, budget, holdout=fold, seed=seed)
            fold_s.append(s)
            if fit.status == "Completed":
                oos += _holdout_rows(ws, fit.id, names)
            ws.delete_iteration(p.id, fit.id)
        if folds:
            out["loo"] = {"scheme": scheme, "accuracy": _summary(oos)["accuracy"], "images": len(oos),
                          "wrong": [r["photo"] for r in oos if not r["correct"]],
                          "min_p_truth": _summary(oos)["min_p_truth"],
                          "median_fold_train_s": round(float(np.median(fold_s)), 2)}
            out["ece_loo"] = ece([r["p_top"] for r in oos], [r["correct"] for r in oos])
        return out


# ----------------------------------------------------------------------------------------------------------------
# detection
# ----------------------------------------------------------------------------------------------------------------
def detection_records():
    """(name, bytes, regions [(tag, l, t, w, h)], group): the tagged photos, then the single-fruit photos."""
    doc = json.loads((FRUIT / "detection" / "tagged-images" / "tagged-images.json").read_text())
    out = []
    for f in doc["files"]:
        path = FRUIT / "detection" / "tagged-images" / f["filename"]
        out.append((f["filename"], path.read_bytes(),
                    [(t["tag"], t["left"], t["top"], t["width"], t["height"]) for t in f["tags"]], "tagged"))
    for path, tag in training_photos():
        out.append((path.name, path.read_bytes(), [(tag, *mask_box(fruit_mask(Image.open(path))))], "single"))
    return out


def detection(domain_name: str, training_type: str, budget: int, min_probability: float, seed: int = 0) -> dict:
    import cvlab
    from cvlab.domains import find_domain
    from cvlab.performance import get_iteration_performance
    from cvlab.predict import Predictor
    from cvlab.workspace import ImageEntry

    domain = find_domain(domain_name, "ObjectDetection")
    records = detection_records()
    tagged = [i for i, r in enumerate(records) if r[3] == "tagged"]
    held = set(np.random.default_rng(seed).choice(tagged, DETECTION_HELD_OUT, replace=False).tolist())
    with tempfile.TemporaryDirectory(prefix="cvlab-fruit-od-") as tmp:
        ws = cvlab.Workspace(Path(tmp) / "ws")
        p = ws.create_project(f"fruit od {domain.name}", domain_id=domain.id)
        tags = {t: ws.create_tag(p.id, t) for t in TAGS}
        entries = [ImageEntry(data=data, name=name, regions=[
            {"tag_id": tags[t].id, "left": l, "top": tp, "width": w, "height": h} for t, l, tp, w, h in regions])
            for name, data, regions, _ in records]
        created = _create(ws, p.id, entries)
        holdout = [created[i].id for i in sorted(held)]
        load = _load()
        it, wall = _train(ws, p.id, training_type, budget, holdout=holdout, seed=seed)
        out = {"domain": domain.name, "domain_id": domain.id, "training_type": training_type, "status": it.status,
               "error": it.training_error_details, "train_s": round(wall, 1), "load_avg_1m": load,
               "train_images": len(records) - len(holdout), "heldout_images": [records[i][0] for i in sorted(held)]}
        if it.status != "Completed":
            return out
        perf = get_iteration_performance(ws, p.id, it.id, split="holdout", overlap_threshold=0.5)
        fmt = lambda v: None if v is None or str(v) == "n/a" else round(float(v), 4)  # noqa: E731
        out["heldout_mAP@0.5"] = fmt(perf.average_precision)
        out["heldout_per_tag_AP"] = {t.name: fmt(t.average_precision) for t in perf.per_tag_performance}
        info = json.loads((Path(ws.iteration_dir(it.id)) / "iteration.json").read_text())
        fit = info.get("fit", {})
        out["fit"] = {k: fit.get(k) for k in ("mode", "epochs", "seconds", "kept", "validation_mAP")}
        for part in ("quick", "advanced"):
            if isinstance(fit.get(part), dict):
                out["fit"][part] = {k: fit[part].get(k) for k in ("epochs", "seconds", "stopped_by_time_budget")}
        out["training_details"] = info.get("training_details")
        pred = Predictor.load(ws, it.id)
        for name in ("produce.jpg", "IMG_TEST_OBJECTS.jpg"):
            found = pred.predict((FRUIT / "detection" / name).read_bytes())
            out[name] = [{"tag": d["tag_name"], "probability": round(d["probability"], 3),
                          "box": [round(d["bounding_box"][k], 3) for k in ("left", "top", "width", "height")]}
                         for d in found if d["probability"] >= min_probability]
        Predictor.clear_cache()
        return out


# ----------------------------------------------------------------------------------------------------------------
def _write(path, result) -> None:
    """The result so far (a long run that stops still leaves its finished rows)."""
    if path:
        Path(path).write_text(json.dumps(result, indent=1) + "\n")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--domains", default=None, help="comma-separated classification domain names (default: every "
                                                    "enabled one)")
    ap.add_argument("--detection-domains", default="General,General (compact)")
    ap.add_argument("--types", default="Regular,Advanced", help="training types: Regular (Quick), Advanced")
    ap.add_argument("--budget", type=int, default=1, help="Advanced budget in hours")
    ap.add_argument("--seconds-per-budget-hour", type=float, default=None,
                    help="sets CVLAB_SECONDS_PER_BUDGET_HOUR for this run (default: cvlab's, 60 s)")
    ap.add_argument("--advanced-folds", type=int, default=3, help="folds for Advanced's out-of-sample accuracy "
                                                                  "(0: skip)")
    ap.add_argument("--no-loo", action="store_true", help="skip Quick's leave-one-out (45 trainings per domain)")
    ap.add_argument("--detection-only", action="store_true")
    ap.add_argument("--no-detection", action="store_true")
    ap.add_argument("--min-probability", type=float, default=0.5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None, help="also write the JSON to this file")
    args = ap.parse_args()
    if args.seconds_per_budget_hour is not None:
        os.environ["CVLAB_SECONDS_PER_BUDGET_HOUR"] = str(args.seconds_per_budget_hour)
    from cvlab.domains import get_domains
    from train import seconds_per_budget_hour  # benchmarks/train.py, beside this file

    types = [t.strip() for t in args.types.split(",") if t.strip()]
    names = ([n.strip() for n in args.domains.split(",")] if args.domains else
             [d.name for d in get_domains() if d.type == "Classification" and d.enabled])
    result = {"benchmark": "real_photos", "seconds_per_budget_hour": seconds_per_budget_hour(),
              "derived_kinds": list(DERIVED_KINDS), "classification": [], "detection": []}
    if not args.detection_only:
        derived = derived_photos()
        for name in names:
            for t in types:
                row = classification(name, t, args.budget, args.advanced_folds, not args.no_loo, derived, args.seed)
                print(json.dumps({k: row.get(k) for k in ("domain", "training_type", "status", "train_s",
                                                          "test_summary", "new_background_accuracy", "loo")}),
                      file=sys.stderr, flush=True)
                result["classification"].append(row)
                _write(args.out, result)
    if not args.no_detection:
        for name in [n.strip() for n in args.detection_domains.split(",") if n.strip()]:
            for t in types:
                row = detection(name, t, args.budget, args.min_probability, args.seed)
                print(json.dumps({k: row.get(k) for k in ("domain", "training_type", "status", "train_s",
                                                          "heldout_mAP@0.5")}), file=sys.stderr, flush=True)
                result["detection"].append(row)
                _write(args.out, result)
    _write(args.out, result)
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
