"""Progress in a real workspace: the CLI fed through stdin, missed questions first next time, the widgets."""
from __future__ import annotations

import argparse
import io

import pytest

from cvlab import open_workspace
from cvlab import quiz as Q
from cvlab.errors import CvlabError
from cvlab.widgets.quiz import QuizCell, QuizSession, quiz_cell


@pytest.fixture
def ws(tmp_path):
    with open_workspace(tmp_path / "ws") as w:
        yield w


def _args(ws, **kw):
    parser = argparse.ArgumentParser()
    Q.configure(parser)
    argv = ["--workspace", str(ws.path)]
    for k, v in kw.items():
        argv += [f"--{k}", str(v)]
    return parser.parse_args(argv)


def _answer_for(q, right: bool) -> str:
    if q.kind == "single":
        return Q.LETTERS[q.answer if right else (q.answer + 1) % len(q.choices)]
    if q.kind == "multiple":
        return ",".join(Q.LETTERS[i] for i in (q.answer if right else [i for i in range(len(q.choices))
                                                                        if i not in q.answer][:1]))
    if q.kind == "truefalse":
        return "t" if q.answer == right else "f"
    if q.kind == "numeric":
        return str(q.expected() if right else q.expected() + 99)
    return q.answer[0] if right else "nope"


def test_cli_records_answers_and_brings_missed_questions_back_first(ws):
    args = _args(ws, topic="choose", count=3, seed=1)
    first = Q.plan(Q.questions("choose"), {}, 3, seed=1)
    # learner: first wrong, an unreadable line then right, third right
    lines = [_answer_for(first[0], False), "zzz", _answer_for(first[1], True), _answer_for(first[2], True)]
    out = io.StringIO()
    assert Q.run(args, stdin=io.StringIO("\n".join(lines) + "\n"), out=out) == 0
    text = out.getvalue()
    assert "Score this session: 2/3" in text and "try again" in text and first[0].id in text.split("revisit")[-1]
    progress = Q.load_progress(ws)
    assert progress[first[0].id]["last"] is False and progress[first[1].id]["correct"] == 1
    # next session: the missed question comes first, and input ending early is handled
    out2 = io.StringIO()
    Q.run(_args(ws, topic="choose", count=2, seed=5), stdin=io.StringIO(""), out=out2)
    assert out2.getvalue().index(f"[{first[0].id}]") < out2.getvalue().index("(input ended)")
    s = Q.summary(ws, "choose")
    assert (s.answered, s.correct_last, s.missed) == (3, 2, [first[0].id])


def test_cli_list_and_bad_count(ws):
    out = io.StringIO()
    parser = argparse.ArgumentParser()
    Q.configure(parser)
    Q.run(parser.parse_args(["--list"]), out=out)
    assert "choose" in out.getvalue() and "evaluate" in out.getvalue()
    with pytest.raises(CvlabError):
        Q.run(_args(ws, count=0), stdin=io.StringIO(""), out=io.StringIO())


def test_computed_questions_wait_for_the_run(ws):
    context = Q.run_context(ws)
    q = Q.get_question("eval-14")
    assert "no project named" in Q.available(q, context)
    assert Q.available(Q.get_question("pub-18"), context) is None  # from cvlab.rules, no run needed
    ws.create_project("parts-quality")
    assert Q.get_question("imp-08").expected(context) == 0
    assert "no completed iteration" in Q.available(q, context)


def test_widget_cell_checks_records_and_explains(ws):
    cell = QuizCell("choose-02", ws=ws)
    assert cell.check() is None and "Choose or type" in cell.feedback.value  # nothing entered yet
    result = cell.answer("b")
    assert not result.correct and "no positions" in cell.feedback.value
    assert cell.answer("a").correct and "#2e7d32" in cell.feedback.value
    assert Q.load_progress(ws)["choose-02"] == {**Q.load_progress(ws)["choose-02"], "attempts": 2, "correct": 1}
    multi = QuizCell("choose-10", ws=ws)
    assert multi.answer([0, 1]).correct
    code = QuizCell("pub-03", ws=ws)
    assert not code.answer("detect_image").correct and "common mistake" in code.feedback.value
    stack = quiz_cell("choose-08", "eval-03", ws=ws)
    assert stack.cells[1].answer("0.5").correct


def test_widget_session_scores_and_reviews_missed(ws):
    pool = Q.questions("exam")
    session = QuizSession(ws, pool=pool, count=3, seed=2)
    for n, q in enumerate(session.questions):
        assert session.cell.question.id == q.id
        session.cell.answer(_answer_for(q, right=(n != 1)))
        session.next()
    assert "Score: 2/3" in session.review_html() and session.questions[1].id in session.review_html()
    assert [q.id for q in session.missed()] == [session.questions[1].id]
    again = QuizSession(ws, pool=pool, count=1, seed=9)
    assert again.questions[0].id == session.questions[1].id
