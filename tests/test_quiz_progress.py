"""The quiz's records in a real workspace: append-only JSON lines, corrupt lines reported and skipped, old
progress imported; Leitner boxes over a three-day schedule on a fake clock; progress per skill; `--due`."""
from __future__ import annotations

import argparse
import io
import json
from datetime import datetime, timedelta, timezone

import pytest

from cvlab import open_workspace
from cvlab import quiz as Q
from cvlab.quiz import cli


class Clock:
    def __init__(self, start: datetime):
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw) -> None:
        self.now += timedelta(**kw)


DAY0 = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)


@pytest.fixture
def ws(tmp_path):
    with open_workspace(tmp_path / "ws") as w:
        yield w


def _answer(store, qid, score: float):
    """Record an answer worth `score` of the question (1 right, 0 wrong, between: partly right)."""
    q = Q.get_question(qid)
    p = Q.present(q, store.learner, store.next_attempt(q.id))
    response = Q.key(q)
    if score < 1 and q.kind == "single":
        response = next(c.id for c in q.choices if not c.correct)
    elif score < 1 and q.kind == "yesno":
        wrong = round((1 - score) * len(q.statements))
        response = {s.id: (not s.answer if n < wrong else s.answer) for n, s in enumerate(q.statements)}
    g = Q.grade(q, response, presentation=p)
    assert g.score == pytest.approx(score, abs=0.01)
    store.record_answer(g, p, mode="review")
    return g


def test_records_are_appended_as_json_lines_in_the_workspace(ws):
    store = Q.open_store(ws, Clock(DAY0))
    _answer(store, "choose-02", 1)
    _answer(store, "label-20", 0)
    Q.reset_progress(ws)
    _answer(store, "choose-02", 1)
    lines = store.path.read_text().splitlines()
    assert store.path == ws.path / "quiz" / "records.jsonl" and len(lines) == 4
    assert [json.loads(line)["type"] for line in lines] == ["answer", "answer", "reset", "answer"]
    assert [r["question"] for r in store.answers()] == ["choose-02"]  # a reset hides, never deletes
    assert len(store.records("answer", since_reset=False)) == 3
    assert json.loads(lines[0])["at"] == "2026-12-01T09:00:00+00:00"


def test_a_corrupt_record_is_reported_and_skipped_and_nothing_else_is_lost(ws, caplog):
    store = Q.open_store(ws, Clock(DAY0))
    _answer(store, "choose-02", 1)
    with open(store.path, "a") as f:
        f.write('{"type": "answer", "question": "label-20", "points": 5, "max_points": 1, "at": "x"}\n')
        f.write("this is not json\n")
        f.write('{"type": "answer", "question": "choose-04"')  # a crash mid-write: no newline
    _answer(store, "choose-06", 0)  # the next record starts on a fresh line
    with caplog.at_level("WARNING", logger="cvlab.quiz"):
        recs = store.answers()
    assert [r["question"] for r in recs] == ["choose-02", "choose-06"]
    assert len(store.problems) == 3 and all("skipped" in p for p in store.problems)
    assert any("line 2: answer record with points outside" in p for p in store.problems)
    assert any("line 3: not a JSON record" in p for p in store.problems)
    assert "skipped" in caplog.text
    assert Q.summary(ws).answered == 2  # the quiz keeps working
    out = io.StringIO()
    parser = argparse.ArgumentParser()
    cli.configure(parser)
    cli.run(parser.parse_args(["--workspace", str(ws.path), "--progress"]), out=out)
    assert out.getvalue().count("Note:") == 3 and "records.jsonl line 3" in out.getvalue()


def test_progress_kept_by_earlier_cvlab_in_the_settings_is_imported_once(ws):
    ws.set_setting(Q.store.LEGACY_SETTING, {"choose-02": {"attempts": 2, "correct": 1, "last": True,
                                                          "last_at": "2026-11-30T10:00:00+00:00"},
                                            "label-04": {"attempts": 1, "correct": 0, "last": False,
                                                         "last_at": "2026-11-30T11:00:00+00:00"}})
    s = Q.summary(ws)
    assert (s.answered, s.correct_last, s.missed) == (2, 1, ["label-03"])  # label-04 was merged into label-03
    Q.reset_progress(ws)
    assert Q.summary(ws).answered == 0  # imported once: a reset is not undone by the old setting


def test_a_three_day_leitner_schedule_on_a_fake_clock(ws):
    clock = Clock(DAY0)                  # day 0: 1 December
    store = Q.open_store(ws, clock)
    _answer(store, "choose-02", 1)       # right: box 2, due in 2 days (day 2)
    _answer(store, "label-20", 0)        # wrong: box 1, due tomorrow
    _answer(store, "choose-13", 2 / 3)   # partly right: box 1, due tomorrow
    assert Q.due(store) == []            # nothing is due on the day it was answered
    clock.advance(days=1)                # day 1
    assert [q.id for q in Q.due(store)] == ["choose-13", "label-20"]  # both missed, both box 1
    _answer(store, "label-20", 1)        # box 1 -> 2, due on day 3
    _answer(store, "choose-13", 0)       # stays in box 1, due on day 2
    assert Q.due(store) == []
    clock.advance(days=1)                # day 2
    cards = Q.cards(store.answers())
    assert {k: (c.box, c.due.isoformat()) for k, c in cards.items()} == {
        "choose-02": (2, "2026-12-03"), "label-20": (2, "2026-12-04"), "choose-13": (1, "2026-12-03")}
    assert [q.id for q in Q.due(store)] == ["choose-13", "choose-02"]  # the missed one first
    _answer(store, "choose-02", 1)       # box 2 -> 3, due in 4 days
    _answer(store, "choose-13", 1)       # box 1 -> 2, due in 2 days
    assert Q.due(store) == []
    clock.advance(days=1)                # day 3
    assert [q.id for q in Q.due(store)] == ["label-20"]
    cards = Q.cards(store.answers())
    assert (cards["choose-02"].box, cards["choose-13"].box, cards["label-20"].box) == (3, 2, 2)
    # on day 10 all are due and none was missed: lowest box first, then the longest overdue
    assert [q.id for q in Q.due(store, DAY0 + timedelta(days=10))] == ["label-20", "choose-13", "choose-02"]


def test_cli_due_serves_what_is_due_missed_first_and_records_it(ws):
    clock = Clock(DAY0)
    store = Q.open_store(ws, clock)
    _answer(store, "choose-02", 1)
    _answer(store, "label-20", 0)
    parser = argparse.ArgumentParser()
    cli.configure(parser)
    args = parser.parse_args(["--workspace", str(ws.path), "--due"])
    out = io.StringIO()
    cli.run(args, stdin=io.StringIO(""), out=out, clock=clock)
    assert "Nothing is due today" in out.getvalue()
    clock.advance(days=2)
    q = Q.get_question("label-20")
    p = Q.present(q, store.learner, store.next_attempt(q.id))  # the screen the CLI will show
    right = Q.LETTERS[p.order.index(q.correct_ids[0])]
    out = io.StringIO()
    cli.run(args, stdin=io.StringIO(f"{right}\n"), out=out, clock=clock)
    text = out.getvalue()
    assert "2 question(s) due today" in text and text.index("[label-20]") < text.index("[choose-02]")
    assert "Correct." in text and "(input ended)" in text
    assert Q.cards(store.answers())["label-20"].box == 2


def test_progress_per_skill_is_a_table_and_a_bar_chart(ws, tmp_path):
    clock = Clock(DAY0)
    store = Q.open_store(ws, clock)
    for qid in ("choose-02", "choose-04", "label-20"):
        _answer(store, qid, 1)
    _answer(store, "train-03", 0)
    table = Q.progress(store)
    assert list(table.index) == list(Q.SKILLS) and table.loc["choose", "seen"] == 2
    assert table.loc["choose", "box 2"] == 2 and table.loc["train", "box 1"] == 1
    assert table.loc["choose", "skill"] == "Choose between image classification and object detection models"
    assert table["questions"].sum() == sum(not q.facts for q in Q.questions())
    fig = Q.progress_figure(store)
    bars = fig.axes[0].patches
    assert len(bars) == 6 * len(Q.SKILLS) and fig.axes[0].get_legend() is not None
    out = io.StringIO()
    parser = argparse.ArgumentParser()
    cli.configure(parser)
    cli.run(parser.parse_args(["--workspace", str(ws.path), "--progress"]), out=out, clock=clock)
    assert "containers" in out.getvalue() and (ws.path / "quiz" / "progress.png").stat().st_size > 1000


def test_summary_and_workshop_payload_keep_their_shape(ws):
    from cvlab import workshop

    for q, right in zip(Q.questions()[:4], (True, True, False, True)):
        Q.record(ws, Q.Grade(q.id, right, "", ""))  # the workshop's own records, without a presentation
    s = Q.summary(ws)
    assert (s.answered, s.correct_last, round(s.score, 2)) == (4, 3, 0.75)
    assert workshop.quiz_payload(ws) == {"quiz": "all", "answered": 4, "correct": 3}
    assert Q.load_progress(ws)[Q.questions()[2].id]["last"] is False
