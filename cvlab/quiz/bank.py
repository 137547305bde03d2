"""The question bank: skills, sources, facts, and the YAML files in quizzes/ loaded into frozen questions.

A bank file is validated against quizzes/schema.json, then by the checks JSON schema cannot express; every
problem names the file, the question id and the field, so a broken edit is fixed in one look. Choices, statements,
steps, match targets and code options carry stable ids: answers, rationales and stored results refer to those ids,
never to positions (positions are a per-learner shuffle, see `present`).
"""
from __future__ import annotations

import ast
import hashlib
import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml

from cvlab.errors import CvlabError

BANK_DIR = Path(__file__).resolve().parent.parent.parent / "quizzes"
KINDS = ("single", "multi", "yesno", "order", "match", "code", "numeric")
KIND_NAMES = {
    "single": "single answer", "multi": "select N", "yesno": "Yes/No statements", "order": "ordering (build list)",
    "match": "matching (drag and drop)", "code": "answer area (code drop-downs)", "numeric": "numeric answer",
}
STUDY_GUIDE = "https://learn.microsoft.com/credentials/certifications/resources/study-guides/ai-102"


@dataclass(frozen=True)
class Skill:
    key: str
    line: str   # the skill line as Microsoft's AI-102 study guide words it
    area: str   # the study guide's heading it sits under
    weight: float = 1.0  # share of an exam form (in cvlab: every line weighs the same)


_CUSTOM = "Implement custom computer vision models by using Azure AI Vision"
SKILLS: dict[str, Skill] = {s.key: s for s in (
    Skill("choose", "Choose between image classification and object detection models", _CUSTOM),
    Skill("label", "Label images", _CUSTOM),
    Skill("train", "Train a custom image model, including image classification and object detection", _CUSTOM),
    Skill("evaluate", "Evaluate custom vision model metrics", _CUSTOM),
    Skill("publish", "Publish a custom vision model", _CUSTOM),
    Skill("consume", "Consume a custom vision model", _CUSTOM),
    Skill("code-first", "Build a custom vision model code first", _CUSTOM),
    Skill("containers", "Plan and implement a container deployment", "Create and manage an Azure AI services resource"),
)}


@dataclass(frozen=True)
class Option:
    """A choice, a code drop-down option, an ordering step or a match target: a stable id and its text."""

    id: str
    text: str
    correct: bool = False
    why: str | None = None  # rationale shown to a learner who picks it (required when it is wrong)


@dataclass(frozen=True)
class Statement:
    id: str
    text: str
    answer: bool
    why: str


@dataclass(frozen=True)
class MatchItem:
    id: str
    text: str
    answer: str  # a target id
    why: str


@dataclass(frozen=True)
class Blank:
    id: str
    options: tuple[Option, ...]

    @property
    def answer(self) -> Option:
        return next(o for o in self.options if o.correct)


@dataclass(frozen=True)
class Question:
    """One gradable item. Which payload fields are set depends on `kind` (see quizzes/README.md)."""

    id: str
    kind: str
    skill: str
    difficulty: str
    sources: tuple[str, ...]
    prompt: str
    explanation: str
    topic: str = ""
    scope: str = "exam"  # "course": housekeeping (dates, lab status), never in an exam form
    aliases: tuple[str, ...] = ()
    case: str | None = None  # the case study this question belongs to
    choices: tuple[Option, ...] = ()
    select: int = 1
    statements: tuple[Statement, ...] = ()
    steps: tuple[Option, ...] = ()
    extra: tuple[Option, ...] = ()
    items: tuple[MatchItem, ...] = ()
    targets: tuple[Option, ...] = ()
    language: str | None = None
    template: str | None = None
    blanks: tuple[Blank, ...] = ()
    answer: float | None = None
    compute: str | None = None
    facts: tuple[str, ...] = ()
    tolerance: float = 0.0
    unit: str | None = None

    # ---- derived views -------------------------------------------------------------------------------------
    @property
    def source_urls(self) -> tuple[str, ...]:
        reg = sources()
        return tuple(reg[k]["url"] for k in self.sources)

    @property
    def source_url(self) -> str:
        return self.source_urls[0]

    @property
    def correct_ids(self) -> tuple[str, ...]:
        return tuple(c.id for c in self.choices if c.correct)

    @property
    def needs_run(self) -> bool:
        """True when the expected answer is read from the learner's own run (facts the notebook passes)."""
        return bool(self.facts)

    @property
    def in_exam(self) -> bool:
        """Eligible for a scored exam form: not housekeeping, not about the learner's own run."""
        return self.scope == "exam" and not self.facts

    @property
    def parts(self) -> int:
        """How many independently graded parts (Microsoft gives a point per correct part)."""
        return {"single": 1, "multi": self.select, "yesno": len(self.statements), "order": len(self.steps),
                "match": len(self.items), "code": len(self.blanks), "numeric": 1}[self.kind]

    def option(self, option_id: str) -> Option:
        for o in (*self.choices, *self.steps, *self.extra, *self.targets):
            if o.id == option_id:
                return o
        raise KeyError(option_id)

    def expected(self, facts: Mapping[str, Any] | None = None) -> float:
        """The numeric answer; questions about the learner's run evaluate `compute` over the facts passed in."""
        if self.kind != "numeric":
            raise CvlabError("BadRequest", f"{self.id} is a {self.kind} question; only numeric ones have a value")
        if self.compute is None:
            return float(self.answer)
        names = dict(static_context())
        missing = [f for f in self.facts if facts is None or f not in facts]
        if missing:
            raise CvlabError("BadRequest", f"{self.id} needs the number{'s' if len(missing) > 1 else ''} your "
                             f"notebook showed: pass facts={{{', '.join(repr(m) + ': ...' for m in missing)}}} "
                             "(see quizzes/facts.yaml)")
        for name in self.facts:
            names[name] = check_fact(name, facts[name])
        return float(eval(self.compute, {"__builtins__": {}}, names))  # bank files are trusted local data


@dataclass(frozen=True)
class Case:
    """A case study: a one-page scenario and the 4-6 questions asked about it."""

    id: str
    title: str
    scenario: str
    question_ids: tuple[str, ...]
    topic: str = ""


@dataclass(frozen=True)
class Bank:
    topic: str
    title: str
    notebook: str | None
    questions: tuple[Question, ...]
    cases: tuple[Case, ...]
    path: Path


# ----------------------------------------------------------------------------------------------- registries

# libyaml's loader when PyYAML has it (10x faster: the 13 files in 0.04 s, not 0.4 s, in every lesson's kernel)
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _yaml(path: Path) -> Any:
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_LOADER)
    except FileNotFoundError:
        raise CvlabError("NotFound", f"{path} is missing (the quiz bank needs it)") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        what = getattr(exc, "problem", None) or str(exc).split("\n")[0]
        raise CvlabError("BadRequest", f"{path.name} is not valid YAML{where}: {what}") from None


@lru_cache(maxsize=4)
def _registry(name: str, directory: str) -> dict:
    data = _yaml(Path(directory) / name)
    if not isinstance(data, dict):
        raise CvlabError("BadRequest", f"{name} must map keys to entries")
    return data


def sources(directory: Path | None = None) -> dict[str, dict]:
    """quizzes/sources.yaml: source key -> {url, title}; every url is Microsoft's (learn.microsoft.com or a
    Microsoft GitHub repository)."""
    return _registry("sources.yaml", str(directory or BANK_DIR))


def facts_registry(directory: Path | None = None) -> dict[str, dict]:
    """quizzes/facts.yaml: the numbers a notebook may pass to questions about the learner's own run."""
    return _registry("facts.yaml", str(directory or BANK_DIR))


@lru_cache(maxsize=1)
def schema() -> dict:
    """The JSON schema every bank file follows."""
    return json.loads((BANK_DIR / "schema.json").read_text())


def check_fact(name: str, value) -> float:
    """A fact's value as a float, refused with a clear message when it is not a finite number in range."""
    spec = facts_registry().get(name)
    if spec is None:
        raise CvlabError("BadRequest", f"unknown fact {name!r}; the known ones are in quizzes/facts.yaml")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value or value in (
            float("inf"), float("-inf")):
        raise CvlabError("BadRequest", f"fact {name!r} must be the number the notebook displayed, got {value!r}")
    if spec.get("unit") == "fraction" and not 0.0 <= float(value) <= 1.0:
        raise CvlabError("BadRequest", f"fact {name!r} is a fraction between 0 and 1, got {value!r}")
    if spec.get("unit") == "count" and (float(value) < 0 or float(value) != int(value)):
        raise CvlabError("BadRequest", f"fact {name!r} is a whole count, got {value!r}")
    return float(value)


def static_context() -> dict:
    """Names a `compute` expression may use: service limits, metric and box helpers from the library."""
    from cvlab import metrics, rules
    from cvlab.datasets import coords

    return {"limit": rules.limit, "round": round, "min": min, "max": max, "abs": abs,
            "prf_from_counts": metrics.prf_from_counts, "box_iou": metrics.box_iou,
            "coco_to_ltwh": coords.coco_to_ltwh, "ltwh_to_yolo": coords.ltwh_to_yolo,
            "ltwh_to_pixels": coords.ltwh_to_pixels}


# ----------------------------------------------------------------------------------------------- loading

PLACEHOLDER = re.compile(r"\[\[([a-z][a-z0-9-]*)\]\]")


def _where(data: dict, path: Iterable) -> tuple[str, str]:
    """(question id, field) for a path into a bank document, e.g. ('case-01 > case-01-2', 'choices[1].why')."""
    node, ids, rest = data, [], []
    for part in path:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            rest.append(f"[{part}]" if isinstance(part, int) else str(part))
            continue
        if isinstance(node, dict) and isinstance(node.get("id"), str) and rest and rest[-1] in ("questions", "cases"):
            ids.append(node["id"])
            rest = []
            continue
        rest.append(f"[{part}]" if isinstance(part, int) else str(part))
    field_ = "".join(p if p.startswith("[") else f".{p}" for p in rest).lstrip(".")
    return " > ".join(ids) or "<file>", field_ or "<question>"


class _Problems(list):
    def add(self, qid: str, field_: str, message: str) -> None:
        self.append(f"question {qid}, field {field_}: {message}")


def _code_option_id(option: dict) -> str:
    return option.get("id") or re.sub(r"[^A-Za-z0-9_.-]+", "_", option["text"]).strip("_") or "option"


def _check_options(p: _Problems, qid: str, name: str, options: list, *, exactly_one: bool, need_why: bool = True):
    ids = [o.get("id") for o in options]
    if len(set(ids)) != len(ids):
        p.add(qid, name, f"ids must be unique, got {ids}")
    texts = [str(o.get("text", "")).strip().lower() for o in options]
    if len(set(texts)) != len(texts):
        p.add(qid, name, "two options have the same text")
    right = [i for i, o in enumerate(options) if o.get("correct")]
    if exactly_one and len(right) != 1:
        p.add(qid, name, f"exactly one option must be `correct: true`, found {len(right)}")
    for i, o in enumerate(options):
        if o.get("correct") and o.get("why"):
            p.add(qid, f"{name}[{i}].why", "a correct option explains itself in `explanation`, not `why`")
        if need_why and not o.get("correct") and not o.get("why"):
            p.add(qid, f"{name}[{i}].why",
                  "every wrong option needs a rationale (`why`) shown to a learner who picks it")


def _semantic_problems(q: dict, p: _Problems, known_sources: Mapping, known_facts: Mapping) -> None:
    qid, kind = q["id"], q["kind"]
    for key in ([q["source"]] if isinstance(q["source"], str) else q["source"]):
        if key not in known_sources:
            p.add(qid, "source", f"unknown source {key!r}: add it to quizzes/sources.yaml with its Microsoft URL")
    if kind in ("single", "multi"):
        for i, c in enumerate(q["choices"]):
            if len(c["id"]) < 2:
                p.add(qid, f"choices[{i}].id", "choice ids are words, not letters (letters are per-learner positions)")
        _check_options(p, qid, "choices", q["choices"], exactly_one=kind == "single")
        if kind == "single" and len(q["choices"]) != 4:
            p.add(qid, "choices", f"a single-answer question has four options, found {len(q['choices'])}")
        if kind == "multi":
            right = sum(bool(c.get("correct")) for c in q["choices"])
            if right != q["select"]:
                p.add(qid, "select", f"says select {q['select']} but {right} choices are correct")
            if not 1 < q["select"] < len(q["choices"]):
                p.add(qid, "select", "must be between 2 and the number of choices minus one")
            if f"select {_NUMBER_WORDS.get(q['select'], q['select'])}".lower() not in q["prompt"].lower():
                p.add(qid, "prompt", f"must state the number, e.g. '... Select {_NUMBER_WORDS.get(q['select'])}.'")
    if kind == "yesno":
        ids = [s["id"] for s in q["statements"]]
        if len(set(ids)) != len(ids):
            p.add(qid, "statements", "statement ids must be unique")
    if kind == "order":
        _check_options(p, qid, "steps", q["steps"] + q.get("extra", []), exactly_one=False, need_why=False)
        for i, s in enumerate(q.get("extra", [])):
            if not s.get("why"):
                p.add(qid, f"extra[{i}].why", "an action that is not part of the sequence needs a rationale")
    if kind == "match":
        targets = {t["id"] for t in q["targets"]}
        used = {it["answer"] for it in q["items"]}
        for i, it in enumerate(q["items"]):
            if it["answer"] not in targets:
                p.add(qid, f"items[{i}].answer", f"{it['answer']!r} is not one of the targets {sorted(targets)}")
        for i, t in enumerate(q["targets"]):
            if t["id"] not in used and not t.get("why"):
                p.add(qid, f"targets[{i}].why", "a target no item uses needs a rationale (`why`)")
        if len({it["id"] for it in q["items"]}) != len(q["items"]) or len(targets) != len(q["targets"]):
            p.add(qid, "items", "item and target ids must be unique")
    if kind == "code":
        placeholders = PLACEHOLDER.findall(q["template"])
        blank_ids = [b["id"] for b in q["blanks"]]
        if placeholders != blank_ids:
            p.add(qid, "template", f"placeholders {placeholders} must list the blanks {blank_ids} in order, once each")
        for i, b in enumerate(q["blanks"]):
            for o in b["options"]:
                o.setdefault("id", _code_option_id(o))
            _check_options(p, qid, f"blanks[{i}].options", b["options"], exactly_one=True)
    if kind == "numeric":
        facts = q.get("facts", [])
        for name in facts:
            if name not in known_facts:
                p.add(qid, "facts", f"unknown fact {name!r}: define it in quizzes/facts.yaml")
        if facts and "compute" not in q:
            p.add(qid, "compute", "a question about the learner's run computes its answer from its `facts`")
        if "compute" in q:
            try:
                names = {n.id for n in ast.walk(ast.parse(q["compute"], mode="eval")) if isinstance(n, ast.Name)}
            except SyntaxError as exc:
                p.add(qid, "compute", f"not a Python expression: {exc.msg}")
            else:
                unknown = names - set(static_context()) - set(facts)
                if unknown:
                    p.add(qid, "compute", f"uses {sorted(unknown)}: only the library helpers and its `facts` exist")
        if q.get("scope") == "course" and facts:
            p.add(qid, "scope", "questions about the learner's run are never scored anyway; leave scope out")
    elif q.get("facts") or q.get("compute") or "answer" in q or q.get("unit"):
        p.add(qid, "answer", f"answer/compute/facts/unit belong to numeric questions, not {kind}")


_NUMBER_WORDS = {2: "two", 3: "three", 4: "four"}


def _options(raw: list, *, code: bool = False) -> tuple[Option, ...]:
    return tuple(Option(_code_option_id(o) if code else o["id"], str(o["text"]), bool(o.get("correct")),
                        o.get("why")) for o in raw)


def _question(q: dict, topic: str, case: str | None = None) -> Question:
    src = q["source"]
    return Question(
        id=q["id"], kind=q["kind"], skill=q["skill"], difficulty=q["difficulty"],
        sources=(src,) if isinstance(src, str) else tuple(src), prompt=q["prompt"].strip(),
        explanation=q["explanation"].strip(), topic=topic, scope=q.get("scope", "exam"),
        aliases=tuple(q.get("aliases", ())), case=case, choices=_options(q.get("choices", [])),
        select=q.get("select", 1),
        statements=tuple(Statement(s["id"], s["text"].strip(), bool(s["answer"]), s["why"].strip())
                         for s in q.get("statements", [])),
        steps=_options(q.get("steps", [])), extra=_options(q.get("extra", [])),
        items=tuple(MatchItem(i["id"], i["text"].strip(), i["answer"], i["why"].strip()) for i in q.get("items", [])),
        targets=_options(q.get("targets", [])), language=q.get("language"),
        template=q.get("template", "").rstrip("\n") or None,
        blanks=tuple(Blank(b["id"], _options(b["options"], code=True)) for b in q.get("blanks", [])),
        answer=q.get("answer"), compute=q.get("compute"), facts=tuple(q.get("facts", ())),
        tolerance=float(q.get("tolerance", 0.0)), unit=q.get("unit"))


def _validated_marker(path: Path) -> Path | None:
    """The machine-cache file that says this exact bank file (with this schema, sources, facts and checking code)
    passed validation before; None when the cache cannot be used."""
    try:
        from cvlab.config import settings

        digest = hashlib.sha256()
        for f in (path, BANK_DIR / "schema.json", path.parent / "sources.yaml", path.parent / "facts.yaml",
                  Path(__file__)):
            digest.update(f.read_bytes() if f.exists() else b"-")
        return settings().cache_dir / "quiz-validated" / digest.hexdigest()
    except (OSError, CvlabError):
        return None


def load_bank(path: str | Path) -> Bank:
    """Read and validate one bank file; a problem raises CvlabError naming the file, question id and field.

    A file whose exact bytes validated before on this machine is not validated again (a marker in the machine
    cache): importing jsonschema alone costs ~1.7 s, paid in every lesson's fresh kernel otherwise. Any edit
    changes the bytes, so an edited bank is always checked."""
    path = Path(path)
    data = _yaml(path)
    marker = _validated_marker(path)
    if marker is None or not marker.exists():
        _validate(path, data)
        if marker is not None:
            try:
                marker.parent.mkdir(parents=True, exist_ok=True)
                marker.touch()
            except OSError:
                pass  # a read-only cache: validated again next time, nothing else changes
    topic = data["topic"]
    questions = [_question(q, topic) for q in data.get("questions", [])]
    cases = []
    for c in data.get("cases", []):
        children = [_question(q, topic, case=c["id"]) for q in c["questions"]]
        cases.append(Case(c["id"], c["title"].strip(), c["scenario"].strip(), tuple(q.id for q in children), topic))
        questions += children
    return Bank(topic, data["title"], data.get("notebook"), tuple(questions), tuple(cases), path)


def _validate(path: Path, data) -> None:
    """The schema, then the checks it cannot express; every problem named by file, question id and field."""
    import jsonschema

    where = path.name
    validator = jsonschema.Draft202012Validator(schema())
    problems = _Problems()
    for err in sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.absolute_path))):
        best = jsonschema.exceptions.best_match(err.context) if err.context else err
        qid, field_ = _where(data, best.absolute_path) if isinstance(data, dict) else ("<file>", "<root>")
        problems.add(qid, field_, best.message)
    if not problems:
        known_sources, known_facts = sources(path.parent), facts_registry(path.parent)
        every = list(data.get("questions", [])) + [q for c in data.get("cases", []) for q in c["questions"]]
        for q in every:
            _semantic_problems(q, problems, known_sources, known_facts)
    if problems:
        shown = "; ".join(problems[:6]) + (f"; and {len(problems) - 6} more" if len(problems) > 6 else "")
        raise CvlabError("BadRequest", f"{where}: {shown}")


def load_banks(directory: str | Path | None = None) -> dict[str, Bank]:
    """Every bank in `directory` (default: the repository's quizzes/), keyed by topic; ids and aliases unique."""
    directory = Path(directory) if directory else BANK_DIR
    files = sorted(f for f in directory.glob("*.yaml") if f.name not in ("sources.yaml", "facts.yaml"))
    if not files:
        raise CvlabError("NotFound", f"no quiz banks (*.yaml) in {directory}")
    banks: dict[str, Bank] = {}
    seen: dict[str, str] = {}
    for f in files:
        bank = load_bank(f)
        if bank.topic in banks:
            raise CvlabError("BadRequest", f"{f.name}: topic {bank.topic!r} is already defined by "
                             f"{banks[bank.topic].path.name}")
        for name in [q.id for q in bank.questions] + [a for q in bank.questions for a in q.aliases] + [
                c.id for c in bank.cases]:
            if name in seen:
                raise CvlabError("BadRequest", f"{f.name}: question id {name} is already used in {seen[name]}")
            seen[name] = f.name
        banks[bank.topic] = bank
    return banks


@lru_cache(maxsize=1)
def default_banks() -> dict[str, Bank]:
    return load_banks()


@lru_cache(maxsize=1)
def _index() -> dict[str, Question]:
    index = {}
    for bank in default_banks().values():
        for q in bank.questions:
            index[q.id] = q
            for alias in q.aliases:
                index[alias] = q
    return index


def topics() -> list[str]:
    return list(default_banks())


def questions(topic: str | None = None, *, skill: str | None = None, include_run: bool = True,
              scope: str | None = None) -> list[Question]:
    """Questions of one topic (or all), optionally of one skill; `include_run=False` drops run-fact ones."""
    banks = default_banks()
    if topic is not None and topic not in banks:
        raise CvlabError("NotFound", f"unknown quiz topic {topic!r}; choose one of {', '.join(banks)}")
    if skill is not None and skill not in SKILLS:
        raise CvlabError("NotFound", f"unknown skill {skill!r}; choose one of {', '.join(SKILLS)}")
    return [q for b in banks.values() if topic in (None, b.topic) for q in b.questions
            if (skill is None or q.skill == skill) and (include_run or not q.facts)
            and (scope is None or q.scope == scope)]


def get_question(question_id: str) -> Question:
    """A question by id (a merged question's old ids still find it)."""
    try:
        return _index()[question_id]
    except KeyError:
        raise CvlabError("NotFound", f"no quiz question with id {question_id!r} (see quizzes/*.yaml)") from None


def cases() -> dict[str, Case]:
    return {c.id: c for b in default_banks().values() for c in b.cases}


def get_case(case_id: str) -> Case:
    try:
        return cases()[case_id]
    except KeyError:
        raise CvlabError("NotFound", f"no case study with id {case_id!r}") from None


def stats(pool: Iterable[Question] | None = None) -> dict:
    """Counts per skill, per format and per difficulty (what `cvlab quiz --stats` prints)."""
    pool = list(questions() if pool is None else pool)
    count = lambda key, keys: {k: sum(key(q) == k for q in pool) for k in keys}  # noqa: E731
    return {"total": len(pool), "exam_eligible": sum(q.in_exam for q in pool),
            "by_skill": count(lambda q: q.skill, SKILLS), "by_kind": count(lambda q: q.kind, KINDS),
            "by_difficulty": count(lambda q: q.difficulty, ("easy", "medium", "hard")),
            "cases": len(cases()), "in_cases": sum(q.case is not None for q in pool),
            "course_scope": sum(q.scope == "course" for q in pool), "run_facts": sum(bool(q.facts) for q in pool),
            "by_language": count(lambda q: q.language, ("python", "csharp"))}


__all__ = ["BANK_DIR", "KINDS", "KIND_NAMES", "SKILLS", "STUDY_GUIDE", "Bank", "Blank", "Case", "MatchItem", "Option",
           "Question", "Skill", "Statement", "cases", "check_fact", "default_banks", "facts_registry", "get_case",
           "get_question", "load_bank", "load_banks", "questions", "schema", "sources", "static_context", "stats",
           "topics", "field"]
