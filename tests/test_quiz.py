"""The bank (schema, counts, sources, SDK truth, no give-aways) and grading (partial credit, typed forms, errors)."""
from __future__ import annotations

import ast
import inspect
import json
import re
import shutil

import jsonschema
import pytest
import yaml

from cvlab import quiz as Q
from cvlab.errors import CvlabError

ALL = Q.questions()
BY_KIND = {k: [q for q in ALL if q.kind == k] for k in Q.KINDS}
MICROSOFT = re.compile(
    r"^https://(learn\.microsoft\.com/|github\.com/(Azure|Azure-Samples|MicrosoftDocs|MicrosoftLearning)/)")
FACTS = {"precision_at_50": 0.837, "recall_at_50": 0.8, "helmet_recall_at_70": 0.625, "map_at_50": 0.71,
         "parts_iterations": 3}


def right_response(q: Q.Question):
    return Q.key(q, FACTS)


def texts(q: Q.Question) -> list[str]:
    out = [q.prompt, q.explanation]
    out += [o.text for o in (*q.choices, *q.steps, *q.extra, *q.targets)]
    out += [o.why for o in (*q.choices, *q.extra, *q.targets) if o.why]
    out += [s.text for s in q.statements] + [s.why for s in q.statements]
    out += [i.text for i in q.items] + [i.why for i in q.items]
    out += [o.text for b in q.blanks for o in b.options] + [o.why for b in q.blanks for o in b.options if o.why]
    return out


# ------------------------------------------------------------------------------------------------ the bank

def test_every_bank_file_validates_against_the_json_schema():
    schema = json.loads((Q.BANK_DIR / "schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    assert set(schema["$defs"]["question"]["properties"]["skill"]["enum"]) == set(Q.SKILLS)
    assert set(schema["$defs"]["question"]["properties"]["kind"]["enum"]) == set(Q.KINDS)
    for path in sorted(Q.BANK_DIR.glob("*.yaml")):
        if path.name not in ("sources.yaml", "facts.yaml"):
            jsonschema.validate(yaml.safe_load(path.read_text()), schema)


def test_counts_per_skill_and_per_format():
    """At least 200 questions, 15 per skill line, every format at least 5 times, 5 case studies of 4-6."""
    stats = Q.stats()
    assert stats["total"] >= 200 and len({q.id for q in ALL}) == len(ALL)
    assert min(stats["by_skill"].values()) >= 15, stats["by_skill"]
    assert min(stats["by_kind"].values()) >= 5, stats["by_kind"]
    assert stats["cases"] >= 5 and all(4 <= len(c.question_ids) <= 6 for c in Q.cases().values())
    assert stats["by_language"]["python"] >= 5 and stats["by_language"]["csharp"] >= 5
    assert stats["run_facts"] >= 5 and stats["exam_eligible"] >= 180


def test_every_question_is_complete_and_rests_on_microsoft_sources():
    registry = Q.sources()
    for key, entry in registry.items():
        assert MICROSOFT.match(entry["url"]), f"{key}: {entry['url']} is not a Microsoft page or repository"
    for q in ALL:
        assert q.explanation and q.difficulty in ("easy", "medium", "hard"), q.id
        assert q.sources and all(MICROSOFT.match(u) for u in q.source_urls), q.id
        wrong = [o for o in (*q.choices, *q.extra) if not o.correct] + [
            o for b in q.blanks for o in b.options if not o.correct]
        assert all(o.why for o in wrong), f"{q.id}: a wrong option has no rationale"
        assert all(s.why for s in q.statements) and all(i.why for i in q.items), q.id
        if q.kind == "single":
            assert len(q.choices) == 4, q.id
        if q.kind == "multi":
            assert f"select {['', '', 'two', 'three', 'four'][q.select]}." in q.prompt.lower(), q.id


def test_the_study_guide_is_only_quoted_against_microsoft_and_cvlab_behaviour_is_marked():
    for q in ALL:
        for text in texts(q):
            if "study guide" in text.lower():
                assert "Microsoft" in text or any("Microsoft" in t for t in texts(q)), (q.id, text)
            if re.search(r"frozen|p1 - p2|in seconds|takes seconds", text):
                assert "cvlab" in text, (q.id, text)


def test_dates_and_lab_status_stay_out_of_exam_forms():
    """Trivia (years, lab status) and questions about the learner's own run are never scored in an exam."""
    for q in ALL:
        key_text = " ".join([q.prompt] + [o.text for o in q.choices if o.correct])
        if re.search(r"\b20\d\d\b", key_text) or "lab repository" in q.prompt:
            assert q.scope == "course", q.id
    assert all(not q.in_exam for q in ALL if q.facts)
    assert all(q.in_exam for q in Q.exam.eligible())


def test_merged_duplicates_resolve_to_the_question_that_replaced_them():
    merged = {"label-04": "label-03", "choose-14": "label-03", "exp-09": "label-03", "choose-11": "choose-03",
              "choose-08": "choose-10", "eval-12": "eval-27", "exam-07": "eval-07", "exam-05": "pub-01",
              "pub-18": "pub-08", "pub-14": "label-12", "imp-07": "imp-03", "label-02": "label-01"}
    for old, new in merged.items():
        assert Q.get_question(old).id == new
    with pytest.raises(CvlabError) as err:
        Q.get_question("nope-99")
    assert err.value.code == "NotFound"


def test_single_answer_bank_spreads_the_key_and_avoids_length_cues():
    """In the files, the key sits at each position 18-32 % of the time; it is the longest option in <= 35 %."""
    singles = BY_KIND["single"]
    at = [next(i for i, c in enumerate(q.choices) if c.correct) for q in singles]
    for position in range(4):
        assert 0.18 <= at.count(position) / len(singles) <= 0.32, (position, at.count(position))
    longest = [q.id for q in singles if len(next(c.text for c in q.choices if c.correct)) >
               max(len(c.text) for c in q.choices if not c.correct)]
    assert len(longest) / len(singles) <= 0.35, longest


# ---------------------------------------------------------------------------------- true to the real SDKs

def _python_sdk():
    from azure.cognitiveservices.vision.customvision import prediction, training
    from azure.cognitiveservices.vision.customvision.prediction import models as pmodels
    from azure.cognitiveservices.vision.customvision.training import models as tmodels
    from msrest.authentication import ApiKeyCredentials

    classes = {"CustomVisionTrainingClient": training.CustomVisionTrainingClient,
               "CustomVisionPredictionClient": prediction.CustomVisionPredictionClient,
               "ApiKeyCredentials": ApiKeyCredentials}
    classes.update({n: getattr(tmodels, n) for n in ("Region", "ImageFileCreateEntry", "ImageFileCreateBatch")})
    attrs = set()
    for mod in (tmodels, pmodels):
        for obj in vars(mod).values():
            attrs |= set(getattr(obj, "_attribute_map", {}) or {})
    return training.CustomVisionTrainingClient, prediction.CustomVisionPredictionClient, classes, attrs


@pytest.mark.parametrize("q", [q for q in BY_KIND["code"] if q.language == "python"], ids=lambda q: q.id)
def test_python_answer_areas_call_the_real_sdk(q):
    """The completed code parses, and every SDK call binds to azure-cognitiveservices-vision-customvision 3.1.1."""
    trainer_cls, predictor_cls, classes, attrs = _python_sdk()
    code = Q.grading.fill(q.template, {b.id: b.answer.text for b in q.blanks})
    tree = ast.parse(code)
    clients = {"trainer": trainer_cls, "dev_trainer": trainer_cls, "prod_trainer": trainer_cls,
               "predictor": predictor_cls}
    checked = 0
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        target = None
        if isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name) and \
                node.func.value.id in clients:
            method = getattr(clients[node.func.value.id], node.func.attr, None)
            assert method is not None, f"{q.id}: {node.func.attr} is not an SDK method"
            target = inspect.signature(method)
            args = [None] + [None] * len(node.args)  # self
        elif isinstance(node.func, ast.Name) and node.func.id in classes:
            target = inspect.signature(classes[node.func.id])
            args = [None] * len(node.args)
        if target is not None:
            target.bind(*args, **{kw.arg: None for kw in node.keywords})  # TypeError if the call is not valid
            checked += 1
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and not (isinstance(node.value, ast.Name) and
                                                    node.value.id in ("time", "requests")):
            known = attrs | set(dir(trainer_cls)) | set(dir(predictor_cls)) | {"read", "content", "write"}
            assert node.attr in known, f"{q.id}: .{node.attr} is not an SDK model field or method"
    assert checked, f"{q.id}: no SDK call to check"


# Microsoft.Azure.CognitiveServices.Vision.CustomVision 2.0 (sources: the .NET SDK's
# CustomVisionTrainingClientExtensions.cs and Microsoft's C# quickstarts): method -> (min, max) arguments.
CSHARP_METHODS = {
    "GetDomains": (0, 0), "CreateProject": (1, 5), "CreateTag": (2, 4), "CreateImagesFromFiles": (2, 2),
    "CreateImagesFromData": (2, 3), "TrainProject": (1, 6), "GetIteration": (2, 2), "PublishIteration": (4, 5),
    "UnpublishIteration": (2, 2), "DeleteProject": (1, 1), "ExportIteration": (3, 4), "GetExports": (2, 2),
    "GetIterationPerformance": (2, 4), "ClassifyImage": (3, 4), "ClassifyImageWithNoStore": (3, 4),
    "DetectImage": (3, 4), "DetectImageWithNoStore": (3, 4)}
CSHARP_TYPES = {"CustomVisionTrainingClient", "CustomVisionPredictionClient", "ApiKeyServiceClientCredentials",
                "ImageFileCreateBatch", "ImageFileCreateEntry", "Region", "List"}
CSHARP_MEMBERS = {"Endpoint", "Type", "Id", "Status", "Predictions", "TagName", "Probability", "BoundingBox", "Left",
                  "Top", "Width", "Height", "Select", "Where", "ToList", "FirstOrDefault", "GetFileName",
                  "ReadAllBytes", "OpenRead", "WriteLine", "Sleep"}


def _top_level_args(text: str) -> int:
    depth, count, seen = 0, 0, False
    for ch in text:
        if ch in "([{<":
            depth += 1
        elif ch in ")]}>":
            depth -= 1
        elif ch == "," and depth == 0:
            count += 1
        elif not ch.isspace():
            seen = True
    return count + 1 if seen else 0


def _calls(code: str):
    for m in re.finditer(r"(\w+)\.(\w+)\(", code):
        start, depth = m.end(), 1
        for i in range(start, len(code)):
            depth += {"(": 1, ")": -1}.get(code[i], 0)
            if depth == 0:
                yield m.group(1), m.group(2), _top_level_args(code[start:i])
                break


@pytest.mark.parametrize("q", [q for q in BY_KIND["code"] if q.language == "csharp"], ids=lambda q: q.id)
def test_csharp_answer_areas_use_the_real_dotnet_sdk(q):
    code = Q.grading.fill(q.template, {b.id: b.answer.text for b in q.blanks})
    assert code.count("(") == code.count(")") and code.count("{") == code.count("}"), q.id
    checked = 0
    for owner, method, n in _calls(code):
        if owner in ("trainingApi", "predictionApi"):
            low, high = CSHARP_METHODS[method]
            assert low <= n <= high, f"{q.id}: {method} takes {low}-{high} arguments, got {n}"
            checked += 1
    for name in re.findall(r"\bnew (\w+)", code):
        assert name in CSHARP_TYPES, f"{q.id}: new {name} is not a type these SDK samples use"
    for member in re.findall(r"\.([A-Z]\w*)\b", code):
        assert member in CSHARP_MEMBERS or member in CSHARP_METHODS, f"{q.id}: .{member}"
    assert checked or "new CustomVisionTrainingClient" in code, q.id


# ------------------------------------------------------------------------------------------------ grading

@pytest.mark.parametrize("q", ALL, ids=lambda q: q.id)
def test_the_key_earns_full_credit_and_every_wrong_option_shows_its_rationale(q):
    p = Q.present(q, "grader", 0)
    good = Q.grade(q, right_response(q), presentation=p, facts=FACTS)
    assert good.correct and good.points == good.max_points == q.parts and good.feedback.startswith("Correct.")
    assert q.explanation in good.feedback and q.source_url in good.feedback
    if q.kind == "single":
        for c in q.choices:
            if not c.correct:
                bad = Q.grade(q, c.id, presentation=p)
                assert bad.points == 0 and c.why in bad.feedback and "Not quite" in bad.feedback
    if q.kind == "code":
        for n, b in enumerate(q.blanks):
            for o in b.options:
                if not o.correct:
                    r = dict(right_response(q), **{b.id: o.id})
                    bad = Q.grade(q, r, presentation=p)
                    assert bad.points == len(q.blanks) - 1 and o.why in bad.feedback


@pytest.mark.parametrize("q", ALL, ids=lambda q: q.id)
def test_what_a_learner_types_reads_back_as_the_same_ids(q):
    """parse(typed(key)) == key on a shuffled screen: the terminal understands its own hints."""
    p = Q.present(q, "typist", 3)
    if q.kind == "numeric":
        assert Q.parse(p, Q.typed(p, Q.key(q, FACTS))) == pytest.approx(Q.key(q, FACTS))
    else:
        assert Q.parse(p, Q.typed(p, Q.key(q))) == Q.key(q)


def test_partial_credit_per_part_as_microsoft_scores_it():
    multi = Q.get_question("choose-10")  # select two
    half = [multi.correct_ids[0], next(c.id for c in multi.choices if not c.correct)]
    g = Q.grade(multi, half)
    assert (g.points, g.max_points, g.correct, round(g.score, 2)) == (1, 2, False, 0.5)
    assert "Partly right: 1 of 2" in g.feedback and "was also needed" in g.feedback
    yesno = Q.get_question("label-03")
    r = {s.id: s.answer for s in yesno.statements}
    r[yesno.statements[1].id] = not yesno.statements[1].answer
    assert Q.grade(yesno, r).points == 2 and yesno.statements[1].why in Q.grade(yesno, r).feedback
    order = Q.get_question("code-33")
    steps = [s.id for s in order.steps]
    swapped = steps[:]
    swapped[0], swapped[1] = swapped[1], swapped[0]
    assert Q.grade(order, swapped).points == len(steps) - 2  # a point per step in its place
    with_extra = steps[:-1] + [order.extra[0].id]
    g = Q.grade(order, with_extra)
    assert g.points == len(steps) - 1 and order.extra[0].why in g.feedback
    match = Q.get_question("exp-14")
    r = {i.id: i.answer for i in match.items}
    r[match.items[0].id] = "vaidk"
    g = Q.grade(match, r)
    assert g.points == len(match.items) - 1 and "matches none of them" in g.feedback
    code = Q.get_question("code-01")
    r = {b.id: b.answer.id for b in code.blanks}
    r["type"] = next(o.id for o in code.blanks[0].options if not o.correct)
    assert Q.grade(code, r).points == 2


def test_typed_forms_are_read_as_a_learner_would_type_them():
    p = Q.present("eval-09", shuffle=False)  # IoU = 1/3
    for typed in ("1/3", "33%", "0.33", "0,333", " 0.3333 ", "'0.33'"):
        assert Q.grade("eval-09", typed, presentation=p).correct, typed
    for typed, hint in (("33", "percentage (33%)"), ("a third", "1/3 or 33%"), ("1/0", "not a number")):
        with pytest.raises(CvlabError) as err:
            Q.grade("eval-09", typed)
        assert hint in err.value.message and err.value.code == "BadRequest"
    multi = Q.get_question("choose-10")
    p = Q.present(multi, shuffle=False)
    letters = "".join(Q.LETTERS[[c.id for c in multi.choices].index(i)] for i in multi.correct_ids)
    for typed in (f"{letters[0]}, {letters[1]}", letters, f"{letters[0]} {letters[1]}", letters.upper(),
                  f"{letters[0]};{letters[1]}"):
        assert Q.grade(multi, typed, presentation=p).correct, typed
    with pytest.raises(CvlabError, match="select exactly 2 .you picked 3."):
        Q.grade(multi, "a, b, c", presentation=p)
    single = Q.get_question("choose-06")
    key = next(c for c in single.choices if c.correct)
    for typed in (key.text, f'"{key.text}"', key.text.upper(), key.id):
        assert Q.grade(single, typed).correct, typed
    code = Q.get_question("exp-08")  # flavor="TensorFlowLite"
    for typed in ('"TensorFlowLite"', "TensorFlowLite", "'TensorFlowLite'", "tensorflowlite"):
        assert Q.grade(code, typed).correct, typed
    two = Q.get_question("train-10")
    assert Q.grade(two, 'Advanced, reserved_budget_in_hours').correct
    assert Q.grade(two, '"Advanced", reserved_budget_in_hours').correct
    assert Q.grade(two, "1a 2a").correct and Q.grade(two, "aa").correct  # file order puts the keys first
    with pytest.raises(CvlabError, match="one letter per drop-down"):
        Q.grade(two, "a")
    yesno = Q.get_question("choose-13")
    answers = "".join("y" if s.answer else "n" for s in yesno.statements)
    for typed in (answers, " ".join(answers), ", ".join("yes" if c == "y" else "no" for c in answers)):
        assert Q.grade(yesno, typed).correct, typed
    with pytest.raises(CvlabError, match="for each of the 3 statements"):
        Q.grade(yesno, "yes")
    for qid, junk in (("choose-06", "z"), ("choose-06", ""), ("exp-14", "a b"), ("code-33", "a a b c d e f")):
        with pytest.raises(CvlabError) as err:
            Q.grade(qid, junk)
        assert err.value.code == "BadRequest" and "type" in err.value.message or "once" in err.value.message


def test_questions_about_the_run_read_the_facts_the_notebook_passes():
    q = Q.get_question("eval-14")
    assert q.facts == ("precision_at_50",) and not q.in_exam
    assert "precision_at_50" in Q.available(q, None) and "facts.yaml" in Q.available(q, {})
    assert Q.grade(q, "83.7%", facts={"precision_at_50": 0.837}).correct
    assert not Q.grade(q, "0.875", facts={"precision_at_50": 0.837}).correct  # another iteration's number
    for bad in (1.5, float("nan"), "0.8", True):
        with pytest.raises(CvlabError) as err:
            q.expected({"precision_at_50": bad})
        assert "precision_at_50" in err.value.message
    with pytest.raises(CvlabError, match="whole count"):
        Q.get_question("imp-08").expected({"parts_iterations": 2.5})
    registry = Q.facts_registry()
    used = {f for x in ALL for f in x.facts}
    assert used <= set(registry) and all(registry[f]["unit"] in ("fraction", "count") for f in registry)


# ------------------------------------------------------------------------------------------------ bad banks

@pytest.fixture
def bank_dir(tmp_path):
    for name in ("sources.yaml", "facts.yaml"):
        shutil.copy(Q.BANK_DIR / name, tmp_path / name)
    return tmp_path


def _question(**kw):
    q = {"id": "x-01", "kind": "single", "skill": "train", "difficulty": "easy", "source": "cv-faq",
         "prompt": "Which one?", "explanation": "Because.",
         "choices": [{"id": "aa", "text": "A", "correct": True}, {"id": "bb", "text": "B", "why": "No."},
                     {"id": "cc", "text": "C", "why": "No."}, {"id": "dd", "text": "D", "why": "No."}]}
    q.update(kw)
    return q


@pytest.mark.parametrize("change, field, says", [
    ({"choices": [{"id": "aa", "text": "A", "correct": True}, {"id": "bb", "text": "B", "why": "No."},
                  {"id": "cc", "text": "C"}, {"id": "dd", "text": "D", "why": "No."}]},
     "choices[2].why", "rationale"),
    ({"kind": "essay"}, "kind", "is not one of"),
    ({"source": "a-blog"}, "source", "sources.yaml"),
    ({"skill": "dancing"}, "skill", "is not one of"),
    ({"choices": [{"id": "aa", "text": "A", "correct": True}, {"id": "bb", "text": "B", "why": "No."},
                  {"id": "cc", "text": "C", "why": "No."}]}, "choices", "four options"),
    ({"kind": "multi", "select": 3}, "select", "says select 3 but 1"),
    ({"choices": [{"id": "aa", "text": "A", "correct": True}, {"id": "bb", "text": "B", "why": False},
                  {"id": "cc", "text": "C", "why": "No."}, {"id": "dd", "text": "D", "why": "No."}]},
     "choices[1].why", "not of type 'string'"),
])
def test_a_broken_bank_names_the_file_question_and_field(bank_dir, change, field, says):
    (bank_dir / "broken.yaml").write_text(yaml.safe_dump({"topic": "x", "title": "Broken",
                                                           "questions": [_question(**change)]}))
    with pytest.raises(CvlabError) as err:
        Q.load_banks(bank_dir)
    msg = err.value.message
    assert msg.startswith("broken.yaml: question x-01, field ") and field in msg and says in msg, msg


def test_broken_yaml_and_clashing_ids_are_refused_with_the_file(bank_dir):
    (bank_dir / "a.yaml").write_text(yaml.safe_dump({"topic": "a", "title": "Fine", "questions": [_question()]}))
    (bank_dir / "b.yaml").write_text(yaml.safe_dump({"topic": "b", "title": "Clash", "questions": [_question()]}))
    with pytest.raises(CvlabError, match="b.yaml: question id x-01 is already used in a.yaml"):
        Q.load_banks(bank_dir)
    (bank_dir / "b.yaml").write_text("topic: b\ntitle: Bad\nquestions:\n  - id: b-01\n    prompt: a: b: c\n")
    with pytest.raises(CvlabError, match=r"b.yaml is not valid YAML at line 5, column 14: mapping values"):
        Q.load_banks(bank_dir)
    with pytest.raises(CvlabError) as err:
        Q.load_banks(bank_dir / "empty")
    assert err.value.code == "NotFound"


def test_a_bank_validated_once_is_not_validated_again_until_it_changes(bank_dir, tmp_path, monkeypatch):
    """The lessons' kernels skip jsonschema for a bank file whose exact bytes passed before (a marker in the
    machine cache); an edit, even a valid one, is checked again, and a broken edit is still refused."""
    from cvlab.quiz import bank as bank_module

    monkeypatch.setenv("CVLAB_CACHE_DIR", str(tmp_path / "cache"))
    (bank_dir / "a.yaml").write_text(yaml.safe_dump({"topic": "a", "title": "Fine", "questions": [_question()]}))
    checked = []
    real = bank_module._validate
    monkeypatch.setattr(bank_module, "_validate", lambda path, data: (checked.append(path.name), real(path, data)))
    assert Q.load_banks(bank_dir)["a"].questions[0].id == "x-01"
    assert checked == ["a.yaml"]
    Q.load_banks(bank_dir)
    assert checked == ["a.yaml"]  # unchanged bytes: not validated again
    (bank_dir / "a.yaml").write_text(yaml.safe_dump({"topic": "a", "title": "Fine", "questions": [
        _question(kind="essay")]}))
    with pytest.raises(CvlabError, match="a.yaml: question x-01, field kind"):
        Q.load_banks(bank_dir)
    assert checked == ["a.yaml", "a.yaml"]
