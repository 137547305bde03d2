# %% [markdown]
# # 11 · Lab: Detect objects in images (Microsoft Learn), offline
#
# **What you will do:** Microsoft Learn's *Detect objects in images* lab, in its order, on the lab's photos:
# create the **Detect Fruit** project (Object Detection, General), upload `training-images/` and draw a box round
# every fruit by hand, add the 23 already-labelled photos of `tagged-images.json` through the training API (the
# lab's `add-tagged-images` script), train with Quick Training, publish as `fruit-detector`, and find the apple,
# the banana and the orange in `produce.jpg` (the lab's `test-detector.py`).
#
# Lab: https://github.com/MicrosoftLearning/mslearn-ai-vision, `Instructions/Labs/05-custom-vision-object-detection.md`
# (photos MIT-licensed, in `data/mslearn-fruit/detection/`). As in the lab, `tagged-images.json` alone has fewer
# than 15 images of each fruit (9 apple, 13 banana, 10 orange): your boxes are what lets the project train.

# %%
import os

from cvlab import curriculum as cv
from cvlab import mslearn

P = cv.profile()
ws = cv.workspace()
# In cvlab, the course's learner profile fixes Quick detection training at 20 epochs (about a minute on 2 cores).
os.environ.setdefault("CVLAB_DETECTION_EPOCHS", "20")
print(P.name, "profile; workspace:", ws.path)

# %% [markdown]
# ## 1 · Resources, and the project
# As in notebook 10, the local endpoint stands for the training and prediction resources. The lab's project:
# Name `Detect Fruit`, Project Types **Object Detection**, Domains **General**. (A project of that name left by an
# earlier run is removed first.)

# %%
from azure.cognitiveservices.vision.customvision.prediction import CustomVisionPredictionClient
from azure.cognitiveservices.vision.customvision.training import CustomVisionTrainingClient
from azure.cognitiveservices.vision.customvision.training.models import (ImageFileCreateBatch,
                                                                         ImageFileCreateEntry, Region)
from msrest.authentication import ApiKeyCredentials

from cvlab.service.server import start_background

svc = start_background(ws)
trainer = CustomVisionTrainingClient(svc.endpoint, ApiKeyCredentials(in_headers={"Training-key": svc.training_key}))
for old in trainer.get_projects():
    if old.name == mslearn.DETECT_PROJECT:
        for it in trainer.get_iterations(old.id):
            if it.publish_name:
                trainer.unpublish_iteration(old.id, it.id)
        trainer.delete_project(old.id)
general = next(d for d in trainer.get_domains() if d.type == "ObjectDetection" and d.name == "General")
project = trainer.create_project(mslearn.DETECT_PROJECT, domain_id=general.id)
tags = {name: trainer.create_tag(project.id, name) for name in mslearn.TAGS}
print(project.name, "|", general.name, "| tags:", list(tags))

# %% [markdown]
# ## 2 · Add and tag images
# The lab uploads the ten photos of `training-images/` without tags, then, in each image's detail view, drags a
# box round every fruit and picks its tag. Upload first:

# %%
training = mslearn.DETECTION / "training-images"
files = sorted(training.glob("*.jpg"), key=lambda f: int(f.stem.removeprefix("image")))
batch = ImageFileCreateBatch(images=[ImageFileCreateEntry(name=f.name, contents=f.read_bytes()) for f in files])
assert trainer.create_images_from_files(project.id, batch).is_batch_successful
print(trainer.get_untagged_image_count(project.id), "untagged images")

# %% [markdown]
# Now draw. In the box labeler below: pick a tag, drag a box round a fruit, draw the next one; every box is saved
# as a region of the image, the same call the portal makes. Box each apple, banana and orange in all ten photos
# (about 30 boxes), then run the check under it.

# %%
from cvlab.widgets import box_labeler

box_labeler(ws.get_project(project.id), ws=ws)

# %% [markdown]
# Running this notebook without drawing (or in CI)? The next cell adds, **to images that still have no box**, the
# boxes cvlab's authors drew by hand on the same photos (`cvlab.mslearn.HAND_BOXES`; the lab itself ships none).
# Images you boxed are left as you drew them.

# %%
ids = {t.name: t.id for t in trainer.get_tags(project.id)}
unboxed = ws.get_images(project.id, tagging_status="Untagged", take=256)   # in cvlab: the workspace knows file names
boxes = [{"image_id": im.id, "tag_id": ids[tag], "left": l, "top": t, "width": w, "height": h}
         for im in unboxed for tag, l, t, w, h in mslearn.HAND_BOXES[im.original_name]]
if boxes:
    ws.create_image_regions(project.id, boxes)
print(f"{len(unboxed)} images had no box; {len(boxes)} hand-drawn boxes added")

# %%
images = trainer.get_images(project.id, take=256)
missing = [im.id for im in images if not im.regions]
assert not missing, f"{len(missing)} training images have no box yet: draw one round every fruit above"
print(sum(len(im.regions) for im in images), "boxes on", len(images), "images")

# %% [markdown]
# ## 3 · Use the training API to upload labelled images
# The lab's `add-tagged-images` script reads `tagged-images.json` (each file's regions: tag, left, top, width,
# height as fractions of the image) and uploads the 23 photos with their regions in one batch:

# %% tags=["exercise"]
# Exercise: upload tagged-images/ with its regions, as the lab's Upload_Images does: for each entry of
# mslearn.tagged_images(), one Region(tag_id=..., left=..., top=..., width=..., height=...) per tag, then one
# ImageFileCreateEntry(name, contents, regions) per file, all in one create_images_from_files batch; keep the
# result in upload_result.
folder = mslearn.DETECTION / "tagged-images"
tagged_images_with_regions = []
for image in mslearn.tagged_images():
    regions = [Region(tag_id=ids[tag["tag"]], left=tag["left"], top=tag["top"], width=tag["width"],
                      height=tag["height"]) for tag in image["tags"]]
    tagged_images_with_regions.append(ImageFileCreateEntry(name=image["filename"],
                                                           contents=(folder / image["filename"]).read_bytes(),
                                                           regions=regions))
upload_result = trainer.create_images_from_files(project.id, ImageFileCreateBatch(images=tagged_images_with_regions))
print("Images uploaded." if upload_result.is_batch_successful else "Image batch upload failed.")

# %%
assert "upload_result" in globals(), "fill in the exercise cell above, then run it"
assert upload_result.is_batch_successful, [i.status for i in upload_result.images if i.status != "OK"]
counts = {t.name: t.image_count for t in trainer.get_tags(project.id)}
print(counts)
assert trainer.get_tagged_image_count(project.id) == 33 and min(counts.values()) >= 15

# %% [markdown]
# ## 4 · Train and test the model
# **Train** → **Quick Training**; then the Performance page's Precision, Recall and **mAP**.

# %%
import time

from tqdm.auto import tqdm

iteration = trainer.train_project(project.id)
with tqdm(desc="Quick Training the fruit detector (about a minute on 2 cores)", bar_format="{desc}: {elapsed}") as bar:
    while iteration.status not in ("Completed", "Failed"):
        time.sleep(1)
        iteration = trainer.get_iteration(project.id, iteration.id)
        bar.update()
assert iteration.status == "Completed", iteration.status
perf = trainer.get_iteration_performance(project.id, iteration.id, threshold=0.5, overlap_threshold=0.3)
print(f"precision {perf.precision:.0%} · recall {perf.recall:.0%} · mAP {perf.average_precision:.0%} "
      "(probability 50 %, overlap 30 %: the portal's defaults)")

# %% [markdown]
# ## 5 · Publish, and use the detector from a client application
# Publish as `fruit-detector` to the prediction resource; then the lab's `test-detector.py` sends `produce.jpg`
# to `detect_image` and draws every object above 50 % probability:

# %%
import matplotlib.pyplot as plt
from matplotlib.patches import Rectangle
from PIL import Image

trainer.publish_iteration(project.id, iteration.id, mslearn.DETECT_MODEL, svc.prediction_resource_id)
predictor = CustomVisionPredictionClient(svc.endpoint, ApiKeyCredentials(in_headers={"Prediction-key": svc.prediction_key}))
produce = mslearn.DETECTION / "produce.jpg"
results = predictor.detect_image(project.id, mslearn.DETECT_MODEL, produce.read_bytes())
found = [p for p in results.predictions if p.probability > 0.5]

image = Image.open(produce)
w, h = image.size
fig, ax = plt.subplots(figsize=(7, 5.25), dpi=110)
ax.imshow(image); ax.axis("off")
for p in found:
    b = p.bounding_box
    ax.add_patch(Rectangle((b.left * w, b.top * h), b.width * w, b.height * h, fill=False, color="magenta", lw=3))
    ax.annotate(f"{p.tag_name}: {p.probability:.0%}", (b.left * w, b.top * h), color="white", fontsize=11,
                backgroundcolor="magenta")
plt.show()
print("found:", ", ".join(f"{p.tag_name} {cv.pct(p.probability, 0)}" for p in sorted(found, key=lambda p: p.tag_name)))

# %%
kinds = {p.tag_name for p in found}
assert kinds == set(mslearn.TAGS), f"found {sorted(kinds)} above 50 %, not all three kinds of fruit"
print("all three kinds of fruit found in produce.jpg")

# %%
svc.stop()

# %% [markdown]
# **What carried over.** The portal's hand-labelling became the box labeler; everything else is the lab's own SDK
# code, unchanged, against the local endpoint. The regions you drew and the JSON's regions are the same record:
# left, top, width, height as fractions of the image, the convention notebook 02 compared with COCO and YOLO.
#
# **Next:** 09 · After Custom Vision (where these projects go when the service retires).
