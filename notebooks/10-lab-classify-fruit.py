# %% [markdown]
# # 10 · Lab: Classify images (Microsoft Learn), offline
#
# **What you will do:** Microsoft Learn's *Classify images* lab, step by step and in its order, on the lab's own
# photos of apples, bananas and oranges: create the **Classify Fruit** project (Multiclass, Food domain), upload and
# tag 15 photos per fruit, train with Quick Training, read Precision / Recall / AP, quick-test, find the Project
# Id, add more images and retrain through the training API (the lab's `train-classifier.py`), publish as
# `fruit-classifier`, and classify the three test photos with the prediction API (the lab's `test-classifier.py`).
#
# Lab: https://github.com/MicrosoftLearning/mslearn-ai-vision, `Instructions/Labs/04-image-classification.md`
# (photos MIT-licensed, shipped in `data/mslearn-fruit/`). Microsoft marks the Custom Vision labs deprecated; the
# service is supported until 25 September 2028.
#
# **In cvlab** the Azure resources are one local endpoint with a training key and a prediction key; every step
# below is the official `azure-cognitiveservices-vision-customvision` SDK calling it, exactly as the lab's
# scripts call Azure. The portal steps (upload, tag, train, quick test) are SDK calls here.

# %%
from cvlab import curriculum as cv
from cvlab import mslearn

P = cv.profile()
ws = cv.workspace()
print(P.name, "profile; workspace:", ws.path)

# %% [markdown]
# ## 1 · Create Custom Vision resources
# The lab creates a *training* and a *prediction* resource in the Azure portal, each with its endpoint and keys.
# In cvlab, `start_background` runs the local endpoint with both keys (and the prediction resource's id, which
# publishing needs).

# %%
from azure.cognitiveservices.vision.customvision.prediction import CustomVisionPredictionClient
from azure.cognitiveservices.vision.customvision.training import CustomVisionTrainingClient
from azure.cognitiveservices.vision.customvision.training.models import ImageFileCreateBatch, ImageFileCreateEntry
from msrest.authentication import ApiKeyCredentials

from cvlab.service.server import start_background

svc = start_background(ws)
training_endpoint, training_key = svc.endpoint, svc.training_key
prediction_endpoint, prediction_key = svc.endpoint, svc.prediction_key
trainer = CustomVisionTrainingClient(training_endpoint, ApiKeyCredentials(in_headers={"Training-key": training_key}))
print("endpoint:", training_endpoint, "| prediction resource:", svc.prediction_resource_id)

# %% [markdown]
# ## 2 · Create a Custom Vision project
# The lab's settings: Name `Classify Fruit`, Description `Image classification for fruit`, Project Types
# Classification, Classification Types Multiclass (single tag per image), Domains **Food**. (A project of the same
# name left by an earlier run of this notebook is removed first, so the lab starts clean.)

# %%
for old in trainer.get_projects():
    if old.name == mslearn.CLASSIFY_PROJECT:
        for it in trainer.get_iterations(old.id):
            if it.publish_name:
                trainer.unpublish_iteration(old.id, it.id)
        trainer.delete_project(old.id)

food = next(d for d in trainer.get_domains() if d.type == "Classification" and d.name == "Food")
project = trainer.create_project(mslearn.CLASSIFY_PROJECT, description="Image classification for fruit",
                                 domain_id=food.id, classification_type="Multiclass")
print(project.name, "|", food.name, "domain |", project.settings.classification_type)

# %% [markdown]
# ## 3 · Upload and tag images
# In the portal: **Add images**, pick every file of `training-images/apple`, type the tag `apple`, upload; then the
# same for banana and orange. With the SDK that is one tag and one batch of files per folder:

# %%
folder = mslearn.CLASSIFICATION / "training-images"


def upload(folder, tag):
    """Every photo in `folder` as one batch, tagged `tag` (the portal's Add images + My Tags)."""
    entries = [ImageFileCreateEntry(name=f.name, contents=f.read_bytes(), tag_ids=[tag.id])
               for f in sorted(folder.glob("*.jpg"))]
    result = trainer.create_images_from_files(project.id, ImageFileCreateBatch(images=entries))
    assert result.is_batch_successful, [i.status for i in result.images]
    return len(entries)


apple = trainer.create_tag(project.id, "apple")
print("apple:", upload(folder / "apple", apple), "images")

# %% tags=["exercise"]
# Exercise: upload the banana and orange photos the same way: create each tag, then upload() its folder.
banana = trainer.create_tag(project.id, "banana")
orange = trainer.create_tag(project.id, "orange")
for tag in (banana, orange):
    print(f"{tag.name}:", upload(folder / tag.name, tag), "images")

# %%
counts = {t.name: t.image_count for t in trainer.get_tags(project.id)}
assert set(counts) == set(mslearn.TAGS), "create the banana and orange tags in the exercise cell above"
assert all(n == 15 for n in counts.values()), f"upload each folder once (15 photos per fruit): {counts}"
print(counts)

# %% [markdown]
# ## 4 · Train a model
# **Train** → **Quick Training**, then wait for the iteration. The lab's scripts poll `get_iteration` until the
# status is `Completed`; a progress bar says what is happening meanwhile.

# %%
import time

from tqdm.auto import tqdm


def train_and_wait(project_id):
    """Start Quick Training and poll the iteration until it is Completed or Failed (the lab's Train_Model)."""
    iteration = trainer.train_project(project_id)
    with tqdm(desc="Quick Training on the fruit photos (about 10-60 s here)", bar_format="{desc}: {elapsed}") as bar:
        while iteration.status not in ("Completed", "Failed"):
            time.sleep(1)
            iteration = trainer.get_iteration(project_id, iteration.id)
            bar.update()
    assert iteration.status == "Completed", iteration.status
    return iteration


iteration = train_and_wait(project.id)
print(iteration.name, iteration.status)

# %% [markdown]
# Review **Precision**, **Recall** and **AP** at the default 50 % probability threshold (the lab: "should all be
# high"):

# %%
perf = trainer.get_iteration_performance(project.id, iteration.id, threshold=0.5)
print(f"precision {perf.precision:.0%} · recall {perf.recall:.0%} · AP {perf.average_precision:.0%}")
for tag in perf.per_tag_performance:
    print(f"  {tag.name:7s} precision {tag.precision:.0%}  recall {tag.recall:.0%}  AP {tag.average_precision:.0%}")

# %% [markdown]
# ## 5 · Test the model (Quick Test)
# The lab pastes `https://aka.ms/test-apple` into **Quick Test**. cvlab is offline, so the same three test photos
# are sent as files (`quick_test_image`; `quick_test_url` works the same on a URL the endpoint can reach).

# %%
tests = mslearn.CLASSIFICATION / "test-images"
for name, truth in mslearn.CLASSIFICATION_TESTS.items():
    result = trainer.quick_test_image(project.id, (tests / name).read_bytes(), iteration_id=iteration.id)
    best = max(result.predictions, key=lambda p: p.probability)
    print(f"{name}: {best.tag_name} {best.probability:.1%} (shows {truth})")

# %% [markdown]
# ## 6 · View the project settings
# The settings page shows the **Project Id** that every API call names:

# %%
print("Project Id:", project.id)

# %% [markdown]
# ## 7 · Use the training API: more images, a new iteration
# The lab's `train-classifier.py` uploads `more-training-images/` (2 photos per fruit), one
# `create_images_from_data` call per photo with the tag of its folder, then trains again:

# %%
more = mslearn.CLASSIFICATION / "more-training-images"
for tag in trainer.get_tags(project.id):
    for image in sorted((more / tag.name).glob("*.jpg")):
        trainer.create_images_from_data(project.id, image.read_bytes(), [tag.id])
print({t.name: t.image_count for t in trainer.get_tags(project.id)})
iteration = train_and_wait(project.id)
print("new iteration:", iteration.name, "| iterations:", len(trainer.get_iterations(project.id)))

# %% [markdown]
# ## 8 · Publish the model
# **Publish** with Model name `fruit-classifier` and the *prediction* resource (not the training one):

# %%
trainer.publish_iteration(project.id, iteration.id, mslearn.CLASSIFY_MODEL, svc.prediction_resource_id)
print(trainer.get_iteration(project.id, iteration.id).publish_name)

# %% [markdown]
# ## 9 · Use the image classifier from a client application
# The lab's `test-classifier.py`: a `CustomVisionPredictionClient` with the prediction endpoint and key classifies
# every photo in `test-images/` and prints the tags above 50 %.

# %% tags=["exercise"]
# Exercise: write test-classifier.py's loop. Build the prediction client (endpoint first, the key inside
# ApiKeyCredentials), classify each photo of `tests` with classify_image(project.id, "fruit-classifier", data),
# keep each photo's best tag in answers ({file name: tag name}) and print the tags above 50 %.
predictor = CustomVisionPredictionClient(prediction_endpoint,
                                         ApiKeyCredentials(in_headers={"Prediction-key": prediction_key}))
answers = {}
for name in mslearn.CLASSIFICATION_TESTS:
    results = predictor.classify_image(project.id, mslearn.CLASSIFY_MODEL, (tests / name).read_bytes())
    answers[name] = max(results.predictions, key=lambda p: p.probability).tag_name
    print(name, [f"{p.tag_name} {p.probability:.1%}" for p in results.predictions if p.probability > 0.5])

# %%
assert "answers" in globals(), "fill in the exercise cell above, then run it"
wrong = {n: a for n, a in answers.items() if a != mslearn.CLASSIFICATION_TESTS[n]}
print("all three test photos right" if not wrong else f"wrong: {wrong}")
assert not wrong

# %%
svc.stop()

# %% [markdown]
# **What carried over, what did not.** Everything the lab's scripts do ran unchanged against cvlab's endpoint:
# the same SDK, methods, arguments and statuses. What differs is only *where*: no Azure resources, no
# `https://aka.ms/test-*` URLs (offline), and training that takes seconds on your CPU (**in cvlab** the Food domain
# starts from the same ImageNet weights as General; Azure trains its Food domain on food photos).
#
# **Next:** 11 · Lab: Detect objects in images.
