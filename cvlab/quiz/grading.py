"""One engine for every face: a question is shown through a seeded `Presentation`, answers are read into ids,
and graded with Microsoft's partial credit.

Presentation: choices (statements, steps, match items and targets, code options) are shuffled with a seed made
of the learner id, the attempt and the question id, so two learners see different orders, the same learner sees a
new order on each attempt, and an instructor re-creates any learner's screen from the two values stored with the
answer (``present(q, learner, attempt)``). Responses are always stored as ids, never as letters or positions.

Partial credit follows Microsoft's exam scoring: one point per correctly answered part (each correct selection of
a "select two", each Yes/No statement, each step in its place, each match, each drop-down), and a "select N"
answer must pick exactly N. In cvlab every question then weighs the same: its score is points / parts.
"""
from __future__ import annotations

import hashlib
import math
import random
import re
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from cvlab.errors import CvlabError

from .bank import PLACEHOLDER, Option, Question, get_question

LETTERS = "abcdefghijklmnopqrstuvwxyz"
_YES = {"y", "yes", "true", "t", "1"}
_NO = {"n", "no", "false", "f", "0"}


def seed_for(learner: str, attempt, question_id: str) -> int:
    """A stable 64-bit seed (Python's hash() is salted per process; sha256 gives the same order on every laptop)."""
    digest = hashlib.sha256(f"{learner}\x1f{attempt}\x1f{question_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


@dataclass(frozen=True)
class Presentation:
    """How one question looks on one learner's screen: the order of every list it shows, as ids."""

    question: Question
    learner: str = ""
    attempt: str = "0"
    order: tuple[str, ...] = ()          # choices / statements / steps + extra actions / match targets
    item_order: tuple[str, ...] = ()     # match: the left-hand items
    blank_orders: tuple[tuple[str, ...], ...] = ()  # code: the options of each drop-down

    # ---- lookups ---------------------------------------------------------------------------------------------
    def options(self) -> list[Option]:
        q = self.question
        if q.kind in ("single", "multi", "order", "match"):
            return [q.option(i) for i in self.order]
        return []

    def letter(self, option_id: str) -> str:
        return LETTERS[self.order.index(option_id)]

    def statements(self):
        by_id = {s.id: s for s in self.question.statements}
        return [by_id[i] for i in self.order]

    def items(self):
        by_id = {i.id: i for i in self.question.items}
        return [by_id[i] for i in self.item_order]

    def blank_options(self, index: int) -> list[Option]:
        by_id = {o.id: o for o in self.question.blanks[index].options}
        return [by_id[i] for i in self.blank_orders[index]]

    def correct_positions(self) -> dict[str, int]:
        """Where each correct option sits on this screen (0-based), keyed by option id (for the position test)."""
        q = self.question
        if q.kind in ("single", "multi"):
            return {i: self.order.index(i) for i in q.correct_ids}
        if q.kind == "code":
            return {f"{b.id}:{b.answer.id}": self.blank_orders[n].index(b.answer.id) for n, b in enumerate(q.blanks)}
        return {}

    def to_dict(self) -> dict:
        return {"learner": self.learner, "attempt": self.attempt, "order": list(self.order),
                "item_order": list(self.item_order), "blank_orders": [list(b) for b in self.blank_orders]}


def present(question: Question | str, learner: str = "", attempt: Any = 0, *, shuffle: bool = True) -> Presentation:
    """The learner's screen for this attempt (shuffle=False keeps the bank's order, for authors)."""
    q = get_question(question) if isinstance(question, str) else question
    rng = random.Random(seed_for(learner, attempt, q.id))

    def mixed(ids):
        ids = list(ids)
        if shuffle:
            rng.shuffle(ids)
        return tuple(ids)

    order = item_order = ()
    blank_orders = ()
    if q.kind in ("single", "multi"):
        order = mixed(c.id for c in q.choices)
    elif q.kind == "yesno":
        order = mixed(s.id for s in q.statements)
    elif q.kind == "order":
        order = mixed(s.id for s in (*q.steps, *q.extra))
    elif q.kind == "match":
        item_order = mixed(i.id for i in q.items)
        order = mixed(t.id for t in q.targets)
    elif q.kind == "code":
        blank_orders = tuple(mixed(o.id for o in b.options) for b in q.blanks)
    return Presentation(q, learner, str(attempt), order, item_order, blank_orders)


# ----------------------------------------------------------------------------------------------- grades

@dataclass(frozen=True)
class Grade:
    """The outcome of one answer. `correct` means full credit; `points`/`max_points` carry partial credit."""

    question_id: str
    correct: bool
    expected: str
    feedback: str
    points: float | None = None
    max_points: int = 1
    response: Any = None
    notes: tuple[str, ...] = ()

    @property
    def score(self) -> float:
        if self.points is None:
            return 1.0 if self.correct else 0.0
        return self.points / self.max_points

    def __bool__(self) -> bool:
        return self.correct


def _bad(q: Question, message: str) -> CvlabError:
    return CvlabError("BadRequest", f"{q.id}: {message}")


def _clean(token: str) -> str:
    """A typed token without surrounding quotes/backticks and a trailing ')' or '.', case kept."""
    t = str(token).strip()
    while len(t) >= 2 and t[0] == t[-1] and t[0] in "\"'`":
        t = t[1:-1].strip()
    return t


def _squash(text: str) -> str:
    """Code-insensitive comparison: no whitespace, one quote style, no surrounding quotes."""
    return re.sub(r"\s+", "", _clean(text)).replace('"', "'").strip("'").lower()


def _resolve(q: Question, token: str, ordered: Sequence[Option], what: str = "option") -> str:
    """A typed token -> option id: a letter or 1-based number of the shown list, or the option's id or text."""
    raw = _clean(token)
    low = raw.lower().rstrip(").:")
    n = len(ordered)
    if len(low) == 1 and low in LETTERS[:n]:
        return ordered[LETTERS.index(low)].id
    if low.isdigit() and 1 <= int(low) <= n:
        return ordered[int(low) - 1].id
    for o in ordered:
        if low == o.id.lower() or _squash(raw) == _squash(o.text):
            return o.id
    raise _bad(q, f"{raw!r} is not one of the {what}s shown; type a letter a-{LETTERS[n - 1]}"
               + (" or the option's text" if what == "option" else ""))


def _tokens(text: str, ordered: Sequence[Option]) -> list[str]:
    """Split 'b, d' / 'b d' / 'bd' into tokens; a run of letters splits into letters when each is a shown one."""
    text = str(text).strip()
    parts = [p for p in re.split(r"[,;]\s*|\s+", text) if p]
    if len(parts) == 1:
        only = _clean(parts[0]).lower()
        letters = set(LETTERS[:len(ordered)])
        if len(only) > 1 and set(only) <= letters and not any(
                only == o.id.lower() or _squash(only) == _squash(o.text) for o in ordered):
            return list(only)
    return parts


def _parse_number(q: Question, text) -> float:
    t = _clean(str(text)).replace(" ", "").replace("_", "")
    percent = t.endswith("%")
    if percent:
        t = t[:-1]
    try:
        decimal_comma = re.fullmatch(r"[-+]?\d+,\d+", t) and (q.unit == "fraction" or t.lstrip("+-")[0] == "0")
        if not decimal_comma and re.fullmatch(r"[-+]?[1-9]\d{0,2}(,\d{3})+(\.\d+)?", t):  # 10,240: thousands
            value = float(t.replace(",", ""))
        elif decimal_comma:                                               # 0,33: a decimal comma
            value = float(t.replace(",", "."))
        elif "/" in t:
            num, den = t.split("/", 1)
            value = float(num) / float(den)
        else:
            value = float(t)
    except (ValueError, ZeroDivisionError):
        raise _bad(q, f"{str(text).strip()!r} is not a number; type e.g. 0.33, 1/3 or 33%") from None
    if not math.isfinite(value):
        raise _bad(q, "answer with a finite number")
    if percent:
        value /= 100
    if q.unit == "fraction" and not 0 <= value <= 1:
        raise _bad(q, f"{str(text).strip()!r} is not between 0 and 1: answer as a fraction (0.33), a ratio "
                   "(1/3) or a percentage (33%)")
    return value


def parse(p: Presentation, text: str):
    """A line typed in the terminal -> the canonical response (ids); CvlabError says what form was expected."""
    q = p.question
    text = str(text).strip()
    if not text:
        raise _bad(q, "type an answer first (" + expected_form(p) + ")")
    if q.kind == "single":
        return _resolve(q, text, p.options())
    if q.kind == "multi":
        chosen = []
        for t in _tokens(text, p.options()):
            i = _resolve(q, t, p.options())
            if i not in chosen:
                chosen.append(i)
        if len(chosen) != q.select:
            raise _bad(q, f"select exactly {q.select} (you picked {len(chosen)}); " + expected_form(p))
        return sorted(chosen)
    if q.kind == "yesno":
        parts = [t.lower() for t in re.split(r"[,;\s]+", text) if t]
        if len(parts) == 1 and len(parts[0]) == len(q.statements) and set(parts[0]) <= set("yn10"):
            parts = list(parts[0])
        if len(parts) != len(q.statements) or any(t not in _YES | _NO for t in parts):
            raise _bad(q, expected_form(p))
        return {s.id: t in _YES for s, t in zip(p.statements(), parts)}
    if q.kind == "order":
        picked = []
        for t in _tokens(text, p.options()):
            i = _resolve(q, t, p.options(), "action")
            if i in picked:
                raise _bad(q, f"each action is used once; {p.letter(i)}) appears twice")
            picked.append(i)
        if len(picked) != len(q.steps):
            raise _bad(q, f"arrange exactly {len(q.steps)} actions (you gave {len(picked)}); " + expected_form(p))
        return picked
    if q.kind == "match":
        items, targets = p.items(), p.options()
        pairs = re.findall(r"(\d+)\s*[-:=>]*\s*([A-Za-z])\b", text)
        if pairs:
            mapping = {}
            for num, letter in pairs:
                if not 1 <= int(num) <= len(items):
                    raise _bad(q, f"there is no item {num}; items are 1-{len(items)}")
                mapping[items[int(num) - 1].id] = _resolve(q, letter, targets, "target")
        else:
            toks = _tokens(text, targets)
            mapping = {it.id: _resolve(q, t, targets, "target") for it, t in zip(items, toks)}
            if len(toks) != len(items):
                mapping = {}
        if len(mapping) != len(items):
            raise _bad(q, expected_form(p))
        return mapping
    if q.kind == "code":
        n = len(q.blanks)
        pairs = (re.findall(r"\[?(\d+)\]?\s*[-:=]?\s*([A-Za-z])(?![\w])", text)
                 if n > 1 and re.fullmatch(r"(\s*\[?\d+\]?\s*[-:=]?\s*[A-Za-z]\s*[,;]?)+", text) else [])
        if pairs and len(pairs) == n:
            tokens = [t for _, t in sorted(pairs, key=lambda kv: int(kv[0]))]
        elif n == 1:
            tokens = [text]
        else:
            by_comma = [t for t in re.split(r"\s*[,;]\s*", text) if t]
            tokens = by_comma if len(by_comma) == n else [t for t in text.split() if t]
            if len(tokens) == 1 and len(_clean(tokens[0])) == n and set(_clean(tokens[0]).lower()) <= set(LETTERS):
                tokens = list(_clean(tokens[0]).lower())
        if len(tokens) != n:
            raise _bad(q, expected_form(p))
        return {b.id: _resolve(q, t, p.blank_options(k)) for k, (b, t) in enumerate(zip(q.blanks, tokens))}
    return _parse_number(q, text)


def expected_form(p: Presentation) -> str:
    """What to type for this question, with an example."""
    q = p.question
    n = len(p.order)
    last = LETTERS[max(n - 1, 0)]
    if q.kind == "single":
        return f"type one letter a-{last} or the option's text"
    if q.kind == "multi":
        example = {2: "'b, d' or 'bd'", 3: "'a, c, d' or 'acd'"}.get(q.select, "'a, c'")
        return f"type {q.select} letters from a-{last}, e.g. {example}"
    if q.kind == "yesno":
        return f"type Yes or No for each of the {len(q.statements)} statements in order, e.g. 'y n y' or 'yny'"
    if q.kind == "order":
        return (f"type the letters of {len(q.steps)} actions in order, e.g. "
                f"'{' '.join(LETTERS[:len(q.steps)][::-1])}'")
    if q.kind == "match":
        k = len(q.items)
        return f"type a target letter (a-{last}) for each item 1-{k} in order, e.g. '{' '.join('abc'[:k])}' or '1a 2c'"
    if q.kind == "code":
        k = len(q.blanks)
        if k == 1:
            return "type the letter of the option for [1], or the code itself, quoted or not"
        example = " ".join(LETTERS[(2 * i + 1) % 3] for i in range(k))
        return f"type one letter per drop-down [1]-[{k}] in order, e.g. '{example}' or '1b 2a'"
    if q.unit == "fraction":
        return "type a number: 0.33, 1/3 or 33%"
    return "type a number, e.g. 42 or 0.5"


def normalize(q: Question, response) -> Any:
    """A response given in ids (from a widget or a test) checked for shape; unknown ids are refused."""
    if q.kind == "numeric":
        if isinstance(response, bool):
            raise _bad(q, "answer with a number")
        if isinstance(response, (int, float)):
            return _parse_number(q, repr(float(response)))
        return _parse_number(q, response)
    if q.kind in ("single", "multi", "order"):
        known = {o.id for o in (*q.choices, *q.steps, *q.extra)}
        ids = [response] if isinstance(response, str) else list(response or [])
        unknown = [i for i in ids if i not in known]
        if unknown:
            raise _bad(q, f"unknown option id {unknown[0]!r}; the options are {sorted(known)}")
        if q.kind == "single":
            if len(ids) != 1:
                raise _bad(q, "pick one option")
            return ids[0]
        if q.kind == "multi":
            if len(set(ids)) != q.select:
                raise _bad(q, f"select exactly {q.select} (you picked {len(set(ids))})")
            return sorted(set(ids))
        if len(ids) != len(q.steps) or len(set(ids)) != len(ids):
            raise _bad(q, f"arrange exactly {len(q.steps)} different actions")
        return ids
    mapping = dict(response or {})
    if q.kind == "yesno":
        keys = {s.id for s in q.statements}
        if set(mapping) != keys or not all(isinstance(v, bool) for v in mapping.values()):
            raise _bad(q, "answer Yes or No for every statement")
        return mapping
    if q.kind == "match":
        keys, targets = {i.id for i in q.items}, {t.id for t in q.targets}
        if set(mapping) != keys or not set(mapping.values()) <= targets:
            raise _bad(q, "choose a target for every item")
        return mapping
    if set(mapping) != {b.id for b in q.blanks} or any(
            mapping[b.id] not in {o.id for o in b.options} for b in q.blanks):
        raise _bad(q, "choose an option in every drop-down")
    return mapping


def key(q: Question, facts: Mapping[str, Any] | None = None):
    """The full-credit response in ids (what an instructor's answer sheet shows)."""
    if q.kind == "single":
        return q.correct_ids[0]
    if q.kind == "multi":
        return sorted(q.correct_ids)
    if q.kind == "yesno":
        return {s.id: s.answer for s in q.statements}
    if q.kind == "order":
        return [s.id for s in q.steps]
    if q.kind == "match":
        return {i.id: i.answer for i in q.items}
    if q.kind == "code":
        return {b.id: b.answer.id for b in q.blanks}
    return q.expected(facts)


def typed(p: Presentation, response) -> str:
    """A response in ids written the way a learner types it on this screen (the inverse of `parse`)."""
    q = p.question
    if q.kind == "single":
        return p.letter(response)
    if q.kind in ("multi", "order"):
        return " ".join(p.letter(i) for i in (sorted(response, key=p.order.index) if q.kind == "multi"
                                               else response))
    if q.kind == "yesno":
        return " ".join("y" if response[s.id] else "n" for s in p.statements())
    if q.kind == "match":
        return " ".join(p.letter(response[it.id]) for it in p.items())
    if q.kind == "code":
        return " ".join(LETTERS[p.blank_orders[n].index(response[b.id])] for n, b in enumerate(q.blanks))
    return repr(float(response))


def fill(template: str, chosen: Mapping[str, str]) -> str:
    """The code template with each [[blank]] replaced by the chosen text."""
    return PLACEHOLDER.sub(lambda m: chosen[m.group(1)], template)


def expected_text(p: Presentation, facts: Mapping[str, Any] | None = None) -> str:
    """The right answer as the learner's screen labels it."""
    q = p.question
    if q.kind == "single":
        c = q.option(q.correct_ids[0])
        return f"{p.letter(c.id)}) {c.text}"
    if q.kind == "multi":
        return "; ".join(f"{p.letter(i)}) {q.option(i).text}" for i in sorted(q.correct_ids, key=p.order.index))
    if q.kind == "yesno":
        return ", ".join(f"{n}. {'Yes' if s.answer else 'No'}" for n, s in enumerate(p.statements(), 1))
    if q.kind == "order":
        return " -> ".join(f"{p.letter(s.id)}) {s.text}" for s in q.steps)
    if q.kind == "match":
        return "; ".join(f"{n}. {it.text} -> {p.letter(it.answer)}) {q.option(it.answer).text}"
                         for n, it in enumerate(p.items(), 1))
    if q.kind == "code":
        return fill(q.template, {b.id: b.answer.text for b in q.blanks})
    value = q.expected(facts)
    return f"{value:g}" if q.tolerance == 0 else f"{value:.4g} (within {q.tolerance:g})"


def grade(question: Question | str, response, *, presentation: Presentation | None = None,
          facts: Mapping[str, Any] | None = None) -> Grade:
    """Grade a response: typed text (letters as shown in `presentation`, default the bank's order) or ids.

    Unreadable responses raise CvlabError("BadRequest") saying what to type; they are never counted as wrong.
    """
    q = get_question(question) if isinstance(question, str) else question
    p = presentation or present(q, shuffle=False)
    r = parse(p, response) if isinstance(response, str) else normalize(q, response)
    notes: list[str] = []
    if q.kind == "single":
        points = float(r in q.correct_ids)
        if not points:
            notes.append(f"You chose {p.letter(r)}) {q.option(r).text}: {q.option(r).why}")
    elif q.kind == "multi":
        points = float(len(set(r) & set(q.correct_ids)))
        for i in sorted(set(r) - set(q.correct_ids), key=p.order.index):
            notes.append(f"{p.letter(i)}) {q.option(i).text} is not part of the solution: {q.option(i).why}")
        for i in sorted(set(q.correct_ids) - set(r), key=p.order.index):
            notes.append(f"{p.letter(i)}) {q.option(i).text} was also needed.")
    elif q.kind == "yesno":
        points = 0.0
        for n, s in enumerate(p.statements(), 1):
            ok = r[s.id] == s.answer
            points += ok
            said = "" if ok else f" (you said {'Yes' if r[s.id] else 'No'})"
            notes.append(f"{n}. {'Yes' if s.answer else 'No'}{said}: {s.why}")
    elif q.kind == "order":
        points = float(sum(a == b.id for a, b in zip(r, q.steps)))
        for i in r:
            if i in {s.id for s in q.extra}:
                notes.append(f"{p.letter(i)}) {q.option(i).text} is not part of the sequence: {q.option(i).why}")
    elif q.kind == "match":
        points = 0.0
        for n, it in enumerate(p.items(), 1):
            ok = r[it.id] == it.answer
            points += ok
            if not ok:
                t = q.option(r[it.id])
                notes.append(f"{n}. {it.text} -> {q.option(it.answer).text}, not {t.text}: {it.why}")
        for t in q.targets:
            if t.why and t.id in r.values() and t.id not in {it.answer for it in q.items}:
                notes.append(f"{t.text} matches none of them: {t.why}")
    elif q.kind == "code":
        points = 0.0
        for n, b in enumerate(q.blanks, 1):
            chosen = next(o for o in b.options if o.id == r[b.id])
            points += chosen.correct
            if not chosen.correct:
                notes.append(f"[{n}] {chosen.text} is wrong: {chosen.why}")
    else:
        points = float(abs(r - q.expected(facts)) <= q.tolerance + 1e-9)
    max_points = q.parts
    full = points == max_points
    if full:
        verdict = "Correct."
    elif points:
        verdict = f"Partly right: {points:g} of {max_points} parts. The answer is {expected_text(p, facts)}."
    else:
        verdict = f"Not quite. The answer is {expected_text(p, facts)}."
    links = " ".join(q.source_urls)
    feedback = " ".join([verdict, *notes, q.explanation, f"(Source: {links})"])
    return Grade(q.id, full, expected_text(p, facts), feedback, points, max_points, r, tuple(notes))


__all__ = ["Grade", "LETTERS", "Presentation", "expected_form", "expected_text", "fill", "grade", "key", "normalize",
           "parse", "present", "seed_for", "typed"]
