"""Interpolation backbones: no learning, no prompt. In a recursive chain they are the plain Markov chain."""
from __future__ import annotations

from typing import Sequence

from PIL import Image

from .. import geometry
from . import register


class InterpolationBackbone:
    """Resize the raw crop to ``size`` with PIL's nearest or bicubic filter (the official resizes)."""

    scale = None
    uses_prompt = False

    def __init__(self, method: str, device: str = "auto") -> None:
        self.name = method
        self.method = method

    def identity(self) -> str:
        return f"interp:{self.method}"

    def upsample(self, lr: Sequence[Image.Image], prompts: Sequence[str], size: int, *,
                 seed: int = 0) -> list[Image.Image]:
        return [geometry.resize(im, size, self.method) for im in lr]


@register("nearest", "nearest-neighbour resize of the crop (no SR model)")
def _nearest(device: str = "auto") -> InterpolationBackbone:
    return InterpolationBackbone("nearest", device)


@register("bicubic", "bicubic resize of the crop (no SR model)")
def _bicubic(device: str = "auto") -> InterpolationBackbone:
    return InterpolationBackbone("bicubic", device)
