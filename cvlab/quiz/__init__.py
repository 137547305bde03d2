"""Self-assessment for the AI-102 custom-vision skills: the question bank, one grading engine, spaced review and
exam mode, with records kept in the workspace's own ``quiz/`` folder.

One engine serves every face: the notebook widgets (``cvlab.widgets.quiz``), the terminal (``cvlab quiz``,
``cvlab/quiz/cli.py``) and exam mode. Modules:

- ``bank``: skills, sources, facts and the validated YAML banks in quizzes/;
- ``grading``: per-learner seeded presentation, parsing what was typed, partial credit;
- ``store``: the append-only JSON-lines records in ``<workspace>/quiz/``;
- ``review``: Leitner boxes, what is due, progress per skill;
- ``exam``: timed forms, the scaled score report, attempts over time;
- ``facts``: the contract for questions about the learner's own run.

    >>> from cvlab import quiz
    >>> quiz.grade("eval-03", "0.5").correct
    True
"""
from __future__ import annotations

from .bank import (BANK_DIR, KIND_NAMES, KINDS, SKILLS, STUDY_GUIDE, Bank, Case, Question, cases, check_fact,
                   default_banks, facts_registry, get_case, get_question, load_bank, load_banks, questions, schema,
                   sources, static_context, stats, topics)
from .exam import PASS_MARK, ExamReport, ExamSession, attempts, attempts_figure, draw_form, scaled_score
from .facts import available, run_context
from .grading import (LETTERS, Grade, Presentation, expected_form, expected_text, grade, key, parse, present,
                      typed)
from .review import BOX_DAYS, Summary, cards, due, plan, progress, progress_figure, summary
from .store import QuizStore, answers, open_store


def record(ws, grade_: Grade, presentation: Presentation | None = None, mode: str = "practice",
           facts: dict | None = None) -> dict:
    """Store one graded answer in the workspace's quiz records; returns the record."""
    return open_store(ws).record_answer(grade_, presentation, mode=mode, facts=facts)


def reset_progress(ws) -> None:
    """Start over: earlier answers and exams stop counting (they stay in the log, after a reset record)."""
    open_store(ws).reset()


def load_progress(ws) -> dict[str, dict]:
    """Per-question history since the last reset: {id: {attempts, correct, last, last_at, box}}."""
    out: dict[str, dict] = {}
    for rec in open_store(ws).answers():
        entry = out.setdefault(rec["question"], {"attempts": 0, "correct": 0})
        entry["attempts"] += 1
        entry["correct"] += int(rec["points"] >= rec["max_points"])
        entry["last"] = rec["points"] >= rec["max_points"]
        entry["last_at"] = rec["at"]
    for qid, card in cards(open_store(ws).answers()).items():
        out.setdefault(qid, {"attempts": card.seen, "correct": 0})["box"] = card.box
    return out


__all__ = ["BANK_DIR", "BOX_DAYS", "KINDS", "KIND_NAMES", "LETTERS", "PASS_MARK", "SKILLS", "STUDY_GUIDE", "Bank",
           "Case", "ExamReport", "ExamSession", "Grade", "Presentation", "Question", "QuizStore", "Summary",
           "answers", "attempts", "attempts_figure", "available", "cards", "cases", "check_fact", "default_banks",
           "draw_form", "due", "expected_form", "expected_text", "facts_registry", "get_case", "get_question",
           "grade", "key", "load_bank", "load_banks", "load_progress", "open_store", "parse", "plan", "present",
           "progress", "progress_figure", "questions", "record", "reset_progress", "run_context", "scaled_score",
           "schema", "sources", "static_context", "stats", "summary", "topics", "typed"]
