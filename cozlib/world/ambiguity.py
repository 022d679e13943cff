"""The ambiguity experiment: at deep zoom, ``hairs`` vs ``fibers`` and ``pits`` vs ``cells`` look
alike from the zoomed view alone, and the coarser view tells them apart (the paper's Figure 8
situation, measured). A small CNN is trained on held-in scenes and tested on held-out ones, once
on the zoomed view alone and once on the zoomed view plus the 4x coarser view.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .datasets import SPLITS
from .vocab import AMBIGUITY_ZOOM

#: class (micro word) -> (parent object kind, part word)
CLASSES: dict[str, tuple[str, str]] = {"hairs": ("cat", "fur"), "fibers": ("log", "rings"),
                                       "pits": ("strawberry", "seeds"), "cells": ("leaf", "blade")}


def _scenes_with(kind: str, split: str, rng: np.random.Generator, limit: int = 400) -> list[int]:
    from . import scene
    lo, hi = SPLITS[split]
    seeds, tries = [], 0
    while len(seeds) < limit and tries < 20 * limit:
        s = int(rng.integers(lo, hi))
        tries += 1
        if any(o.kind == kind for o in scene(s).objects):
            seeds.append(s)
    return seeds


def sample_pure_views(word: str, split: str, n: int, zoom: float, size: int, upscale: int,
                      rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """n views at ``zoom`` lying wholly in ``word``'s part, with their coarser views: ([n,3,s,s], [n,3,s,s])."""
    from . import scene, view_window
    kind, part = CLASSES[word]
    seeds = _scenes_with(kind, split, rng)
    zoomed, coarse = [], []
    attempts = 0
    while len(zoomed) < n and attempts < 200 * n:
        attempts += 1
        sc = scene(seeds[int(rng.integers(len(seeds)))])
        objs = [(i, o) for i, o in enumerate(sc.objects) if o.kind == kind]
        i, o = objs[int(rng.integers(len(objs)))]
        c = (o.cx + rng.uniform(-0.35, 0.35) * o.size, o.cy + rng.uniform(-0.35, 0.35) * o.size)
        if not (0 <= c[0] <= 1 and 0 <= c[1] <= 1):
            continue
        w = view_window(c, zoom)
        _, weights = sc.evaluate([w], 12, want_rgb=False)
        if float(weights.get((i, part), torch.zeros(1)).min()) < 0.98:
            continue
        zoomed.append(sc.render([w], size)[0])
        coarse.append(sc.render([view_window(c, zoom / upscale)], size)[0])
    if len(zoomed) < n:
        raise RuntimeError(f"found only {len(zoomed)} of {n} pure {word} views in the {split} split")
    return torch.stack(zoomed), torch.stack(coarse)


def build(split: str, n_per_class: int, zoom: float = AMBIGUITY_ZOOM, size: int = 48, upscale: int = 4,
          seed: int = 0, classes: tuple[str, ...] = tuple(CLASSES)) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(zoomed, coarse, labels) for ``classes`` (micro words of CLASSES), labels indexing ``classes``.
    At shallow zooms only the large parts' classes have pure views (fur, rings: ``hairs``, ``fibers``)."""
    rng = np.random.default_rng([seed, list(SPLITS).index(split)])
    zs, cs, ys = [], [], []
    for label, word in enumerate(classes):
        z, c = sample_pure_views(word, split, n_per_class, zoom, size, upscale, rng)
        zs.append(z), cs.append(c), ys.append(torch.full((n_per_class,), label))
    return torch.cat(zs), torch.cat(cs), torch.cat(ys)


class Probe(nn.Module):
    """A small CNN classifier over 3 (zoomed) or 6 (zoomed + coarser) channels."""

    def __init__(self, in_ch: int, n_classes: int = len(CLASSES)) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(in_ch, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
            nn.Linear(64, n_classes))

    def forward(self, x):
        return self.net(x)


@dataclass
class ProbeResult:
    accuracy: float
    confusion: np.ndarray  # rows: true class, columns: predicted (counts)
    classes: list[str]

    def pair_confusion(self, a: str, b: str) -> float:
        """Share of a's and b's test views predicted as the other one of the pair."""
        i, j = self.classes.index(a), self.classes.index(b)
        wrong = self.confusion[i, j] + self.confusion[j, i]
        return float(wrong / (self.confusion[i].sum() + self.confusion[j].sum()))


def train_probe(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor, test_y: torch.Tensor,
                epochs: int = 25, seed: int = 0, classes: tuple[str, ...] = tuple(CLASSES)) -> ProbeResult:
    """Train ``Probe`` with Adam and return its accuracy and confusion on the test set (labels index ``classes``)."""
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = Probe(train_x.shape[1], len(classes))
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    mean = train_x.mean((0, 2, 3), keepdim=True)
    std = train_x.std((0, 2, 3), keepdim=True) + 1e-4
    xs, xt = (train_x - mean) / std, (test_x - mean) / std
    for _ in range(epochs):
        perm = torch.randperm(len(xs), generator=g)
        for k in range(0, len(xs), 32):
            idx = perm[k:k + 32]
            flip = torch.rand(1, generator=g).item() < 0.5  # augmentation: mirror
            xb = xs[idx].flip(-1) if flip else xs[idx]
            loss = nn.functional.cross_entropy(model(xb), train_y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        pred = model(xt).argmax(1)
    n = len(classes)
    conf = np.zeros((n, n), dtype=int)
    for t, p in zip(test_y.tolist(), pred.tolist()):
        conf[t, p] += 1
    return ProbeResult(float((pred == test_y).float().mean()), conf, list(classes))


def run(n_train: int = 120, n_test: int = 40, size: int = 48, epochs: int = 25, seed: int = 0,
        zoom: float = AMBIGUITY_ZOOM, classes: tuple[str, ...] = tuple(CLASSES),
        coarse_alone: bool = False) -> dict[str, ProbeResult]:
    """The experiment: {"zoomed": result, "zoomed+coarse": result} on held-out scenes (and
    "coarse" from the coarser view alone when ``coarse_alone``)."""
    tz, tc, ty = build("train", n_train, zoom, size, seed=seed, classes=classes)
    vz, vc, vy = build("test", n_test, zoom, size, seed=seed, classes=classes)
    out = {"zoomed": train_probe(tz, ty, vz, vy, epochs, seed, classes),
           "zoomed+coarse": train_probe(torch.cat([tz, tc], 1), ty, torch.cat([vz, vc], 1), vy, epochs, seed, classes)}
    if coarse_alone:
        out["coarse"] = train_probe(tc, ty, vc, vy, epochs, seed, classes)
    return out
