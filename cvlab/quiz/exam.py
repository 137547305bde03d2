"""Exam mode: a timed mixed form drawn by skill weight, no feedback until the end, flag for review and return,
then a score report like Microsoft's (a scaled score with the 700 pass line, and a bar per skill).

Microsoft reports technical exams on a scale of 1 to 1,000 with 700 to pass; the cut score behind it is set per
exam by subject-matter experts and is not published (it is not simply 70 %). In cvlab the scale is piecewise
linear with the cut at 70 % of the points: 0 % -> 1, 70 % -> 700, 100 % -> 1000. Housekeeping questions (dates,
lab status) and questions about the learner's own run never appear in a form.
"""
from __future__ import annotations

import html
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Sequence

from cvlab.errors import CvlabError

from .bank import SKILLS, Question, cases, get_question, questions
from .grading import Grade, Presentation, expected_text, grade, normalize, parse, present, seed_for
from .store import QuizStore, open_store

PASS_MARK = 700
CUT = 0.70            # in cvlab: the fraction of points that maps to 700
DEFAULT_SIZE = 40     # questions in a form (Microsoft's exams have about 40-60 items)
MINUTES_PER_QUESTION = 2


def scaled_score(fraction: float, cut: float = CUT) -> int:
    """1-1000 from the fraction of points: linear up to the cut (-> 700), linear above it (-> 1000)."""
    f = min(max(float(fraction), 0.0), 1.0)
    if f < cut:
        return min(PASS_MARK - 1, int(round(1 + (PASS_MARK - 1) * f / cut)))
    return int(round(PASS_MARK + (1000 - PASS_MARK) * (f - cut) / (1 - cut)))


def eligible(pool: Sequence[Question] | None = None) -> list[Question]:
    return [q for q in (questions() if pool is None else pool) if q.in_exam]


def _quotas(size: int, have: dict[str, int]) -> dict[str, int]:
    """Questions per skill for a form of `size`: weights by largest remainder, shortfalls passed on."""
    weights = {k: SKILLS[k].weight for k in SKILLS if have.get(k, 0) > 0}
    total = sum(weights.values())
    exact = {k: size * w / total for k, w in weights.items()}
    quota = {k: min(int(v), have[k]) for k, v in exact.items()}
    by_remainder = sorted(weights, key=lambda k: (-(exact[k] - int(exact[k])), k))
    while sum(quota.values()) < size and any(quota[k] < have[k] for k in weights):
        for k in by_remainder:
            if sum(quota.values()) < size and quota[k] < have[k]:
                quota[k] += 1
    return quota


def draw_form(learner: str, attempt: int, size: int = DEFAULT_SIZE, pool: Sequence[Question] | None = None,
              with_case: bool = True) -> list[Question]:
    """A reproducible form for (learner, attempt): one case study (for forms of 20 or more) at the end, the rest
    drawn per skill weight and shuffled."""
    if size < 5:
        raise CvlabError("BadRequest", f"an exam form needs at least 5 questions, not {size}")
    rng = random.Random(seed_for(learner, f"exam-{attempt}", "form"))
    pool = eligible(pool)
    ids = {q.id for q in pool}
    block: list[Question] = []
    if with_case and size >= 20:
        whole = [c for c in cases().values() if set(c.question_ids) <= ids]
        if whole:
            block = [get_question(i) for i in rng.choice(sorted(whole, key=lambda c: c.id)).question_ids]
    singles = sorted((q for q in pool if q.case is None), key=lambda q: q.id)
    if len(singles) + len(block) < size:
        raise CvlabError("BadRequest", f"the bank has only {len(singles) + len(block)} exam questions; ask for fewer")
    by_skill: dict[str, list[Question]] = {}
    for q in singles:
        by_skill.setdefault(q.skill, []).append(q)
    for qs in by_skill.values():
        rng.shuffle(qs)
    want = _quotas(size, {k: len(v) + sum(q.skill == k for q in block) for k, v in by_skill.items()})
    for q in block:
        if want.get(q.skill):
            want[q.skill] -= 1
    chosen = [q for k, qs in by_skill.items() for q in qs[:want.get(k, 0)]]
    spare = [q for k, qs in sorted(by_skill.items()) for q in qs[want.get(k, 0):]]
    rng.shuffle(spare)
    chosen += spare[:size - len(block) - len(chosen)]
    rng.shuffle(chosen)
    return chosen + block


@dataclass
class Slot:
    question: Question
    presentation: Presentation
    response: Any = None
    flagged: bool = False

    @property
    def answered(self) -> bool:
        return self.response is not None


@dataclass
class ExamReport:
    attempt: int
    scaled: int
    fraction: float
    by_skill: dict[str, tuple[float, int]]   # skill -> (score 0..1, questions)
    items: list[tuple[Slot, Grade]]
    timed_out: bool
    duration: timedelta
    flagged: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.scaled >= PASS_MARK

    def text(self, width: int = 24) -> str:
        """The score report for a terminal: score, pass/fail, a bar per skill, then every question reviewed."""
        mins, secs = divmod(int(self.duration.total_seconds()), 60)
        lines = [f"Score report, exam attempt {self.attempt}",
                 f"Your score: {self.scaled}   Passing score: {PASS_MARK}   Result: "
                 f"{'PASS' if self.passed else 'FAIL'}" + ("   (time ran out)" if self.timed_out else ""),
                 f"Time used: {mins} min {secs:02d} s   Points: {self.fraction:.0%} (in cvlab the cut is "
                 f"{CUT:.0%}; Microsoft's cut scores are set per exam and not published)", "",
                 "Skill area"]
        for key, (score, n) in self.by_skill.items():
            bar = "#" * round(width * score) + "." * (width - round(width * score))
            lines.append(f"  {SKILLS[key].line[:58]:58s} {bar} {score:4.0%} ({n} q)")
        lines += ["", "Review (answers and explanations):"]
        for n, (slot, g) in enumerate(self.items, 1):
            mark = "right" if g.correct else f"{g.score:.0%}" if g.score else "wrong"
            lines.append(f"  {n:2d}. [{slot.question.id}] {mark}{'  (flagged)' if slot.flagged else ''}: "
                         f"{g.feedback}")
        return "\n".join(lines)

    def figure(self):
        """A bar per skill area (share of points), with the pass line for reference."""
        import matplotlib.pyplot as plt

        keys = list(self.by_skill)
        fig, ax = plt.subplots(figsize=(8, 0.45 * len(keys) + 1.4), layout="constrained")
        plt.close(fig)
        scores = [self.by_skill[k][0] for k in keys]
        ax.barh([SKILLS[k].line[:50] for k in keys], scores, color=["#2e7d32" if s >= CUT else "#c62828"
                                                                      for s in scores])
        ax.axvline(CUT, color="#555", lw=1, ls="--")
        ax.set_xlim(0, 1)
        ax.invert_yaxis()
        ax.xaxis.set_major_formatter(lambda v, _: f"{v:.0%}")
        ax.set_title(f"Attempt {self.attempt}: {self.scaled} ({'pass' if self.passed else 'fail'}; 700 to pass)")
        return fig

    def html(self) -> str:
        colour = "#2e7d32" if self.passed else "#c62828"
        rows = "".join(
            f"<tr><td>{html.escape(SKILLS[k].line)}</td><td style='width:45%'><div style='background:#eee'>"
            f"<div style='width:{score:.0%};background:{'#2e7d32' if score >= CUT else '#c62828'};height:12px'>"
            f"</div></div></td><td>{score:.0%} ({n})</td></tr>" for k, (score, n) in self.by_skill.items())
        review = "".join(
            f"<li><b>{html.escape(s.question.id)}</b> {'right' if g.correct else f'{g.score:.0%}'}"
            f"{' (flagged)' if s.flagged else ''}: {html.escape(g.feedback)}</li>" for s, g in self.items)
        return (f"<h3 style='color:{colour}'>Your score: {self.scaled} &middot; passing score {PASS_MARK} &middot; "
                f"{'PASS' if self.passed else 'FAIL'}</h3>"
                f"<p>{self.fraction:.0%} of the points{' (time ran out)' if self.timed_out else ''}. In cvlab the cut "
                f"is {CUT:.0%} of the points; Microsoft sets each exam's cut score with experts and does not "
                f"publish it.</p><table>{rows}</table><h4>Review</h4><ol>{review}</ol>")


class ExamSession:
    """One timed attempt. Answers are kept without feedback until `finish`; flags and navigation are free."""

    def __init__(self, ws, size: int = DEFAULT_SIZE, minutes: float | None = None, *, learner: str | None = None,
                 clock=None, pool: Sequence[Question] | None = None):
        self.store: QuizStore = open_store(ws)
        if clock is not None:
            self.store.clock = clock
        self.learner = learner or self.store.learner
        self.attempt = len(self.store.records("exam", since_reset=False)) + 1
        form = draw_form(self.learner, self.attempt, size, pool)
        self.slots = [Slot(q, present(q, self.learner, f"exam-{self.attempt}")) for q in form]
        self.minutes = float(minutes if minutes is not None else MINUTES_PER_QUESTION * len(form))
        if self.minutes <= 0:
            raise CvlabError("BadRequest", "the exam needs a positive time limit in minutes")
        self.index = 0
        self.started: datetime | None = None
        self.report: ExamReport | None = None

    # ---- time ---------------------------------------------------------------------------------------------
    def start(self) -> None:
        if self.started is None:
            self.started = self.store.now()

    @property
    def deadline(self) -> datetime:
        self.start()
        return self.started + timedelta(minutes=self.minutes)

    def time_left(self) -> timedelta:
        return max(self.deadline - self.store.now(), timedelta(0))

    @property
    def expired(self) -> bool:
        return self.store.now() >= self.deadline

    def _open(self) -> None:
        if self.report is not None:
            raise CvlabError("BadRequest", "this exam attempt is finished; start a new one")
        if self.expired:
            self.finish(timed_out=True)
            raise CvlabError("BadRequest", "time is up: the exam was submitted with the answers given so far")

    # ---- navigation and answers -----------------------------------------------------------------------------
    @property
    def current(self) -> Slot:
        return self.slots[self.index]

    def goto(self, index: int) -> Slot:
        self._open()
        if not 0 <= index < len(self.slots):
            raise CvlabError("BadRequest", f"question {index + 1} does not exist; the form has 1-{len(self.slots)}")
        self.index = index
        return self.current

    def next(self) -> Slot:
        return self.goto(min(self.index + 1, len(self.slots) - 1))

    def prev(self) -> Slot:
        return self.goto(max(self.index - 1, 0))

    def answer(self, response, index: int | None = None) -> None:
        """Keep an answer (typed text as shown, or ids) for the current question; no feedback is given."""
        self._open()
        slot = self.slots[self.index if index is None else index]
        if response is None:
            slot.response = None
            return
        slot.response = (parse(slot.presentation, response) if isinstance(response, str)
                         else normalize(slot.question, response))

    def flag(self, index: int | None = None, on: bool | None = None) -> bool:
        self._open()
        slot = self.slots[self.index if index is None else index]
        slot.flagged = (not slot.flagged) if on is None else bool(on)
        return slot.flagged

    def unanswered(self) -> list[int]:
        return [i for i, s in enumerate(self.slots) if not s.answered]

    def flagged(self) -> list[int]:
        return [i for i, s in enumerate(self.slots) if s.flagged]

    # ---- the end ------------------------------------------------------------------------------------------
    def finish(self, timed_out: bool = False) -> ExamReport:
        """Grade every question, record the answers and the attempt, and return the score report."""
        if self.report is not None:
            return self.report
        self.start()
        ended = min(self.store.now(), self.deadline)
        timed_out = timed_out or self.store.now() >= self.deadline
        items = []
        for slot in self.slots:
            if slot.answered:
                g = grade(slot.question, slot.response, presentation=slot.presentation)
            else:
                g = Grade(slot.question.id, False, expected_text(slot.presentation),
                          f"Not answered. The answer is {expected_text(slot.presentation)}. "
                          f"{slot.question.explanation} (Source: {' '.join(slot.question.source_urls)})",
                          0.0, slot.question.parts, None)
            items.append((slot, g))
            self.store.record_answer(g, slot.presentation, mode="exam", exam=self.attempt)
        by_skill: dict[str, list[float]] = {}
        for slot, g in items:
            by_skill.setdefault(slot.question.skill, []).append(g.score)
        ordered = {k: (sum(v) / len(v), len(v)) for k in SKILLS for v in [by_skill.get(k)] if v}
        fraction = sum(g.score for _, g in items) / len(items)
        report = ExamReport(self.attempt, scaled_score(fraction), fraction, ordered, items, timed_out,
                            ended - self.started, [s.question.id for s in self.slots if s.flagged])
        self.store.append({
            "type": "exam", "attempt": self.attempt, "learner": self.learner,
            "form": [s.question.id for s in self.slots],
            "started": self.started.isoformat(timespec="seconds"), "minutes": self.minutes,
            "seconds_used": int(report.duration.total_seconds()), "timed_out": timed_out,
            "fraction": round(fraction, 4), "scaled": report.scaled, "passed": report.passed,
            "by_skill": {k: {"score": round(s, 4), "questions": n} for k, (s, n) in ordered.items()},
            "flagged": report.flagged, "answered": sum(s.answered for s in self.slots)})
        self.report = report
        return report


def attempts(ws) -> list[dict]:
    """Finished exam attempts kept in the workspace (since the last reset), oldest first."""
    return open_store(ws).exams()


def attempts_figure(ws):
    """The scaled score over attempts, with the 700 pass line."""
    import matplotlib.pyplot as plt

    recs = attempts(ws)
    fig, ax = plt.subplots(figsize=(7, 3.2), layout="constrained")
    plt.close(fig)
    xs, ys = [r["attempt"] for r in recs], [r["scaled"] for r in recs]
    ax.plot(xs, ys, color="#1f77b4", marker="o", lw=1.5)
    for x, y in zip(xs, ys):
        ax.annotate(str(y), (x, y), textcoords="offset points", xytext=(0, 6), ha="center", fontsize=8)
    ax.axhline(PASS_MARK, color="#c62828", ls="--", lw=1, label="pass (700)")
    ax.set_ylim(0, 1000)
    ax.set_xlabel("exam attempt")
    ax.set_ylabel("scaled score")
    ax.set_title("Exam attempts" if recs else "No exam attempts yet")
    if xs:
        ax.set_xticks(xs)
    ax.legend(loc="lower right", frameon=False)
    return fig


__all__ = ["CUT", "DEFAULT_SIZE", "ExamReport", "ExamSession", "PASS_MARK", "Slot", "attempts", "attempts_figure",
           "draw_form", "eligible", "scaled_score"]
