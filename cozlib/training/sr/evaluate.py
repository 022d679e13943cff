"""Held-out measurements of a one-step SR model (the manifest's metrics, notebook 06): PSNR and the
texture distance with true, null and wrong words, and whether the words choose the texture's kind.
"""
from __future__ import annotations

import math

import numpy as np

from .data import word_vector


def prompt_outputs(model, lr, prompts: list[str]) -> dict:
    """The one-step model's outputs for one batch with its true words, a null prompt and a wrong
    prompt (``oracle.wrong_prompt``): what ``evaluate`` and ``word_reading`` compare."""
    from ...prompts.oracle import wrong_prompt
    return {"true": model(lr, prompts), "null": model(lr, [""] * len(lr)),
            "wrong": model(lr, [wrong_prompt(p) for p in prompts])}


def evaluate(model, data, device: str, batch: int = 16) -> dict:
    """PSNR (dB) and texture distance against the truth on held-out pairs: the model with the true
    words ('model'), with a null prompt, with a wrong prompt (``oracle.wrong_prompt``), and bicubic."""
    import torch
    from ...imageio import tensor_to_pil
    from ...metrics.truth import texture_distance
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
    from ...world.vocab import level_of, vocabulary
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
