"""Full-image CoZ (the official later code's extension, ``inference_coz_full.py``): every step
super-resolves the whole previous state in overlapping tiles, each tile with its own prompt.

* ``run_full_image_latent``: the official algorithm, OSEDiff only (``OSEDiffSD3.full_image_step``):
  latent tiles blended with Gaussian weights, each prompted from x_0 and the tile's decoded input;
* ``run_full_image``: the same idea in pixel space, for every backbone of the registry, with the
  tiles' disagreement where they overlap recorded (the appendix's overlap consistency).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

from PIL import Image

from . import geometry
from .chain import ChainConfig, _sr_input
from .errors import ConfigError


@dataclass
class FullImageResult:
    """States of a full-image chain (each ``upscale`` times larger than the last), with the prompt
    and window (in x_0's unit square) of every tile of every step."""

    states: list[Image.Image]
    tiles: list[list[dict[str, Any]]]  # per step: [{"box": (l, t, r, b) px, "window": ..., "prompt": ...}]
    #: per step: how much overlapping tiles disagree before blending, the mean over pixels covered by
    #: two or more tiles of the standard deviation of their values (0-255; NaN without overlap)
    disagreement: list[float] = field(default_factory=list)


def check_full_image(config: ChainConfig, tile: int | None = None, overlap: int | None = None,
                     max_side: int = 16384) -> int:
    """Clear errors for a full-image chain that cannot run (before any work); returns the overlap."""
    config.validate()
    s, P = config.upscale, tile or config.process_size
    overlap = P // 4 if overlap is None else overlap
    if P % s or not 0 <= overlap < P:
        raise ConfigError(f"tile {P} must be a multiple of upscale {s}, and 0 <= overlap < tile (got {overlap})")
    final = config.process_size * s ** config.steps
    if final > max_side:
        raise ConfigError(f"full-image CoZ with {config.steps} steps from {config.process_size} px makes a "
                          f"{final} px image (limit {max_side}); use fewer --steps or a smaller --process-size")
    return overlap


def run_full_image_latent(image: Image.Image, config: ChainConfig, backbone, extractor=None, *, tile: int | None = None,
                          overlap: int | None = None, max_side: int = 16384, source: dict[str, Any] | None = None,
                          progress: Callable[[int, int], None] | None = None) -> FullImageResult:
    """Full-image CoZ as the official code runs it (``OSEDiffSD3.full_image_step``): tiles of the latent
    (``tile`` / ``overlap`` in latent pixels), each prompted from x_0 and the tile's decoded input,
    blended in latent space (default: the model's own tile, ``OSEDiffSD3.latent_tiles``). OSEDiff backbones only."""
    from .imageio import check_image
    from .prompts.simple import NullPrompt
    from .runtime import seed_everything
    if not hasattr(backbone, "full_image_step"):
        raise ConfigError("latent full-image CoZ needs an OSEDiff backbone; use the pixel blend for the others")
    check_full_image(config, max_side=max_side)
    tile, overlap = backbone.latent_tiles(tile, overlap)
    extractor = extractor or NullPrompt()
    seed_everything(config.seed)
    x0 = geometry.resize_and_center_crop(check_image(image), config.process_size)
    states, tiles = [x0], []
    for i in range(1, config.steps + 1):
        state, step_tiles = backbone.full_image_step(states[-1], x0, extractor, config.upscale, step=i, tile=tile,
                                                     overlap=overlap, user_prompt=config.user_prompt, source=source)
        states.append(state)
        tiles.append(step_tiles)
        if progress:
            progress(i, config.steps)
    return FullImageResult(states, tiles, [math.nan] * config.steps)


def run_full_image(image: Image.Image, config: ChainConfig, backbone, extractor=None, *,
                   tile: int | None = None, overlap: int | None = None, max_side: int = 16384,
                   source: dict[str, Any] | None = None, progress: Callable[[int, int], None] | None = None) -> FullImageResult:
    """Full-image CoZ: every step super-resolves the *whole* previous state, tile by tile, each tile
    with its own prompt (the extractor sees the tile's zoomed input and, multiscale, the whole
    previous state), outputs blended with Gaussian weights. ``tile`` (default process_size) is
    the backbone's output size per tile; ``overlap`` defaults to a quarter of it.

    The official code blends in latent space inside OSEDiff; here blending is in pixel space so it
    works for any backbone of the registry (OSEDiff also tiles its own latent at its training size).
    """
    import numpy as np
    from .imageio import check_image
    from .prompts import PromptContext, prompt_for
    from .prompts.simple import NullPrompt
    from .runtime import seed_everything
    if backbone is None:
        raise ConfigError("full-image CoZ needs an SR backbone")
    extractor = extractor or NullPrompt()
    s, P = config.upscale, tile or config.process_size
    overlap = check_full_image(config, tile, overlap, max_side)
    seed_everything(config.seed)
    x0 = geometry.resize_and_center_crop(check_image(image), config.process_size)
    states, tiles, disagreement = [x0], [], []
    for i in range(1, config.steps + 1):
        prev = states[-1]
        side = prev.size[0] * s
        acc = np.zeros((side, side, 3), np.float32)
        norm = np.zeros((side, side, 1), np.float32)
        plain, squares, count = np.zeros_like(acc), np.zeros_like(acc), np.zeros_like(norm)  # tiles' spread
        w = geometry.gaussian_weights(P)[..., None]
        step_tiles = []
        starts = geometry.tile_starts(side, P, overlap, multiple=s)
        for y in starts:
            for x in starts:
                crop = prev.crop((x // s, y // s, (x + P) // s, (y + P) // s))
                zoomed = geometry.resize(crop, P, "bicubic")
                window = (x / side, y / side, (x + P) / side, (y + P) / side)
                ctx = PromptContext(zoomed=zoomed, step=i, window=window, source=dict(source or {}),
                                    previous=prev if config.rec_type == "recursive_multiscale" else None)
                prompt = prompt_for(extractor, ctx, config.user_prompt)
                out = backbone.upsample([_sr_input(crop, backbone, P)], [prompt], P, seed=config.seed * 1000 + i)[0]
                o = np.asarray(out, np.float32)
                acc[y:y + P, x:x + P] += o * w
                norm[y:y + P, x:x + P] += w
                plain[y:y + P, x:x + P] += o
                squares[y:y + P, x:x + P] += o * o
                count[y:y + P, x:x + P] += 1
                step_tiles.append({"box": (x, y, x + P, y + P), "window": window, "prompt": prompt})
        states.append(Image.fromarray(np.clip(np.rint(acc / norm), 0, 255).astype(np.uint8), "RGB"))
        tiles.append(step_tiles)
        shared = count[..., 0] >= 2
        var = squares / np.maximum(count, 1) - (plain / np.maximum(count, 1)) ** 2
        disagreement.append(float(np.sqrt(np.maximum(var, 0)).mean(-1)[shared].mean()) if shared.any() else math.nan)
        if progress:
            progress(i, config.steps)
    return FullImageResult(states, tiles, disagreement)
