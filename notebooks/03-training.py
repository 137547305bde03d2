# %% [markdown]
# # 03 · Training
#
# **What you will learn:** what Quick and Advanced training do and what the budget means, what an iteration is,
# which training requests the service refuses, and — with a learning curve — why a pretrained domain needs far
# fewer labelled images than a network trained from scratch.

# %%
from cvlab import curriculum as cv
P = cv.profile()            # CVLAB_PROFILE=fast (CI) or learner (default)
ws = cv.workspace()         # $CVLAB_WORKSPACE or ../workspace, shared by every notebook
print(P.name, "profile; workspace:", ws.path)

# %%
import os
from cvlab.errors import CvlabError
from cvlab.training import train_project

# In cvlab one budget hour of Advanced training lasts CVLAB_SECONDS_PER_BUDGET_HOUR seconds of lab time.
os.environ.setdefault("CVLAB_SECONDS_PER_BUDGET_HOUR", str(P.budget_seconds))
parts = cv.course_project(ws, "parts")      # made in notebook 02; created here if you skipped it
site = cv.course_project(ws, "site")
print({t.name: t.image_count for t in ws.get_tags(parts.id)})

# %% [markdown]
# ## 1 · Quick training
# **Quick** training (the API's `Regular`) keeps the pretrained backbone frozen and fits only a small head on its
# features: seconds, cheap, and often good enough. Each training run creates an **iteration** — a model of the
# project with its own performance figures.

# %%
quick = cv.trained_iteration(ws, parts)     # trains once (Quick, seeded), then reuses the iteration
print(quick.name, quick.status, quick.training_type, f"{quick.training_time_in_minutes} min")
assert quick.status == "Completed" and quick.training_type == "Regular"

# %% [markdown]
# Training again with nothing changed is refused (`BadRequestTrainingNotNeeded`); `force_train=True` overrides.

# %%
try:
    train_project(ws, parts.id, show_progress=False)
except CvlabError as err:
    print(err.code, "-", err.message)
    assert err.code == "BadRequestTrainingNotNeeded"

# %% [markdown]
# ## 2 · Advanced training and the budget
# **Advanced** training fine-tunes the whole network with augmentation, for as long as the budget allows
# (`reserved_budget_in_hours`). You are never charged beyond the budget, and a running training cannot be
# cancelled on Azure. A budget of 0 is refused:

# %%
try:
    train_project(ws, parts.id, training_type="Advanced", reserved_budget_in_hours=0, show_progress=False)
except CvlabError as err:
    print(err.code)
    assert err.code == "BadRequestReservedBudgetInHoursNotEnoughForAdvancedTraining"

# %%
advanced = next((it for it in ws.get_iterations(parts.id) if it.training_type == "Advanced"
                 and it.status == "Completed"), None)
if advanced is None:
    advanced = train_project(ws, parts.id, training_type="Advanced", reserved_budget_in_hours=1,
                             force_train=True, seed=cv.SEED, show_progress=False)
print(advanced.name, advanced.status, advanced.training_type, advanced.reserved_budget_in_hours, "budget hour(s)")
assert advanced.status == "Completed"

# %% [markdown]
# Every iteration keeps its own numbers (notebook 04 explains them):

# %%
import pandas as pd
from cvlab.metrics import json_number          # a metric can be undefined (e.g. no predictions): None
from cvlab.performance import get_iteration_performance

rows = []
for it in ws.get_iterations(parts.id):
    perf = get_iteration_performance(ws, parts.id, it.id)
    rows.append({"iteration": it.name, "type": it.training_type, "precision": json_number(perf.precision),
                 "recall": json_number(perf.recall), "AP": json_number(perf.average_precision)})
pd.DataFrame(rows).set_index("iteration").round(3)


# %% tags=["exercise"]
# Exercise: newer is not automatically better. Pick the parts iteration with the highest AP into best (use
# ws.get_iterations and get_iteration_performance; an undefined AP counts as 0) and print its name and type.
def ap(it):
    return json_number(get_iteration_performance(ws, parts.id, it.id).average_precision) or 0.0
best = max(ws.get_iterations(parts.id), key=ap)
print(best.name, best.training_type, round(ap(best), 3))

# %%
assert "best" in globals(), "fill in the exercise cell above, then run it"
assert json_number(get_iteration_performance(ws, parts.id, best.id).average_precision) == \
    max(r["AP"] or 0.0 for r in rows), "best must be the iteration with the highest AP in the table above"

# %% [markdown]
# ## 3 · Object detection trains the same way
# The detector (helmet / vest / person) uses a pretrained backbone too; Quick training fits its detection head.
# (The fast CI profile trains it with a short Advanced run instead, to stay within CI's time; see
# `cv.trained_iteration`.)

# %%
detector = cv.trained_iteration(ws, site)
print(detector.name, detector.status, detector.training_type, "for", site.name)
assert detector.status == "Completed"

# %% [markdown]
# ## 4 · Why a pretrained domain needs fewer images
# Same images, same test set: frozen **pretrained** EfficientNet-Lite0 features with a linear head (what Quick
# training does) against a small CNN that starts from **random weights**. With a handful of images per tag the
# pretrained model is already useful; the network trained from scratch has not learned to see yet.

# %%
import matplotlib.pyplot as plt

curve = cv.learning_curve()
ax = curve.plot(x="images_per_tag", y=["pretrained_f1", "scratch_f1"], marker="o", figsize=(6, 3.5))
ax.set_ylabel("macro-F1 on unseen images"); ax.set_ylim(0, 1); ax.grid(alpha=0.3)
plt.show()
curve

# %%
assert (curve.pretrained_f1 > curve.scratch_f1).all(), "pretrained features should win on small data"

# %% [markdown]
# **On Azure:** the **Train** button → *Quick training* or *Advanced training* (set the budget, optionally an
# e-mail when done). SDK:
# ```python
# iteration = trainer.train_project(project.id)                     # Quick
# iteration = trainer.train_project(project.id, training_type="Advanced", reserved_budget_in_hours=1)
# while iteration.status not in ("Completed", "Failed"):            # the quickstart only checks "Completed"
#     time.sleep(10); iteration = trainer.get_iteration(project.id, iteration.id)
# ```
# A project keeps at most 20 iterations; delete old ones to train more.
#
# **Exam traps**
# - Advanced needs a budget; Quick is the default (`Regular`).
# - More (varied) data beats more compute when the model is weak.
# - Performance numbers come from your training images (cross-validation), not from a test set you upload.

# %% [markdown]
# ## Quick check

# %%
cv.quiz("train-01", "train-02", "train-04", "train-05", "train-07", "train-10", ws=ws)
