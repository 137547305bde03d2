# %% [markdown]
# # 01 · Classification or detection?
#
# **What you will learn:** to read a scenario and pick the project type (classification or object detection), the
# classification type (multiclass or multilabel), and the service (Custom Vision, pre-built Azure AI Vision, or
# Azure Machine Learning). This is the first AI-102 custom-vision skill, and the most common exam trap.

# %%
from cvlab import curriculum as cv
P = cv.profile()            # CVLAB_PROFILE=fast (CI) or learner (default)
ws = cv.workspace()         # $CVLAB_WORKSPACE or ../workspace, shared by every notebook
print(P.name, "profile; workspace:", ws.path)

# %% [markdown]
# ## 1 · Two kinds of answer
# A **classifier** answers about the whole image (one tag, or several). A **detector** answers *where*: a box
# (left, top, width, height as fractions of the image) and a tag for every object. Here are both from cvlab's
# synthetic datasets.

# %%
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

# %% [markdown]
# ## 2 · Scenarios
# The table is built from cvlab's domain catalogue (the same ids and names Azure's `get_domains()` returns), so a
# domain named here really exists.

# %%
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

# %% tags=["exercise"]
# Exercise: a new scenario: "count the cars in every drone photo of a car park; the model runs on the drone,
# offline". Set drone_type to the project type it needs ("Classification" or "ObjectDetection") and
# drone_domain to a fitting domain found by name: find_domain(name, drone_type).
drone_type = "ObjectDetection"                                 # a count needs one box per car
drone_domain = find_domain("General (compact)", drone_type)    # on the drone = exported: a compact domain
print(drone_type, "|", drone_domain.name, "| exportable:", drone_domain.exportable)

# %%
assert "drone_domain" in globals(), "fill in the exercise cell above, then run it"
assert drone_domain.type == "ObjectDetection", "counting objects needs their locations: object detection"
assert drone_domain.exportable, "running on the drone means exporting the model: pick a compact domain"

# %% [markdown]
# ## 3 · The project type is fixed by the domain
# In cvlab, as in Azure, a project's type follows its domain. Creating a project is one call; notice that the
# detection project refuses a domain change to a classification domain.

# %%
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

# %% tags=["exercise"]
# Exercise: the X-ray scenario (several findings per image) needs a Multilabel classifier. Create a project
# named "xray-01" on the General classification domain (find_domain), with classification_type "Multilabel",
# keep it in xray and print its project and classification types.
xray = ws.find_project("xray-01") or ws.create_project(
    "xray-01", domain_id=find_domain("General", "Classification").id, classification_type="Multilabel")
print(xray.name, xray.project_type, xray.classification_type)

# %%
assert "xray" in globals(), "fill in the exercise cell above, then run it"
assert (xray.project_type, xray.classification_type) == ("Classification", "Multilabel"), \
    "pass classification_type='Multilabel' to create_project"
ws.delete_project(xray.id)   # tidy up: the course does not use it again

# %% [markdown]
# ## 4 · Which service?
# | Need | Service |
# |---|---|
# | Your own labels (defective, brand X, helmet) with little ML work | **Custom Vision** |
# | Generic, pre-built understanding: read text (OCR), tags, captions | **Azure AI Vision** (no training) |
# | Custom training loops, other losses, multi-modal or non-vision data, hyperparameter search | **Azure Machine Learning** |
# | Your own categories, described in words, no training images | **Azure Content Understanding** (generative; notebook 09) |
#
# Custom Vision and Image Analysis 4.0 (the pre-built Azure AI Vision API) are both supported until
# 25 September 2028; for training on your own images Microsoft points to Azure Machine Learning AutoML for
# images (https://learn.microsoft.com/azure/ai-services/custom-vision-service/migration-options).
#
# **On Azure:** portal → *Create a resource* → *Custom Vision*; then at customvision.ai → *New project* →
# *Classification* (Multiclass / Multilabel) or *Object Detection*, and a domain. SDK:
# `trainer.create_project(name, domain_id=..., classification_type="Multilabel")`.
#
# **Exam traps**
# - "Needs the location / a count of objects" → detection, even if the question talks about "classifying".
# - "Azure AI Vision" is the distractor whenever the labels are the customer's own.
# - Multiclass = exactly one tag; multilabel = zero or more. Negative images are for classifiers only.

# %% [markdown]
# ## Quick check

# %%
cv.quiz("choose-01", "choose-02", "choose-03", "choose-04", "choose-06", "choose-07", ws=ws)
