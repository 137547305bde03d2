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
DRAFTS = set()  # not written until they execute cleanly against the library


ALL: dict[str, list[tuple[str, str]]] = {}  # drafts included, for trying them out (--drafts DIR)


def notebook(name: str):
    def register(fn):
        ALL[name] = fn()
        if name not in DRAFTS:
            NOTEBOOKS[name] = ALL[name]
        return fn
    return register


def md(text: str) -> tuple[str, str]:
    return ("md", text.strip("\n"))


def code(text: str) -> tuple[str, str]:
    return ("code", text.strip("\n"))


def exercise(text: str) -> tuple[str, str]:
    """A code cell the learner writes: its leading comments are the instructions; `cvlab workshop notebooks`
    blanks the rest in the learner version and keeps it in the instructor version."""
    return ("exercise", text.strip("\n"))


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
        exercise("""
# Exercise: how many projects may one training resource hold on the free tier (F0), and on S0? Read both from
# cvlab's limits table (`from cvlab import rules`, then rules.limit("projects", tier)) into f0_projects and
# s0_projects.
from cvlab import rules
f0_projects, s0_projects = rules.limit("projects", "F0"), rules.limit("projects", "S0")
print("F0:", f0_projects, "projects | S0:", s0_projects, "projects")
"""),
        code("""
assert "f0_projects" in globals() and "s0_projects" in globals(), "fill in the exercise cell above, then run it"
assert (f0_projects, s0_projects) == (2, 100), "Microsoft's limits page: F0 2 projects, S0 100"
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
        exercise("""
# Exercise: count the questions of every topic into a dict per_topic ({topic: number of questions}) with
# quiz.topics() and quiz.questions(topic); which topic has the most?
per_topic = {topic: len(quiz.questions(topic)) for topic in quiz.topics()}
print(per_topic, "| most:", max(per_topic, key=per_topic.get))
"""),
        code("""
assert "per_topic" in globals(), "fill in the exercise cell above, then run it"
assert set(per_topic) == set(quiz.topics()) and sum(per_topic.values()) == len(quiz.questions())
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
        exercise("""
# Exercise: a new scenario: "count the cars in every drone photo of a car park; the model runs on the drone,
# offline". Set drone_type to the project type it needs ("Classification" or "ObjectDetection") and
# drone_domain to a fitting domain found by name: find_domain(name, drone_type).
drone_type = "ObjectDetection"                                 # a count needs one box per car
drone_domain = find_domain("General (compact)", drone_type)    # on the drone = exported: a compact domain
print(drone_type, "|", drone_domain.name, "| exportable:", drone_domain.exportable)
"""),
        code("""
assert "drone_domain" in globals(), "fill in the exercise cell above, then run it"
assert drone_domain.type == "ObjectDetection", "counting objects needs their locations: object detection"
assert drone_domain.exportable, "running on the drone means exporting the model: pick a compact domain"
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
        exercise("""
# Exercise: the X-ray scenario (several findings per image) needs a Multilabel classifier. Create a project
# named "xray-01" on the General classification domain (find_domain), with classification_type "Multilabel",
# keep it in xray and print its project and classification types.
xray = ws.find_project("xray-01") or ws.create_project(
    "xray-01", domain_id=find_domain("General", "Classification").id, classification_type="Multilabel")
print(xray.name, xray.project_type, xray.classification_type)
"""),
        code("""
assert "xray" in globals(), "fill in the exercise cell above, then run it"
assert (xray.project_type, xray.classification_type) == ("Classification", "Multilabel"), \\
    "pass classification_type='Multilabel' to create_project"
ws.delete_project(xray.id)   # tidy up: the course does not use it again
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


# --------------------------------------------------------------------------------------------------- 02
@notebook("02-projects-domains-labeling")
def _():
    return [
        md("""
# 02 · Projects, domains and labeling

**What you will learn:** create a project and choose its domain (and why *compact* matters), create tags
including the special **Negative** tag, add and label images with the tagger and the box labeler, meet the
service's rules as real errors, and convert boxes between Custom Vision, COCO, Pascal VOC and YOLO.
"""),
        SETUP,
        md("""
## 1 · Domains
A domain chooses the pretrained starting point. Only **compact** domains can be exported to run on a device,
so decide early if the model must ever leave the cloud. (In cvlab every domain starts from ImageNet-pretrained
EfficientNet-Lite weights; compact domains use the smaller backbone.)
"""),
        code("""
import pandas as pd
from cvlab.domains import get_domains, find_domain

pd.DataFrame([{"type": d.type, "name": d.name, "exportable (compact)": d.exportable, "id": d.id}
              for d in get_domains()])
"""),
        md("""
## 2 · A project, its tags, and the Negative tag
**On Azure:** customvision.ai → *New project* → type + domain; SDK `trainer.create_project(name,
domain_id=...)`, `trainer.create_tag(project.id, "cracked")`, `create_tag(..., type="Negative")`.
"""),
        code("""
from cvlab.errors import CvlabError

old = ws.find_project("labeling-demo")
if old:
    ws.delete_project(old.id)
demo = ws.create_project("labeling-demo", domain_id=find_domain("General (compact)", "Classification").id)
ok, cracked = ws.create_tag(demo.id, "ok"), ws.create_tag(demo.id, "cracked")
negative = ws.create_tag(demo.id, "Negative", type="Negative")
print(demo.project_type, demo.classification_type, [(t.name, t.type) for t in ws.get_tags(demo.id)])
"""),
        exercise("""
# Exercise: a shelf camera must flag every problem on a product photo (zero, one or several) and run in the
# shop. Create a Multilabel project "shelf-flags" on the General (compact) classification domain found by name,
# give it the tags "dented" and "label-missing", and keep it in shelf.
shelf = ws.find_project("shelf-flags") or ws.create_project(
    "shelf-flags", domain_id=find_domain("General (compact)", "Classification").id,
    classification_type="Multilabel")
for name in ("dented", "label-missing"):
    if name not in {t.name for t in ws.get_tags(shelf.id)}:
        ws.create_tag(shelf.id, name)
print(shelf.classification_type, find_domain("General (compact)", "Classification").exportable,
      [t.name for t in ws.get_tags(shelf.id)])
"""),
        code("""
assert "shelf" in globals(), "fill in the exercise cell above, then run it"
shelf = ws.get_project(shelf.id)
assert shelf.classification_type == "Multilabel", "pass classification_type='Multilabel'"
assert next(d for d in get_domains() if d.id == shelf.domain_id).exportable, "use a compact (exportable) domain"
assert sorted(t.name for t in ws.get_tags(shelf.id)) == ["dented", "label-missing"]
ws.delete_project(shelf.id)   # tidy up: the course does not use it again
"""),
        md("Add a few images with their tags (cvlab accepts files, folders or bytes):"),
        code("""
import io
from cvlab import datasets

def jpeg(rec):
    buf = io.BytesIO(); rec.load().save(buf, "JPEG"); return buf.getvalue()

records = datasets.generate("parts", 12, seed=cv.SEED, size=P.image_size)
for tag in ("ok", "cracked", "Negative"):
    ws.add_images(demo.id, [jpeg(r) for r in records if r.tags == [tag]], tags=[tag])
print({t.name: t.image_count for t in ws.get_tags(demo.id)})
"""),
        md("""
### Rules you will meet as errors
A Negative image means "none of my tags", so it cannot also carry a regular tag; and a classifier needs at
least **5** labelled images per tag before it will train (detectors: **15**; **50+** is recommended).
"""),
        code("""
neg_image = ws.get_images(demo.id, tag_ids=[negative.id])[0]
try:
    ws.create_image_tags(demo.id, [(neg_image.id, ok.id)])
    raise AssertionError("Negative + regular must be refused")
except CvlabError as err:
    print(err)
    assert err.code == "BadRequestNegativeAndRegularTagOnSameImage"

from cvlab.training import train_project
try:
    train_project(ws, demo.id, show_progress=False)
    raise AssertionError("3 images per tag must not train")
except CvlabError as err:
    print(err)
    assert "TrainingValidationFailed" in err.code
"""),
        md("""
## 3 · Labeling with the widgets
The **tagger** shows untagged images one by one (keys 1–9 pick tags); the **box labeler** lets you drag boxes
for a detection project. Try them on the demo project — add a few untagged images first.
"""),
        code("""
ws.add_images(demo.id, [jpeg(r) for r in datasets.generate("parts", 4, seed=99, size=P.image_size)])
from cvlab.widgets import tagger
tagger(demo, ws=ws)
"""),
        md("""
## 4 · The course projects
The next notebooks use two projects created here once (re-running is safe): **parts-quality**, a multiclass
classifier (ok / cracked / rusted + Negative), and **site-safety**, a detector (helmet / vest / person). Both
use compact domains so notebook 06 can export them. A few images of each are marked *held out*: training
never sees them, so notebook 04 can compare Azure-style self-test numbers with truly new images.
"""),
        code("""
parts = cv.course_project(ws, "parts")
site = cv.course_project(ws, "site")
for p in (parts, site):
    print(f"{p.name:14s} {p.project_type:15s}", {t.name: t.image_count for t in ws.get_tags(p.id)})
assert all(t.image_count >= 5 for t in ws.get_tags(parts.id))
"""),
        code("""
from cvlab.widgets import box_labeler
box_labeler(site, ws=ws)
"""),
        md("""
## 5 · Box coordinates: four conventions
Custom Vision stores a region as **left, top, width, height**, each a fraction (0..1) of the image size. COCO
uses pixels from the top-left corner (x, y, w, h); Pascal VOC pixel corners (xmin, ymin, xmax, ymax); YOLO
fractions measured from the **centre** (cx, cy, w, h). Mixing them up is a classic bug.
"""),
        code("""
from cvlab.datasets import coords

image = ws.get_images(site.id, take=1)[0]
r = image.regions[0]
box = (r.left, r.top, r.width, r.height)
W, H = image.width, image.height
table = pd.DataFrame({
    "Custom Vision (fractions)": box,
    "COCO x,y,w,h (px)": coords.ltwh_to_coco(box, W, H),
    "VOC xmin,ymin,xmax,ymax (px)": coords.ltwh_to_voc(box, W, H),
    "YOLO cx,cy,w,h (fractions)": coords.ltwh_to_yolo(box),
}).T.round(4)
assert all(abs(a - b) < 1e-9 for a, b in zip(coords.coco_to_ltwh(coords.ltwh_to_coco(box, W, H), W, H), box))
print(r.tag_name, f"on a {W}x{H} image"); table
"""),
        exercise("""
# Exercise: another tool gave you this box as YOLO (cx, cy, w, h) and as Pascal VOC pixels. Convert both back
# to Custom Vision's (left, top, width, height) fractions with the coords module, into from_yolo and from_voc.
yolo, voc = coords.ltwh_to_yolo(box), coords.ltwh_to_voc(box, W, H)
from_yolo = coords.yolo_to_ltwh(yolo)
from_voc = coords.voc_to_ltwh(voc, W, H)
print([round(v, 4) for v in from_yolo], [round(v, 4) for v in from_voc])
"""),
        code("""
assert "from_yolo" in globals() and "from_voc" in globals(), "fill in the exercise cell above, then run it"
for got in (from_yolo, from_voc):
    assert all(abs(a - b) < 1e-9 for a, b in zip(got, box)), f"{got} is not the region {box}"
"""),
        md("""
**On Azure:** labels uploaded with `create_images_from_files` carry `Region(tag_id, left, top, width, height)`
in fractions; a COCO or YOLO export from another tool must be converted first (cvlab's importer does it:
`cvlab data import`).

**Exam traps**
- Detection needs boxes; tags alone do not train a detector. Negative is for classifiers only.
- The minimum is 5 (classification) / 15 (detection) per tag; "50" is the recommendation.
- Only compact domains export; switching domain means retraining before export.
"""),
        md("## Quick check"),
        code("""cv.quiz("label-01", "label-03", "label-05", "label-07", "label-08", "label-15", ws=ws)"""),
    ]


# --------------------------------------------------------------------------------------------------- 03
@notebook("03-training")
def _():
    return [
        md("""
# 03 · Training

**What you will learn:** what Quick and Advanced training do and what the budget means, what an iteration is,
which training requests the service refuses, and — with a learning curve — why a pretrained domain needs far
fewer labelled images than a network trained from scratch.
"""),
        SETUP,
        code("""
import os
from cvlab.errors import CvlabError
from cvlab.training import train_project

# In cvlab one budget hour of Advanced training lasts CVLAB_SECONDS_PER_BUDGET_HOUR seconds of lab time.
os.environ.setdefault("CVLAB_SECONDS_PER_BUDGET_HOUR", str(P.budget_seconds))
parts = cv.course_project(ws, "parts")      # made in notebook 02; created here if you skipped it
site = cv.course_project(ws, "site")
print({t.name: t.image_count for t in ws.get_tags(parts.id)})
"""),
        md("""
## 1 · Quick training
**Quick** training (the API's `Regular`) keeps the pretrained backbone frozen and fits only a small head on its
features: seconds, cheap, and often good enough. Each training run creates an **iteration** — a model of the
project with its own performance figures.
"""),
        code("""
quick = cv.trained_iteration(ws, parts)     # trains once (Quick, seeded), then reuses the iteration
print(quick.name, quick.status, quick.training_type, f"{quick.training_time_in_minutes} min")
assert quick.status == "Completed" and quick.training_type == "Regular"
"""),
        md("""
Training again with nothing changed is refused (`BadRequestTrainingNotNeeded`); `force_train=True` overrides.
"""),
        code("""
try:
    train_project(ws, parts.id, show_progress=False)
except CvlabError as err:
    print(err.code, "-", err.message)
    assert err.code == "BadRequestTrainingNotNeeded"
"""),
        md("""
## 2 · Advanced training and the budget
**Advanced** training fine-tunes the whole network with augmentation, for as long as the budget allows
(`reserved_budget_in_hours`). You are never charged beyond the budget, and a running training cannot be
cancelled on Azure. A budget of 0 is refused:
"""),
        code("""
try:
    train_project(ws, parts.id, training_type="Advanced", reserved_budget_in_hours=0, show_progress=False)
except CvlabError as err:
    print(err.code)
    assert err.code == "BadRequestReservedBudgetInHoursNotEnoughForAdvancedTraining"
"""),
        code("""
advanced = next((it for it in ws.get_iterations(parts.id) if it.training_type == "Advanced"
                 and it.status == "Completed"), None)
if advanced is None:
    advanced = train_project(ws, parts.id, training_type="Advanced", reserved_budget_in_hours=1,
                             force_train=True, seed=cv.SEED, show_progress=False)
print(advanced.name, advanced.status, advanced.training_type, advanced.reserved_budget_in_hours, "budget hour(s)")
assert advanced.status == "Completed"
"""),
        md("Every iteration keeps its own numbers (notebook 04 explains them):"),
        code("""
import pandas as pd
from cvlab.metrics import json_number          # a metric can be undefined (e.g. no predictions): None
from cvlab.performance import get_iteration_performance

rows = []
for it in ws.get_iterations(parts.id):
    perf = get_iteration_performance(ws, parts.id, it.id)
    rows.append({"iteration": it.name, "type": it.training_type, "precision": json_number(perf.precision),
                 "recall": json_number(perf.recall), "AP": json_number(perf.average_precision)})
pd.DataFrame(rows).set_index("iteration").round(3)
"""),
        exercise("""
# Exercise: newer is not automatically better. Pick the parts iteration with the highest AP into best (use
# ws.get_iterations and get_iteration_performance; an undefined AP counts as 0) and print its name and type.
def ap(it):
    return json_number(get_iteration_performance(ws, parts.id, it.id).average_precision) or 0.0
best = max(ws.get_iterations(parts.id), key=ap)
print(best.name, best.training_type, round(ap(best), 3))
"""),
        code("""
assert "best" in globals(), "fill in the exercise cell above, then run it"
assert json_number(get_iteration_performance(ws, parts.id, best.id).average_precision) == \\
    max(r["AP"] or 0.0 for r in rows), "best must be the iteration with the highest AP in the table above"
"""),
        md("""
## 3 · Object detection trains the same way
The detector (helmet / vest / person) uses a pretrained backbone too; Quick training fits its detection head.
(The fast CI profile trains it with a short Advanced run instead, to stay within CI's time; see
`cv.trained_iteration`.)
"""),
        code("""
detector = cv.trained_iteration(ws, site)
print(detector.name, detector.status, detector.training_type, "for", site.name)
assert detector.status == "Completed"
"""),
        md("""
## 4 · Why a pretrained domain needs fewer images
Same images, same test set: frozen **pretrained** EfficientNet-Lite0 features with a linear head (what Quick
training does) against a small CNN that starts from **random weights**. With a handful of images per tag the
pretrained model is already useful; the network trained from scratch has not learned to see yet.
"""),
        code("""
import matplotlib.pyplot as plt

curve = cv.learning_curve()
ax = curve.plot(x="images_per_tag", y=["pretrained_f1", "scratch_f1"], marker="o", figsize=(6, 3.5))
ax.set_ylabel("macro-F1 on unseen images"); ax.set_ylim(0, 1); ax.grid(alpha=0.3)
plt.show()
curve
"""),
        code("""
assert (curve.pretrained_f1 > curve.scratch_f1).all(), "pretrained features should win on small data"
"""),
        md("""
**On Azure:** the **Train** button → *Quick training* or *Advanced training* (set the budget, optionally an
e-mail when done). SDK:
```python
iteration = trainer.train_project(project.id)                     # Quick
iteration = trainer.train_project(project.id, training_type="Advanced", reserved_budget_in_hours=1)
while iteration.status not in ("Completed", "Failed"):            # the quickstart only checks "Completed"
    time.sleep(10); iteration = trainer.get_iteration(project.id, iteration.id)
```
A project keeps at most 20 iterations; delete old ones to train more.

**Exam traps**
- Advanced needs a budget; Quick is the default (`Regular`).
- More (varied) data beats more compute when the model is weak.
- Performance numbers come from your training images (cross-validation), not from a test set you upload.
"""),
        md("## Quick check"),
        code("""cv.quiz("train-01", "train-02", "train-04", "train-05", "train-07", "train-10", ws=ws)"""),
    ]


# --------------------------------------------------------------------------------------------------- 04
@notebook("04-evaluating")
def _():
    return [
        md("""
# 04 · Evaluating

**What you will learn:** what precision, recall, F1, AP and mAP measure, how the **probability threshold** and
(for detectors) the **overlap threshold** change them, which one to favour when errors have different costs,
and why Azure's self-test numbers should be checked on held-out images.
"""),
        SETUP,
        code("""
import pandas as pd
from cvlab import metrics
from cvlab.performance import get_iteration_performance, compare_splits, load_evaluation_dict

parts, site = cv.course_project(ws, "parts"), cv.course_project(ws, "site")
# the Quick iteration: its numbers come from k-fold cross-validation over every training image
parts_it = next((it for it in ws.get_iterations(parts.id) if it.training_type == "Regular"
                 and it.status == "Completed"), None) or cv.trained_iteration(ws, parts)
site_it = cv.trained_iteration(ws, site)
perf = get_iteration_performance(ws, parts.id, parts_it.id, threshold=0.5)
perf
"""),
        md("""
## 1 · The definitions, by hand
- **Precision** = TP / (TP + FP): of what the model called *rusted*, how much was rusted.
- **Recall** = TP / (TP + FN): of the rusted parts, how many it found.
- **F1** = the harmonic mean of the two; **AP** = the area under a tag's precision–recall curve (all
  thresholds at once); **mAP** = the mean AP over tags.

The table's counts reproduce its percentages:
"""),
        code("""
for t in perf.per_tag_performance:
    by_hand = metrics.prf_from_counts(t.true_positives, t.false_positives, t.false_negatives)
    print(f"{t.name:9s} TP={t.true_positives:2d} FP={t.false_positives:2d} FN={t.false_negatives:2d}  "
          f"precision={metrics.json_number(by_hand.precision)}  recall={metrics.json_number(by_hand.recall)}")
    assert metrics.json_number(by_hand.recall) == metrics.json_number(t.recall)
"""),
        md("""
## 2 · The probability threshold
A prediction counts as positive only at or above the threshold (Azure's default: 50%). Raise it and the
model says "rusted" less often: fewer false alarms (precision up), more misses (recall down).
"""),
        code("""
rows = []
for thr in (0.1, 0.3, 0.5, 0.7, 0.9):
    p = get_iteration_performance(ws, parts.id, parts_it.id, threshold=thr)
    rows.append({"threshold": thr, "precision": metrics.json_number(p.precision),
                 "recall": metrics.json_number(p.recall), "AP": metrics.json_number(p.average_precision)})
sweep = pd.DataFrame(rows).set_index("threshold")
assert sweep.recall.is_monotonic_decreasing          # recall can only fall as the threshold rises
assert sweep.AP.nunique() == 1                       # AP summarises every threshold: it does not move
sweep.round(3)
"""),
        exercise("""
# Exercise: a false alarm stops the line, so you raise the threshold to 0.7. Get the iteration's performance
# at 0.7 and put its overall precision into precision_70 and recall into recall_70 (metrics.json_number).
perf_70 = get_iteration_performance(ws, parts.id, parts_it.id, threshold=0.7)
precision_70, recall_70 = metrics.json_number(perf_70.precision), metrics.json_number(perf_70.recall)
print("at 0.7: precision", precision_70, "recall", recall_70)
"""),
        code("""
assert "precision_70" in globals() and "recall_70" in globals(), "fill in the exercise cell above, then run it"
at_70 = get_iteration_performance(ws, parts.id, parts_it.id, threshold=0.7)
assert (precision_70, recall_70) == (metrics.json_number(at_70.precision), metrics.json_number(at_70.recall)), \\
    "use get_iteration_performance(..., threshold=0.7)"
assert recall_70 <= sweep.recall[0.5]          # a higher threshold never finds more
"""),
        code("""
from cvlab import views
evaluation = load_evaluation_dict(ws, parts.id, parts_it.id)
views.threshold_sweep(evaluation, threshold=0.5)
"""),
        md("Drag the sliders: the table and curves follow, as on the portal's Performance tab."),
        code("""
from cvlab.widgets import ThresholdExplorer
ThresholdExplorer(evaluation)
"""),
        md("""
## 3 · Detectors: the overlap threshold
A predicted box is a true positive only if its **IoU** (intersection over union) with a drawn box of the same
tag reaches the overlap threshold. A stricter overlap turns sloppy boxes into false positives *and* misses.
"""),
        code("""
rows = []
for overlap in (0.3, 0.5, 0.7):
    p = get_iteration_performance(ws, site.id, site_it.id, threshold=0.5, overlap_threshold=overlap)
    helmet = next(t for t in p.per_tag_performance if t.name == "helmet")
    rows.append({"overlap": overlap, "mAP": metrics.json_number(p.average_precision),
                 "helmet recall": metrics.json_number(helmet.recall)})
by_overlap = pd.DataFrame(rows).set_index("overlap")
assert by_overlap["mAP"].is_monotonic_decreasing
by_overlap.round(3)
"""),
        code("""
ThresholdExplorer(load_evaluation_dict(ws, site.id, site_it.id))
"""),
        exercise("""
# Exercise: which helmet-vest-person tag does the detector miss most? At threshold 0.5 and overlap 0.5, find
# the tag with the lowest recall in perf.per_tag_performance, keep it in weakest and print its recall.
site_perf = get_iteration_performance(ws, site.id, site_it.id, threshold=0.5, overlap_threshold=0.5)
weakest = min(site_perf.per_tag_performance, key=lambda t: metrics.json_number(t.recall) or 0.0)
print("most missed:", weakest.name, "recall", metrics.json_number(weakest.recall))
"""),
        code("""
assert "weakest" in globals(), "fill in the exercise cell above, then run it"
recalls = {t.name: metrics.json_number(t.recall) or 0.0 for t in get_iteration_performance(
    ws, site.id, site_it.id, threshold=0.5, overlap_threshold=0.5).per_tag_performance}
assert recalls[weakest.name] == min(recalls.values()), f"{weakest.name} is not the lowest recall: {recalls}"
"""),
        md("""
## 4 · Which to favour?
| Situation | Costly error | Favour | Threshold |
|---|---|---|---|
| A missed worker without a helmet | false negative | **recall** | lower |
| A "defective" flag stops the line for an hour | false positive | **precision** | higher |
| Screening whose false alarms trigger invasive follow-ups | false positive | **precision** | higher |
| Rare defect that must never ship | false negative | **recall** | lower |

"F1 above 0.8" is a common rule of thumb, not a rule: the costs decide.

## 5 · Self-test vs held-out
Azure computes these numbers from your own training images (cross-validation). Images the model never saw
are the honest check; notebook 02 set some aside.
"""),
        code("""
comparison = compare_splits(ws, parts.id, parts_it.id)
assert comparison.holdout is not None and comparison.holdout.image_count == P.holdout_images
comparison
"""),
        md("""
**On Azure:** *Performance* tab → the **Probability Threshold** and (detectors) **Overlap Threshold** sliders;
per-tag precision, recall, AP; SDK `trainer.get_iteration_performance(project.id, iteration.id, threshold=0.7,
overlap_threshold=0.5)`. Apply the same threshold in your client code: the endpoint returns every
prediction.

**Exam traps**
- Precision vs recall: read which error the scenario says is expensive.
- AP/mAP do not depend on the probability threshold; precision and recall do.
- The overlap threshold exists only for object detection.
"""),
        md("## Quick check (two questions are computed from *your* iterations)"),
        code("""cv.quiz("eval-01", "eval-03", "eval-05", "eval-06", "eval-13", "eval-14", ws=ws)"""),
        code("""
from cvlab import quiz
ctx = quiz.run_context(ws)
print("your helmet recall at 0.7:", round(quiz.get_question("eval-13").expected(ctx), 3))
"""),
    ]


# --------------------------------------------------------------------------------------------------- 05
@notebook("05-publish-and-consume")
def _():
    return [
        md("""
# 05 · Publish and consume

**What you will learn:** publish an iteration to a prediction resource, start the local endpoint, and call it
three ways — the official Azure SDK (first exactly as the study guide's snippet, then as SDK 3.x needs it),
plain REST with `requests`, and `curl`. Then: training vs prediction keys, what happens before publishing or
with a wrong key, and the F0 / S0 quotas.
"""),
        SETUP,
        code("""
parts = cv.course_project(ws, "parts")
iteration = cv.trained_iteration(ws, parts)
from cvlab.service.server import start_background
svc = start_background(ws)              # a free port on 127.0.0.1, in a background thread
print("endpoint:", svc.endpoint)
print("prediction resource id:", svc.prediction_resource_id)
"""),
        md("""
On Azure you would read the endpoint and keys from the resource's **Keys and Endpoint** page. A training
resource and a prediction resource each have their own keys; the local endpoint serves both APIs, with a
training key and a prediction key.

## 1 · Before publishing
The prediction API only serves **published** iterations, by their publish name:
"""),
        code("""
from azure.cognitiveservices.vision.customvision.prediction import CustomVisionPredictionClient
from azure.cognitiveservices.vision.customvision.training import CustomVisionTrainingClient
from msrest.authentication import ApiKeyCredentials

holdout = [im for im in ws.iter_images(parts.id) if im.metadata.get("holdout") == "true"][0]
test_jpg = str(ws.path / "test.jpg")     # a held-out image the model never trained on
with open(test_jpg, "wb") as f:
    f.write(ws.read_image_bytes(holdout))
truth = holdout.tags[0].tag_name

predictor = CustomVisionPredictionClient(svc.endpoint, ApiKeyCredentials(in_headers={"Prediction-key": svc.prediction_key}))
try:
    predictor.classify_image(parts.id, "not-published-yet", open(test_jpg, "rb").read())
    raise AssertionError("an unpublished name must not answer")
except Exception as err:
    print(type(err).__name__, "-", err)
    assert err.response.status_code == 404
"""),
        md("## 2 · Publish (Training API, training key)"),
        code("""
trainer = CustomVisionTrainingClient(svc.endpoint, ApiKeyCredentials(in_headers={"Training-key": svc.training_key}))
PUBLISH_NAME = "parts-v1"
if trainer.get_iteration(parts.id, iteration.id).publish_name != PUBLISH_NAME:
    trainer.publish_iteration(parts.id, iteration.id, PUBLISH_NAME, svc.prediction_resource_id, overwrite=True)
print(trainer.get_iteration(parts.id, iteration.id).publish_name)
"""),
        md("""
## 3 · The study guide's snippet, as written
It passes the key first and the endpoint second. That was the 1.x SDK's order; SDK 3.x expects
`(endpoint, credentials)`, so the snippet fails before any request leaves your machine:
"""),
        code("""
try:
    predictor = CustomVisionPredictionClient(svc.prediction_key, svc.endpoint)   # as in the study guide
    with open(test_jpg, "rb") as image:
        results = predictor.classify_image(parts.id, PUBLISH_NAME, image.read())
    print(results.predictions)
    snippet_failed = False
except Exception as err:
    snippet_failed = True
    print(type(err).__name__, "-", str(err)[:200])
assert snippet_failed
"""),
        md("Fixed for SDK 3.x — endpoint first, the key inside `ApiKeyCredentials`:"),
        exercise("""
# Exercise: build a CustomVisionPredictionClient the SDK 3.x way (endpoint first, the prediction key inside
# ApiKeyCredentials), classify test_jpg with the published iteration PUBLISH_NAME, and print every tag's probability.
predictor = CustomVisionPredictionClient(svc.endpoint, ApiKeyCredentials(in_headers={"Prediction-key": svc.prediction_key}))
with open(test_jpg, "rb") as image:
    results = predictor.classify_image(parts.id, PUBLISH_NAME, image.read())
for p in results.predictions:
    print(f"{p.tag_name:9s} {p.probability:.2%}")
print("truth:", truth)
assert len(results.predictions) == len(ws.get_tags(parts.id))   # every tag comes back: filter on your side
"""),
        md("""
Each `classify_image` call is also **stored** (the portal's *Predictions* tab, notebook 07), so it can be tagged
and added to training later. The `*_with_no_store` variants keep nothing.
"""),
        code("""
stored_before = len(ws.query_predictions(parts.id, max_count=100_000))
print(stored_before, "stored predictions so far")
"""),
        exercise("""
# Exercise: classify test_jpg again with your SDK 3.x client, but this time with the call that stores nothing
# (classify_image_with_no_store); keep the result in nostore_results and print the top tag.
with open(test_jpg, "rb") as image:
    nostore_results = predictor.classify_image_with_no_store(parts.id, PUBLISH_NAME, image.read())
top = max(nostore_results.predictions, key=lambda p: p.probability)
print(top.tag_name, f"{top.probability:.2%}")
"""),
        code("""
assert "nostore_results" in globals(), "fill in the exercise cell above, then run it"
assert len(nostore_results.predictions) == len(ws.get_tags(parts.id))
assert len(ws.query_predictions(parts.id, max_count=100_000)) == stored_before, "use classify_image_with_no_store"
"""),
        md("## 4 · Plain REST, then curl"),
        code("""
import requests
url = f"{svc.endpoint}/customvision/v3.0/Prediction/{parts.id}/classify/iterations/{PUBLISH_NAME}/image"
r = requests.post(url, headers={"Prediction-Key": svc.prediction_key, "Content-Type": "application/octet-stream"},
                  data=open(test_jpg, "rb").read(), timeout=60)
print(r.status_code, [(p["tagName"], round(p["probability"], 3)) for p in r.json()["predictions"]])
assert r.status_code == 200
"""),
        code("""
import shutil, subprocess
cmd = ["curl", "-s", "-X", "POST", url, "-H", "Prediction-Key: " + svc.prediction_key,
       "-H", "Content-Type: application/octet-stream", "--data-binary", "@" + test_jpg]
print(" ".join(cmd).replace(svc.prediction_key, "<prediction-key>"))
if shutil.which("curl"):
    print(subprocess.run(cmd, capture_output=True, text=True, timeout=60).stdout[:300])
"""),
        md("""
## 5 · Wrong keys
A wrong key — or the *training* key on the prediction API — is refused with **401 Access Denied**, exactly the
message the SDK prints against Azure:
"""),
        code("""
for label, key in [("wrong key", "0" * 32), ("training key", svc.training_key)]:
    bad = CustomVisionPredictionClient(svc.endpoint, ApiKeyCredentials(in_headers={"Prediction-key": key}))
    try:
        bad.classify_image(parts.id, PUBLISH_NAME, open(test_jpg, "rb").read())
    except Exception as err:
        print(f"{label}: {err.response.status_code} {err}")
        assert err.response.status_code == 401
"""),
        md("""
## 6 · F0 vs S0
The workspace's tier applies Microsoft's documented limits. On F0 a third project is refused:
"""),
        code("""
from cvlab import rules
from cvlab.errors import CvlabError
for key in ("projects", "images_per_project", "predictions_per_month", "tags_per_project"):
    print(f"{key:22s} F0={rules.limit(key, 'F0')}  S0={rules.limit(key, 'S0') or 'unlimited'}")
ws.set_tier("F0")
try:
    extra = [ws.create_project(f"f0-demo-{i}") for i in range(3)]
    raise AssertionError("F0 allows two projects")
except CvlabError as err:
    print(err.code, "-", err.message)
    assert err.code == "BadRequestExceedProjectLimit"
finally:
    ws.set_tier("S0")
    for p in ws.get_projects():
        if p.name.startswith("f0-demo-"):
            ws.delete_project(p.id)
"""),
        code("""svc.stop()"""),
        md("""
**On Azure:** *Performance* tab → **Publish** → a name and the prediction resource; then *Prediction URL*
shows the exact routes and the `Prediction-Key` header. SDK: `trainer.publish_iteration(project_id,
iteration_id, publish_name, prediction_resource_id)` — the last argument is the resource's ARM id.

**Exam traps**
- Predicting before publishing fails; publishing needs the *prediction* resource's id.
- Prediction calls use the prediction key; the training key is for the Training API.
- Documented S0: 100 projects, 100,000 images per project, unlimited predictions (not "1M / 10M" as some
  guides say). F0: 2 projects, 5,000 images, 10,000 predictions a month.
"""),
        md("## Quick check"),
        code("""cv.quiz("pub-01", "pub-02", "pub-03", "pub-05", "pub-06", "pub-09", ws=ws)"""),
    ]


# --------------------------------------------------------------------------------------------------- 06
@notebook("06-export-and-edge")
def _():
    return [
        md("""
# 06 · Export and the edge

**What you will learn:** export an iteration to ONNX and TensorFlow Lite and run the files with their own
runtimes, run the exported Docker app locally, check that every copy predicts like the cloud model (parity),
and pick the right format for each target. Only iterations trained on a **compact** domain export.
"""),
        SETUP,
        code("""
import io, json, zipfile
from pathlib import Path
import numpy as np
from PIL import Image
from cvlab.domains import get_domain
from cvlab.export import export_iteration, export_file
from cvlab.export.convert import OnnxRunner, TFLiteRunner
from cvlab.predict import Predictor

parts = cv.course_project(ws, "parts")
iteration = cv.trained_iteration(ws, parts)
domain = get_domain(iteration.domain_id)
print(domain.name, "| compact/exportable:", domain.exportable, "| iteration exportable:", iteration.exportable)
assert iteration.exportable
"""),
        md("""
## 1 · The compact-domain rule
A project on a non-compact domain (General, Food, Retail, …) trains cloud-only iterations; export is refused.
Switching the project to a compact domain is allowed, but only iterations trained *after* the switch export.
"""),
        code("""
from cvlab.domains import get_domains
print("exportable (compact) domains:", [(d.type, d.name) for d in get_domains() if d.exportable])
"""),
        md("""
Here is the refusal: the smallest trainable project on the non-compact **General** domain (2 tags, 5 images
each, Quick training: seconds), then an export request, refused with `BadRequestExportValidationFailed`.
"""),
        code("""
from cvlab import datasets
from cvlab.domains import find_domain
from cvlab.errors import CvlabError
from cvlab.training import train_project

cloud = ws.find_project("cloud-only-demo") or ws.create_project(
    "cloud-only-demo", domain_id=find_domain("General", "Classification").id)
if not ws.get_image_count(cloud.id):
    records = datasets.generate("parts", 30, seed=cv.SEED, size=P.image_size)
    def png(rec):
        buf = io.BytesIO(); rec.load().save(buf, "PNG"); return buf.getvalue()
    for tag in ("ok", "cracked"):
        ws.add_images(cloud.id, [png(r) for r in records if r.tags == [tag]][:5], tags=[tag])
cloud_it = cv.trained_iteration(ws, cloud)
print(get_domain(cloud_it.domain_id).name, "| iteration exportable:", cloud_it.exportable)
try:
    export_iteration(ws, cloud.id, cloud_it.id, "ONNX")
    raise AssertionError("a non-compact iteration must not export")
except CvlabError as err:
    print(err.code, "-", err.message)
    assert err.code == "BadRequestExportValidationFailed"
ws.delete_project(cloud.id)   # tidy up
"""),
        md("## 2 · ONNX, run with onnxruntime"),
        code("""
def unzip(record, name):
    assert record.status == "Done", record
    folder = ws.path / "exports" / name
    with zipfile.ZipFile(export_file(ws, Path(record.path).stem)) as zf:
        zf.extractall(folder)
    return folder

onnx_dir = unzip(export_iteration(ws, parts.id, iteration.id, "ONNX"), "onnx")
print(sorted(p.name for p in onnx_dir.iterdir()))
print(json.loads((onnx_dir / "cvexport.manifest").read_text()))
"""),
        md("""
**Parity check:** the same held-out images through the in-process model (what the endpoint uses) and through
the exported file must give the same probabilities.
"""),
        code("""
predictor = Predictor.load(ws, iteration.id, backend="torch")
holdout = [im for im in ws.iter_images(parts.id) if im.metadata.get("holdout") == "true"]
batch = np.stack([predictor.preprocessing.array(ws.open_image(im)) for im in holdout])
expected = predictor.module(__import__("torch").from_numpy(batch)).detach().numpy()
onnx_probs = OnnxRunner(onnx_dir / "model.onnx")(batch)[0]
print("max |difference| ONNX vs model:", float(np.abs(onnx_probs - expected).max()))
assert np.abs(onnx_probs - expected).max() < 1e-4 and (onnx_probs.argmax(1) == expected.argmax(1)).all()
"""),
        md("## 3 · TensorFlow Lite, run with ai-edge-litert (Android / iOS)"),
        code("""
tflite_dir = unzip(export_iteration(ws, parts.id, iteration.id, "TensorFlow", "TensorFlowLite"), "tflite")
tflite_probs = TFLiteRunner(tflite_dir / "model.tflite")(batch)[0]
print("max |difference| TFLite vs model:", float(np.abs(tflite_probs - expected).max()))
assert (tflite_probs.argmax(1) == expected.argmax(1)).all()
"""),
        exercise("""
# Exercise: phones prefer small files. Export the iteration again as TensorFlow Lite with the flavor
# "TensorFlowLiteFloat16" (weights stored in half precision; unzip it into a folder "tflite-fp16"), run it with
# TFLiteRunner on the same batch into fp16_probs, and compare its top tags and file size with the float export.
fp16_dir = unzip(export_iteration(ws, parts.id, iteration.id, "TensorFlow", "TensorFlowLiteFloat16"), "tflite-fp16")
fp16_probs = TFLiteRunner(fp16_dir / "model.tflite")(batch)[0]
sizes = [round((d / "model.tflite").stat().st_size / 1e6, 1) for d in (tflite_dir, fp16_dir)]
print("float vs fp16 file, MB:", sizes, "| same top tag on", int((fp16_probs.argmax(1) == expected.argmax(1)).sum()),
      "of", len(expected), "images | max |difference|:", float(np.abs(fp16_probs - expected).max()))
"""),
        code("""
assert "fp16_probs" in globals(), "fill in the exercise cell above, then run it"
assert (fp16_probs.argmax(1) == expected.argmax(1)).all(), "fp16 weights should not change the top tag here"
assert np.abs(fp16_probs - expected).max() < 1e-2
"""),
        md("""
TensorFlow Lite exports work for classification **and** detection; a third-party study guide says "object
detection only", which Microsoft's export page does not.

## 4 · The Docker app, run locally — no keys
The DockerFile export is a small web service holding the model (here: the TFLite file). It answers the same
routes as the prediction endpoint, and it needs **no Azure keys** at run time: the model is inside. (A study
guide's `docker run -e PredictionKey=...` example is unnecessary.) We start its `app.py` directly with this
Python, which is what `docker build` + `docker run -p 80:80` would run.
"""),
        code("""
import os, socket, subprocess, sys, time, requests

docker_dir = unzip(export_iteration(ws, parts.id, iteration.id, "DockerFile", "Linux"), "docker")
print((docker_dir / "Dockerfile").read_text()[:400])
with socket.socket() as s:
    s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]
env = {k: v for k, v in os.environ.items() if "KEY" not in k.upper()}      # no keys at all
server = subprocess.Popen([sys.executable, "app.py"], cwd=docker_dir / "app",
                          env=dict(env, PORT=str(port), HOST="127.0.0.1"),
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    for _ in range(300):
        try:
            requests.get(f"http://127.0.0.1:{port}/", timeout=1); break
        except requests.ConnectionError:
            time.sleep(0.1)
    reply = requests.post(f"http://127.0.0.1:{port}/image", timeout=60,
                          files={"imageData": ("x.jpg", ws.read_image_bytes(holdout[0]))}).json()
finally:
    server.terminate(); server.wait(10)
best = max(reply["predictions"], key=lambda p: p["probability"])
print("container says:", best["tagName"], round(best["probability"], 3), "| truth:", holdout[0].tags[0].tag_name)
assert best["tagName"] == predictor.tags[int(expected[0].argmax())]["name"]
"""),
        md("""
## 5 · Which format for which target?
| Target | Export |
|---|---|
| Windows (Windows ML) or Linux edge devices | **ONNX** |
| Android / iOS apps | **TensorFlow Lite** (iOS also **CoreML**) |
| Your servers, Azure Container Instances, AKS, on-premises | **Docker** (Linux, Windows, ARM) |
| Cameras and gateways managed from Azure | the Docker container as an **Azure IoT Edge** module |

Keys: calls to the Azure prediction endpoint need a prediction key; an exported model or container runs
without any.

**On Azure:** *Performance* tab → **Export** → platform → **Download**. SDK:
`trainer.export_iteration(project.id, iteration.id, "ONNX")`, then poll `trainer.get_exports(...)` until
`status == "Done"` and download `download_uri`.

**Exam traps**
- Non-compact domain → no export button; retrain after switching to compact.
- TFLite is for phones; ONNX for Windows/Linux edge; Docker for containers and IoT Edge.
- The exported container needs no keys.
"""),
        md("## Quick check"),
        code("""cv.quiz("exp-01", "exp-02", "exp-04", "exp-05", "exp-06", "exp-09", ws=ws)"""),
    ]


# --------------------------------------------------------------------------------------------------- 07
@notebook("07-improve")
def _():
    return [
        md("""
# 07 · Improve: predictions, uncertainty and the smart labeler

**What you will learn:** keep the images your model sees in use (stored predictions), rank unlabelled images by
how unsure the model is, label the most informative ones first (the smart labeler's idea), retrain, and compare
iterations fairly.
"""),
        SETUP,
        code("""
import io
import pandas as pd
from cvlab import active, datasets
from cvlab.metrics import json_number
from cvlab.performance import get_iteration_performance
from cvlab.predict import Predictor

parts = cv.course_project(ws, "parts")
first = cv.trained_iteration(ws, parts)
"""),
        md("""
## 1 · New, unlabelled images arrive
We add images the model has not seen, without tags — as if they came from the production line. (cvlab knows
their true tags, so we can play the labeller below.)
"""),
        code("""
def jpeg(rec):
    buf = io.BytesIO(); rec.load().save(buf, "JPEG"); return buf.getvalue()

new = list(datasets.iter_generate("parts", 2 * P.images_per_tag, seed=cv.SEED + 50, size=P.image_size))
truth = {r.name: r.tags[0] for r in new}
if not ws.get_image_count(parts.id, tagging_status="Untagged"):
    ws.create_images(parts.id, [__import__("cvlab").ImageEntry(data=jpeg(r), name=r.name) for r in new])
untagged = ws.get_images(parts.id, tagging_status="Untagged", take=256)
print(len(untagged), "untagged images")
"""),
        md("""
## 2 · Stored predictions
Each prediction made *with storage* keeps the image for 30 days (the portal's **Predictions** tab), where you
can tag it and add it to the training set.
"""),
        code("""
predictor = Predictor.load(ws, first.id)
for im in untagged[:3]:
    ws.store_prediction(parts.id, first.id, ws.read_image_bytes(im), predictor.predict(ws.open_image(im)),
                        application="line-camera")
stored = ws.query_predictions(parts.id, application="line-camera")
print(len(stored), "stored predictions, e.g.", stored[0].predictions[0])
assert len(stored) >= 3
"""),
        md("""
## 3 · Rank by uncertainty
For a multiclass model, uncertainty = 1 − (p₁ − p₂): an image the model hesitates on between two tags is the
one worth a human's time. This is what the smart labeler sorts by.
"""),
        code("""
suggestions = []
for start in range(0, len(untagged), 64):
    ids = [im.id for im in untagged[start:start + 64]]
    suggestions += active.suggest_tags_and_regions(ws, parts.id, first.id, ids)
ranked = active.rank_by_uncertainty(suggestions, lambda s: s.prediction_uncertainty)
table = pd.DataFrame([{"image": s.image.original_name, "uncertainty": round(s.prediction_uncertainty, 3),
                       "suggested": max(s.predictions, key=lambda p: p["probability"])["tag_name"],
                       "truth": truth.get(s.image.original_name)} for s in ranked])
assert table.uncertainty.is_monotonic_decreasing
table.head(8)
"""),
        md("""
## 4 · Label the most uncertain half, retrain, compare
We "label" the top half of the ranking with the true tags, then train a new iteration.
"""),
        code("""
tags = {t.name: t.id for t in ws.get_tags(parts.id)}
chosen = ranked[: len(ranked) // 2]
ws.create_image_tags(parts.id, [(s.id, tags[truth[s.image.original_name]]) for s in chosen])
second = parts.refresh().latest_iteration()
if second.id == first.id:
    from cvlab.training import train_project
    second = train_project(ws, parts.id, seed=cv.SEED, show_progress=False)
rows = []
for it in (first, second):
    p = get_iteration_performance(ws, parts.id, it.id, split="holdout")
    rows.append({"iteration": it.name, "training images": ws.get_image_count(parts.id, tagging_status="Tagged")
                 if it is second else None, "held-out precision": json_number(p.precision),
                 "held-out recall": json_number(p.recall)})
pd.DataFrame(rows).set_index("iteration").round(3)
"""),
        md("""
Compare iterations on the **same** held-out images and thresholds; newer is not automatically better.
The comparison widget puts two iterations side by side:
"""),
        code("""
from cvlab.widgets import compare_iterations
compare_iterations(parts, first, second, ws=ws)
"""),
        md("""
## 5 · Does choosing by uncertainty matter? A small learning curve
Start two copies of a project from 5 labelled images per tag. Each round, one copy labels the images the smart
labeler suggests first (`query_suggested_images`: most uncertain, spread out so a batch is not ten near-copies),
the other labels as many random images; both retrain and are scored on the same held-out images.
`benchmarks/active_learning.py` runs the full-size version over several seeds: the gap is a few F1 points at
best, and one seed can go either way, so read a single small curve as an illustration, not a proof.

For object detection the smart labeler ranks images by how many objects the model clearly sees in them (the
summed *squared* box probabilities), most first: a detector learns from boxes, and a frame with nobody in it
teaches it nothing. Squaring keeps six faint false positives on scaffolding (6 x 0.3² = 0.54) below one clear
worker (0.9² = 0.81). On footage that is mostly empty frames this beats random picking by 3-5 mAP points per
round; when every frame holds workers it ties, because the detector learns the `site` scenes from about 30
images, whichever they are (`benchmarks/active_learning.md`).
"""),
        code("""
import matplotlib.pyplot as plt
from cvlab.experiments import active_learning

size = dict(rounds=2, per_round=4, pool_size=16, test_size=24) if P.name == "fast" else \\
    dict(rounds=3, per_round=10, pool_size=60, test_size=60)
curve = active_learning.learning_curve("parts", seeds=(cv.SEED,), image_size=P.image_size, backend="torch",
                                       progress=False, **size)
fig, ax = plt.subplots(figsize=(5, 3))
for strategy, c in curve["curves"].items():
    ax.plot(c["labelled"], c["mean"], marker="o", label=strategy)
ax.set_xlabel("labelled images"); ax.set_ylabel("held-out F1 @ 0.5"); ax.legend(); ax.grid(alpha=0.3)
print("uncertainty minus random, per round:", curve["uncertainty_minus_random"])
assert curve["curves"]["uncertainty"]["mean"][0] == curve["curves"]["random"]["mean"][0]  # same start
"""),
        md("""
## 6 · From a stored prediction to a training image, in one call
A stored prediction joins the training images with corrected tags (or boxes) in one call:
`active.add_predictions_to_training`, Azure's `create_images_from_predictions`. The image must be new to the
project: the untagged images above are already in it, so adding their predictions would be refused as
`OKDuplicate`. So a fresh picture from the line (a new one each time you run the cell):
"""),
        code("""
fresh = next(datasets.iter_generate("parts", 1, seed=cv.SEED + 1000, size=P.image_size,
                                    start=ws.get_image_count(parts.id)))
stored_fresh = ws.store_prediction(parts.id, first.id, jpeg(fresh), predictor.predict(fresh.load()),
                                   application="line-camera")
said = max(stored_fresh.predictions, key=lambda p: p["probability"])["tag_name"]
tag_id = {t.name: t.id for t in ws.get_tags(parts.id)}[fresh.tags[0]]     # the corrected (true) tag
before = ws.get_image_count(parts.id)
added = active.add_predictions_to_training(ws, parts.id, [(stored_fresh.id, [tag_id], [])]).images[0]
print(f"model said {said!r}; added as {[t.tag_name for t in added.image.tags]}: {added.status}; "
      f"images {before} -> {ws.get_image_count(parts.id)}")
assert added.status == "OK" and ws.get_image_count(parts.id) == before + 1
again = active.add_predictions_to_training(ws, parts.id, [(stored_fresh.id, [tag_id], [])]).images[0]
print("the same image once more:", again.status)
assert again.status == "OKDuplicate"
"""),
        md("""
The quick test widget does the same without code: `parts.quick_test()` → test an image (upload or pick a
sample) → open **Add to training** → correct the tag(s), or for a detector the boxes → click **Add to
training**. Train again to use the new images.
"""),
        exercise("""
# Exercise: the Predictions tab filters by tag and probability. Query the stored "line-camera" predictions in
# which the model gave "rusted" a probability of at least 0.5 (ws.query_predictions(..., tags=[{"id": <tag id>,
# "min_threshold": 0.5}])) into rusty.
rusted_id = next(t.id for t in ws.get_tags(parts.id) if t.name == "rusted")
rusty = ws.query_predictions(parts.id, application="line-camera", tags=[{"id": rusted_id, "min_threshold": 0.5}])
print(len(rusty), "of", len(ws.query_predictions(parts.id, application="line-camera")), "stored predictions")
"""),
        code("""
assert "rusty" in globals(), "fill in the exercise cell above, then run it"
p_rusted = lambda s: max([p["probability"] for p in s.predictions if p["tag_name"] == "rusted"], default=0.0)
wanted = {s.id for s in ws.query_predictions(parts.id, application="line-camera") if p_rusted(s) >= 0.5}
assert {s.id for s in rusty} == wanted, "filter on the rusted tag's id with min_threshold 0.5"
"""),
        md("""
**On Azure:** *Predictions* tab (stored images, tag them, *Save and close*); *Untagged* images → **Get
suggested tags** (the smart labeler uses the latest iteration; only for tags it was trained on; billed like
predictions). SDK: `suggest_tags_and_regions`, `query_suggested_images`, `create_images_from_predictions`.

**Exam traps**
- Smart labeler suggests only tags the iteration already knows.
- Stored predictions last 30 days; `*_with_no_store` calls keep nothing.
- Variety and balance help; duplicates do not.
"""),
        md("## Quick check"),
        code("""cv.quiz("imp-01", "imp-02", "imp-03", "imp-04", "imp-05", "imp-08", ws=ws)"""),
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
        exercise("""
# Exercise: a multiclass classifier with 4 tags. With rules.limit, compute the fewest labelled images it needs
# before training is accepted (min_images) and the number Microsoft recommends (recommended_images).
min_images = 4 * rules.limit("min_images_per_tag_classification", "S0")
recommended_images = 4 * rules.limit("recommended_images_per_tag", "S0")
print(min_images, "to train,", recommended_images, "recommended")
"""),
        code("""
assert "min_images" in globals() and "recommended_images" in globals(), "fill in the exercise cell above, then run it"
assert (min_images, recommended_images) == (20, 200), "5 images per tag at least, 50 recommended: times 4 tags"
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

session = QuizSession(ws, count=10, seed=cv.SEED, context=quiz.run_context(ws))
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


def build(names=None, out: Path = HERE, drafts: bool = False) -> list[Path]:
    written = []
    for name, cells in (ALL if drafts else NOTEBOOKS).items():
        if names and name not in names:
            continue
        nb = nbformat.v4.new_notebook()
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nb.metadata["language_info"] = {"name": "python"}
        nb.cells = [nbformat.v4.new_markdown_cell(src) if kind == "md" else nbformat.v4.new_code_cell(src)
                    for kind, src in cells]
        for (kind, _), cell in zip(cells, nb.cells):
            if kind == "exercise":
                cell.metadata["tags"] = ["exercise"]
        for i, cell in enumerate(nb.cells):
            cell.id = f"{name[:2]}-{i:02d}"  # stable ids keep diffs small
        nbformat.validate(nb)
        path = Path(out) / f"{name}.ipynb"
        nbformat.write(nb, path)
        written.append(path)
    return written


if __name__ == "__main__":
    args = sys.argv[1:]
    if args[:1] == ["--drafts"]:  # write every notebook, drafts too, into another folder to try them
        for p in build(args[2:], out=Path(args[1]), drafts=True):
            print("wrote", p)
    else:
        for p in build(args):
            print("wrote", p.relative_to(HERE.parent))
