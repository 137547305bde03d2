"""Notebook widgets: tagger, box labeler, quick test, iteration comparison, threshold explorer, quizzes.

Modules are named apart from the functions (tagging.tagger, boxes.box_labeler) so a submodule import never
shadows a function. Imported lazily (``cvlab.widgets.tagger`` pulls in ipywidgets only when first used), so `import cvlab` stays
light and a notebook calls one line: ``project.tagger()``, ``project.box_labeler()``, ``quick_test(project)``.
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "tagger": "tagging", "Tagger": "tagging",
    "box_labeler": "boxes", "BoxLabeler": "boxes",
    "quick_test": "quicktest", "QuickTest": "quicktest",
    "compare_iterations": "comparison", "IterationComparison": "comparison",
    "KeyShortcuts": "keys",
    "ThresholdExplorer": "explorer",
    "quiz_cell": "quiz", "QuizCell": "quiz", "QuizSession": "quiz", "CaseStudyCell": "quiz", "ExamWidget": "quiz",
    "review_cell": "quiz", "progress_view": "quiz",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
