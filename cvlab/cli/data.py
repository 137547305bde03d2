"""`cvlab data`: list and generate datasets, convert between formats, import into / export from a workspace.

    cvlab data list
    cvlab data make parts --out DIR [--count 200 --seed 0 --size 320 --format folder]
    cvlab data convert SRC --out DIR --format yolo [--from coco]
    cvlab data import DIR_OR_ZIP --project NAME [--workspace W --format coco --domain "General (compact)"]
    cvlab data export --project NAME --out DIR [--format voc]
    cvlab data seed [--workspace W]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from cvlab.datasets import DATA_DIR, REGISTRY, formats, importing, info, iter_generate
from cvlab.datasets.samples import seed_samples
from cvlab.errors import CvlabError
from cvlab.workspace import open_workspace


def configure(parser: argparse.ArgumentParser) -> None:
    """The arguments of ``cvlab data``."""
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    sub.add_parser("list", help="list the synthetic datasets")

    mk = sub.add_parser("make", help="generate a synthetic dataset into a folder")
    mk.add_argument("name", choices=list(REGISTRY))
    mk.add_argument("--out", required=True, type=Path, help="output folder (created; must be empty if it exists)")
    mk.add_argument("--count", type=int, default=200, help="number of images (default 200)")
    mk.add_argument("--seed", type=int, default=0, help="random seed (same seed, same images)")
    mk.add_argument("--size", type=int, default=None, help="image side in pixels (default 320)")
    mk.add_argument("--format", choices=formats.FORMATS, default=None,
                    help="folder (classification default), coco (detection default), voc, yolo, cvjson")

    cv = sub.add_parser("convert", help="convert a labelled folder between formats")
    cv.add_argument("src", type=Path)
    cv.add_argument("--out", required=True, type=Path)
    cv.add_argument("--format", required=True, choices=formats.FORMATS)
    cv.add_argument("--from", dest="source_format", choices=formats.FORMATS, default=None,
                    help="the source's format (detected when omitted)")

    for name, helptext in (("import", "import a labelled folder or .zip into a workspace project"),
                           ("export", "write a workspace project's images and labels to a folder"),
                           ("seed", "create the sample projects from data/ (if missing)")):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("--workspace", default=None, help="workspace folder (default: $CVLAB_WORKSPACE or ./workspace)")
        if name == "import":
            p.add_argument("src", type=Path, help="folder or .zip")
            p.add_argument("--project", default=None, help="project name (created if missing; default: folder name)")
            p.add_argument("--format", choices=formats.FORMATS, default=None, help="detected when omitted")
            p.add_argument("--domain", default=None, help="domain name or id for a new project "
                           "(default: General (compact) / General (compact) [S1])")
            p.add_argument("--classification-type", choices=("Multiclass", "Multilabel"), default=None)
        elif name == "export":
            p.add_argument("--project", required=True, help="project name or id")
            p.add_argument("--out", required=True, type=Path)
            p.add_argument("--format", choices=formats.FORMATS, default=None,
                           help="default: folder (classification) or coco (detection)")


def _empty_out(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise CvlabError("BadRequest", f"{out} exists and is not an empty folder: choose a new --out "
                         "(nothing is overwritten)")


def run(args) -> int:
    if args.action == "list":
        for name, entry in REGISTRY.items():
            i = entry.info
            print(f"{name:<18} {i.project_type:<15} {i.classification_type:<10} tags: {', '.join(i.tags)}")
            print(f"{'':<18} {i.description}")
        return 0
    if args.action == "make":
        meta = info(args.name)
        fmt = args.format or ("folder" if meta.project_type == "Classification" else "coco")
        if (meta.project_type == "Classification") != (fmt in ("folder", "cvjson")):
            fits = "folder or cvjson" if meta.project_type == "Classification" else "coco, voc, yolo or cvjson"
            raise CvlabError("BadRequest", f"{args.name} is {meta.project_type}: write it as {fits}")
        _empty_out(args.out)
        t0 = time.perf_counter()
        records = iter_generate(args.name, args.count, args.seed, args.size)
        from tqdm.auto import tqdm

        records = tqdm(records, total=args.count, desc=f"make {args.name}", unit="img", file=sys.stderr)
        formats.write(records, args.out, fmt, tags=list(meta.tags),
                      project_type=meta.project_type, classification_type=meta.classification_type,
                      negative_tags=["Negative"] if meta.project_type == "Classification" else [])
        print(json.dumps({"dataset": args.name, "out": str(args.out), "format": fmt, "count": args.count,
                          "seed": args.seed, "seconds": round(time.perf_counter() - t0, 2)}))
        return 0
    if args.action == "convert":
        _empty_out(args.out)
        labeled = formats.read(args.src, args.source_format)
        formats.write(labeled.records, args.out, args.format, tags=labeled.tags, project_type=labeled.project_type,
                      classification_type=labeled.classification_type, negative_tags=labeled.negative_tags)
        print(json.dumps({"from": labeled.format, "to": args.format, "images": len(labeled.records),
                          "tags": labeled.tags, "out": str(args.out)}))
        return 0

    ws = open_workspace(args.workspace)
    if args.action == "seed":
        print(json.dumps(seed_samples(ws, DATA_DIR), indent=1))
        return 0
    if args.action == "import":
        report = importing.import_path(ws, args.src, project=args.project, format=args.format, domain=args.domain,
                                       classification_type=args.classification_type, progress=True)
        print(report)
        return 0 if not report.failed else 1
    if args.action == "export":
        p = ws.resolve_project(args.project)
        _empty_out(args.out)
        out = importing.export_project(ws, p.id, args.out, args.format)
        print(json.dumps({"project": p.name, "out": str(out), "images": ws.get_image_count(p.id)}))
        return 0
    raise CvlabError("BadRequest", f"unknown action {args.action!r}")
