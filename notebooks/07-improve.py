# %% [markdown]
# # 07 · Improve: predictions, uncertainty and the smart labeler
#
# **What you will learn:** keep the images your model sees in use (stored predictions), rank unlabelled images by
# how unsure the model is, label the most informative ones first (the smart labeler's idea), retrain, and compare
# iterations fairly.

# %%
from cvlab import curriculum as cv
P = cv.profile()            # CVLAB_PROFILE=fast (CI) or learner (default)
ws = cv.workspace()         # $CVLAB_WORKSPACE or ../workspace, shared by every notebook
print(P.name, "profile; workspace:", ws.path)

# %%
import io
import pandas as pd
from cvlab import active, datasets
from cvlab.metrics import json_number
from cvlab.performance import get_iteration_performance
from cvlab.predict import Predictor

parts = cv.course_project(ws, "parts")
quick_iterations = lambda: [it for it in ws.get_iterations(parts.id)  # noqa: E731 - creation order
                            if it.training_type == "Regular" and it.status == "Completed"]
# notebook 03's Quick iteration (not its Advanced one): this lesson retrains Quick, so it compares Quick with Quick
first = (quick_iterations() or [cv.trained_iteration(ws, parts)])[0]


# %% [markdown]
# ## 1 · New, unlabelled images arrive
# We add images the model has not seen, without tags — as if they came from the production line. (cvlab knows
# their true tags, so we can play the labeller below.)

# %%
def jpeg(rec):
    buf = io.BytesIO(); rec.load().save(buf, "JPEG"); return buf.getvalue()

new = list(datasets.iter_generate("parts", 2 * P.images_per_tag, seed=cv.SEED + 50, size=P.image_size))
truth = {r.name: r.tags[0] for r in new}
if not ws.get_image_count(parts.id, tagging_status="Untagged"):
    ws.create_images(parts.id, [__import__("cvlab").ImageEntry(data=jpeg(r), name=r.name) for r in new])
untagged = ws.get_images(parts.id, tagging_status="Untagged", take=256)
print(len(untagged), "untagged images")

# %% [markdown]
# ## 2 · Stored predictions
# Each prediction made *with storage* keeps the image for 30 days (the portal's **Predictions** tab), where you
# can tag it and add it to the training set.

# %%
predictor = Predictor.load(ws, first.id)
for im in untagged[:3]:
    ws.store_prediction(parts.id, first.id, ws.read_image_bytes(im), predictor.predict(ws.open_image(im)),
                        application="line-camera")
stored = ws.query_predictions(parts.id, application="line-camera")
top = max(stored[0].predictions, key=lambda p: p["probability"])
print(f"{len(stored)} stored predictions; the first says {top['tag_name']!r} at {cv.pct(top['probability'])}")
assert len(stored) >= 3

# %% [markdown]
# ## 3 · Rank by uncertainty
# For a multiclass model, uncertainty = 1 − (p₁ − p₂): an image the model hesitates on between two tags is the
# one worth a human's time. This is what the smart labeler sorts by.

# %%
suggestions = []
for start in range(0, len(untagged), 64):
    ids = [im.id for im in untagged[start:start + 64]]
    suggestions += active.suggest_tags_and_regions(ws, parts.id, first.id, ids)
ranked = active.rank_by_uncertainty(suggestions, lambda s: s.prediction_uncertainty)
table = pd.DataFrame([{"image": s.image.original_name, "uncertainty": s.prediction_uncertainty,
                       "suggested": max(s.predictions, key=lambda p: p["probability"])["tag_name"],
                       "truth": truth.get(s.image.original_name)} for s in ranked])
assert table.uncertainty.is_monotonic_decreasing
table.head(8).style.format({"uncertainty": "{:.1%}"})

# %% [markdown]
# ## 4 · Label the most uncertain half, retrain, compare
# We "label" the top half of the ranking with the true tags, then train a new iteration.

# %%
tags = {t.name: t.id for t in ws.get_tags(parts.id)}
chosen = ranked[: len(ranked) // 2]
ws.create_image_tags(parts.id, [(s.id, tags[truth[s.image.original_name]]) for s in chosen])
if len(quick_iterations()) < 2:             # a re-run reuses the retrained iteration
    from cvlab.training import train_project
    train_project(ws, parts.id, seed=cv.SEED)
second = quick_iterations()[-1]
rows = []
for it in (first, second):   # both Quick, both scored on the same held-out images at threshold 0.5
    p = get_iteration_performance(ws, parts.id, it.id, split="holdout")
    rows.append({"iteration": it.name, "type": it.training_type,
                 "trained on (images)": get_iteration_performance(ws, parts.id, it.id).image_count,
                 "held-out images": p.image_count, "held-out precision": json_number(p.precision),
                 "held-out recall": json_number(p.recall)})
assert rows[0]["held-out images"] == rows[1]["held-out images"] and first.training_type == second.training_type
(pd.DataFrame(rows).set_index("iteration")
 .style.format("{:.1%}", subset=["held-out precision", "held-out recall"], na_rep="—"))

# %% [markdown]
# Every training run adds an iteration to the project (at most 20 are kept):

# %%
parts_iterations = len(ws.get_iterations(parts.id))
print(f"{parts.name} now has {parts_iterations} iterations:", ", ".join(it.name for it in ws.get_iterations(parts.id)))

# %% [markdown]
# Compare iterations on the **same** held-out images and thresholds; newer is not automatically better.
# The comparison widget puts two iterations side by side:

# %%
from cvlab.widgets import compare_iterations
compare_iterations(parts, first, second, ws=ws)

# %% [markdown]
# ## 5 · Does choosing by uncertainty matter? A small learning curve
# Start two copies of a project from 5 labelled images per tag. Each round, one copy labels the images the smart
# labeler suggests first (`query_suggested_images`: most uncertain, spread out so a batch is not ten near-copies),
# the other labels as many random images; both retrain and are scored on the same held-out images.
# `benchmarks/active_learning.py` runs the full-size version over several seeds: the gap is a few F1 points at
# best, and one seed can go either way, so read a single small curve as an illustration, not a proof.
#
# For object detection the smart labeler ranks images by how many objects the model clearly sees in them (the
# summed *squared* box probabilities), most first: a detector learns from boxes, and a frame with nobody in it
# teaches it nothing. Squaring keeps six faint false positives on scaffolding (6 x 0.3² = 0.54) below one clear
# worker (0.9² = 0.81). On footage that is mostly empty frames this beats random picking by 3-5 mAP points per
# round; when every frame holds workers it ties, because the detector learns the `site` scenes from about 30
# images, whichever they are (`benchmarks/active_learning.md`).

# %%
import matplotlib.pyplot as plt
from cvlab.experiments import active_learning

size = dict(rounds=2, per_round=4, pool_size=16, test_size=24) if P.name == "fast" else \
    dict(rounds=3, per_round=10, pool_size=60, test_size=40)
# in cvlab: computed once per workspace and kept (cv.cached); recompute=True computes it again
curve = cv.cached("smart-labeler-curve", dict(size, seed=cv.SEED, image_size=P.image_size),
                  lambda: active_learning.learning_curve("parts", seeds=(cv.SEED,), image_size=P.image_size,
                                                         backend="torch", **size), ws=ws)
fig, ax = plt.subplots(figsize=(5, 3))
for strategy, c in curve["curves"].items():
    ax.plot(c["labelled"], c["mean"], marker="o", label=strategy)
ax.set(xlabel="labelled images", ylabel="F1 on the same held-out images, threshold 50 %", ylim=(0, 1),
       title="Smart labeler order vs random order")
ax.legend(title="next images chosen"); ax.grid(alpha=0.3)
print("held-out F1, uncertainty minus random, per round:",
      ", ".join("n/a" if d is None else f"{d * 100:+.1f} points" for d in curve["uncertainty_minus_random"]))
assert curve["curves"]["uncertainty"]["mean"][0] == curve["curves"]["random"]["mean"][0]  # same start

# %% [markdown]
# ## 6 · From a stored prediction to a training image, in one call
# A stored prediction joins the training images with corrected tags (or boxes) in one call:
# `active.add_predictions_to_training`, Azure's `create_images_from_predictions`. The image must be new to the
# project: the untagged images above are already in it, so adding their predictions would be refused as
# `OKDuplicate`. So a fresh picture from the line (a new one each time you run the cell):

# %%
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

# %% [markdown]
# The quick test widget does the same without code: `parts.quick_test()` → test an image (upload or pick a
# sample) → open **Add to training** → correct the tag(s), or for a detector the boxes → click **Add to
# training**. Train again to use the new images.

# %% tags=["exercise"]
# Exercise: the Predictions tab filters by tag and probability. Query the stored "line-camera" predictions in
# which the model gave "rusted" a probability of at least 0.5 (ws.query_predictions(..., tags=[{"id": <tag id>,
# "min_threshold": 0.5}])) into rusty.
rusted_id = next(t.id for t in ws.get_tags(parts.id) if t.name == "rusted")
rusty = ws.query_predictions(parts.id, application="line-camera", tags=[{"id": rusted_id, "min_threshold": 0.5}])
print(len(rusty), "of", len(ws.query_predictions(parts.id, application="line-camera")), "stored predictions")

# %%
assert "rusty" in globals(), "fill in the exercise cell above, then run it"
p_rusted = lambda s: max([p["probability"] for p in s.predictions if p["tag_name"] == "rusted"], default=0.0)
wanted = {s.id for s in ws.query_predictions(parts.id, application="line-camera") if p_rusted(s) >= 0.5}
assert {s.id for s in rusty} == wanted, "filter on the rusted tag's id with min_threshold 0.5"

# %% [markdown]
# **On Azure:** *Predictions* tab (stored images, tag them, *Save and close*); *Untagged* images → **Get
# suggested tags** (the smart labeler uses the latest iteration; only for tags it was trained on; billed like
# predictions). SDK: `suggest_tags_and_regions`, `query_suggested_images`, `create_images_from_predictions`.
#
# **Exam traps**
# - Smart labeler suggests only tags the iteration already knows.
# - Stored predictions last 30 days; `*_with_no_store` calls keep nothing.
# - Variety and balance help; duplicates do not.

# %% [markdown]
# ## Quick check

# %%
cv.quiz("imp-01", "imp-02", "imp-03", "imp-04", "imp-05", "imp-08", ws=ws,
        facts={"parts_iterations": parts_iterations})
