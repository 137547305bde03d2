"""Quiz banks: schema, answer keys (against the library where a fact lives there), grading, progress, CLI, widget."""
from __future__ import annotations

import json

import jsonschema
import pytest
import yaml

from cvlab import quiz as Q
from cvlab import rules
from cvlab.errors import CvlabError

BANKS = Q.load_banks()
ALL = [q for b in BANKS.values() for q in b.questions]
STATIC = [q for q in ALL if not q.needs_run]

# Every scenario, quick-check question, exam insight, common mistake and cram-sheet line of the study guide,
# with the questions that teach it (reworded, and corrected where Microsoft's documentation differs).
STUDY_GUIDE_COVERAGE = {
    "quick check 1: defective/non-defective parts, minimal ML expertise": ["choose-01"],
    "quick check 2: helmets and vests with bounding boxes": ["choose-02"],
    "quick check 3: Android app export format": ["exp-01"],
    "tricky scenario: misplaced products on shelves": ["choose-03", "choose-11"],
    "Custom Vision vs Computer Vision (OCR, pre-built)": ["choose-06", "choose-11"],
    "Custom Vision vs Azure ML (custom loops, multi-modal)": ["choose-07"],
    "F0 limits": ["pub-08", "pub-18"],
    "S0 limits (study guide differs from the limits page)": ["pub-09"],
    "1 export/month on free tier (not documented)": ["pub-10"],
    "ONNX vs TensorFlow Lite targets": ["exp-01", "exp-02"],
    "TFLite for detection only (docs: classification too)": ["exp-05"],
    "Docker container needs keys (it does not)": ["exp-04"],
    "Docker for ACI/AKS/on-prem": ["exp-03"],
    "IoT Edge": ["exp-10", "choose-14"],
    "mistake: classification vs detection mixed up": ["exam-06", "choose-10"],
    "mistake: not using a domain": ["label-14", "exam-06"],
    "mistake: precision/recall trade-off": ["eval-06", "eval-07", "exam-07"],
    "mistake: predicting without publishing": ["pub-01", "exam-05"],
    "mistake: exporting without testing": ["pub-17"],
    "images per label (5/15 minimum, 50 recommended)": ["label-01", "label-02"],
    "Quick vs Advanced training": ["train-01", "train-04"],
    "F1 > 0.8 rule of thumb": ["eval-11"],
    "quick test": ["pub-13"],
    "publish name + prediction resource": ["pub-02", "exam-05"],
    "keys and endpoint page": ["pub-16", "pub-06"],
    "training vs prediction resources": ["pub-15", "pub-06"],
    "SDK snippet (classify_image, client arguments)": ["pub-03", "pub-05"],
    "active learning": ["imp-01", "imp-02"],
    "domains reduce data needs": ["label-14", "train-07"],
    "object detection needs boxes": ["choose-09"],
    "no-code / code-first": ["exam-04"],
    "exam dates and what transfers": ["exam-01", "exam-02", "exam-03", "exam-08"],
}


def _a_wrong_response(q: Q.Question):
    if q.kind == "single":
        return next(i for i in range(len(q.choices)) if i != q.answer)
    if q.kind == "multiple":
        return [next(i for i in range(len(q.choices)) if i not in q.answer)]
    if q.kind == "truefalse":
        return not q.answer
    if q.kind == "numeric":
        return q.expected() + 10 * q.tolerance + 1
    return "definitely_not_it"


def _the_right_response(q: Q.Question):
    if q.kind == "multiple":
        return list(q.answer)
    if q.kind == "numeric":
        return q.expected()
    if q.kind == "code":
        return q.answer[0]
    return q.answer


# ------------------------------------------------------------------------------------------------ the banks

def test_every_bank_file_validates_against_the_json_schema():
    schema = json.loads((Q.BANK_DIR / "schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    for path in sorted(Q.BANK_DIR.glob("*.yaml")):
        data = yaml.safe_load(path.read_text())
        for q in data["questions"]:
            if isinstance(q.get("distractors"), dict):
                q["distractors"] = {str(k): v for k, v in q["distractors"].items()}
        jsonschema.validate(data, schema)


def test_bank_size_kinds_skills_and_sources():
    assert len(ALL) >= 80
    assert len({q.id for q in ALL}) == len(ALL)
    assert {q.kind for q in ALL} == set(Q.KINDS)
    assert {q.skill for q in ALL} == set(Q.SKILLS)
    assert {q.difficulty for q in ALL} == {"easy", "medium", "hard"}
    assert sum(q.needs_run for q in ALL) >= 3  # numeric questions computed from the learner's run
    for q in ALL:
        assert q.source == "study-guide" or q.source_url.startswith("https://learn.microsoft.com/"), q.id
    for bank in BANKS.values():
        assert len(bank.questions) >= 6, bank.topic


def test_study_guide_coverage_points_at_real_questions():
    ids = {q.id for q in ALL}
    for item, qids in STUDY_GUIDE_COVERAGE.items():
        assert set(qids) <= ids, item


@pytest.mark.parametrize("q", STATIC, ids=lambda q: q.id)
def test_answer_key_grades_right_and_each_distractor_wrong(q):
    good = Q.grade(q, _the_right_response(q))
    assert good.correct and good.feedback.startswith("Correct.") and q.explanation in good.feedback
    bad = Q.grade(q, _a_wrong_response(q))
    assert not bad.correct and "Not quite" in bad.feedback
    if q.kind == "single":
        for key, why in q.distractors.items():
            graded = Q.grade(q, int(key))
            assert not graded.correct and why in graded.feedback
    if q.kind == "code":
        for answer in q.answer:
            assert Q.grade(q, f"  {answer} ").correct
        for wrong, why in q.distractors.items():
            graded = Q.grade(q, wrong)
            assert not graded.correct and why in graded.feedback


def test_facts_agree_with_the_library_rules():
    """Where a limit lives in cvlab.rules, the bank's answer must say the same number."""
    def right_choice(qid):
        q = Q.get_question(qid)
        return q.choices[q.answer]

    assert right_choice("label-01") == str(rules.limit("min_images_per_tag_classification"))
    assert right_choice("label-02") == str(rules.limit("min_images_per_tag_detection"))
    assert right_choice("label-12") == f"{rules.limit('max_image_bytes_training') // 2**20} MB"
    assert right_choice("pub-14") == f"{rules.limit('max_image_bytes_prediction') // 2**20} MB"
    assert right_choice("label-17") == str(rules.limit("images_per_batch"))
    assert right_choice("train-06") == str(rules.limit("iterations_per_project"))
    f0 = right_choice("pub-08")
    for key in ("projects", "images_per_project", "predictions_per_month"):
        assert f"{rules.limit(key, 'F0'):,}" in f0
    s0 = right_choice("pub-09")
    assert f"{rules.limit('projects', 'S0'):,} projects" in s0 and f"{rules.limit('images_per_project', 'S0'):,}" in s0
    assert rules.limit("predictions_per_month", "S0") is None and "unlimited predictions" in s0


def test_broken_bank_is_refused_with_the_file_and_field(tmp_path):
    bad = tmp_path / "broken.yaml"
    bad.write_text(yaml.safe_dump({"topic": "x", "title": "Broken", "questions": [
        {"id": "x-01", "kind": "single", "skill": "train", "difficulty": "easy", "source": "faq",
         "prompt": "Which?", "explanation": "Because.", "choices": ["a", "b", "c"], "answer": 0,
         "distractors": {1: "wrong b"}}]}))
    with pytest.raises(CvlabError) as err:
        Q.load_bank(bad)
    assert "broken.yaml" in err.value.message and "distractors" in err.value.message
    bad.write_text("topic: x\ntitle: Broken\nquestions:\n  - id: X1\n    kind: essay\n")
    with pytest.raises(CvlabError) as err:
        Q.load_bank(bad)
    assert "schema" in err.value.message
    with pytest.raises(CvlabError):
        Q.load_banks(tmp_path / "empty")


# ------------------------------------------------------------------------------------------------ grading

def test_response_forms_and_clear_errors():
    assert Q.grade("choose-01", "a").correct and Q.grade("choose-01", "1").correct  # letters, 1-based numbers
    assert Q.grade("choose-10", "a, b").correct and not Q.grade("choose-10", "a").correct
    assert "was missing" in Q.grade("choose-10", "a").feedback
    assert Q.grade("choose-08", "t").correct and Q.grade("choose-09", "no").correct
    assert Q.grade("eval-03", "50%").correct
    for qid, junk in [("choose-01", "z"), ("choose-08", "maybe"), ("eval-03", "half"), ("pub-03", "  ")]:
        with pytest.raises(CvlabError) as err:
            Q.grade(qid, junk)
        assert err.value.code == "BadRequest"
    with pytest.raises(CvlabError, match="run_context"):
        Q.grade("eval-13", 0.5)
    with pytest.raises(CvlabError) as err:
        Q.get_question("nope-99")
    assert err.value.code == "NotFound"


def test_plan_puts_missed_questions_first_and_is_deterministic():
    pool = Q.questions("choose")
    progress = {"choose-05": {"last": False, "last_at": "2026-01-01"},
                "choose-01": {"last": True, "last_at": "2026-01-02"}}
    ordered = Q.plan(pool, progress, seed=3)
    assert ordered[0].id == "choose-05" and ordered[-1].id == "choose-01"
    assert [q.id for q in ordered] == [q.id for q in Q.plan(pool, progress, seed=3)]
    assert len(Q.plan(pool, progress, count=4, seed=3)) == 4
