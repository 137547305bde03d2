"""`cvlab quiz`: practice, spaced review (--due), exam mode (--exam), progress, stats, in a terminal.

A thin face over cvlab.quiz: every screen is a seeded `Presentation`, every typed line goes through
`cvlab.quiz.parse`, every answer is recorded in the workspace's quiz store. One typed line answers one question;
what to type is printed under each question, and an unreadable line is explained and asked again (never counted).
"""
from __future__ import annotations

import sys
import textwrap
from datetime import timezone

from cvlab.errors import CvlabError

from . import bank, exam, review
from .grading import LETTERS, Presentation, expected_form, grade, present
from .store import open_store

WIDTH = 100


def configure(parser) -> None:
    """Arguments of `cvlab quiz`."""
    parser.add_argument("--topic", help="one topic (default: all); see --list")
    parser.add_argument("--skill", help=f"one AI-102 skill line: {', '.join(bank.SKILLS)}")
    parser.add_argument("--question", action="append", metavar="ID", help="ask these questions (repeatable)")
    parser.add_argument("--count", type=int, default=None, help="questions this session (default 10; --due: all due)")
    parser.add_argument("--seed", type=int, default=None, help="order of new questions (default: from the date)")
    parser.add_argument("--workspace", default=None, help="workspace folder (default $CVLAB_WORKSPACE or ./workspace)")
    parser.add_argument("--learner", default=None, help="learner id for this workspace (kept; a workshop seat name)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--list", action="store_true", help="list topics with question counts")
    mode.add_argument("--stats", action="store_true", help="count the bank per skill and per format")
    mode.add_argument("--due", action="store_true", help="spaced review: what is due today, missed first")
    mode.add_argument("--exam", action="store_true", help="a timed mixed form with a scaled score report")
    mode.add_argument("--progress", action="store_true", help="progress per skill: a table and a bar chart (PNG)")
    mode.add_argument("--attempts", action="store_true", help="exam attempts and a plot of the score over them")
    mode.add_argument("--show", metavar="QUESTION", help="print a question as a learner saw it (--learner, --attempt)")
    mode.add_argument("--reset", action="store_true", help="start over (earlier answers stop counting)")
    parser.add_argument("--attempt", default="0", help="with --show: the attempt stored with the learner's answer")
    parser.add_argument("--size", type=int, default=exam.DEFAULT_SIZE, help="exam: questions in the form (default 40)")
    parser.add_argument("--minutes", type=float, default=None, help="exam: time limit (default 2 per question)")


# ----------------------------------------------------------------------------------------------- rendering

def _wrap(text: str, indent: str = "") -> list[str]:
    out = []
    for para in text.split("\n"):
        out += textwrap.wrap(para, WIDTH, initial_indent=indent, subsequent_indent=indent) or [""]
    return out


def render(p: Presentation) -> str:
    """The question as plain text, in this learner's order, with what to type."""
    q = p.question
    lines = [f"[{q.id}] {bank.SKILLS[q.skill].line} ({q.difficulty}, {bank.KIND_NAMES[q.kind]})", *_wrap(q.prompt)]
    if q.kind in ("single", "multi"):
        lines += [f"  {LETTERS[i]}) {o.text}" for i, o in enumerate(p.options())]
    elif q.kind == "yesno":
        lines += [f"  {n}. {s.text}" for n, s in enumerate(p.statements(), 1)]
    elif q.kind == "order":
        lines.append("Actions:")
        lines += [f"  {LETTERS[i]}) {o.text}" for i, o in enumerate(p.options())]
    elif q.kind == "match":
        lines.append("Items:")
        lines += [f"  {n}. {it.text}" for n, it in enumerate(p.items(), 1)]
        lines.append("Targets (each may be used once, more than once, or not at all):")
        lines += [f"  {LETTERS[i]}) {o.text}" for i, o in enumerate(p.options())]
    elif q.kind == "code":
        numbered = iter(range(1, len(q.blanks) + 1))
        code = bank.PLACEHOLDER.sub(lambda _m: f"[{next(numbered)}]", q.template)
        lines += ["", *("    " + line for line in code.split("\n")), ""]
        for k, _b in enumerate(q.blanks):
            lines.append(f"  [{k + 1}]: " + "   ".join(f"{LETTERS[i]}) {o.text}"
                                                     for i, o in enumerate(p.blank_options(k))))
    lines.append(f"Answer: {expected_form(p)}.")
    return "\n".join(lines)


def render_case(case: bank.Case) -> str:
    return "\n".join([f"=== Case study {case.id}: {case.title} ===", *_wrap(case.scenario), "=" * 40])


# ----------------------------------------------------------------------------------------------- sessions

class _Terminal:
    def __init__(self, stdin, out):
        self.stdin, self.out = stdin, out

    def say(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def line(self) -> str | None:
        line = self.stdin.readline()
        return None if line == "" else line.rstrip("\n")


def _ask(term: _Terminal, p: Presentation):
    """Read lines until one is a readable answer; None at end of input, 'skip' when skipped."""
    while True:
        line = term.line()
        if line is None:
            return None
        if line.strip().lower() in ("skip", ":skip", "/skip"):
            return "skip"
        try:
            return grade(p.question, line, presentation=p)
        except CvlabError as exc:
            term.say(f"  {exc.message} - try again (or 'skip'):")


def _practice(term, store, pool, mode: str) -> tuple[int, float]:
    asked, score, last_case = 0, 0.0, None
    for q in pool:
        if q.case and q.case != last_case:
            term.say()
            term.say(render_case(bank.get_case(q.case)))
        last_case = q.case
        p = present(q, store.learner, store.next_attempt(q.id))
        term.say()
        term.say(render(p))
        result = _ask(term, p)
        if result is None:
            term.say("\n(input ended)")
            break
        if result == "skip":
            continue
        store.record_answer(result, p, mode=mode)
        asked += 1
        score += result.score
        term.say(result.feedback)
    return asked, score


def _finish_practice(term, ws, asked: int, score: float) -> None:
    term.say()
    term.say(f"Score this session: {score:g}/{asked}" + (f" ({score / asked:.0%})" if asked else ""))
    s = review.summary(ws)
    if s.missed:
        term.say(f"Still to revisit ({len(s.missed)}): {', '.join(s.missed[:12])}"
                 f"{' ...' if len(s.missed) > 12 else ''} - `cvlab quiz --due` brings them back first.")


def _exam(term, ws, store, args, clock) -> int:
    session = exam.ExamSession(store, size=args.size, minutes=args.minutes, clock=clock)
    n = len(session.slots)
    term.say(f"Exam attempt {session.attempt}: {n} questions, {session.minutes:g} minutes. No feedback until you "
             "finish. Answer a question to move on; commands: /flag (mark for review), /back, /next, /goto N, "
             "/review, /finish, /help.")
    session.start()
    shown_case = None
    while True:
        try:
            if session.report is not None:
                break
            slot = session.current
            left = session.time_left()
            mins, secs = divmod(int(left.total_seconds()), 60)
            if slot.question.case and slot.question.case != shown_case:
                term.say(render_case(bank.get_case(slot.question.case)))
                shown_case = slot.question.case
            term.say()
            term.say(f"-- Question {session.index + 1} of {n} | {mins}:{secs:02d} left | answered "
                     f"{n - len(session.unanswered())} | flagged {len(session.flagged())}"
                     f"{' | THIS ONE IS FLAGGED' if slot.flagged else ''} --")
            term.say(render(slot.presentation))
            if slot.answered:
                term.say("  (you answered this one; type a new answer to change it, or /next)")
            line = term.line()
            if line is None:
                term.say("\n(input ended: submitting the exam)")
                session.finish()
                break
            cmd = line.strip().lower()
            if cmd.startswith("/"):
                if not _exam_command(term, session, cmd):
                    break
                continue
            try:
                session.answer(line)
            except CvlabError as exc:
                if session.report is not None:
                    term.say(f"  {exc.message}")
                    break
                term.say(f"  {exc.message} - try again (or /next to come back later)")
                continue
            if session.index + 1 < n:
                session.next()
            elif not _review_screen(term, session):
                break
        except CvlabError as exc:  # time ran out during navigation
            term.say(f"  {exc.message}")
            if session.report is not None:
                break
    report = session.finish()
    term.say()
    term.say(report.text())
    folder = store.folder
    report.figure().savefig(folder / f"exam-{report.attempt}.png", dpi=100)
    exam.attempts_figure(store).savefig(folder / "exam-attempts.png", dpi=100)
    term.say(f"\nSaved: {folder / f'exam-{report.attempt}.png'} (bar per skill), {folder / 'exam-attempts.png'} "
             "(score over attempts).")
    return 0


def _exam_command(term, session, cmd: str) -> bool:
    """Handle one /command; False when the exam was submitted."""
    if cmd in ("/flag", "/f"):
        term.say("  flagged for review" if session.flag() else "  flag removed")
    elif cmd in ("/next", "/n"):
        if session.index + 1 < len(session.slots):
            session.next()
        else:
            return _review_screen(term, session)
    elif cmd in ("/back", "/prev", "/b"):
        session.prev()
    elif cmd.startswith("/goto"):
        try:
            session.goto(int(cmd.split()[1]) - 1)
        except (IndexError, ValueError):
            term.say(f"  type /goto and a question number 1-{len(session.slots)}")
        except CvlabError as exc:
            term.say(f"  {exc.message}")
    elif cmd == "/review":
        return _review_screen(term, session)
    elif cmd == "/finish":
        session.finish()
        return False
    else:
        term.say("  commands: /flag /back /next /goto N /review /finish; anything else is an answer")
    return True


def _review_screen(term, session) -> bool:
    """The end-of-form screen: what is unanswered or flagged; /goto N returns, /finish submits."""
    while True:
        left = int(session.time_left().total_seconds())
        marks = []
        for i, s in enumerate(session.slots, 1):
            marks.append(f"{i}{'?' if not s.answered else ''}{'*' if s.flagged else ''}")
        term.say()
        term.say(f"-- Review | {left // 60}:{left % 60:02d} left | ? = unanswered, * = flagged --")
        term.say("  " + " ".join(marks))
        term.say("Type /goto N to return to a question, /finish to submit.")
        line = term.line()
        if line is None or line.strip().lower() == "/finish":
            session.finish()
            return False
        cmd = line.strip().lower()
        if cmd.startswith("/goto"):
            try:
                session.goto(int(cmd.split()[1]) - 1)
                return True
            except (IndexError, ValueError):
                term.say(f"  type /goto and a question number 1-{len(session.slots)}")
            except CvlabError as exc:
                term.say(f"  {exc.message}")
                if session.report is not None:
                    return False
        else:
            term.say("  only /goto N or /finish here")


def _stats(term) -> int:
    s = bank.stats()
    term.say(f"Questions: {s['total']} ({s['exam_eligible']} eligible for exam forms; {s['course_scope']} course "
             f"housekeeping; {s['run_facts']} read from your own run; {s['in_cases']} in {s['cases']} case studies)")
    term.say("\nPer skill (AI-102 study guide line):")
    for key, n in s["by_skill"].items():
        term.say(f"  {n:4d}  {key:11s} {bank.SKILLS[key].line}")
    term.say("\nPer format:")
    for kind, n in s["by_kind"].items():
        term.say(f"  {n:4d}  {kind:8s} {bank.KIND_NAMES[kind]}")
    term.say(f"  {s['cases']:4d}  case     case studies ({s['in_cases']} questions, counted in their formats above)")
    term.say("\nPer difficulty: " + ", ".join(f"{k} {v}" for k, v in s["by_difficulty"].items()))
    term.say("Code questions: " + ", ".join(f"{k} {v}" for k, v in s["by_language"].items()))
    return 0


def run(args, stdin=None, out=None, clock=None) -> int:
    """`cvlab quiz`; `clock` (a callable returning an aware datetime) exists for tests."""
    term = _Terminal(stdin or sys.stdin, out or sys.stdout)
    if args.list:
        for topic, b in bank.default_banks().items():
            term.say(f"{topic:10s} {len(b.questions):3d}  {b.title}")
        return 0
    if args.stats:
        return _stats(term)
    if args.show:
        q = bank.get_question(args.show)
        store_learner = args.learner or ""
        if q.case:
            term.say(render_case(bank.get_case(q.case)))
        term.say(render(present(q, store_learner, args.attempt)))
        return 0
    if args.count is not None and args.count < 1:
        raise CvlabError("BadRequest", "--count must be at least 1")
    from cvlab import open_workspace

    ws = open_workspace(args.workspace)
    store = open_store(ws, clock)
    if args.learner:
        store.set_learner(args.learner)
    store.records()  # reading reports any corrupt line, which is then skipped
    for problem in store.problems:
        term.say(f"Note: {problem}")
    if args.reset:
        store.reset()
        term.say("Quiz progress reset: earlier answers and exams no longer count (they stay in the log).")
        return 0
    if args.progress:
        table = review.progress(store)
        term.say(table.drop(columns=["skill"]).to_string())
        path = store.folder / "progress.png"
        review.progress_figure(store).savefig(path, dpi=100)
        term.say(f"\nSaved the bar chart: {path}")
        return 0
    if args.attempts:
        recs = exam.attempts(store)
        if not recs:
            term.say("No exam attempts yet: `cvlab quiz --exam`.")
        for r in recs:
            term.say(f"  attempt {r['attempt']:2d}  {r['at'][:16]}  score {r['scaled']:4d}  "
                     f"{'pass' if r['passed'] else 'fail'}  {r['answered']}/{len(r['form'])} answered")
        path = store.folder / "exam-attempts.png"
        store.folder.mkdir(parents=True, exist_ok=True)
        exam.attempts_figure(store).savefig(path, dpi=100)
        term.say(f"Saved the plot of the score over attempts: {path}")
        return 0
    if args.exam:
        return _exam(term, ws, store, args, clock)
    if args.question:
        pool = [bank.get_question(i) for i in args.question]
        run_only = [q.id for q in pool if q.facts]
        if run_only:
            raise CvlabError("BadRequest", f"{', '.join(run_only)} read numbers from your own run; answer them in the "
                             "notebook that shows those numbers")
    else:
        pool = [q for q in bank.questions(args.topic, skill=args.skill) if not q.facts]
    now = store.now()
    if args.due:
        chosen = review.due(store, now, pool)
        if not chosen:
            term.say("Nothing is due today. New questions: `cvlab quiz`; progress: `cvlab quiz --progress`.")
            return 0
        chosen = chosen[:args.count] if args.count else chosen
        term.say(f"{len(chosen)} question(s) due today, missed ones first.")
        asked, score = _practice(term, store, chosen, "review")
    else:
        seed = args.seed if args.seed is not None else int(now.astimezone(timezone.utc).strftime("%Y%m%d"))
        chosen = pool if args.question else review.plan(pool, store, args.count or 10, seed, now)
        asked, score = _practice(term, store, chosen, "practice")
    _finish_practice(term, store, asked, score)
    return 0


__all__ = ["configure", "render", "render_case", "run"]
