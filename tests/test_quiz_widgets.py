"""The notebook faces, driven as a learner would: set the widgets' values, click the buttons, read the output."""
from __future__ import annotations

import html

import pytest

from cvlab import open_workspace
from cvlab import quiz as Q
from cvlab.widgets.quiz import CaseStudyCell, QuizCell, QuizSession, quiz_cell, review_cell

FACTS = {"precision_at_50": 0.837, "recall_at_50": 0.8, "helmet_recall_at_70": 0.625, "map_at_50": 0.71,
         "parts_iterations": 3}
GREEN, AMBER, RED = "#2e7d32", "#ef6c00", "#c62828"


@pytest.fixture
def ws(tmp_path):
    with open_workspace(tmp_path / "ws") as w:
        yield w


def fill(cell: QuizCell, response) -> None:
    """Put a response (ids) into the cell's widgets directly, the way clicks would."""
    q = cell.question
    if q.kind == "single":
        cell._radio.value = response
    elif q.kind == "multi":
        for option, box in cell._boxes.items():
            box.value = option in response
    elif q.kind == "yesno":
        for sid, toggle in cell._toggles.items():
            toggle.value = response[sid]
    elif q.kind == "order":
        for drop, step in zip(cell._slots, response):
            drop.value = step
    elif q.kind == "match":
        for item, drop in cell._pairs.items():
            drop.value = response[item]
    elif q.kind == "code":
        for blank, drop in cell._drops.items():
            drop.value = response[blank]
    else:
        cell._text.value = f"{response * 100:.2f}%" if q.unit == "fraction" else str(response)


@pytest.mark.parametrize("kind", Q.KINDS)
def test_every_question_of_every_format_works_as_a_widget(ws, kind):
    pool = [q for q in Q.questions() if q.kind == kind]
    assert len(pool) >= 5
    for q in pool:
        cell = QuizCell(q, ws=ws, facts=FACTS)
        p = cell.presentation
        if kind == "single":  # the labels show this learner's letters, in this learner's order
            assert [label for label, _ in cell._radio.options] == [
                f"{Q.LETTERS[i]}) {o.text}" for i, o in enumerate(p.options())]
        fill(cell, Q.key(q, FACTS))
        cell.button.click()
        assert cell.last is not None and cell.last.correct, (q.id, cell.feedback.value)
        assert GREEN in cell.feedback.value and q.source_url in cell.feedback.value
    stored = Q.open_store(ws).answers()
    assert len(stored) == len(pool) and {r["mode"] for r in stored} == {"notebook"}


def test_single_answer_cell_explains_a_wrong_choice_then_accepts_the_right_one(ws):
    cell = QuizCell("choose-02", ws=ws)
    cell.button.click()
    assert cell.last is None and "Answer every part first" in cell.feedback.value  # nothing chosen yet
    wrong = next(c for c in cell.question.choices if not c.correct)
    cell._radio.value = wrong.id
    cell.button.click()
    assert RED in cell.feedback.value and html.escape(wrong.why) in cell.feedback.value
    cell._radio.value = "od"
    cell.button.click()
    assert GREEN in cell.feedback.value and Q.load_progress(ws)["choose-02"]["attempts"] == 2


def test_select_n_needs_exactly_n_and_gives_partial_credit(ws):
    cell = QuizCell("choose-10", ws=ws)
    assert "Select 2." in cell.input.children[0].value
    right, wrong = cell.question.correct_ids, [c.id for c in cell.question.choices if not c.correct]
    for i in (right[0], wrong[0], wrong[1]):
        cell._boxes[i].value = True
    cell.button.click()
    assert cell.last is None and "select exactly 2 (you picked 3)" in cell.feedback.value
    cell._boxes[wrong[1]].value = False
    cell.button.click()
    assert AMBER in cell.feedback.value and "Partly right: 1 of 2" in cell.feedback.value


def test_yes_no_order_match_and_code_cells_grade_each_part(ws):
    yesno = QuizCell("label-23", ws=ws)
    for s in yesno.question.statements:
        yesno._toggles[s.id].value = True  # one of the three is a No
    yesno.button.click()
    assert "Partly right: 2 of 3" in yesno.feedback.value
    order = QuizCell("pub-24", ws=ws)
    steps = [s.id for s in order.question.steps]
    for drop, step in zip(order._slots, [steps[1], steps[0], steps[2]]):
        drop.value = step
    order.button.click()
    assert "Partly right: 1 of 3" in order.feedback.value
    match = QuizCell("pub-22", ws=ws)
    for item, drop in match._pairs.items():
        drop.value = "reader"
    match.button.click()
    assert "Partly right: 1 of 4" in match.feedback.value
    code = QuizCell("code-20", ws=ws)
    assert "Answer area (C#)" in code.input.children[0].value and "[1]" in code.input.children[0].value
    code._drops["cred"].value = "ApiKeyCredentials"
    code._drops["prop"].value = "Endpoint"
    code.button.click()
    assert "Partly right: 1 of 2" in code.feedback.value and "Python SDK" in code.feedback.value


def test_numeric_cell_takes_the_obvious_forms_and_says_what_it_expected(ws):
    cell = QuizCell("eval-09", ws=ws)  # IoU = 1/3
    assert cell.input.placeholder == "0.33, 1/3 or 33%"
    cell._text.value = "33"
    cell.button.click()
    assert cell.last is None and "percentage (33%)" in cell.feedback.value
    for typed in ("1/3", "33.3%", "0.333"):
        assert cell.answer(typed).correct


def test_a_run_question_waits_for_the_notebooks_number_and_never_shows_the_answer(ws):
    cell = QuizCell("eval-14", ws=ws)
    assert cell.unavailable and "precision_at_50" in cell.input.value and cell.button not in cell.children
    assert cell.check() is None
    cell = QuizCell("eval-14", ws=ws, facts={"precision_at_50": 0.837})
    assert not cell.answer("0.875").correct  # the Advanced iteration's figure is not the one shown
    assert cell.answer("83.7%").correct
    assert Q.open_store(ws).answers()[-1]["facts"] == {"precision_at_50": 0.837}


def test_case_study_cells_show_the_scenario_and_its_questions(ws):
    box = quiz_cell("case-02", "choose-01", ws=ws)
    case = box.children[0]
    assert isinstance(case, CaseStudyCell) and "Fabrikam" in case.children[0].children[0].value
    assert [c.question.id for c in box.cells] == [*Q.get_case("case-02").question_ids, "choose-01"]
    assert box.cells[0].answer(Q.key(box.cells[0].question)).correct


def test_practice_session_scores_and_brings_missed_questions_back(ws):
    pool = [q for q in Q.questions("choose") if q.kind == "single"]
    session = QuizSession(ws, pool=pool, count=3, seed=2)
    for n, q in enumerate(session.questions):
        assert session.cell.question.id == q.id and session.next_button.disabled
        session.cell.answer(Q.key(q) if n != 1 else next(c.id for c in q.choices if not c.correct))
        session.next_button.click()
    assert session.score.value.endswith("score 2/3")
    assert [q.id for q in session.missed()] == [session.questions[1].id]
    assert "Score: 2/3" in session.review_box.value and session.questions[1].id in session.review_box.value
    from datetime import datetime, timedelta, timezone

    tomorrow = datetime.now(timezone.utc) + timedelta(days=1)
    assert Q.plan(pool, ws, 1, seed=9, now=tomorrow)[0].id == session.questions[1].id  # the miss comes back first


def test_review_cell_shows_progress_and_serves_what_is_due(ws):
    from datetime import datetime, timedelta, timezone

    now = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)
    store = Q.open_store(ws, lambda: now)
    for qid, right in (("choose-02", True), ("label-20", False)):
        q = Q.get_question(qid)
        p = Q.present(q, store.learner, 0)
        response = Q.key(q) if right else next(c.id for c in q.choices if not c.correct)
        store.record_answer(Q.grade(q, response, presentation=p), p)
    empty = review_cell(store, now=now)
    assert empty.session is None and "Nothing is due today" in empty.children[2].value
    table = empty.children[0].children[0].value
    assert "Label images" in table and "Plan and implement a container deployment" in table
    assert empty.children[0].children[1].value[:4] == b"\x89PNG"
    later = review_cell(store, now=now + timedelta(days=2))
    assert [q.id for q in later.session.questions] == ["label-20", "choose-02"]  # missed first
    later.session.cell.answer(Q.key(later.session.cell.question))
    assert Q.open_store(ws).answers()[-1]["mode"] == "review"
