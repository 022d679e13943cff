"""Chain-state pairs: the one-step model's own outputs as its inputs (docs/PAPER.md §2).

From the chain's second step on, the SR input is the model's own previous output, centre-cropped
and upsampled, which may have drifted to another texture; then the words are the only sign of
what the truth is. A chain-state pair renders a training view's ancestor 1..``chain_depth`` zoom
steps out at low res (never wider than the 1x base view, where a real chain starts), lets the model
run the chain down to the view with each level's true words (or null prompts all the way, for a
``prompt_dropout_sr`` share), and asks it to turn that state, with the view's words, into the
view's exact render.
"""
from __future__ import annotations

import functools
from dataclasses import replace
from typing import Callable

import numpy as np

from .config import SRTrainConfig
from .data import TRAIN_ZOOMS, context_prompt, low_view, render_placed, to_nchw, workers


def chain_levels(spec, depth: int, upscale: int) -> list:
    """The views a chain passes through on its way to ``spec``: ``depth`` ancestors with the same
    centre, each ``upscale`` times wider than the next (oldest first), then the view itself."""
    return [replace(spec, zoom=spec.zoom / upscale ** j) for j in range(depth, -1, -1)]


def zoom_state(out, upscale: int):
    """One chain step on model outputs [N, 3, S, S] in [0, 1]: each 8-bit state's centre
    1/``upscale`` crop, BICUBIC-upsampled back to S px (``geometry.zoom_input``), as uint8 [N, 3, S, S]."""
    from ...geometry import zoom_input
    from ...imageio import tensor_to_pil
    return to_nchw([np.asarray(zoom_input(tensor_to_pil(o), upscale)[1]) for o in out])


def _render_chain_item(item: tuple, size: int, upscale: int, context: int) -> tuple:
    """What a chain-state pair needs rendered: the view's HR and own words, the low-res view of its
    oldest ancestor (the chain's x_{i-depth}) and every level's prompt c_i, oldest first."""
    spec, offset, depth = item
    levels = chain_levels(spec, depth, upscale)
    hr, _, words, own = render_placed((spec, offset), size=size, upscale=upscale, context=context)
    return hr, low_view(levels[0], size, upscale), [context_prompt(v, size, context, offset) for v in levels[:-1]] + [words], own


def chain_draw(cfg: SRTrainConfig, n: int, seed: int) -> tuple[list, list, np.ndarray, np.ndarray]:
    """The seeded draw of ``chain_pairs``: (views, prompt-window offsets, depths 1..``chain_depth``,
    whether each view's chain is worded)."""
    from ...world.datasets import sample_specs
    rng = np.random.default_rng([seed, 13])
    specs = sample_specs("train", n, [z for z in TRAIN_ZOOMS if z >= cfg.upscale], rng)
    offsets = [tuple(o) for o in rng.uniform(-1, 1, (n, 2))]
    depths = np.array([rng.integers(1, max_depth(s.zoom, cfg) + 1) for s in specs])
    return specs, offsets, depths, rng.random(n) >= cfg.prompt_dropout_sr


def max_depth(zoom: float, cfg: SRTrainConfig) -> int:
    """The most zoom steps above a view at ``zoom`` whose ancestor is still inside the 1x base view (a
    real chain starts there), at most ``chain_depth``."""
    import math
    return max(1, min(cfg.chain_depth, int(math.floor(math.log(zoom) / math.log(cfg.upscale) + 1e-9))))


def chain_pairs(model: Callable, cfg: SRTrainConfig, n: int, seed: int, log=print, batch: int = 32) -> dict:
    """``n`` pairs whose LR input is a chain state ``model`` (images in [0, 1], prompts -> images)
    made itself; HR is the view's exact render, the prompt its ``prompt_context`` window's words.
    Same dict as ``data.make_pairs``."""
    from ...runtime import parallel_map
    specs, offsets, depths, worded = chain_draw(cfg, n, seed)
    rows = parallel_map(functools.partial(_render_chain_item, size=cfg.size, upscale=cfg.upscale, context=cfg.prompt_context),
                        list(zip(specs, offsets, (int(d) for d in depths))), workers(cfg))
    hr, low, levels, own = (list(x) for x in zip(*rows))
    lr = to_nchw(low)
    for t in range(int(depths.max())):  # level t of every view with more than t steps to go
        idx = [i for i in range(n) if depths[i] > t]
        for j in range(0, len(idx), batch):
            b = idx[j:j + batch]
            prompts = [levels[i][t] if worded[i] else "" for i in b]
            lr[b] = zoom_state(model(lr[b].float() / 255, prompts), cfg.upscale)
    return {"hr": to_nchw(hr), "lr": lr, "prompt": [lv[-1] for lv in levels], "words": own}
