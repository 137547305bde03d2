"""The in-memory form every generator produces and every file format reads or writes."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

#: The tag name used for Custom Vision's Negative tag in sample data and folder-per-tag layouts.
NEGATIVE = "Negative"
#: The repository's ``data/`` folder with the ready-made sample sets.
DATA_DIR = Path(__file__).resolve().parents[2] / "data"


@dataclass(frozen=True)
class Region:
    """One labelled box, normalised to the image size like Custom Vision's regions."""

    tag: str
    left: float
    top: float
    width: float
    height: float

    @property
    def ltwh(self) -> tuple[float, float, float, float]:
        return (self.left, self.top, self.width, self.height)


@dataclass
class Record:
    """One labelled image: either a generated ``image`` or a ``path`` on disk (readers fill ``path``).

    ``tags`` are image-level tags (classification); ``regions`` are boxes (object detection).
    ``metadata`` is free text key/values (Custom Vision image metadata: str -> str).
    """

    name: str
    image: Image.Image | None = None
    tags: list[str] = field(default_factory=list)
    regions: list[Region] = field(default_factory=list)
    path: Path | None = None
    width: int | None = None
    height: int | None = None
    metadata: dict[str, str] = field(default_factory=dict)

    def load(self) -> Image.Image:
        """The image, opened from ``path`` when it was not generated in memory."""
        if self.image is not None:
            return self.image
        if self.path is None:
            raise ValueError(f"record {self.name!r} has neither an image nor a path")
        with Image.open(self.path) as im:
            im.load()
            return im

    def size(self) -> tuple[int, int]:
        """(width, height) without decoding pixels when possible."""
        if self.width and self.height:
            return self.width, self.height
        if self.image is not None:
            return self.image.size
        with Image.open(self.path) as im:  # reads the header only
            return im.size

    @property
    def all_tags(self) -> list[str]:
        """Image tags plus region tags, in first-seen order."""
        seen = dict.fromkeys(self.tags)
        seen.update(dict.fromkeys(r.tag for r in self.regions))
        return list(seen)


@dataclass(frozen=True)
class DatasetInfo:
    """What a named dataset is, so it can become a Custom Vision project."""

    name: str
    project_type: str  # "Classification" | "ObjectDetection"
    classification_type: str  # "Multiclass" | "Multilabel"
    tags: tuple[str, ...]
    description: str
    default_size: int = 320
