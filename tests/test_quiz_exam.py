"""Exam mode on a fake clock: a form drawn by skill weight, no feedback until the end, flags and returns, the
scaled score report, time running out, attempts kept and plotted; in the terminal and as a widget."""
from __future__ import annotations

import argparse
import io
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest

from cvlab import open_workspace
from cvlab import quiz as Q
from cvlab.quiz import cli

DAY0 = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)


class Clock:
    def __init__(self, start: datetime = DAY0):
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw) -> None:
        self.now += timedelta(**kw)


@pytest.fixture
def ws(tmp_path):
    with open_workspace(tmp_path / "ws") as w:
        Q.open_store(w).set_learner("exam-tester")
        yield w


def test_scaled_score_puts_the_cut_at_700():
    assert [Q.scaled_score(f) for f in (0, 0.35, 0.6999, 0.7, 0.85, 1.0)] == [1, 350, 699, 700, 850, 1000]
    assert Q.scaled_score(-1) == 1 and Q.scaled_score(2) == 1000


def test_forms_are_drawn_by_skill_weight_reproducibly_and_without_trivia():
    form = Q.draw_form("exam-tester", 1, size=40)
    assert len(form) == 40 and len({q.id for q in form}) == 40
    assert all(q.in_exam for q in form)  # no housekeeping, no questions about the learner's own run
    per_skill = Counter(q.skill for q in form)
    assert set(per_skill) == set(Q.SKILLS) and max(per_skill.values()) - min(per_skill.values()) <= 2
    case = [q for q in form if q.case]
    assert case and form[-len(case):] == case and [q.id for q in case] == list(Q.get_case(case[0].case).question_ids)
    assert [q.id for q in Q.draw_form("exam-tester", 1, size=40)] == [q.id for q in form]
    assert [q.id for q in Q.draw_form("exam-tester", 2, size=40)] != [q.id for q in form]
    small = Q.draw_form("someone", 1, size=8)
    assert len(small) == 8 and not any(q.case for q in small)


def test_a_full_form_on_a_fake_clock(ws):
    clock = Clock()
    store = Q.open_store(ws)
    session = Q.ExamSession(ws, size=24, minutes=48, clock=clock)
    assert (session.attempt, len(session.slots), session.time_left()) == (1, 24, timedelta(minutes=48))
    session.start()
    for n, slot in enumerate(session.slots):
        clock.advance(seconds=50)
        right = Q.key(slot.question)
        if n in (3, 7):  # two earn nothing: a wrong choice, or left unanswered
            q = slot.question
            right = next(c.id for c in q.choices if not c.correct) if q.kind == "single" else None
        if n == 5:
            session.flag()                        # flag and skip
        elif right is not None:
            assert session.answer(right) is None  # no feedback while the exam runs
        session.next()
    assert store.answers() == [] and 5 in session.unanswered() and session.flagged() == [5]
    session.goto(5)                               # return to the flagged question
    session.answer(Q.key(session.slots[5].question))
    session.flag(on=False)
    typed = Q.typed(session.slots[0].presentation, Q.key(session.slots[0].question))
    session.goto(0)
    session.answer(typed)                         # typed text works as well as ids
    clock.advance(minutes=5)
    report = session.finish()
    assert report is session.finish()             # finishing twice changes nothing
    assert report.fraction == pytest.approx(22 / 24) and not report.timed_out  # 3 and 7 earn nothing
    assert report.scaled == Q.scaled_score(report.fraction) and report.passed == (report.scaled >= 700)
    assert report.duration == timedelta(seconds=24 * 50 + 300)
    assert set(report.by_skill) <= set(Q.SKILLS) and sum(n for _, n in report.by_skill.values()) == 24
    answers = store.answers()
    assert len(answers) == 24 and {a["mode"] for a in answers} == {"exam"} and {a["exam"] for a in answers} == {1}
    assert all(a["attempt"] == "exam-1" for a in answers)
    [rec] = Q.attempts(ws)
    assert rec["scaled"] == report.scaled and rec["form"] == [s.question.id for s in session.slots]
    text = report.text()
    assert f"Your score: {report.scaled}" in text and "Passing score: 700" in text and "Review" in text
    assert all(Q.SKILLS[k].line[:40] in text for k in report.by_skill)
    with pytest.raises(Q.grading.CvlabError, match="finished"):
        session.answer(Q.key(session.slots[1].question), 1)


def test_time_running_out_submits_what_was_answered(ws):
    clock = Clock()
    session = Q.ExamSession(ws, size=10, minutes=5, clock=clock)
    session.start()
    session.answer(Q.key(session.current.question))
    clock.advance(minutes=6)
    with pytest.raises(Q.grading.CvlabError, match="time is up"):
        session.answer(Q.key(session.slots[1].question), 1)
    report = session.report
    assert report.timed_out and report.duration == timedelta(minutes=5)
    assert report.fraction == pytest.approx(1 / 10) and not report.passed
    assert Q.attempts(ws)[-1]["timed_out"] is True and Q.attempts(ws)[-1]["answered"] == 1


def test_attempts_are_kept_and_plotted(ws):
    for n in range(3):
        s = Q.ExamSession(ws, size=8, minutes=20, clock=Clock(DAY0 + timedelta(days=n)))
        for i, slot in enumerate(s.slots):
            if i < 3 + 2 * n:
                s.answer(Q.key(slot.question), i)
        s.finish()
    recs = Q.attempts(ws)
    assert [r["attempt"] for r in recs] == [1, 2, 3] and recs[0]["scaled"] < recs[2]["scaled"]
    fig = Q.attempts_figure(ws)
    line = fig.axes[0].lines[0]
    assert list(line.get_xdata()) == [1, 2, 3] and list(line.get_ydata()) == [r["scaled"] for r in recs]
    assert any(l.get_ydata()[0] == 700 for l in fig.axes[0].lines[1:])


def _exam_args(ws, *extra):
    parser = argparse.ArgumentParser()
    cli.configure(parser)
    return parser.parse_args(["--workspace", str(ws.path), "--exam", *extra])


def test_terminal_exam_with_flags_review_and_report(ws):
    clock = Clock()
    form = Q.draw_form("exam-tester", 1, size=10)
    screens = [Q.present(q, "exam-tester", "exam-1") for q in form]
    typed = [Q.typed(p, Q.key(p.question)) for p in screens]
    lines = ["zzz", *typed[:4], "/flag", "/next", *typed[5:]]  # unreadable first; the 5th flagged and skipped
    lines += ["/goto 5", typed[4], "/review", "/finish"]  # the review screen comes after the last question
    out = io.StringIO()
    assert cli.run(_exam_args(ws, "--size", "10", "--minutes", "30"), stdin=io.StringIO("\n".join(lines) + "\n"),
                   out=out, clock=clock) == 0
    text = out.getvalue()
    assert "Exam attempt 1: 10 questions, 30 minutes" in text and "-- Question 1 of 10 | 30:00 left" in text
    assert "flagged for review" in text and "-- Review |" in text
    assert "Correct." not in text.split("Score report")[0]  # no feedback before the end
    assert "Your score: 1000" in text and "Result: PASS" in text
    assert (ws.path / "quiz" / "exam-1.png").exists() and (ws.path / "quiz" / "exam-attempts.png").exists()
    out = io.StringIO()
    parser = argparse.ArgumentParser()
    cli.configure(parser)
    cli.run(parser.parse_args(["--workspace", str(ws.path), "--attempts"]), out=out)
    assert "attempt  1" in out.getvalue() and "score 1000" in out.getvalue()


def test_terminal_exam_submits_when_time_runs_out_or_input_ends(ws):
    clock = Clock()

    class SlowInput(io.StringIO):
        def readline(self, *a):
            clock.advance(minutes=3)  # each answer takes three minutes
            return super().readline(*a)

    form = Q.draw_form("exam-tester", 1, size=6)
    typed = [Q.typed(Q.present(q, "exam-tester", "exam-1"), Q.key(q)) for q in form]
    out = io.StringIO()
    cli.run(_exam_args(ws, "--size", "6", "--minutes", "7"), stdin=SlowInput("\n".join(typed) + "\n"),
            out=out, clock=clock)
    assert "time is up" in out.getvalue() and "(time ran out)" in out.getvalue()
    assert Q.attempts(ws)[-1]["answered"] == 2
    out = io.StringIO()
    cli.run(_exam_args(ws, "--size", "6"), stdin=io.StringIO(""), out=out, clock=Clock())
    assert "input ended: submitting" in out.getvalue() and Q.attempts(ws)[-1]["answered"] == 0


def test_exam_widget_start_flag_review_return_finish(ws):
    from cvlab.widgets.quiz import ExamWidget

    clock = Clock()
    exam = ExamWidget(ws, size=10, minutes=20, clock=clock, learner="exam-tester-4")  # a form with a number
    assert exam.screen == "start" and "Exam attempt 1" in exam.body.children[0].value
    exam.start_button.click()
    assert exam.screen == "question" and "Question 1 of 10" in exam.header.value and "20:00 left" in exam.header.value
    numeric = next(i for i, sl in enumerate(exam.session.slots) if sl.question.kind == "numeric")
    for n in range(10):
        cell = exam.cells[exam.session.index]
        if n == numeric:  # an unreadable number keeps the learner on the question and says why
            cell._text.value = "about half"
            exam.next_button.click()
            assert exam.session.index == n and "not a number" in exam.header.value
        assert cell.button not in cell.children and cell.feedback not in cell.children  # no Check, no feedback
        if n == 2:
            exam.flag_button.value = True          # flag and leave unanswered
        else:
            cell.set_response(Q.key(cell.question))
        clock.advance(seconds=30)
        exam.next_button.click()
    assert exam.screen == "review" and "1 unanswered" in exam.body.children[0].value
    assert exam.palette[2].description == "3*" and exam.palette[2].button_style == "warning"
    exam.palette[2].click()                        # back to the flagged question
    assert exam.screen == "question" and exam.session.index == 2 and exam.flag_button.value is True
    exam.cells[2].set_response(Q.key(exam.cells[2].question))
    exam.flag_button.value = False
    exam.review_button.click()
    assert "0 unanswered" in exam.body.children[0].value
    exam.finish_button.click()
    assert exam.screen == "report" and exam.report.scaled == 1000 and "PASS" in exam.body.children[0].value
    assert exam.body.children[1].value[:4] == b"\x89PNG" and exam.body.children[2].value[:4] == b"\x89PNG"
    assert len(Q.open_store(ws).answers()) == 10


def test_exam_widget_submits_itself_when_the_ticker_finds_time_is_up(ws):
    from cvlab.widgets.quiz import ExamWidget

    clock = Clock()
    exam = ExamWidget(ws, size=6, minutes=1, clock=clock)
    exam.start_button.click()
    exam.cells[0].set_response(Q.key(exam.cells[0].question))
    clock.advance(seconds=30)
    exam.ticker.value += 1
    assert exam.screen == "question" and "0:30 left" in exam.header.value
    clock.advance(seconds=31)
    exam.ticker.value += 1                          # the hidden Play widget ticks every second in a browser
    assert exam.screen == "report" and exam.report.timed_out and "time ran out" in exam.header.value
    assert exam.report.fraction == pytest.approx(1 / 6)  # the answer on screen when time ran out counts
