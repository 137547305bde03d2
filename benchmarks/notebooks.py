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
import time
from pathlib import Path

import nbformat
import psutil
from nbclient import NotebookClient

NB_DIR = Path(__file__).resolve().parents[1] / "notebooks"


def _cpu_seconds(proc: psutil.Process | None) -> float:
    """User + system CPU of the kernel and every live child (a server a cell starts counts too)."""
    if proc is None:
        return 0.0
    total = 0.0
    try:
        for p in [proc, *proc.children(recursive=True)]:
            t = p.cpu_times()
            total += t.user + t.system + getattr(t, "children_user", 0.0) + getattr(t, "children_system", 0.0)
    except psutil.Error:
        pass
    return total


class TimedClient(NotebookClient):
    """An nbclient that records wall and CPU seconds per cell."""

    def __init__(self, nb, **kw):
        super().__init__(nb, **kw)
        self.cells: list[dict] = []
        self._proc: psutil.Process | None = None
        self._start = (0.0, 0.0)
        self.on_cell_start = self._cell_start
        self.on_cell_executed = self._cell_done

    def _kernel(self) -> psutil.Process | None:
        if self._proc is None:
            try:
                self._proc = psutil.Process(self.km.provisioner.process.pid)
            except Exception:  # noqa: BLE001 - no local kernel process: CPU is not measured
                self._proc = None
        return self._proc

    def _cell_start(self, cell, cell_index):
        self._start = (time.perf_counter(), _cpu_seconds(self._kernel()))

    def _cell_done(self, cell, cell_index, execute_reply):
        wall = time.perf_counter() - self._start[0]
        cpu = _cpu_seconds(self._kernel()) - self._start[1]
        noise = [o.get("text", "")[:300] for o in cell.get("outputs", [])
                 if o.get("output_type") == "stream" and o.get("name") == "stderr"]
        first = next((ln for ln in cell.source.splitlines() if ln.strip() and not ln.startswith("#")), "")
        self.cells.append({"index": cell_index, "id": cell.get("id"), "first_line": first[:90],
                           "seconds": round(wall, 2), "cpu_seconds": round(cpu, 2), "stderr": noise})


def run(path: Path, timeout: float) -> dict:
    nb = nbformat.read(path, as_version=4)
    client = TimedClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}})
    t0, error = time.perf_counter(), None
    try:
        client.execute()
    except Exception as exc:  # noqa: BLE001 - a failing notebook is a figure too
        error = f"{type(exc).__name__}: {str(exc)[-500:]}"
    return {"seconds": round(time.perf_counter() - t0, 1),
            "cpu_seconds": round(sum(c["cpu_seconds"] for c in client.cells), 1),
            "error": error, "cells": client.cells}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", default="learner", choices=("learner", "fast"))
    ap.add_argument("--only", nargs="*", default=None, help="notebook number prefixes to time (e.g. 03 04)")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds per cell")
    ap.add_argument("--cells", type=float, default=5.0, help="list the cells slower than this many seconds")
    ap.add_argument("--notebooks", type=Path, default=NB_DIR, help="folder of the notebooks to run")
    ap.add_argument("--all-cells", action="store_true", help="list every cell, not only the slow ones")
    args = ap.parse_args(argv)
    notebooks = sorted(args.notebooks.glob("[0-9][0-9]-*.ipynb"))
    if args.only:
        last = max(i for i, p in enumerate(notebooks) if p.name[:2] in args.only)
        notebooks = notebooks[:last + 1]
    with tempfile.TemporaryDirectory(prefix="cvlab-nb-bench-") as tmp:
        os.environ.update(CVLAB_PROFILE=args.profile, CVLAB_WORKSPACE=str(Path(tmp) / "ws"), MPLBACKEND="Agg",
                          PYTHONHASHSEED="0")
        timings = {}
        for path in notebooks:
            result = run(path, args.timeout)
            if not args.all_cells:
                result["cells"] = [c for c in result["cells"] if c["seconds"] >= args.cells or c["stderr"]]
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
                      "errors": sum(1 for r in timings.values() if r["error"])}, indent=2))
    return 1 if any(r["error"] for r in timings.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
