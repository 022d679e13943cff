"""Training pairs of the demo SR model: ZoomWorld views with their words, bundled-photo patches,
the cache that renders them once, and the seeded batches every stage draws.

A pair is (HR view, its low-res view bicubic-upsampled to the HR size: the SR input, the prompt,
the view's own words). The prompt is the true words of a ``prompt_context`` times wider window
holding the view: what the chain's prompt says about each latent tile of its state.
"""
from __future__ import annotations

import functools
import os
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from .config import SRTrainConfig

#: The one-step stages draw their own pairs with ``seed + SR_PAIRS_SEED``, as OSEDiff trains on
#: pairs SD3's pretraining never saw (docs/lab/2026-11-27-sr-recipe.md: 0.41-0.45 against 0.52).
SR_PAIRS_SEED = 1000

#: Zoom levels of the training views: 1x to 4096x in half-octave steps of the 4x chain.
TRAIN_ZOOMS = tuple(4 ** (k / 2) for k in range(13))


def workers(cfg: SRTrainConfig) -> int:
    """Render processes: ``cfg.workers``, or every core but one when it is 0."""
    return cfg.workers or max(1, (os.cpu_count() or 2) - 1)


def _render_pair(spec, size: int, upscale: int, context: int = 1, offset=(0.0, 0.0)):
    """(HR, bicubic-upsampled LR, words) of one view. With ``context`` > 1 the words are those of a
    ``context`` times wider window holding the view at ``offset`` (in [-1, 1]^2 of the room it has)."""
    from ...world import render_window, view_window
    w = view_window(spec.center, spec.zoom)
    return (np.asarray(render_window(spec.seed, w, size)), low_view(spec, size, upscale),
            context_prompt(spec, size, context, offset))


def low_view(spec, size: int, upscale: int) -> np.ndarray:
    """The view rendered at ``size // upscale`` px, bicubic-upsampled to ``size`` (the SR input)."""
    from ...geometry import resize
    from ...world import render_window, view_window
    return np.asarray(resize(render_window(spec.seed, view_window(spec.center, spec.zoom), size // upscale), size, "bicubic"))


def context_prompt(spec, size: int, context: int, offset) -> str:
    """The true words of the ``context`` times wider window holding the view at ``offset``."""
    from ...prompts.oracle import truth_prompt
    from ...world import window_words
    room, half = 0.5 * (context - 1) / spec.zoom, 0.5 * context / spec.zoom
    cx, cy = spec.center[0] - offset[0] * room, spec.center[1] - offset[1] * room
    wide = (cx - half, cy - half, cx + half, cy + half)  # may reach past the base view (the world goes on there)
    return truth_prompt(window_words(spec.seed, wide, size * context))


def render_placed(spec_offset, **kw):
    """``_render_pair`` of a (view, offset) item (``parallel_map`` passes one argument), plus the
    view's own words (the critic learns those: it sees only the view)."""
    from ...prompts.oracle import truth_prompt
    from ...world import view_window, window_words
    spec, offset = spec_offset
    hr, lr, words = _render_pair(spec, offset=offset, **kw)
    own = words if kw["context"] == 1 else truth_prompt(window_words(spec.seed, view_window(spec.center, spec.zoom), kw["size"]))
    return hr, lr, words, own


def _zoomworld_pairs(n: int, size: int, upscale: int, split: str, seed: int, n_workers: int = 1, context: int = 1):
    """``n`` ZoomWorld views: HR, LR, prompt and own words (the same pairs for any number of
    workers: the views and their offsets are drawn first)."""
    from ...runtime import parallel_map
    from ...world.datasets import sample_specs
    rng = np.random.default_rng([seed, 11])
    specs = sample_specs(split, n, list(TRAIN_ZOOMS), rng)
    offsets = [tuple(o) for o in rng.uniform(-1, 1, (n, 2))]  # drawn after the views: they stay the same
    rows = parallel_map(functools.partial(render_placed, size=size, upscale=upscale, context=context),
                        list(zip(specs, offsets)), n_workers)
    hr, lr, prompts, own = (list(x) for x in zip(*rows)) if rows else ([], [], [], [])
    return hr, lr, prompts, own


def _photo_pairs(n: int, size: int, upscale: int, seed: int):
    """Patches of the bundled photos at scales 1-4x of ``size``, with a null prompt."""
    from PIL import Image
    from ...data import photo, photo_names
    from ...geometry import resize
    rng = np.random.default_rng([seed, 12])
    photos = [photo(p) for p in photo_names()]
    hr, lr = [], []
    for _ in range(n):
        im = photos[int(rng.integers(len(photos)))]
        scale = float(rng.uniform(1.0, 4.0))
        w, h = im.size
        side = min(int(size * scale), w, h)
        x0, y0 = int(rng.integers(0, w - side + 1)), int(rng.integers(0, h - side + 1))
        patch = im.crop((x0, y0, x0 + side, y0 + side)).resize((size, size), Image.LANCZOS)
        hr.append(np.asarray(patch))
        lr.append(np.asarray(resize(resize(patch, size // upscale, "bicubic"), size, "bicubic")))
    return hr, lr, [""] * n


def to_nchw(images: list[np.ndarray]):
    """HWC uint8 images -> one uint8 tensor [N, 3, H, W]."""
    import torch
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()


def make_pairs(cfg: SRTrainConfig, split: str = "train", n: int | None = None, photos: bool = True) -> dict:
    """{'hr', 'lr': uint8 [N, 3, S, S] (lr = the bicubic-upsampled low-res view), 'prompt': [str]
    (the ``prompt_context`` window's words), 'words': [str] (the view's own; photos: '')}."""
    n = n or cfg.pairs
    n_photo = int(round(n * cfg.photo_share)) if photos else 0
    hr, lr, pr, own = _zoomworld_pairs(n - n_photo, cfg.size, cfg.upscale, split, cfg.seed, workers(cfg), cfg.prompt_context)
    if n_photo:
        h2, l2, p2 = _photo_pairs(n_photo, cfg.size, cfg.upscale, cfg.seed)
        hr, lr, pr, own = hr + h2, lr + l2, pr + p2, own + p2
    return {"hr": to_nchw(hr), "lr": to_nchw(lr), "prompt": pr, "words": own}


def cached_pairs(cfg: SRTrainConfig, split: str, n: int, photos: bool, log=print) -> dict:
    """``make_pairs``, rendered once and kept in ``cfg.work`` (keyed by every setting that changes them;
    a safetensors file: an unreadable one is rendered again)."""
    from ...imageio import load_tensors
    from ...world import RENDER_VERSION  # renders of an older world are not reused
    path = Path(cfg.work) / (f"pairs-{split}-{n}-{cfg.size}-{cfg.upscale}-{cfg.photo_share if photos else 0}-{cfg.seed}"
                             f"{f'-c{cfg.prompt_context}' if cfg.prompt_context > 1 else ''}-r{RENDER_VERSION}.safetensors")
    got = load_tensors(path, log)
    if got is not None:
        return pairs_from(got)
    t = time.perf_counter()
    data = make_pairs(cfg, split, n, photos)
    save_pairs(data, path)
    log(f"[data] {split}: {n} pairs rendered in {time.perf_counter() - t:.0f} s")
    return data


def save_pairs(data: dict, path: Path) -> None:
    """A pairs dict as a safetensors cache (``pairs_from`` reads it back)."""
    from ...imageio import save_tensors
    save_tensors({"hr": data["hr"], "lr": data["lr"]}, {"prompt": data["prompt"], "words": data["words"]}, path)


def pairs_from(got: tuple[dict, dict]) -> dict:
    tensors, meta = got
    return {"hr": tensors["hr"], "lr": tensors["lr"], "prompt": meta["prompt"], "words": meta["words"]}


def sr_pairs(cfg: SRTrainConfig, log=print) -> dict:
    """The one-step stages' pairs: a draw of their own (seed + ``SR_PAIRS_SEED``), not the pairs the
    VAE, the base model and the critic learnt from; a ``direct_share`` of them with direct SR's inputs."""
    data = cached_pairs(replace(cfg, seed=cfg.seed + SR_PAIRS_SEED), "train", cfg.pairs, True, log)
    return with_direct_inputs(data, cfg.direct_share, cfg.seed + SR_PAIRS_SEED)


#: Direct SR's input at 64x and 256x holds 4 px and 1 px of the base view (its 1/64 and 1/256).
DIRECT_INPUT_PX = (4, 1)


def direct_input(hr, px: int):
    """uint8 [N, 3, S, S] views -> their ``px`` x ``px`` area mean, bicubic-enlarged back to S."""
    import torch
    import torch.nn.functional as F
    low = F.adaptive_avg_pool2d(hr.float(), px)
    up = F.interpolate(low, size=hr.shape[-2:], mode="bicubic", align_corners=False)
    return up.round().clamp(0, 255).to(torch.uint8)


def with_direct_inputs(data: dict, share: float, seed: int) -> dict:
    """The pairs with a ``share`` of inputs (seeded draw, split evenly over ``DIRECT_INPUT_PX``)
    replaced by ``direct_input`` of their HR view: a flat input is the one the 4x pairs never show."""
    n = len(data["prompt"])
    k = int(round(n * share))
    if not k:
        return data
    idx = np.random.default_rng([seed, 13]).permutation(n)[:k]
    lr = data["lr"].clone()
    for j, px in enumerate(DIRECT_INPUT_PX):
        part = [int(i) for i in idx[j::len(DIRECT_INPUT_PX)]]
        lr[part] = direct_input(data["hr"][part], px)
    return {**data, "lr": lr}


def own_words(data: dict) -> dict:
    """The pairs with each view's own words as the prompt (not the ``prompt_context`` window's): what
    the base model (text-to-image of the view) and the word critic (it sees only the view) learn."""
    return {**data, "prompt": data["words"]}


def batch_of(data: dict, step: int, batch: int, seed: int, device: str, dropout: float = 0.0):
    """A seeded batch, a function of the step (so a resumed run sees the same batches): (hr, lr) in
    [-1, 1] on ``device``, prompts (a ``dropout`` share replaced by '')."""
    import torch
    g = np.random.default_rng([seed, step])
    idx = g.integers(0, len(data["prompt"]), batch)
    it = torch.from_numpy(idx)
    hr = data["hr"][it].to(device).float() / 127.5 - 1
    lr = data["lr"][it].to(device).float() / 127.5 - 1
    if g.random() < 0.5:  # flips keep every texture's statistics: free augmentation
        hr, lr = hr.flip(-1), lr.flip(-1)
    prompts = ["" if g.random() < dropout else data["prompt"][i] for i in idx]
    return hr, lr, prompts


def word_vector(prompts: list[str], device: str = "cpu"):
    """Prompts as multi-hot vectors over ZoomWorld's vocabulary (the word critic's labels)."""
    import torch
    from ...metrics.truth import prompt_words
    from ...world.vocab import vocabulary
    vocab = vocabulary()
    out = torch.zeros(len(prompts), len(vocab), device=device)
    for i, p in enumerate(prompts):
        for w in prompt_words(p, vocab)[0]:
            out[i, vocab.index(w)] = 1.0
    return out
