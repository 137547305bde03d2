"""Image ingestion: formats, EXIF orientation, size/dimension checks, decompression bombs, truncated files."""
from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image

from cvlab import CvlabError, ImageEntry
from cvlab.images import batch_status, inspect_image, load_rgb, resize_stretch
from helpers import jpeg_with_orientation, make_image_bytes


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "BMP", "GIF", "WEBP"])
def test_supported_formats(fmt):
    info = inspect_image(make_image_bytes(40, 30, seed=1, fmt=fmt))
    assert (info.format, info.width, info.height) == (fmt, 40, 30)
    assert load_rgb(make_image_bytes(40, 30, seed=1, fmt=fmt)).mode == "RGB"


def test_unsupported_and_broken_data():
    for data, code in [(make_image_bytes(40, 30, fmt="TIFF"), "BadRequestImageFormat"),
                       (b"GIF89a garbage", "BadRequestImageFormat"),
                       (b"", "BadRequestImageStream"),
                       (make_image_bytes(200, 200, seed=2)[:600], "BadRequestImageFormat")]:  # truncated JPEG
        with pytest.raises(CvlabError) as e:
            inspect_image(data)
        assert e.value.code == code and "0x" not in e.value.message
    with pytest.raises(CvlabError) as e:
        inspect_image("a path, not bytes")
    assert e.value.code == "BadRequestImageStream"


def test_exif_orientation_is_applied():
    data = jpeg_with_orientation(60, 40, 6)  # "rotate 90 CW to display"
    info = inspect_image(data)
    assert (info.width, info.height, info.orientation) == (40, 60, 6)
    rgb = load_rgb(data)
    assert rgb.size == (40, 60)
    r, g, b = rgb.getpixel((20, 5))  # left half (red) ends up on top after rotation
    assert r > 200 and g < 60


def test_size_dimension_and_aspect_limits():
    big = b"\xff\xd8" + b"\0" * (6 * 1024 * 1024 + 1)
    with pytest.raises(CvlabError) as e:
        inspect_image(big)
    assert e.value.code == "BadRequestImageSizeBytes" and batch_status(e.value) == "ErrorImageSize"
    four_mb = make_image_bytes(8, 8) + b"\0" * (4 * 1024 * 1024)
    inspect_image(four_mb, "training")
    with pytest.raises(CvlabError):
        inspect_image(four_mb, "prediction")
    wide = make_image_bytes(10_300, 8, color=(1, 2, 3), fmt="PNG")
    with pytest.raises(CvlabError) as e:
        inspect_image(wide)
    assert e.value.code == "BadRequestImageDimensions" and batch_status(e.value) == "ErrorImageDimensions"
    with pytest.raises(CvlabError) as e:
        inspect_image(make_image_bytes(520, 20, color=(1, 2, 3), fmt="PNG"))
    assert e.value.code == "BadRequestImageAspectRatio" and batch_status(e.value) == "ErrorImageDimensions"


def _png_header_claiming(w, h) -> bytes:
    """A tiny PNG whose IHDR claims w x h pixels: a decompression bomb as far as the header goes."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def test_decompression_bomb_is_a_clear_error(ws):
    for w, h in [(60_000, 60_000), (20_000, 20_000), (10_241, 10_241)]:
        with pytest.raises(CvlabError) as e:
            inspect_image(_png_header_claiming(w, h))
        assert e.value.code == "BadRequestImageDimensions"
    p = ws.create_project("P")
    s = ws.create_images(p.id, [ImageEntry(_png_header_claiming(60_000, 60_000), "bomb.png")])
    assert s.images[0].status == "ErrorImageDimensions" and "px" in s.images[0].message


def test_resize_stretch_ignores_aspect():
    img = load_rgb(make_image_bytes(100, 50, seed=3))
    assert resize_stretch(img, 32).size == (32, 32)


def test_transparent_png_becomes_white_rgb():
    img = Image.new("RGBA", (10, 10), (0, 0, 0, 0))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    assert load_rgb(buf.getvalue()).getpixel((5, 5)) == (255, 255, 255)


@pytest.mark.parametrize("mode, value, fmt, expected", [
    ("CMYK", (0, 255, 0, 0), "JPEG", (255, 0, 255)),
    ("L", 128, "PNG", (128, 128, 128)),
    ("LA", (100, 0), "PNG", (255, 255, 255)),  # fully transparent -> white
    ("1", 1, "BMP", (255, 255, 255)),
])
def test_modes_become_rgb(mode, value, fmt, expected):
    buf = io.BytesIO()
    Image.new(mode, (40, 30), value).save(buf, fmt)
    got = load_rgb(buf.getvalue()).getpixel((5, 5))
    assert all(abs(a - b) <= 2 for a, b in zip(got, expected))


def test_16_bit_png_is_scaled_not_clipped():
    import numpy as np
    buf = io.BytesIO()
    Image.fromarray(np.full((30, 40), 40000, dtype=np.uint16)).save(buf, "PNG")
    assert load_rgb(buf.getvalue()).getpixel((1, 1)) == (156, 156, 156)


def test_animated_gif_uses_first_frame():
    buf = io.BytesIO()
    first = Image.new("RGB", (40, 30), (255, 0, 0))
    first.save(buf, "GIF", save_all=True, append_images=[Image.new("RGB", (40, 30), (0, 0, 255))])
    info = inspect_image(buf.getvalue())
    assert info.format == "GIF"
    r, g, b = load_rgb(buf.getvalue()).getpixel((1, 1))
    assert r > 200 and b < 60


def test_damaged_bytes_never_crash():
    """Truncated or bit-flipped files of every format give an image or a CvlabError, never another exception."""
    from hypothesis import given, settings, strategies as st
    originals = [make_image_bytes(48, 40, seed=5, fmt=f) for f in ("JPEG", "PNG", "BMP", "GIF", "WEBP")]

    @settings(max_examples=250, deadline=None, derandomize=True)
    @given(st.sampled_from(originals), st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=6),
           st.one_of(st.none(), st.integers(0, 10_000)))
    def check(data, flips, cut):
        buf = bytearray(data)
        for pos, val in flips:
            buf[pos % len(buf)] = val
        if cut is not None:
            buf = buf[:cut % (len(buf) + 1)]
        try:
            info = inspect_image(bytes(buf))
        except CvlabError as e:
            assert e.code.startswith("BadRequestImage") and batch_status(e) != "ErrorUnknown"
            return
        assert info.width > 0 and info.height > 0
        try:
            load_rgb(bytes(buf)).load()
        except CvlabError:
            pass
    check()
