# %% [markdown]
# # 08 · Exam review
#
# **What you will do:** read the cram sheet (corrected against Microsoft's documentation), redo the study guide's
# quick-check questions, then take a mixed quiz that starts with what you missed before, with a score and a
# review. Reminder: AI-102 retired on 2026-06-30; this is the custom-vision part of what carries over to AI-103.

# %%
from cvlab import curriculum as cv
P = cv.profile()            # CVLAB_PROFILE=fast (CI) or learner (default)
ws = cv.workspace()         # $CVLAB_WORKSPACE or ../workspace, shared by every notebook
print(P.name, "profile; workspace:", ws.path)

# %% [markdown]
# ## 1 · Cram sheet
# The figures in the table below come from `cvlab.rules`, the same table the local service enforces.

# %%
import pandas as pd
from cvlab import rules

keys = ["projects", "images_per_project", "predictions_per_month", "tags_per_project", "iterations_per_project",
        "min_images_per_tag_classification", "min_images_per_tag_detection", "max_image_bytes_training",
        "max_image_bytes_prediction"]
fmt = lambda v: "unlimited" if v is None else f"{v:,}"
pd.DataFrame([{"limit": rules.LIMITS[k].what, "F0": fmt(rules.limit(k, "F0")),
               "S0": fmt(rules.limit(k, "S0"))} for k in keys])

# %% tags=["exercise"]
# Exercise: a multiclass classifier with 4 tags. With rules.limit, compute the fewest labelled images it needs
# before training is accepted (min_images) and the number Microsoft recommends (recommended_images).
min_images = 4 * rules.limit("min_images_per_tag_classification", "S0")
recommended_images = 4 * rules.limit("recommended_images_per_tag", "S0")
print(min_images, "to train,", recommended_images, "recommended")

# %%
assert "min_images" in globals() and "recommended_images" in globals(), "fill in the exercise cell above, then run it"
assert (min_images, recommended_images) == (20, 200), "5 images per tag at least, 50 recommended: times 4 tags"

# %% [markdown]
# 1. **Custom Vision** trains *your* labels with little code; **Azure AI Vision** is pre-built (OCR, tags);
#    **Azure ML** is for custom training loops and multi-modal work.
# 2. **Classification** = tags for the whole image (multiclass: one; multilabel: zero or more).
#    **Object detection** = a box and a tag per object; it needs boxes, not just tags.
# 3. **Minimum** 5 images per tag (classification), 15 (detection); **50+ recommended**.
# 4. **Domains** give a pretrained starting point; **compact** domains are the only exportable ones.
# 5. **Quick** training is cheap; **Advanced** spends a budget in hours (never exceeded, cannot be cancelled).
# 6. **Precision** when false alarms are costly; **recall** when misses are costly; the probability threshold moves
#    between them; F1 > 0.8 is a rule of thumb only.
# 7. **Publish** an iteration to a **prediction resource** (its ARM id) under a name, then call it with a
#    **prediction key**; training keys are for the Training API.
# 8. **Export:** ONNX (Windows/Linux edge, Windows ML), TensorFlow Lite (Android/iOS; classification *and*
#    detection), CoreML (iOS), Docker (ACI, AKS, on-premises, IoT Edge).
# 9. The **exported container runs without Azure keys**; calls to the Azure endpoint need them.
# 10. Test the endpoint before exporting; use stored predictions and the smart labeler to improve.
#
# **Where the study guide is wrong or unsupported:** S0 is *not* "unlimited projects, 1M images, 10M predictions"
# (documented: 100 projects, 100,000 images per project, unlimited predictions); "1 export per month on the free
# tier" is not on the limits page; TensorFlow Lite is not "object detection only"; the exported Docker container
# does not need prediction keys; and its SDK snippet passes the key before the endpoint, the 1.x order (notebook
# 05 runs it).

# %% [markdown]
# ## 2 · The study guide's quick-check questions, in our words

# %%
cv.quiz("choose-01", "choose-02", "exp-01", ws=ws)

# %% [markdown]
# ## 3 · A mixed quiz
# Ten questions from every topic. Missed questions come back first, then ones you have not seen. The questions
# about your own run (your recall at 0.7, your mAP...) are asked in notebooks 04 and 07, right under the numbers
# they are about.

# %%
from cvlab import quiz
from cvlab.widgets import ExamWidget, QuizSession, review_cell

session = QuizSession(ws, count=10, seed=cv.SEED)
session

# %% [markdown]
# Answer all ten (press **Next question** after each), then run the review:

# %%
from IPython.display import HTML
HTML(session.review_html() if session.results else "<i>Answer the questions above first.</i>")

# %% [markdown]
# ## 4 · Spaced review: what is due today
# Every answer you give (here, in the other notebooks, or with `cvlab quiz`) moves the question between review
# boxes: a miss brings it back tomorrow, a right answer later and later (in cvlab: Leitner boxes). The cell shows
# your progress per exam skill, then today's due questions, missed ones first. Come back to it on later days.

# %%
review_cell(ws)

# %% [markdown]
# ## 5 · Exam mode
# A timed, mixed exam across the skill lines: no feedback until you finish, flag questions to revisit from the
# review screen, and a score reported on Microsoft's 1-1000 scale (700 to pass). Press **Start the exam** when you
# are ready; nothing is timed before that. In a terminal: `cvlab quiz --exam`, `cvlab quiz --due` (the review),
# `cvlab quiz --count 20` (practice on all topics) or `cvlab quiz --topic evaluate`.

# %%
ExamWidget(ws)
