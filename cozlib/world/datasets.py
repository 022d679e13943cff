"""ZoomWorld data sets: (low-res view, high-res view, coarser view, words) samples.

Splits are disjoint seed ranges, so views of one scene never cross splits. A sample is a window
at zoom Z: ``hr`` is its render at ``size`` px, ``lr`` the same window at ``size // upscale`` px
(the renderer is band-limited, so this is the exact low-resolution view), ``coarse`` the view
``upscale`` times wider around the same center (the previous scale-state, x_{i-1}), ``words``
the ground truth of the high-res view.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from ..imageio import atomic_dir

SPLITS: dict[str, tuple[int, int]] = {"train": (0, 1_000_000), "val": (1_000_000, 1_010_000),
                                      "test": (1_010_000, 1_020_000)}


def split_of(seed: int) -> str:
    for name, (lo, hi) in SPLITS.items():
        if lo <= seed < hi:
            return name
    return "none"


@dataclass(frozen=True)
class ViewSpec:
    seed: int
    center: tuple[float, float]
    zoom: float


def sample_specs(split: str, n: int, zooms: list[float], rng: np.random.Generator,
                 object_bias: float = 0.75) -> list[ViewSpec]:
    """Random views of the split's scenes; most centred inside an object (where the meaning is)."""
    from . import scene
    if split not in SPLITS:
        raise ConfigError(f"unknown split {split!r}; choose train, val or test")
    lo, hi = SPLITS[split]
    specs = []
    for _ in range(n):
        seed = int(rng.integers(lo, hi))
        sc = scene(seed)
        if rng.random() < object_bias and sc.objects:
            o = sc.objects[int(rng.integers(len(sc.objects)))]
            c = (o.cx + rng.uniform(-0.3, 0.3) * o.size, o.cy + rng.uniform(-0.3, 0.3) * o.size)
        else:
            c = tuple(rng.uniform(0.05, 0.95, 2))
        c = (float(np.clip(c[0], 0.0, 1.0)), float(np.clip(c[1], 0.0, 1.0)))
        specs.append(ViewSpec(seed, c, float(zooms[int(rng.integers(len(zooms)))])))
    return specs


def render_sample(spec: ViewSpec, size: int, upscale: int = 4, device: str = "cpu") -> dict:
    """One sample as PIL images plus its words."""
    from . import render_window, view_window, window_words
    window = view_window(spec.center, spec.zoom)
    coarse = view_window(spec.center, spec.zoom / upscale)
    return {"hr": render_window(spec.seed, window, size, device),
            "lr": render_window(spec.seed, window, size // upscale, device),
            "coarse": render_window(spec.seed, coarse, size, device),
            "words": window_words(spec.seed, window, size)}


def write_dataset(out: str | os.PathLike, split: str, n: int, zooms: list[float], size: int = 128,
                  upscale: int = 4, seed: int = 0) -> int:
    """Write ``out/split/{i}_{hr,lr,coarse}.png`` and ``index.jsonl``; the folder appears whole or not at all.
    Every argument is checked before anything is written."""
    from . import MAX_SIZE
    from ..geometry import MAX_ZOOM
    from ..outputs import check_not_inside_output, check_replaceable, check_writable_dir
    if split not in SPLITS:
        raise ConfigError(f"unknown split {split!r}; choose train, val or test")
    if not 1 <= n <= 1_000_000:
        raise ConfigError(f"--n must be a whole number from 1 to 1000000, got {n}")
    if not 2 <= upscale <= 16:
        raise ConfigError(f"--upscale must be a whole number from 2 to 16, got {upscale}")
    if not upscale <= size <= MAX_SIZE or size % upscale:
        raise ConfigError(f"--size must be a multiple of --upscale {upscale} from {upscale} to {MAX_SIZE}, got {size}")
    if not zooms or any(not 0 < z <= MAX_ZOOM for z in zooms):
        raise ConfigError(f"--zoom values must be numbers above 0 and at most {MAX_ZOOM:.1e}, got {zooms}")
    check_writable_dir(out)
    check_not_inside_output(out)
    check_replaceable(Path(out) / split, "dataset")
    rng = np.random.default_rng([seed, list(SPLITS).index(split) if split in SPLITS else 99])
    specs = sample_specs(split, n, list(zooms), rng)
    with atomic_dir(Path(out) / split, kind="dataset") as tmp:
        with open(tmp / "index.jsonl", "w") as index:
            for i, spec in enumerate(specs):
                s = render_sample(spec, size, upscale)
                for key in ("hr", "lr", "coarse"):
                    s[key].save(tmp / f"{i:06d}_{key}.png")
                index.write(json.dumps({"i": i, "seed": spec.seed, "center": spec.center, "zoom": spec.zoom,
                                        "upscale": upscale, "size": size, "words": s["words"]}) + "\n")
    return len(specs)
