"""The iteration comparison compares like with like (issue 18, finding 8): on the same held-out images when both
iterations have them, and it says so when self-test numbers come from different images or training types."""
from __future__ import annotations

import pytest

from cvlab.datasets.swatches import swatch_jpeg
from cvlab.training import train_project
from cvlab.widgets import compare_iterations
from cvlab.workspace import ImageEntry, Workspace


@pytest.mark.slow
def test_comparison_defaults_to_the_same_held_out_images(trained_colours, monkeypatch):
    monkeypatch.setenv("CVLAB_SECONDS_PER_BUDGET_HOUR", "3")
    path, info = trained_colours()
    ws = Workspace(path)
    try:
        pid = info["project_id"]
        for name, rgb in (("red", (200, 30, 30)), ("blue", (30, 40, 200))):   # one more image per tag, held out
            ws.create_images(pid, [ImageEntry(swatch_jpeg(rgb, 50 + (name == "blue")), f"{name}-held.jpg",
                                              [info["tags"][name]])])
        held = [im.id for im in ws.iter_images(pid) if im.original_name.endswith("-held.jpg")]
        ws.update_image_metadata(pid, held, {"holdout": "true"})
        second = train_project(ws, pid, force_train=True, seed=1, show_progress=False)
        assert len(held) == 2 and second.status == "Completed"
        first_vs_second = compare_iterations(pid, info["iteration_id"], second.id, ws=ws)
        assert first_vs_second.split.value == "cv" and first_vs_second.split.layout.display == "none"
        assert "each measured on its own training images" in first_vs_second.table.value

        third = train_project(ws, pid, force_train=True, seed=2, show_progress=False)
        fair = compare_iterations(pid, second.id, third.id, ws=ws)
        assert fair.split.value == "holdout"
        pa, pb = fair.performances
        assert pa.split == pb.split == "holdout" and pa.image_count == pb.image_count == len(held)
        assert f"the same {len(held)} held-out images" in fair.table.value
        fair.split.value = "cv"
        assert "own training images" in fair.table.value

        advanced = train_project(ws, pid, training_type="Advanced", reserved_budget_in_hours=1, force_train=True,
                                 seed=3, show_progress=False)
        mixed = compare_iterations(pid, third.id, advanced.id, ws=ws, split="cv")
        assert "not like with like" in mixed.table.value and "Regular vs Advanced" in mixed.table.value
    finally:
        ws.close()
