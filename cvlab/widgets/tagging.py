"""Tagger for classification projects: one image at a time, untagged first, every click saved at once; or a grid
of thumbnails to select many and tag them together (the portal's multi-select). New tags can be created in place.

The widget holds no labels of its own: each press calls `Workspace.set_image_labels`, which enforces the rules
(Negative never with a regular tag, one tag per image in a Multiclass project) and raises a `CvlabError` the
status line shows. Closing the notebook loses nothing; a new tagger starts again at the first untagged image.
"""
from __future__ import annotations

import html
from dataclasses import dataclass

import ipywidgets as w

from cvlab.errors import CvlabError

from ._common import StatusLine, TextFallback, Thumbnails, guarded, resolve
from .keys import KeyShortcuts

NEGATIVE_NAME = "Negative"  # the name Azure's portal gives the Negative tag it creates


@dataclass
class _Undo:
    image_id: str
    tag_ids: list[str]
    index: int
    batch: int = 0          # changes made by one grid "Apply" share a batch number and are undone together


GRID_PAGE = 24              # thumbnails per grid page


class Tagger(TextFallback, w.VBox):
    """Label a classification project's images with tag buttons or keys (1-9 tags, 0 Negative,
    ←/→ previous/next, s skip to the next untagged image, z undo), or in the grid view: tick thumbnails, pick a tag,
    Apply. "Create tag" adds a tag to the project."""

    _needs = "This tagger"

    def __init__(self, ws, project, *, auto_advance: bool | None = None, neighbours: int = 2,
                 size: tuple[int, int] = (600, 400), view: str = "One image"):
        if project.project_type != "Classification":
            raise CvlabError("BadRequestOperationNotSupported",
                             f"Project {project.name!r} is an object detection project: label it with "
                             "project.box_labeler() (boxes), not the tagger (whole-image tags).")
        self.ws, self.project = ws, project
        self.multiclass = project.classification_type == "Multiclass"
        self.auto_advance = self.multiclass if auto_advance is None else auto_advance
        self._size, self._neighbours = size, neighbours
        self._thumbs = Thumbnails(ws)
        self._undo: list[_Undo] = []
        # Untagged images first (oldest first, the upload order), then the tagged ones to review.
        untagged = list(ws.iter_images(project.id, tagging_status="Untagged"))
        tagged = list(ws.iter_images(project.id, tagging_status="Tagged"))
        self.order: list[str] = [im.id for im in untagged] + [im.id for im in tagged]
        self.index = 0

        self.picture = w.Image(format="jpeg", layout=w.Layout(max_width=f"{size[0]}px", max_height=f"{size[1]}px",
                                                              object_fit="contain"))
        self.caption = w.HTML()
        self.filmstrip = w.HBox(layout=w.Layout(overflow="auto"))
        self.tag_bar = w.HBox(layout=w.Layout(flex_flow="row wrap"))
        self.prev_button = w.Button(description="◀ Previous", tooltip="Previous image (←)")
        self.next_button = w.Button(description="Next ▶", tooltip="Next image (→)")
        self.skip_button = w.Button(description="Skip", tooltip="Next untagged image (s)")
        self.undo_button = w.Button(description="Undo", icon="undo", tooltip="Undo the last change (z)")
        self.progress = w.HTML()
        self.status = StatusLine()
        self.shortcuts = KeyShortcuts(
            keys=[str(d) for d in range(10)] + ["ArrowLeft", "ArrowRight", "s", "z"],
            hint="⌨ click here (or any button), then: 1-9 tag · 0 Negative · ←/→ move · s skip · z undo")
        self.prev_button.on_click(lambda _b: self.go(self.index - 1))
        self.next_button.on_click(lambda _b: self.go(self.index + 1))
        self.skip_button.on_click(lambda _b: self.skip())
        self.undo_button.on_click(lambda _b: self.undo())
        self.shortcuts.on_key(self._on_key)
        nav = w.HBox([self.prev_button, self.next_button, self.skip_button, self.undo_button])
        self.single = w.VBox([self.progress, self.picture, self.caption, self.tag_bar, nav, self.filmstrip,
                              self.shortcuts])
        self._batches = 0
        self._build_grid()
        self.new_tag = w.Text(placeholder="new tag name", description="New tag", layout=w.Layout(width="22em"))
        self.create_button = w.Button(description="Create tag", icon="plus", tooltip="Add this tag to the project")
        self.create_button.on_click(lambda _b: self.create_tag(self.new_tag.value))
        self.view = w.ToggleButtons(options=["One image", "Grid"], value=view, description="View",
                                    tooltips=["one image at a time, keys 1-9", "select many thumbnails, tag them at once"],
                                    style={"button_width": "8em"})
        self.view.observe(lambda _c: self._show_view(), names="value")
        self.body = w.VBox()
        super().__init__([w.HTML(f"<b>Tagging</b> {html.escape(project.name)} <small>({project.classification_type})</small>"),
                          w.HBox([self.view, self.new_tag, self.create_button], layout=w.Layout(flex_flow="row wrap")),
                          self.body, self.status])
        self.add_class("cvlab-tagger")
        self.add_class("cvlab-keyhost")
        self.go(0)  # untagged images come first: this is where the last session stopped
        self._show_view()

    # ---- what the buttons and keys do --------------------------------------------------------------------
    @property
    def image_id(self) -> str | None:
        return self.order[self.index] if self.order else None

    def tags(self):
        """Regular tags in button order, then the Negative tag (or None when the project has none yet)."""
        all_tags = self.ws.get_tags(self.project.id)
        regular = [t for t in all_tags if t.type == "Regular"]
        negative = next((t for t in all_tags if t.type == "Negative"), None)
        return regular, negative

    def _tag_named(self, tag_name: str):
        """(the tag called `tag_name`, the project's Negative tag or None). The first use of Negative creates Azure's
        special tag, as the portal does; an unknown name is NotFoundTag."""
        regular, negative = self.tags()
        if (negative is not None and tag_name == negative.name) or (negative is None and tag_name == NEGATIVE_NAME):
            negative = negative or self.ws.create_tag(self.project.id, NEGATIVE_NAME, type="Negative")
            return negative, negative
        tag = next((t for t in regular if t.name == tag_name), None)
        if tag is None:
            raise CvlabError("NotFoundTag", f"There is no tag {tag_name!r}: create it first.")
        return tag, negative

    @guarded
    def press(self, tag_name: str) -> None:
        """Apply (or, if already applied, remove) a tag on the current image — a tag button's click."""
        if self.image_id is None:
            return
        tag, _negative = self._tag_named(tag_name)
        current = self._current_tag_ids()
        if tag.id in current:
            new = [t for t in current if t != tag.id]
        elif self.multiclass:
            new = [tag.id]  # Multiclass: exactly one tag, so a press chooses instead of adding
        else:
            new = current + [tag.id]
        if self._save(current, new):
            self.status.info(f"Saved: {tag.name}" if tag.id in new else f"Removed: {tag.name}")
            if self.auto_advance and tag.id in new:
                self.go(self.index + 1)
                return
        self._render()

    @guarded
    def go(self, index: int) -> None:
        """Show the image at `index` of the order (clamped)."""
        if self.order:
            self.index = max(0, min(index, len(self.order) - 1))
        self._render()

    @guarded
    def skip(self) -> None:
        """Go to the next untagged image after this one (wrapping round), leaving this one as it is."""
        n = len(self.order)
        untagged = {im.id for im in self.ws.iter_images(self.project.id, tagging_status="Untagged")}
        for step in range(1, n + 1):
            i = (self.index + step) % n
            if self.order[i] in untagged:
                self.go(i)
                return
        self.status.info("Every image is tagged.")
        self.go(self.index + 1)

    @guarded
    def undo(self) -> None:
        """Put back the labels of the last change and show that image."""
        if not self._undo:
            self.status.info("Nothing to undo.")
            return
        last = self._undo.pop()
        group = [last]
        while last.batch and self._undo and self._undo[-1].batch == last.batch:
            group.append(self._undo.pop())
        try:
            for change in group:
                self.ws.set_image_labels(self.project.id, change.image_id, tag_ids=change.tag_ids)
        except CvlabError as err:
            self.status.error(err)
            return
        self.status.info("Undone." if len(group) == 1 else f"Undone: {len(group)} images.")
        self.go(last.index)
        if self.view.value == "Grid":
            self._render_grid()

    @guarded
    def _on_key(self, key: str) -> None:
        if key.isdigit():
            regular, _negative = self.tags()
            if key == "0":
                self.press(_negative.name if _negative else NEGATIVE_NAME)
            elif int(key) <= len(regular):
                self.press(regular[int(key) - 1].name)
        elif key == "ArrowLeft":
            self.go(self.index - 1)
        elif key == "ArrowRight":
            self.go(self.index + 1)
        elif key == "s":
            self.skip()
        elif key == "z":
            self.undo()

    # ---- workspace and display ---------------------------------------------------------------------------
    def _current_tag_ids(self) -> list[str]:
        return [t.tag_id for t in self.ws.get_image(self.project.id, self.image_id).tags]

    def _save(self, old: list[str], new: list[str]) -> bool:
        try:
            self.ws.set_image_labels(self.project.id, self.image_id, tag_ids=new)
        except CvlabError as err:
            self.status.error(err)
            return False
        self._undo.append(_Undo(self.image_id, old, self.index))
        return True

    # ---- creating tags, and the grid view ----------------------------------------------------------------
    @guarded
    def create_tag(self, name: str):
        """Add a regular tag to the project (the portal's "+" next to My Tags); it gets the next key."""
        name = (name or "").strip()
        if not name:
            self.status.error(CvlabError("BadRequestInvalid", "Type the new tag's name first."))
            return None
        tag = self.ws.create_tag(self.project.id, name)
        self.new_tag.value = ""
        self.status.info(f"Created tag {tag.name}.")
        self._render()
        self._render_grid()
        return tag

    def _build_grid(self) -> None:
        self.grid_filter = w.ToggleButtons(options=["Untagged", "Tagged", "All"], value="Untagged",
                                           description="Show", style={"button_width": "6em"})
        self.grid_filter.observe(lambda _c: self._grid_go(0), names="value")
        self.grid_tag = w.Dropdown(description="Tag", layout=w.Layout(width="18em"))
        self.apply_button = w.Button(description="Apply to 0 selected", button_style="primary", icon="tag",
                                     layout=w.Layout(width="16em"))
        self.apply_button.on_click(lambda _b: self.apply_to_selected(self.grid_tag.value))
        self.select_page = w.Button(description="Select page", tooltip="Tick every thumbnail on this page")
        self.select_none = w.Button(description="Clear selection")
        self.select_page.on_click(lambda _b: self._select_all(True))
        self.select_none.on_click(lambda _b: self._select_all(False))
        self.grid_prev = w.Button(description="◀ Page", tooltip="Previous page")
        self.grid_next = w.Button(description="Page ▶", tooltip="Next page")
        self.grid_prev.on_click(lambda _b: self._grid_go(self._grid_page - 1))
        self.grid_next.on_click(lambda _b: self._grid_go(self._grid_page + 1))
        self.grid_info = w.HTML()
        self.grid = w.GridBox(layout=w.Layout(grid_template_columns="repeat(auto-fill, 128px)", grid_gap="6px"))
        self.grid_view = w.VBox([
            w.HBox([self.grid_filter, self.grid_info], layout=w.Layout(flex_flow="row wrap")),
            w.HBox([self.grid_tag, self.apply_button, self.select_page, self.select_none],
                   layout=w.Layout(flex_flow="row wrap")),
            self.grid, w.HBox([self.grid_prev, self.grid_next])])
        self._grid_page, self._grid_ids, self.selected = 0, [], set()

    def _show_view(self) -> None:
        if self.view.value == "Grid":
            self.body.children = [self.grid_view]
            self._grid_go(self._grid_page)
        else:
            self.body.children = [self.single]
            self._render()

    def _grid_images(self) -> list:
        status = {"Untagged": "Untagged", "Tagged": "Tagged", "All": "All"}[self.grid_filter.value]
        return list(self.ws.iter_images(self.project.id, tagging_status=status, order_by="Oldest"))

    @guarded
    def _grid_go(self, page: int) -> None:
        images = self._grid_images()
        pages = max(1, -(-len(images) // GRID_PAGE))
        self._grid_page = max(0, min(page, pages - 1))
        shown = images[self._grid_page * GRID_PAGE:(self._grid_page + 1) * GRID_PAGE]
        self._grid_ids = [im.id for im in shown]
        self.grid_prev.disabled = self._grid_page == 0
        self.grid_next.disabled = self._grid_page >= pages - 1
        self._render_grid(shown, len(images), pages)

    def _render_grid(self, shown=None, total=None, pages=None) -> None:
        if self.view.value != "Grid":
            return
        if shown is None:
            return self._grid_go(self._grid_page)
        regular, negative = self.tags()
        options = [(t.name, t.name) for t in regular] + [(negative.name if negative else NEGATIVE_NAME,) * 2]
        current = self.grid_tag.value
        self.grid_tag.options = options
        self.grid_tag.value = current if current in dict(options) else (options[0][1] if options else None)
        cells = []
        for n, image in enumerate(shown, start=self._grid_page * GRID_PAGE + 1):
            names = ", ".join(t.tag_name for t in image.tags) or "untagged"
            pick = w.ToggleButton(value=image.id in self.selected, description=f"{n}: {names}",
                                  tooltip=f"Select image {n} ({image.original_name or image.id})",
                                  icon="check" if image.id in self.selected else "",
                                  layout=w.Layout(width="124px"))
            pick.image_id = image.id
            pick.observe(self._on_pick, names="value")
            cells.append(w.VBox([w.Image(value=self._thumbs.get(image, (120, 90)), format="jpeg",
                                         layout=w.Layout(width="120px", height="90px", object_fit="contain")), pick],
                                layout=w.Layout(border="3px solid #1f77b4" if image.id in self.selected
                                                else "1px solid #ddd", padding="1px")))
        self.grid.children = cells
        self.grid_info.value = (f"{total} images · page {self._grid_page + 1} of {pages}" if total
                                else "No images here: pick another filter.")
        self._update_apply()

    def _on_pick(self, change) -> None:
        button = change["owner"]
        (self.selected.add if change["new"] else self.selected.discard)(button.image_id)
        button.icon = "check" if change["new"] else ""
        self._update_apply()

    def _select_all(self, on: bool) -> None:
        if on:
            self.selected.update(self._grid_ids)
        else:
            self.selected.clear()
        self._render_grid()

    def _update_apply(self) -> None:
        self.apply_button.description = f"Apply to {len(self.selected)} selected"
        self.apply_button.disabled = not self.selected or not self.grid_tag.value

    @guarded
    def apply_to_selected(self, tag_name: str | None) -> int:
        """Give every selected image the tag (Multiclass: instead of its tag; Multilabel: besides its tags).
        One undo puts them all back. Returns how many images changed."""
        if not self.selected or not tag_name:
            self.status.error(CvlabError("BadRequestInvalid", "Tick some thumbnails and pick a tag first."))
            return 0
        tag, negative = self._tag_named(tag_name)
        self._batches += 1
        changed = 0
        images = {im.id: im for im in self.ws.get_images(self.project.id, image_ids=sorted(self.selected),
                                                          take=len(self.selected))}
        for image_id in sorted(self.selected, key=lambda i: self.order.index(i) if i in self.order else 0):
            image = images.get(image_id)
            if image is None:
                continue
            old = [t.tag_id for t in image.tags]
            negative_ids = {negative.id} if negative else set()
            new = [tag.id] if self.multiclass or tag.type == "Negative" or negative_ids & set(old) else \
                sorted(set(old) | {tag.id})
            if new == old:
                continue
            self.ws.set_image_labels(self.project.id, image_id, tag_ids=new)
            self._undo.append(_Undo(image_id, old, self.order.index(image_id) if image_id in self.order else 0,
                                    self._batches))
            changed += 1
        self.status.info(f"Tagged {changed} image{'s' if changed != 1 else ''} {tag.name}" +
                         (" (undo puts them back)" if changed else ""))
        self.selected.clear()
        self._grid_go(self._grid_page)
        self.undo_button.disabled = not self._undo
        return changed

    def _render(self) -> None:
        total = len(self.order)
        done = self.ws.get_image_count(self.project.id, tagging_status="Tagged")
        regular, negative = self.tags()
        if not total:
            self.progress.value = "No images yet: add some with ws.create_images_from_files(...)."
            self.tag_bar.children = ()
            return
        try:
            image = self.ws.get_image(self.project.id, self.image_id)
        except CvlabError as err:
            if err.code != "NotFoundImage":
                raise
            self.order.pop(self.index)  # deleted elsewhere (another notebook, the REST API): skip it
            self._undo = [u for u in self._undo if u.image_id in self.order]
            self.status.info("That image was deleted meanwhile; showing the next one.")
            self.index = min(self.index, max(0, len(self.order) - 1))
            return self._render()
        applied = {t.tag_id for t in image.tags}
        self.progress.value = (f"<b>{done}</b> of {total} images tagged · image {self.index + 1} of {total}"
                               f"{'' if applied else ' (untagged)'}")
        self.picture.value = self._thumbs.get(image, self._size)
        names = ", ".join(t.tag_name for t in image.tags) or "untagged"
        self.caption.value = f"<small>{html.escape(image.original_name or image.id)} — {html.escape(names)}</small>"
        buttons = []
        for i, tag in enumerate(regular):
            label = f"{i + 1} {tag.name}" if i < 9 else tag.name
            buttons.append(self._tag_button(label, tag.name, tag.id in applied, tag.image_count))
        buttons.append(self._tag_button(f"0 {negative.name if negative else NEGATIVE_NAME}",
                                        negative.name if negative else NEGATIVE_NAME,
                                        negative is not None and negative.id in applied,
                                        negative.image_count if negative else 0, danger=True))
        self.tag_bar.children = buttons
        self.prev_button.disabled = self.index == 0
        self.next_button.disabled = self.index >= total - 1
        self.undo_button.disabled = not self._undo
        self._render_filmstrip()

    def _tag_button(self, label: str, name: str, applied: bool, count: int, danger: bool = False) -> w.Button:
        b = w.Button(description=f"{label} ({count})", tooltip=f"{'Remove' if applied else 'Apply'} {name}",
                     button_style=("danger" if danger else "success") if applied else "",
                     icon="check" if applied else "")
        b.tag_name = name
        b.on_click(lambda _b: self.press(name))
        return b

    def _render_filmstrip(self) -> None:
        lo = max(0, self.index - self._neighbours)
        hi = min(len(self.order), self.index + self._neighbours + 1)
        found = {im.id: im for im in self.ws.get_images(self.project.id, image_ids=self.order[lo:hi], take=hi - lo)}
        cells = []
        for i in range(lo, hi):
            image = found.get(self.order[i])
            if image is None:
                continue
            border = "3px solid #1f77b4" if i == self.index else "1px solid #ddd"
            names = ", ".join(t.tag_name for t in image.tags) or "—"
            cells.append(w.VBox([w.Image(value=self._thumbs.get(image, (96, 64)), format="jpeg",
                                         layout=w.Layout(width="96px", height="64px", object_fit="contain")),
                                 self._jump_button(i, names)],
                                layout=w.Layout(border=border, padding="2px", width="104px")))
        self.filmstrip.children = cells

    def _jump_button(self, i: int, names: str) -> w.Button:
        """The caption under a filmstrip picture; clicking it shows that image."""
        b = w.Button(description=f"{i + 1}: {names}", tooltip=f"Show image {i + 1}",
                     layout=w.Layout(width="96px", height="24px"))
        b.on_click(lambda _b: self.go(i))
        return b

    def fallback_text(self) -> str:
        total = len(self.order)
        done = self.ws.get_image_count(self.project.id, tagging_status="Tagged") if total else 0
        return (super().fallback_text() + f" Progress so far: {done} of {total} images tagged. Without widgets, "
                "tag in code: ws.set_image_labels(project.id, image.id, tag_ids=[tag.id]).")


def tagger(project, ws=None, **kwargs) -> Tagger:
    """`project.tagger()`: the tagger for a classification project (a Project, its id or its name)."""
    ws, project = resolve(project, ws)
    return Tagger(ws, project, **kwargs)
