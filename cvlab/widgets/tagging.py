"""Tagger for classification projects: one image at a time, untagged first, every click saved at once.

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


class Tagger(TextFallback, w.VBox):
    """Label a classification project's images with tag buttons or keys (1-9 tags, 0 Negative,
    ←/→ previous/next, s skip to the next untagged image, z undo)."""

    _needs = "This tagger"

    def __init__(self, ws, project, *, auto_advance: bool | None = None, neighbours: int = 2,
                 size: tuple[int, int] = (600, 400)):
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
        super().__init__([w.HTML(f"<b>Tagging</b> {html.escape(project.name)} <small>({project.classification_type})</small>"),
                          self.progress, self.picture, self.caption, self.tag_bar, nav, self.filmstrip,
                          self.shortcuts, self.status])
        self.add_class("cvlab-tagger")
        self.add_class("cvlab-keyhost")
        self.go(0)  # untagged images come first: this is where the last session stopped

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

    @guarded
    def press(self, tag_name: str) -> None:
        """Apply (or, if already applied, remove) a tag on the current image — a tag button's click."""
        if self.image_id is None:
            return
        regular, negative = self.tags()
        if (negative is not None and tag_name == negative.name) or (negative is None and tag_name == NEGATIVE_NAME):
            # the first Negative press creates Azure's special tag, as the portal does
            tag = negative or self.ws.create_tag(self.project.id, NEGATIVE_NAME, type="Negative")
        else:
            tag = next((t for t in regular if t.name == tag_name), None)
            if tag is None:
                self.status.error(CvlabError("NotFoundTag", f"There is no tag {tag_name!r}: create it first."))
                return
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
        try:
            self.ws.set_image_labels(self.project.id, last.image_id, tag_ids=last.tag_ids)
        except CvlabError as err:
            self.status.error(err)
            return
        self.status.info("Undone.")
        self.go(last.index)

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
