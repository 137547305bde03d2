"""The named, deterministic dataset generators: ``parts``, ``parts-multilabel``, ``parts-subtle``, ``site``."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

from ..errors import CvlabError
from .records import NEGATIVE, DatasetInfo, Record


@dataclass(frozen=True)
class _Entry:
    info: DatasetInfo
    make: Callable[..., Iterator[Record]]


def _parts(variant: str, subtle: bool):
    def make(name, count, seed, size, start=0):
        from . import parts  # imported on use: `from cvlab.datasets import coords` stays light

        return parts.iter_records(name, count, seed, size, variant=variant, subtle=subtle, start=start)
    return make


def _site(name, count, seed, size, start=0, empty=False):
    from . import site

    return site.iter_records(name, count, seed, size, start=start, empty=empty)


REGISTRY: dict[str, _Entry] = {
    "parts": _Entry(DatasetInfo(
        "parts", "Classification", "Multiclass", ("ok", "cracked", "rusted", NEGATIVE),
        "Manufactured parts (gear, washer, bolt, nut): ok, cracked (broken in two / a large piece missing) "
        "or rusted (most of the surface); Negative = workbench clutter with no part."), _parts("multiclass", False)),
    "parts-multilabel": _Entry(DatasetInfo(
        "parts-multilabel", "Classification", "Multilabel", ("ok", "cracked", "rusted", NEGATIVE),
        "As 'parts', but a part can be cracked and rusted at once (multilabel)."), _parts("multilabel", False)),
    "parts-subtle": _Entry(DatasetInfo(
        "parts-subtle", "Classification", "Multiclass", ("ok", "cracked", "rusted", NEGATIVE),
        "As 'parts' with small defects (hairline crack, chip, a few rust spots): where Quick training "
        "falls short."), _parts("multiclass", True)),
    "site": _Entry(DatasetInfo(
        "site", "ObjectDetection", "Multiclass", ("helmet", "vest", "person"),
        "Construction-site scenes: boxes for helmet, vest and person."), _site),
}


def dataset_names() -> list[str]:
    return list(REGISTRY)


def info(name: str) -> DatasetInfo:
    try:
        return REGISTRY[name].info
    except KeyError:
        raise CvlabError("BadRequest", f"unknown dataset {name!r}; choose one of {', '.join(REGISTRY)}") from None


def iter_generate(name: str, count: int, seed: int = 0, size: int | None = None, start: int = 0, *,
                  empty: bool = False) -> Iterator[Record]:
    """Lazily yield ``count`` records of dataset ``name`` (images ``start`` .. ``start+count-1``).
    ``empty``: detection scenes with no object in them (no regions), a separate series."""
    meta = info(name)
    if empty and meta.project_type != "ObjectDetection":
        raise CvlabError("BadRequest", f"empty frames are a detection dataset's; {name!r} is a classification "
                         "dataset (its Negative tag plays that part).")
    size = size or meta.default_size
    if not isinstance(count, int) or count < 0:
        raise CvlabError("BadRequest", f"count must be a non-negative integer, got {count!r}")
    if not 64 <= size <= 2048:
        raise CvlabError("BadRequest", f"size must be between 64 and 2048 pixels, got {size}")
    return REGISTRY[name].make(name, count, seed, size, start=start, **({"empty": True} if empty else {}))


def generate(name: str, count: int, seed: int = 0, size: int | None = None, *, empty: bool = False) -> list[Record]:
    """``count`` labelled images of dataset ``name``; the same (name, seed, size) always gives the same images,
    and a larger count extends a smaller one.  ``empty``: see ``iter_generate``."""
    return list(iter_generate(name, count, seed, size, empty=empty))
