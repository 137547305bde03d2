"""``cvlab train``: train a project (Quick or Advanced) and print the new iteration's performance."""
from __future__ import annotations

from cvlab.performance import get_iteration_performance
from cvlab.training import recover_interrupted, train_project
from cvlab.workspace import open_workspace


def configure(parser) -> None:
    """The arguments of ``cvlab train``."""
    parser.add_argument("--workspace", "-w", default=None, help="workspace folder (default $CVLAB_WORKSPACE or "
                                                                "./workspace)")
    parser.add_argument("--project", "-p", required=True, help="project name or id")
    parser.add_argument("--advanced", action="store_true", help="Advanced training (fine-tuning) instead of Quick")
    parser.add_argument("--budget", type=int, default=1, help="reserved budget in hours for --advanced "
                                                              "(1 h = CVLAB_SECONDS_PER_BUDGET_HOUR s, default 60)")
    parser.add_argument("--force", action="store_true", help="train even if nothing changed")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--holdout", nargs="*", default=None, help="image ids to keep out of training")


def run(args) -> int:
    """Train the project and print the new iteration's performance."""
    ws = open_workspace(args.workspace)
    project = ws.resolve_project(args.project)
    recover_interrupted(ws)
    it = train_project(ws, project.id, "Advanced" if args.advanced else "Regular",
                       reserved_budget_in_hours=args.budget if args.advanced else 0, force_train=args.force,
                       seed=args.seed, holdout=args.holdout)
    print(f"{it.name} ({it.id}): {it.status}" + (f" - {it.training_error_details}"
                                                   if it.training_error_details else ""))
    if it.status != "Completed":
        return 1
    perf = get_iteration_performance(ws, project.id, it.id)
    print(f"precision {perf.precision:.3f}  recall {perf.recall:.3f}  AP/mAP {perf.average_precision:.3f} "
          "(threshold 0.5)")
    for tp in perf.per_tag_performance:
        print(f"  {tp.name:20s} precision {tp.precision:.3f}  recall {tp.recall:.3f}  AP {tp.average_precision:.3f}")
    return 0
