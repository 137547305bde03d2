"""How fast are the exported models? Prints JSON.

Single-image and batch-16 latency (medians) of one Quick-trained Lite0 classifier (224 px) run by torch eager,
onnxruntime fp32 and TensorFlow Lite (fp32, fp16 weights, int8 weights), with model sizes and the ratios to torch
eager; each flavour's top-tag agreement and largest probability change against torch on 32 held-out images.
(There is no int8 ONNX flavour any more: benchmarks/export_speed.md says why.)

    python benchmarks/export_speed.py [--repeats 30]
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from cvlab import datasets
from cvlab.datasets.importing import import_records
from cvlab.domains import find_domain
from cvlab.export import convert
from cvlab.predict import Predictor
from cvlab.training import train_project
from cvlab.workspace import Workspace


def median_ms(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(times), 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--train-images", type=int, default=60)
    args = parser.parse_args()
    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        ws = Workspace(tmp / "ws")
        project = ws.create_project("speed", domain_id=find_domain("General (compact)", "Classification").id)
        import_records(ws, project.id, datasets.generate("parts", args.train_images, seed=0))
        iteration = train_project(ws, project.id, show_progress=False)
        predictor = Predictor.load(ws, iteration.id, backend="torch")
        module, size = predictor.module.eval(), predictor.preprocessing.size
        held_out = datasets.generate("parts", 32, seed=7)
        pixels = np.stack([predictor.preprocessing.array(r.image.convert("RGB")) for r in held_out])
        one, sixteen = pixels[:1], pixels[:16]

        paths = {"onnx_fp32": convert.to_onnx(module, "Classification", size, ["x"], tmp / "m.onnx")}
        for q in (None, "fp16", "int8"):
            paths[f"tflite_{q or 'fp32'}"] = convert.to_tflite(module, size, tmp / f"m_{q}.tflite", q)

        def eager(batch):
            with torch.inference_mode():
                return module(torch.from_numpy(batch)).numpy()

        runners = {"torch_eager": eager}
        for name, path in paths.items():
            runners[name] = convert.OnnxRunner(path) if name.startswith("onnx") else convert.TFLiteRunner(path)
        reference = eager(pixels)
        report = {"input": f"{size}x{size}", "threads": 2, "repeats": args.repeats, "models": {}}
        for name, run in runners.items():
            out = run(pixels)
            out = out if isinstance(out, np.ndarray) else out[0]
            entry = {
                "single_ms": median_ms(lambda: run(one), args.repeats),
                "batch16_ms": median_ms(lambda: run(sixteen), max(5, args.repeats // 5)),
                "max_probability_diff_vs_torch": float(np.abs(out - reference).max()),
                "top_tag_agreement_vs_torch": float((out.argmax(1) == reference.argmax(1)).mean()),
            }
            if name in paths:
                entry["size_mb"] = round(paths[name].stat().st_size / 1e6, 2)
            report["models"][name] = entry
        base = report["models"]["torch_eager"]
        report["speedup_vs_torch_single"] = {n: round(base["single_ms"] / m["single_ms"], 2)
                                             for n, m in report["models"].items()}
        report["target"] = "onnx_fp32 >= 1.5x faster than torch eager (single image, 224 px, 2 cores)"
        report["target_met"] = report["speedup_vs_torch_single"]["onnx_fp32"] >= 1.5
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
