"""Metrics that use ground truth (ZoomWorld): texture distance and prompt precision / recall /
hallucination. PSNR and SSIM against the truth come from pyiqa (``metrics.Scorer``).

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
