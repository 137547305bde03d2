"""Question banks (quizzes/*.yaml), grading, and progress kept in the workspace.

One engine serves the notebook quiz cells (`cvlab.widgets.quiz`) and the terminal (`cvlab quiz`), so a
question answered in either place counts the same. Numeric questions may be computed from the learner's own
run: their `compute` expression is evaluated against `run_context(ws)` (metrics of the learner's iterations,
the service limits in `cvlab.rules`), so the expected answer is never written twice.

    >>> from cvlab import quiz
    >>> q = quiz.get_question("eval-03")
    >>> quiz.grade(q, 0.5).correct
    True
"""
from __future__ import annotations

import ast
import json
import math
import os
import random
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import yaml

from .errors import CvlabError

BANK_DIR = Path(__file__).resolve().parent.parent / "quizzes"
PROGRESS_KEY = "quiz_progress"
KINDS = ("single", "multiple", "truefalse", "numeric", "code")
SKILLS = {
    "choose": "Choose classification or object detection (and the right service)",
    "label": "Label images (tags, regions, negatives)",
    "train": "Train a model",
    "evaluate": "Evaluate model metrics",
    "publish": "Publish a trained model (and export it)",
    "consume": "Consume a published model",
    "code-first": "Build a custom vision model code-first",
}
_LEARN = "https://learn.microsoft.com/azure/ai-services/custom-vision-service/"
SOURCES = {
    "study-guide": "the study guide (shared/seed/study-guide.txt), checked against Microsoft's documentation",
    "limits-and-quotas": _LEARN + "limits-and-quotas",
    "select-domain": _LEARN + "select-domain",
    "getting-started-build-a-classifier": _LEARN + "getting-started-build-a-classifier",
    "get-started-build-detector": _LEARN + "get-started-build-detector",
    "custom-vision-characteristics":
        "https://learn.microsoft.com/legal/cognitive-services/custom-vision/custom-vision-cvs-characteristics-and-limitations",
    "getting-started-improving-your-classifier": _LEARN + "getting-started-improving-your-classifier",
    "suggested-tags": _LEARN + "suggested-tags",
    "export-your-model": _LEARN + "export-your-model",
    "export-programmatically": _LEARN + "export-programmatically",
    "faq": _LEARN + "faq",
    "use-prediction-api": _LEARN + "use-prediction-api",
    "test-your-model": _LEARN + "test-your-model",
    "qa-quick-vs-advanced": "https://learn.microsoft.com/en-us/answers/questions/738206/custom-vision-model",
    "ai-102-exam": "https://learn.microsoft.com/credentials/certifications/azure-ai-engineer/",
    "cv-overview": _LEARN + "overview",
}
LETTERS = "abcdefghij"


@dataclass(frozen=True)
class Question:
    """One quiz question as stored in a bank (see quizzes/schema.json for the fields)."""

    id: str
    topic: str
    kind: str
    skill: str
    difficulty: str
    source: str
    prompt: str
    explanation: str
    choices: tuple = ()
    answer: Any = None
    distractors: Mapping[str, str] = field(default_factory=dict)
    template: str | None = None
    compute: str | None = None
    tolerance: float = 0.0

    @property
    def source_url(self) -> str:
        return SOURCES[self.source]

    @property
    def needs_run(self) -> bool:
        """True when the expected answer comes from the learner's own iterations (not just from cvlab.rules)."""
        if self.compute is None:
            return False
        names = {n.id for n in ast.walk(ast.parse(self.compute, mode="eval")) if isinstance(n, ast.Name)}
        return not names <= set(static_context())

    def expected(self, context: Mapping[str, Any] | None = None) -> Any:
        """The correct answer; `compute` questions evaluate their expression against `context`.

        Without a context only the service limits (`limit(key, tier)`) are available; questions about the
        learner's run need `run_context(ws)`.
        """
        if self.compute is None:
            return self.answer
        names = dict(static_context(), **(context or {}))
        try:
            value = eval(self.compute, {"__builtins__": {}}, names)  # bank files are trusted local data
        except NameError as exc:
            raise CvlabError("BadRequest", f"question {self.id} is computed from your own run: pass "
                             "context=quiz.run_context(ws) (and run the notebooks that train it)") from exc
        return float(value)

    def expected_text(self, context: Mapping[str, Any] | None = None) -> str:
        """The correct answer as a learner would read it."""
        if self.kind == "single":
            return f"{LETTERS[self.answer]}) {self.choices[self.answer]}"
        if self.kind == "multiple":
            return ", ".join(f"{LETTERS[i]}) {self.choices[i]}" for i in self.answer)
        if self.kind == "truefalse":
            return "True" if self.answer else "False"
        if self.kind == "code":
            return self.template.replace("____", self.answer[0])
        value = self.expected(context)
        return f"{value:g}" if self.tolerance == 0 else f"{value:.4g} (± {self.tolerance:g})"


@dataclass(frozen=True)
class Bank:
    topic: str
    title: str
    notebook: str | None
    questions: tuple[Question, ...]
    path: Path


@dataclass(frozen=True)
class Grade:
    """The outcome of one answer: whether it was right, the right answer, and what to read next."""

    question_id: str
    correct: bool
    expected: str
    feedback: str

    def __bool__(self) -> bool:
        return self.correct


# ----------------------------------------------------------------------------------------------- loading

@lru_cache(maxsize=1)
def schema() -> dict:
    """The JSON schema every bank file follows."""
    return json.loads((BANK_DIR / "schema.json").read_text())


def _semantic_errors(data: dict) -> list[str]:
    """Checks JSON schema cannot express: indices in range, every distractor explained, no stray keys."""
    errors = []
    for q in data["questions"]:
        qid, kind = q["id"], q["kind"]
        choices = q.get("choices", [])
        if kind in ("single", "multiple"):
            right = {q["answer"]} if kind == "single" else set(q["answer"])
            if any(i >= len(choices) for i in right):
                errors.append(f"{qid}: answer index out of range")
            wrong = {i for i in range(len(choices))} - right
            explained = {int(k) for k in q["distractors"] if str(k).isdigit()}
            if wrong != explained or len(q["distractors"]) != len(explained):
                errors.append(f"{qid}: distractors must explain exactly the wrong choices {sorted(wrong)}")
            if len(set(map(str, choices))) != len(choices):
                errors.append(f"{qid}: duplicate choices")
        if kind == "code":
            for wrong in q.get("distractors", {}):
                if _norm_code(str(wrong)) in {_norm_code(a) for a in q["answer"]}:
                    errors.append(f"{qid}: distractor {wrong!r} is also an accepted answer")
        if kind in ("truefalse", "numeric") and q.get("distractors"):
            errors.append(f"{qid}: {kind} questions explain the answer in `explanation`, not `distractors`")
    return errors


def load_bank(path: str | Path) -> Bank:
    """Read and validate one bank file; raises CvlabError naming the file and the broken field."""
    import jsonschema

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise CvlabError("BadRequest", f"{path.name} is not valid YAML: {exc}") from exc
    # YAML turns mapping keys like `1:` into ints; JSON schema wants string keys.
    for q in (data or {}).get("questions", []) or []:
        if isinstance(q, dict) and isinstance(q.get("distractors"), dict):
            q["distractors"] = {str(k): v for k, v in q["distractors"].items()}
    validator = jsonschema.Draft202012Validator(schema())
    problems = [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
                for e in validator.iter_errors(data)]
    if not problems:
        problems = _semantic_errors(data)
    if problems:
        raise CvlabError("BadRequest", f"{path.name} breaks the quiz schema: " + "; ".join(problems[:5]))
    questions = tuple(
        Question(id=q["id"], topic=data["topic"], kind=q["kind"], skill=q["skill"], difficulty=q["difficulty"],
                 source=q["source"], prompt=q["prompt"].strip(), explanation=q["explanation"].strip(),
                 choices=tuple(str(c) for c in q.get("choices", ())), answer=_freeze(q.get("answer")),
                 distractors=q.get("distractors", {}), template=q.get("template"), compute=q.get("compute"),
                 tolerance=float(q.get("tolerance", 0.0)))
        for q in data["questions"])
    return Bank(data["topic"], data["title"], data.get("notebook"), questions, path)


def _freeze(value):
    return tuple(value) if isinstance(value, list) else value


def load_banks(directory: str | Path | None = None) -> dict[str, Bank]:
    """Every bank in `directory` (default: the repository's quizzes/), keyed by topic; ids must be unique."""
    directory = Path(directory) if directory else BANK_DIR
    files = sorted(directory.glob("*.yaml"))
    if not files:
        raise CvlabError("NotFound", f"no quiz banks (*.yaml) in {directory}")
    banks, seen = {}, {}
    for f in files:
        bank = load_bank(f)
        if bank.topic in banks:
            raise CvlabError("BadRequest", f"topic {bank.topic!r} is defined twice ({f.name})")
        for q in bank.questions:
            if q.id in seen:
                raise CvlabError("BadRequest", f"question id {q.id} appears in {seen[q.id]} and {f.name}")
            seen[q.id] = f.name
        banks[bank.topic] = bank
    return banks


@lru_cache(maxsize=1)
def _default_banks() -> dict[str, Bank]:
    return load_banks()


def topics() -> list[str]:
    return list(_default_banks())


def questions(topic: str | None = None, *, skill: str | None = None, include_run: bool = True) -> list[Question]:
    """Questions of one topic (or all), optionally of one exam skill; `include_run=False` drops computed ones."""
    banks = _default_banks()
    if topic is not None and topic not in banks:
        raise CvlabError("NotFound", f"unknown quiz topic {topic!r}; choose one of {', '.join(banks)}")
    chosen = [q for b in banks.values() if topic in (None, b.topic) for q in b.questions]
    if skill is not None:
        if skill not in SKILLS:
            raise CvlabError("NotFound", f"unknown skill {skill!r}; choose one of {', '.join(SKILLS)}")
        chosen = [q for q in chosen if q.skill == skill]
    return [q for q in chosen if include_run or not q.needs_run]


def get_question(question_id: str) -> Question:
    for q in questions():
        if q.id == question_id:
            return q
    raise CvlabError("NotFound", f"no quiz question with id {question_id!r} (see quizzes/*.yaml)")


# ----------------------------------------------------------------------------------------------- grading

def _norm_code(text: str) -> str:
    return re.sub(r"\s+", "", str(text)).rstrip(",;").replace('"', "'")


def _parse_index(question: Question, token) -> int:
    if isinstance(token, bool):
        raise CvlabError("BadRequest", f"{question.id}: answer with a letter, not True/False")
    if isinstance(token, int):
        index = token
    else:
        token = str(token).strip().lower().rstrip(")")
        if len(token) == 1 and token in LETTERS:
            index = LETTERS.index(token)
        elif token.isdigit():
            index = int(token) - 1  # typed numbers count from 1, like the printed list
        else:
            matches = [i for i, c in enumerate(question.choices) if c.lower() == token]
            if not matches:
                raise CvlabError("BadRequest", f"{question.id}: {token!r} is not a choice; type a letter "
                                 f"a-{LETTERS[len(question.choices) - 1]}")
            index = matches[0]
    if not 0 <= index < len(question.choices):
        raise CvlabError("BadRequest", f"{question.id}: choice {index} does not exist; "
                         f"pick one of a-{LETTERS[len(question.choices) - 1]}")
    return index


def _parse_bool(question: Question, response) -> bool:
    if isinstance(response, bool):
        return response
    token = str(response).strip().lower()
    if token in ("t", "true", "y", "yes", "1"):
        return True
    if token in ("f", "false", "n", "no", "0"):
        return False
    raise CvlabError("BadRequest", f"{question.id}: answer true or false (t/f)")


def _parse_number(question: Question, response) -> float:
    try:
        text = str(response).strip().replace(",", "")
        value = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        raise CvlabError("BadRequest", f"{question.id}: {response!r} is not a number; type e.g. 0.75 or 75%")
    if math.isnan(value):
        raise CvlabError("BadRequest", f"{question.id}: answer with a number, not NaN")
    return value


def grade(question: Question | str, response, context: Mapping[str, Any] | None = None) -> Grade:
    """Grade one response (a letter/index, a list of them, a bool, a number or a code fragment).

    Unreadable responses raise CvlabError("BadRequest") saying what to type; they are not counted as wrong.
    """
    q = get_question(question) if isinstance(question, str) else question
    notes = []
    if q.kind == "single":
        chosen = _parse_index(q, response)
        correct = chosen == q.answer
        if not correct:
            notes.append(f"Your choice {LETTERS[chosen]}) is wrong: {q.distractors[str(chosen)]}")
    elif q.kind == "multiple":
        tokens = response.replace(" ", ",").split(",") if isinstance(response, str) else list(response)
        chosen = {_parse_index(q, t) for t in tokens if str(t).strip() != ""}
        if not chosen:
            raise CvlabError("BadRequest", f"{q.id}: pick at least one choice, e.g. 'a,c'")
        correct = chosen == set(q.answer)
        for i in sorted(chosen - set(q.answer)):
            notes.append(f"{LETTERS[i]}) should not be picked: {q.distractors[str(i)]}")
        for i in sorted(set(q.answer) - chosen):
            notes.append(f"{LETTERS[i]}) was missing.")
    elif q.kind == "truefalse":
        correct = _parse_bool(q, response) == q.answer
    elif q.kind == "numeric":
        value = _parse_number(q, response)
        correct = abs(value - q.expected(context)) <= q.tolerance + 1e-9
    else:  # code
        if not str(response).strip():
            raise CvlabError("BadRequest", f"{q.id}: type the missing code for ____")
        given = _norm_code(response)
        correct = given in {_norm_code(a) for a in q.answer}
        if not correct:
            reasons = {_norm_code(k): v for k, v in q.distractors.items()}
            if given in reasons:
                notes.append(f"{str(response).strip()} is a common mistake: {reasons[given]}")
    verdict = "Correct." if correct else f"Not quite. The answer is {q.expected_text(context)}."
    feedback = " ".join([verdict, *notes, q.explanation, f"(Source: {q.source_url})"])
    return Grade(q.id, correct, q.expected_text(context), feedback)


# ----------------------------------------------------------------------------------------------- progress

def load_progress(ws) -> dict[str, dict]:
    """Per-question history stored in the workspace: {id: {attempts, correct, last, last_at}}."""
    raw = ws.get_setting(PROGRESS_KEY)
    if raw in (None, ""):
        return {}
    return json.loads(raw) if isinstance(raw, str) else dict(raw)


def record(ws, grade_: Grade) -> dict:
    """Store one graded answer in the workspace and return that question's updated history."""
    progress = load_progress(ws)
    entry = progress.setdefault(grade_.question_id, {"attempts": 0, "correct": 0})
    entry["attempts"] += 1
    entry["correct"] += int(grade_.correct)
    entry["last"] = bool(grade_.correct)
    entry["last_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    ws.set_setting(PROGRESS_KEY, progress)
    return entry


def reset_progress(ws) -> None:
    ws.set_setting(PROGRESS_KEY, {})


def plan(pool: Sequence[Question], progress: Mapping[str, dict], count: int | None = None,
         seed: int = 0) -> list[Question]:
    """Order questions for a session: missed last time first, then never seen, then ones answered right.

    Within each group the order is shuffled with `seed` (deterministic), answered-right questions oldest first.
    """
    rng = random.Random(seed)
    missed = [q for q in pool if q.id in progress and not progress[q.id].get("last")]
    unseen = [q for q in pool if q.id not in progress]
    known = [q for q in pool if q.id in progress and progress[q.id].get("last")]
    rng.shuffle(missed)
    rng.shuffle(unseen)
    known.sort(key=lambda q: progress[q.id].get("last_at", ""))
    ordered = missed + unseen + known
    return ordered if count is None else ordered[:count]


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
    """Score over the questions answered so far (their latest attempt), and the ids still missed."""
    progress = load_progress(ws)
    pool = questions(topic)
    seen = [q for q in pool if q.id in progress]
    by_skill: dict[str, tuple[int, int]] = {}
    for q in seen:
        right, n = by_skill.get(q.skill, (0, 0))
        by_skill[q.skill] = (right + int(bool(progress[q.id].get("last"))), n + 1)
    missed = [q.id for q in seen if not progress[q.id].get("last")]
    return Summary(len(seen), len(seen) - len(missed), len(pool), missed, by_skill)


# ----------------------------------------------------------------------------------------------- the run

def static_context() -> dict[str, Callable]:
    """Names a `compute` expression may use without a workspace: service limits, metrics, box conversions."""
    from . import metrics, rules
    from .datasets import coords

    return {"limit": rules.limit, "round": round, "min": min, "max": max,
            "prf_from_counts": metrics.prf_from_counts, "box_iou": metrics.box_iou,
            "coco_to_ltwh": coords.coco_to_ltwh, "ltwh_to_yolo": coords.ltwh_to_yolo,
            "ltwh_to_pixels": coords.ltwh_to_pixels}


def run_context(ws) -> dict[str, Callable]:
    """Names a `compute` expression may use: metrics of the learner's latest iterations and service limits.

    Each function raises CvlabError (NotFound...) when the run it needs has not happened yet.
    """
    from .metrics import is_defined

    def _latest(project_name: str):
        project = ws.find_project(project_name)
        if project is None:
            raise CvlabError("NotFoundProject", f"no project named {project_name!r} yet: run the notebook that "
                             "creates it first")
        iteration = project.latest_iteration()
        if iteration is None:
            raise CvlabError("NotFoundIteration", f"project {project_name!r} has no completed iteration: train it "
                             "first (notebook 03)")
        return project, iteration

    def _performance(project_name, threshold, overlap_threshold):
        from .performance import get_iteration_performance

        project, iteration = _latest(project_name)
        return get_iteration_performance(ws, project.id, iteration.id, threshold=threshold,
                                         overlap_threshold=overlap_threshold)

    def overall_metric(project_name: str, metric: str, threshold: float = 0.5, overlap_threshold: float = 0.5):
        value = getattr(_performance(project_name, threshold, overlap_threshold), metric)
        if not is_defined(value):
            raise CvlabError("NotFoundIterationPerformance", f"{metric} is not reported for {project_name!r}")
        return value

    def tag_metric(project_name: str, tag_name: str, metric: str, threshold: float = 0.5,
                   overlap_threshold: float = 0.5):
        perf = _performance(project_name, threshold, overlap_threshold)
        for tag in perf.per_tag_performance:
            if tag.name == tag_name:
                value = getattr(tag, metric)
                if not is_defined(value):
                    raise CvlabError("NotFoundIterationPerformance", f"{metric} is not reported for {tag_name!r}")
                return value
        raise CvlabError("NotFoundTag", f"project {project_name!r} has no tag {tag_name!r} in its latest iteration")

    def iteration_count(project_name: str) -> int:
        project = ws.find_project(project_name)
        if project is None:
            raise CvlabError("NotFoundProject", f"no project named {project_name!r} yet")
        return len(ws.get_iterations(project.id))

    def image_count(project_name: str, tagging_status: str = "All") -> int:
        project = ws.find_project(project_name)
        if project is None:
            raise CvlabError("NotFoundProject", f"no project named {project_name!r} yet")
        return ws.get_image_count(project.id, tagging_status=tagging_status)

    return {"overall_metric": overall_metric, "tag_metric": tag_metric, "iteration_count": iteration_count,
            "image_count": image_count, **static_context()}


def available(question: Question, context: Mapping[str, Any] | None) -> str | None:
    """None if the question can be asked now, else why not (a computed question whose run is missing)."""
    if not question.needs_run:
        return None
    try:
        question.expected(context)
    except CvlabError as exc:
        return exc.message
    return None


# ----------------------------------------------------------------------------------------------- terminal

def render_text(q: Question) -> str:
    """The question as plain text for a terminal."""
    lines = [f"[{q.id}] ({q.skill}, {q.difficulty}) {q.prompt}"]
    if q.kind in ("single", "multiple"):
        lines += [f"  {LETTERS[i]}) {c}" for i, c in enumerate(q.choices)]
        lines.append("Your answer (one letter):" if q.kind == "single" else "Your answer (letters, e.g. a,c):")
    elif q.kind == "truefalse":
        lines.append("True or false? (t/f):")
    elif q.kind == "numeric":
        lines.append("Your answer (a number):")
    else:
        lines += [f"  {q.template}", "Fill in ____:"]
    return "\n".join(lines)


def configure(parser) -> None:
    """Arguments of `cvlab quiz`."""
    parser.add_argument("--topic", choices=None, help="one topic (default: all); see --list")
    parser.add_argument("--skill", help=f"one exam skill: {', '.join(SKILLS)}")
    parser.add_argument("--count", type=int, default=10, help="questions this session (default 10)")
    parser.add_argument("--seed", type=int, default=None, help="shuffle seed (default: from the date)")
    parser.add_argument("--workspace", default=None, help="workspace folder (default $CVLAB_WORKSPACE or ./workspace)")
    parser.add_argument("--list", action="store_true", help="list topics with question counts and exit")
    parser.add_argument("--reset", action="store_true", help="forget recorded progress first")


def run(args, stdin=None, out=None) -> int:
    """`cvlab quiz`: ask questions in the terminal, missed ones first, and record the answers."""
    import sys

    stdin = stdin or sys.stdin
    out = out or sys.stdout
    say = lambda text="": print(text, file=out, flush=True)  # noqa: E731
    if getattr(args, "list", False):
        for topic, bank in _default_banks().items():
            say(f"{topic:10s} {len(bank.questions):3d}  {bank.title}")
        return 0
    from . import open_workspace

    ws = open_workspace(args.workspace)
    if getattr(args, "reset", False):
        reset_progress(ws)
    context = run_context(ws)
    pool = [q for q in questions(args.topic, skill=args.skill) if available(q, context) is None]
    seed = args.seed if args.seed is not None else int(datetime.now(timezone.utc).strftime("%Y%m%d"))
    if args.count < 1:
        raise CvlabError("BadRequest", "--count must be at least 1")
    session = plan(pool, load_progress(ws), args.count, seed)
    right = asked = 0
    for q in session:
        say()
        say(render_text(q))
        while True:
            line = stdin.readline()
            if line == "":
                say("\n(input ended)")
                return _finish(say, ws, right, asked)
            try:
                result = grade(q, line.strip(), context)
                break
            except CvlabError as exc:
                say(f"  {exc.message} - try again:")
        record(ws, result)
        asked += 1
        right += result.correct
        say(result.feedback)
    return _finish(say, ws, right, asked)


def _finish(say, ws, right: int, asked: int) -> int:
    say()
    say(f"Score this session: {right}/{asked}")
    left = summary(ws)
    if left.missed:
        say(f"Still to revisit ({len(left.missed)}): {', '.join(left.missed)} - they come first next time.")
    return 0
