"""Quiz cells for the notebooks: a question, a Check button, feedback with the explanation, progress recorded.

The grading and storage are `cvlab.quiz`'s; this module only draws them.

    >>> from cvlab.widgets.quiz import quiz_cell
    >>> quiz_cell("choose-01", "choose-02", ws=ws)        # doctest: +SKIP
"""
from __future__ import annotations

import html
from typing import Any, Mapping, Sequence

import ipywidgets as w

from cvlab import quiz as Q
from cvlab.errors import CvlabError

_OK, _BAD, _WARN = "#2e7d32", "#c62828", "#ef6c00"


def _box(colour: str, body: str) -> str:
    return (f'<div style="border-left:4px solid {colour};padding:4px 10px;margin:4px 0">{body}</div>')


class QuizCell(w.VBox):
    """One question with its input, a Check button and feedback; answers are recorded in `ws`.

    `answer(response)` fills the input and checks it, as a learner would (used by tests and the review).
    """

    def __init__(self, question: Q.Question | str, ws: Any = None, context: Mapping[str, Any] | None = None,
                 record: bool = True, on_graded=None):
        self.question = Q.get_question(question) if isinstance(question, str) else question
        self.ws, self.context, self.record, self.on_graded = ws, context, record, on_graded
        self.last: Q.Grade | None = None
        q = self.question
        title = (f"<b>{html.escape(q.id)}</b> <small>({html.escape(Q.SKILLS[q.skill])}; {q.difficulty})</small>"
                 f"<br>{html.escape(q.prompt)}")
        self.prompt = w.HTML(title)
        self.input = self._make_input()
        self.button = w.Button(description="Check", button_style="primary", icon="check")
        self.feedback = w.HTML("")
        self.button.on_click(lambda _b: self.check())
        parts = [self.prompt]
        if q.kind == "code":
            parts.append(w.HTML(f"<code>{html.escape(q.template)}</code>"))
        super().__init__(parts + [self.input, self.button, self.feedback],
                         layout=w.Layout(border="1px solid #ddd", padding="6px", margin="6px 0"))

    def _make_input(self):
        q = self.question
        if q.kind == "single":
            return w.RadioButtons(options=[(f"{Q.LETTERS[i]}) {c}", i) for i, c in enumerate(q.choices)],
                                  value=None, layout=w.Layout(width="auto"))
        if q.kind == "multiple":
            self._boxes = [w.Checkbox(description=f"{Q.LETTERS[i]}) {c}", value=False, indent=False,
                                      layout=w.Layout(width="auto")) for i, c in enumerate(q.choices)]
            return w.VBox(self._boxes)
        if q.kind == "truefalse":
            return w.ToggleButtons(options=[("True", True), ("False", False)], value=None)
        placeholder = "a number, e.g. 0.75" if q.kind == "numeric" else "the code that replaces ____"
        return w.Text(placeholder=placeholder, layout=w.Layout(width="60%"))

    def response(self):
        """What the learner has entered so far (None/empty when nothing)."""
        if self.question.kind == "multiple":
            return [i for i, b in enumerate(self._boxes) if b.value]
        return self.input.value

    def set_response(self, response) -> None:
        q = self.question
        if q.kind == "multiple":
            chosen = {Q._parse_index(q, t) for t in (response.split(",") if isinstance(response, str) else response)}
            for i, b in enumerate(self._boxes):
                b.value = i in chosen
        elif q.kind == "single":
            self.input.value = Q._parse_index(q, response)
        elif q.kind == "truefalse":
            self.input.value = Q._parse_bool(q, response)
        else:
            self.input.value = str(response)

    def answer(self, response) -> Q.Grade | None:
        self.set_response(response)
        return self.check()

    def check(self) -> Q.Grade | None:
        """Grade the current input, show the feedback and record it; None (with a hint) if it is unreadable."""
        response = self.response()
        if response is None or response == "" or response == []:
            self.feedback.value = _box(_WARN, "Choose or type an answer first, then press Check.")
            return None
        try:
            result = Q.grade(self.question, response, self.context)
        except CvlabError as exc:
            self.feedback.value = _box(_WARN, html.escape(exc.message))
            return None
        self.last = result
        if self.record:
            ws = self.ws
            if ws is None:
                import cvlab

                ws = self.ws = cvlab.open_workspace()
            Q.record(ws, result)
        colour = _OK if result.correct else _BAD
        url = self.question.source_url
        link = f'<a href="{url}" target="_blank">{html.escape(url)}</a>' if url.startswith("http") else url
        body = html.escape(result.feedback.rsplit(" (Source:", 1)[0]) + f"<br><small>Source: {link}</small>"
        self.feedback.value = _box(colour, body)
        if self.on_graded:
            self.on_graded(self, result)
        return result


def quiz_cell(*question_ids: str, ws: Any = None, context: Mapping[str, Any] | None = None,
              record: bool = True) -> w.VBox:
    """One or more quiz cells stacked; questions computed from the learner's run need `context`."""
    if not question_ids:
        raise CvlabError("BadRequest", "name at least one question id, e.g. quiz_cell('choose-01')")
    cells = [QuizCell(qid, ws=ws, context=context, record=record) for qid in question_ids]
    box = w.VBox(cells)
    box.cells = cells
    return box


class QuizSession(w.VBox):
    """A mixed quiz: questions one after another, a running score, and a review of what was missed.

    Questions come from `cvlab.quiz.plan` (missed ones first), so a second session revisits mistakes.
    """

    def __init__(self, ws: Any, pool: Sequence[Q.Question] | None = None, count: int = 10, seed: int = 0,
                 context: Mapping[str, Any] | None = None):
        self.ws, self.context = ws, context
        pool = list(pool) if pool is not None else Q.questions()
        pool = [q for q in pool if Q.available(q, context) is None]
        self.questions = Q.plan(pool, Q.load_progress(ws), count, seed)
        if not self.questions:
            raise CvlabError("BadRequest", "no questions to ask: widen the topic or train the projects first")
        self.results: list[Q.Grade] = []
        self.position = 0
        self.score = w.HTML()
        self.slot = w.VBox()
        self.next_button = w.Button(description="Next question", icon="arrow-right", disabled=True)
        self.next_button.on_click(lambda _b: self.next())
        self.review_box = w.HTML()
        super().__init__([self.score, self.slot, self.next_button, self.review_box])
        self._show()

    @property
    def cell(self) -> QuizCell:
        return self.slot.children[0]

    def _show(self) -> None:
        q = self.questions[self.position]
        self.slot.children = [QuizCell(q, ws=self.ws, context=self.context, on_graded=self._graded)]
        self.next_button.disabled = True
        self._update_score()

    def _graded(self, cell: QuizCell, result: Q.Grade) -> None:
        if len(self.results) == self.position:  # count the first attempt of each question
            self.results.append(result)
        self.next_button.disabled = self.position + 1 >= len(self.questions)
        self._update_score()
        if len(self.results) == len(self.questions):
            self.review_box.value = self.review_html()

    def _update_score(self) -> None:
        right = sum(r.correct for r in self.results)
        self.score.value = (f"<b>Question {self.position + 1} of {len(self.questions)}</b> - "
                            f"score {right}/{len(self.results)}")

    def next(self) -> None:
        if self.position + 1 < len(self.questions) and len(self.results) > self.position:
            self.position += 1
            self._show()

    def missed(self) -> list[Q.Question]:
        wrong = {r.question_id for r in self.results if not r.correct}
        return [q for q in self.questions if q.id in wrong]

    def review_html(self) -> str:
        right = sum(r.correct for r in self.results)
        rows = [f"<h4>Score: {right}/{len(self.results)}</h4>"]
        for q in self.missed():
            rows.append(f"<p><b>{q.id}</b> {html.escape(q.prompt)}<br>Answer: "
                        f"{html.escape(q.expected_text(self.context))}<br><i>{html.escape(q.explanation)}</i></p>")
        if len(rows) == 1:
            rows.append("<p>Nothing missed.</p>")
        return "".join(rows)
