"""Import into / export from a real Workspace, the sample projects, and the `cvlab data` command."""
from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import pytest

from cvlab import domains
from cvlab.cli import main
from cvlab.datasets import DATA_DIR, formats, generate, importing, seed_default_workspace
from cvlab.errors import CvlabError
from cvlab.workspace import Workspace


@pytest.fixture(scope="module")
def site_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    formats.write(generate("site", 8, seed=9, size=128), out, "coco", tags=["helmet", "vest", "person"])
    return out


@pytest.fixture(scope="module")
def parts_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("parts")
    formats.write(generate("parts", 8, seed=9, size=96), out, "folder")
    return out


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def test_import_creates_project_tags_and_boxes_then_export_round_trips(tmp_path, site_dir):
    ws = Workspace(tmp_path / "ws")
    report = importing.import_path(ws, site_dir, project="Site")
    assert report.project_created and report.created == 8 and not report.failed
    assert report.tags_created == ["helmet", "vest", "person"]  # file order, so YOLO/COCO ids stay stable
    p = ws.find_project("Site")
    assert p.project_type == "ObjectDetection"
    assert p.domain_id == domains.find_domain("General (compact) [S1]", "ObjectDetection").id
    # importing again adds nothing and changes nothing
    again = importing.import_path(ws, site_dir, project="Site")
    assert (again.created, again.duplicates, again.project_created) == (0, 8, False)
    assert ws.get_image_count(p.id) == 8

    for fmt in ("coco", "voc", "yolo", "cvjson"):
        out = importing.export_project(ws, p.id, tmp_path / fmt, fmt)
        got = formats.read(out)
        source = formats.read(site_dir)
        by_sha = {_sha(r.path): r for r in source.records}
        assert len(got.records) == 8
        for r in got.records:
            src = by_sha[_sha(r.path)]  # the stored bytes were copied, not re-encoded
            tol = 0.51 / 128 if fmt == "voc" else 1e-5
            assert sorted(g.tag for g in r.regions) == sorted(g.tag for g in src.regions)
            for a, b in zip(sorted(r.regions, key=lambda g: (g.tag, g.left, g.top)),
                            sorted(src.regions, key=lambda g: (g.tag, g.left, g.top))):
                assert a.ltwh == pytest.approx(b.ltwh, abs=tol)


def test_classification_import_negative_tag_and_folder_export(tmp_path, parts_dir):
    ws = Workspace(tmp_path / "ws")
    report = importing.import_path(ws, parts_dir, project="Parts")
    assert report.created == 8 and not report.failed
    p = ws.find_project("Parts")
    assert p.classification_type == "Multiclass"
    assert p.domain_id == domains.find_domain("General (compact)", "Classification").id
    types = {t.name: (t.type, t.image_count) for t in ws.get_tags(p.id)}
    assert types == {"ok": ("Regular", 2), "cracked": ("Regular", 2), "rusted": ("Regular", 2),
                     "Negative": ("Negative", 2)}
    out = importing.export_project(ws, p.id, tmp_path / "out")
    assert sorted(d.name for d in out.iterdir()) == ["Negative", "cracked", "ok", "rusted"]
    assert {_sha(f) for f in out.rglob("*.jpg")} == {_sha(f) for f in parts_dir.rglob("*.jpg")}


def test_wrong_project_type_is_refused_and_nothing_changes(tmp_path, site_dir, parts_dir):
    ws = Workspace(tmp_path / "ws")
    importing.import_path(ws, parts_dir, project="Parts")
    with pytest.raises(CvlabError, match="Classification, but this data set is ObjectDetection") as e:
        importing.import_path(ws, site_dir, project="Parts")
    assert e.value.status == 400
    assert ws.get_image_count(ws.find_project("Parts").id) == 8
    # a multilabel set into a multiclass project: the extra-tag images fail one by one, the rest go in
    ml = tmp_path / "ml"
    formats.write(generate("parts-multilabel", 5, seed=1, size=96), ml, "cvjson")
    report = importing.import_path(ws, ml, project="Parts")
    assert [f[1] for f in report.failed] == ["ErrorTagLimitExceed"]
    assert report.created + report.duplicates == 4


def test_zip_import_uses_the_single_top_folder(tmp_path, site_dir):
    archive = tmp_path / "site.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for f in site_dir.rglob("*"):
            if f.is_file():
                z.write(f, "site/" + f.relative_to(site_dir).as_posix())
    ws = Workspace(tmp_path / "ws")
    report = importing.import_path(ws, archive)
    assert report.project_name == "site" and report.created == 8


def test_import_batches_stay_within_azure_limit(tmp_path):
    calls = []
    ws = Workspace(tmp_path / "ws")
    real = ws.create_images

    def spy(project_id, entries, **kw):
        calls.append(len(entries))
        return real(project_id, entries, **kw)

    ws.create_images = spy  # observe the real method; it still does all the work
    p = ws.create_project("Many", domain_id=domains.find_domain("General (compact)").id)
    records = generate("parts", 70, seed=2, size=64)
    report = importing.import_records(ws, p.id, records)
    assert report.created == 70 and calls == [64, 6]


def test_seed_default_workspace_is_idempotent(tmp_path):
    ws = Workspace(tmp_path / "ws")
    first = seed_default_workspace(ws)
    assert set(first) == {"Parts (sample)", "Site safety (sample)"}
    assert seed_default_workspace(ws) == first
    assert len(ws.get_projects()) == 2
    parts, site = ws.get_project(first["Parts (sample)"]), ws.get_project(first["Site safety (sample)"])
    assert domains.get_domain(parts.domain_id).compact and parts.project_type == "Classification"
    assert domains.get_domain(site.domain_id).name == "General (compact) [S1]"
    counts = {t.name: t.image_count for t in ws.get_tags(parts.id)}
    assert counts == {"ok": 20, "cracked": 20, "rusted": 20, "Negative": 20}
    assert min(t.image_count for t in ws.get_tags(site.id)) >= 15  # Azure's minimum per tag for detection
    assert ws.get_image_count(site.id) == 40


def test_sample_data_matches_its_manifest():
    manifest = json.loads((DATA_DIR / "MANIFEST.json").read_text())
    files = {p.relative_to(DATA_DIR).as_posix() for p in DATA_DIR.rglob("*") if p.is_file()} - {
        "MANIFEST.json", "LICENSE.md"}
    assert files == set(manifest["files"])
    for rel, sha in manifest["files"].items():
        assert _sha(DATA_DIR / rel) == sha, rel
    synthetic = [rel for rel in files if rel.split("/")[0] not in manifest["photos"]]
    assert sum((DATA_DIR / rel).stat().st_size for rel in synthetic) < 8 * 1024 * 1024
    for folder in manifest["photos"]:  # shipped photos keep their own licence beside them
        assert (DATA_DIR / folder / "LICENSE").is_file() and (DATA_DIR / folder / "README.md").is_file()
        assert manifest["photos"][folder]["files"] == sum(1 for r in files if r.startswith(folder + "/"))


def test_cli_make_convert_import_export(tmp_path, capsys):
    ws = str(tmp_path / "ws")
    assert main(["data", "make", "site", "--out", str(tmp_path / "s"), "--count", "4", "--size", "96",
                 "--format", "voc"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["count"] == 4
    assert main(["data", "convert", str(tmp_path / "s"), "--out", str(tmp_path / "y"), "--format", "yolo"]) == 0
    assert formats.detect_format(tmp_path / "y") == "yolo"
    assert main(["data", "import", str(tmp_path / "y"), "--workspace", ws, "--project", "Hats",
                 "--domain", "General (compact)"]) == 0
    assert "Hats: 4 images added" in capsys.readouterr().out
    assert main(["data", "export", "--workspace", ws, "--project", "Hats", "--out", str(tmp_path / "e")]) == 0
    assert formats.detect_format(tmp_path / "e") == "coco"
    # refuses to overwrite, and says so
    assert main(["data", "make", "parts", "--out", str(tmp_path / "e"), "--count", "1"]) == 1
    assert "not an empty folder" in capsys.readouterr().err
    assert main(["data", "export", "--workspace", ws, "--project", "Nope", "--out", str(tmp_path / "n")]) == 1
    assert "no project named 'Nope'" in capsys.readouterr().err
    assert main(["data", "make", "parts", "--out", str(tmp_path / "p"), "--format", "yolo"]) == 1
    assert "parts is Classification: write it as folder or cvjson" in capsys.readouterr().err
    assert not (tmp_path / "p").exists()
    assert main(["data", "list"]) == 0
    assert "parts-subtle" in capsys.readouterr().out


def test_domain_by_name_or_id_and_type_checked(tmp_path, site_dir):
    ws = Workspace(tmp_path / "ws")
    with pytest.raises(CvlabError, match="is a Classification domain") as e:
        importing.import_path(ws, site_dir, project="A", domain=domains.find_domain("Food").id)
    assert e.value.code == "BadRequestProjectUnknownDomain" and ws.get_projects() == []
    with pytest.raises(CvlabError, match="No ObjectDetection domain is called 'Nope'"):
        importing.import_path(ws, site_dir, project="A", domain="Nope")
    report = importing.import_path(ws, site_dir, project="A", domain="Logo")
    assert domains.get_domain(ws.get_project(report.project_id).domain_id).name == "Logo"


def test_cli_seed(tmp_path, capsys):
    assert main(["data", "seed", "--workspace", str(tmp_path / "ws")]) == 0
    ids = json.loads(capsys.readouterr().out)
    assert set(ids) == {"Parts (sample)", "Site safety (sample)"}


def test_sample_data_is_what_the_manifest_command_regenerates():
    """data/ matches the generators as they are now (else MANIFEST's `regenerate` commands would lie)."""
    import io

    import numpy as np
    from PIL import Image

    from cvlab.datasets.samples import SAMPLES

    for s in SAMPLES:
        stored = formats.read(DATA_DIR / s.folder, s.format)
        by_name = {r.name: r for r in stored.records}
        for rec in generate(s.dataset, 3, seed=s.seed, size=s.size):
            disk = by_name[rec.name]
            assert (disk.tags, [g.ltwh for g in disk.regions]) == (
                rec.tags, [pytest.approx(g.ltwh, abs=1e-6) for g in rec.regions])
            buf = io.BytesIO()
            rec.image.save(buf, "JPEG", quality=92)  # as formats.write encodes
            a = np.asarray(Image.open(disk.path), np.float32)
            b = np.asarray(Image.open(buf), np.float32)
            assert np.abs(a - b).mean() < 0.5, rec.name  # same pixels (a different libjpeg may differ slightly)


def test_a_bad_box_fails_only_its_image(tmp_path):
    from cvlab.datasets.records import Record, Region

    ws = Workspace(tmp_path / "ws")
    p = ws.create_project("Boxes", domain_id=domains.find_domain("General (compact) [S1]", "ObjectDetection").id)
    good = generate("site", 2, seed=4, size=96)
    bad = Record("bad.jpg", image=good[0].image.transpose(0), regions=[Region("person", 0.8, 0.1, 0.5, 0.2)])
    edge = Record("edge.jpg", image=good[1].image.transpose(1),
                  regions=[Region("person", 0.7453125, 0.1, 0.2546875 + 5e-7, 0.2)])  # float noise at the border
    report = importing.import_records(ws, p.id, [good[0], bad, edge, good[1]])
    assert report.created == 3
    assert report.failed == [("bad.jpg", "BadRequestImageRegions",
                               "region 'person': box ends outside the image (right=1.3, bottom=0.3; both must be <= 1)")]


def test_seed_without_data_folder_draws_the_same_sets(tmp_path, monkeypatch):
    import dataclasses

    from cvlab.datasets import samples

    small = tuple(dataclasses.replace(s, count=8, size=96) for s in samples.SAMPLES)
    monkeypatch.setattr(samples, "SAMPLES", small)  # fewer, smaller images: same code path
    ws = Workspace(tmp_path / "ws")
    ids = seed_default_workspace(ws, data_dir=tmp_path / "no-data-here")
    parts = ws.get_project(ids["Parts (sample)"])
    assert {t.name: (t.type, t.image_count) for t in ws.get_tags(parts.id)} == {
        "ok": ("Regular", 2), "cracked": ("Regular", 2), "rusted": ("Regular", 2), "Negative": ("Negative", 2)}
    assert ws.get_image_count(ids["Site safety (sample)"]) == 8
