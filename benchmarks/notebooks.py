"""Time of each curriculum notebook and of each of its cells, executed top to bottom in order on one fresh
workspace, as a learner runs them (default profile `learner`; CI runs `fast`). Prints one JSON object.

    .venv/bin/python benchmarks/notebooks.py [--profile learner|fast] [--only 03 04] [--cells 5]

For every notebook: wall seconds, CPU seconds of the kernel and its children (the machine may be shared, so the
CPU figure is the steadier one), the cells over `--cells` seconds with their first line, and any stderr stream
or warning a cell printed. The learner profile's goal: at most 4 minutes in all, no cell over 60 s
(benchmarks/notebooks.md keeps the measured figures).
Notebooks build on earlier ones' projects, so `--only` still runs the ones before it (untimed) first.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from cvlab.course import execute_lesson, prepare_lessons


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", default="learner", choices=("learner", "fast"))
    ap.add_argument("--only", nargs="*", default=None, help="notebook number prefixes to time (e.g. 03 04)")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds per cell")
    ap.add_argument("--cells", type=float, default=5.0, help="list the cells slower than this many seconds")
    ap.add_argument("--notebooks", type=Path, default=None,
                    help="folder of .ipynb files to run (default: the course's instructor copies, as `cvlab lab "
                         "--version instructor` makes them, so every lesson runs with its solutions)")
    ap.add_argument("--all-cells", action="store_true", help="list every cell, not only the slow ones")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="cvlab-nb-bench-") as tmp:
        folder = args.notebooks or prepare_lessons(Path(tmp) / "ws", "instructor").folder
        notebooks = sorted(folder.glob("[0-9][0-9]-*.ipynb"))
        if args.only:
            last = max(i for i, p in enumerate(notebooks) if p.name[:2] in args.only)
            notebooks = notebooks[:last + 1]
        os.environ.update(CVLAB_PROFILE=args.profile, CVLAB_WORKSPACE=str(Path(tmp) / "ws"), PYTHONHASHSEED="0")
        os.environ.pop("MPLBACKEND", None)  # the kernel's inline backend, as in JupyterLab
        timings = {}
        for path in notebooks:
            result = execute_lesson(path, timeout=args.timeout)
            if not args.all_cells:
                result["cells"] = [c for c in result["cells"]
                                   if c["seconds"] >= args.cells or c["stderr"] or c["warnings"]]
            if not args.only or path.name[:2] in args.only:
                timings[path.stem] = result
            print(f"{path.stem}: {result['seconds']} s wall, {result['cpu_seconds']} s CPU"
                  f"{' ' + result['error'] if result['error'] else ''}", file=sys.stderr, flush=True)
    timed = [r["seconds"] for r in timings.values()]
    cells = [c for r in timings.values() for c in r["cells"]]
    print(json.dumps({"profile": args.profile, "cpu_count": os.cpu_count(),
                      "load_average_at_end": [round(x, 1) for x in os.getloadavg()], "notebooks": timings,
                      "total_seconds": round(sum(timed), 1),
                      "total_cpu_seconds": round(sum(r["cpu_seconds"] for r in timings.values()), 1),
                      "slowest_notebook_seconds": max(timed, default=0.0),
                      "slowest_cell_seconds": max((c["seconds"] for c in cells), default=0.0),
                      "cells_with_stderr": sum(1 for c in cells if c["stderr"]),
                      "cells_with_warnings": sum(1 for c in cells if c["warnings"]),
                      "errors": sum(1 for r in timings.values() if r["error"])}, indent=2))
    return 1 if any(r["error"] for r in timings.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
