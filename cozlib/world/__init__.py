"""ZoomWorld: procedural scenes with exact ground truth at every zoom (issue: ZoomWorld).

The base view of scene ``seed`` is the unit square; a view is a ``center`` (in base coordinates)
and a ``zoom`` (magnification of the base view). ``render_view`` gives its pixels, ``view_words``
its ground-truth words with area fractions. The same renderer takes batches of windows as torch
tensors, on a GPU when asked.
"""
from __future__ import annotations

from functools import lru_cache

from PIL import Image

from ..errors import ConfigError
from .scene import RENDER_VERSION, Scene, Window
from .vocab import AMBIGUITY_ZOOM, AMBIGUOUS_PAIRS, MESO_PERIOD, MICRO, OBJECTS, levels, vocabulary

#: Words whose area in a view is below this fraction are not listed.
MIN_FRACTION = 0.005


@lru_cache(maxsize=64)
def scene(seed: int) -> Scene:
    """The scene of a seed (cached: building one is cheap, but views are rendered many times)."""
    return Scene(seed)


def view_window(center: tuple[float, float], zoom: float) -> Window:
    """The window (left, top, right, bottom) of a view, with clear errors for bad arguments."""
    from ..geometry import MAX_ZOOM
    cx, cy = center
    if not (0 < zoom <= MAX_ZOOM):
        raise ConfigError(f"zoom must be a number from above 0 to {MAX_ZOOM:.1e} (1 = the base view; deeper, a "
                          f"pixel is smaller than the float64 coordinates resolve), got {zoom}")
    if not (0.0 <= cx <= 1.0 and 0.0 <= cy <= 1.0):
        raise ConfigError(f"center {center} is outside the base view; use coordinates in [0, 1]")
    half = 0.5 / zoom
    return (cx - half, cy - half, cx + half, cy + half)


#: The largest render (px per side): 8192^2 px is 200 MB of float32 RGB, and the renderer keeps several layers.
MAX_SIZE = 8192


def _check_size(size: int) -> None:
    if isinstance(size, bool) or not isinstance(size, int) or not 0 < size <= MAX_SIZE:
        raise ConfigError(f"size must be a whole number of pixels from 1 to {MAX_SIZE}, got {size!r}")


def check_seed(seed: int) -> int:
    """A scene seed: a whole number from 0 to 2^63 - 1."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2 ** 63:
        raise ConfigError(f"a scene seed is a whole number from 0 to 2^63 - 1, got {seed!r}")
    return seed


def render_window(seed: int, window: Window, size: int, device: str = "cpu") -> Image.Image:
    """One window of a scene as an 8-bit RGB image."""
    from ..imageio import tensor_to_pil
    _check_size(size)
    check_seed(seed)
    return tensor_to_pil(scene(seed).render([window], size, device=device))


def render_view(seed: int, center: tuple[float, float], zoom: float, size: int, device: str = "cpu") -> Image.Image:
    return render_window(seed, view_window(center, zoom), size, device)


def _characteristic_size(sc: Scene, idx: int, part: str) -> float:
    """How large a part's features are, in base units: a part is 'visible' when they span 2 px."""
    size = 1.0 if idx < 0 else sc.objects[idx].size
    if part == "seeds":
        return 0.7 * MESO_PERIOD
    if part == "pebbles":
        return 0.5 / 24
    kind = sc.kind_of(idx)
    return next(p.scale for p in OBJECTS[kind] if p.word == part) * size


def window_words(seed: int, window: Window, size: int = 512, grid: int = 64) -> dict[str, float]:
    """Ground-truth words of a window seen at ``size`` px: {word: area fraction}, sorted.

    Objects count by area; a part counts when its features span at least 2 px at this size; a
    micro-texture when its first octave does (period 1/f_lo >= 2 px). Fractions are measured on
    a ``grid`` x ``grid`` sampling of the window.
    """
    _check_size(size)
    sc = scene(seed)
    _, weights = sc.evaluate([window], grid, want_rgb=False)
    pixel = (window[2] - window[0]) / size
    out: dict[str, float] = {}
    for (idx, part), w in weights.items():
        frac = float(w.mean())
        if frac <= 0:
            continue
        kind = sc.kind_of(idx)
        micro = next(p.micro for p in OBJECTS[kind] if p.word == part)
        out[kind] = out.get(kind, 0.0) + frac
        if _characteristic_size(sc, idx, part) >= 2 * pixel:
            out[part] = out.get(part, 0.0) + frac
        if 1.0 / MICRO[micro].f_lo >= 2 * pixel:
            out[micro] = out.get(micro, 0.0) + frac
    return {w: round(min(f, 1.0), 4) for w, f in sorted(out.items(), key=lambda kv: -kv[1]) if f >= MIN_FRACTION}


def view_words(seed: int, center: tuple[float, float], zoom: float, size: int = 512) -> dict[str, float]:
    return window_words(seed, view_window(center, zoom), size)


def parse_world_input(spec: str) -> int | None:
    """'world:12' -> 12; anything else -> None."""
    if not spec.startswith("world:"):
        return None
    try:
        seed = int(spec.split(":", 1)[1])
    except ValueError:
        raise ConfigError(f"{spec!r}: write world:SEED with an integer seed, e.g. world:3") from None
    if not 0 <= seed < 2 ** 63:
        raise ConfigError(f"{spec!r}: the seed must be a whole number from 0 to 2^63 - 1")
    return seed


def world_source(seed: int, x0_window: Window | None = None) -> dict:
    """What a chain run on scene ``seed`` must know (and its cache key must contain): its x_0 is the
    base view, or ``x0_window`` (a view re-centred elsewhere, e.g. where the explorer was clicked)."""
    out = {"world_seed": seed, "render_version": RENDER_VERSION}
    if x0_window is not None and tuple(x0_window) != (0.0, 0.0, 1.0, 1.0):
        out["x0_window"] = [float(v) for v in x0_window]
    return out


def in_world(window: Window, source: dict) -> Window:
    """A window in x_0's unit square (the chain's) as a window of the scene (``world_source``)."""
    l0, t0, r0, b0 = source.get("x0_window", (0.0, 0.0, 1.0, 1.0))
    w, h = r0 - l0, b0 - t0
    return (l0 + window[0] * w, t0 + window[1] * h, l0 + window[2] * w, t0 + window[3] * h)


__all__ = ["AMBIGUITY_ZOOM", "AMBIGUOUS_PAIRS", "MESO_PERIOD", "RENDER_VERSION", "Scene", "world_source", "format_words", "levels", "parse_world_input",
           "render_view", "render_window", "scene", "view_window", "view_words", "vocabulary", "window_words", "in_world"]


def format_words(words: dict[str, float], top: int = 6) -> str:
    """'cat 0.78, fur 0.78, ...' for captions."""
    return ", ".join(f"{w} {f:.2f}" for w, f in list(words.items())[:top])
