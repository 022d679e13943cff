"""Bad input gets a clear error naming the fix, and nothing half-written (DEVELOPERS.md standards)."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from cozlib.errors import BadImageError
from cozlib.imageio import load_image


def _png(tmp_path, name, img):
    p = tmp_path / name
    img.save(p)
    return p


def test_not_an_image(tmp_path):
    p = tmp_path / "notes.png"
    p.write_text("this is text, not pixels")
    with pytest.raises(BadImageError, match="not an image file"):
        load_image(p)


def test_truncated_png(tmp_path, random_image):
    p = _png(tmp_path, "full.png", random_image(64, 64))
    cut = tmp_path / "cut.png"
    cut.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    with pytest.raises(BadImageError, match="corrupt or truncated"):
        load_image(cut)


def test_grayscale_is_refused_unless_converted(tmp_path):
    p = _png(tmp_path, "g.png", Image.new("L", (32, 32), 128))
    with pytest.raises(BadImageError, match="grayscale.*--convert"):
        load_image(p)
    rgb = load_image(p, convert=True)
    assert rgb.mode == "RGB" and rgb.getpixel((0, 0)) == (128, 128, 128)


def test_rgba_is_refused_unless_converted(tmp_path):
    p = _png(tmp_path, "a.png", Image.new("RGBA", (32, 32), (255, 0, 0, 0)))
    with pytest.raises(BadImageError, match="alpha channel.*--convert"):
        load_image(p)
    assert load_image(p, convert=True).getpixel((0, 0)) == (255, 255, 255)  # composited on white


def test_16bit_grayscale_and_rgb(tmp_path):
    arr = np.full((32, 32), 65535, dtype=np.uint16)
    p = tmp_path / "g16.png"
    Image.fromarray(arr).save(p)
    with pytest.raises(BadImageError, match="16-bit"):
        load_image(p)
    assert load_image(p, convert=True).getpixel((0, 0)) == (255, 255, 255)
    # a 16-bit RGB PNG, written by hand (Pillow would reduce it to 8 bits on save)
    import struct, zlib
    raw = b"".join(b"\x00" + np.full((8, 3), 0x8000, dtype=">u2").tobytes() for _ in range(8))
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 8, 8, 16, 2, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    p2 = tmp_path / "rgb16.png"
    p2.write_bytes(png)
    with pytest.raises(BadImageError, match="16-bit PNG"):
        load_image(p2)
    assert load_image(p2, convert=True).getpixel((0, 0)) == (128, 128, 128)


def test_tiny_image(tmp_path, random_image):
    p = _png(tmp_path, "t.png", random_image(3, 3))
    with pytest.raises(BadImageError, match="3x3 is too small"):
        load_image(p)


def test_extreme_aspect_ratio(tmp_path, random_image):
    p = _png(tmp_path, "wide.png", random_image(4000, 16))
    with pytest.raises(BadImageError, match="aspect ratio"):
        load_image(p)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(BadImageError, match="no such file"):
        load_image(tmp_path / "nope.png")
    with pytest.raises(BadImageError, match="is a folder"):
        load_image(tmp_path)
