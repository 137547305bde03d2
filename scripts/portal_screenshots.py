"""The README's two portal screenshots (docs/portal-image-detail.png, docs/portal-performance.png), made the way a
learner gets there: Microsoft Learn's detection lab photos and boxes, one Quick training with the default settings
(several minutes on 2 cores), then the portal in headless Chromium at 1280x800.

    .venv/bin/python scripts/portal_screenshots.py [--out docs]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=str(ROOT / "docs"))
    out = Path(parser.parse_args().out)
    out.mkdir(parents=True, exist_ok=True)
    from PIL import Image

    import cvlab
    from cvlab.domains import find_domain
    from cvlab.service.server import start_background
    from cvlab.training import train_project
    from cvlab.workspace import ImageEntry
    from test_portal_support import FRUIT, FRUIT_BOXES, Portal, browser_session

    folder = FRUIT / "detection"
    with tempfile.TemporaryDirectory() as tmp:
        ws = cvlab.Workspace(Path(tmp) / "ws")
        p = ws.create_project("Detect Fruit", "Object detection for fruit.",
                              domain_id=find_domain("General", "ObjectDetection").id)
        tags = {t: ws.create_tag(p.id, t).id for t in ("apple", "banana", "orange")}
        files = [(folder / "training-images" / name, boxes) for name, boxes in FRUIT_BOXES.items()]
        for f in json.loads((folder / "tagged-images" / "tagged-images.json").read_text())["files"]:
            files.append((folder / "tagged-images" / f["filename"],
                          [(r["tag"], r["left"], r["top"], r["width"], r["height"]) for r in f["tags"]]))
        entries = [ImageEntry(path.read_bytes(), path.name, regions=tuple(
            {"tag_id": tags[t], "left": left, "top": top, "width": w, "height": h} for t, left, top, w, h in boxes))
            for path, boxes in files]
        ws.create_images(p.id, entries[:32])
        ws.create_images(p.id, entries[32:])
        it = train_project(ws, p.id, show_progress=False)
        assert it.status == "Completed", it.training_error_details
        with start_background(ws) as handle, browser_session() as browser:
            portal = Portal(browser, handle, "readme")
            page = portal.open(handle.training_key, f"#/projects/{p.id}/performance")
            page.get_by_role("group", name="mAP", exact=False).first.wait_for()
            page.wait_for_timeout(500)
            page.screenshot(path=str(out / "portal-performance.png"))
            page.get_by_role("link", name="Training Images").click()
            page.get_by_role("button", name=f"Image {len(entries)}").first.wait_for()
            page.locator(".grid .thumb-button").last.click()  # the oldest: a photo boxed in the lab
            page.wait_for_function("() => { const i = document.querySelector('.cvr-img'); return i && i.complete"
                                   " && i.naturalWidth > 0 && document.querySelectorAll('.cvr-region').length; }")
            box = page.locator(".cvr-region").first.bounding_box()
            page.mouse.click(box["x"] + 8, box["y"] + 8)  # one region selected: its handles show
            page.wait_for_timeout(300)
            page.screenshot(path=str(out / "portal-image-detail.png"))
            portal.close()
        ws.close()
    for name in ("portal-performance.png", "portal-image-detail.png"):  # 256 colours: a fifth of the bytes
        im = Image.open(out / name).convert("RGB")
        im.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(out / name, optimize=True)
        print(out / name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
