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
# features: cheap, and often good enough. Each training run creates an **iteration** — a model of the
# project with its own performance figures. (In cvlab the bar under the cell says what training is doing; this one
# takes about half a minute on 2 cores, the first time: the backbone's features are kept for later runs.)

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

# %% [markdown]
# In cvlab one budget hour lasts `CVLAB_SECONDS_PER_BUDGET_HOUR` seconds of lab time (20 s in this course's learner
# profile), so the one-hour run below takes about 20 seconds; on Azure it would take up to an hour.

# %%
advanced = next((it for it in ws.get_iterations(parts.id) if it.training_type == "Advanced"
                 and it.status == "Completed"), None)
if advanced is None:
    advanced = train_project(ws, parts.id, training_type="Advanced", reserved_budget_in_hours=1,
                             force_train=True, seed=cv.SEED)
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
# each measured Azure's way, on its own training images (Quick: 5-fold cross-validation; Advanced: a validation split)
pd.DataFrame(rows).set_index("iteration").style.format("{:.1%}", subset=["precision", "recall", "AP"], na_rep="—")


# %% tags=["exercise"]
# Exercise: newer is not automatically better. Pick the parts iteration with the highest AP into best (use
# ws.get_iterations and get_iteration_performance; an undefined AP counts as 0) and print its name and type.
def ap(it):
    return json_number(get_iteration_performance(ws, parts.id, it.id).average_precision) or 0.0
best = max(ws.get_iterations(parts.id), key=ap)
print(best.name, best.training_type, "AP", cv.pct(ap(best)))

# %%
assert "best" in globals(), "fill in the exercise cell above, then run it"
assert json_number(get_iteration_performance(ws, parts.id, best.id).average_precision) == \
    max(r["AP"] or 0.0 for r in rows), "best must be the iteration with the highest AP in the table above"

# %% [markdown]
# ## 3 · Object detection trains the same way
# The detector (helmet / vest / person) uses a pretrained backbone too; Quick training fits its detection head.
# In cvlab, the learner profile fixes Quick detection at 20 epochs (the domain's recipe trains 30) so this
# takes about half a minute on 2 cores; the fast CI profile trains it with a short Advanced run instead.

# %%
detector = cv.trained_iteration(ws, site)
print(detector.name, detector.status, detector.training_type, "for", site.name)
assert detector.status == "Completed"

# %% [markdown]
# ## 4 · Why a pretrained domain needs fewer images
# Same images, same test set: frozen **pretrained** EfficientNet-Lite0 features with a linear head (what Quick
# training does) against a small CNN that starts from **random weights**. With a handful of images per tag the
# pretrained model is already useful; the network trained from scratch has not learned to see yet.
#
# In cvlab the from-scratch CNN reads 96-px copies of the pictures (a network this small gains nothing from more)
# and the curve is computed once per workspace, then kept: a re-run shows the kept result at once.
# `cv.learning_curve(recompute=True)` computes it again.

# %%
import matplotlib.pyplot as plt

curve = cv.learning_curve()
fig, ax = plt.subplots(figsize=(6, 3.6))
ax.plot(curve.images_per_tag, curve.pretrained_f1, marker="o", label="pretrained backbone (Quick training)")
ax.plot(curve.images_per_tag, curve.scratch_f1, marker="s", label="small CNN trained from scratch")
ax.set(xlabel="labelled images per tag", ylabel="macro-F1 on the same unseen images", ylim=(0, 1),
       xticks=list(curve.images_per_tag), title="Learning curve: same images, same test set")
ax.grid(alpha=0.3); ax.legend(loc="lower right")
plt.show()
(curve.rename(columns=cv.CURVE_COLUMNS).set_index("images per tag")
 .style.format({"pretrained (Quick training)": "{:.0%}", "from scratch": "{:.0%}",
                "seconds, pretrained": "{:.0f} s", "seconds, from scratch": "{:.0f} s"}))

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
