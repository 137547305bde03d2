"""``cvlab doctor``: check a workspace's integrity (database vs. image store), and every workshop seat's."""
from __future__ import annotations

import json
from pathlib import Path

from cvlab.workshop import SEATS_DIR
from cvlab.workspace import DB_NAME, Workspace, default_workspace_path


def configure(parser) -> None:
    """The arguments of ``cvlab doctor``."""
    parser.description = "Check a workspace's integrity (database vs. image store) and print a JSON report."
    parser.add_argument("--workspace", default=None, help="workspace folder (default: $CVLAB_WORKSPACE or ./workspace)")
    parser.add_argument("--repair", action="store_true",
                        help="remove orphan blobs, leftover temp files and stored predictions whose image was lost")
    parser.add_argument("--no-hashes", action="store_true", help="skip re-hashing every blob (faster)")


def _check_folder(path: Path, args) -> dict:
    ws = Workspace(path, create=False)
    try:
        return ws.check(repair=args.repair, verify_hashes=not args.no_hashes)
    finally:
        ws.close()


def run(args) -> int:
    """Check the workspace and, in workshop mode, every learner seat's workspace under it (``seats``)."""
    path = Path(args.workspace) if args.workspace else default_workspace_path()
    report = _check_folder(path, args)
    seats = sorted(p for p in (path / SEATS_DIR).glob("*") if (p / DB_NAME).is_file())
    if seats:
        report["seats"] = {p.name: _check_folder(p, args) for p in seats}
        report["ok"] = report["ok"] and all(r["ok"] for r in report["seats"].values())
    print(json.dumps(report, indent=2, default=str))
    return 0 if report["ok"] else 1
