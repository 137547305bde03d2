"""``cvlab export``: the Training API's export_iteration from a terminal, writing the zip where you say."""
from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from cvlab.errors import CvlabError
from cvlab.export import export_file, export_iteration
from cvlab.workspace import open_workspace


def configure(parser: argparse.ArgumentParser) -> None:
    """The arguments of ``cvlab export``."""
    parser.add_argument("--workspace", help="workspace folder (default: $CVLAB_WORKSPACE or ./workspace)")
    parser.add_argument("--project", required=True, help="project name or id")
    parser.add_argument("--iteration", help="iteration name or id (default: the most recently trained one)")
    parser.add_argument("--platform", required=True, help="ONNX | TensorFlow | DockerFile")
    parser.add_argument("--flavor", help="e.g. TensorFlowLite, TensorFlowLiteFloat16, TensorFlowLiteInt8, Linux, ARM")
    parser.add_argument("--out", default=".", help="folder to write the zip to")


def run(args: argparse.Namespace) -> int:
    """Export the iteration and copy its zip to ``--out``."""
    ws = open_workspace(args.workspace)
    project = ws.resolve_project(args.project)
    if args.iteration:
        iteration = next((i for i in ws.get_iterations(project.id) if args.iteration in (i.id, i.name)), None)
    else:
        iteration = ws.latest_iteration(project.id)
    if iteration is None:
        raise CvlabError("NotFoundIteration", f"Project '{project.name}' has no such trained iteration; "
                         "train one with `cvlab train` first.")
    flavor = args.flavor or ("TensorFlowLite" if args.platform == "TensorFlow" else None)
    record = export_iteration(ws, project.id, iteration.id, args.platform, flavor)
    if record.status != "Done":
        print(f"Export failed: {record.error}")
        return 1
    token = Path(record.path).stem
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = f"{project.name}.{iteration.name}.{args.platform}{'.' + flavor if flavor else ''}.zip".replace(" ", "_")
    shutil.copyfile(export_file(ws, token), out / name)
    print(f"Exported {project.name} / {iteration.name} as {args.platform} {flavor or ''} -> {out / name}")
    return 0
