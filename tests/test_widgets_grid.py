"""The tagger's grid view and tag creation (issue 18, deliverable 5): tick many thumbnails, tag them at once,
undo the batch; create a tag in place. Driven through the widgets' own buttons, checked in the database."""
from __future__ import annotations


from cvlab.widgets import Tagger

from helpers import make_image_bytes


def _project(ws, kind="Multiclass", n=30):
    p = ws.create_project(f"grid-{kind}", classification_type=kind)
    for t in ("bolt", "gear"):
        ws.create_tag(p.id, t)
    ws.add_images(p.id, [make_image_bytes(48, 32, seed=i) for i in range(n)])
    return ws.get_project(p.id)


def _tags(ws, p):
    return {im.id: sorted(t.tag_name for t in im.tags) for im in ws.iter_images(p.id)}


def _pick(t, indexes):
    for i in indexes:
        t.grid.children[i].children[1].value = True       # the thumbnail's select button


def test_grid_tags_five_images_at_once_and_undo_puts_them_back(ws):
    p = _project(ws)
    t = Tagger(ws, p, view="Grid")
    assert len(t.grid.children) == 24 and "30 images · page 1 of 2" in t.grid_info.value
    _pick(t, [0, 2, 4, 6, 8])
    assert t.apply_button.description == "Apply to 5 selected" and not t.apply_button.disabled
    t.grid_tag.value = "gear"
    chosen = set(t.selected)
    t.apply_button.click()
    labels = _tags(ws, p)
    assert {i for i, names in labels.items() if names == ["gear"]} == chosen
    assert sum(1 for names in labels.values() if names) == 5
    assert "Tagged 5 images gear" in t.status.text and len(t.grid.children) == 24   # 25 untagged left: 24 shown
    t.undo_button.click()                                   # one undo for the batch
    assert all(names == [] for names in _tags(ws, p).values()) and "5 images" in t.status.text


def test_grid_multiclass_replaces_multilabel_adds(ws):
    mc, ml = _project(ws, n=3), _project(ws, "Multilabel", n=3)
    for p, expected in ((mc, ["gear"]), (ml, ["bolt", "gear"])):
        first = ws.get_images(p.id, order_by="Oldest")[0]
        bolt = next(tag for tag in ws.get_tags(p.id) if tag.name == "bolt")
        ws.set_image_labels(p.id, first.id, tag_ids=[bolt.id])
        t = Tagger(ws, p, view="Grid")
        t.grid_filter.value = "All"
        _pick(t, [0])
        t.grid_tag.value = "gear"
        t.apply_button.click()
        assert _tags(ws, p)[first.id] == expected


def test_create_tag_adds_a_button_and_a_grid_choice(ws):
    p = _project(ws, n=2)
    t = Tagger(ws, p)
    t.new_tag.value = "nut"
    t.create_button.click()
    assert "nut" in {tag.name for tag in ws.get_tags(p.id)} and "Created tag nut" in t.status.text
    assert any("nut" in b.description for b in t.tag_bar.children)
    t.view.value = "Grid"
    assert "nut" in [v for _, v in t.grid_tag.options]
    t.new_tag.value = "nut"                                 # the workspace's rule, shown on the status line
    t.create_button.click()
    assert "nut" in t.status.text and t.status.value.count("⚠") == 1
    t.new_tag.value = "  "
    t.create_button.click()
    assert "Type the new tag's name" in t.status.text


def test_apply_with_nothing_selected_says_what_to_do(ws):
    p = _project(ws, n=2)
    t = Tagger(ws, p, view="Grid")
    assert t.apply_button.disabled
    assert t.apply_to_selected("gear") == 0
    assert "Tick some thumbnails" in t.status.text
