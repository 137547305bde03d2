"""Fixtures shared by the test modules (helpers they import live in ``helpers.py``).

Every trained model is trained once per session (``_trained``) and each test module gets its own copy of the
trained workspace (the module-scoped ``trained_*`` fixtures), so modules may change their copy freely.

A fixture whose name starts with ``trained`` holds a trained model (here, or a module's own, such as
test_detector's raw detector): a test that uses one, directly or through another fixture, is marked ``slow``
automatically. Tests that train inline carry ``@pytest.mark.slow`` themselves. ``make test-fast`` runs the rest.
"""
from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from helpers import COMPACT, OD_COMPACT, add, make_image_bytes, shape, shape_jpeg

def pytest_collection_modifyitems(config, items):
    """``slow`` for every test whose fixtures (their whole closure) include a trained model."""
    for item in items:
        if any(name.startswith("trained") for name in getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture
def ws(tmp_path):
    """A fresh, empty Workspace in tmp_path."""
    from cvlab import Workspace
    w = Workspace(tmp_path / "ws")
    yield w
    w.close()


@pytest.fixture
def jpeg_bytes():
    """Factory: jpeg_bytes(w=320, h=240, color=None, seed=0) -> JPEG bytes."""
    def make(w: int = 320, h: int = 240, color=None, seed: int | None = 0) -> bytes:
        return make_image_bytes(w, h, color, seed, "JPEG")
    return make


# ---- trained models: trained once per session, copied per module --------------------------------------------
class _Trained:
    """Trained workspaces by name: built on first use, then copied for whoever asks."""

    def __init__(self, factory):
        self.factory = factory
        self.built: dict[str, tuple[Path, dict]] = {}
        self.copies = 0

    def copy(self, name: str, build) -> tuple[Path, dict]:
        if name not in self.built:
            src = self.factory.mktemp(f"trained-{name}") / "ws"
            self.built[name] = (src, build(src))
        src, info = self.built[name]
        self.copies += 1
        dst = self.factory.mktemp(f"{name}-copy{self.copies}") / "ws"
        shutil.copytree(src, dst)
        return dst, dict(info)


@pytest.fixture(scope="session")
def _trained(tmp_path_factory):
    return _Trained(tmp_path_factory)


def _open(path):
    from cvlab import Workspace
    return Workspace(path)


def _completed(it):
    assert it.status == "Completed", it.training_error_details
    return it


def _build_colours(src: Path) -> dict:
    from cvlab.datasets.swatches import swatch_jpeg
    from cvlab.training import train_project
    from cvlab.workspace import ImageEntry

    ws = _open(src)
    p = ws.create_project("colours", domain_id=COMPACT)
    tags, hashes = {}, {}
    for name, rgb, offset in (("red", (200, 30, 30), 0), ("blue", (30, 40, 200), 100)):
        tags[name] = ws.create_tag(p.id, name).id
        entries = [ImageEntry(swatch_jpeg(rgb, i + offset), f"{name}{i}.jpg", [tags[name]]) for i in range(5)]
        for r in ws.create_images(p.id, entries).images:
            hashes[r.image.id] = (hashlib.sha256(ws.read_image_bytes(r.image)).hexdigest(), tags[name])
    it = _completed(train_project(ws, p.id, show_progress=False))
    ws.close()
    return {"project_id": p.id, "iteration_id": it.id, "tags": tags, "hashes": hashes}


@pytest.fixture(scope="session")
def trained_colours(_trained):
    """Factory: a copy of one workspace holding project "colours" (General (compact), tags red/blue, 5 small
    images each, one Completed Quick iteration). Each call copies the folder, so tests may change or kill
    servers on their copy. Returns (path, {"project_id", "iteration_id", "tags", "hashes"})."""
    return lambda: _trained.copy("colours", _build_colours)


def _build_shapes(src: Path) -> dict:
    from cvlab import training

    ws = _open(src)
    p = ws.create_project("shapes", domain_id=COMPACT, classification_type="Multiclass")
    disc, stripes = ws.create_tag(p.id, "disc"), ws.create_tag(p.id, "stripes")
    neg = ws.create_tag(p.id, "Negative", type="Negative")
    add(ws, p.id, "disc", [disc.id], 6)
    add(ws, p.id, "stripes", [stripes.id], 6)
    add(ws, p.id, "plain", [neg.id], 5)
    held = add(ws, p.id, "disc", [disc.id], 1, start=100) + add(ws, p.id, "stripes", [stripes.id], 1, start=100)
    calls = []
    it = training.train_project(ws, p.id, seed=3, holdout=held, progress=lambda f, m: calls.append((f, m)))
    ws.close()
    return {"project_id": p.id, "tag_ids": (disc.id, stripes.id, neg.id), "iteration_id": it.id, "held": held,
            "calls": calls}


@pytest.fixture(scope="module")
def trained_shapes(_trained):
    """Quick multiclass project "shapes" (disc / stripes / Negative, 6/6/5 images, seed 3) with 2 holdout images,
    and the progress calls its training made: dict(ws, project, tags, iteration, held, calls)."""
    path, info = _trained.copy("shapes", _build_shapes)
    ws = _open(path)
    p = ws.get_project(info["project_id"])
    yield dict(ws=ws, project=p, tags=tuple(ws.get_tag(p.id, t) for t in info["tag_ids"]),
               iteration=ws.get_iteration(p.id, info["iteration_id"]), held=info["held"], calls=info["calls"])
    ws.close()


def _build_pair(src: Path) -> dict:
    from cvlab import training

    ws = _open(src)
    p = ws.create_project("predict", domain_id=COMPACT, classification_type="Multiclass")
    a, b = ws.create_tag(p.id, "disc"), ws.create_tag(p.id, "stripes")
    add(ws, p.id, "disc", [a.id], 5)
    add(ws, p.id, "stripes", [b.id], 5)
    it = _completed(training.train_project(ws, p.id, show_progress=False))
    ws.close()
    return {"project_id": p.id, "iteration_id": it.id}


@pytest.fixture(scope="module")
def trained_pair(_trained):
    """Quick multiclass project "predict" (disc / stripes, 5 images each, seed 0): (ws, project, iteration)."""
    path, info = _trained.copy("pair", _build_pair)
    ws = _open(path)
    p = ws.get_project(info["project_id"])
    yield ws, p, ws.get_iteration(p.id, info["iteration_id"])
    ws.close()


def _build_shape_iterations(src: Path) -> dict:
    from cvlab import training
    from cvlab.workspace import ImageEntry

    ws = _open(src)
    cls = ws.create_project("shapes", domain_id=COMPACT)
    tags = {k: ws.create_tag(cls.id, k).id for k in ("disc", "stripes")}
    ws.create_images(cls.id, [ImageEntry(data=shape(k, i), name=f"{k}{i}.jpg", tag_ids=(tags[k],))
                              for k in tags for i in range(6)])
    it1 = _completed(training.train_project(ws, cls.id, seed=0, show_progress=False))
    ws.create_images(cls.id, [ImageEntry(data=shape(k, 50 + i), name=f"{k}{50 + i}.jpg", tag_ids=(tags[k],))
                              for k in tags for i in range(3)])
    it2 = _completed(training.train_project(ws, cls.id, seed=0, show_progress=False))
    ws.close()
    return {"project_id": cls.id, "tags": tags, "iteration_ids": (it1.id, it2.id)}


@pytest.fixture(scope="module")
def trained_shape_iterations(_trained):
    """Classification project "shapes" (disc / stripes) trained twice (Quick, seed 0): 6 images per tag, then 3
    more each. dict(ws, project, tags {name: id}, its (first, second))."""
    path, info = _trained.copy("shape-iterations", _build_shape_iterations)
    ws = _open(path)
    p = ws.get_project(info["project_id"])
    yield dict(ws=ws, project=p, tags=info["tags"], its=tuple(ws.get_iteration(p.id, i) for i in info["iteration_ids"]))
    ws.close()


def _build_discs(src: Path, epochs: int) -> dict:
    from cvlab import training
    from cvlab.datasets.swatches import disc_scene
    from cvlab.workspace import ImageEntry

    ws = _open(src)
    p = ws.create_project("discs", domain_id=OD_COMPACT)
    tag = ws.create_tag(p.id, "disc")
    entries = []
    for i in range(16):
        data, (left, top, width, height) = disc_scene(i)
        entries.append(ImageEntry(data=data, name=f"d{i}.jpg", regions=[
            {"tag_id": tag.id, "left": left, "top": top, "width": width, "height": height}]))
    assert ws.create_images(p.id, entries).is_batch_successful
    it = _completed(training.train_project(ws, p.id, seed=0, show_progress=False, detection_epochs=epochs))
    ws.close()
    return {"project_id": p.id, "tag_id": tag.id, "iteration_id": it.id}


def _discs(copy) -> dict:
    path, info = copy
    ws = _open(path)
    p = ws.get_project(info["project_id"])
    return dict(ws=ws, project=p, tag=ws.get_tag(p.id, info["tag_id"]),
                iteration=ws.get_iteration(p.id, info["iteration_id"]))


@pytest.fixture(scope="module")
def trained_discs(_trained):
    """Object detection project "discs" (General (compact) [S1]; one tag "disc", 16 scenes with one box each),
    Quick-trained for 2 epochs (seed 0): dict(ws, project, tag, iteration)."""
    d = _discs(_trained.copy("discs", lambda src: _build_discs(src, epochs=2)))
    yield d
    d["ws"].close()


@pytest.fixture(scope="module")
def trained_discs_one_epoch(_trained):
    """The same project trained for 1 epoch: confident boxes on new scenes, which export parity needs (the
    2-epoch detector of this seed is less sure of them). dict(ws, project, tag, iteration)."""
    d = _discs(_trained.copy("discs-1-epoch", lambda src: _build_discs(src, epochs=1)))
    yield d
    d["ws"].close()


def _build_round_square(src: Path) -> dict:
    from cvlab.domains import find_domain
    from cvlab.training import train_project
    from cvlab.workspace import ImageEntry

    ws = _open(src)
    domain = find_domain("General (compact)", "Classification")
    project = ws.create_project("Shapes", domain_id=domain.id, classification_type="Multiclass")
    tags = {k: ws.create_tag(project.id, k) for k in ("round", "square")}
    entries = [ImageEntry(data=shape_jpeg(k, 100 * j + i), name=f"{k}{i}.jpg", tag_ids=[tags[k].id])
               for j, k in enumerate(tags) for i in range(6)]
    assert ws.create_images(project.id, entries).is_batch_successful
    it = _completed(train_project(ws, project.id, seed=0))
    ws.close()
    return {"project_id": project.id, "iteration_id": it.id}


@pytest.fixture(scope="module")
def trained_round_square(_trained):
    """Quick multiclass project "Shapes" (round / square, 6 images each, seed 0) and 8 new test images:
    (ws, project, iteration, images)."""
    path, info = _trained.copy("round-square", _build_round_square)
    ws = _open(path)
    p = ws.get_project(info["project_id"])
    images = [shape_jpeg(k, 10_000 + i) for i in range(4) for k in ("round", "square")]
    yield ws, p, ws.get_iteration(p.id, info["iteration_id"]), images
    ws.close()


def _build_parts_pool(src: Path) -> dict:
    from cvlab import datasets
    from cvlab.datasets.importing import resolve_domain
    from cvlab.experiments import active_learning as al
    from cvlab.training import train_project

    ws = _open(src)
    meta = datasets.info("parts")
    p = ws.create_project("suggest", domain_id=resolve_domain(None, "Classification"))
    tags = {t: ws.create_tag(p.id, t, type="Negative" if t == datasets.NEGATIVE else "Regular").id
            for t in meta.tags}
    records = datasets.generate("parts", 28, seed=3, size=96)
    data = [al._png(r) for r in records]
    al._upload(ws, p.id, list(range(20)), data, records, tags, True)
    pool = al._upload(ws, p.id, list(range(20, 28)), data, records, tags, False)
    it = _completed(train_project(ws, p.id, seed=0, show_progress=False))
    ws.close()
    return {"project_id": p.id, "iteration_id": it.id, "tags": tags, "pool": pool}


@pytest.fixture(scope="module")
def trained_parts_pool(_trained):
    """``parts`` (data seed 3, 96 px): 5 labelled images per tag (20), 8 unlabelled ones (the pool), one Quick
    iteration (seed 0): (ws, project, iteration, tags {name: id}, pool {image id: record index})."""
    path, info = _trained.copy("parts-pool", _build_parts_pool)
    ws = _open(path)
    p = ws.get_project(info["project_id"])
    yield ws, p, ws.get_iteration(p.id, info["iteration_id"]), info["tags"], info["pool"]
    ws.close()


# ---- no model: a Completed iteration with a hand-written evaluation ------------------------------------------
@pytest.fixture
def evaluated_project(ws):
    """A multiclass project with 4 images, a Completed iteration and a hand-written evaluation.json (no model):
    (ws, project, iteration, images, cat, dog)."""
    import json

    from cvlab.workspace import ImageEntry

    p = ws.create_project("perf-test")
    cat, dog = ws.create_tag(p.id, "cat"), ws.create_tag(p.id, "dog")
    entries = [ImageEntry(make_image_bytes(320, 320, seed=i), name=f"im{i}.jpg", tag_ids=[(cat, dog)[i % 2].id])
               for i in range(4)]
    images = [r.image for r in ws.create_images(p.id, entries).images]
    it = ws.create_iteration(p.id)
    tags = [{"id": cat.id, "name": "cat", "type": "Regular"}, {"id": dog.id, "name": "dog", "type": "Regular"}]
    probs = [(0.9, 0.1), (0.7, 0.3), (0.2, 0.8), (0.4, 0.6)]  # truths cat, dog, cat, dog
    records = [{"image_id": im.id, "split": "cv" if i < 3 else "holdout", "fold": i if i < 3 else None,
                "truth": {"tag_ids": [im.tags[0].tag_id], "regions": []},
                "predictions": [{"tag_id": cat.id, "probability": pc, "bounding_box": None},
                                {"tag_id": dog.id, "probability": pd, "bounding_box": None}]}
               for i, (im, (pc, pd)) in enumerate(zip(images, probs))]
    (ws.iteration_dir(it.id) / "evaluation.json").write_text(json.dumps({
        "project_type": "Classification", "classification_type": "Multiclass", "k_folds": 3, "tags": tags,
        "records": records}))
    ws.update_iteration(p.id, it.id, status="Completed")
    return ws, p, it, images, cat, dog


# Property tests: no per-example deadline (CI machines are noisy) and the same examples on every run (derandomize),
# so a workshop laptop and CI see the same results; explicit @settings in a test still win.
from hypothesis import settings as _hypothesis_settings  # noqa: E402

_hypothesis_settings.register_profile("cvlab", deadline=None, derandomize=True, database=None)
_hypothesis_settings.load_profile("cvlab")
