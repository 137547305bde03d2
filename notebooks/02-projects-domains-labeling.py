# %% [markdown]
# # 02 · Projects, domains and labeling
#
# **What you will learn:** create a project and choose its domain (and why *compact* matters), create tags
# including the special **Negative** tag, add and label images with the tagger and the box labeler, meet the
# service's rules as real errors, and convert boxes between Custom Vision, COCO, Pascal VOC and YOLO.

# %%
from cvlab import curriculum as cv
P = cv.profile()            # CVLAB_PROFILE=fast (CI) or learner (default)
ws = cv.workspace()         # $CVLAB_WORKSPACE or ../workspace, shared by every notebook
print(P.name, "profile; workspace:", ws.path)

# %% [markdown]
# ## 1 · Domains
# A domain chooses the pretrained starting point. Only **compact** domains can be exported to run on a device,
# so decide early if the model must ever leave the cloud. (In cvlab every domain starts from ImageNet-pretrained
# EfficientNet-Lite weights; compact domains use the smaller backbone.)

# %%
import pandas as pd
from cvlab.domains import get_domains, find_domain

pd.DataFrame([{"type": d.type, "name": d.name, "exportable (compact)": d.exportable, "id": d.id}
              for d in get_domains()])

# %% [markdown]
# ## 2 · A project, its tags, and the Negative tag
# **On Azure:** customvision.ai → *New project* → type + domain; SDK `trainer.create_project(name,
# domain_id=...)`, `trainer.create_tag(project.id, "cracked")`, `create_tag(..., type="Negative")`.

# %%
from cvlab.errors import CvlabError

old = ws.find_project("labeling-demo")
if old:
    ws.delete_project(old.id)
demo = ws.create_project("labeling-demo", domain_id=find_domain("General (compact)", "Classification").id)
ok, cracked = ws.create_tag(demo.id, "ok"), ws.create_tag(demo.id, "cracked")
negative = ws.create_tag(demo.id, "Negative", type="Negative")
print(demo.project_type, demo.classification_type, [(t.name, t.type) for t in ws.get_tags(demo.id)])

# %% tags=["exercise"]
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

# %%
assert "shelf" in globals(), "fill in the exercise cell above, then run it"
shelf = ws.get_project(shelf.id)
assert shelf.classification_type == "Multilabel", "pass classification_type='Multilabel'"
assert next(d for d in get_domains() if d.id == shelf.domain_id).exportable, "use a compact (exportable) domain"
assert sorted(t.name for t in ws.get_tags(shelf.id)) == ["dented", "label-missing"]
ws.delete_project(shelf.id)   # tidy up: the course does not use it again

# %% [markdown]
# Add a few images with their tags (cvlab accepts files, folders or bytes):

# %%
import io
from cvlab import datasets

def jpeg(rec):
    buf = io.BytesIO(); rec.load().save(buf, "JPEG"); return buf.getvalue()

records = datasets.generate("parts", 12, seed=cv.SEED, size=P.image_size)
for tag in ("ok", "cracked", "Negative"):
    ws.add_images(demo.id, [jpeg(r) for r in records if r.tags == [tag]], tags=[tag])
print({t.name: t.image_count for t in ws.get_tags(demo.id)})

# %% [markdown]
# ### Rules you will meet as errors
# A Negative image means "none of my tags", so it cannot also carry a regular tag; and a classifier needs at
# least **5** labelled images per tag before it will train (detectors: **15**; **50+** is recommended).

# %%
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

# %% [markdown]
# ## 3 · Labeling with the widgets
# The **tagger** shows untagged images one by one (keys 1–9 pick tags, 0 Negative, z undo). Its **Grid** view
# shows many thumbnails: tick several, pick a tag, **Apply** (the portal's multi-select); **Create tag** adds a
# tag without leaving the widget. Try both on the demo project; four untagged images are added first.

# %%
ws.add_images(demo.id, [jpeg(r) for r in datasets.generate("parts", 4, seed=99, size=P.image_size)])
from cvlab.widgets import tagger
tagger(demo, ws=ws)

# %% [markdown]
# ## 4 · The course projects
# The next notebooks use two projects created here once (re-running is safe): **parts-quality**, a multiclass
# classifier (ok / cracked / rusted + Negative), and **site-safety**, a detector (helmet / vest / person). Both
# use compact domains so notebook 06 can export them. A few images of each are marked *held out*: training
# never sees them, so notebook 04 can compare Azure-style self-test numbers with truly new images.

# %%
parts = cv.course_project(ws, "parts")
site = cv.course_project(ws, "site")
for p in (parts, site):
    print(f"{p.name:14s} {p.project_type:15s}", {t.name: t.image_count for t in ws.get_tags(p.id)})
assert all(t.image_count >= 5 for t in ws.get_tags(parts.id))

# %% [markdown]
# ### Draw boxes yourself
# Three scenes from the site cameras have just arrived without labels (the box labeler shows images without
# boxes first). In each, box every **person**, then the **helmet** and the **vest** *inside* that person:
#
# - drag to draw; the tag list opens under the new box: pick the tag (or type a new one);
# - a drag that starts inside a box draws a new box there; it does not move the box under it. To move or resize a
#   box, click it first (it turns yellow), then drag it or its handles; **Shift**+drag always draws;
# - **Undo** / **Redo** (or Ctrl+Z / Ctrl+Shift+Z) take back any change; Delete removes the selected box;
# - every change is saved at once, as the portal saves a region.
#
# After notebook 03 trains a detector, the same widget also shows its boxes **dashed** as suggestions: click one to
# accept it, its × to reject it (notebook 07 uses them).

# %%
from cvlab.widgets import box_labeler

scenes = cv.practice_scenes(ws, site)      # three unlabelled scenes, added once
box_labeler(site, ws=ws)

# %% [markdown]
# Running this lesson without drawing (or in CI)? The next cell gives the scenes still without a box the boxes the
# scene generator knows; scenes you boxed keep yours.

# %%
filled = cv.fill_missing_boxes(ws, site, scenes)
print(f"{filled} of {len(scenes)} scenes filled in; {len(scenes) - filled} boxed by you")

# %%
drawn = [ws.get_image(site.id, image_id) for image_id in scenes]
assert all(im.regions for im in drawn), "draw at least one box on every scene above, then run this cell"
inside = [pair for im in drawn for pair in cv.nested_boxes(im)]
assert inside, "box a helmet or a vest inside the person who wears it"
print(len(inside), "boxes lie inside another box, e.g.", ", ".join(f"{a} in {b}" for a, b in inside[:3]))

# %% [markdown]
# ## 5 · Box coordinates: four conventions
# Custom Vision stores a region as **left, top, width, height**, each a fraction (0..1) of the image size. COCO
# uses pixels from the top-left corner (x, y, w, h); Pascal VOC pixel corners (xmin, ymin, xmax, ymax); YOLO
# fractions measured from the **centre** (cx, cy, w, h). Mixing them up is a classic bug.

# %%
from cvlab.datasets import coords

image = ws.get_images(site.id, take=1, order_by="Oldest")[0]
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

# %% tags=["exercise"]
# Exercise: another tool gave you this box as YOLO (cx, cy, w, h) and as Pascal VOC pixels. Convert both back
# to Custom Vision's (left, top, width, height) fractions with the coords module, into from_yolo and from_voc.
yolo, voc = coords.ltwh_to_yolo(box), coords.ltwh_to_voc(box, W, H)
from_yolo = coords.yolo_to_ltwh(yolo)
from_voc = coords.voc_to_ltwh(voc, W, H)
print([round(v, 4) for v in from_yolo], [round(v, 4) for v in from_voc])

# %%
assert "from_yolo" in globals() and "from_voc" in globals(), "fill in the exercise cell above, then run it"
for got in (from_yolo, from_voc):
    assert all(abs(a - b) < 1e-9 for a, b in zip(got, box)), f"{got} is not the region {box}"

# %% [markdown]
# **On Azure:** labels uploaded with `create_images_from_files` carry `Region(tag_id, left, top, width, height)`
# in fractions; a COCO or YOLO export from another tool must be converted first (cvlab's importer does it:
# `cvlab data import`).
#
# **Exam traps**
# - Detection needs boxes; tags alone do not train a detector. Negative is for classifiers only.
# - The minimum is 5 (classification) / 15 (detection) per tag; "50" is the recommendation.
# - Only compact domains export; switching domain means retraining before export.

# %% [markdown]
# ## Quick check

# %%
cv.quiz("label-01", "label-03", "label-05", "label-07", "label-08", "label-15", ws=ws)
