# %% [markdown]
# # 05 · Publish and consume
#
# **What you will learn:** publish an iteration to a prediction resource, start the local endpoint, and call it
# three ways — the official Azure SDK (first exactly as the study guide's snippet, then as SDK 3.x needs it),
# plain REST with `requests`, and `curl`. Then: training vs prediction keys, what happens before publishing or
# with a wrong key, and the F0 / S0 quotas.

# %%
from cvlab import curriculum as cv
P = cv.profile()            # CVLAB_PROFILE=fast (CI) or learner (default)
ws = cv.workspace()         # $CVLAB_WORKSPACE or ../workspace, shared by every notebook
print(P.name, "profile; workspace:", ws.path)

# %%
parts = cv.course_project(ws, "parts")
iteration = cv.trained_iteration(ws, parts)
from cvlab.service.server import start_background
svc = start_background(ws)              # a free port on 127.0.0.1, in a background thread
print("endpoint:", svc.endpoint)
print("prediction resource id:", svc.prediction_resource_id)

# %% [markdown]
# On Azure you would read the endpoint and keys from the resource's **Keys and Endpoint** page. A training
# resource and a prediction resource each have their own keys; the local endpoint serves both APIs, with a
# training key and a prediction key.
#
# ## 1 · Before publishing
# The prediction API only serves **published** iterations, by their publish name:

# %%
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

# %% [markdown]
# ## 2 · Publish (Training API, training key)

# %%
trainer = CustomVisionTrainingClient(svc.endpoint, ApiKeyCredentials(in_headers={"Training-key": svc.training_key}))
PUBLISH_NAME = "parts-v1"
if trainer.get_iteration(parts.id, iteration.id).publish_name != PUBLISH_NAME:
    trainer.publish_iteration(parts.id, iteration.id, PUBLISH_NAME, svc.prediction_resource_id, overwrite=True)
print(trainer.get_iteration(parts.id, iteration.id).publish_name)

# %% [markdown]
# ### Quick Test, as on the portal
# Before any code calls the endpoint, the portal's **Quick Test** tries an iteration on one image. The widget
# does the same: upload a picture of your own, or pick one of the held-out samples; it shows the probability of
# every tag, marks those above the threshold, and stores the test like the portal does (it appears in
# *Predictions*, notebook 07). **Add to training** turns a corrected test image into a training image.

# %%
from cvlab.widgets import quick_test

held_out = [im for im in ws.iter_images(parts.id) if im.metadata.get("holdout") == "true"][:6]
quick_test(parts, iteration, ws=ws, samples=held_out)

# %% [markdown]
# ## 3 · The study guide's snippet, as written
# It passes the key first and the endpoint second. That was the 1.x SDK's order; SDK 3.x expects
# `(endpoint, credentials)`, so the snippet fails before any request leaves your machine:

# %%
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

# %% [markdown]
# Fixed for SDK 3.x — endpoint first, the key inside `ApiKeyCredentials`:

# %% tags=["exercise"]
# Exercise: build a CustomVisionPredictionClient the SDK 3.x way (endpoint first, the prediction key inside
# ApiKeyCredentials), classify test_jpg with the published iteration PUBLISH_NAME, and print every tag's probability.
predictor = CustomVisionPredictionClient(svc.endpoint, ApiKeyCredentials(in_headers={"Prediction-key": svc.prediction_key}))
with open(test_jpg, "rb") as image:
    results = predictor.classify_image(parts.id, PUBLISH_NAME, image.read())
for p in results.predictions:
    print(f"{p.tag_name:9s} {p.probability:.2%}")
print("truth:", truth)
assert len(results.predictions) == len(ws.get_tags(parts.id))   # every tag comes back: filter on your side

# %% [markdown]
# Each `classify_image` call is also **stored** (the portal's *Predictions* tab, notebook 07), so it can be tagged
# and added to training later. The `*_with_no_store` variants keep nothing.

# %%
stored_before = len(ws.query_predictions(parts.id, max_count=100_000))
print(stored_before, "stored predictions so far")

# %% tags=["exercise"]
# Exercise: classify test_jpg again with your SDK 3.x client, but this time with the call that stores nothing
# (classify_image_with_no_store); keep the result in nostore_results and print the top tag.
with open(test_jpg, "rb") as image:
    nostore_results = predictor.classify_image_with_no_store(parts.id, PUBLISH_NAME, image.read())
top = max(nostore_results.predictions, key=lambda p: p.probability)
print(top.tag_name, f"{top.probability:.2%}")

# %%
assert "nostore_results" in globals(), "fill in the exercise cell above, then run it"
assert len(nostore_results.predictions) == len(ws.get_tags(parts.id))
assert len(ws.query_predictions(parts.id, max_count=100_000)) == stored_before, "use classify_image_with_no_store"

# %% [markdown]
# ## 4 · Plain REST, then curl

# %%
import requests
url = f"{svc.endpoint}/customvision/v3.0/Prediction/{parts.id}/classify/iterations/{PUBLISH_NAME}/image"
r = requests.post(url, headers={"Prediction-Key": svc.prediction_key, "Content-Type": "application/octet-stream"},
                  data=open(test_jpg, "rb").read(), timeout=60)
print(r.status_code, ", ".join(f"{p['tagName']} {cv.pct(p['probability'])}" for p in r.json()["predictions"]))
assert r.status_code == 200

# %%
import shutil, subprocess
cmd = ["curl", "-s", "-X", "POST", url, "-H", "Prediction-Key: " + svc.prediction_key,
       "-H", "Content-Type: application/octet-stream", "--data-binary", "@" + test_jpg]
print(" ".join(cmd).replace(svc.prediction_key, "<prediction-key>"))
if shutil.which("curl"):
    print(subprocess.run(cmd, capture_output=True, text=True, timeout=60).stdout[:300])

# %% [markdown]
# ## 5 · Wrong keys
# A wrong key — or the *training* key on the prediction API — is refused with **401 Access Denied**, exactly the
# message the SDK prints against Azure:

# %%
for label, key in [("wrong key", "0" * 32), ("training key", svc.training_key)]:
    bad = CustomVisionPredictionClient(svc.endpoint, ApiKeyCredentials(in_headers={"Prediction-key": key}))
    try:
        bad.classify_image(parts.id, PUBLISH_NAME, open(test_jpg, "rb").read())
    except Exception as err:
        print(f"{label}: {err.response.status_code} {err}")
        assert err.response.status_code == 401

# %% [markdown]
# ## 6 · F0 vs S0
# The workspace's tier applies Microsoft's documented limits. On F0 a third project is refused:

# %%
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

# %%
svc.stop()

# %% [markdown]
# **On Azure:** *Performance* tab → **Publish** → a name and the prediction resource; then *Prediction URL*
# shows the exact routes and the `Prediction-Key` header. SDK: `trainer.publish_iteration(project_id,
# iteration_id, publish_name, prediction_resource_id)` — the last argument is the resource's ARM id.
#
# **Exam traps**
# - Predicting before publishing fails; publishing needs the *prediction* resource's id.
# - Prediction calls use the prediction key; the training key is for the Training API.
# - Documented S0: 100 projects, 100,000 images per project, unlimited predictions (not "1M / 10M" as some
#   guides say). F0: 2 projects, 5,000 images, 10,000 predictions a month.

# %% [markdown]
# ## Quick check

# %%
cv.quiz("pub-01", "pub-02", "pub-03", "pub-05", "pub-06", "pub-09", ws=ws)
