"""Wall time of each curriculum notebook, executed top to bottom in order on one fresh workspace, as a learner runs
them (default profile `learner`; CI runs `fast` in tests/test_notebooks.py). Prints one JSON object.

    .venv/bin/python benchmarks/notebooks.py [--profile learner|fast] [--only 03 04]

The learner profile is sized for about 10 minutes per notebook on a 2-core laptop; this is how that is checked.
Notebooks build on earlier ones' projects, so `--only` still runs the ones before it (untimed) first.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

NB_DIR = Path(__file__).resolve().parents[1] / "notebooks"


def run(path: Path, timeout: float) -> dict:
    nb = nbformat.read(path, as_version=4)
    t0 = time.perf_counter()
    error = None
    try:
        NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(NB_DIR)}}).execute()
    except Exception as exc:  # noqa: BLE001 - a failing notebook is a figure too
        error = f"{type(exc).__name__}: {str(exc)[-500:]}"
    return {"seconds": round(time.perf_counter() - t0, 1), "error": error}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", default="learner", choices=("learner", "fast"))
    ap.add_argument("--only", nargs="*", default=None, help="notebook number prefixes to time (e.g. 03 04)")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds per cell")
    args = ap.parse_args(argv)
    notebooks = sorted(NB_DIR.glob("[0-9][0-9]-*.ipynb"))
    if args.only:
        last = max(i for i, p in enumerate(notebooks) if p.name[:2] in args.only)
        notebooks = notebooks[:last + 1]
    with tempfile.TemporaryDirectory(prefix="cvlab-nb-bench-") as tmp:
        os.environ.update(CVLAB_PROFILE=args.profile, CVLAB_WORKSPACE=str(Path(tmp) / "ws"), MPLBACKEND="Agg",
                          PYTHONHASHSEED="0")
        timings = {}
        for path in notebooks:
            result = run(path, args.timeout)
            if not args.only or path.name[:2] in args.only:
                timings[path.stem] = result
            print(f"{path.stem}: {result['seconds']} s{' ' + result['error'] if result['error'] else ''}",
                  file=sys.stderr, flush=True)
    timed = [r["seconds"] for r in timings.values()]
    print(json.dumps({"profile": args.profile, "cpu_count": os.cpu_count(), "notebooks": timings,
                      "total_seconds": round(sum(timed), 1), "slowest_seconds": max(timed, default=0.0),
                      "errors": sum(1 for r in timings.values() if r["error"])}, indent=2))
    return 1 if any(r["error"] for r in timings.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
