# %% [markdown]
# # 00 · Welcome to cvlab
#
# **What you will learn:** how this course works — the local copy of Azure Custom Vision you will use, where your
# work is stored, how the quick-check quizzes record your progress — and, honestly, where Custom Vision and the
# AI-102 exam stand today.
#
# cvlab re-creates Azure Custom Vision on your laptop: projects, tags, labeling, training on ImageNet-pretrained
# backbones, the Performance page, a local endpoint that the official `azure-cognitiveservices-vision-customvision`
# SDK calls unchanged, and ONNX / TensorFlow Lite / Docker exports. No Azure subscription, no keys, no network.

# %% [markdown]
# ## Dates first: what is current, what transfers
#
# | | |
# |---|---|
# | **AI-102 exam** | retired on **30 June 2026**. Its successor, **AI-103**, does not test Custom Vision: its vision objectives are image and video generation, multimodal understanding, Content Understanding and visual content safety. |
# | **Custom Vision** (and Image Analysis 4.0) | supported until **25 September 2028**; after that, calls to the service fail. |
# | **Where Microsoft points you** | **Azure Machine Learning AutoML for images** (train classifiers and detectors on your own images) and **Azure Content Understanding** (managed generative classification). Notebook 09 takes your projects there. |
# | **Microsoft Learn's Custom Vision labs** | marked deprecated. Notebooks 10 and 11 redo both, offline, on the labs' own photos. |
#
# Source: https://learn.microsoft.com/azure/ai-services/custom-vision-service/migration-options
#
# What transfers regardless: choosing classification vs detection, designing labels, reading precision / recall /
# mAP and picking thresholds, training vs prediction resources and keys, and running exported ONNX / TFLite
# models, which keep working after the service retires because they no longer call it.
#
# One convention of this course: where cvlab does something its own way rather than Azure's (its training
# recipe, its timings, its extra views), the text says **in cvlab**. Everything else is Azure's documented
# behaviour, with the Microsoft page it comes from.

# %% [markdown]
# ## Your copy of the course
# You are reading your own copy of this lesson: `cvlab lab` copied the lessons into your workspace
# (`<workspace>/notebooks/`) on its first run, so nothing you run or write here touches the course's files, and
# a later `cvlab lab` keeps your copies as they are.
#
# - An **exercise** cell holds its instructions and a `# TODO`: write the code there and run it. The cell under
#   it checks your answer and says what to fill in if something is missing.
# - Stuck? Open **Show a solution** under the exercise.
# - `cvlab lab --reset-notebooks` brings fresh copies (yours are moved to `notebooks-backup-<time>/`, not
#   deleted); `cvlab lab --reset-notebooks --version instructor` gives the lessons with their solutions in place.
#
# | lesson | what you do |
# |---|---|
# | 00 · Welcome | check the laptop, meet the workspace and the quizzes |
# | 01 · Classification or detection? | pick the project type and the service for a scenario |
# | 02 · Projects, domains, labeling | create projects and tags, label with the tagger and the box labeler |
# | 03 · Training | Quick and Advanced training, iterations, why pretrained models need few images |
# | 04 · Evaluating | precision, recall, AP, thresholds, the confusion matrix and the mistakes |
# | 05 · Publish and consume | the official SDK, REST and curl against the local endpoint; keys and quotas |
# | 06 · Export and the edge | ONNX, TensorFlow Lite, the Docker app; parity with the endpoint |
# | 07 · Improve | stored predictions, the smart labeler, fair comparisons |
# | 08 · Exam review | the cram sheet and a mixed quiz |
# | 09 · After Custom Vision | your projects as Azure ML AutoML data; Content Understanding |
# | 10, 11 · Microsoft Learn's labs | *Classify images* and *Detect objects in images*, on the labs' photos |

# %% [markdown]
# ## 1 · Is this laptop ready?
# Everything is checked offline: packages, CPU, the pretrained weights.

# %%
from cvlab import curriculum as cv
checks = cv.check_environment()
print(cv.environment_report(checks))
assert all(c.ok for c in checks), "fix the lines marked NO before going on"

# %% [markdown]
# ## 2 · Profiles and your workspace
# `CVLAB_PROFILE=learner` (the default) sizes the data so the whole course computes in a few minutes on a
# 2-core laptop, and every cell that takes more than a few seconds shows a progress bar; results that cost more
# (the learning curve of notebook 03, the smart-labeler curve of 07) are kept in the workspace, so a re-run is
# instant. `CVLAB_PROFILE=fast` shrinks everything further for CI. All your projects, images, iterations and quiz
# progress live in one **workspace** folder (an SQLite file plus an image store).

# %%
from cvlab import curriculum as cv
P = cv.profile()            # CVLAB_PROFILE=fast (CI) or learner (default)
ws = cv.workspace()         # $CVLAB_WORKSPACE or ../workspace, shared by every notebook
print(P.name, "profile; workspace:", ws.path)

# %%
print("tier:", ws.tier, "| projects:", [p.name for p in ws.get_projects()])
print(f"{P.name} profile: {P.images_per_tag} images per tag for the classifier, {P.detection_images} for the "
      f"detector, {P.holdout_images} held out, pictures of {P.image_size} px")

# %% [markdown]
# The workspace imitates one Custom Vision **training resource**. Its tier (`S0` by default, `F0` for the free
# tier) enforces the documented limits — try `ws.set_tier("F0")` later and create a third project.

# %% tags=["exercise"]
# Exercise: how many projects may one training resource hold on the free tier (F0), and on S0? Read both from
# cvlab's limits table (`from cvlab import rules`, then rules.limit("projects", tier)) into f0_projects and
# s0_projects.
from cvlab import rules
f0_projects, s0_projects = rules.limit("projects", "F0"), rules.limit("projects", "S0")
print("F0:", f0_projects, "projects | S0:", s0_projects, "projects")

# %%
assert "f0_projects" in globals() and "s0_projects" in globals(), "fill in the exercise cell above, then run it"
assert (f0_projects, s0_projects) == (2, 100), "Microsoft's limits page: F0 2 projects, S0 100"

# %% [markdown]
# ## 3 · How quick-check quizzes work
# Each notebook ends with a few quiz cells. Pick or type an answer and press **Check**: you get the right answer,
# why it is right, why the option you picked is wrong, and the Microsoft Learn page it comes from. Each answer is
# stored in the workspace, so notebook 08 and the terminal quiz (`cvlab quiz`) bring your mistakes back first.

# %%
from cvlab import quiz
print(len(quiz.questions()), "questions in topics:", ", ".join(quiz.topics()))
assert len(quiz.questions()) >= 80

# %% tags=["exercise"]
# Exercise: count the questions of every topic into a dict per_topic ({topic: number of questions}) with
# quiz.topics() and quiz.questions(topic); which topic has the most?
per_topic = {topic: len(quiz.questions(topic)) for topic in quiz.topics()}
print(per_topic, "| most:", max(per_topic, key=per_topic.get))

# %%
assert "per_topic" in globals(), "fill in the exercise cell above, then run it"
assert set(per_topic) == set(quiz.topics()) and sum(per_topic.values()) == len(quiz.questions())

# %%
cv.quiz("exam-01", "exam-02", "exam-03", "exam-08", ws=ws)

# %% [markdown]
# Your progress so far (answer a question above, then re-run this cell):

# %%
s = quiz.summary(ws)
print(f"answered {s.answered} of {s.total}; right last time: {s.correct_last}; to revisit: {s.missed}")

# %% [markdown]
# In a terminal the same bank runs as `cvlab quiz --topic exam --count 5`.
#
# **Next:** 01 · Classification or detection?
