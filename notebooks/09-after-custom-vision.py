# %% [markdown]
# # 09 · After Custom Vision
#
# **What you will learn:** where Microsoft sends Custom Vision users, and how your projects travel there. You will
# write a cvlab project as **Azure Machine Learning AutoML for images** training data (JSONL + MLTable), check it
# against the schema Microsoft documents, export boxes as **COCO**, map each Custom Vision idea to its AutoML
# counterpart, and see what **Azure Content Understanding** asks for instead of training images. Nothing here
# calls Azure: every request is written out and shown, not sent.
#
# | | |
# |---|---|
# | **Custom Vision** | retired on **25 September 2028**; "calls made to the service will fail" after that. Microsoft fully supports existing customers until then. |
# | **Microsoft's options** | *Azure Machine Learning AutoML* (classification and detection models trained on your images), *Azure Content Understanding* (managed generative classification), and generative models in Azure AI Foundry. |
# | **AI-102** | retired on 30 June 2026; its successor AI-103 does not test Custom Vision. |
#
# Source: https://learn.microsoft.com/azure/ai-services/custom-vision-service/migration-options ("export your
# labeled datasets and model metadata from Custom Vision Service. Review the data formats required by your chosen
# alternative and convert as needed." That is this notebook.)

# %%
import json
import shutil

import pandas as pd

from cvlab import automl
from cvlab import curriculum as cv

P = cv.profile()
ws = cv.workspace()
parts, site = cv.course_project(ws, "parts"), cv.course_project(ws, "site")
out_root = ws.path / "exports" / "after-custom-vision"
shutil.rmtree(out_root, ignore_errors=True)          # a re-run writes fresh files
print(P.name, "profile; exports go to", out_root)

# %% [markdown]
# ## 1 · A classifier as AutoML training data
# AutoML for images reads labelled images as **JSON Lines**: one image per line, its `image_url` in an Azure ML
# datastore, optional `image_details`, and its `label`. A file of lines is wrapped in an **MLTable** that the job
# reads. (Microsoft: https://learn.microsoft.com/azure/machine-learning/reference-automl-images-schema and
# https://learn.microsoft.com/azure/machine-learning/how-to-prepare-datasets-for-automl-images.)

# %%
parts_export = automl.export_automl(ws, parts.id, out_root / "parts")
print(f"task: {parts_export.task} | {parts_export.train_lines} training lines, "
      f"{parts_export.validation_lines} validation lines (the held-out images) | skipped: {parts_export.skipped or 'none'}")
for path in sorted(p.relative_to(out_root) for p in (out_root / "parts").rglob("*") if p.is_file()
                   and p.parent.name != "images"):
    print("  ", path)
first = (out_root / "parts" / "training-mltable-folder" / "train_annotations.jsonl").read_text().splitlines()[0]
print("\nfirst line:", first)
print("\nMLTable:\n" + (out_root / "parts" / "training-mltable-folder" / "MLTable").read_text())

# %% [markdown]
# The image URLs name placeholders (`<subscription-id>`, `<resource-group>`, `<workspace>`) you would replace with
# your Azure ML workspace's; `images/` is the folder you would upload as a data asset.
#
# **In cvlab**: AutoML has no Negative tag. The export writes a multiclass project's Negative images as a class of
# their own (a model can only say "none of these" if it learned what that looks like), and a multilabel Negative
# image as an empty label list.

# %% [markdown]
# ### Checked against Microsoft's schema
# `cvlab/schemas/automl-images.schema.json` is written from that page, key by key (required `image_url` in an
# `azureml://` datastore, optional `image_details` with `format` among jpg/jpeg/png/jpe/jfif/bmp/tif/tiff, `label` a
# string for multiclass, a list for multilabel, boxes for detection). Every line we wrote passes, and a broken
# line says what is wrong:

# %%
problems = automl.validate_jsonl(parts_export.jsonl[0], parts_export.task)
print("problems:", problems or "none")
assert problems == []
broken = json.loads(first) | {"label": ["ok", "cracked"]}       # a multilabel label in a multiclass file
print("\n".join(automl.line_errors(broken, "image_classification")))

# %% [markdown]
# ## 2 · A detector: boxes as corners, and COCO
# Custom Vision stores a region as left, top, width, height; AutoML wants the two corners, `topX, topY` and
# `bottomX, bottomY`, still as fractions of the image.

# %%
site_export = automl.export_automl(ws, site.id, out_root / "site")
assert automl.validate_jsonl(site_export.jsonl[0], site_export.task) == []
image = next(im for im in ws.iter_images(site.id) if im.regions and im.metadata.get("holdout") != "true")
r = image.regions[0]
line = next(json.loads(x) for x in site_export.jsonl[0].read_text().splitlines()
            if len(json.loads(x)["label"]) == len(image.regions)
            and abs(json.loads(x)["label"][0]["topX"] - r.left) < 1e-6)
pd.DataFrame({"Custom Vision region": [r.tag_name, round(r.left, 3), round(r.top, 3), round(r.width, 3),
                                       round(r.height, 3)],
              "AutoML box": [line["label"][0]["label"], line["label"][0]["topX"], line["label"][0]["topY"],
                             line["label"][0]["bottomX"], line["label"][0]["bottomY"]]},
             index=["tag", "left / topX", "top / topY", "width / bottomX", "height / bottomY"])

# %% [markdown]
# Many other tools (and Microsoft's own `coco2jsonl.py` helper) start from **COCO**: pixel boxes `[x, y, w, h]`
# in one `annotations.json`. cvlab writes it with the same writer `cvlab data export` uses:

# %%
coco_dir = automl.export_coco(ws, site.id, out_root / "site-coco")
coco = json.loads((coco_dir / "annotations.json").read_text())
print(len(coco["images"]), "images,", len(coco["annotations"]), "boxes,",
      [c["name"] for c in coco["categories"]], "| first box (px):", coco["annotations"][0]["bbox"])

# %% tags=["exercise"]
# Exercise: count the boxes per tag in the detector's AutoML training file (site_export.jsonl[0]: one JSON object
# a line, boxes under "label") into boxes_per_tag ({tag: count}).
from collections import Counter

boxes_per_tag = Counter(box["label"] for text in site_export.jsonl[0].read_text().splitlines()
                        for box in json.loads(text)["label"])
print(dict(boxes_per_tag))

# %%
assert "boxes_per_tag" in globals(), "fill in the exercise cell above, then run it"
held_out = {im.id for im in ws.iter_images(site.id) if im.metadata.get("holdout") == "true"}
expected = Counter(r.tag_name for im in ws.iter_images(site.id) if im.id not in held_out for r in im.regions)
assert dict(boxes_per_tag) == dict(expected), f"expected {dict(expected)}: count every box of every line"

# %% [markdown]
# ## 3 · What would be sent
# Two Azure ML CLI v2 commands would upload the images and start training. cvlab wrote both files; here they are,
# not run:

# %%
print("$ az ml data create -f images-data-asset.yml   # in", out_root / "parts")
print((out_root / "parts" / "images-data-asset.yml").read_text())
print("$ az ml job create -f automl-job.yml")
print((out_root / "parts" / "automl-job.yml").read_text())

# %% [markdown]
# The job trains on **GPU** compute (NC or ND series), needs at least 10 images, and keeps 20 % of the training
# data for validation when you give it no validation set; ours passes the held-out images as `validation_data`.
# The primary metric is accuracy for multiclass, IoU for multilabel and mean average precision for detection
# (https://learn.microsoft.com/azure/machine-learning/how-to-auto-train-image-models).
#
# ## 4 · Custom Vision ideas, AutoML names

# %%
pd.set_option("display.max_colwidth", 90)
pd.DataFrame(automl.CONCEPTS, columns=["Custom Vision", "Azure ML AutoML for images", "note", "source"]) \
    .drop(columns="source").style.hide(axis="index")

# %% [markdown]
# ## 5 · Content Understanding: describe the categories, train nothing
# Content Understanding classifies with a generative model: you **describe** each category in words and it picks
# one. There are no training images, no iterations, no precision/recall page of your own; the quality comes from
# your descriptions (Microsoft's classifier page: "doesn't require any training dataset"). For images, a custom
# analyzer based on `prebuilt-image` holds a field with `"method": "classify"` and the allowed values in `enum`
# (https://learn.microsoft.com/azure/ai-services/content-understanding/concepts/analyzer-reference). This is the
# request that would create it:

# %% tags=["exercise"]
# Exercise: describe the three parts tags in words, as you would to a colleague who has never seen the line, in
# descriptions ({tag name: description}), and build the analyzer body with
# automl.content_understanding_analyzer(parts, descriptions) into analyzer.
descriptions = {"ok": "a clean grey metal part with smooth edges and no marks",
                "cracked": "a metal part with a thin dark crack line across it",
                "rusted": "a metal part with orange-brown rust patches"}
analyzer = automl.content_understanding_analyzer(parts, descriptions)

# %%
assert "analyzer" in globals(), "fill in the exercise cell above, then run it"
field = analyzer["fieldSchema"]["fields"]["Category"]
assert set(field["enum"]) == {t.name for t in ws.get_tags(parts.id) if t.type == "Regular"}, \
    "describe every regular tag of parts-quality (ok, cracked, rusted)"
print(f"PUT https://<endpoint>/contentunderstanding/analyzers/{analyzer['analyzerId']}"
      "?api-version=2025-11-01")
print("Ocp-Apim-Subscription-Key: <key>\nContent-Type: application/json\n")
print(json.dumps(analyzer, indent=2))

# %% [markdown]
# | | Custom Vision / AutoML | Content Understanding |
# |---|---|---|
# | What you provide | labelled images (at least 5-15 per tag) | a name and a description per category |
# | Training | yes: iterations (AutoML: GPU jobs) | none |
# | Boxes (detection) | yes | not documented for image analyzers (field grounding is documented for documents); use AutoML object detection |
# | Quality check | your own precision / recall / mAP | try it on your images; confidence scores per field |
# | Runs offline / at the edge | exported models (ONNX ...) | no: a cloud service |
#
# **Exam traps** (for the exams that still ask): Custom Vision's documented successor for *training on your own
# images* is AutoML for images; Content Understanding needs no training data; neither reads a Custom Vision
# export directly: the data is converted first, as here.
#
# ## Quick check

# %%
cv.quiz("choose-25", "choose-26", "exam-09", ws=ws)

# %% [markdown]
# **Next:** 10 · Lab: Classify images (Microsoft Learn).
