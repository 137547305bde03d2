"""Bad input to training (issue 19 item 6): a tag whose images are all near-duplicates and a budget too small for
one fine-tuning epoch say so in the training details; a stored image that no longer decodes fails the training
with Azure's BadRequestImageFormat naming the image, and the earlier iteration keeps working."""
import io
import json

import numpy as np
import pytest
from PIL import Image, ImageDraw

from cvlab import embeddings, recipes
from cvlab.errors import CvlabError

COMPACT = "0732100f-1a38-4e49-a514-c9b44c697ab5"


def _photo(seed: int, colour) -> Image.Image:
    rng = np.random.default_rng(seed)
    img = Image.fromarray(rng.integers(60, 200, (96, 96, 3), dtype=np.uint8))
    j = int(rng.integers(-12, 12))
    ImageDraw.Draw(img).ellipse([20 + j, 24 - j, 70 + j, 80 - j], fill=colour)
    return img


def _jpeg(img, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def test_near_duplicate_note_names_only_the_tag_whose_images_are_all_alike():
    rng = np.random.default_rng(0)
    base = rng.normal(size=64)
    alike = base + 0.01 * rng.normal(size=(4, 64))     # one picture, four times
    varied = rng.normal(size=(4, 64))                  # four different pictures
    truth = np.repeat(np.eye(2), 4, axis=0)
    note = recipes.near_duplicate_note(np.vstack([alike, varied]), truth, ["copies", "varied"])
    assert note is not None and "'copies' (4 images)" in note and "varied" not in note
    assert recipes.near_duplicate_note(np.vstack([varied, rng.normal(size=(4, 64))]), truth, ["a", "b"]) is None


def test_budget_note_only_when_one_epoch_does_not_fit():
    per_image = {"lite0": 0.15, "lite1": 0.22, "lite2": 0.35}
    r = recipes.RECIPES["compact"]
    one_epoch = recipes.epoch_seconds(r, 100, per_image)
    assert recipes.budget_note(r, 100, one_epoch, per_image) is None
    note = recipes.budget_note(r, 100, one_epoch / 2, per_image)
    assert note is not None and "less than one fine-tuning epoch of 100 images" in note
    assert recipes.planned_epochs(r, 100, one_epoch / 2, per_image, 40) == 1


def test_an_image_that_no_longer_decodes_is_named_with_azures_code(tmp_path):
    import cvlab
    from cvlab.workspace import ImageEntry

    ws = cvlab.Workspace(tmp_path / "ws")
    p = ws.create_project("bad", domain_id=COMPACT)
    tag = ws.create_tag(p.id, "red")
    assert ws.create_images(p.id, [ImageEntry(data=_jpeg(_photo(0, (220, 30, 30))), name="r0.jpg",
                                              tag_ids=(tag.id,))]).is_batch_successful
    image = next(iter(ws.iter_images(p.id)))
    path = ws.image_path(image)
    path.write_bytes(path.read_bytes()[:40])              # damaged on disk after upload
    with pytest.raises(CvlabError) as e:
        embeddings.open_training_image(ws, image)
    assert e.value.code == "BadRequestImageFormat" and "'r0.jpg'" in e.value.message and image.id in e.value.message


@pytest.mark.slow
def test_near_duplicates_are_reported_and_a_bad_image_fails_training_not_the_last_model(tmp_path, monkeypatch):
    import cvlab
    from cvlab import training
    from cvlab.predict import Predictor
    from cvlab.workspace import ImageEntry

    monkeypatch.setenv(embeddings.CACHE_DIR_ENV, str(tmp_path / "machine"))
    ws = cvlab.Workspace(tmp_path / "ws")
    p = ws.create_project("dups", domain_id=COMPACT)
    red, blue = ws.create_tag(p.id, "red"), ws.create_tag(p.id, "blue")
    one_red = _photo(0, (220, 30, 30))
    entries = [ImageEntry(data=_jpeg(one_red, q), name=f"r{q}.jpg", tag_ids=(red.id,)) for q in (95, 90, 85, 80, 75)]
    entries += [ImageEntry(data=_jpeg(_photo(100 + i, (30, 40, 220))), name=f"b{i}.jpg", tag_ids=(blue.id,))
                for i in range(5)]
    assert ws.create_images(p.id, entries).is_batch_successful
    it = training.train_project(ws, p.id, seed=0, show_progress=False)
    assert it.status == "Completed", it.training_error_details
    details = json.loads((ws.iteration_dir(it.id) / "iteration.json").read_text())["training_details"]
    assert "'red' (5 images)" in details and "'blue'" not in details
    probe = _jpeg(_photo(999, (30, 40, 220)))
    before = Predictor.load(ws, it.id).predict(probe)

    # a new image whose stored file is damaged before it was ever embedded (embeddings are cached by content)
    assert ws.create_images(p.id, [ImageEntry(data=_jpeg(_photo(200, (30, 40, 220))), name="b5.jpg",
                                              tag_ids=(blue.id,))]).is_batch_successful
    damaged = next(im for im in ws.iter_images(p.id) if im.original_name == "b5.jpg")
    path = ws.image_path(damaged)
    path.write_bytes(path.read_bytes()[:60])
    failed = training.train_project(ws, p.id, seed=0, show_progress=False)
    assert failed.status == "Failed"
    assert failed.training_error_details.startswith("BadRequestImageFormat: Training image 'b5.jpg'")
    Predictor.clear_cache()
    after = Predictor.load(ws, it.id).predict(probe)
    assert [o["tag_name"] for o in after] == [o["tag_name"] for o in before]
    assert abs(after[0]["probability"] - before[0]["probability"]) < 1e-5
    assert ws.get_iteration(p.id, it.id).status == "Completed"
