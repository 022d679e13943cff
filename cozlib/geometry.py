"""The official zoom protocol (docs/PAPER.md §2), as pure functions on PIL images.

Everything here follows ``inference_coz.py`` of the official code to the pixel:

* x_0: resize the shorter side to ``process_size`` with LANCZOS (sizes truncated with ``int``),
  then center-crop ``process_size`` x ``process_size``;
* one zoom step on a ``w`` x ``h`` state: crop the box
  ``((w - w//s)//2, (h - h//s)//2, (w + w//s)//2, (h + h//s)//2)`` with ``s = upscale`` and
  resize it back to ``w`` x ``h`` with BICUBIC; that is the SR model's input;
* the one-shot baselines (``nearest``, ``bicubic``, ``onestep``) crop the same centered box with
  ``s = upscale**k`` from x_0 itself.
"""
from __future__ import annotations

from typing import Literal

from PIL import Image

Box = tuple[int, int, int, int]
Window = tuple[float, float, float, float]

#: The deepest magnification of a window of x_0 (or of ZoomWorld's base view): windows are float64
#: unit-square coordinates, and past 4^20x a pixel of a 512 px view spans under ten of their steps.
MAX_ZOOM = 4.0 ** 20
Resample = Literal["nearest", "bicubic", "lanczos", "bilinear"]

_RESAMPLE = {"nearest": Image.NEAREST, "bicubic": Image.BICUBIC, "lanczos": Image.LANCZOS,
             "bilinear": Image.BILINEAR}


def resize_and_center_crop(img: Image.Image, process_size: int) -> Image.Image:
    """x_0 of the protocol: LANCZOS-resize the shorter side to ``process_size``, center-crop a square."""
    w, h = img.size
    scale = process_size / min(w, h)
    new_w, new_h = int(w * scale), int(h * scale)
    img = img.resize((new_w, new_h), Image.LANCZOS)
    left, top = (new_w - process_size) // 2, (new_h - process_size) // 2
    return img.crop((left, top, left + process_size, top + process_size))


def center_crop_box(w: int, h: int, factor: int) -> Box:
    """The official centered crop box that keeps 1/``factor`` of each side (integer division)."""
    new_w, new_h = w // factor, h // factor
    return ((w - new_w) // 2, (h - new_h) // 2, (w + new_w) // 2, (h + new_h) // 2)


def resize(img: Image.Image, size: tuple[int, int] | int, method: Resample = "bicubic") -> Image.Image:
    """PIL resize by method name; an int size means a square."""
    if isinstance(size, int):
        size = (size, size)
    return img.resize(size, _RESAMPLE[method])


def zoom_crop(img: Image.Image, factor: int) -> Image.Image:
    """Center-crop 1/``factor`` of each side (the low-resolution view of the next state)."""
    return img.crop(center_crop_box(*img.size, factor))


def zoom_input(prev: Image.Image, upscale: int) -> tuple[Image.Image, Image.Image]:
    """One step of the chain: (the low-res crop of x_{i-1}, its BICUBIC upsampling to full size).

    The second image is the SR input of the official code and the "zoomed" image the VLM sees.
    """
    lr = zoom_crop(prev, upscale)
    return lr, resize(lr, prev.size, "bicubic")


def direct_crop(x0: Image.Image, upscale: int, k: int) -> Image.Image:
    """The crop of x_0 that state k covers: 1/``upscale**k`` of each side (used by the one-shot baselines)."""
    return zoom_crop(x0, upscale ** k)


def step_window(w: int, h: int, factor: int) -> Window:
    """The crop box of one step as a fraction of the state it is cut from: (left, top, right, bottom)."""
    l, t, r, b = center_crop_box(w, h, factor)
    return (l / w, t / h, r / w, b / h)


def compose_window(outer: Window, inner: Window) -> Window:
    """Map a window given relative to ``outer`` into the coordinates ``outer`` is given in."""
    ol, ot, or_, ob = outer
    il, it, ir, ib = inner
    sw, sh = or_ - ol, ob - ot
    return (ol + il * sw, ot + it * sh, ol + ir * sw, ot + ib * sh)


def chain_windows(size: int, upscale: int, steps: int) -> list[Window]:
    """Windows of the recursive states x_0..x_n in x_0's unit coordinates (exact, integer boxes included)."""
    windows: list[Window] = [(0.0, 0.0, 1.0, 1.0)]
    for _ in range(steps):
        windows.append(compose_window(windows[-1], step_window(size, size, upscale)))
    return windows


def direct_windows(size: int, upscale: int, steps: int) -> list[Window]:
    """Windows of the one-shot states (crops of x_0 by ``upscale**k``) in x_0's unit coordinates."""
    return [(0.0, 0.0, 1.0, 1.0)] + [step_window(size, size, upscale ** k) for k in range(1, steps + 1)]


def tile_starts(side: int, tile: int, overlap: int, multiple: int = 1) -> list[int]:
    """Origins of overlapping tiles along one side: stride tile - overlap (rounded down to a
    ``multiple``), the last tile flush with the end, so every pixel is covered (the official
    full-image tiling)."""
    from .errors import ConfigError
    if tile >= side:
        return [0]
    if not 0 <= overlap < tile:
        raise ConfigError(f"tile overlap {overlap} must be >= 0 and smaller than the tile {tile}")
    stride = max(multiple, (tile - overlap) // multiple * multiple)
    return sorted(set(range(0, side - tile, stride)) | {side - tile})


def gaussian_weights(size: int, var: float = 0.01):
    """A tile's blending weights: a separable Gaussian of variance 0.01 in tile units (the official
    tiling code's); float32 numpy array [size, size], largest at the centre, never zero."""
    import numpy as np
    t = (np.arange(size) - (size - 1) / 2) / size
    g = np.exp(-t * t / (2 * var))
    return np.outer(g, g).astype(np.float32)
