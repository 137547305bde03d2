# %% [markdown]
# # 06 · Export and the edge
#
# **What you will learn:** export an iteration to ONNX and TensorFlow Lite and run the files with their own
# runtimes, run the exported Docker app locally, check that every copy predicts like the cloud model (parity),
# and pick the right format for each target. Only iterations trained on a **compact** domain export.

# %%
from cvlab import curriculum as cv
P = cv.profile()            # CVLAB_PROFILE=fast (CI) or learner (default)
ws = cv.workspace()         # $CVLAB_WORKSPACE or ../workspace, shared by every notebook
print(P.name, "profile; workspace:", ws.path)

# %%
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

# %% [markdown]
# ## 1 · The compact-domain rule
# A project on a non-compact domain (General, Food, Retail, …) trains cloud-only iterations; export is refused.
# Switching the project to a compact domain is allowed, but only iterations trained *after* the switch export.

# %%
from cvlab.domains import get_domains
print("exportable (compact) domains:", [(d.type, d.name) for d in get_domains() if d.exportable])

# %% [markdown]
# Here is the refusal: the smallest trainable project on the non-compact **General** domain (2 tags, 5 images
# each, Quick training: seconds), then an export request, refused with `BadRequestExportValidationFailed`.

# %%
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


# %% [markdown]
# ## 2 · ONNX, run with onnxruntime

# %%
def unzip(record, name):
    assert record.status == "Done", record
    folder = ws.path / "exports" / name
    with zipfile.ZipFile(export_file(ws, Path(record.path).stem)) as zf:
        zf.extractall(folder)
    return folder

onnx_dir = unzip(export_iteration(ws, parts.id, iteration.id, "ONNX"), "onnx")
print(sorted(p.name for p in onnx_dir.iterdir()))
print(json.loads((onnx_dir / "cvexport.manifest").read_text()))

# %% [markdown]
# **Parity check:** the same held-out images through the in-process model (what the endpoint uses) and through
# the exported file must give the same probabilities.

# %%
predictor = Predictor.load(ws, iteration.id, backend="torch")
holdout = [im for im in ws.iter_images(parts.id) if im.metadata.get("holdout") == "true"]
batch = np.stack([predictor.preprocessing.array(ws.open_image(im)) for im in holdout])
expected = predictor.module(__import__("torch").from_numpy(batch)).detach().numpy()
onnx_probs = OnnxRunner(onnx_dir / "model.onnx")(batch)[0]
print("max |difference| ONNX vs model:", float(np.abs(onnx_probs - expected).max()))
assert np.abs(onnx_probs - expected).max() < 1e-4 and (onnx_probs.argmax(1) == expected.argmax(1)).all()

# %% [markdown]
# ## 3 · TensorFlow Lite, run with ai-edge-litert (Android / iOS)

# %%
tflite_dir = unzip(export_iteration(ws, parts.id, iteration.id, "TensorFlow", "TensorFlowLite"), "tflite")
tflite_probs = TFLiteRunner(tflite_dir / "model.tflite")(batch)[0]
print("max |difference| TFLite vs model:", float(np.abs(tflite_probs - expected).max()))
assert (tflite_probs.argmax(1) == expected.argmax(1)).all()

# %% tags=["exercise"]
# Exercise: phones prefer small files. Export the iteration again as TensorFlow Lite with the flavor
# "TensorFlowLiteFloat16" (weights stored in half precision; unzip it into a folder "tflite-fp16"), run it with
# TFLiteRunner on the same batch into fp16_probs, and compare its top tags and file size with the float export.
fp16_dir = unzip(export_iteration(ws, parts.id, iteration.id, "TensorFlow", "TensorFlowLiteFloat16"), "tflite-fp16")
fp16_probs = TFLiteRunner(fp16_dir / "model.tflite")(batch)[0]
sizes = [round((d / "model.tflite").stat().st_size / 1e6, 1) for d in (tflite_dir, fp16_dir)]
print("float vs fp16 file, MB:", sizes, "| same top tag on", int((fp16_probs.argmax(1) == expected.argmax(1)).sum()),
      "of", len(expected), "images | max |difference|:", float(np.abs(fp16_probs - expected).max()))

# %%
assert "fp16_probs" in globals(), "fill in the exercise cell above, then run it"
assert (fp16_probs.argmax(1) == expected.argmax(1)).all(), "fp16 weights should not change the top tag here"
assert np.abs(fp16_probs - expected).max() < 1e-2

# %% [markdown]
# TensorFlow Lite exports work for classification **and** detection; a third-party study guide says "object
# detection only", which Microsoft's export page does not.
#
# ## 4 · The Docker app, run locally — no keys
# The DockerFile export is a small web service holding the model (here: the TFLite file). It answers the same
# routes as the prediction endpoint, and it needs **no Azure keys** at run time: the model is inside. (A study
# guide's `docker run -e PredictionKey=...` example is unnecessary.) We start its `app.py` directly with this
# Python, which is what `docker build` + `docker run -p 80:80` would run.

# %%
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
print(f"container says: {best['tagName']} ({cv.pct(best['probability'])}) | truth: {holdout[0].tags[0].tag_name}")
assert best["tagName"] == predictor.tags[int(expected[0].argmax())]["name"]

# %% [markdown]
# ## 5 · Which format for which target?
# | Target | Export |
# |---|---|
# | Windows (Windows ML) or Linux edge devices | **ONNX** |
# | Android / iOS apps | **TensorFlow Lite** (iOS also **CoreML**) |
# | Your servers, Azure Container Instances, AKS, on-premises | **Docker** (Linux, Windows, ARM) |
# | Cameras and gateways managed from Azure | the Docker container as an **Azure IoT Edge** module |
#
# Keys: calls to the Azure prediction endpoint need a prediction key; an exported model or container runs
# without any.
#
# **On Azure:** *Performance* tab → **Export** → platform → **Download**. SDK:
# `trainer.export_iteration(project.id, iteration.id, "ONNX")`, then poll `trainer.get_exports(...)` until
# `status == "Done"` and download `download_uri`.
#
# **Exam traps**
# - Non-compact domain → no export button; retrain after switching to compact.
# - TFLite is for phones; ONNX for Windows/Linux edge; Docker for containers and IoT Edge.
# - The exported container needs no keys.

# %% [markdown]
# ## Quick check

# %%
cv.quiz("exp-01", "exp-02", "exp-04", "exp-05", "exp-06", "exp-09", ws=ws)
