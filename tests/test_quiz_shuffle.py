"""Order that teaches nothing: over 1,000 attempts every correct option sits at every position equally often,
the order is reproducible from (learner, attempt), and answers are stored as ids, never positions."""
from __future__ import annotations

from collections import Counter

import pytest
from scipy.stats import chi2

from cvlab import open_workspace
from cvlab import quiz as Q

ATTEMPTS = 1000
ALL = Q.questions()


def _lists(p: Q.Presentation) -> dict[str, tuple[str, ...]]:
    lists = {"order": p.order, "items": p.item_order}
    lists.update({f"blank{n}": ids for n, ids in enumerate(p.blank_orders)})
    return {name: ids for name, ids in lists.items() if ids}


def _correct(q: Q.Question) -> list[tuple[str, str]]:
    """(list, option id) of every correct option a learner must find on the screen."""
    if q.kind in ("single", "multi"):
        return [("order", i) for i in q.correct_ids]
    if q.kind == "code":
        return [(f"blank{n}", b.answer.id) for n, b in enumerate(q.blanks)]
    if q.kind == "order":
        return [("order", s.id) for s in q.steps]
    if q.kind == "match":
        return sorted({("order", i.answer) for i in q.items})
    return [("order", s.id) for s in q.statements]  # yesno: where each statement appears


def _chi_square_tests():
    tests = []
    for q in ALL:
        if q.kind == "numeric":
            continue  # nothing is shown in an order
        counts: dict[tuple[str, str], Counter] = {}
        sizes = {}
        for attempt in range(ATTEMPTS):
            for name, ids in _lists(Q.present(q, "chi-square-learner", attempt)).items():
                sizes[name] = len(ids)
                for pos, option in enumerate(ids):
                    counts.setdefault((name, option), Counter())[pos] += 1
        for name, option in _correct(q):
            k, expected = sizes[name], ATTEMPTS / sizes[name]
            stat = sum((counts[(name, option)][pos] - expected) ** 2 / expected for pos in range(k))
            tests.append((q.id, option, stat, k - 1))
    return tests


def test_every_correct_option_appears_at_every_position_equally_often():
    """A chi-square test per correct option, Bonferroni-corrected to 0.001 over all of them, and one over the
    whole bank. Seeds are fixed, so the test is deterministic."""
    tests = _chi_square_tests()
    assert len({t[0] for t in tests}) == sum(q.kind != "numeric" for q in ALL)
    for qid, option, stat, dof in tests:
        assert stat <= chi2.ppf(1 - 0.001 / len(tests), dof), (qid, option, stat, dof)
    total, dofs = sum(t[2] for t in tests), sum(t[3] for t in tests)
    assert total <= chi2.ppf(0.999, dofs), (total, dofs)


def test_the_same_learner_and_attempt_always_get_the_same_screen():
    q = Q.get_question("exp-14")  # match: items and targets shuffled
    a = Q.present(q, "seat-04", 2)
    assert a == Q.present(q, "seat-04", 2) and a == Q.present("exp-14", "seat-04", "2")
    orders = {Q.present(q, "seat-04", n).order for n in range(20)} | {
        Q.present(q, f"seat-{n}", 2).order for n in range(20)}
    assert len(orders) > 10  # other attempts and other learners see other orders
    assert Q.present(q, shuffle=False).order == tuple(t.id for t in q.targets)
    assert Q.grading.seed_for("seat-04", 2, "exp-14") == Q.grading.seed_for("seat-04", "2", "exp-14")


def test_answers_are_stored_as_ids_and_an_instructor_can_recreate_the_screen(tmp_path):
    with open_workspace(tmp_path / "ws") as ws:
        store = Q.open_store(ws)
        store.set_learner("seat-07")
        q = Q.get_question("choose-03")
        p = Q.present(q, store.learner, store.next_attempt(q.id))
        letter = Q.LETTERS[p.order.index(q.correct_ids[0])]
        Q.record(ws, Q.grade(q, letter, presentation=p), p)
        rec = store.answers()[-1]
        assert rec["response"] == q.correct_ids[0] and rec["learner"] == "seat-07" and rec["attempt"] == "0"
        assert Q.present(rec["question"], rec["learner"], rec["attempt"]).order == p.order
        assert store.next_attempt(q.id) == 1


@pytest.mark.parametrize("kind", ["multi", "yesno", "order", "match", "code", "numeric"])
def test_stored_responses_of_every_format_are_ids_not_letters(tmp_path, kind):
    q = next(q for q in ALL if q.kind == kind and not q.facts)
    with open_workspace(tmp_path / "ws") as ws:
        p = Q.present(q, "ids", 5)
        Q.record(ws, Q.grade(q, Q.key(q), presentation=p), p)
        stored = Q.open_store(ws).answers()[-1]["response"]
    if kind == "numeric":
        assert stored == pytest.approx(q.expected())
    else:
        assert stored == Q.key(q)  # ids as in the bank, whatever letters this screen showed
