"""Questions about the learner's own run read the very number the notebook displayed.

The contract (quizzes/facts.yaml lists every fact, its unit and the notebook cell that shows it):

- a numeric question names the facts it needs (``facts: [precision_at_50]``) and computes its answer from them
  (``compute: precision_at_50``), so the expected answer is never written into the bank;
- the notebook passes the number it has just shown, unchanged: ``cv.quiz("eval-14", facts={"precision_at_50":
  perf.precision})``; the value is checked (finite, a fraction in 0..1 or a whole count) and stored with the answer,
  so an instructor sees the number the learner was shown;
- a question whose fact was not passed is not asked: the cell says which fact is missing, never the answer.

``run_context(ws)`` is the pre-contract fallback: it recomputes the facts from the workspace's latest iterations,
which is exactly how a notebook showing one iteration and a quiz reading another disagreed (issue 17). It stays
until the notebooks pass their facts (issue 18), then goes.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Iterator

from cvlab.errors import CvlabError

from .bank import Question, facts_registry

PARTS, SITE = "parts-quality", "site-safety"


class RunFacts(Mapping):
    """Facts computed from the workspace on access (legacy; see the module docstring)."""

    def __init__(self, ws):
        self.ws = ws

    def _latest(self, project_name: str):
        project = self.ws.find_project(project_name)
        if project is None:
            raise CvlabError("NotFoundProject", f"no project named {project_name!r} yet: run the notebook that "
                             "creates it first")
        iteration = project.latest_iteration()
        if iteration is None:
            raise CvlabError("NotFoundIteration", f"project {project_name!r} has no completed iteration: train it "
                             "first (notebook 03)")
        return project, iteration

    def _metric(self, project_name: str, metric: str, threshold=0.5, overlap=0.5, tag: str | None = None) -> float:
        from cvlab.metrics import is_defined
        from cvlab.performance import get_iteration_performance

        project, iteration = self._latest(project_name)
        perf = get_iteration_performance(self.ws, project.id, iteration.id, threshold=threshold,
                                         overlap_threshold=overlap)
        if tag is not None:
            perf = next((t for t in perf.per_tag_performance if t.name == tag), None)
            if perf is None:
                raise CvlabError("NotFoundTag", f"project {project_name!r} has no tag {tag!r} in its latest iteration")
        value = getattr(perf, metric)
        if not is_defined(value):
            raise CvlabError("NotFoundIterationPerformance", f"{metric} is not reported for {project_name!r}")
        return float(value)

    def _iterations(self, project_name: str) -> float:
        project = self.ws.find_project(project_name)
        if project is None:
            raise CvlabError("NotFoundProject", f"no project named {project_name!r} yet")
        return float(len(self.ws.get_iterations(project.id)))

    def __getitem__(self, name: str) -> float:
        compute = {
            "precision_at_50": lambda: self._metric(PARTS, "precision"),
            "recall_at_50": lambda: self._metric(PARTS, "recall"),
            "helmet_recall_at_70": lambda: self._metric(SITE, "recall", threshold=0.7, tag="helmet"),
            "map_at_50": lambda: self._metric(SITE, "average_precision"),
            "parts_iterations": lambda: self._iterations(PARTS),
        }
        if name not in compute:
            raise KeyError(name)
        return compute[name]()

    def __contains__(self, name) -> bool:
        return name in facts_registry()

    def __iter__(self) -> Iterator[str]:
        return iter(facts_registry())

    def __len__(self) -> int:
        return len(facts_registry())


def run_context(ws) -> RunFacts:
    """Legacy: facts recomputed from the workspace (notebooks will pass ``facts=`` instead, issue 18)."""
    return RunFacts(ws)


def available(question: Question, facts: Mapping[str, Any] | None) -> str | None:
    """None when the question can be asked now, else why not (which fact is missing), never the answer."""
    if not question.facts:
        return None
    try:
        question.expected(facts)
    except CvlabError as exc:
        return exc.message
    return None


__all__ = ["RunFacts", "available", "run_context"]
