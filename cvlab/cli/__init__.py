"""`cvlab` console script: subcommands dispatched lazily to their modules, one per command in this package.

Each command module exposes `configure(parser)` and `run(args) -> int`; it is imported only when its command
runs, so `cvlab --help` is instant and a missing part of the build gives a clear message instead of a traceback.
Nothing in the core imports this package: the commands are a face over the core API, like the REST service.
(`cvlab quiz` lives beside its engine, in `cvlab.quiz.cli`.)
"""
from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS: dict[str, tuple[str, str]] = {
    "lab": ("cvlab.cli.lab", "open the notebook curriculum in JupyterLab on your workspace"),
    "data": ("cvlab.cli.data", "generate sample datasets, import and export labelled data"),
    "train": ("cvlab.cli.train", "train a project (Quick or Advanced) and print its performance"),
    "serve": ("cvlab.cli.serve", "run the local Custom Vision REST endpoint for the Azure SDK"),
    "portal": ("cvlab.cli.portal", "open the local Custom Vision portal (customvision.ai) in your browser"),
    "export": ("cvlab.cli.export", "export an iteration to ONNX, TensorFlow Lite or a Docker app"),
    "quiz": ("cvlab.quiz.cli", "AI-102 practice, spaced review and exam mode in the terminal"),
    "workshop": ("cvlab.cli.workshop", "run a shared endpoint for a classroom"),
    "doctor": ("cvlab.cli.doctor", "check (and repair) a workspace's integrity; prints JSON"),
}


def _top_parser() -> argparse.ArgumentParser:
    from cvlab import __version__
    lines = "\n".join(f"  {name:<9} {help_}" for name, (_, help_) in COMMANDS.items())
    parser = argparse.ArgumentParser(
        prog="cvlab", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Azure Custom Vision, re-created on a laptop.",
        epilog=f"commands:\n{lines}\n\nRun `cvlab COMMAND --help` for a command's options.")
    parser.add_argument("--version", action="version", version=f"cvlab {__version__}")
    parser.add_argument("command", nargs="?", choices=list(COMMANDS), metavar="COMMAND")
    return parser


def load_command(name: str):
    """The module implementing `name`, or None when that part is not in this build."""
    module_name = COMMANDS[name][0]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        # only "the command's own module is absent" means not available; a missing dependency is a real error
        if e.name and (module_name == e.name or module_name.startswith(e.name + ".")):
            return None
        raise
    return module if hasattr(module, "configure") and hasattr(module, "run") else None


def main(argv: list[str] | None = None) -> int:
    from cvlab.errors import CvlabError
    argv = list(sys.argv[1:] if argv is None else argv)
    top = _top_parser()
    if not argv or argv[0].startswith("-"):
        top.parse_args(argv)  # handles --help / --version
        top.print_help()
        return 2
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        top.parse_args([name])  # prints "invalid choice" with the list, exits 2
        return 2
    module = load_command(name)
    if module is None:
        print(f"cvlab {name}: not available yet in this build ({COMMANDS[name][0]} is missing or has no "
              "configure/run). Update cvlab or use another command.", file=sys.stderr)
        return 2
    parser = argparse.ArgumentParser(prog=f"cvlab {name}", description=COMMANDS[name][1])
    module.configure(parser)
    args = parser.parse_args(rest)
    try:
        return int(module.run(args) or 0)
    except CvlabError as e:
        print(f"error {e.code}: {e.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
