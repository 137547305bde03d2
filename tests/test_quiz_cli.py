"""`cvlab quiz` in a terminal, fed through stdin: every format, typed forms, hints, --stats, --show, errors."""
from __future__ import annotations

import argparse
import io
from datetime import datetime, timedelta, timezone

import pytest

from cvlab import cli as cvlab_cli
from cvlab import open_workspace
from cvlab import quiz as Q
from cvlab.errors import CvlabError
from cvlab.quiz import cli


@pytest.fixture
def ws(tmp_path):
    with open_workspace(tmp_path / "ws") as w:
        Q.open_store(w).set_learner("terminal-tester")
        yield w


def _run(ws, *argv, stdin="", clock=None) -> str:
    parser = argparse.ArgumentParser()
    cli.configure(parser)
    out = io.StringIO()
    assert cli.run(parser.parse_args(["--workspace", str(ws.path), *argv]), stdin=io.StringIO(stdin), out=out,
                   clock=clock) == 0
    return out.getvalue()


@pytest.mark.parametrize("kind", Q.KINDS)
def test_every_format_is_answered_in_the_terminal(ws, kind):
    """Five questions of the format: an unreadable line (explained, asked again), then the typed key."""
    pool = [q for q in Q.questions() if q.kind == kind and not q.facts][:5]
    assert len(pool) == 5
    screens = [Q.present(q, "terminal-tester", 0) for q in pool]  # the CLI shows attempt 0 to a new learner
    lines = []
    for p in screens:
        lines += ["zz9", Q.typed(p, Q.key(p.question))]
    text = _run(ws, *sum((["--question", q.id] for q in pool), []), stdin="\n".join(lines) + "\n")
    for p in screens:
        shown = cli.render(p)
        assert shown in text  # the exact screen, in this learner's order
    assert text.count("Correct.") == 5 and text.count("try again") == 5
    assert "Score this session: 5/5 (100%)" in text
    assert [r["question"] for r in Q.open_store(ws).answers()] == [q.id for q in pool]


def test_hints_say_what_to_type_and_partial_credit_is_reported(ws):
    q = Q.get_question("choose-10")  # select two
    p = Q.present(q, "terminal-tester", 0)
    wrong = next(c.id for c in q.choices if not c.correct)
    half = f"{p.letter(q.correct_ids[0])}{p.letter(wrong)}"  # 'bd' form
    text = _run(ws, "--question", "choose-10", stdin=f"a b c\n{half}\n")
    assert "select exactly 2 (you picked 3); type 2 letters from a-e, e.g. 'b, d' or 'bd' - try again" in text
    assert "Partly right: 1 of 2 parts" in text and "Score this session: 0.5/1 (50%)" in text
    numeric = _run(ws, "--question", "label-09", stdin="20\n20%\n")
    assert "answer as a fraction (0.33), a ratio (1/3) or a percentage (33%)" in numeric and "Correct." in numeric
    text = _run(ws, "--question", "exp-08", stdin="TFLight\nTensorFlowLite\n")  # unquoted identifier
    assert "'TFLight' is not one of the options shown" in text and "Correct." in text
    skipped = _run(ws, "--question", "choose-02", stdin="skip\n")
    assert "Score this session: 0/0" in skipped


def test_practice_puts_missed_questions_first_and_the_case_scenario_above_its_question(ws):
    p = Q.present(Q.get_question("case-03-1"), "terminal-tester", 0)
    wrong = next(c.id for c in p.question.choices if not c.correct)
    day0 = datetime(2026, 12, 1, 9, tzinfo=timezone.utc)
    text = _run(ws, "--question", "case-03-1", stdin=f"{p.letter(wrong)}\n", clock=lambda: day0)
    assert "=== Case study case-03: Northwind Construction" in text and "Not quite." in text
    assert "Still to revisit (1): case-03-1" in text
    again = _run(ws, "--topic", "cases", "--count", "2", "--seed", "4", stdin="",
                 clock=lambda: day0 + timedelta(days=1))
    assert again.index("[case-03-1]") < again.index("(input ended)")


def test_stats_lists_counts_per_skill_and_per_format(capsys):
    assert cvlab_cli.main(["quiz", "--stats"]) == 0
    text = capsys.readouterr().out
    stats = Q.stats()
    assert f"Questions: {stats['total']}" in text and stats["total"] >= 200
    for key, skill in Q.SKILLS.items():
        assert f"{stats['by_skill'][key]:4d}  {key:11s} {skill.line}" in text and stats["by_skill"][key] >= 15
    for kind in Q.KINDS:
        assert f"{stats['by_kind'][kind]:4d}  {kind:8s}" in text and stats["by_kind"][kind] >= 5
    assert "case studies" in text


def test_show_recreates_a_learners_screen_and_list_names_the_topics(ws):
    q = Q.get_question("exp-14")
    text = _run(ws, "--show", "exp-14", "--learner", "seat-04", "--attempt", "2")
    assert cli.render(Q.present(q, "seat-04", 2)) in text
    listed = _run(ws, "--list")
    assert all(t in listed for t in Q.topics())


def test_bad_arguments_say_what_to_fix(ws):
    parser = argparse.ArgumentParser()
    cli.configure(parser)
    with pytest.raises(CvlabError, match="--count must be at least 1"):
        cli.run(parser.parse_args(["--workspace", str(ws.path), "--count", "0"]), stdin=io.StringIO(""),
                out=io.StringIO())
    with pytest.raises(CvlabError, match="answer them in the notebook"):
        cli.run(parser.parse_args(["--workspace", str(ws.path), "--question", "eval-14"]), stdin=io.StringIO(""),
                out=io.StringIO())
    with pytest.raises(CvlabError, match="learner id 'bad name!'"):
        cli.run(parser.parse_args(["--workspace", str(ws.path), "--learner", "bad name!", "--due"]),
                stdin=io.StringIO(""), out=io.StringIO())
    assert cvlab_cli.main(["quiz", "--workspace", str(ws.path), "--question", "nope-01"]) == 1


def test_reset_starts_over_without_deleting(ws):
    _run(ws, "--question", "choose-02", stdin="a\n")
    assert "Quiz progress reset" in _run(ws, "--reset")
    assert Q.summary(ws).answered == 0 and len(Q.open_store(ws).records("answer", since_reset=False)) == 1
