"""Training the demo OSEDiff-SD3 backbone (``make weights``): the paper's recipe at a size a CPU can train.

Stages (each resumable, ``loop.Stage``):

1. ``vae``: the tiny 16-channel AutoencoderKL learns to reconstruct 64 px patches (L1 + a small KL);
   then its ``shift_factor`` / ``scaling_factor`` are set from its latents' mean and spread, as SD3's.
2. ``base``: the tiny SD3Transformer2DModel learns text-to-image rectified flow on those latents
   (SD3's objective: x_t = (1 - s) z + s e, target e - z, logit-normal s), prompts = the view's own true words,
   10% dropped: our stand-in for the pretrained SD3. Option ``train_text``: the tiny text encoders
   train with it (SD3's come pretrained; random ones give unrelated prompts pooled features of
   cosine 0.8-0.9), then stay frozen.
3. ``critic``: a small word classifier (the demo tagger's network) learns the true words of the
   train views' HR images, then stays frozen: the feature network of the perceptual loss below
   (LPIPS's VGG at paper scale; there is no pretrained one at this size).
4. ``sr-perceptual`` / ``sr-l2``: OSEDiff's one-step 4x stage. LoRA on the transformer (the
   AdaLayerNormZero linears as the paper, plus attention/FF/patch layers at this size, see
   DEMO_LORA) and on the VAE encoder; input the bicubic-upsampled 16 px view, output
   x = D(z - v(z)) with z = E(x_lr) (PAPER.md section 5). Loss of ``sr-perceptual``: L2 to the
   truth on the 4x-pooled output (``l2_lowpass``: the band the input already holds) plus 0.3 x
   ``critic_loss`` (per-channel mean and spread of the critic's features, output against truth:
   a texture's kind, not its phase), plus 0.03 x ``texture_loss`` and 0.005 x ``grid_loss``
   (below), our stand-in for OSEDiff's L2 + LPIPS + VSD. ``sr-l2`` is the
   same stage with L2 on every pixel only, shown beside it (blurry). Prompts: the words of a window
   4x wider than the view (``prompt_context``: what the chain's prompt tells each 64 px tile of its
   256 px state), dropped 20% of the time, so a null prompt still works.

Data: ZoomWorld train-split views (zoom 1x to 4096x, 64 px, their 16 px low-res view and true
words) plus 20% patches of the bundled photos (null prompt), all rendered once and cached.
Options tried on the way (bench/results/prompt_sensitivity_cpu.md, runs 1-15), off by default:
a prompt-conditioned matching-aware patch GAN (``gan_weight``; with ``disc_words``,
``disc_pretrain``), ``colour_aug`` (hue-rotated pairs), ``train_text``, CSD and VSD against our
own base model (``csd_weight``, ``vsd_weight``), a Gram loss on the VAE encoder (``style_weight``);
runs 18-21: the texture distance's statistics as a loss (``texture_weight``), a penalty on spectral
peaks at the latent grid (``grid_weight``), no LoRA on the patch layers (``lora_patch_layers``);
run 23: the finest band counted more in ``texture_loss`` (``texture_fine_weight``).
Until then only the critic's loss made the true words beat none and wrong ones cost (runs 13-15). What the
perceptual stage draws is mostly a pattern repeated on its latent grid (``grid_loss`` measures it,
``bench/grid_artifact.py``), the same whatever the words; ``texture_weight=0.03`` with
``grid_weight=0.005`` together (run 22) halved it and gave oracle < null < wrong in the chains:
the defaults since stop 18 (each alone made the chains worse: runs 18 and 20).
"""
from __future__ import annotations

import copy
import json
import math
import os
import platform
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import ConfigError
from ..imageio import save_torch
from .loop import Stage, autocast, cosine_lr

#: Transformer modules given LoRA beyond the AdaLayerNormZero linears in the demo model (regex on
#: module names, as peft accepts). At 2M parameters a rank-4 LoRA on the modulation alone cannot
#: turn a weak generator into an SR model; SD3-medium's prior is what lets the paper's do that.
DEMO_LORA = [r"transformer_blocks\.\d+\.attn\.(to_q|to_k|to_v|to_out\.0|add_q_proj|add_k_proj|add_v_proj|to_add_out)",
             r"transformer_blocks\.\d+\.ff\.net\.(0\.proj|2)", "pos_embed.proj", "proj_out"]


@dataclass
class SRTrainConfig:
    out: str = "data/weights/osediff-demo"
    work: str = "build/train/osediff-demo"
    size: int = 64
    upscale: int = 4
    pairs: int = 6000
    photo_share: float = 0.2
    batch: int = 16
    batch_sr: int = 8
    vae_crop: int = 32          # the VAE is fully convolutional: it trains on crops, 4x cheaper
    steps_vae: int = 3500
    steps_base: int = 1200
    steps_sr: int = 2000
    lr_vae: float = 1e-3
    lr_base: float = 5e-4
    lr_sr: float = 5e-4
    lr_disc: float = 2e-4
    gan_weight: float = 0.0     # sr-perceptual: the prompt-conditioned patch GAN (make_discriminator); 0 = off (runs 11-12: it made worded outputs worse)
    l2_lowpass: int = 4         # sr-perceptual: L2 on the output average-pooled by this factor (1 = every pixel)
    kl_weight: float = 1e-6
    prompt_dropout_base: float = 0.1
    prompt_dropout_sr: float = 0.2
    degrade_blur: float = 0.0   # SR stages: the LR input blurred, Gaussian sigma ~ U(0, this) px of the upsampled input (degrade_lr); 0 = clean
    degrade_noise: float = 0.0  # SR stages: Gaussian noise on the LR input, std ~ U(0, this) of the [0, 1] range (degrade_lr); 0 = none
    colour_aug: float = 0.0     # base and SR stages: share of samples hue-rotated (batch_of); tried, see bench/results
    train_text: bool = False    # base stage: train the tiny text encoders too (train_base); tried, see bench/results
    disc_words: bool = False    # sr-perceptual: condition the discriminator on the prompt's ZoomWorld words (word_vector), not the pooled embedding
    csd_weight: float = 0.0     # sr-perceptual: classifier score distillation from the base model (csd_direction); 0 = off
    vsd_weight: float = 0.0     # sr-perceptual: variational score distillation (vsd_direction, OSEDiff's loss); 0 = off
    disc_pretrain: int = 0      # sr-perceptual: steps of the discriminator's matching-aware loss on real pairs alone before the stage (pretrain_discriminator)
    critic_weight: float = 0.3  # sr-perceptual: feature-statistics loss in a word classifier's features (train_word_critic, critic_loss); 0 = off
    critic_word_weight: float = 0.0  # sr-perceptual: the word critic must read the view's own words in a worded output (critic_word_loss); 0 = off
    steps_critic: int = 800
    style_weight: float = 0.0   # sr-perceptual: Gram-matrix loss on the frozen base VAE encoder's features (style_loss), LPIPS's role; 0 = off
    texture_weight: float = 0.03  # sr-perceptual: the texture distance's own band statistics, output against truth (texture_loss); 0 = off (run 22)
    texture_fine_weight: float = 1.0  # sr-perceptual: texture_loss's weight on the finest band (1-2 px) relative to the others
    grid_weight: float = 0.005  # sr-perceptual: spectral peaks on the latent-patch grid (grid_loss: periodicity, not energy); 0 = off (run 22)
    csd_sigmas: tuple = (0.5, 0.98)  # noise levels CSD and VSD sample (uniform)
    lora_rank: int = 16
    vae_lora_rank: int = 4
    lora_patch_layers: bool = True  # LoRA on the patch embedding and output projection too (pos_embed.proj, proj_out; DEMO_LORA)
    variants: list = field(default_factory=lambda: ["perceptual", "l2"])
    seed: int = 0
    sr_chain_steps: int = 1000  # one-step stages: steps of a second part on the model's own chain states (chain_stage); 0 = off (stop 20)
    sr_chain_pairs: int = 6000  # chain-state pairs (chain_pairs) the second part draws from
    sr_chain_share: float = 0.5  # share of each of its batches from chain states (the rest: sr_pairs)
    sr_chain_depth: int = 3     # a chain-state pair's view is 1..this many zoom steps below its rendered ancestor
    lr_chain: float = 2.5e-4    # the second part's peak learning rate (cosine, as lr_sr)
    sr_own_pairs: bool = True   # the one-step stages train on their own draw of pairs (sr_pairs; seed + SR_PAIRS_SEED), not the VAE's, base model's and critic's (stop 19)
    device: str = "auto"
    threads: int = 1            # torch's CPU threads while training on the CPU: the result depends on them (float sums in another order), so one makes `make weights` independent of the core count (stop 19)
    val_pairs: int = 64
    prompt_context: int = 4     # a pair's words describe a window this many times wider than its view (the chain's tiles: process_size / size)
    workers: int = 1            # processes rendering the ZoomWorld pairs (the pairs do not depend on it)

    def chain_steps_for(self, steps_sr: int) -> int:
        """The chain part's steps when the first part has ``steps_sr``: the same ratio (0 stays off)."""
        return round(steps_sr * self.sr_chain_steps / max(self.steps_sr, 1))

    @classmethod
    def smoke(cls, **kw) -> "SRTrainConfig":
        """A few steps of everything (the test suite's run)."""
        base = dict(pairs=48, batch=4, batch_sr=2, steps_vae=6, steps_base=6, steps_sr=6, steps_critic=6, val_pairs=4,
                    sr_chain_steps=4, sr_chain_pairs=8)
        base.update(kw)
        return cls(**base)

    @classmethod
    def cuda(cls, **kw) -> "SRTrainConfig":
        """Sizes for one data-centre GPU (an H100/H200): more pairs, larger batches, steps set by
        ``plan_steps`` from a time budget; the model and the losses are the CPU recipe's. Measured on
        an H200 (``--minutes 5``, the earlier GAN recipe): see the README's training section."""
        base = dict(pairs=20000, batch=64, batch_sr=32,
                    steps_vae=4000, steps_base=12000, steps_sr=4000, sr_chain_steps=2000,  # the CPU recipe's 1:2 (not run on a GPU yet)
                    device="cuda", workers=max(1, (os.cpu_count() or 2) - 1))
        base.update(kw)
        return cls(**base)


# -- data ---------------------------------------------------------------------------------------

def _render_pair(spec, size: int, upscale: int, context: int = 1, offset=(0.0, 0.0)):
    """(HR, bicubic-upsampled LR, words) of one view. With ``context`` > 1 the words are those of
    a ``context`` times wider window holding the view at ``offset`` (in [-1, 1]^2 of the room it
    has), seen at ``context * size`` px: what the chain's prompt says about each of its latent
    tiles (the prompt describes the whole ``process_size`` state; a tile sees a part)."""
    from ..world import render_window, view_window
    w = view_window(spec.center, spec.zoom)
    return (np.asarray(render_window(spec.seed, w, size)), _low_view(spec, size, upscale),
            _context_prompt(spec, size, context, offset))


def _low_view(spec, size: int, upscale: int) -> np.ndarray:
    """The view rendered at ``size // upscale`` px, bicubic-upsampled to ``size`` (the SR input)."""
    from ..geometry import resize
    from ..world import render_window, view_window
    return np.asarray(resize(render_window(spec.seed, view_window(spec.center, spec.zoom), size // upscale), size, "bicubic"))


def _context_prompt(spec, size: int, context: int, offset) -> str:
    """The true words of the ``context`` times wider window holding the view at ``offset`` (``_render_pair``)."""
    from ..prompts.oracle import truth_prompt
    from ..world import window_words
    room, half = 0.5 * (context - 1) / spec.zoom, 0.5 * context / spec.zoom
    cx, cy = spec.center[0] - offset[0] * room, spec.center[1] - offset[1] * room
    wide = (cx - half, cy - half, cx + half, cy + half)  # may reach past the base view (the world goes on there)
    return truth_prompt(window_words(spec.seed, wide, size * context))


def _zoomworld_pairs(n: int, size: int, upscale: int, split: str, seed: int, workers: int = 1, context: int = 1):
    """``n`` ZoomWorld views: HR, bicubic-upsampled LR, the prompt (the ``context`` x wider window's
    words) and each view's own words; ``workers`` processes render them (the same pairs for any
    number of workers: the views are drawn first)."""
    import functools
    from ..runtime import parallel_map
    from ..world.datasets import sample_specs
    rng = np.random.default_rng([seed, 11])
    zooms = [4 ** (k / 2) for k in range(13)]  # 1x .. 4096x
    specs = sample_specs(split, n, zooms, rng)
    offsets = [tuple(o) for o in rng.uniform(-1, 1, (n, 2))]  # drawn after the views: they stay the same
    rows = parallel_map(functools.partial(_render_placed, size=size, upscale=upscale, context=context),
                        list(zip(specs, offsets)), workers)
    hr, lr, prompts, own = (list(x) for x in zip(*rows)) if rows else ([], [], [], [])
    return hr, lr, prompts, own


def _render_placed(spec_offset, **kw):
    """``_render_pair`` of a (view, offset) item (``parallel_map`` passes one argument), plus the
    view's own words (the critic learns those: it sees only the view)."""
    from ..prompts.oracle import truth_prompt
    from ..world import view_window, window_words
    spec, offset = spec_offset
    hr, lr, words = _render_pair(spec, offset=offset, **kw)
    own = words if kw["context"] == 1 else truth_prompt(window_words(spec.seed, view_window(spec.center, spec.zoom), kw["size"]))
    return hr, lr, words, own


def _photo_pairs(n: int, size: int, upscale: int, seed: int):
    from PIL import Image
    from ..data import photo, photo_names
    from ..geometry import resize
    rng = np.random.default_rng([seed, 12])
    photos = [photo(p) for p in photo_names()]
    hr, lr = [], []
    for _ in range(n):
        im = photos[int(rng.integers(len(photos)))]
        scale = float(rng.uniform(1.0, 4.0))  # patches at several scales of the photo
        w, h = im.size
        side = min(int(size * scale), w, h)
        x0, y0 = int(rng.integers(0, w - side + 1)), int(rng.integers(0, h - side + 1))
        patch = im.crop((x0, y0, x0 + side, y0 + side)).resize((size, size), Image.LANCZOS)
        hr.append(np.asarray(patch))
        lr.append(np.asarray(resize(resize(patch, size // upscale, "bicubic"), size, "bicubic")))
    return hr, lr, [""] * n


def make_pairs(cfg: SRTrainConfig, split: str = "train", n: int | None = None, photos: bool = True) -> dict:
    """{'hr', 'lr' uint8 [N, 3, S, S] (lr = bicubic-upsampled low-res view), 'prompt': [str] (the
    ``prompt_context`` window's words), 'words': [str] (the view's own; photos: '')}."""
    n = n or cfg.pairs
    if not isinstance(cfg.prompt_context, int) or cfg.prompt_context < 1:
        raise ConfigError(f"prompt_context must be a whole number >= 1 (the prompt's window over the view's), got {cfg.prompt_context!r}")
    n_photo = int(round(n * cfg.photo_share)) if photos else 0
    hr, lr, pr, own = _zoomworld_pairs(n - n_photo, cfg.size, cfg.upscale, split, cfg.seed, cfg.workers, cfg.prompt_context)
    if n_photo:
        h2, l2, p2 = _photo_pairs(n_photo, cfg.size, cfg.upscale, cfg.seed)
        hr, lr, pr, own = hr + h2, lr + l2, pr + p2, own + p2
    return {"hr": _to_nchw(hr), "lr": _to_nchw(lr), "prompt": pr, "words": own}


def _to_nchw(images: list[np.ndarray]):
    """HWC uint8 images -> one uint8 tensor [N, 3, H, W]."""
    import torch
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()


#: ``SRTrainConfig.sr_own_pairs``: the one-step stages' pairs are drawn with ``seed + SR_PAIRS_SEED``.
SR_PAIRS_SEED = 1000


def sr_pairs(cfg: SRTrainConfig, data: dict, log=print) -> dict:
    """The one-step stages' training pairs: with ``cfg.sr_own_pairs`` a draw of their own, as
    OSEDiff trains on LSDIR + FFHQ, pairs SD3's pretraining never saw; otherwise ``data`` (the
    VAE's, base model's and critic's). Measured (bench/results/prompt_sensitivity_cpu.md, stop 19):
    on the same VAE, base and critic, three one-step trainings on pairs of their own gave CoZ 64x
    texture distances (null prompt) of 0.41-0.45 on the val scenes, the one on the base model's 0.52."""
    from dataclasses import replace
    if not cfg.sr_own_pairs:
        return data
    return cached_pairs(replace(cfg, seed=cfg.seed + SR_PAIRS_SEED), "train", cfg.pairs, True, log)


# -- chain states: the one-step model's own outputs as inputs (sr_chain_steps) ----------------------

def _render_chain_item(item: tuple, size: int, upscale: int, context: int) -> tuple:
    """The truth a chain-state pair needs (``chain_pairs``): the view's HR and own words, the low-res
    view of its oldest ancestor (``depth`` zoom steps out, same centre: the chain's x_{i-depth}) and
    every level's prompt (PAPER.md section 2's c_i), oldest first, the view's last."""
    spec, offset, depth = item
    levels = chain_levels(spec, depth, upscale)
    hr, _, words, own = _render_placed((spec, offset), size=size, upscale=upscale, context=context)
    return hr, _low_view(levels[0], size, upscale), [_context_prompt(v, size, context, offset) for v in levels[:-1]] + [words], own


def chain_levels(spec, depth: int, upscale: int) -> list:
    """The views a chain passes through on its way to ``spec``: ``depth`` ancestors with the same
    centre, each ``upscale`` times wider than the next (oldest first), then the view itself."""
    from dataclasses import replace
    return [replace(spec, zoom=spec.zoom / upscale ** j) for j in range(depth, -1, -1)]


def zoom_state(out, upscale: int):
    """One chain step (PAPER.md section 2) on model outputs [N, 3, S, S] in [0, 1]: each 8-bit
    state's centre 1/``upscale`` crop, BICUBIC-upsampled back to S px (``geometry.zoom_input``, what
    the chain feeds the backbone next), as a uint8 tensor [N, 3, S, S]."""
    from ..geometry import zoom_input
    from ..imageio import tensor_to_pil
    return _to_nchw([np.asarray(zoom_input(tensor_to_pil(o), upscale)[1]) for o in out])


def chain_draw(cfg: SRTrainConfig, n: int, seed: int) -> tuple[list, list, np.ndarray, np.ndarray]:
    """``chain_pairs``' seeded draw: (views, prompt-window offsets, depths 1..``sr_chain_depth``,
    whether each view's chain is worded)."""
    from ..world.datasets import sample_specs
    rng = np.random.default_rng([seed, 13])
    specs = sample_specs("train", n, [4 ** (k / 2) for k in range(13)], rng)
    offsets = [tuple(o) for o in rng.uniform(-1, 1, (n, 2))]
    depths = rng.integers(1, cfg.sr_chain_depth + 1, n)
    return specs, offsets, depths, rng.random(n) >= cfg.prompt_dropout_sr


def chain_pairs(model: Callable, cfg: SRTrainConfig, n: int, seed: int, log=print, batch: int = 32) -> dict:
    """``n`` ZoomWorld pairs whose LR input is a chain state the one-step ``model`` made itself
    (PAPER.md section 2: x_i is built from x_{i-1}, the model's own output, not a render): a view's
    ancestor 1..``cfg.sr_chain_depth`` zoom steps out (``chain_draw``; a deep view's ancestors may be
    wider than the 1x base view, which the world goes on past) is rendered at low res, then the model runs
    the chain down to the view with each level's true words (or, for a ``prompt_dropout_sr`` share
    of the views, with null prompts all the way, as a null-prompt chain does). The HR is the view's
    exact render and the prompt its ``prompt_context`` window's words (dropped at training time
    like every pair's), so a pair asks the model to bring a drifted state back to the truth the
    words name. Same dict as ``make_pairs``."""
    import functools
    from ..runtime import parallel_map
    specs, offsets, depths, worded = chain_draw(cfg, n, seed)
    rows = parallel_map(functools.partial(_render_chain_item, size=cfg.size, upscale=cfg.upscale, context=cfg.prompt_context),
                        list(zip(specs, offsets, (int(d) for d in depths))), cfg.workers)
    hr, low, levels, own = (list(x) for x in zip(*rows))
    lr = _to_nchw(low)
    for t in range(int(depths.max())):  # level t of every view with more than t steps to go
        idx = [i for i in range(n) if depths[i] > t]
        for j in range(0, len(idx), batch):
            b = idx[j:j + batch]
            prompts = [levels[i][t] if worded[i] else "" for i in b]
            lr[b] = zoom_state(model(lr[b].float() / 255, prompts), cfg.upscale)
    return {"hr": _to_nchw(hr), "lr": lr, "prompt": [lv[-1] for lv in levels], "words": own}


def own_words(data: dict) -> dict:
    """The pairs with each view's own words as the prompt (not the ``prompt_context`` window's):
    what the base model (text-to-image of the view) and the word critic (it sees only the view) learn."""
    return {**data, "prompt": data["words"]}


def cached_pairs(cfg: SRTrainConfig, split: str, n: int, photos: bool, log=print) -> dict:
    import torch
    from ..world import RENDER_VERSION  # renders of an older world are not reused
    path = Path(cfg.work) / (f"pairs-{split}-{n}-{cfg.size}-{cfg.upscale}-{cfg.photo_share if photos else 0}-{cfg.seed}"
                             f"{f'-c{cfg.prompt_context}' if cfg.prompt_context > 1 else ''}-r{RENDER_VERSION}.pt")
    if path.is_file():
        data = torch.load(path, weights_only=False)
        if "words" in data:  # older caches lack the views' own words: rendered again
            return data
    t = time.perf_counter()
    data = make_pairs(cfg, split, n, photos)
    save_torch(data, path)
    log(f"[data] {split}: {n} pairs rendered in {time.perf_counter() - t:.0f} s")
    return data


def hue_rotation(angles: np.ndarray) -> np.ndarray:
    """Rotation matrices [N, 3, 3] about RGB's gray axis (1, 1, 1) by ``angles`` (radians): a hue
    shift that keeps each pixel's channel mean; 2 pi / 3 is the cyclic channel permutation."""
    k = np.ones(3) / math.sqrt(3)
    K = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    c, s = np.cos(angles)[:, None, None], np.sin(angles)[:, None, None]
    return c * np.eye(3) + s * K + (1 - c) * np.outer(k, k)  # Rodrigues' formula


def recolour(x, mats):
    """Apply per-sample colour matrices [N, 3, 3] to images in [-1, 1] (clamped back into range)."""
    import torch
    m = torch.as_tensor(mats, dtype=x.dtype, device=x.device)
    y = torch.einsum("nij,njhw->nihw", m, (x + 1) / 2)
    return y.clamp(0, 1) * 2 - 1


def _batch_draw(n: int, step: int, batch: int, seed: int):
    """``batch_of``'s generator and sample indices (drawn first from it)."""
    g = np.random.default_rng([seed, step])
    return g, g.integers(0, n, batch)


def batch_words(data: dict, step: int, batch: int, seed: int) -> list[str]:
    """The views' own words (``data['words']``) of the samples ``batch_of`` draws with these arguments."""
    return [data["words"][i] for i in _batch_draw(len(data["prompt"]), step, batch, seed)[1]]


def batch_of(data: dict, step: int, batch: int, seed: int, device: str, dropout: float = 0.0,
             colour_aug: float = 0.0):
    """A seeded batch: (hr, lr) in [-1, 1] on ``device``, prompts (some dropped to '').

    ``colour_aug``: the share of samples whose HR and LR get the same random hue rotation. Each
    ZoomWorld micro-texture has its own palette, so without it the low-res colour names the texture
    and a model learns to ignore the words; with it, colour comes from the input and the kind of
    texture from the words, as in photos, where fur and wood can share a colour."""
    import torch
    g, idx = _batch_draw(len(data["prompt"]), step, batch, seed)
    it = torch.from_numpy(idx)
    hr = data["hr"][it].to(device).float() / 127.5 - 1
    lr = data["lr"][it].to(device).float() / 127.5 - 1
    if g.random() < 0.5:  # flips keep every texture's statistics: free augmentation
        hr, lr = hr.flip(-1), lr.flip(-1)
    prompts = ["" if g.random() < dropout else data["prompt"][i] for i in idx]
    if colour_aug > 0:
        angles = np.where(g.random(batch) < colour_aug, g.uniform(0, 2 * math.pi, batch), 0.0)
        mats = hue_rotation(angles)
        hr, lr = recolour(hr, mats), recolour(lr, mats)
    return hr, lr, prompts


def gaussian_kernels(sigmas, radius: int):
    """Normalised 1-D Gaussian kernels [N, 2 * radius + 1]; sigma 0 gives the identity."""
    import torch
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    s = torch.as_tensor(sigmas, dtype=torch.float32).clamp(min=1e-3)[:, None]
    k = torch.exp(-0.5 * (x / s) ** 2)
    return k / k.sum(1, keepdim=True)


def degrade_lr(lr, max_blur: float, max_noise: float, seed: int, step: int):
    """A first-order cut of the Real-ESRGAN degradation the paper's backbone trains on (PAPER.md
    section 5): each sample's (upsampled) LR input blurred with its own Gaussian (sigma ~ U(0,
    ``max_blur``) px) and given Gaussian noise (std ~ U(0, ``max_noise``) of the [0, 1] range);
    inputs in [-1, 1]. In a chain the input is the model's own previous state, smoother than a
    clean render in every band (bench/results/prompt_sensitivity_cpu.md), so a model trained on
    clean renders sees other inputs there; blurred inputs also leave more of the texture to the words."""
    import torch
    import torch.nn.functional as F
    if max_blur <= 0 and max_noise <= 0:
        return lr
    g = np.random.default_rng([seed, step, 77])
    n, c = lr.shape[:2]
    out = lr
    if max_blur > 0:
        radius = max(1, math.ceil(3 * max_blur))
        k = gaussian_kernels(g.uniform(0, max_blur, n), radius).to(lr.device, lr.dtype)   # [N, K]
        x = F.pad(lr.reshape(1, n * c, *lr.shape[2:]), (radius,) * 4, mode="reflect")
        kk = k.repeat_interleave(c, 0)                                                     # one per channel
        x = F.conv2d(x, kk[:, None, None, :], groups=n * c)                                # along rows
        x = F.conv2d(x, kk[:, None, :, None], groups=n * c)                                # along columns
        out = x.reshape(lr.shape)
    if max_noise > 0:
        std = torch.as_tensor(g.uniform(0, max_noise, n), dtype=lr.dtype, device=lr.device).view(-1, 1, 1, 1)
        noise = torch.from_numpy(g.standard_normal(lr.shape).astype(np.float32)).to(lr.device, lr.dtype)
        out = (out + 2 * std * noise).clamp(-1, 1)
    return out


# -- the discriminator ---------------------------------------------------------------------------

def word_vector(prompts: list[str], device: str = "cpu"):
    """A prompt as a multi-hot vector over ZoomWorld's vocabulary (a training-time condition for the
    discriminator only: the SR model itself reads the words through its text encoders)."""
    import torch
    from ..metrics.truth import prompt_words
    from ..world.vocab import vocabulary
    vocab = vocabulary()
    out = torch.zeros(len(prompts), len(vocab), device=device)
    for i, p in enumerate(prompts):
        for w in prompt_words(p, vocab)[0]:
            out[i, vocab.index(w)] = 1.0
    return out


def make_discriminator(cond_dim: int, width: int = 64):
    """A patch discriminator conditioned on a prompt vector (projection discriminator): the pooled
    embedding, or ``word_vector`` with ``SRTrainConfig.disc_words``."""
    from torch import nn
    from torch.nn.utils import spectral_norm as sn

    class PatchD(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = nn.Sequential(
                sn(nn.Conv2d(3, width, 4, 2, 1)), nn.LeakyReLU(0.2),
                sn(nn.Conv2d(width, 2 * width, 4, 2, 1)), nn.LeakyReLU(0.2),
                sn(nn.Conv2d(2 * width, 2 * width, 3, 1, 1)), nn.LeakyReLU(0.2))
            self.out = sn(nn.Conv2d(2 * width, 1, 3, 1, 1))
            self.embed = nn.Linear(cond_dim, 2 * width)

        def forward(self, x, cond):
            h = self.body(x)
            proj = (h * self.embed(cond)[:, :, None, None]).sum(1, keepdim=True)
            return self.out(h) + proj / math.sqrt(h.shape[1])

    return PatchD()


# -- stages --------------------------------------------------------------------------------------

def _encode_prompts(pipe, prompts, device, max_len: int, grad: bool = False):
    """SD3's prompt encoding -> (sequence embeddings, pooled); with gradients only when ``grad``."""
    import torch
    with torch.set_grad_enabled(grad):
        pe, _, pooled, _ = pipe.encode_prompt(prompt=prompts, prompt_2=None, prompt_3=None, device=device,
                                              do_classifier_free_guidance=False, max_sequence_length=max_len)
    return pe, pooled


class PromptCache:
    """SD3's prompt encoding (``encode_prompt``), memoised per prompt text: the text encoders are
    frozen and a training set has a few hundred distinct prompts, so each is encoded once."""

    def __init__(self, pipe, device: str, max_len: int) -> None:
        self.pipe, self.device, self.max_len = pipe, device, max_len
        self.table: dict[str, tuple] = {}

    def __call__(self, prompts: list[str]):
        import torch
        new = sorted({p for p in prompts if p not in self.table})
        if new:
            pe, pooled = _encode_prompts(self.pipe, new, self.device, self.max_len)
            self.table.update({p: (pe[i], pooled[i]) for i, p in enumerate(new)})
        rows = [self.table[p] for p in prompts]
        return torch.stack([r[0] for r in rows]), torch.stack([r[1] for r in rows])


def train_vae(pipe, data, cfg: SRTrainConfig, device: str, log=print) -> Stage:
    import torch
    vae = pipe.vae.to(device).train()
    opt = torch.optim.AdamW(vae.parameters(), lr=cfg.lr_vae, weight_decay=0.0)
    stage = Stage("vae", cfg.steps_vae, Path(cfg.work) / "ckpt", {"vae": vae, "opt": opt})

    def step(i: int) -> dict:
        hr, _, _ = batch_of(data, i, cfg.batch, cfg.seed + 1, device)
        c = cfg.vae_crop
        if c < hr.shape[-1]:
            o = np.random.default_rng([cfg.seed, i, 5]).integers(0, hr.shape[-1] - c + 1, 2)
            hr = hr[:, :, o[0]:o[0] + c, o[1]:o[1] + c]
        for g in opt.param_groups:
            g["lr"] = cosine_lr(i, cfg.steps_vae, cfg.lr_vae)
        with autocast(device):
            dist = vae.encode(hr).latent_dist
            rec = vae.decode(dist.sample()).sample
            l1 = (rec.float() - hr).abs().mean()
            kl = dist.kl().mean() / hr[0].numel()
        loss = l1 + cfg.kl_weight * kl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return {"l1": l1.item(), "kl": kl.item()}

    stage.run(step, log)
    vae.eval()
    with torch.no_grad():  # SD3-style latent normalisation from the trained VAE's latents (deterministic)
        zs = torch.cat([vae.encode(data["hr"][i:i + 64].to(device).float() / 127.5 - 1).latent_dist.mode()
                        for i in range(0, min(len(data["prompt"]), 512), 64)])
    vae.register_to_config(shift_factor=float(zs.mean()), scaling_factor=float(1.0 / zs.std()))
    return stage


def text_encoders(pipe) -> list:
    """The pipeline's text encoders that are present (T5 may be dropped)."""
    return [e for e in (pipe.text_encoder, pipe.text_encoder_2, pipe.text_encoder_3) if e is not None]


def train_base(pipe, data, cfg: SRTrainConfig, device: str, log=print) -> Stage:
    """SD3's rectified-flow objective on the VAE's latents (the base model the SR stage starts from).

    SD3's text encoders come pretrained and stay frozen; ours start random, and a random encoder
    gives unrelated prompts similar features (pooled cosine 0.8-0.9). With ``train_text`` this
    stage trains them with the transformer (a stand-in for their pretraining); afterwards they are
    frozen, as SD3's."""
    import torch
    tr, vae = pipe.transformer.to(device).train(), pipe.vae.to(device).eval()
    encoders = text_encoders(pipe) if cfg.train_text else []
    params = list(tr.parameters()) + [p for e in encoders for p in e.parameters()]
    for e in encoders:
        e.to(device).train().requires_grad_(True)
    opt = torch.optim.AdamW(params, lr=cfg.lr_base, weight_decay=0.01)
    mods = {"transformer": tr, "opt": opt} | {f"text_encoder_{k}": e for k, e in enumerate(encoders)}
    stage = Stage("base", cfg.steps_base, Path(cfg.work) / "ckpt", mods)
    max_len = pipe.tokenizer.model_max_length
    encode = PromptCache(pipe, device, max_len)

    own = own_words(data)

    def step(i: int) -> dict:
        hr, _, prompts = batch_of(own, i, cfg.batch, cfg.seed + 2, device, cfg.prompt_dropout_base, cfg.colour_aug)
        for g in opt.param_groups:
            g["lr"] = cosine_lr(i, cfg.steps_base, cfg.lr_base)
        gen = torch.Generator(device="cpu").manual_seed(cfg.seed * 1_000_003 + i)
        with torch.no_grad():
            z = base_latent(vae, hr)
        _, e, x_t, t = flow_noise(z, torch.sigmoid(torch.randn(z.shape[0], generator=gen)), gen)  # logit-normal sigmas
        with autocast(device):
            pe, pooled = _encode_prompts(pipe, prompts, device, max_len, grad=True) if encoders else encode(prompts)
            v = tr(hidden_states=x_t, timestep=t, encoder_hidden_states=pe, pooled_projections=pooled,
                   return_dict=False)[0]
            loss = ((v.float() - (e - z)) ** 2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        return {"flow": loss.item()}

    stage.run(step, log)
    tr.eval()
    for e in encoders:
        e.eval().requires_grad_(False)
    return stage


def sr_model(pipe, cfg: SRTrainConfig, device: str):
    """The one-step SR model to train: copies of the base transformer and VAE with fresh LoRA."""
    from ..backbones.osediff import OSEDiffOptions, OSEDiffSD3, add_transformer_lora, add_vae_encoder_lora, adaln_linear_names
    p = copy.copy(pipe)
    p.transformer, p.vae = copy.deepcopy(pipe.transformer).to(device), copy.deepcopy(pipe.vae).to(device)
    p.transformer.requires_grad_(False)
    p.vae.requires_grad_(False)
    patterns = DEMO_LORA if cfg.lora_patch_layers else [x for x in DEMO_LORA if x not in ("pos_embed.proj", "proj_out")]
    extra = [n for n, _ in p.transformer.named_modules() if _matches(n, patterns)]
    names = add_transformer_lora(p.transformer, cfg.lora_rank, adaln_linear_names(p.transformer) + extra)
    add_vae_encoder_lora(p.vae, cfg.vae_lora_rank)
    opts = OSEDiffOptions(lora_rank=cfg.lora_rank, vae_lora_rank=cfg.vae_lora_rank, extra_lora_targets=extra,
                          max_sequence_length=pipe.tokenizer.model_max_length,
                          latent_tile=cfg.size // 4, latent_tile_overlap=cfg.size // 16)
    model = OSEDiffSD3(p, opts, "osediff-demo-training", "training", device)
    model.lora_targets = names
    return model, names


def _matches(name: str, patterns) -> bool:
    import re
    return any(re.fullmatch(p, name) for p in patterns)


def base_latent(vae, x):
    """The base model's latent of images ``x`` in [-1, 1]: (E(x) - shift) * scaling, SD3's convention
    (the one-step model's own ``encode`` leaves the shift in, as the official code; section 5)."""
    cfg = vae.config
    return (vae.encode(x).latent_dist.mode() - (cfg.shift_factor or 0.0)) * cfg.scaling_factor


def flow_noise(z0, sigmas, generator):
    """Rectified flow's forward process (SD3): z_t = (1 - sigma) z0 + sigma e, velocity target e - z0.
    ``sigmas``: float32 [B] on the CPU, drawn by the caller. Returns (sigma [B, 1, 1, 1] in z0's
    dtype, e, z_t, timestep = 1000 sigma in float32: bf16 would round it)."""
    import torch
    s32 = sigmas.to(z0.device)
    s = s32.to(z0.dtype).view(-1, 1, 1, 1)
    e = torch.randn(z0.shape, generator=generator).to(z0)
    return s, e, (1 - s) * z0 + s * e, s32 * 1000


def csd_direction(base, z0, pe, pooled, pe_null, pooled_null, sigmas, generator):
    """Classifier score distillation (Yu et al. 2023), a cheaper relative of OSEDiff's VSD (PAPER.md
    section 5, ``vsd_direction``) with no fake-score model: noise the one-step output's latent to a random sigma, ask the frozen base model
    (the text-conditioned prior) for its velocity with the words and without, and return
    sigma * (v_words - v_null), normalised per sample. Moving z0 against it makes the image more
    likely under the words than without them (with rectified flow, v = (z_t - z0_hat) / sigma, so
    it is the base model's word-driven change of its clean estimate, reversed). No gradient."""
    import torch
    with torch.no_grad():
        s, _, zt, t = flow_noise(z0.detach(), torch.empty(z0.shape[0]).uniform_(*sigmas, generator=generator), generator)
        v_c = base(hidden_states=zt, timestep=t, encoder_hidden_states=pe, pooled_projections=pooled, return_dict=False)[0]
        v_u = base(hidden_states=zt, timestep=t, encoder_hidden_states=pe_null, pooled_projections=pooled_null,
                   return_dict=False)[0]
        g = s * (v_c - v_u).float()
        return g / (g.abs().mean(dim=(1, 2, 3), keepdim=True) + 1e-8)


def vsd_direction(base, fake, z0, pe, pooled, sigmas, generator):
    """Variational score distillation (OSEDiff's regulariser, PAPER.md section 5): noise the output
    latent, and return sigma * (v_base - v_fake) with the same words, normalised per sample. ``fake``
    is a LoRA copy of the base model trained on the generator's outputs (``fake_score_loss``), so
    the direction vanishes when the outputs have the base model's word-conditional statistics,
    unlike CSD's, which keeps pushing. No gradient."""
    import torch
    with torch.no_grad():
        s, _, zt, t = flow_noise(z0.detach(), torch.empty(z0.shape[0]).uniform_(*sigmas, generator=generator), generator)
        kw = dict(hidden_states=zt, timestep=t, encoder_hidden_states=pe, pooled_projections=pooled, return_dict=False)
        g = s * (base(**kw)[0] - fake(**kw)[0]).float()
        return g / (g.abs().mean(dim=(1, 2, 3), keepdim=True) + 1e-8)


def fake_score_loss(fake, z0, pe, pooled, generator):
    """The fake score model's rectified-flow loss on the generator's (detached) output latents."""
    import torch
    import torch.nn.functional as F
    z0 = z0.detach()
    _, e, zt, t = flow_noise(z0, torch.rand(z0.shape[0], generator=generator), generator)
    v = fake(hidden_states=zt, timestep=t, encoder_hidden_states=pe, pooled_projections=pooled, return_dict=False)[0]
    return F.mse_loss(v.float(), (e - z0).float())


def encoder_features(vae, x) -> list:
    """The VAE encoder's activations after conv_in and after each down block (finest first)."""
    enc = vae.encoder
    h = enc.conv_in(x)
    feats = [h]
    for block in enc.down_blocks:
        h = block(h)
        feats.append(h)
    return feats


def gram(f):
    """Gram matrix of features [B, C, H, W] -> [B, C, C], normalised by C * H * W (Gatys et al. 2016)."""
    b, c, h, w = f.shape
    f = f.reshape(b, c, h * w)
    return f @ f.transpose(1, 2) / (c * h * w)


def high_band(x, factor: int = 4):
    """What a ``factor``-x upscale has to invent: x minus its ``factor``-pooled version, upsampled back."""
    import torch.nn.functional as F
    return x - F.interpolate(F.avg_pool2d(x, factor), scale_factor=factor, mode="bilinear")


def style_loss(vae, out, hr, factor: int = 4):
    """A perceptual loss in LPIPS's role (OSEDiff trains with L2 + LPIPS + VSD; section 5), built on
    a network we have offline: the mean squared difference of Gram matrices (Gatys et al. 2016) of
    the frozen base VAE encoder's features of output and truth, both reduced to the band a
    ``factor``-x upscale adds (``high_band``; on whole images colour dominates the Gram matrices
    and a blur scores nearly as well as the truth). Gram matrices keep which features fire
    together and drop where: a texture's kind, not its phase, so unlike pixel L2 the loss does not
    pull an unknowable texture to its blurred mean; the model has to find the kind in the input or,
    where the input cannot tell, in the words. Pair it with L2 on the pooled output (l2_lowpass)."""
    import torch.nn.functional as F
    truth = encoder_features(vae, high_band(hr, factor))
    mine = encoder_features(vae, high_band(out, factor))
    return sum(F.mse_loss(gram(a.float()), gram(b.float()).detach()) for a, b in zip(mine, truth)) / len(truth)


def texture_loss(out, hr, levels: int = 5, fine_weight: float = 1.0):
    """The texture distance (``metrics.truth.texture_distance``) of output and truth as a loss: the
    mean absolute difference of their oriented band log-energies and mean colour, each 64 px
    training view one patch (the chains' texture distance reads 64 px patches of a 256 px state).
    ``fine_weight`` scales the finest band's four terms (``SRTrainConfig.texture_fine_weight``).
    Phase-blind like ``critic_loss``; inputs in [-1, 1]."""
    import torch
    from ..metrics.truth import texture_stats_batch
    a = texture_stats_batch((out.float() + 1) / 2, levels, patches=1)
    b = texture_stats_batch((hr.float() + 1) / 2, levels, patches=1)
    w = torch.ones(a.shape[-1], device=a.device)
    w[:4] = fine_weight  # band 0 (1-2 px), four orientations: texture_stats_batch's first terms
    return ((a - b.detach()).abs() * w).mean()


def grid_loss(out, period: int = 8):
    """The one-step model's cheapest way to add detail is a pattern repeated on its latent grid
    (VAE factor 4 x patch size 2 = an 8 px period in the demo); ``metrics.truth.grid_peaks`` finds
    it, this loss is their mean (``grid_score`` of the outputs). It punishes periodicity, not
    energy: a texture with a smooth spectrum costs 0."""
    from ..metrics.truth import grid_peaks
    return grid_peaks(out, period).mean()


def train_word_critic(data: dict, cfg: SRTrainConfig, device: str, log=print):
    """A small classifier of the truth's words from the HR views (the demo tagger's network,
    ``prompts.dape.make_tagger_net``), frozen afterwards: its features know which texture goes with
    which word, as VGG's know ImageNet's classes for LPIPS."""
    import torch
    import torch.nn.functional as F
    from ..prompts.dape import make_tagger_net
    from ..world.vocab import vocabulary
    lr = 2e-3
    with torch.random.fork_rng(devices=[]):  # its own seed, without moving the other stages' RNG
        torch.manual_seed(cfg.seed + 11)
        net = make_tagger_net(len(vocabulary())).to(device).train()
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    stage = Stage("critic", cfg.steps_critic, Path(cfg.work) / "ckpt", {"net": net, "opt": opt})

    own = own_words(data)

    def step(i: int) -> dict:
        hr, _, prompts = batch_of(own, i, 32, cfg.seed + 11, device)
        for grp in opt.param_groups:
            grp["lr"] = cosine_lr(i, cfg.steps_critic, lr)
        loss = F.binary_cross_entropy_with_logits(net(hr), word_vector(prompts, device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return {"bce": loss.item()}

    stage.run(step, log)
    return net.eval().requires_grad_(False), stage


def critic_loss(net, out, hr):
    """Perceptual loss in the word critic's features, phase-blind: per image and channel, the mean
    and standard deviation of each block's activations (as texture statistics), output against truth."""
    import torch.nn.functional as F
    from torch import nn
    total, n, a, b = 0.0, 0, out, hr
    for block in (m for m in net if isinstance(m, nn.Sequential)):  # the conv blocks, before the pooled head
        a, b = block(a), block(b)
        for stat in (lambda f: f.mean((2, 3)), lambda f: (f.var((2, 3), unbiased=False) + 1e-6).sqrt()):
            total = total + F.mse_loss(stat(a.float()), stat(b.float()).detach())
            n += 1
    return total / n


def critic_word_loss(net, out, words: list[str], worded):
    """The frozen word critic reads the output: binary cross-entropy of its logits against the view's
    own words (``words``), on the samples that were given words (``worded``, bool [N]) only: words
    the model is given should show as their textures (a text-image agreement term, as CLIP scores
    are used to steer text-to-image models); a null-prompt output is left to the other terms."""
    import torch.nn.functional as F
    if not worded.any():
        return out.new_zeros(())
    target = word_vector(words, out.device)
    return F.binary_cross_entropy_with_logits(net(out[worded]).float(), target[worded])


def matching_loss(disc, hr, cond, fake=None):
    """The discriminator's hinge loss, matching-aware (Reed et al. 2016): real images with their own
    words are real; with another sample's words (``cond`` rolled by one), and the generator's
    output ``fake`` if given, are fake."""
    import torch.nn.functional as F
    real = F.relu(1 - disc(hr, cond).float()).mean()  # the call order (real, fake, mismatch) is the
    made = None if fake is None else F.relu(1 + disc(fake, cond).float()).mean()  # spectral norm's
    wrong = F.relu(1 + disc(hr, cond.roll(1, 0)).float()).mean()  # power-iteration order: keep it
    return real + wrong if made is None else real + 0.5 * (made + wrong)


def pretrain_discriminator(disc, data, cfg: SRTrainConfig, device: str, encode, log=print) -> Stage:
    """``cfg.disc_pretrain`` steps of ``matching_loss`` on real pairs only, before the SR stage, so
    the discriminator knows which textures go with which words when the generator first asks it
    (from scratch it learns that slower than the generator learns to ignore the words)."""
    import torch
    dopt = torch.optim.Adam(disc.parameters(), lr=5 * cfg.lr_disc, betas=(0.5, 0.999))
    stage = Stage(f"sr-disc-{'words' if cfg.disc_words else 'pooled'}", cfg.disc_pretrain, Path(cfg.work) / "ckpt",
                  {"disc": disc, "dopt": dopt})

    def step(i: int) -> dict:
        hr, _, prompts = batch_of(data, i, cfg.batch, cfg.seed + 5, device)
        cond = word_vector(prompts, device) if cfg.disc_words else encode(prompts)[1]
        with autocast(device):
            loss = matching_loss(disc, hr, cond)
        dopt.zero_grad(set_to_none=True)
        loss.backward()
        dopt.step()
        return {"d": loss.item()}

    stage.run(step, log)
    return stage


def train_sr(pipe, data, cfg: SRTrainConfig, device: str, variant: str, log=print, pre_stages: list | None = None,
             critic_data: dict | None = None):
    """OSEDiff's one-step 4x stage with LoRA; ``variant`` 'perceptual' (pooled L2 + the critic's loss,
    + the options' terms) or 'l2' (L2 on every pixel). The stages an
    option runs first (the word critic, the discriminator's pretraining) are appended to ``pre_stages``;
    the word critic learns from ``critic_data`` (default ``data``)."""
    import torch
    import torch.nn.functional as F
    if variant not in ("perceptual", "l2"):
        raise ConfigError(f"unknown SR training variant {variant!r}; choose perceptual or l2")
    if cfg.sr_chain_steps > 0:
        check_chain_config(cfg)
    model, names = sr_model(pipe, cfg, device)
    params = [p for p in list(model.transformer.parameters()) + list(model.vae.parameters()) if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr_sr, weight_decay=0.0)
    mods = {"transformer": model.transformer, "vae": model.vae, "opt": opt}
    perceptual = variant == "perceptual"
    disc = None
    if cfg.disc_pretrain > 0 and cfg.gan_weight <= 0:
        raise ConfigError("disc_pretrain trains the GAN's discriminator: set gan_weight > 0 too (or disc_pretrain=0)")
    if perceptual and cfg.gan_weight > 0:
        from ..world.vocab import vocabulary
        cond_dim = len(vocabulary()) if cfg.disc_words else pipe.transformer.config.pooled_projection_dim
        disc = make_discriminator(cond_dim).to(device)
        dopt = torch.optim.Adam(disc.parameters(), lr=cfg.lr_disc, betas=(0.5, 0.999))
        mods.update(disc=disc, dopt=dopt)
    stage = Stage(f"sr-{variant}", cfg.steps_sr, Path(cfg.work) / "ckpt", mods)
    encode = PromptCache(pipe, device, pipe.tokenizer.model_max_length)
    pre = pre_stages if pre_stages is not None else []
    if perceptual and cfg.critic_word_weight > 0 and cfg.critic_weight <= 0:
        raise ConfigError("critic_word_weight reads the word critic's logits: set critic_weight > 0 too")
    if disc is not None and cfg.disc_pretrain > 0 and not stage.path.is_file():  # a resumed SR stage has its own disc
        pre.append(pretrain_discriminator(disc, data, cfg, device, encode, log))
    csd = perceptual and cfg.csd_weight > 0
    vsd = perceptual and cfg.vsd_weight > 0
    style = perceptual and cfg.style_weight > 0
    critic = None
    if perceptual and cfg.critic_weight > 0:
        critic, st = train_word_critic(data if critic_data is None else critic_data, cfg, device, log)
        pre.append(st)
    if csd or vsd or style:
        pipe.transformer.to(device).eval().requires_grad_(False)
        pipe.vae.to(device).eval().requires_grad_(False)
    if vsd:
        from ..backbones.osediff import add_transformer_lora
        fake = copy.deepcopy(pipe.transformer).to(device)
        add_transformer_lora(fake, cfg.lora_rank, names, adapter="fake_score")
        fake_params = [p for p in fake.parameters() if p.requires_grad]
        fopt = torch.optim.AdamW(fake_params, lr=cfg.lr_sr, weight_decay=0.0)
        mods.update(fake=fake, fopt=fopt)

    def draw_pairs(i: int):
        """Step ``i``'s batch from ``data``: (hr, lr, prompts, the views' own words or None)."""
        hr, lr, prompts = batch_of(data, i, cfg.batch_sr, cfg.seed + 3, device, cfg.prompt_dropout_sr, cfg.colour_aug)
        words = batch_words(data, i, cfg.batch_sr, cfg.seed + 3) if cfg.critic_word_weight > 0 else None
        return hr, degrade_lr(lr, cfg.degrade_blur, cfg.degrade_noise, cfg.seed + 3, i), prompts, words

    def step(i: int, draw=draw_pairs, steps: int = cfg.steps_sr, base_lr: float = cfg.lr_sr) -> dict:
        hr, lr, prompts, words = draw(i)
        for g in opt.param_groups:
            g["lr"] = cosine_lr(i, steps, base_lr)
        pe, pooled = encode(prompts)
        cond = word_vector(prompts, device) if cfg.disc_words else pooled
        with autocast(device):
            out = model.one_step(lr, pe, pooled).float()
            k = cfg.l2_lowpass if perceptual else 1
            l2 = F.mse_loss(F.avg_pool2d(out, k), F.avg_pool2d(hr, k)) if k > 1 else F.mse_loss(out, hr)
            loss, row = l2, {"l2": l2.item()}
            if critic is not None:
                l_critic = critic_loss(critic, out, hr)
                loss = loss + cfg.critic_weight * l_critic
                row["critic"] = l_critic.item()
                if cfg.critic_word_weight > 0:
                    worded = torch.tensor([bool(p) for p in prompts], device=out.device)
                    l_word = critic_word_loss(critic, out, words, worded)
                    loss = loss + cfg.critic_word_weight * l_word
                    row["word"] = l_word.item()
            if perceptual and cfg.texture_weight > 0:
                l_tex = texture_loss(out, hr, fine_weight=cfg.texture_fine_weight)
                loss = loss + cfg.texture_weight * l_tex
                row["texture"] = l_tex.item()
            if perceptual and cfg.grid_weight > 0:
                l_grid = grid_loss(out)
                loss = loss + cfg.grid_weight * l_grid
                row["grid"] = l_grid.item()
            if style:
                l_style = style_loss(pipe.vae, out, hr, cfg.upscale)
                loss = loss + cfg.style_weight * l_style
                row["style"] = l_style.item()
            if csd or vsd:  # on the output image re-encoded by the base VAE: the latent cannot drift off its manifold
                zi = base_latent(pipe.vae, out)
            if vsd:
                g = vsd_direction(pipe.transformer, fake, zi, pe, pooled, cfg.csd_sigmas,
                                  torch.Generator().manual_seed(cfg.seed * 7919 + i))
                l_vsd = (zi.float() * g).mean()
                loss = loss + cfg.vsd_weight * l_vsd
                row["vsd"] = l_vsd.item()
            if csd:
                worded = torch.tensor([bool(p) for p in prompts], device=out.device).view(-1, 1, 1, 1)
                pe_n, pooled_n = encode([""] * len(prompts))
                g = csd_direction(pipe.transformer, zi, pe, pooled, pe_n, pooled_n, cfg.csd_sigmas,
                                  torch.Generator().manual_seed(cfg.seed * 7919 + i))
                l_csd = (zi.float() * g * worded).mean()
                loss = loss + cfg.csd_weight * l_csd
                row["csd"] = l_csd.item()
            if disc is not None:
                g_adv = -disc(out, cond).float().mean()
                loss = loss + cfg.gan_weight * g_adv
                row["g"] = g_adv.item()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        if disc is not None:
            # matching-aware: a real image with another sample's prompt counts as fake too, so the
            # discriminator checks that the texture fits the words and the generator has to use them
            with autocast(device):
                d_loss = matching_loss(disc, hr, cond, out.detach())
            dopt.zero_grad(set_to_none=True)
            d_loss.backward()
            dopt.step()
            row["d"] = d_loss.item()
        if vsd:  # the fake score model follows the generator's current outputs
            with autocast(device):
                f_loss = fake_score_loss(fake, zi, pe, pooled, torch.Generator().manual_seed(cfg.seed * 7919 + i + 1))
            fopt.zero_grad(set_to_none=True)
            f_loss.backward()
            fopt.step()
            row["fake"] = f_loss.item()
        return row

    stage.run(step, log)
    if cfg.sr_chain_steps > 0:
        stage = chain_stage(model, mods, data, cfg, device, variant, stage, step, pre, log)
    model.transformer.eval()
    model.vae.eval()
    return model, names, stage


def check_chain_config(cfg: SRTrainConfig) -> None:
    """Clear errors for a chain part that cannot run, before the one-step stage's first part does."""
    if not 0.0 < cfg.sr_chain_share <= 1.0 or round(cfg.batch_sr * cfg.sr_chain_share) < 1:
        raise ConfigError(f"sr_chain_share is the share of each batch from chain states, in (0, 1], at least one "
                          f"of batch_sr={cfg.batch_sr} samples; got {cfg.sr_chain_share!r}")
    if not isinstance(cfg.sr_chain_depth, int) or cfg.sr_chain_depth < 1:
        raise ConfigError(f"sr_chain_depth must be a whole number >= 1 (zoom steps before the view), got {cfg.sr_chain_depth!r}")
    if not isinstance(cfg.sr_chain_pairs, int) or cfg.sr_chain_pairs < 1:
        raise ConfigError(f"sr_chain_pairs must be a whole number >= 1, got {cfg.sr_chain_pairs!r}")


def weights_digest(*nets) -> str:
    """A short hash of the trainable parameters of ``nets`` (what a run's cached data depends on)."""
    import hashlib
    h = hashlib.sha256()
    for net in nets:
        for name, p in net.named_parameters():
            if p.requires_grad:
                h.update(name.encode() + p.detach().float().cpu().numpy().tobytes())
    return h.hexdigest()[:12]


def chain_stage(model, mods: dict, data: dict, cfg: SRTrainConfig, device: str, variant: str,
                first: Stage, step: Callable, pre: list, log=print) -> Stage:
    """The one-step stage's second part (``cfg.sr_chain_steps``; PAPER.md section 2's recursion
    x_i = f(crop(x_{i-1}), c_i) run on the model's own states): ``chain_pairs`` made by the model
    as ``first`` left it, then training goes on with a ``sr_chain_share`` of every batch from them
    (the rest from ``data``), a fresh cosine schedule from ``lr_chain``. ``first`` joins ``pre``;
    the new stage is returned. The chain pairs are cached under ``cfg.work``, keyed by the weights
    ``first`` left, so a resumed run sees the pairs an uninterrupted one would; a finished stage
    just loads its checkpoint. ``train_sr`` checks the configuration (``check_chain_config``) first."""
    import functools
    import torch
    from ..world import RENDER_VERSION
    pre.append(first)
    stage = Stage(f"sr-{variant}-chain", cfg.sr_chain_steps, Path(cfg.work) / "ckpt", mods)
    if stage.finished():
        return stage.run(step, log)
    path = Path(cfg.work) / (f"chain-{variant}-{cfg.sr_chain_pairs}-{cfg.size}-{cfg.seed}-d{cfg.sr_chain_depth}"
                             f"-c{cfg.prompt_context}-{weights_digest(model.transformer, model.vae)}-r{RENDER_VERSION}.pt")
    if path.is_file():
        chain = torch.load(path, weights_only=False)
    else:
        t = time.perf_counter()
        modes = [(net, net.training) for net in (model.transformer, model.vae)]
        for net, _ in modes:
            net.eval()
        chain = chain_pairs(model, cfg, cfg.sr_chain_pairs, cfg.seed + 2 * SR_PAIRS_SEED, log)
        for net, was in modes:
            net.train(was)
        save_torch(chain, path)
        log(f"[data] {cfg.sr_chain_pairs} chain-state pairs made in {time.perf_counter() - t:.0f} s")
    k = int(round(cfg.batch_sr * cfg.sr_chain_share))

    def draw_mixed(i: int):
        """Step ``i``'s batch: ``batch_sr - k`` samples from ``data``, ``k`` from the chain pairs."""
        parts = [(d, n, sd) for d, n, sd in ((data, cfg.batch_sr - k, cfg.seed + 5), (chain, k, cfg.seed + 6)) if n]
        drawn = [batch_of(d, i, n, sd, device, cfg.prompt_dropout_sr, cfg.colour_aug) for d, n, sd in parts]
        hr, lr = torch.cat([b[0] for b in drawn]), torch.cat([b[1] for b in drawn])
        prompts = [p for b in drawn for p in b[2]]
        words = [w for d, n, sd in parts for w in batch_words(d, i, n, sd)] if cfg.critic_word_weight > 0 else None
        return hr, degrade_lr(lr, cfg.degrade_blur, cfg.degrade_noise, cfg.seed + 5, i), prompts, words

    return stage.run(functools.partial(step, draw=draw_mixed, steps=cfg.sr_chain_steps, base_lr=cfg.lr_chain), log)


# -- evaluation and export -----------------------------------------------------------------------

def prompt_outputs(model, lr, prompts: list[str]) -> dict:
    """The one-step model's outputs for one batch with its true words, a null prompt and a wrong
    prompt (``oracle.wrong_prompt``): what ``evaluate`` and ``word_reading`` compare."""
    from ..prompts.oracle import wrong_prompt
    return {"true": model(lr, prompts), "null": model(lr, [""] * len(lr)),
            "wrong": model(lr, [wrong_prompt(p) for p in prompts])}


def evaluate(model, data, device: str, batch: int = 16) -> dict:
    """PSNR (dB) and texture distance against the truth on held-out pairs: the model with the true
    words ('model'), with a null prompt, with a wrong prompt (``oracle.wrong_prompt``), and bicubic."""
    import torch
    from ..imageio import tensor_to_pil
    from ..metrics.truth import texture_distance
    rows = {"model": [], "null": [], "wrong": [], "bicubic": []}
    n = len(data["prompt"])
    with torch.no_grad():
        for i in range(0, n, batch):
            hr = data["hr"][i:i + batch].float() / 255
            lr = data["lr"][i:i + batch].float() / 255
            outs = prompt_outputs(model, lr, data["prompt"][i:i + batch]) | {"bicubic": lr}
            outs["model"] = outs.pop("true")
            for k, y in outs.items():
                for a, b in zip(y, hr):
                    mse = float(((a - b) ** 2).mean())
                    rows[k].append((10 * math.log10(1 / max(mse, 1e-10)),
                                    texture_distance(tensor_to_pil(a), tensor_to_pil(b), levels=4, patches=2)))
    return {k: {"psnr": float(np.mean([r[0] for r in v])), "texture": float(np.mean([r[1] for r in v]))}
            for k, v in rows.items()}


def word_reading(model, data, probabilities, level: str = "micro", batch: int = 16) -> dict:
    """Do the words choose the texture's *kind*? A word reader (``probabilities``: images in [0, 1]
    [N, 3, S, S] -> [N, V] probabilities over ``world.vocab.vocabulary()``, e.g. the demo DAPE
    tagger's) reads the model's outputs on held-out pairs with the true, null and wrong words, and
    the truth and the bicubic input as ceiling and floor. Returns {source: {'own': mean probability
    of each view's own ``level`` words, 'other': of the other ``level`` words}, 'views': n}, over
    the views that have an own ``level`` word. The texture distance (``evaluate``) weighs band
    energies; this asks a learnt reader which kind it sees."""
    import torch
    from ..world.vocab import level_of, vocabulary
    at_level = torch.tensor([float(level_of(w) == level) for w in vocabulary()])
    sums = {k: torch.zeros(2) for k in ("true", "null", "wrong", "truth", "bicubic")}
    count = 0
    with torch.no_grad():
        for i in range(0, len(data["prompt"]), batch):
            own = word_vector(data["words"][i:i + batch]) * at_level
            keep = own.sum(1) > 0
            if not keep.any():
                continue
            hr = data["hr"][i:i + batch][keep].float() / 255
            lr = data["lr"][i:i + batch][keep].float() / 255
            prompts = [p for p, k in zip(data["prompt"][i:i + batch], keep) if k]
            own, others = own[keep], at_level - own[keep]
            outs = prompt_outputs(model, lr, prompts) | {"truth": hr, "bicubic": lr}
            for key, y in outs.items():
                q = probabilities(y).float()
                sums[key] += torch.stack([((q * own).sum(1) / own.sum(1)).sum(),
                                          ((q * others).sum(1) / others.sum(1).clamp(min=1)).sum()])
            count += len(hr)
    return {k: {"own": float(v[0]) / max(count, 1), "other": float(v[1]) / max(count, 1)} for k, v in sums.items()} | {"views": count}


def _git_commit() -> str:
    if os.environ.get("COZ_CODE_COMMIT"):  # a copy of the tree without .git (a rented GPU machine)
        return os.environ["COZ_CODE_COMMIT"]
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except Exception:
        return "unknown"


def export(pipe, models: dict, cfg: SRTrainConfig, stages: list[Stage], metrics: dict, device: str,
           wall_s: float, out: Path, minutes: float | None = None) -> Path:
    """Write the diffusers folder (base transformer + VAE, fp16), each variant's two LoRA files in the
    official formats, ``cozlib.json`` (backbone options) and ``manifest.json``; atomically."""
    from ..backbones.osediff import OPTIONS_FILE, demo_lora_files, save_official_lora, save_vae_encoder
    from ..imageio import atomic_dir
    from .tiny import TINY, save_pipeline
    with atomic_dir(out) as tmp:
        save_pipeline(pipe, tmp)
        opts = None
        for variant, (model, names) in models.items():
            lora, venc = demo_lora_files(tmp, variant)
            save_official_lora(model.transformer, lora, names)
            save_vae_encoder(model.vae, venc)
            opts = model.options
        (tmp / OPTIONS_FILE).write_text(json.dumps({"options": asdict(opts)}, indent=1) + "\n")
        manifest = {
            "model": "OSEDiff on a tiny Stable Diffusion 3 (diffusers classes, TINY sizes)",
            "code_commit": _git_commit(), "config": asdict(cfg), "tiny": TINY,
            "data": {"zoomworld": f"train split scenes, zoom 1x-4096x, {cfg.size} px, {cfg.pairs} pairs "
                                  f"({cfg.photo_share:.0%} bundled-photo patches)",
                     "validation": f"{cfg.val_pairs} ZoomWorld val-split pairs"},
            "device": _device_name(device), "host": platform.node(),
            "steps_planned_for_minutes": minutes, "torch": __import__("torch").__version__,
            "wall_s_this_run": round(wall_s, 1),
            "wall_s_all_stages": round(sum(s.wall_s for s in stages), 1),
            "stages": [{"name": s.name, "steps": s.steps, "wall_s": round(s.wall_s, 1),
                        "final": s.history[-1] if s.history else None} for s in stages],
            "metrics_val": metrics,
            "files": {p.name: {"bytes": p.stat().st_size} for p in sorted(tmp.rglob("*")) if p.is_file()},
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
        (tmp / "history.json").write_text(json.dumps({s.name: s.history for s in stages}) + "\n")
    return out


#: Shares of a time budget (``plan_steps``): the base model is the largest job, as SD3's pretraining is.
BUDGET_SHARES = {"vae": 0.12, "base": 0.43, "sr": 0.45}


def plan_steps(cfg: SRTrainConfig, seconds: float, pipe, data, device: str, probe: int = 30, log=print) -> SRTrainConfig:
    """Step counts that fit the stages into ``seconds`` on this device: each stage runs ``probe``
    steps on a throw-away copy of the model (warm-up included, so the estimate errs short), then its
    share of the budget (BUDGET_SHARES; the SR share split over the variants) sets its steps. The
    one-step stages' chain part (``sr_chain_steps``) keeps its ratio to their first part and runs,
    with its pair generation, outside the budget."""
    import tempfile
    from dataclasses import replace
    quiet = lambda *_: None  # noqa: E731
    with tempfile.TemporaryDirectory() as tmp:
        # the options' pre-stages (critic, disc pretraining) are only probed here; the real run gives
        # them their full steps, outside the budget
        c = replace(cfg, work=tmp, steps_vae=probe, steps_base=probe, steps_sr=probe, sr_chain_steps=0,
                    steps_critic=min(cfg.steps_critic, probe), disc_pretrain=min(cfg.disc_pretrain, probe))
        p = copy.copy(pipe)
        for part in ("transformer", "vae", "text_encoder", "text_encoder_2", "text_encoder_3"):
            setattr(p, part, copy.deepcopy(getattr(pipe, part)))  # the probe trains them: leave pipe's alone
        per_step = {"vae": train_vae(p, data, c, device, quiet).wall_s / probe,
                    "base": train_base(p, data, c, device, quiet).wall_s / probe}
        per_step["sr"] = sum(train_sr(p, data, c, device, v, quiet)[2].wall_s / probe for v in cfg.variants)
    steps = {k: max(probe, int(seconds * BUDGET_SHARES[k] / per_step[k])) for k in per_step}
    chain = cfg.chain_steps_for(steps["sr"])
    log("[plan] s/step " + " ".join(f"{k} {v * 1000:.1f} ms" for k, v in per_step.items())
        + f" -> steps vae {steps['vae']}, base {steps['base']}, sr {steps['sr']} (+ chain part {chain}, outside the budget)"
        + f" for {seconds / 60:.1f} min")
    return replace(cfg, steps_vae=steps["vae"], steps_base=steps["base"], steps_sr=steps["sr"], sr_chain_steps=chain)


def _device_name(device: str) -> str:
    import torch
    if str(device).startswith("cuda"):
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return f"{device} ({os.cpu_count()} cores)"


def train(cfg: SRTrainConfig, log=print, minutes: float | None = None) -> Path:
    """Every stage, then the export. Resumes from ``cfg.work``'s checkpoints. With ``minutes``, the
    step counts are first fitted to that time budget (``plan_steps``; the manifest keeps them)."""
    from ..runtime import resolve_device, seed_everything
    from .tiny import build_pipeline
    import diffusers
    import transformers
    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.disable_progress_bar()
    device = resolve_device(cfg.device)
    if device == "cpu":
        import torch
        if not isinstance(cfg.threads, int) or cfg.threads < 1:
            raise ConfigError(f"threads must be a whole number >= 1, got {cfg.threads!r}")
        torch.set_num_threads(cfg.threads)
    t0 = time.perf_counter()
    seed_everything(cfg.seed)
    pipe = build_pipeline(cfg.seed)
    for enc in text_encoders(pipe):
        enc.to(device).eval().requires_grad_(False)
    data = cached_pairs(cfg, "train", cfg.pairs, True, log)
    sr_data = sr_pairs(cfg, data, log)
    val = cached_pairs(cfg, "val", cfg.val_pairs, False, log)
    if minutes:
        cfg = plan_steps(cfg, minutes * 60, pipe, data, device, log=log)
    stages = [train_vae(pipe, data, cfg, device, log), train_base(pipe, data, cfg, device, log)]
    models, metrics = {}, {}
    for variant in cfg.variants:
        model, names, st = train_sr(pipe, sr_data, cfg, device, variant, log, pre_stages=stages, critic_data=data)
        stages.append(st)
        models[variant] = (model, names)
        metrics[variant] = evaluate(model, val, device)
        log(f"[eval] {variant}: {json.dumps(metrics[variant])}")
    pipe.transformer.to("cpu")
    pipe.vae.to("cpu")
    for enc in text_encoders(pipe):
        enc.to("cpu")
    for model, _ in models.values():
        model.transformer.to("cpu")
        model.vae.to("cpu")
    out = export(pipe, models, cfg, stages, metrics, device, time.perf_counter() - t0, Path(cfg.out), minutes)
    log(f"[done] {out} in {(time.perf_counter() - t0) / 60:.1f} min")
    return out


def curves_figure(folder: str | os.PathLike):
    """The training curves of a weights folder (``history.json``): one panel per stage."""
    import matplotlib.pyplot as plt
    hist = json.loads((Path(folder) / "history.json").read_text())
    stages = [s for s, rows in hist.items() if rows]
    fig, axes = plt.subplots(1, len(stages), figsize=(3.6 * len(stages), 3.0), squeeze=False)
    for ax, name in zip(axes[0], stages):
        rows = hist[name]
        steps = [r["step"] for r in rows]
        keys = [k for k in rows[0] if k != "step"]
        for key in keys:
            ax.plot(steps, [r[key] for r in rows], label=key)
        positive = all(r[k] > 0 for r in rows for k in keys)
        ax.set_yscale("log") if positive else ax.set_yscale("symlog", linthresh=0.01)  # GAN losses go negative
        ax.set_title(name)
        ax.set_xlabel("step")
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
