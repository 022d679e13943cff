"""Metrics that use ground truth (ZoomWorld): texture distance and prompt precision / recall /
hallucination; beside them ``grid_score``, which needs none (a pattern repeated on a latent grid).
PSNR and SSIM against the truth come from pyiqa (``metrics.Scorer``).

``texture_distance`` compares local band statistics instead of pixels, so a texture with the
right statistics scores well even when its phase differs (a GAN's hairs are never the true
hairs, but they can be the right *kind* of hairs); a blur or a wrong texture scores badly.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Iterable, Mapping

import torch
import torch.nn.functional as F
from PIL import Image

_LUMA = (0.299, 0.587, 0.114)


def atrous_bands(gray: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """Band-pass images of an a-trous (dilated binomial) pyramid, finest first."""
    from ..colorfix import atrous_blur
    bands, low = [], gray
    for i in range(levels):
        blurred = atrous_blur(low, 2 ** i)
        bands.append(low - blurred)
        low = blurred
    return bands


def texture_stats(img: Image.Image | torch.Tensor, levels: int = 5, patches: int = 4) -> torch.Tensor:
    """Per patch (``patches`` x ``patches`` grid): log energy of each band in 4 orientations,
    and the patch's mean colour. Shape [patches*patches, levels*4 + 3]."""
    from ..imageio import pil_to_tensor
    x = pil_to_tensor(img) if isinstance(img, Image.Image) else img
    if x.dim() != 4 or x.shape[0] != 1:
        raise ValueError(f"texture_stats takes one image [1, 3, H, W]; got {tuple(x.shape)} (batches: texture_stats_batch)")
    return texture_stats_batch(x, levels, patches)[0]


def texture_stats_batch(x: torch.Tensor, levels: int = 5, patches: int = 4) -> torch.Tensor:
    """``texture_stats`` of a batch [B, 3, H, W] in [0, 1]: [B, patches*patches, levels*4 + 3].
    Differentiable (the demo SR stage's ``training.sr.texture_loss``)."""
    x = x.float()
    gray = (x * x.new_tensor(_LUMA).view(1, 3, 1, 1)).sum(1, keepdim=True)
    feats = []
    kx = x.new_tensor([[-0.5, 0.0, 0.5]]).view(1, 1, 1, 3)
    for band in atrous_bands(gray, levels):
        gx = F.conv2d(F.pad(band, (1, 1, 0, 0), mode="replicate"), kx)
        gy = F.conv2d(F.pad(band, (0, 0, 1, 1), mode="replicate"), kx.transpose(2, 3))
        d1, d2 = (gx + gy) / math.sqrt(2), (gx - gy) / math.sqrt(2)
        for g in (gx, gy, d1, d2):
            e = F.adaptive_avg_pool2d(g * g, patches)  # [B, 1, p, p]
            feats.append(torch.log(e + 1e-6).flatten(1))
    colour = F.adaptive_avg_pool2d(x, patches).flatten(2)  # [B, 3, p*p]
    return torch.cat([torch.stack(feats, 2), colour.transpose(1, 2) * 4.0], 2)


def texture_distance(a: Image.Image, b: Image.Image, levels: int = 5, patches: int = 4) -> float:
    """Mean absolute difference of local texture statistics (0 = same statistics; phase-blind)."""
    if a.size != b.size:
        raise ValueError(f"texture_distance needs equal sizes, got {a.size} and {b.size}")
    return float((texture_stats(a, levels, patches) - texture_stats(b, levels, patches)).abs().mean())


def grid_peaks(x, period: int = 8, margin: float = math.log(2.0)):
    """Periodicity of ``x`` [B, C, H, W] on a ``period``-px grid: at each harmonic of the grid
    (frequencies k/period cycles per pixel on both axes, DC left out), the log of its spectral power
    over the mean power of the 24 bins around it, less ``margin``, floored at 0: [B, C, n]. A
    texture's spectrum is smooth there (ZoomWorld truths: about 0.7x their neighbours), a pattern
    repeated on a model's latent grid makes peaks (the demo SR model with SD3's patch 2: about 30x)."""
    h, w = x.shape[-2:]
    if h % period or w % period:
        raise ValueError(f"grid_peaks needs sides that are multiples of the period {period}, got {h}x{w}")
    x = x.float()
    power = torch.fft.fft2(x - x.mean((-2, -1), keepdim=True), norm="ortho").abs() ** 2
    ring = torch.ones(1, 1, 5, 5, device=x.device)
    ring[..., 2, 2] = 0
    b, c = power.shape[:2]
    around = F.conv2d(F.pad(power.reshape(b * c, 1, h, w), (2, 2, 2, 2), mode="circular"), ring / 24).reshape(b, c, h, w)
    floor = 0.05 * power.mean((-2, -1), keepdim=True) + 1e-8  # bins far below the image's level do not count
    ratio = torch.log(power + floor) - torch.log(around + floor)
    peaks = ratio[..., ::h // period, ::w // period].flatten(-2)[..., 1:]
    return F.relu(peaks - margin)


def grid_score(img: Image.Image, period: int = 8) -> float:
    """How much of an image is a pattern repeated on a ``period``-px grid (8 px: SD3's patch
    2 at the demo VAE's factor 4; its harmonics include the 4 px latent pixel): the mean of ``grid_peaks``; 0 = a smooth spectrum
    at the grid's harmonics (ZoomWorld truths: 0.03-0.17, notebook 06). No reference needed."""
    from ..imageio import pil_to_tensor
    return float(grid_peaks(pil_to_tensor(img) * 2 - 1, period).mean())


_WORD = re.compile(r"[a-z]+")


def prompt_words(prompt: str, vocabulary: Iterable[str]) -> tuple[set[str], int]:
    """(the prompt's words that are in the vocabulary, how many other words it had)."""
    vocab = set(vocabulary)
    tokens = _WORD.findall(prompt.lower())
    known = {t for t in tokens if t in vocab}
    return known, sum(t not in vocab for t in tokens)


@dataclass(frozen=True)
class PromptScore:
    precision: float | None        # share of the prompt's vocabulary words that are true for the view
    recall: float                  # share of the true words the prompt names
    weighted_recall: float         # the same, each true word weighted by its area fraction
    hallucination: float | None    # 1 - precision: share of named words not true for the view
    n_predicted: int
    n_unknown: int                 # prompt words outside the vocabulary (not judged)


def score_prompt(prompt: str, truth: Mapping[str, float], vocabulary: Iterable[str]) -> PromptScore:
    """Compare a prompt with the true words of a view ({word: area fraction})."""
    pred, unknown = prompt_words(prompt, vocabulary)
    true = set(truth)
    hit = pred & true
    precision = len(hit) / len(pred) if pred else None
    recall = len(hit) / len(true) if true else 1.0
    total = sum(truth.values())
    weighted = sum(truth[w] for w in hit) / total if total > 0 else 1.0
    return PromptScore(precision, recall, weighted, None if precision is None else 1 - precision,
                       len(pred), unknown)
