# %% [markdown]
# # 04 · Evaluating
#
# **What you will learn:** what precision, recall, F1, AP and mAP measure, how the **probability threshold** and
# (for detectors) the **overlap threshold** change them, which one to favour when errors have different costs,
# and why Azure's self-test numbers should be checked on held-out images.

# %%
from cvlab import curriculum as cv
P = cv.profile()            # CVLAB_PROFILE=fast (CI) or learner (default)
ws = cv.workspace()         # $CVLAB_WORKSPACE or ../workspace, shared by every notebook
print(P.name, "profile; workspace:", ws.path)

# %%
import pandas as pd
from cvlab import metrics
from cvlab.performance import get_iteration_performance, compare_splits, load_evaluation_dict

parts, site = cv.course_project(ws, "parts"), cv.course_project(ws, "site")
# the Quick iteration: its numbers come from k-fold cross-validation over every training image
parts_it = next((it for it in ws.get_iterations(parts.id) if it.training_type == "Regular"
                 and it.status == "Completed"), None) or cv.trained_iteration(ws, parts)
site_it = cv.trained_iteration(ws, site)
perf = get_iteration_performance(ws, parts.id, parts_it.id, threshold=0.5)
print(f"{parts.name}, {parts_it.name} (Quick), probability threshold 50 %: precision {cv.pct(perf.precision)}, "
      f"recall {cv.pct(perf.recall)}, AP {cv.pct(perf.average_precision)}")
perf                        # the Performance tab's per-tag table

# %% [markdown]
# ## 1 · The definitions, by hand
# - **Precision** = TP / (TP + FP): of what the model called *rusted*, how much was rusted.
# - **Recall** = TP / (TP + FN): of the rusted parts, how many it found.
# - **F1** = the harmonic mean of the two; **AP** = the area under a tag's precision–recall curve (all
#   thresholds at once); **mAP** = the mean AP over tags.
#
# The table's counts reproduce its percentages:

# %%
for t in perf.per_tag_performance:
    by_hand = metrics.prf_from_counts(t.true_positives, t.false_positives, t.false_negatives)
    print(f"{t.name:9s} TP={t.true_positives:2d} FP={t.false_positives:2d} FN={t.false_negatives:2d}  "
          f"precision={cv.pct(by_hand.precision)}  recall={cv.pct(by_hand.recall)}")
    assert metrics.json_number(by_hand.recall) == metrics.json_number(t.recall)

# %% [markdown]
# ## 2 · The probability threshold
# A prediction counts as positive only at or above the threshold (Azure's default: 50%). Raise it and the
# model says "rusted" less often: fewer false alarms (precision up), more misses (recall down).

# %%
rows = []
for thr in (0.1, 0.3, 0.5, 0.7, 0.9):
    p = get_iteration_performance(ws, parts.id, parts_it.id, threshold=thr)
    rows.append({"threshold": thr, "precision": metrics.json_number(p.precision),
                 "recall": metrics.json_number(p.recall), "AP": metrics.json_number(p.average_precision)})
sweep = pd.DataFrame(rows).set_index("threshold")
assert sweep.recall.is_monotonic_decreasing          # recall can only fall as the threshold rises
assert sweep.AP.nunique() == 1                       # AP summarises every threshold: it does not move
sweep.style.format("{:.1%}", na_rep="— (nothing predicted)")

# %% tags=["exercise"]
# Exercise: a false alarm stops the line, so you raise the threshold to 0.7. Get the iteration's performance
# at 0.7 and put its overall precision into precision_70 and recall into recall_70 (metrics.json_number).
perf_70 = get_iteration_performance(ws, parts.id, parts_it.id, threshold=0.7)
precision_70, recall_70 = metrics.json_number(perf_70.precision), metrics.json_number(perf_70.recall)
print(f"at 0.7: precision {cv.pct(precision_70)}, recall {cv.pct(recall_70)}")

# %%
assert "precision_70" in globals() and "recall_70" in globals(), "fill in the exercise cell above, then run it"
at_70 = get_iteration_performance(ws, parts.id, parts_it.id, threshold=0.7)
assert (precision_70, recall_70) == (metrics.json_number(at_70.precision), metrics.json_number(at_70.recall)), \
    "use get_iteration_performance(..., threshold=0.7)"
assert recall_70 <= sweep.recall[0.5]          # a higher threshold never finds more

# %%
from cvlab import views
evaluation = load_evaluation_dict(ws, parts.id, parts_it.id)
views.threshold_sweep(evaluation, threshold=0.5)

# %% [markdown]
# Drag the sliders: the table and curves follow, as on the portal's Performance tab.

# %%
from cvlab.widgets import ThresholdExplorer
ThresholdExplorer(evaluation)

# %% [markdown]
# ### Which tags get confused, and on which images
# The **confusion matrix** counts, for each true tag (rows), what the model said (columns) at the threshold;
# "(none)" is an image the model gave no tag above it. Then the **mistakes** themselves, worst first, each framed
# in red as the portal frames a mispredicted image: what the model missed and what it said wrongly, with the
# probabilities. Both measured on the same self-test predictions as the table above.

# %%
views.confusion_matrix(evaluation, threshold=0.5)

# %%
views.mistakes_gallery(evaluation, views.workspace_image_loader(ws, parts.id), threshold=0.5, max_images=8)

# %% [markdown]
# ## 3 · Detectors: the overlap threshold
# A predicted box is a true positive only if its **IoU** (intersection over union) with a drawn box of the same
# tag reaches the overlap threshold. A stricter overlap turns sloppy boxes into false positives *and* misses.

# %%
rows = []
for overlap in (0.3, 0.5, 0.7):
    p = get_iteration_performance(ws, site.id, site_it.id, threshold=0.5, overlap_threshold=overlap)
    helmet = next(t for t in p.per_tag_performance if t.name == "helmet")
    rows.append({"overlap": overlap, "mAP": metrics.json_number(p.average_precision),
                 "helmet recall": metrics.json_number(helmet.recall)})
by_overlap = pd.DataFrame(rows).set_index("overlap")
assert by_overlap["mAP"].is_monotonic_decreasing
map_at_50 = by_overlap.loc[0.5, "mAP"]
by_overlap.style.format("{:.1%}", na_rep="—")

# %% [markdown]
# The same detector at a stricter probability threshold, 0.7 (overlap 0.5), tag by tag, as the portal's
# *Performance* tab lists them: fewer boxes count as predictions, so recall can only fall.

# %%
site_70 = get_iteration_performance(ws, site.id, site_it.id, threshold=0.7, overlap_threshold=0.5)
helmet_70 = next(t for t in site_70.per_tag_performance if t.name == "helmet")
(pd.DataFrame([{"tag": t.name, "precision": metrics.json_number(t.precision), "recall": metrics.json_number(t.recall),
                "AP": metrics.json_number(t.average_precision)} for t in site_70.per_tag_performance])
 .set_index("tag").style.format("{:.1%}", na_rep="— (nothing predicted)"))

# %%
ThresholdExplorer(load_evaluation_dict(ws, site.id, site_it.id))

# %% tags=["exercise"]
# Exercise: which helmet-vest-person tag does the detector miss most? At threshold 0.5 and overlap 0.5, find
# the tag with the lowest recall in perf.per_tag_performance, keep it in weakest and print its recall.
site_perf = get_iteration_performance(ws, site.id, site_it.id, threshold=0.5, overlap_threshold=0.5)
weakest = min(site_perf.per_tag_performance, key=lambda t: metrics.json_number(t.recall) or 0.0)
print(f"most missed: {weakest.name}, recall {cv.pct(weakest.recall)}")

# %%
assert "weakest" in globals(), "fill in the exercise cell above, then run it"
recalls = {t.name: metrics.json_number(t.recall) or 0.0 for t in get_iteration_performance(
    ws, site.id, site_it.id, threshold=0.5, overlap_threshold=0.5).per_tag_performance}
assert recalls[weakest.name] == min(recalls.values()), f"{weakest.name} is not the lowest recall: {recalls}"

# %% [markdown]
# ## 4 · Which to favour?
# | Situation | Costly error | Favour | Threshold |
# |---|---|---|---|
# | A missed worker without a helmet | false negative | **recall** | lower |
# | A "defective" flag stops the line for an hour | false positive | **precision** | higher |
# | Screening whose false alarms trigger invasive follow-ups | false positive | **precision** | higher |
# | Rare defect that must never ship | false negative | **recall** | lower |
#
# "F1 above 0.8" is a common rule of thumb, not a rule: the costs decide.
#
# ## 5 · Self-test vs held-out
# Azure computes these numbers from your own training images (cross-validation). Images the model never saw
# are the honest check; notebook 02 set some aside.

# %%
comparison = compare_splits(ws, parts.id, parts_it.id)
assert comparison.holdout is not None and comparison.holdout.image_count == P.holdout_images
views.compare_splits_figure(comparison)

# %% [markdown]
# **On Azure:** *Performance* tab → the **Probability Threshold** and (detectors) **Overlap Threshold** sliders;
# per-tag precision, recall, AP; SDK `trainer.get_iteration_performance(project.id, iteration.id, threshold=0.7,
# overlap_threshold=0.5)`. Apply the same threshold in your client code: the endpoint returns every
# prediction.
#
# **Exam traps**
# - Precision vs recall: read which error the scenario says is expensive.
# - AP/mAP do not depend on the probability threshold; precision and recall do.
# - The overlap threshold exists only for object detection.

# %% [markdown]
# ## Quick check
# Four questions are about *your* run; read their numbers off what this lesson showed: the parts iteration's
# precision and recall at the top, the detector's mAP in the overlap table and its per-tag table at 0.7 (section 3).

# %%
cv.quiz("eval-01", "eval-03", "eval-05", "eval-06", "eval-13", "eval-14", "eval-15", "eval-28", ws=ws,
        facts={"helmet_recall_at_70": metrics.json_number(helmet_70.recall) or 0.0,
               "precision_at_50": metrics.json_number(perf.precision),
               "recall_at_50": metrics.json_number(perf.recall),
               "map_at_50": map_at_50})
