"""Training: Azure's validation rules, Quick/Advanced classification, iterations, evaluation records, cancel/recover."""
import io
import json
import re
import threading
import time

import numpy as np
import pytest
from PIL import Image, ImageDraw

from cvlab.errors import CvlabError
from cvlab import training
from cvlab.predict import Predictor

COMPACT = "0732100f-1a38-4e49-a514-c9b44c697ab5"      # General (compact): Lite0 at 224 px, cheap to embed
OD_COMPACT = "a27d5ca5-bb19-49d8-a70a-fec086c47f5b"


def scene(kind: str, seed: int, size: int = 96) -> bytes:
    """Tiny synthetic photos an ImageNet trunk tells apart: a red disc, blue stripes, or a plain green field."""
    rng = np.random.default_rng(seed)
    img = Image.fromarray(rng.integers(90, 160, (size, size, 3), dtype=np.uint8))
    d = ImageDraw.Draw(img)
    j = int(rng.integers(-8, 8))
    if kind == "disc":
        d.ellipse([20 + j, 20 - j, 76 + j, 76 - j], fill=(220, 30, 30))
    elif kind == "stripes":
        for x in range(0, size, 16):
            d.rectangle([x + j % 4, 0, x + 7 + j % 4, size], fill=(30, 40, 220))
    else:  # a noisy green field: nothing of the other tags
        arr = np.asarray(img).copy()
        arr[..., 1] = np.clip(arr[..., 1].astype(int) + 80, 0, 255)
        arr[..., 0] //= 2
        img = Image.fromarray(arr)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def add(ws, project_id, kind, tag_ids, n, start=0, metadata=None):
    from cvlab.workspace import ImageEntry

    entries = [ImageEntry(data=scene(kind, start + i), name=f"{kind}{start + i}.jpg", tag_ids=tuple(tag_ids))
               for i in range(n)]
    summary = ws.create_images(project_id, entries, metadata=metadata)
    assert summary.is_batch_successful, summary
    return [r.image.id for r in summary.images]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One Quick multiclass project (disc / stripes / Negative) trained once, with 2 holdout images."""
    import cvlab

    ws = cvlab.Workspace(tmp_path_factory.mktemp("ws"))
    p = ws.create_project("shapes", domain_id=COMPACT, classification_type="Multiclass")
    disc = ws.create_tag(p.id, "disc")
    stripes = ws.create_tag(p.id, "stripes")
    neg = ws.create_tag(p.id, "Negative", type="Negative")
    add(ws, p.id, "disc", [disc.id], 6)
    add(ws, p.id, "stripes", [stripes.id], 6)
    add(ws, p.id, "plain", [neg.id], 5)
    held = add(ws, p.id, "disc", [disc.id], 1, start=100) + add(ws, p.id, "stripes", [stripes.id], 1, start=100)
    calls = []
    it = training.train_project(ws, p.id, seed=3, holdout=held, progress=lambda f, m: calls.append((f, m)))
    return dict(ws=ws, project=p, tags=(disc, stripes, neg), iteration=it, held=held, calls=calls)


def test_quick_training_completes_with_artefacts(trained):
    ws, it = trained["ws"], trained["iteration"]
    assert it.status == "Completed", it.training_error_details
    assert it.trained_at is not None and it.training_time_in_minutes >= 1 and it.training_type == "Regular"
    folder = ws.iteration_dir(it.id)
    info = json.loads((folder / "iteration.json").read_text())
    assert [t["name"] for t in info["tags"]] == ["disc", "stripes", "Negative"]  # Negative is an output class
    assert info["backbone"] == "lite0" and info["preprocessing"]["size"] == 224 and info["seed"] == 3
    assert (folder / "model.pt").stat().st_size > 1_000_000
    fractions = [f for f, _ in trained["calls"]]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0


def test_evaluation_records_are_out_of_fold_and_holdout(trained):
    ws, it = trained["ws"], trained["iteration"]
    ev = json.loads((ws.iteration_dir(it.id) / "evaluation.json").read_text())
    assert ev["project_type"] == "Classification" and ev["classification_type"] == "Multiclass"
    assert ev["k_folds"] == 5
    cv = [r for r in ev["records"] if r["split"] == "cv"]
    hold = [r for r in ev["records"] if r["split"] == "holdout"]
    assert len(cv) == 17 and sorted(r["image_id"] for r in hold) == sorted(trained["held"])
    assert {r["fold"] for r in cv} == set(range(5))
    for r in ev["records"]:
        probs = [p["probability"] for p in r["predictions"]]
        assert len(probs) == 3 and abs(sum(probs) - 1) < 1e-4 and all(p["bounding_box"] is None
                                                                      for p in r["predictions"])
        assert len(r["truth"]["tag_ids"]) == 1
    # an easy problem: most out-of-fold predictions are right, every holdout one is
    right = [max(r["predictions"], key=lambda p: p["probability"])["tag_id"] == r["truth"]["tag_ids"][0]
             for r in ev["records"]]
    assert np.mean(right) >= 0.85 and all(right[-2:])


def test_retraining_needs_a_change_or_force_and_is_deterministic(trained):
    ws, p, it = trained["ws"], trained["project"], trained["iteration"]
    with pytest.raises(CvlabError) as e:
        training.train_project(ws, p.id, seed=3, holdout=trained["held"])
    assert e.value.code == "BadRequestTrainingNotNeeded"
    cache_files = sorted(ws.path.glob("cache/emb/**/*.npy"))
    again = training.train_project(ws, p.id, seed=3, holdout=trained["held"], force_train=True)
    assert again.status == "Completed" and again.name != it.name
    assert sorted(ws.path.glob("cache/emb/**/*.npy")) == cache_files  # every embedding came from the cache
    a = json.loads((ws.iteration_dir(it.id) / "evaluation.json").read_text())["records"]
    b = json.loads((ws.iteration_dir(again.id) / "evaluation.json").read_text())["records"]
    assert [[round(x["probability"], 5) for x in r["predictions"]] for r in a] == \
           [[round(x["probability"], 5) for x in r["predictions"]] for r in b]


def test_predictor_ranks_every_tag(trained):
    ws, it = trained["ws"], trained["iteration"]
    pred = Predictor.load(ws, it.id)
    assert Predictor.load(ws, it.id) is pred
    out = pred.predict(scene("stripes", 500))
    assert [o["tag_name"] for o in out][0] == "stripes"
    assert len(out) == 3 and out == sorted(out, key=lambda o: -o["probability"])
    assert {o["tag_type"] for o in out} == {"Regular", "Negative"} and all(o["bounding_box"] is None for o in out)
    assert pred.predict(scene("plain", 501))[0]["tag_type"] == "Negative"


def test_validation_rules(tmp_path):
    import cvlab

    ws = cvlab.Workspace(tmp_path / "ws")
    p = ws.create_project("few", domain_id=COMPACT, classification_type="Multiclass")
    a = ws.create_tag(p.id, "a")
    with pytest.raises(CvlabError) as e:
        training.train_project(ws, p.id)
    assert e.value.code == "BadRequestMultiClassClassificationTrainingValidationFailed"
    add(ws, p.id, "disc", [a.id], 5)
    with pytest.raises(CvlabError) as e:   # one tag only
        training.train_project(ws, p.id)
    assert e.value.code == "BadRequestMultiClassClassificationTrainingValidationFailed" and "2 tags" in e.value.message
    b = ws.create_tag(p.id, "b")
    add(ws, p.id, "stripes", [b.id], 3)
    with pytest.raises(CvlabError) as e:
        training.train_project(ws, p.id)
    assert "'b' has 3" in e.value.message
    with pytest.raises(CvlabError) as e:
        training.train_project(ws, p.id, training_type="Advanced", reserved_budget_in_hours=0)
    assert e.value.code == "BadRequestReservedBudgetInHoursNotEnoughForAdvancedTraining"
    ml = ws.create_project("ml", domain_id=COMPACT, classification_type="Multilabel")
    x = ws.create_tag(ml.id, "x")
    add(ws, ml.id, "disc", [x.id], 2)
    with pytest.raises(CvlabError) as e:
        training.train_project(ws, ml.id)
    assert e.value.code == "BadRequestMultiLabelClassificationTrainingValidationFailed"
    od = ws.create_project("od", domain_id=OD_COMPACT)
    with pytest.raises(CvlabError) as e:
        training.train_project(ws, od.id)
    assert e.value.code == "BadRequestDetectionTrainingValidationFailed"


def test_in_progress_limit_and_recovery(tmp_path):
    import cvlab

    ws = cvlab.Workspace(tmp_path / "ws")
    p = ws.create_project("limits", domain_id=COMPACT)
    a, b = ws.create_tag(p.id, "a"), ws.create_tag(p.id, "b")
    add(ws, p.id, "disc", [a.id], 5)
    add(ws, p.id, "stripes", [b.id], 5)
    stuck = ws.create_iteration(p.id, name="Crashed", status="Training")
    with pytest.raises(CvlabError) as e:
        training.train_project(ws, p.id)
    assert e.value.code == "BadRequestTrainingAlreadyInProgress"
    assert training.recover_interrupted(ws) == [stuck.id]
    failed = ws.get_iteration(p.id, stuck.id)
    assert failed.status == "Failed" and failed.training_error_details == "interrupted"
    for i in range(19):
        ws.create_iteration(p.id, name=f"Old {i}", status="Failed")
    with pytest.raises(CvlabError) as e:
        training.train_project(ws, p.id)
    assert e.value.code == "BadRequestExceedIterationPerProjectLimit"


def test_background_training_can_be_cancelled(tmp_path):
    import cvlab

    ws = cvlab.Workspace(tmp_path / "ws")
    p = ws.create_project("cancel", domain_id=COMPACT)
    a, b = ws.create_tag(p.id, "a"), ws.create_tag(p.id, "b")
    add(ws, p.id, "disc", [a.id], 20)
    add(ws, p.id, "stripes", [b.id], 20)
    gate = threading.Event()
    it = training.train_project(ws, p.id, background=True, cancel=gate, show_progress=False)
    assert it.status == "Training"
    training.cancel_training(ws, it.id)
    done = training.wait(ws, p.id, it.id, timeout=60)
    assert done.status == "Failed" and done.training_error_details == "Cancelled"
    assert not (ws.iteration_dir(it.id) / "model.pt").exists()


def test_multilabel_with_negative(tmp_path):
    import cvlab

    ws = cvlab.Workspace(tmp_path / "ws")
    p = ws.create_project("ml", domain_id=COMPACT, classification_type="Multilabel")
    red, blue = ws.create_tag(p.id, "red"), ws.create_tag(p.id, "blue")
    neg = ws.create_tag(p.id, "none", type="Negative")
    add(ws, p.id, "disc", [red.id], 6)
    add(ws, p.id, "stripes", [blue.id], 6)
    add(ws, p.id, "plain", [neg.id], 5)
    it = training.train_project(ws, p.id, show_progress=False)
    assert it.status == "Completed", it.training_error_details
    ev = json.loads((ws.iteration_dir(it.id) / "evaluation.json").read_text())
    assert ev["classification_type"] == "Multilabel" and len(ev["records"]) == 17
    pred = Predictor.load(ws, it.id)
    out = {o["tag_name"]: o["probability"] for o in pred.predict(scene("plain", 900))}
    assert set(out) == {"red", "blue", "none"} and out["none"] > 0.5 and out["red"] < 0.5 and out["blue"] < 0.5
    out = {o["tag_name"]: o["probability"] for o in pred.predict(scene("disc", 901))}
    assert out["red"] > 0.5 and out["none"] < 0.5


def test_advanced_training_fine_tunes_within_budget(tmp_path, monkeypatch):
    import cvlab

    monkeypatch.setenv(training.SECONDS_PER_BUDGET_HOUR_ENV, "4")
    ws = cvlab.Workspace(tmp_path / "ws")
    p = ws.create_project("adv", domain_id=COMPACT)
    a, b = ws.create_tag(p.id, "a"), ws.create_tag(p.id, "b")
    add(ws, p.id, "disc", [a.id], 5)
    add(ws, p.id, "stripes", [b.id], 5)
    it = training.train_project(ws, p.id, training_type="Advanced", reserved_budget_in_hours=1, seed=1,
                                show_progress=False)
    assert it.status == "Completed", it.training_error_details
    assert it.training_type == "Advanced" and it.reserved_budget_in_hours == 1
    info = json.loads((ws.iteration_dir(it.id) / "iteration.json").read_text())
    ft = info["fine_tune"]
    assert ft["epochs"] >= 1 and ft["seconds"] <= 4 + 2 * max(h["seconds"] for h in ft["history"])
    ev = json.loads((ws.iteration_dir(it.id) / "evaluation.json").read_text())
    assert ev["k_folds"] == 1 and len(ev["records"]) == 2  # the 20 % validation split
    assert {r["image_id"] for r in ev["records"]} == set(info["validation_image_ids"])
    # LP-FT: the head starts as the linear probe (epoch 0 is a candidate); a later best epoch moved the trunk
    import torch
    from cvlab.nets.backbones import imagenet_model

    assert ft["history"][0]["epoch"] == 0 and ft["planned_epochs"] == training.planned_epochs("lite0", 8, 4)
    sd = torch.load(ws.iteration_dir(it.id) / "model.pt", weights_only=True)
    assert float(sd["head.weight"].abs().sum()) > 0
    moved = not torch.equal(sd["trunk.conv_stem.weight"], imagenet_model("lite0").conv_stem.weight)
    assert moved == (ft["best_epoch"] > 0)


def test_checkpointed_training_step_matches_the_plain_one(monkeypatch):
    """Checkpointing the first stages (less peak memory) changes neither the loss nor the gradients, and batched
    inference equals one big batch."""
    import torch
    from cvlab.nets import classifier

    torch.manual_seed(0)
    model = classifier.Classifier("lite0", 3)
    model.train()
    classifier._freeze_batchnorm(model)
    x, y = torch.rand(3, 3, 64, 64) * 255, torch.tensor([0, 1, 2])

    def step():
        model.zero_grad()
        loss = torch.nn.functional.cross_entropy(model.logits(x), y)
        loss.backward()
        return loss.item(), model.trunk.conv_stem.weight.grad.clone()

    loss_ckpt, grad_ckpt = step()
    monkeypatch.setattr(classifier, "CHECKPOINT_STAGES", 0)
    loss_plain, grad_plain = step()
    assert abs(loss_ckpt - loss_plain) < 1e-5 and torch.allclose(grad_ckpt, grad_plain, rtol=1e-4, atol=1e-6)
    monkeypatch.setattr(classifier, "EVAL_BATCH", 2)
    model.eval()
    with torch.inference_mode():
        whole = model(x)
    assert whole.shape == (3, 3) and torch.allclose(classifier.predict(model, x), whole, atol=1e-5)
    assert classifier.predict(model, x[:0], logits=True).shape == (0, 3)


def test_cli_trains_and_prints(trained, capsys):
    import argparse

    ws, p = trained["ws"], trained["project"]
    parser = argparse.ArgumentParser()
    training.configure(parser)
    args = parser.parse_args(["--workspace", str(ws.path), "--project", "shapes", "--force", "--seed", "3"])
    assert training.run(args) == 0
    out = capsys.readouterr().out
    assert "Completed" in out and "Iteration" in out
    assert re.search(r"precision \d\.\d{3}  recall \d\.\d{3}", out), out  # the iteration's metrics
    for tag in ("disc", "stripes"):
        assert re.search(rf"^  {tag}\s+precision \d\.\d{{3}}  recall \d\.\d{{3}}", out, re.M), out


def test_training_time_excludes_the_wait_for_a_workshop_slot(trained, monkeypatch):
    """A queued training's time is the training's, not the queue's (workshop learners see their own cost)."""
    class SlowQueue:  # the admission hook a workshop installs, holding this training 2 s before its turn
        def enqueue(self, ws, project_id, iteration_id):
            return self

        def __enter__(self):
            time.sleep(2.0)

        def __exit__(self, *exc):
            return False

    ws, p = trained["ws"], trained["project"]
    monkeypatch.setattr(training, "admission", SlowQueue())
    t0 = time.monotonic()
    it = training.train_project(ws, p.id, seed=3, force_train=True, show_progress=False)
    wall = time.monotonic() - t0
    total = json.loads((ws.iteration_dir(it.id) / "iteration.json").read_text())["timings"]["total_s"]
    assert it.status == "Completed" and total <= wall - 1.9, (total, wall)
