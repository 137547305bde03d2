"""Issue 22 in the core: the workshop queue takes seats in turn, budgets stay in Azure's range, label files and
archives that used to shift labels or raise raw errors, figures that failed on a "$" in a tag name, and the Python
API refusing text that is not valid Unicode. Each test reproduces what went wrong before the fix."""
from __future__ import annotations

import io
import struct
import threading
import zipfile

import pytest
from PIL import Image

from cvlab.errors import CvlabError
from cvlab.workspace import ImageEntry, Workspace
from helpers import png, snapshot


# ---- the workshop's training queue ------------------------------------------------------------------------------
def test_the_training_queue_takes_seats_in_turn(tmp_path):
    """seat-02's Quick training waited 59.8 s behind seat-01's three Advanced jobs: the line was first come, first
    served per iteration. Now a seat with three iterations waiting has one turn, then the others get theirs."""
    from cvlab.workshop import TrainingQueue
    seats = {name: Workspace(tmp_path / name) for name in ("seat-01", "seat-02", "seat-03")}
    queue = TrainingQueue(slots=1)
    for name, ws in seats.items():
        queue.register(ws, name)

    def enqueue(name):
        ws = seats[name]
        project = ws.create_project(f"p{len(ws.get_projects())}")
        iteration = ws.create_iteration(project.id, status="Training")
        return name, ws, project.id, iteration.id, queue.enqueue(ws, project.id, iteration.id)

    jobs = [enqueue("seat-01") for _ in range(4)] + [enqueue("seat-02"), enqueue("seat-03"), enqueue("seat-02")]
    # seat-01's first runs; then one each in turn: seat-02, seat-03, seat-01, seat-02, seat-01, seat-01
    positions = {(name, i): ws.get_iteration(pid, iid).queue_position for i, (name, ws, pid, iid, _) in enumerate(jobs)}
    assert positions == {("seat-01", 0): None, ("seat-02", 4): 1, ("seat-03", 5): 2, ("seat-01", 1): 3,
                         ("seat-02", 6): 4, ("seat-01", 2): 5, ("seat-01", 3): 6}
    assert [w["seat"] for w in queue.snapshot()["waiting"]] == ["seat-02", "seat-03", "seat-01", "seat-02",
                                                                 "seat-01", "seat-01"]
    order, lock = [], threading.Lock()

    def train(job):
        name, ws, pid, iid, ticket = job
        with ticket:
            with lock:
                order.append(name)
    threads = [threading.Thread(target=train, args=(job,)) for job in reversed(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert order == ["seat-01", "seat-02", "seat-03", "seat-01", "seat-02", "seat-01", "seat-01"]
    for ws in seats.values():
        ws.close()


@pytest.mark.parametrize("hours", [2**31, 10**30, -1, 1.5, "lots"])
def test_reserved_budget_outside_azures_int32_range_is_a_400(trained_colours, hours):
    """reservedBudgetInHours=10**30 reached SQLite and answered 500; any value outside the REST spec's int32
    (0..2147483647) is now a 400 before an iteration is created."""
    from cvlab.training import train_project
    path, info = trained_colours()
    ws = Workspace(path)
    before = snapshot(ws)
    with pytest.raises(CvlabError) as e:
        train_project(ws, info["project_id"], training_type="Advanced", reserved_budget_in_hours=hours,
                      force_train=True, show_progress=False)
    assert e.value.status == 400 and e.value.code == "BadRequestInvalid", e.value
    assert "int32" in e.value.message
    assert snapshot(ws) == before
    ws.close()


def test_reserved_budget_over_rest_is_a_400_not_a_500(trained_colours):
    from cvlab.service import start_background
    from helpers import Api, assert_azure_error
    path, info = trained_colours()
    ws = Workspace(path)
    with start_background(ws, rate_limits=False) as handle:
        api = Api(handle.endpoint, handle.training_key, handle.prediction_key)
        r = api.t("POST", f"/projects/{info['project_id']}/train",
                  params={"trainingType": "Advanced", "reservedBudgetInHours": str(10**30), "forceTrain": "true"})
        assert_azure_error(r)
        assert api.t("GET", f"/projects/{info['project_id']}/iterations").json()[0]["status"] == "Completed"
    ws.close()


# ---- label files and archives ------------------------------------------------------------------------------------
@pytest.mark.parametrize("odd", ["a\u2028b", "c\x85d", "e\u2029f", "g\x1ch", "i\x0bj"])
def test_a_yolo_round_trip_keeps_every_label_whatever_the_tag_names_hold(tmp_path, odd):
    """classes.txt was read with splitlines(), which also breaks on U+2028, U+0085...: every label after such a
    tag name shifted to the next class. Lines are split on line ends only now."""
    from cvlab.datasets import formats
    from cvlab.datasets.records import Record, Region
    names = ["first", odd, "after"]
    records = [Record(f"r{i}.png", image=Image.new("RGB", (64, 48), (40 * i, 90, 30)),
                      regions=[Region(name, 0.1 + 0.05 * i, 0.2, 0.3, 0.4)])
               for i, name in enumerate(names * 2)]
    out = formats.write(records, tmp_path / "yolo", "yolo")
    back = formats.read(out, "yolo")
    assert back.tags == names
    got = {r.name: [g.tag for g in r.regions] for r in back.records}
    assert got == {f"r{i}.png": [name] for i, name in enumerate(names * 2)}


@pytest.mark.parametrize("odd", ["a\u2028b", "c\x85d", "e\u2029f", "tab\there", "nul\x00"])
def test_tag_names_with_line_separators_or_controls_are_refused(ws, odd):
    """Such names were accepted (and then broke label files); Azure's names are one line of text."""
    p = ws.create_project("names")
    with pytest.raises(CvlabError) as e:
        ws.create_tag(p.id, odd)
    assert e.value.status == 400 and e.value.code == "BadRequestTagName"
    assert ws.get_tags(p.id) == []


def _zip_with_a_member_lying_about_its_size(path, real: bytes, declared: int) -> None:
    """A deflated member whose headers (local and central) declare ``declared`` bytes, fewer than it inflates to."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("red/ok.png", png(8, 8))
        zf.writestr("red/bomb.png", real)
    raw = bytearray(path.read_bytes())
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):  # uncompressed-size field
        at = -1
        while (at := raw.find(signature, at + 1)) >= 0:
            name_len = struct.unpack("<H", raw[at + (26 if signature == b"PK\x03\x04" else 28):][:2])[0]
            name_at = at + (30 if signature == b"PK\x03\x04" else 46)
            if bytes(raw[name_at:name_at + name_len]) == b"red/bomb.png":
                raw[at + offset:at + offset + 4] = struct.pack("<I", declared)
    path.write_bytes(bytes(raw))


def test_a_zip_member_that_inflates_past_its_declared_size_is_a_cvlab_error(ws, tmp_path):
    """It failed with a raw zipfile.BadZipFile (a 500 over REST, a traceback in a notebook)."""
    from cvlab.datasets import formats
    from cvlab.datasets.importing import import_path
    archive = tmp_path / "lying.zip"
    _zip_with_a_member_lying_about_its_size(archive, b"\x00" * 5_000_000, declared=100)
    with pytest.raises(CvlabError) as e:
        formats.extract_zip(archive, tmp_path / "out")
    assert e.value.status == 400 and "bomb.png" in e.value.message
    assert not (tmp_path / "out" / "red" / "bomb.png").exists()
    before = snapshot(ws)
    with pytest.raises(CvlabError):
        import_path(ws, archive, project="lying")
    assert snapshot(ws) == before and ws.find_project("lying") is None


def test_a_zip_member_with_damaged_data_is_a_cvlab_error(tmp_path):
    from cvlab.datasets import formats
    archive = tmp_path / "damaged.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("red/a.png", bytes(range(256)) * 4000)  # deflates to a few kB
    raw = bytearray(archive.read_bytes())
    middle = len(raw) // 3  # inside the deflated data, before the central directory
    raw[middle:middle + 64] = bytes(64)
    archive.write_bytes(bytes(raw))
    with pytest.raises(CvlabError) as e:
        formats.extract_zip(archive, tmp_path / "out")
    assert e.value.status == 400 and "a.png" in e.value.message


# ---- figures -----------------------------------------------------------------------------------------------------
NAMES = ["$\\undefinedmacro{x}$", "$x^2$ price", "cost $5 or $6", "plain"]


def _evaluation(project_type="Classification", classification_type="Multiclass"):
    from cvlab.performance import Evaluation
    ids = [f"00000000-0000-0000-0000-00000000000{i}" for i in range(len(NAMES))]
    tags = [{"id": i, "name": n, "type": "Regular"} for i, n in zip(ids, NAMES)]
    box = {"left": 0.1, "top": 0.1, "width": 0.3, "height": 0.3}
    records = []
    for k in range(8):
        truth, guess = ids[k % 4], ids[(k + k // 4) % 4]
        if project_type == "ObjectDetection":
            records.append({"image_id": f"i{k}", "split": "cv", "fold": 0,
                            "truth": {"tag_ids": [truth], "regions": [{"tag_id": truth, **box}]},
                            "predictions": [{"tag_id": guess, "probability": 0.9, "bounding_box": box}]})
        else:
            probs = {i: (0.7 if i == guess else 0.1) for i in ids}
            records.append({"image_id": f"i{k}", "split": "cv", "fold": k % 2,
                            "truth": {"tag_ids": [truth], "regions": []},
                            "predictions": [{"tag_id": i, "probability": p, "bounding_box": None}
                                            for i, p in probs.items()]})
    return Evaluation.from_dict({"project_type": project_type, "classification_type": classification_type,
                                 "k_folds": 2 if project_type == "Classification" else 1, "tags": tags,
                                 "records": records})


def _shown(fig) -> list[str]:
    """Every text of a drawn figure as matplotlib shows it (after its "$" handling)."""
    from matplotlib.text import Text
    fig.savefig(io.BytesIO(), format="png")  # as Jupyter shows it; raised ValueError from mathtext before the fix
    return [t._preprocess_math(t.get_text())[0] for t in fig.findobj(Text) if t.get_text()]


@pytest.mark.parametrize("kind", ["Multiclass", "Multilabel", "ObjectDetection"])
def test_tag_names_with_dollar_signs_draw_literally_in_every_figure(kind):
    """A tag named "$\\undefinedmacro{x}$" made every Performance view of the project fail in mathtext."""
    from cvlab import views
    ev = _evaluation("ObjectDetection", None) if kind == "ObjectDetection" else _evaluation(classification_type=kind)
    figures = [views.pr_curves(ev), views.threshold_sweep(ev), views.threshold_sweep(ev, tag_id=ev.tags[0]["id"]),
               views.mistakes_gallery(ev, lambda image_id: Image.new("RGB", (64, 64), (90, 90, 90)))]
    if kind != "ObjectDetection":
        figures.append(views.confusion_matrix(ev))
    seen = " | ".join(text for fig in figures for text in _shown(fig))
    for name in NAMES:
        assert name in seen, (name, seen[:500])


def test_the_threshold_explorer_draws_tag_names_literally():
    """The explorer widget draws on views' helpers: a "$" tag name in its legend and title must draw too."""
    from cvlab.widgets.explorer import ThresholdExplorer
    explorer = ThresholdExplorer(_evaluation())
    assert explorer.plot.value[:4] == b"\x89PNG"
    explorer.curve_tag.value = explorer.curve_tag.options[1][1]  # one tag's curves: its name in the title
    title = explorer.ax_sweep.title
    assert title._preprocess_math(title.get_text())[0].endswith(NAMES[0])
    legend = [t._preprocess_math(t.get_text())[0] for t in explorer.ax_pr.get_legend().get_texts()]
    assert all(any(text.startswith(n) for text in legend) for n in NAMES)
    assert explorer._render()[:4] == b"\x89PNG"


# ---- the Python API and text that is not Unicode -------------------------------------------------------------------
def test_the_python_api_refuses_text_that_is_not_unicode_before_storing_it(ws):
    """update_image_metadata stored a lone surrogate and every later listing of that image failed."""
    p = ws.create_project("texts")
    tag = ws.create_tag(p.id, "ok")
    image = ws.create_images(p.id, [ImageEntry(png(32, 32), "a.png", [tag.id])]).images[0].image
    it = ws.create_iteration(p.id)
    before = snapshot(ws)
    bad = "q\ud800"
    attempts = [
        lambda: ws.create_project(bad),
        lambda: ws.create_project("fine", description=bad),
        lambda: ws.update_project(p.id, name=bad),
        lambda: ws.create_tag(p.id, bad),
        lambda: ws.create_tag(p.id, "fine", description=bad),
        lambda: ws.update_tag(p.id, tag.id, name=bad),
        lambda: ws.update_image_metadata(p.id, [image.id], {"note": bad}),
        lambda: ws.update_image_metadata(p.id, [image.id], {bad: "x"}),
        lambda: ws.update_iteration(p.id, it.id, name=bad),
        lambda: ws.create_images(p.id, [ImageEntry(png(32, 32, seed=5), "b.png", [tag.id])], metadata={"k": bad}),
    ]
    for attempt in attempts:
        with pytest.raises(CvlabError) as e:
            attempt()
        assert e.value.status == 400 and "Unicode" in e.value.message, e.value
    assert snapshot(ws) == before
    assert [i.id for i in ws.get_images(p.id)] == [image.id]


def test_a_quiz_score_named_with_a_lone_surrogate_is_refused(ws):
    from cvlab import workshop
    with pytest.raises(CvlabError) as e:
        workshop.submit_quiz(ws, {"quiz": "q\ud800", "answered": 2, "correct": 1})
    assert e.value.status == 400
    assert not ws.get_setting(workshop.QUIZ_SETTING)


def test_decodes_share_one_budget():
    """However many threads decode, the pixels held at once stay within the budget (one larger than the whole
    budget runs alone); ordering by events, not by time."""
    from cvlab.images import _Budget
    budget = _Budget(100)
    first_in, release, second_in = threading.Event(), threading.Event(), threading.Event()
    peak = []

    def hold(n, entered, wait_for=None):
        with budget.reserve(n):
            peak.append(budget.used)
            entered.set()
            if wait_for is not None:
                wait_for.wait(30)
    a = threading.Thread(target=hold, args=(60, first_in, release))
    a.start()
    assert first_in.wait(30)
    b = threading.Thread(target=hold, args=(60, second_in))
    b.start()
    assert not second_in.wait(0.2)  # 60 + 60 > 100: the second waits for the first
    release.set()
    a.join(30)
    b.join(30)
    assert second_in.is_set() and max(peak) <= 100
    with budget.reserve(10**9):  # larger than the budget: runs alone, capped
        assert budget.used == 100
    assert budget.used == 0


def test_scaled_copies_are_decoded_small_and_cached(tmp_path):
    from cvlab import images
    path = tmp_path / "big.jpg"
    Image.new("RGB", (4000, 3000), (200, 30, 30)).save(path, quality=80)
    first = images.scaled_jpeg(path, 256)
    assert images.scaled_jpeg(path, 256) is first  # the cache
    small = Image.open(io.BytesIO(first))
    assert max(small.size) == 256 and small.size[0] / small.size[1] == pytest.approx(4 / 3, rel=0.01)
    assert small.getpixel((10, 10))[0] > 150
