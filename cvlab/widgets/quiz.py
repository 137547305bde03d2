"""Quiz cells, a practice session, the spaced-review cell and exam mode, drawn with ipywidgets.

Everything is `cvlab.quiz`'s: the seeded presentation (this learner's order), grading with partial credit, the
records in the workspace's quiz store. This module only draws them and turns clicks into ids.

    >>> from cvlab.widgets.quiz import quiz_cell, review_cell, ExamWidget
    >>> quiz_cell("choose-01", "eval-14", ws=ws, facts={"precision_at_50": perf.precision})   # doctest: +SKIP
    >>> review_cell(ws)                                                                        # doctest: +SKIP
    >>> ExamWidget(ws, size=40)                                                                # doctest: +SKIP
"""
from __future__ import annotations

import html
import io
from typing import Any, Mapping, Sequence

import ipywidgets as w

from cvlab import quiz as Q
from cvlab.errors import CvlabError

_OK, _BAD, _PART, _WARN = "#2e7d32", "#c62828", "#ef6c00", "#ef6c00"
_NONE = ("(choose)", None)


def _box(colour: str, body: str) -> str:
    return f'<div style="border-left:4px solid {colour};padding:4px 10px;margin:4px 0">{body}</div>'


def _png(fig) -> w.Image:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    return w.Image(value=buf.getvalue(), format="png", layout=w.Layout(max_width="760px"))


def _links(q: Q.Question) -> str:
    return " ".join(f'<a href="{u}" target="_blank">{html.escape(u)}</a>' for u in q.source_urls)


def _store(ws):
    if ws is None:
        import cvlab

        ws = cvlab.open_workspace()
    return Q.open_store(ws)


class QuizCell(w.VBox):
    """One question in this learner's order, its input, a Check button and feedback; answers are recorded.

    `answer(response)` fills the input (typed text as shown, or ids) and checks it, as a learner would. In exam
    mode (``mode="exam"``) there is no Check button and no feedback: the exam reads `response()`.
    """

    def __init__(self, question: Q.Question | str, ws: Any = None, facts: Mapping[str, Any] | None = None,
                 context: Mapping[str, Any] | None = None, *, learner: str | None = None, attempt=None,
                 record: bool = True, mode: str = "notebook", on_graded=None, presentation=None):
        self.question = Q.get_question(question) if isinstance(question, str) else question
        self.facts = facts if facts is not None else context  # `context`: the legacy run_context(ws)
        self.ws, self.record, self.mode, self.on_graded = ws, record, mode, on_graded
        self.last: Q.Grade | None = None
        self._store = None
        q = self.question
        if presentation is None:
            store = self.store if (record or learner is None or attempt is None) else None
            learner = learner if learner is not None else store.learner
            attempt = attempt if attempt is not None else store.next_attempt(q.id)
            presentation = Q.present(q, learner, attempt)
        self.presentation = presentation
        skill = Q.SKILLS[q.skill].line
        head = (f"<b>{html.escape(q.id)}</b> <small>({html.escape(skill)}; {q.difficulty}; "
                f"{html.escape(Q.KIND_NAMES[q.kind])})</small><br>{html.escape(q.prompt)}")
        self.prompt = w.HTML(head.replace("\n", "<br>"))
        self.feedback = w.HTML("")
        self.button = w.Button(description="Check", button_style="primary", icon="check")
        self.button.on_click(lambda _b: self.check())
        self.unavailable = Q.available(q, self.facts)
        if self.unavailable:
            self.input = w.HTML(_box(_WARN, "This question reads a number from your own run. "
                                     + html.escape(self.unavailable)))
            parts = [self.prompt, self.input]
        else:
            self.input = self._build()
            parts = [self.prompt, self.input] + ([self.button, self.feedback] if mode != "exam" else [])
        super().__init__(parts, layout=w.Layout(border="1px solid #ddd", padding="6px", margin="6px 0"))

    @property
    def store(self):
        if self._store is None:
            self._store = _store(self.ws)
        return self._store

    # ---- inputs, one per format ---------------------------------------------------------------------------
    def _build(self):
        q, p = self.question, self.presentation
        if q.kind == "single":
            self._radio = w.RadioButtons(options=[(f"{Q.LETTERS[i]}) {o.text}", o.id)
                                                  for i, o in enumerate(p.options())],
                                         value=None, layout=w.Layout(width="auto"))
            return self._radio
        if q.kind == "multi":
            self._boxes = {o.id: w.Checkbox(description=f"{Q.LETTERS[i]}) {o.text}", value=False, indent=False,
                                            layout=w.Layout(width="auto"), style={"description_width": "initial"})
                           for i, o in enumerate(p.options())}
            return w.VBox([w.HTML(f"<i>Select {q.select}.</i>"), *self._boxes.values()])
        if q.kind == "yesno":
            self._toggles = {s.id: w.ToggleButtons(options=[("Yes", True), ("No", False)], value=None,
                                                   style={"button_width": "60px"}) for s in p.statements()}
            rows = [w.HBox([self._toggles[s.id], w.HTML(f"{n}. {html.escape(s.text)}")])
                    for n, s in enumerate(p.statements(), 1)]
            return w.VBox([w.HTML("<i>For each statement, select Yes if it is true, otherwise No.</i>"), *rows])
        if q.kind == "order":
            actions = "".join(f"<li>{Q.LETTERS[i]}) {html.escape(o.text)}</li>" for i, o in enumerate(p.options()))
            opts = [_NONE] + [(f"{Q.LETTERS[i]}) {o.text}", o.id) for i, o in enumerate(p.options())]
            self._slots = [w.Dropdown(options=opts, value=None, description=f"Step {k + 1}",
                                      layout=w.Layout(width="95%")) for k in range(len(q.steps))]
            return w.VBox([w.HTML(f"<i>Actions</i><ul style='list-style:none'>{actions}</ul><i>Put "
                                  f"{len(q.steps)} of them in order:</i>"), *self._slots])
        if q.kind == "match":
            opts = [_NONE] + [(f"{Q.LETTERS[i]}) {o.text}", o.id) for i, o in enumerate(p.options())]
            self._pairs = {it.id: w.Dropdown(options=opts, value=None, layout=w.Layout(width="45%"))
                           for it in p.items()}
            rows = [w.HBox([w.HTML(f"{n}. {html.escape(it.text)}", layout=w.Layout(width="50%")),
                            self._pairs[it.id]]) for n, it in enumerate(p.items(), 1)]
            return w.VBox([w.HTML("<i>Each target may be used once, more than once, or not at all.</i>"), *rows])
        if q.kind == "code":
            numbered = iter(range(1, len(q.blanks) + 1))
            code = Q.bank.PLACEHOLDER.sub(lambda _m: f"[{next(numbered)}]", q.template)
            self._drops = {b.id: w.Dropdown(options=[_NONE] + [(o.text, o.id) for o in p.blank_options(k)],
                                            value=None, description=f"[{k + 1}]", layout=w.Layout(width="70%"))
                           for k, b in enumerate(q.blanks)}
            lang = {"python": "Python", "csharp": "C#"}[q.language]
            return w.VBox([w.HTML(f"<i>Answer area ({lang})</i><pre style='background:#f6f8fa;padding:6px'>"
                                  f"{html.escape(code)}</pre>"), *self._drops.values()])
        hint = "0.33, 1/3 or 33%" if q.unit == "fraction" else "a number"
        self._text = w.Text(placeholder=hint, layout=w.Layout(width="40%"))
        return self._text

    def response(self):
        """The answer entered so far as ids (None while incomplete)."""
        q = self.question
        if self.unavailable:
            return None
        if q.kind == "single":
            return self._radio.value
        if q.kind == "multi":
            picked = sorted(i for i, b in self._boxes.items() if b.value)
            return picked or None
        if q.kind == "yesno":
            values = {i: t.value for i, t in self._toggles.items()}
            return None if None in values.values() else values
        if q.kind == "order":
            values = [d.value for d in self._slots]
            return None if None in values else values
        if q.kind == "match":
            values = {i: d.value for i, d in self._pairs.items()}
            return None if None in values.values() else values
        if q.kind == "code":
            values = {i: d.value for i, d in self._drops.items()}
            return None if None in values.values() else values
        return self._text.value.strip() or None

    def set_response(self, response) -> None:
        """Fill the input from typed text (as shown on this screen) or from ids."""
        q = self.question
        if q.kind != "numeric" and isinstance(response, str):
            response = Q.parse(self.presentation, response)
        if q.kind == "single":
            self._radio.value = response
        elif q.kind == "multi":
            chosen = set(response)
            for i, b in self._boxes.items():
                b.value = i in chosen
        elif q.kind == "yesno":
            for i, t in self._toggles.items():
                t.value = response[i]
        elif q.kind == "order":
            for d, i in zip(self._slots, response):
                d.value = i
        elif q.kind == "match":
            for i, d in self._pairs.items():
                d.value = response[i]
        elif q.kind == "code":
            for i, d in self._drops.items():
                d.value = response[i]
        else:
            self._text.value = str(response)

    def answer(self, response) -> Q.Grade | None:
        self.set_response(response)
        return self.check()

    def check(self) -> Q.Grade | None:
        """Grade what is entered, show the feedback and record it; None (with a hint) if it is incomplete."""
        if self.unavailable:
            return None
        response = self.response()
        if response is None:
            self.feedback.value = _box(_WARN, "Answer every part first (" + html.escape(
                Q.expected_form(self.presentation)) + "), then press Check.")
            return None
        try:
            result = Q.grade(self.question, response, presentation=self.presentation, facts=self.facts)
        except CvlabError as exc:
            self.feedback.value = _box(_WARN, html.escape(exc.message))
            return None
        self.last = result
        if self.record:
            facts = {f: self.facts[f] for f in self.question.facts} if self.question.facts else None
            self.store.record_answer(result, self.presentation, mode=self.mode, facts=facts)
        colour = _OK if result.correct else _PART if result.points else _BAD
        body = html.escape(result.feedback.rsplit(" (Source:", 1)[0])
        self.feedback.value = _box(colour, f"{body}<br><small>Source: {_links(self.question)}</small>")
        if self.on_graded:
            self.on_graded(self, result)
        return result


class CaseStudyCell(w.VBox):
    """A case study: the scenario (collapsible) and a cell per question."""

    def __init__(self, case_id: str, ws: Any = None, facts=None, **kw):
        self.case = Q.get_case(case_id)
        scenario = w.Accordion(children=[w.HTML(html.escape(self.case.scenario).replace("\n", "<br>"))],
                               titles=(f"Case study: {self.case.title}",), selected_index=0)
        self.cells = [QuizCell(qid, ws=ws, facts=facts, **kw) for qid in self.case.question_ids]
        super().__init__([scenario, *self.cells])


def quiz_cell(*ids: str, ws: Any = None, facts: Mapping[str, Any] | None = None,
              context: Mapping[str, Any] | None = None, record: bool = True) -> w.VBox:
    """Quiz cells stacked (a case-study id gives its scenario and questions). Questions about your run need the
    numbers the notebook showed: ``facts={"precision_at_50": ...}`` (see quizzes/facts.yaml)."""
    if not ids:
        raise CvlabError("BadRequest", "name at least one question id, e.g. quiz_cell('choose-01')")
    facts = facts if facts is not None else context
    parts, cells = [], []
    for i in ids:
        if i in Q.cases():
            case = CaseStudyCell(i, ws=ws, facts=facts, record=record)
            parts.append(case)
            cells += case.cells
        else:
            cell = QuizCell(i, ws=ws, facts=facts, record=record)
            parts.append(cell)
            cells.append(cell)
    box = w.VBox(parts)
    box.cells = cells
    return box


class QuizSession(w.VBox):
    """A mixed quiz, one question at a time, with a running score and a review of what was missed.

    The order is `cvlab.quiz.plan`: what is due (missed first), then new questions, so mistakes come back.
    """

    def __init__(self, ws: Any, pool: Sequence[Q.Question] | None = None, count: int = 10, seed: int = 0,
                 context: Mapping[str, Any] | None = None, facts: Mapping[str, Any] | None = None,
                 questions: Sequence[Q.Question] | None = None, mode: str = "practice"):
        self.ws, self.facts, self.mode = ws, facts if facts is not None else context, mode
        if questions is None:
            pool = list(pool) if pool is not None else Q.questions()
            pool = [q for q in pool if Q.available(q, self.facts) is None]
            questions = Q.plan(pool, ws, count, seed)
        self.questions = list(questions)
        if not self.questions:
            raise CvlabError("BadRequest", "no questions to ask: widen the topic or run the notebooks first")
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
        return self.slot.children[-1]

    def _show(self) -> None:
        q = self.questions[self.position]
        cell = QuizCell(q, ws=self.ws, facts=self.facts, mode=self.mode, on_graded=self._graded)
        head = [w.HTML(_box("#555", f"<b>Case study: {html.escape(Q.get_case(q.case).title)}</b><br>"
                            + html.escape(Q.get_case(q.case).scenario).replace("\n", "<br>")))] if q.case else []
        self.slot.children = [*head, cell]
        self.next_button.disabled = True
        self._update_score()

    def _graded(self, cell: QuizCell, result: Q.Grade) -> None:
        if len(self.results) == self.position:  # the first attempt of each question counts
            self.results.append(result)
        self.next_button.disabled = self.position + 1 >= len(self.questions)
        self._update_score()
        if len(self.results) == len(self.questions):
            self.review_box.value = self.review_html()

    def _update_score(self) -> None:
        total = sum(r.score for r in self.results)
        self.score.value = (f"<b>Question {self.position + 1} of {len(self.questions)}</b> - "
                            f"score {total:g}/{len(self.results)}")

    def next(self) -> None:
        if self.position + 1 < len(self.questions) and len(self.results) > self.position:
            self.position += 1
            self._show()

    def missed(self) -> list[Q.Question]:
        wrong = {r.question_id for r in self.results if not r.correct}
        return [q for q in self.questions if q.id in wrong]

    def review_html(self) -> str:
        total = sum(r.score for r in self.results)
        rows = [f"<h4>Score: {total:g}/{len(self.results)}</h4>"]
        for q in self.missed():
            r = next(r for r in self.results if r.question_id == q.id)
            rows.append(f"<p><b>{q.id}</b> {html.escape(q.prompt)}<br>Answer: {html.escape(r.expected)}<br>"
                        f"<i>{html.escape(q.explanation)}</i></p>")
        if len(rows) == 1:
            rows.append("<p>Nothing missed.</p>")
        return "".join(rows)


def progress_view(ws: Any = None, now=None) -> w.VBox:
    """Progress per AI-102 skill line: the table and the bar chart (Leitner boxes)."""
    store = _store(ws)
    table = Q.progress(store, now)
    shown = table.drop(columns=["skill"]).rename(index={k: Q.SKILLS[k].line for k in table.index})
    return w.VBox([w.HTML("<h4>Your progress per skill</h4>" + shown.to_html(na_rep="-")),
                   _png(Q.progress_figure(store, now))])


def review_cell(ws: Any = None, now=None, count: int | None = None) -> w.VBox:
    """Notebook 08's review: progress per skill, then today's due questions (missed first) one at a time."""
    store = _store(ws)
    due = Q.due(store, now)
    due = due[:count] if count else due
    progress = progress_view(store, now)
    if not due:
        body = w.HTML(_box(_OK, "Nothing is due today. Answer new questions in the notebooks or with "
                                "<code>cvlab quiz</code>; missed ones come back here tomorrow."))
    else:
        body = QuizSession(store, questions=due, mode="review")
    box = w.VBox([progress, w.HTML(f"<h4>Due today: {len(due)} question(s), missed first</h4>"), body])
    box.session = body if due else None
    return box


class ExamWidget(w.VBox):
    """Exam mode: start screen, timed questions with flag-for-review and a palette, a review screen, the report."""

    def __init__(self, ws: Any = None, size: int = Q.exam.DEFAULT_SIZE, minutes: float | None = None, *,
                 clock=None, learner: str | None = None):
        self.store = _store(ws)
        self.session = Q.ExamSession(self.store, size=size, minutes=minutes, clock=clock, learner=learner)
        self.cells: dict[int, QuizCell] = {}
        self.header = w.HTML()
        self.body = w.VBox()
        self.start_button = w.Button(description="Start the exam", button_style="primary", icon="play")
        self.prev_button = w.Button(description="Previous", icon="arrow-left")
        self.next_button = w.Button(description="Next", icon="arrow-right")
        self.flag_button = w.ToggleButton(description="Flag for review", icon="flag", value=False)
        self.review_button = w.Button(description="Review all", icon="list")
        self.finish_button = w.Button(description="Finish exam", button_style="danger", icon="stop")
        self.start_button.on_click(lambda _b: self.start())
        self.prev_button.on_click(lambda _b: self._move(self.session.index - 1))
        self.next_button.on_click(lambda _b: self._move(self.session.index + 1))
        self.flag_button.observe(self._flag_changed, "value")
        self.review_button.on_click(lambda _b: self.review())
        self.finish_button.on_click(lambda _b: self.finish())
        self.nav = w.HBox([self.prev_button, self.flag_button, self.next_button, self.review_button,
                           self.finish_button])
        self.ticker = w.Play(interval=1000, max=10 ** 9, playing=False, show_repeat=False,
                             layout=w.Layout(visibility="hidden", width="1px"))
        self.ticker.observe(lambda _c: self.tick(), "value")
        self.report = None
        self.screen = "start"
        n = len(self.session.slots)
        self.body.children = [w.HTML(
            f"<h3>Exam attempt {self.session.attempt}</h3><p>{n} questions drawn across the AI-102 custom-vision "
            f"skill lines, {self.session.minutes:g} minutes. You get no feedback until you finish. Flag any "
            "question to come back to it from the review screen. When time runs out the exam is submitted with "
            "the answers given so far. The score is reported like Microsoft's: 1-1000, 700 to pass.</p>"),
            self.start_button]
        super().__init__([self.header, self.body, self.ticker])

    # ---- screens ------------------------------------------------------------------------------------------
    def start(self) -> None:
        self.session.start()
        self.ticker.playing = True
        self._show_question()

    def _cell(self, index: int) -> QuizCell:
        if index not in self.cells:
            slot = self.session.slots[index]
            self.cells[index] = QuizCell(slot.question, ws=self.store, record=False, mode="exam",
                                         presentation=slot.presentation)
        return self.cells[index]

    def _head(self) -> str:
        s = self.session
        left = int(s.time_left().total_seconds())
        return (f"<b>Question {s.index + 1} of {len(s.slots)}</b> &middot; {left // 60}:{left % 60:02d} left "
                f"&middot; answered {len(s.slots) - len(s.unanswered())} &middot; flagged {len(s.flagged())}")

    def _show_question(self) -> None:
        self.screen = "question"
        slot = self.session.current
        case = Q.get_case(slot.question.case) if slot.question.case else None
        parts = [w.HTML(_box("#555", f"<b>Case study: {html.escape(case.title)}</b><br>"
                             + html.escape(case.scenario).replace("\n", "<br>")))] if case else []
        self.flag_button.unobserve(self._flag_changed, "value")
        self.flag_button.value = slot.flagged
        self.flag_button.observe(self._flag_changed, "value")
        self.prev_button.disabled = self.session.index == 0
        self.body.children = [*parts, self._cell(self.session.index), self.nav]
        self.header.value = self._head()

    def _save(self) -> bool:
        """Keep the current question's answer (an incomplete one counts as unanswered); False, with the reason
        shown, when what was typed cannot be read."""
        if self.screen != "question":
            return True
        cell = self.cells.get(self.session.index)
        if cell is not None:
            try:
                self.session.answer(cell.response())
            except CvlabError as exc:
                self.header.value = self._head() + "<br>" + _box(_WARN, html.escape(exc.message))
                return False
        return True

    def _guard(self) -> bool:
        """False (and the report shown) once time is up."""
        if self.report is None and self.session.expired:
            self.finish(timed_out=True)
        return self.report is None

    def _move(self, index: int) -> None:
        if not self._guard() or not self._save():
            return
        if index >= len(self.session.slots):
            return self.review()
        self.session.goto(max(index, 0))
        self._show_question()

    def goto(self, index: int) -> None:
        self._move(index)

    def _flag_changed(self, change) -> None:
        if self._guard():
            self.session.flag(on=change["new"])
            self.header.value = self._head()

    def review(self) -> None:
        """Every question with its state; a click returns to it."""
        if not self._guard() or not self._save():
            return
        self.screen = "review"
        s = self.session
        self.palette = []
        for i, slot in enumerate(s.slots):
            label = f"{i + 1}{'*' if slot.flagged else ''}"
            b = w.Button(description=label, layout=w.Layout(width="52px"),
                         button_style="warning" if slot.flagged else "" if slot.answered else "danger",
                         tooltip="flagged" if slot.flagged else "answered" if slot.answered else "unanswered")
            b.on_click(lambda _b, i=i: self._move(i))
            self.palette.append(b)
        self.body.children = [
            w.HTML(f"<h4>Review</h4><p>{len(s.unanswered())} unanswered (red), {len(s.flagged())} flagged (amber). "
                   "Select a number to return to it, or finish the exam.</p>"),
            w.GridBox(self.palette, layout=w.Layout(grid_template_columns="repeat(10, 56px)")),
            self.finish_button]
        left = int(s.time_left().total_seconds())
        self.header.value = f"<b>Review</b> &middot; {left // 60}:{left % 60:02d} left"

    def finish(self, timed_out: bool = False) -> Q.ExamReport:
        if self.report is not None:
            return self.report
        cell = self.cells.get(self.session.index) if self.screen == "question" else None
        if cell is not None and cell.response() is not None:  # what is on screen counts, even as time runs out
            self.session.current.response = Q.grading.normalize(cell.question, cell.response())
        self.ticker.playing = False
        self.report = self.session.finish(timed_out=timed_out)
        self.screen = "report"
        self.header.value = "<b>Score report</b>" + (" &middot; time ran out" if self.report.timed_out else "")
        self.body.children = [w.HTML(self.report.html()), _png(self.report.figure()),
                              _png(Q.attempts_figure(self.store))]
        return self.report

    def tick(self) -> None:
        """Called every second by the (hidden) ticker: refresh the time, submit when it is up."""
        if self.report is not None or self.session.started is None:
            return
        if self._guard() and self.screen == "question":
            self.header.value = self._head()


__all__ = ["CaseStudyCell", "ExamWidget", "QuizCell", "QuizSession", "progress_view", "quiz_cell", "review_cell"]
