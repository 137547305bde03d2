"""Decode, validate, EXIF-orient and resize images: the single place where image errors are decided.

Validation never trusts a file's name: it opens the bytes with Pillow, checks the format, the byte size, the
dimensions (before decoding, so a decompression bomb is refused without allocating it) and then decodes fully so a
truncated file is caught at upload time rather than in the middle of training.

A legal image can still be large once decoded (10,240 x 10,240 px: 300 MB as RGB, from a 13 kB PNG), so pixels
are decoded with a budget: every full-size decode first reserves its bytes from one ``DECODE_BUDGET_BYTES`` for
the whole process (``decoding``: concurrent decodes wait instead of adding up), and the small copies a gallery
shows (``scaled_jpeg``) are decoded at the size they need (JPEG's DCT scaling via ``draft``, other formats in their
own mode, converted to RGB only once small) and cached.
"""
from __future__ import annotations

import hashlib
import io
import threading
import warnings
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from PIL import Image as PILImage
from PIL import ImageOps, UnidentifiedImageError

from . import rules
from .errors import CvlabError

# Azure error code -> ImageCreateSummary per-image status.
BATCH_STATUS = {
    "BadRequestImageFormat": "ErrorImageFormat",
    "BadRequestImageStream": "ErrorSource",
    "BadRequestImageUrl": "ErrorSource",
    "BadRequestImageSizeBytes": "ErrorImageSize",
    "BadRequestImageDimensions": "ErrorImageDimensions",
    "BadRequestImageAspectRatio": "ErrorImageDimensions",
}

_ORIENTATION_TAG = 0x0112
_SWAPS_SIDES = {5, 6, 7, 8}

DECODE_BUDGET_BYTES = 1 << 30     # decoded pixels held at once by the whole process (cvlab's choice)
LARGE_DECODE_BYTES = 64 << 20     # a decode this large (a 21 MP RGB photo, a 10,240 px bomb) runs one at a time
SCALED_CACHE_BYTES = 32 << 20     # small JPEG copies kept for the blob routes


# ---- the decode budget ------------------------------------------------------------------------------------------
class _Budget:
    """Bytes reserved by the decodes running now; a reservation waits until it fits (one larger than the whole
    budget runs alone), so any number of concurrent requests hold at most the budget in decoded pixels. Large
    decodes also run one at a time, so they never take every core from the other requests, and once the last one
    ends the freed memory goes back to the system (``_give_back``)."""

    def __init__(self, total: int):
        self.total, self.used, self.large = total, 0, 0
        self._cond = threading.Condition()

    @contextmanager
    def reserve(self, nbytes: int):
        nbytes = max(0, min(int(nbytes), self.total))
        large = nbytes >= LARGE_DECODE_BYTES
        with self._cond:
            self._cond.wait_for(lambda: self.used + nbytes <= self.total and not (large and self.large))
            self.used += nbytes
            self.large += large
        try:
            yield
        finally:
            with self._cond:
                self.used -= nbytes
                self.large -= large
                idle = self.large == 0
                self._cond.notify_all()
            if large and idle:
                _give_back()


def _give_back() -> None:
    """glibc keeps freed heap memory for reuse, so one 100 MB decode would stay in the process's RSS for good:
    ``malloc_trim`` returns it (elsewhere a no-op)."""
    global _malloc_trim
    if _malloc_trim is None:
        try:
            import ctypes
            _malloc_trim = ctypes.CDLL("libc.so.6").malloc_trim
        except (OSError, AttributeError):
            _malloc_trim = False
    if _malloc_trim:
        _malloc_trim(0)


_malloc_trim = None
_budget = _Budget(DECODE_BUDGET_BYTES)


def decoded_bytes(img: PILImage.Image, to_rgb: bool = False) -> int:
    """What decoding ``img`` at its current size holds: Pillow keeps a byte per band per pixel ("1" included,
    4 for 32-bit modes), plus the RGB copy when it is converted."""
    w, h = img.size
    per_pixel = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16B": 2, "I;16L": 2, "I": 4, "F": 4}.get(img.mode,
                                                                                              len(img.getbands()))
    return w * h * (per_pixel + (3 if to_rgb and img.mode != "RGB" else 0))


def decoding(nbytes: int):
    """Context manager: hold ``nbytes`` of the process's decode budget while decoding."""
    return _budget.reserve(nbytes)


@dataclass(frozen=True)
class ImageInfo:
    """What ingestion records about valid image bytes. width/height are after EXIF orientation."""

    sha256: str
    format: str
    width: int
    height: int
    orientation: int
    n_bytes: int


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _open(data: bytes) -> PILImage.Image:
    """Open (header only) with Pillow's decompression-bomb guard turned into a clear error."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PILImage.DecompressionBombWarning)
        try:
            return PILImage.open(io.BytesIO(data))
        except PILImage.DecompressionBombError as e:
            raise CvlabError("BadRequestImageDimensions",
                             f"The image has too many pixels to decode safely ({e}). Resize it so neither side "
                             f"exceeds {rules.limit('max_image_side'):,} px.") from None
        except UnidentifiedImageError:
            raise CvlabError("BadRequestImageFormat",
                             "The data is not a readable image: use JPEG, PNG, BMP, GIF or WebP files.") from None
        except (OSError, ValueError, SyntaxError) as e:
            raise CvlabError("BadRequestImageFormat",
                             f"The image header is damaged ({e}); re-save the file as JPEG or PNG.") from None


def inspect_image(data: bytes, purpose: str = "training", name: str | None = None) -> ImageInfo:
    """Validate image bytes for `purpose` ("training" 6 MB, "prediction" 4 MB); return their ImageInfo.

    Raises CvlabError with BadRequestImageStream / ImageFormat / ImageSizeBytes / ImageDimensions / AspectRatio.
    """
    return _validate(data, purpose, name, "draft")[0]


def decode_image(data: bytes, purpose: str = "prediction", name: str | None = None,
                 digest: bool = True) -> tuple[ImageInfo, PILImage.Image]:
    """``inspect_image`` and ``load_rgb`` with one decode: the same checks and errors, and the oriented RGB pixels.

    For callers that validate and then use the pixels (a prediction), which would otherwise decode twice.
    ``digest=False`` leaves ``sha256`` empty, for a caller that keeps nothing (a no-store prediction)."""
    info, img = _validate(data, purpose, name, "full", digest)
    with decoding(decoded_bytes(img, to_rgb=True)):
        return info, to_rgb(img, owned=True)


def _validate(data, purpose: str, name: str | None, decode: str,
              digest: bool = True) -> tuple[ImageInfo, PILImage.Image]:
    """The checks of inspect_image; ``decode`` "full" decodes every pixel, "draft" a cheap 1/8 JPEG draft (which
    still reads the whole stream, so a truncated file is caught either way); ``digest`` False skips the sha256."""
    label = f"Image {name!r}" if name else "The image"
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise CvlabError("BadRequestImageStream", f"{label}: expected the file's bytes, got {type(data).__name__}.")
    data = bytes(data)
    if not data:
        raise CvlabError("BadRequestImageStream", f"{label} is empty (0 bytes): check the file or the upload.")
    key = "max_image_bytes_prediction" if purpose == "prediction" else "max_image_bytes_training"
    cap = rules.limit(key)
    if len(data) > cap:
        raise CvlabError("BadRequestImageSizeBytes",
                         f"{label} is {len(data) / 2**20:.1f} MB; {purpose} images may be at most "
                         f"{cap / 2**20:.0f} MB. Compress it (e.g. JPEG quality 90) or downscale it.")
    img = _open(data)
    fmt = (img.format or "").upper()
    if fmt not in rules.IMAGE_FORMATS:
        raise CvlabError("BadRequestImageFormat",
                         f"{label} is {fmt or 'an unknown format'}; use JPEG, PNG, BMP, GIF or WebP.")
    w, h = img.size
    max_side = rules.limit("max_image_side")
    if w <= 0 or h <= 0:
        raise CvlabError("BadRequestImageDimensions", f"{label} has no pixels ({w}x{h}).")
    if w > max_side or h > max_side or w * h > rules.limit("max_image_pixels"):
        raise CvlabError("BadRequestImageDimensions",
                         f"{label} is {w}x{h} px; each side may be at most {max_side:,} px. Downscale it.")
    ratio = max(w, h) / min(w, h)
    if ratio > rules.limit("max_aspect_ratio"):
        raise CvlabError("BadRequestImageAspectRatio",
                         f"{label} is {w}x{h} px (aspect ratio {ratio:.0f}:1); the limit is "
                         f"{rules.limit('max_aspect_ratio')}:1. Crop it to a less elongated shape.")
    try:
        orientation = int(img.getexif().get(_ORIENTATION_TAG, 1) or 1)
    except Exception:  # a broken EXIF block must not reject an otherwise good image
        orientation = 1
    if orientation not in range(1, 9):
        orientation = 1
    try:
        if decode == "draft" and fmt == "JPEG":
            img.draft("RGB", (max(1, w // 8), max(1, h // 8)))  # decode the whole stream, cheaply
        with decoding(decoded_bytes(img)):
            img.load()
    except Exception as e:
        raise CvlabError("BadRequestImageFormat",
                         f"{label} could not be decoded ({e}); the file is probably truncated or corrupt.") from None
    if orientation in _SWAPS_SIDES:
        w, h = h, w
    return ImageInfo(sha256_bytes(data) if digest else "", fmt, w, h, orientation, len(data)), img


def batch_status(err: CvlabError) -> str:
    """The ImageCreateSummary status for an image error."""
    return BATCH_STATUS.get(err.code, "ErrorUnknown")


def is_upright_rgb(img: PILImage.Image) -> bool:
    """Already what ``to_rgb`` returns: a single RGB frame with no EXIF rotation to apply."""
    if img.mode != "RGB" or getattr(img, "n_frames", 1) > 1:
        return False
    try:
        return img.getexif().get(_ORIENTATION_TAG, 1) == 1
    except Exception:  # a malformed EXIF block: to_rgb keeps the pixels as stored too
        return True


def to_rgb(img: PILImage.Image, owned: bool = False) -> PILImage.Image:
    """EXIF-orient (first frame of animations) and convert to RGB; transparent areas become white.

    The result is a new image unless ``owned`` (the caller decoded ``img`` itself and gives it up): then an
    upright RGB image is returned as is, without two full-size copies (~2 ms for a 640 px photo)."""
    if getattr(img, "n_frames", 1) > 1:
        img.seek(0)
    try:
        if not owned or img.getexif().get(_ORIENTATION_TAG, 1) != 1:
            img, owned = ImageOps.exif_transpose(img), True  # a new image: the caller's is never changed
    except Exception:  # a malformed EXIF block: keep the pixels as stored rather than fail
        pass
    if img.mode.startswith("I;16") or img.mode == "I":  # 16-bit greyscale: scale, don't clip, to 8 bits
        import numpy as np
        arr = np.asarray(img, dtype=np.float64)
        if img.mode != "I" or arr.max() > 255:
            arr = arr / 257.0
        return PILImage.fromarray(np.clip(arr + 0.5, 0, 255).astype(np.uint8), "L").convert("RGB")
    if img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        bg = PILImage.new("RGB", rgba.size, (255, 255, 255))
        bg.paste(rgba, mask=rgba.getchannel("A"))
        return bg
    if img.mode == "RGB" and owned:
        return img
    return img.convert("RGB")


def load_rgb(source) -> PILImage.Image:
    """An oriented RGB PIL image from bytes, a path or a PIL image."""
    if isinstance(source, PILImage.Image):
        return to_rgb(source)
    if isinstance(source, (str, Path)):
        data = Path(source).read_bytes()
    else:
        data = bytes(source)
    img = _open(data)
    try:
        with decoding(decoded_bytes(img, to_rgb=True)):
            img.load()
            return to_rgb(img, owned=True)
    except CvlabError:
        raise
    except Exception as e:
        raise CvlabError("BadRequestImageFormat", f"The image could not be decoded ({e}).") from None


_scaled_cache: OrderedDict[tuple, bytes] = OrderedDict()
_scaled_lock = threading.Lock()


def scaled_jpeg(path, max_side: int, quality: int = 90) -> bytes:
    """JPEG bytes of the oriented image at most ``max_side`` px on either side (the thumbnail and resized copies
    of a stored image), decoded no larger than needed and cached by file, size and modification time.

    JPEG decodes at 1/2, 1/4 or 1/8 scale (``draft``); other formats decode in their own mode (a 1-bit PNG holds
    a byte per pixel, not three) and are reduced before the RGB conversion: a 10,240 px 1-bit PNG costs ~100 MB
    once instead of ~500 MB per request."""
    path = Path(path)
    stat = path.stat()
    key = (str(path), stat.st_mtime_ns, stat.st_size, max_side, quality)
    with _scaled_lock:
        if key in _scaled_cache:
            _scaled_cache.move_to_end(key)
            return _scaled_cache[key]
    img = _open(path.read_bytes())
    try:
        img.draft("RGB", (max_side, max_side))  # JPEG only; a no-op for the others
        if decoded_bytes(img, to_rgb=True) < LARGE_DECODE_BYTES:  # an ordinary photo: RGB first, as always
            with decoding(decoded_bytes(img, to_rgb=True)):
                small = to_rgb(img, owned=True)
                small.thumbnail((max_side, max_side))
        else:
            with decoding(decoded_bytes(img)):
                try:
                    img.thumbnail((max_side, max_side))  # in the image's own mode, reduced while it is cheap
                except ValueError:  # a mode Pillow cannot resize (some 16-bit ones): convert first
                    img = to_rgb(img, owned=True)
                    img.thumbnail((max_side, max_side))
                small = to_rgb(img, owned=True)
    except CvlabError:
        raise
    except Exception as e:
        raise CvlabError("BadRequestImageFormat", f"The image could not be decoded ({e}).") from None
    buf = io.BytesIO()
    small.save(buf, "JPEG", quality=quality)
    data = buf.getvalue()
    with _scaled_lock:
        _scaled_cache[key] = data
        while sum(len(v) for v in _scaled_cache.values()) > SCALED_CACHE_BYTES:
            _scaled_cache.popitem(last=False)
    return data


def resize_stretch(img: PILImage.Image, size: int) -> PILImage.Image:
    """Stretch to size x size with bilinear filtering (Azure's and cvlab's preprocessing: no crop, no padding)."""
    return img.resize((size, size), PILImage.BILINEAR)


def thumbnail(img: PILImage.Image, max_side: int = 256) -> PILImage.Image:
    """A copy no larger than max_side on either side, aspect ratio kept (for galleries)."""
    out = img.copy()
    out.thumbnail((max_side, max_side), PILImage.BILINEAR)
    return out
