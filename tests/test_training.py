"""Training: Azure's validation rules, Quick/Advanced classification, iterations, evaluation records, cancel/recover."""
import json
import re
import threading
import time

import numpy as np
import pytest

from cvlab.errors import CvlabError
from cvlab import training
from cvlab.predict import Predictor
from helpers import COMPACT, OD_COMPACT, add, scene


def test_quick_training_completes_with_artefacts(trained_shapes):
    ws, it = trained_shapes["ws"], trained_shapes["iteration"]
    assert it.status == "Completed", it.training_error_details
    assert it.trained_at is not None and it.training_time_in_minutes >= 1 and it.training_type == "Regular"
    folder = ws.iteration_dir(it.id)
    info = json.loads((folder / "iteration.json").read_text())
    assert [t["name"] for t in info["tags"]] == ["disc", "stripes", "Negative"]  # Negative is an output class
    assert info["backbone"] == "lite0" and info["preprocessing"]["size"] == 224 and info["seed"] == 3
    assert (folder / "model.pt").stat().st_size > 1_000_000
    fractions = [f for f, _ in trained_shapes["calls"]]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0


def test_evaluation_records_are_out_of_fold_and_holdout(trained_shapes):
    ws, it = trained_shapes["ws"], trained_shapes["iteration"]
    ev = json.loads((ws.iteration_dir(it.id) / "evaluation.json").read_text())
    assert ev["project_type"] == "Classification" and ev["classification_type"] == "Multiclass"
    assert ev["k_folds"] == 5
    cv = [r for r in ev["records"] if r["split"] == "cv"]
    hold = [r for r in ev["records"] if r["split"] == "holdout"]
    assert len(cv) == 17 and sorted(r["image_id"] for r in hold) == sorted(trained_shapes["held"])
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


def test_retraining_needs_a_change_or_force_and_is_deterministic(trained_shapes):
    ws, p, it = trained_shapes["ws"], trained_shapes["project"], trained_shapes["iteration"]
    with pytest.raises(CvlabError) as e:
        training.train_project(ws, p.id, seed=3, holdout=trained_shapes["held"])
    assert e.value.code == "BadRequestTrainingNotNeeded"
    cache_files = sorted(ws.path.glob("cache/emb/**/*.npy"))
    again = training.train_project(ws, p.id, seed=3, holdout=trained_shapes["held"], force_train=True)
    assert again.status == "Completed" and again.name != it.name
    assert sorted(ws.path.glob("cache/emb/**/*.npy")) == cache_files  # every embedding came from the cache
    a = json.loads((ws.iteration_dir(it.id) / "evaluation.json").read_text())["records"]
    b = json.loads((ws.iteration_dir(again.id) / "evaluation.json").read_text())["records"]
    assert [[round(x["probability"], 5) for x in r["predictions"]] for r in a] == \
           [[round(x["probability"], 5) for x in r["predictions"]] for r in b]


def test_predictor_ranks_every_tag(trained_shapes):
    ws, it = trained_shapes["ws"], trained_shapes["iteration"]
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


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_advanced_training_fine_tunes_within_budget(tmp_path, monkeypatch):
    import cvlab

    monkeypatch.setenv("CVLAB_SECONDS_PER_BUDGET_HOUR", "4")
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


def test_partial_fine_tuning_trains_only_the_later_stages_of_an_ordinary_classifier():
    """Advanced on the General domains: the frozen stages' cached maps through the later stages give exactly the
    network's own logits (so the exported graph is what was trained); after training the stem and the first k
    stages are ImageNet's, the later stages and the head have moved, and the same seed gives the same weights."""
    import torch
    from cvlab.nets import classifier

    def run(cached=False):
        torch.manual_seed(0)
        model = classifier.Classifier("lite0", 2, feature_norm="l2").eval()
        g = torch.Generator().manual_seed(1)
        x = (torch.rand(12, 3, 64, 64, generator=g) * 255).to(torch.uint8)
        y = torch.tensor([0, 1] * 6)
        with torch.inference_mode():
            same = torch.allclose(classifier._back(model, classifier._front(model, x.float(), 3), 3),
                                  model.logits(x.float()), atol=1e-5)
        before = {k: v.clone() for k, v in model.state_dict().items()}
        maps = classifier.cache_frozen_maps(model, x, 3) if cached else None  # the refit's way: cached once
        info = classifier.partial_fine_tune(model, maps[:8] if cached else x[:8], y[:8],
                                            maps.plain[8:] if cached else x[8:], y[8:], frozen_blocks=3, epochs=3,
                                            time_budget_s=600, seed=2,
                                            head_init=lambda f: (np.zeros((2, f.shape[1]), np.float32),
                                                                 np.zeros(2, np.float32)))
        return same, before, model.state_dict(), info

    same, before, after, info = run()
    assert same
    assert info["epochs"] == 3 and info["frozen_blocks"] == 3 and [h["epoch"] for h in info["history"]] == [0, 1, 2, 3]
    frozen = ("normalize.", "trunk.conv_stem.", "trunk.bn1.", "trunk.blocks.0.", "trunk.blocks.1.", "trunk.blocks.2.")
    for name, value in after.items():
        if name.startswith(frozen):
            assert torch.equal(value, before[name]), name
    assert not torch.equal(after["trunk.blocks.5.0.conv_pw.weight"], before["trunk.blocks.5.0.conv_pw.weight"])
    assert float(after["head.weight"].abs().sum()) > 0
    again = run()[2]
    assert all(torch.equal(after[k], again[k]) for k in after)
    from_cache = run(cached=True)[2]
    assert all(torch.equal(after[k], from_cache[k]) for k in after)
    with pytest.raises(ValueError, match="frozen_blocks"):
        classifier.partial_fine_tune(classifier.Classifier("lite0", 2), torch.zeros(1, 3, 64, 64, dtype=torch.uint8),
                                     torch.tensor([0]), None, None, frozen_blocks=7, epochs=1, time_budget_s=1)


@pytest.mark.slow
def test_advanced_on_general_fine_tunes_partially_and_ships_a_working_model(tmp_path, monkeypatch):
    """General's Advanced recipe (Lite2, 4 frozen stages, 320 px): it completes inside a small budget, says which
    model it kept, and the shipped iteration predicts at its own input size (320 px if fine-tuned, Quick's 260 px
    if the probe won)."""
    import cvlab
    from cvlab.domains import find_domain

    monkeypatch.setenv("CVLAB_SECONDS_PER_BUDGET_HOUR", "30")
    ws = cvlab.Workspace(tmp_path / "ws")
    p = ws.create_project("adv-general", domain_id=find_domain("General", "Classification").id)
    a, b = ws.create_tag(p.id, "a"), ws.create_tag(p.id, "b")
    add(ws, p.id, "disc", [a.id], 6)
    add(ws, p.id, "stripes", [b.id], 6)
    it = training.train_project(ws, p.id, training_type="Advanced", reserved_budget_in_hours=1, seed=1,
                                show_progress=False)
    assert it.status == "Completed", it.training_error_details
    info = json.loads((ws.iteration_dir(it.id) / "iteration.json").read_text())
    ft = info["fine_tune"]
    assert ft["frozen_blocks"] == 4 and ft["size"] == 320 and ft["epochs"] >= 1
    planned, refit = training.classification.planned_partial_epochs("lite2", 320, 9, 3, 30)
    assert ft["planned_epochs"] == planned
    assert ("refit" in ft) == (ft["kept"] == "fine_tuned" and refit > 0)
    size = info["preprocessing"]["size"]
    assert size == (320 if ft["kept"] == "fine_tuned" else 260)
    said = "Fine-tuned network kept" if ft["kept"] == "fine_tuned" else "kept the probe"
    assert said in info["training_details"], info["training_details"]
    out = {o["tag_name"]: o["probability"] for o in Predictor.load(ws, it.id).predict(scene("disc", 900))}
    assert set(out) == {"a", "b"} and abs(sum(out.values()) - 1) < 1e-4


def test_partial_fine_tuning_plans_its_epochs_from_fixed_costs():
    """The same data and budget give the same plan on every machine; a budget below caching + one epoch is said."""
    from cvlab.training import classification as cls

    # 4 budget-hours at 60 s: the full first cycle and the refit on all images
    assert cls.planned_partial_epochs("lite2", 320, 120, 30, 240) == (cls.MAX_PARTIAL_EPOCHS, cls.PARTIAL_REFIT_EPOCHS)
    first, refit = cls.planned_partial_epochs("lite2", 320, 120, 30, 60)
    assert 1 <= first < cls.MAX_PARTIAL_EPOCHS and 0 <= refit <= cls.PARTIAL_REFIT_EPOCHS
    assert cls.planned_partial_epochs("lite2", 320, 120, 30, 1) == (1, 0)
    assert cls.planned_partial_epochs("lite2", 320, 150, 0, 240)[1] == 0  # no validation images: nothing to add
    assert cls.planned_partial_epochs("lite2", 320, 120, 30, 240, refit=False) == (cls.MAX_PARTIAL_EPOCHS, 0)
    assert cls.partial_budget_note("lite2", 320, 120, 30, 240) is None
    assert "less than caching the frozen stages" in cls.partial_budget_note("lite2", 320, 120, 30, 5)


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


def test_cli_trains_and_prints(trained_shapes, capsys):
    import argparse

    from cvlab.cli import train as train_command

    ws, p = trained_shapes["ws"], trained_shapes["project"]
    parser = argparse.ArgumentParser()
    train_command.configure(parser)
    args = parser.parse_args(["--workspace", str(ws.path), "--project", "shapes", "--force", "--seed", "3"])
    assert train_command.run(args) == 0
    out = capsys.readouterr().out
    assert "Completed" in out and "Iteration" in out
    assert re.search(r"precision \d\.\d{3}  recall \d\.\d{3}", out), out  # the iteration's metrics
    for tag in ("disc", "stripes"):
        assert re.search(rf"^  {tag}\s+precision \d\.\d{{3}}  recall \d\.\d{{3}}", out, re.M), out


def test_training_time_excludes_the_wait_for_a_workshop_slot(trained_shapes, monkeypatch):
    """A queued training's time is the training's, not the queue's (workshop learners see their own cost)."""
    class SlowQueue:  # the admission hook a workshop installs, holding this training 2 s before its turn
        def enqueue(self, ws, project_id, iteration_id):
            return self

        def __enter__(self):
            time.sleep(2.0)

        def __exit__(self, *exc):
            return False

    ws, p = trained_shapes["ws"], trained_shapes["project"]
    monkeypatch.setattr(training, "admission", SlowQueue())
    t0 = time.monotonic()
    it = training.train_project(ws, p.id, seed=3, force_train=True, show_progress=False)
    wall = time.monotonic() - t0
    total = json.loads((ws.iteration_dir(it.id) / "iteration.json").read_text())["timings"]["total_s"]
    assert it.status == "Completed" and total <= wall - 1.9, (total, wall)
