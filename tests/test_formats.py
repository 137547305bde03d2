"""Coordinate conversions (hypothesis round trips), the five file formats, and unsafe / malformed input."""
from __future__ import annotations

import json
import os
import zipfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cvlab.datasets import coords, formats, generate
from cvlab.datasets.formats import FormatError
from cvlab.datasets.records import Record, Region
from cvlab.errors import CvlabError

# ------------------------------------------------------------------------------------------------- coords
unit = st.floats(0, 1, allow_nan=False)
side = st.integers(1, 10_000)


@st.composite
def boxes(draw):
    left, top = draw(unit), draw(unit)
    return (left, top, draw(st.floats(0, 1 - left)), draw(st.floats(0, 1 - top)))


@settings(max_examples=200, deadline=None)
@given(boxes(), side, side)
def test_round_trips(box, w, h):
    for there, back in ((coords.ltwh_to_coco, coords.coco_to_ltwh), (coords.ltwh_to_voc, coords.voc_to_ltwh),
                        (coords.ltwh_to_pixels, coords.pixels_to_ltwh)):
        assert back(there(box, w, h), w, h) == pytest.approx(box, abs=1e-9)
    assert coords.yolo_to_ltwh(coords.ltwh_to_yolo(box)) == pytest.approx(box, abs=1e-12)
    # conventions agree with each other: COCO's corner+size and VOC's corners describe the same pixels
    x, y, bw, bh = coords.ltwh_to_coco(box, w, h)
    assert coords.ltwh_to_voc(box, w, h) == pytest.approx((x, y, x + bw, y + bh))
    cx, cy, yw, yh = coords.ltwh_to_yolo(box)
    assert (cx * w - yw * w / 2, cy * h - yh * h / 2) == pytest.approx((x, y), abs=1e-6)


def test_known_values_and_validation():
    assert coords.ltwh_to_coco((0.25, 0.5, 0.5, 0.25), 640, 480) == (160, 240, 320, 120)
    assert coords.ltwh_to_voc((0.25, 0.5, 0.5, 0.25), 640, 480) == (160, 240, 480, 360)
    assert coords.ltwh_to_yolo((0.25, 0.5, 0.5, 0.25)) == (0.5, 0.625, 0.5, 0.25)
    assert coords.validate_ltwh((0.1, 0.1, 0.2, 0.2)) is None
    assert "outside" in coords.validate_ltwh((0.9, 0.1, 0.2, 0.2))
    assert "> 0" in coords.validate_ltwh((0.1, 0.1, 0.0, 0.2))
    assert coords.clip_ltwh((-0.0005, 0.2, 1.0005, 0.3)) == pytest.approx((0, 0.2, 1.0, 0.3))
    with pytest.raises(ValueError):
        coords.coco_to_ltwh((1, 1, 1, 1), 0, 10)


# ------------------------------------------------------------------------------------------------ formats
@pytest.fixture(scope="module")
def site():
    return generate("site", 6, seed=5, size=160)


@pytest.fixture(scope="module")
def parts_ml():
    return generate("parts-multilabel", 10, seed=5, size=96)


def _labels(records):
    """Labels by image name, boxes on a 1e-4 grid (floor after a tiny nudge, so 0.45625 +- 1e-12 agree)."""
    return {r.name: (sorted(r.tags), sorted((g.tag, *(int(v * 1e4 + 0.5 + 1e-6) for v in g.ltwh))
                                            for g in r.regions)) for r in records}


@pytest.mark.parametrize("fmt", ["coco", "voc", "yolo", "cvjson"])
def test_detection_round_trip(fmt, site, tmp_path):
    formats.write(site, tmp_path, fmt, tags=["helmet", "vest", "person"])
    assert formats.detect_format(tmp_path) == fmt
    got = formats.read(tmp_path)
    assert got.project_type == "ObjectDetection" and set(got.tags) == {"helmet", "vest", "person"}
    tol = 0.51 / 160 if fmt == "voc" else 1e-5  # VOC stores whole pixels
    for a, b in zip(site, got.records):
        assert a.name == b.name and b.path.is_file()
        assert [g.tag for g in a.regions] == [g.tag for g in b.regions]
        for ga, gb in zip(a.regions, b.regions):
            assert gb.ltwh == pytest.approx(ga.ltwh, abs=tol)


@pytest.mark.parametrize("fmt", ["folder", "cvjson"])
def test_classification_round_trip_keeps_multilabel_and_negative(fmt, parts_ml, tmp_path):
    formats.write(parts_ml, tmp_path, fmt, negative_tags=["Negative"])
    got = formats.read(tmp_path)
    assert got.classification_type == "Multilabel"
    assert got.negative_tags == {"Negative"}
    assert _labels(got.records) == {r.name: (sorted(r.tags), []) for r in parts_ml}


def test_conversion_chain_preserves_labels(site, tmp_path):
    formats.write(site, tmp_path / "a", "coco")
    hop = formats.read(tmp_path / "a")
    for i, fmt in enumerate(["yolo", "cvjson", "coco"]):
        formats.write(hop.records, tmp_path / f"b{i}", fmt, tags=hop.tags)
        hop = formats.read(tmp_path / f"b{i}")
    assert _labels(hop.records) == _labels(site)


def test_coco_output_loads_in_pycocotools(site, tmp_path):
    from pycocotools.coco import COCO

    formats.write(site, tmp_path, "coco", tags=["helmet", "vest", "person"])
    coco = COCO(str(tmp_path / "annotations.json"))
    assert len(coco.getImgIds()) == len(site)
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == ["helmet", "vest", "person"]
    ann = coco.loadAnns(coco.getAnnIds(imgIds=[1]))[0]
    r = site[0].regions[0]
    assert ann["bbox"] == pytest.approx(coords.ltwh_to_coco(r.ltwh, 160, 160), abs=1e-3)


def test_coco_file_with_another_name_is_found(site, tmp_path):
    formats.write(site[:2], tmp_path, "coco", tags=["helmet", "vest", "person"])
    (tmp_path / "annotations.json").rename(tmp_path / "_annotations.coco.json")  # Roboflow's name
    assert formats.detect_format(tmp_path) == "coco"
    assert _labels(formats.read(tmp_path).records) == _labels(site[:2])


def test_yolo_reads_ultralytics_layout_with_data_yaml(tmp_path, site):
    formats.write(site[:2], tmp_path, "yolo", tags=["helmet", "vest", "person"])
    (tmp_path / "classes.txt").unlink()  # names from data.yaml only
    (tmp_path / "images" / "train").mkdir()
    (tmp_path / "labels" / "train").mkdir()
    for p in list((tmp_path / "images").glob("*.jpg")):
        p.rename(tmp_path / "images" / "train" / p.name)
        lbl = tmp_path / "labels" / (p.stem + ".txt")
        lbl.rename(tmp_path / "labels" / "train" / lbl.name)
    got = formats.read(tmp_path, "yolo")
    assert _labels(got.records) == _labels(site[:2])


def test_classification_sets_refuse_box_formats(parts_ml, tmp_path):
    with pytest.raises(CvlabError, match="folder or cvjson"):
        formats.write(parts_ml, tmp_path, "coco")
    with pytest.raises(CvlabError, match="folder-per-tag holds image tags only"):
        formats.write(generate("site", 1, size=96), tmp_path / "x", "folder")


# ------------------------------------------------------------------------------------- malformed input
@pytest.fixture
def one_image(tmp_path):
    from PIL import Image

    Image.new("RGB", (100, 50), "gray").save(tmp_path / "a.jpg")
    return tmp_path


def _coco(root, **over):
    doc = {"images": [{"id": 1, "file_name": "a.jpg", "width": 100, "height": 50}],
           "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 20]}],
           "categories": [{"id": 1, "name": "helmet"}]}
    doc.update(over)
    (root / "annotations.json").write_text(json.dumps(doc, indent=1))


def test_coco_errors_name_file_and_field(one_image):
    _coco(one_image)
    assert formats.read(one_image).records[0].regions[0].ltwh == pytest.approx((0.1, 0.2, 0.2, 0.4))
    _coco(one_image, annotations=[{"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 20]}])
    with pytest.raises(FormatError, match=r"annotations\.json \[annotations\[0\]\.bbox\]") as e:
        formats.read(one_image)
    assert e.value.code == "BadRequest" and e.value.status == 400 and isinstance(e.value, ValueError)
    _coco(one_image, annotations=[{"id": 1, "image_id": 1, "category_id": 7, "bbox": [1, 1, 2, 2]}])
    with pytest.raises(FormatError, match="category_id 7"):
        formats.read(one_image)
    _coco(one_image, annotations=[{"id": 1, "image_id": 1, "category_id": 1, "bbox": [90, 10, 20, 20]}])
    with pytest.raises(FormatError, match="outside the image") as e:
        formats.read(one_image)
    assert e.value.code == "BadRequestImageRegions"
    (one_image / "annotations.json").write_text('{"images": [\n  {"id": 1,,}\n]}')
    with pytest.raises(FormatError, match=r"annotations\.json:2: invalid JSON") as e:
        formats.read(one_image)
    assert e.value.line == 2


def test_yolo_errors_name_the_line(one_image):
    (one_image / "classes.txt").write_text("helmet\nvest\n")
    (one_image / "a.txt").write_text("0 0.5 0.5 0.2 0.2\n1 0.5 0.5 0.2\n")
    with pytest.raises(FormatError, match=r"a\.txt:2: expected 'class cx cy w h'"):
        formats.read(one_image, "yolo")
    (one_image / "a.txt").write_text("0 0.5 0.5 0.2 0.2\n\n5 0.5 0.5 0.2 0.2\n")
    with pytest.raises(FormatError, match=r"a\.txt:3: class 5 is not in the 2 class names"):
        formats.read(one_image, "yolo")
    (one_image / "a.txt").write_text("0 0.5 nan 0.2 0.2\n")
    with pytest.raises(FormatError, match=r"a\.txt:1: expected a finite number"):
        formats.read(one_image, "yolo")


def test_voc_errors_name_line_or_field(one_image):
    xml = ("<annotation>\n<filename>a.jpg</filename>\n<size><width>100</width><height>50</height></size>\n"
           "<object><name>vest</name>{box}</object>\n</annotation>")
    good = "<bndbox><xmin>10</xmin><ymin>5</ymin><xmax>60</xmax><ymax>45</ymax></bndbox>"
    (one_image / "a.xml").write_text(xml.format(box=good))
    assert formats.read(one_image).records[0].regions[0].ltwh == pytest.approx((0.1, 0.1, 0.5, 0.8))
    (one_image / "a.xml").write_text(xml.format(box="<bndbox><xmin>10</xmin><ymin>5</ymin><xmax>x</xmax>"
                                                    "<ymax>45</ymax></bndbox>"))
    with pytest.raises(FormatError, match=r"a\.xml \[annotation/object\[1\]/bndbox/xmax\]: expected a number"):
        formats.read(one_image)
    (one_image / "a.xml").write_text(xml.format(box=""))
    with pytest.raises(FormatError, match=r"missing <bndbox>"):
        formats.read(one_image)
    (one_image / "a.xml").write_text("<annotation>\n<filename>a.jpg</filename>\n<oops></annotation>")
    with pytest.raises(FormatError, match=r"a\.xml:3: invalid XML"):
        formats.read(one_image)


def test_cvjson_errors(one_image):
    def write(doc):
        (one_image / "customvision.json").write_text(json.dumps(doc))

    write({"images": [{"filename": "a.jpg", "tags": [{"tag": "vest", "left": 0.1, "top": 0.1, "width": 0.2}]}]})
    with pytest.raises(FormatError, match=r"\[images\[0\]\.tags\[0\]\].*missing \['height'\]"):
        formats.read(one_image)
    write({"images": [{"filename": "b.jpg", "tags": []}]})
    with pytest.raises(FormatError, match="'b.jpg' not found"):
        formats.read(one_image)
    write([{"filename": "a.jpg", "tags": ["ok", {"tag": "vest", "left": 0, "top": 0, "width": 1, "height": 1}]}])
    with pytest.raises(FormatError, match="mixes image tags and regions"):
        formats.read(one_image)
    write([{"filename": "a.jpg", "tags": [{"tag": "vest", "left": 0, "top": 0, "width": 1, "height": 1}]}])
    assert formats.read(one_image).project_type == "ObjectDetection"


# ------------------------------------------------------------------------------------------ unsafe paths
@pytest.mark.parametrize("name", ["../outside.jpg", "/etc/passwd", "sub/../../outside.jpg", "C:\\Windows\\x.jpg",
                                  "..\\outside.jpg"])
def test_annotation_paths_cannot_escape(one_image, name):
    (one_image / "customvision.json").write_text(json.dumps([{"filename": name, "tags": ["ok"]}]))
    with pytest.raises(FormatError, match=r"absolute path|climbs out|leaves") as e:
        formats.read(one_image)
    assert "customvision.json" in str(e.value) and "images[0].filename" in str(e.value)
    _coco(one_image, images=[{"id": 1, "file_name": name, "width": 100, "height": 50}])
    with pytest.raises(FormatError, match=r"absolute path|climbs out|leaves"):
        formats.read(one_image, "coco")


def test_symlink_out_of_the_folder_is_refused(tmp_path):
    from PIL import Image

    secret = tmp_path / "secret"
    secret.mkdir()
    Image.new("RGB", (10, 10)).save(secret / "s.jpg")
    root = tmp_path / "data"
    (root / "ok").mkdir(parents=True)
    os.symlink(secret / "s.jpg", root / "ok" / "s.jpg")
    with pytest.raises(FormatError, match="symlink"):
        formats.read(root, "folder")
    (root / "customvision.json").write_text(json.dumps([{"filename": "ok/s.jpg", "tags": ["ok"]}]))
    with pytest.raises(FormatError, match="leaves the data folder"):
        formats.read(root, "cvjson")


def test_zip_slip_is_refused(tmp_path):
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(bad, "w") as z:
        z.writestr("set/ok/a.jpg", b"x")
        z.writestr("../../evil.txt", b"owned")
    with pytest.raises(FormatError, match="climbs out") as e:
        formats.extract_zip(bad, tmp_path / "out")
    assert "bad.zip" in str(e.value)
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path.parent / "evil.txt").exists()
    absolute = tmp_path / "abs.zip"
    with zipfile.ZipFile(absolute, "w") as z:
        z.writestr("/tmp/evil.txt", b"owned")
    with pytest.raises(FormatError, match="absolute"):
        formats.extract_zip(absolute, tmp_path / "out2")
    (tmp_path / "notzip.zip").write_bytes(b"nope")
    with pytest.raises(FormatError, match="not a valid zip"):
        formats.extract_zip(tmp_path / "notzip.zip", tmp_path / "out3")


def test_unknown_format_and_empty_folder(tmp_path):
    with pytest.raises(CvlabError, match="unknown format 'png'"):
        formats.read(tmp_path, "png")
    with pytest.raises(FormatError, match="found no images"):
        formats.read(tmp_path)
    with pytest.raises(CvlabError, match="unknown format"):
        formats.write([Record("a.jpg", tags=["x"])], tmp_path, "csv")


def test_writer_names_are_unique_and_safe(tmp_path):
    from PIL import Image

    im = Image.new("RGB", (20, 20), "red")
    recs = [Record("../a.jpg", image=im, tags=["x/y"]), Record("a.jpg", image=im, tags=["x/y"]),
            Record("A.JPG", image=im, tags=["x/y"])]
    formats.write(recs, tmp_path / "out", "folder")
    files = sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.*"))
    assert files == ["x_y/A-2.JPG", "x_y/a-1.jpg", "x_y/a.jpg"]  # case-insensitive clash avoided
    assert Region("x", 0, 0, 1, 1).ltwh == (0, 0, 1, 1)


@st.composite
def labelled_boxes(draw):
    n = draw(st.integers(1, 4))
    out = []
    for _ in range(n):
        left, top = draw(st.floats(0, 0.95)), draw(st.floats(0, 0.95))
        w = draw(st.floats(0.02, 1 - left)) if left < 0.98 else 1 - left
        h = draw(st.floats(0.02, 1 - top)) if top < 0.98 else 1 - top
        out.append(Region(draw(st.sampled_from(["helmet", "vest", "person"])), left, top, w, h))
    return out


@settings(max_examples=15, deadline=None)
@given(labelled_boxes())
def test_any_valid_box_survives_every_detection_format(tmp_path_factory, regions):
    from PIL import Image

    rec = Record("img.png", image=Image.new("RGB", (100, 50)), regions=regions)
    for fmt in ("coco", "voc", "yolo", "cvjson"):
        out = tmp_path_factory.mktemp(fmt)
        formats.write([rec], out, fmt, tags=["helmet", "vest", "person"])
        (got,) = formats.read(out).records
        # each format's precision: VOC whole-pixel corners (size off by <= 1 px), COCO 0.001 px, YOLO centre+size and cvjson at 6 decimals
        tol = {"voc": 1.0 / 50, "coco": 0.0005 / 50, "yolo": 1e-6, "cvjson": 5e-7}[fmt] + 1e-9
        assert [g.tag for g in got.regions] == [g.tag for g in regions]
        for a, b in zip(regions, got.regions):
            assert b.ltwh == pytest.approx(a.ltwh, abs=tol)
            assert b.left + b.width <= 1.0 and b.top + b.height <= 1.0
