"""Throughput of the synthetic generators and of ingesting JPEGs into a fresh Workspace; prints JSON.

    .venv/bin/python benchmarks/ingest.py [--repeats 3] [--gen-count 40] [--ingest-count 500]

Targets (issue 2): generation >= 20 images/s at 320-512 px on 2 cores; ingest >= 100 images/s of 640 px
JPEGs through ``ws.create_images`` (batches of 64). Each figure is the median of ``--repeats`` runs; both
wall-clock and CPU-time rates are given, since the machine is shared (CPU time is what the code costs).
"""
from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cvlab import domains  # noqa: E402
from cvlab.datasets import REGISTRY, importing, iter_generate  # noqa: E402
from cvlab.datasets.records import Record  # noqa: E402
from cvlab.workspace import Workspace  # noqa: E402


def _timed(fn) -> tuple[float, float]:
    w, c = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w, time.process_time() - c


def _rates(runs: list[tuple[float, float]], n: int) -> dict:
    return {"images_per_s": round(n / statistics.median(w for w, _ in runs), 1),
            "images_per_cpu_s": round(n / statistics.median(c for _, c in runs), 1),
            "runs_wall_s": [round(w, 3) for w, _ in runs]}


def bench_generate(count: int, repeats: int, sizes=(320, 512)) -> dict:
    out = {}
    for name in REGISTRY:
        for size in sizes:
            runs = [_timed(lambda s=seed: list(iter_generate(name, count, seed=s, size=size)))
                    for seed in range(repeats)]
            out[f"{name}@{size}"] = _rates(runs, count)
    return out


def bench_ingest(count: int, repeats: int, size: int = 640) -> dict:
    with tempfile.TemporaryDirectory(prefix="cvlab-bench-") as tmp:
        tmp = Path(tmp)
        records = []
        t0 = time.perf_counter()
        for rec in iter_generate("site", count, seed=123, size=size):
            p = tmp / rec.name
            buf = io.BytesIO()
            rec.image.save(buf, "JPEG", quality=90)
            p.write_bytes(buf.getvalue())
            records.append(Record(rec.name, path=p, regions=rec.regions))
        prep = time.perf_counter() - t0
        mean_kb = sum(r.path.stat().st_size for r in records) / len(records) / 1024
        runs = []
        for k in range(repeats):
            ws = Workspace(tmp / f"ws{k}")
            project = ws.create_project(f"bench{k}", domain_id=domains.find_domain(
                "General (compact) [S1]", "ObjectDetection").id)
            report = None

            def run():
                nonlocal report
                report = importing.import_records(ws, project.id, records)

            runs.append(_timed(run))
            assert report.created == count and not report.failed, report
            ws.close()
        out = _rates(runs, count)
        out.update({"count": count, "size": size, "mean_jpeg_kb": round(mean_kb, 1),
                    "batch": 64, "prepare_s": round(prep, 1)})
        return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--gen-count", type=int, default=40)
    ap.add_argument("--ingest-count", type=int, default=500)
    args = ap.parse_args(argv)
    result = {"cpus": os.cpu_count(), "load_average_1m": round(os.getloadavg()[0], 2),
              "generate": bench_generate(args.gen_count, args.repeats),
              "ingest_640px_jpeg": bench_ingest(args.ingest_count, args.repeats)}
    result["load_average_1m_after"] = round(os.getloadavg()[0], 2)
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
