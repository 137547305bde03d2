"""Spaced review with Leitner boxes, folded from the answer records (the log is the only state).

In cvlab a question enters box 1 when first missed and box 2 when first answered fully right. Full credit moves it
up one box (at most box 5), partial credit keeps it where it is, no credit sends it back to box 1. A question in
box b is due ``BOX_DAYS[b - 1]`` days after its last answer (1, 2, 4, 8, 16 days). Every answer counts: notebook
cells, the terminal quiz, the review itself and exam attempts.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Iterable, Sequence

from cvlab.errors import CvlabError

from .bank import SKILLS, Question, get_question, questions
from .store import open_store

BOX_DAYS = (1, 2, 4, 8, 16)
MASTERED_BOX = 4


@dataclass(frozen=True)
class Card:
    question_id: str
    box: int
    seen: int
    last_score: float
    last_at: datetime

    @property
    def due(self) -> date:
        return (self.last_at + timedelta(days=BOX_DAYS[self.box - 1])).date()

    @property
    def missed(self) -> bool:
        return self.last_score < 1.0


def cards(records: Iterable[dict]) -> dict[str, Card]:
    """The Leitner state of every answered question (old ids of merged questions count for the survivor)."""
    state: dict[str, Card] = {}
    for rec in records:
        if rec.get("type") != "answer":
            continue
        try:
            qid = get_question(rec["question"]).id
        except CvlabError:
            continue  # a question no longer in the bank: its record stays in the log, it just has no card
        score = rec["points"] / rec["max_points"]
        old = state.get(qid)
        if old is None:
            box = 2 if score >= 1.0 else 1
        else:
            box = min(old.box + 1, len(BOX_DAYS)) if score >= 1.0 else old.box if score > 0 else 1
        state[qid] = Card(qid, box, (old.seen if old else 0) + 1, score, rec["at_dt"])
    return state


def _now(store, now):
    return now if now is not None else store.now()


def due(ws, now: datetime | None = None, pool: Sequence[Question] | None = None) -> list[Question]:
    """Questions due today, missed ones first, then the lowest boxes, then the longest overdue."""
    store = open_store(ws)
    today = _now(store, now).date()
    state = cards(store.answers())
    pool = [q for q in (questions() if pool is None else pool) if not q.facts]
    ready = [q for q in pool if q.id in state and state[q.id].due <= today]
    return sorted(ready, key=lambda q: (not state[q.id].missed, state[q.id].box, state[q.id].due, q.id))


def plan(pool: Sequence[Question], ws=None, count: int | None = None, seed: int = 0,
         now: datetime | None = None) -> list[Question]:
    """A practice session: what is due (missed first), then questions never seen (seeded shuffle), then the rest
    (longest since last answered first)."""
    pool = list(pool)
    state = {} if ws is None else cards(open_store(ws).answers())
    ids = {q.id for q in pool}
    first = [] if ws is None else [q for q in due(ws, now, pool) if q.id in ids]
    taken = {q.id for q in first}
    unseen = [q for q in pool if q.id not in state]
    random.Random(seed).shuffle(unseen)
    rest = sorted((q for q in pool if q.id in state and q.id not in taken), key=lambda q: state[q.id].last_at)
    ordered = first + unseen + rest
    return ordered if count is None else ordered[:count]


def progress(ws, now: datetime | None = None):
    """A table per skill line: questions, seen, per box, due today, mastered (box >= 4) and the latest score."""
    import pandas as pd

    store = open_store(ws)
    today = _now(store, now).date()
    state = cards(store.answers())
    rows = []
    for key, skill in SKILLS.items():
        pool = [q for q in questions(skill=key) if not q.facts]
        mine = [state[q.id] for q in pool if q.id in state]
        row = {"skill": skill.line, "key": key, "questions": len(pool), "seen": len(mine)}
        row.update({f"box {b}": sum(c.box == b for c in mine) for b in range(1, len(BOX_DAYS) + 1)})
        row["due today"] = sum(c.due <= today for c in mine)
        row["mastered %"] = round(100 * sum(c.box >= MASTERED_BOX for c in mine) / len(pool)) if pool else 0
        row["latest score %"] = round(100 * sum(c.last_score for c in mine) / len(mine)) if mine else None
        rows.append(row)
    return pd.DataFrame(rows).set_index("key")


def progress_figure(ws, now: datetime | None = None):
    """Stacked bars per skill: not seen yet, then boxes 1-5 (box 4 and up counts as mastered)."""
    import matplotlib.pyplot as plt

    table = progress(ws, now)
    fig, ax = plt.subplots(figsize=(9, 4.2), layout="constrained")
    plt.close(fig)
    labels = [s if len(s) < 48 else s[:45] + "..." for s in table["skill"]]
    left = [0] * len(table)
    segments = [("not seen", table["questions"] - table["seen"], "#e0e0e0")] + [
        (f"box {b}", table[f"box {b}"], colour) for b, colour in
        zip(range(1, 6), ("#d62728", "#ff7f0e", "#bcbd22", "#2ca02c", "#17becf"))]
    for name, values, colour in segments:
        ax.barh(labels, values, left=left, color=colour, label=name)
        left = [a + b for a, b in zip(left, values)]
    ax.invert_yaxis()
    ax.set_xlabel("questions")
    ax.set_title("Spaced review: where each skill's questions are")
    ax.legend(ncols=6, loc="lower center", bbox_to_anchor=(0.5, -0.32), frameon=False, fontsize=8)
    return fig


@dataclass(frozen=True)
class Summary:
    answered: int
    correct_last: int
    total: int
    missed: list[str]
    by_skill: dict[str, tuple[int, int]]  # skill -> (right last time, answered)

    @property
    def score(self) -> float:
        return self.correct_last / self.answered if self.answered else 0.0


def summary(ws, topic: str | None = None) -> Summary:
    """Latest result per answered question: how many, how many fully right, the ids still missed, per skill."""
    state = cards(open_store(ws).answers())
    pool = questions(topic)
    seen = [q for q in pool if q.id in state]
    by_skill: dict[str, tuple[int, int]] = {}
    for q in seen:
        right, n = by_skill.get(q.skill, (0, 0))
        by_skill[q.skill] = (right + (not state[q.id].missed), n + 1)
    missed = [q.id for q in seen if state[q.id].missed]
    return Summary(len(seen), len(seen) - len(missed), len(pool), missed, by_skill)


__all__ = ["BOX_DAYS", "Card", "Summary", "cards", "due", "plan", "progress", "progress_figure", "summary"]
