"""Training recipes (issue 19): views, the Quick head's C by cross-validation, the Advanced gate, domains that
differ, the onnxruntime embeddings, and an interrupted training that leaves the last iteration usable."""
import io
import json
import threading

import numpy as np
import pytest
from PIL import Image, ImageDraw

from cvlab import embeddings, recipes
from cvlab.domains import DOMAINS

COMPACT = "0732100f-1a38-4e49-a514-c9b44c697ab5"


def _photo(seed: int, colour=(220, 30, 30), size=96) -> Image.Image:
    rng = np.random.default_rng(seed)
    img = Image.fromarray(rng.integers(90, 160, (size, size, 3), dtype=np.uint8))
    j = int(rng.integers(-8, 8))
    ImageDraw.Draw(img).ellipse([20 + j, 20 - j, 76 + j, 76 - j], fill=colour)
    return img


def test_views_are_functions_of_the_image_and_its_hash():
    img = _photo(0)
    sha = "ab" * 32
    for view in ("orig", "flip", "crop1", "tight2", "erase1"):
        a, b = embeddings.view_image(img, view, sha), embeddings.view_image(img, view, sha)
        assert np.array_equal(np.asarray(a), np.asarray(b)), view
    assert not np.array_equal(np.asarray(embeddings.view_image(img, "crop1", sha)),
                              np.asarray(embeddings.view_image(img, "crop2", sha)))
    assert np.array_equal(np.asarray(embeddings.view_image(img, "flip", sha)), np.asarray(img)[:, ::-1])
    with pytest.raises(ValueError):
        embeddings.view_image(img, "rotate", sha)


def test_few_shot_views_only_for_small_training_sets():
    r = recipes.RECIPES["general"]
    assert r.head_views(45) == ("orig", "flip", "crop1", "crop2")   # the fruit lab: 15 photos per tag
    assert r.head_views(150) == ("orig",)                           # parts: one view, Quick stays fast
    assert r.head_views(100) == ("orig", "flip")


def test_probe_chooses_C_by_cross_validation_and_keeps_an_images_views_together():
    rng = np.random.default_rng(0)
    n, v, f = 40, 3, 16
    y = np.repeat([0, 1], n // 2)
    centres = rng.normal(size=(2, f))
    x = centres[y][:, None, :] + 0.8 * rng.normal(size=(n, v, f))
    folds = recipes._folds(y, False, 0, 5)
    out = recipes.fit_probe(x.astype(np.float32), y, folds, False, 2, seed=0)
    assert out["C"] in recipes.C_GRID and set(out["cv_log_loss"]) == {str(c) for c in recipes.C_GRID}
    assert out["C"] == min(recipes.C_GRID, key=lambda c: (round(out["cv_log_loss"][str(c)], 6), c))
    assert (out["oof_logits"].argmax(1) == y).mean() >= 0.9
    assert sorted(np.concatenate([te for _, te in folds]).tolist()) == list(range(n))


def test_advanced_gate_trusts_log_loss_only_with_enough_images_per_tag():
    probe, tuned = {"macro_f1": 1.0, "log_loss": 0.2}, {"macro_f1": 1.0, "log_loss": 0.05}
    assert not recipes.keep_fine_tuned(probe, tuned, min_images_per_tag=12)   # a handful of photos: keep probe
    assert recipes.keep_fine_tuned(probe, tuned, min_images_per_tag=40)
    assert recipes.keep_fine_tuned({"macro_f1": 0.6, "log_loss": 0.9}, {"macro_f1": 0.7, "log_loss": 1.2}, 12)
    # enough images: log-loss decides (on 30 validation images one image moves F1 by ~0.03)
    assert recipes.keep_fine_tuned({"macro_f1": 0.675, "log_loss": 0.77}, {"macro_f1": 0.621, "log_loss": 0.64}, 50)
    assert not recipes.keep_fine_tuned({"macro_f1": 0.675, "log_loss": 0.64}, {"macro_f1": 0.621, "log_loss": 0.77}, 50)
    assert not recipes.keep_fine_tuned({"macro_f1": 0.7, "log_loss": 0.9}, {"macro_f1": 0.6, "log_loss": 0.1}, 12)


def test_domains_of_a_type_train_different_models_unless_they_say_they_share():
    for kind in ("Classification", "ObjectDetection"):
        enabled = [d for d in DOMAINS if d.type == kind and d.enabled]
        seen = {}
        for d in enabled:
            settings = {k: v for k, v in d.training_recipe.to_dict().items() if k != "name"}
            key = (d.backbone, json.dumps(settings, sort_keys=True))
            if key in seen:
                assert "same network as" in d.model_information["description"], (d.name, seen[key])
            seen.setdefault(key, d.name)
        for d in enabled:
            assert "In cvlab:" in d.model_information["description"]


@pytest.mark.slow
def test_onnxruntime_embeddings_equal_torch_and_rank_the_same(tmp_path, monkeypatch):
    monkeypatch.setenv(embeddings.CACHE_DIR_ENV, str(tmp_path / "machine"))
    imgs = [_photo(i, colour=(220, 30, 30) if i % 2 else (30, 40, 220)) for i in range(6)]
    a = embeddings.embed_pil(imgs, "lite0", 224, "onnx")
    b = embeddings.embed_pil(imgs, "lite0", 224, "torch")
    assert a.shape == b.shape == (6, 1280)
    assert np.abs(a - b).max() <= 1e-4 * np.abs(b).max()
    w = np.random.default_rng(0).normal(size=(1280, 3)).astype(np.float32)
    assert np.array_equal((recipes.normalise(a) @ w).argmax(1), (recipes.normalise(b) @ w).argmax(1))
    assert list((tmp_path / "machine" / "onnx").glob("extractor-lite0-224-*.onnx"))


def _jpeg(img) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    return buf.getvalue()


@pytest.mark.slow
def test_few_images_advanced_keeps_the_probe_and_an_interrupted_training_keeps_the_last_model(tmp_path,
                                                                                                monkeypatch):
    import json

    import cvlab
    from cvlab import training
    from cvlab.predict import Predictor
    from cvlab.workspace import ImageEntry

    monkeypatch.setenv(embeddings.CACHE_DIR_ENV, str(tmp_path / "machine"))
    ws = cvlab.Workspace(tmp_path / "ws")
    p = ws.create_project("few", domain_id=COMPACT)
    red, blue = ws.create_tag(p.id, "red"), ws.create_tag(p.id, "blue")
    entries = [ImageEntry(data=_jpeg(_photo(i, (220, 30, 30))), name=f"r{i}.jpg", tag_ids=(red.id,))
               for i in range(6)]
    entries += [ImageEntry(data=_jpeg(_photo(100 + i, (30, 40, 220))), name=f"b{i}.jpg", tag_ids=(blue.id,))
                for i in range(6)]
    assert ws.create_images(p.id, entries).is_batch_successful
    quick = training.train_project(ws, p.id, seed=0, show_progress=False)
    assert quick.status == "Completed", quick.training_error_details
    info = json.loads((ws.iteration_dir(quick.id) / "iteration.json").read_text())
    assert info["feature_norm"] == "l2" and info["C"] in recipes.C_GRID
    assert info["head_views"] == ["orig", "flip", "crop1", "crop2"]   # 12 images: few-shot views
    adv = training.train_project(ws, p.id, training_type="Advanced", reserved_budget_in_hours=1, seed=0,
                                 show_progress=False, seconds_per_budget_hour=3)
    assert adv.status == "Completed", adv.training_error_details
    ainfo = json.loads((ws.iteration_dir(adv.id) / "iteration.json").read_text())
    assert ainfo["fine_tune"]["kept"] in ("probe", "fine_tuned")
    assert ("kept the probe" in ainfo["training_details"]) == (ainfo["fine_tune"]["kept"] == "probe")
    before = Predictor.load(ws, quick.id).predict(_jpeg(_photo(999, (30, 40, 220))))
    # an interrupted (cancelled) training: the earlier iterations stay usable, with the same answers
    gate = threading.Event()
    gate.set()
    stopped = training.train_project(ws, p.id, seed=1, force_train=True, cancel=gate, show_progress=False)
    assert stopped.status == "Failed" and stopped.training_error_details == "Cancelled"
    Predictor.clear_cache()
    after = Predictor.load(ws, quick.id).predict(_jpeg(_photo(999, (30, 40, 220))))
    assert [o["tag_name"] for o in after] == [o["tag_name"] for o in before] and after[0]["tag_name"] == "blue"
    assert abs(after[0]["probability"] - before[0]["probability"]) < 1e-5
    assert ws.get_iteration(p.id, adv.id).status == "Completed"
