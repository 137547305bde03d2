"""Write notebooks/*.ipynb from the cell lists below (stored without outputs).

Run `.venv/bin/python notebooks/_build.py` after editing; `tests/test_notebooks.py` executes the result.
Keeping the source here makes review diffs readable and keeps every notebook's style the same.
"""
from __future__ import annotations

import sys
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
NOTEBOOKS: dict[str, list[tuple[str, str]]] = {}


def notebook(name: str):
    def register(fn):
        NOTEBOOKS[name] = fn()
        return fn
    return register


def md(text: str) -> tuple[str, str]:
    return ("md", text.strip("\n"))


def code(text: str) -> tuple[str, str]:
    return ("code", text.strip("\n"))


SETUP = code("""
from cvlab import curriculum as cv
P = cv.profile()            # CVLAB_PROFILE=fast (CI) or learner (default)
ws = cv.workspace()         # $CVLAB_WORKSPACE or ../workspace, shared by every notebook
print(P.name, "profile; workspace:", ws.path)
""")


# --------------------------------------------------------------------------------------------------- 00
@notebook("00-welcome")
def _():
    return [
        md("""
# 00 · Welcome to cvlab

**What you will learn:** how this course works — the local copy of Azure Custom Vision you will use, where your
work is stored, how the quick-check quizzes record your progress — and, honestly, where Custom Vision and the
AI-102 exam stand today.

cvlab re-creates Azure Custom Vision on your laptop: projects, tags, labeling, training on ImageNet-pretrained
backbones, the Performance page, a local endpoint that the official `azure-cognitiveservices-vision-customvision`
SDK calls unchanged, and ONNX / TensorFlow Lite / Docker exports. No Azure subscription, no keys, no network.
"""),
        md("""
## Dates first: what is current, what transfers

| | |
|---|---|
| **AI-102 exam** | retired on **30 June 2026**. Its successor, **AI-103**, covers custom vision only as a small part. |
| **Custom Vision service** | supported until **25 September 2028**; new projects should plan for that. |
| **Microsoft's Custom Vision labs** | marked deprecated. cvlab lets you still do the exercises, offline. |

What transfers regardless: choosing classification vs detection, designing labels, reading precision / recall /
mAP and picking thresholds, training vs prediction resources and keys, and running exported ONNX / TFLite
models — which keep working after the service retires, because they no longer call it. If you are preparing
for AI-103, study its skills outline and treat these notebooks as the custom-vision chapter.
"""),
        md("## 1 · Is this laptop ready?\nEverything is checked offline: packages, CPU, the pretrained weights."),
        code("""
from cvlab import curriculum as cv
checks = cv.check_environment()
print(cv.environment_report(checks))
assert all(c.ok for c in checks), "fix the lines marked NO before going on"
"""),
        md("""
## 2 · Profiles and your workspace
`CVLAB_PROFILE=learner` (the default) sizes each notebook for about 10 minutes on a 2-core laptop;
`CVLAB_PROFILE=fast` shrinks everything so CI can run all notebooks. All your projects, images, iterations and
quiz progress live in one **workspace** folder (an SQLite file plus an image store).
"""),
        SETUP,
        code("""
print("tier:", ws.tier, "| projects:", [p.name for p in ws.get_projects()])
print(P)
"""),
        md("""
The workspace imitates one Custom Vision **training resource**. Its tier (`S0` by default, `F0` for the free
tier) enforces the documented limits — try `ws.set_tier("F0")` later and create a third project.
"""),
        md("""
## 3 · How quick-check quizzes work
Each notebook ends with a few quiz cells. Pick or type an answer and press **Check**: you get the right answer,
why it is right, why the option you picked is wrong, and the Microsoft Learn page it comes from. Each answer is
stored in the workspace, so notebook 08 and the terminal quiz (`cvlab quiz`) bring your mistakes back first.
"""),
        code("""
from cvlab import quiz
print(len(quiz.questions()), "questions in topics:", ", ".join(quiz.topics()))
assert len(quiz.questions()) >= 80
"""),
        code("""cv.quiz("exam-01", "exam-02", "exam-03", "exam-08", ws=ws)"""),
        md("""
Your progress so far (answer a question above, then re-run this cell):
"""),
        code("""
s = quiz.summary(ws)
print(f"answered {s.answered} of {s.total}; right last time: {s.correct_last}; to revisit: {s.missed}")
"""),
        md("""
In a terminal the same bank runs as `cvlab quiz --topic exam --count 5`.

**Next:** 01 · Classification or detection?
"""),
    ]


# --------------------------------------------------------------------------------------------------- 01
@notebook("01-classification-or-detection")
def _():
    return [
        md("""
# 01 · Classification or detection?

**What you will learn:** to read a scenario and pick the project type (classification or object detection), the
classification type (multiclass or multilabel), and the service (Custom Vision, pre-built Azure AI Vision, or
Azure Machine Learning). This is the first AI-102 custom-vision skill, and the most common exam trap.
"""),
        SETUP,
        md("""
## 1 · Two kinds of answer
A **classifier** answers about the whole image (one tag, or several). A **detector** answers *where*: a box
(left, top, width, height as fractions of the image) and a tag for every object. Here are both from cvlab's
synthetic datasets.
"""),
        code("""
import matplotlib.pyplot as plt
from matplotlib.patches import Rectangle
from cvlab import datasets

parts = datasets.generate("parts", 4, seed=cv.SEED, size=P.image_size)
scene = datasets.generate("site", 1, seed=cv.SEED, size=P.image_size)[0]
fig, axes = plt.subplots(1, 5, figsize=(15, 3))
for ax, rec in zip(axes, parts):
    ax.imshow(rec.load()); ax.set_title("tags: " + ", ".join(rec.tags)); ax.axis("off")
ax = axes[-1]; ax.imshow(scene.load()); ax.axis("off"); ax.set_title(f"{len(scene.regions)} boxes")
w, h = scene.size()
for r in scene.regions:
    ax.add_patch(Rectangle((r.left * w, r.top * h), r.width * w, r.height * h, fill=False, color="yellow"))
    ax.text(r.left * w, r.top * h, r.tag, color="yellow", fontsize=7)
plt.show()
assert all(len(r.tags) == 1 for r in parts) and scene.regions  # multiclass tags; a scene has boxes
"""),
        md("""
## 2 · Scenarios
The table is built from cvlab's domain catalogue (the same ids and names Azure's `get_domains()` returns), so a
domain named here really exists.
"""),
        code("""
import pandas as pd
from cvlab.domains import find_domain

scenarios = [
    ("Defective vs ok parts on a line", "Classification", "Multiclass", "General (compact)",
     "one verdict per photo; compact so it can run on the line's PC"),
    ("Which brand is this packaged product?", "Classification", "Multiclass", "Retail",
     "product photos; Retail domain"),
    ("Misplaced products on shelves", "ObjectDetection", "-", "Products on Shelves",
     "need which product is where"),
    ("Helmets and vests in camera feeds", "ObjectDetection", "-", "General (compact)",
     "need a box per item; compact for edge cameras"),
    ("Several findings per X-ray", "Classification", "Multilabel", "General",
     "zero or more findings per image"),
]
rows = []
for scenario, ptype, ctype, domain, why in scenarios:
    d = find_domain(domain, ptype)
    rows.append({"scenario": scenario, "project type": ptype, "classification": ctype,
                 "domain": d.name, "exportable": d.exportable, "why": why})
pd.DataFrame(rows)
"""),
        md("""
## 3 · The project type is fixed by the domain
In cvlab, as in Azure, a project's type follows its domain. Creating a project is one call; notice that the
detection project refuses a domain change to a classification domain.
"""),
        code("""
from cvlab.errors import CvlabError

demo = ws.find_project("demo-01") or ws.create_project(
    "demo-01", domain_id=find_domain("General", "ObjectDetection").id)
print(demo.name, demo.project_type, demo.classification_type)
try:
    ws.update_project(demo.id, domain_id=find_domain("General", "Classification").id)
    raise AssertionError("a detection project must not become a classifier")
except CvlabError as err:
    print(err.code, "-", err.message)
    assert err.code == "BadRequestProjectUnsupportedDomainTypeChange"
ws.delete_project(demo.id)
"""),
        md("""
## 4 · Which service?
| Need | Service |
|---|---|
| Your own labels (defective, brand X, helmet) with little ML work | **Custom Vision** |
| Generic, pre-built understanding: read text (OCR), tags, captions | **Azure AI Vision** (no training) |
| Custom training loops, other losses, multi-modal or non-vision data, hyperparameter search | **Azure Machine Learning** |

**On Azure:** portal → *Create a resource* → *Custom Vision*; then at customvision.ai → *New project* →
*Classification* (Multiclass / Multilabel) or *Object Detection*, and a domain. SDK:
`trainer.create_project(name, domain_id=..., classification_type="Multilabel")`.

**Exam traps**
- "Needs the location / a count of objects" → detection, even if the question talks about "classifying".
- "Azure AI Vision" is the distractor whenever the labels are the customer's own.
- Multiclass = exactly one tag; multilabel = zero or more. Negative images are for classifiers only.
"""),
        md("## Quick check"),
        code("""cv.quiz("choose-01", "choose-02", "choose-03", "choose-04", "choose-06", "choose-07", ws=ws)"""),
    ]


# --------------------------------------------------------------------------------------------------- 08
@notebook("08-exam-review")
def _():
    return [
        md("""
# 08 · Exam review

**What you will do:** read the cram sheet (corrected against Microsoft's documentation), redo the study guide's
quick-check questions, then take a mixed quiz that starts with what you missed before, with a score and a
review. Reminder: AI-102 retired on 2026-06-30; this is the custom-vision part of what carries over to AI-103.
"""),
        SETUP,
        md("""
## 1 · Cram sheet
The figures in the table below come from `cvlab.rules`, the same table the local service enforces.
"""),
        code("""
import pandas as pd
from cvlab import rules

keys = ["projects", "images_per_project", "predictions_per_month", "tags_per_project", "iterations_per_project",
        "min_images_per_tag_classification", "min_images_per_tag_detection", "max_image_bytes_training",
        "max_image_bytes_prediction"]
fmt = lambda v: "unlimited" if v is None else f"{v:,}"
pd.DataFrame([{"limit": rules.LIMITS[k].what, "F0": fmt(rules.limit(k, "F0")),
               "S0": fmt(rules.limit(k, "S0"))} for k in keys])
"""),
        md("""
1. **Custom Vision** trains *your* labels with little code; **Azure AI Vision** is pre-built (OCR, tags);
   **Azure ML** is for custom training loops and multi-modal work.
2. **Classification** = tags for the whole image (multiclass: one; multilabel: zero or more).
   **Object detection** = a box and a tag per object; it needs boxes, not just tags.
3. **Minimum** 5 images per tag (classification), 15 (detection); **50+ recommended**.
4. **Domains** give a pretrained starting point; **compact** domains are the only exportable ones.
5. **Quick** training is cheap; **Advanced** spends a budget in hours (never exceeded, cannot be cancelled).
6. **Precision** when false alarms are costly; **recall** when misses are costly; the probability threshold moves
   between them; F1 > 0.8 is a rule of thumb only.
7. **Publish** an iteration to a **prediction resource** (its ARM id) under a name, then call it with a
   **prediction key**; training keys are for the Training API.
8. **Export:** ONNX (Windows/Linux edge, Windows ML), TensorFlow Lite (Android/iOS; classification *and*
   detection), CoreML (iOS), Docker (ACI, AKS, on-premises, IoT Edge).
9. The **exported container runs without Azure keys**; calls to the Azure endpoint need them.
10. Test the endpoint before exporting; use stored predictions and the smart labeler to improve.

**Where the study guide is wrong or unsupported:** S0 is *not* "unlimited projects, 1M images, 10M predictions"
(documented: 100 projects, 100,000 images per project, unlimited predictions); "1 export per month on the free
tier" is not on the limits page; TensorFlow Lite is not "object detection only"; the exported Docker container
does not need prediction keys; and its SDK snippet passes the key before the endpoint, the 1.x order (notebook
05 runs it).
"""),
        md("## 2 · The study guide's quick-check questions, in our words"),
        code("""cv.quiz("choose-01", "choose-02", "exp-01", ws=ws)"""),
        md("""
## 3 · A mixed quiz
Ten questions from every topic. Missed questions come back first, then ones you have not seen. Questions
computed from your own run (your recall at 0.7, your mAP…) join in once notebooks 03–04 have trained the
projects.
"""),
        code("""
from cvlab import quiz
from cvlab.widgets.quiz import QuizSession

session = QuizSession(ws, count=10, seed=P.scratch_epochs, context=quiz.run_context(ws))
session
"""),
        md("Answer all ten (press **Next question** after each), then run the review:"),
        code("""
from IPython.display import HTML
HTML(session.review_html() if session.results else "<i>Answer the questions above first.</i>")
"""),
        md("## 4 · Your progress by exam skill"),
        code("""
s = quiz.summary(ws)
pd.DataFrame([{"skill": quiz.SKILLS[k], "right last time": r, "answered": n} for k, (r, n) in s.by_skill.items()]
             or [{"skill": "(nothing answered yet)", "right last time": 0, "answered": 0}])
"""),
        md("""
In a terminal: `cvlab quiz --count 20` (all topics) or `cvlab quiz --topic evaluate`. Missed questions come back
first next time.
"""),
    ]


def build(names=None) -> list[Path]:
    written = []
    for name, cells in NOTEBOOKS.items():
        if names and name not in names:
            continue
        nb = nbformat.v4.new_notebook()
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nb.metadata["language_info"] = {"name": "python"}
        nb.cells = [nbformat.v4.new_markdown_cell(src) if kind == "md" else nbformat.v4.new_code_cell(src)
                    for kind, src in cells]
        for i, cell in enumerate(nb.cells):
            cell.id = f"{name[:2]}-{i:02d}"  # stable ids keep diffs small
        nbformat.validate(nb)
        path = HERE / f"{name}.ipynb"
        nbformat.write(nb, path)
        written.append(path)
    return written


if __name__ == "__main__":
    for p in build(sys.argv[1:]):
        print("wrote", p.relative_to(HERE.parent))
