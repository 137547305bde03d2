"""The lessons' quiz cells read the learner's own numbers from what the lesson showed (issue 18 with the quiz
contract of quizzes/facts.yaml): every question about the learner's run that a lesson asks gets its facts passed
in `facts=`, no lesson prints a quiz's expected answer, and numbers are printed as people read them (cv.pct)."""
from __future__ import annotations

import ast
from pathlib import Path

import jupytext
import pytest

from cvlab import curriculum as cv
from cvlab import quiz as Q

LESSONS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("[0-9][0-9]-*.py"))


def _quiz_calls(path: Path):
    """(question ids, fact names passed) for each `cv.quiz(...)` call in a lesson's code cells."""
    for cell in jupytext.read(path).cells:
        if cell.cell_type != "code":
            continue
        for node in ast.walk(ast.parse(cell.source)):
            if isinstance(node, ast.Call) and ast.unparse(node.func) in ("cv.quiz", "quiz_cell"):
                ids = [a.value for a in node.args if isinstance(a, ast.Constant)]
                facts = next((k.value for k in node.keywords if k.arg == "facts"), None)
                names = {key.value for key in facts.keys} if isinstance(facts, ast.Dict) else set()
                yield ids, names


def test_every_run_question_a_lesson_asks_gets_its_facts():
    asked = {}
    for path in LESSONS:
        for ids, names in _quiz_calls(path):
            for qid in ids:
                needed = set(Q.get_question(qid).facts)
                assert needed <= names, f"{path.name}: {qid} needs facts {sorted(needed - names)}"
                asked[qid] = path.name
    # the questions about the learner's run are asked where their numbers are shown
    assert {asked.get(q) for q in ("eval-13", "eval-14", "eval-15", "eval-28")} == {"04-evaluating.py"}
    assert asked.get("imp-08") == "07-improve.py"


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.stem)
def test_no_lesson_prints_a_quiz_answer(path):
    text = path.read_text()
    assert "run_context(" not in text, "pass the numbers the lesson showed (facts=), not quiz.run_context"
    assert ".expected(" not in text, "a lesson must not print a question's expected answer"


def test_pct_reads_like_a_person_writes_it():
    assert cv.pct(0.7666666666666667) == "76.7 %"
    assert cv.pct(1) == "100.0 %" and cv.pct(0.5, digits=0) == "50 %"
    assert cv.pct(None) == cv.pct(float("nan")) == "undefined"
