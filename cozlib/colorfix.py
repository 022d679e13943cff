"""Colour fixes applied after each SR step (the official ``--align_method``: nofix, adain, wavelet).

Both align the SR output's colours with the SR input's (the bicubic-upsampled crop), the way
StableSR introduced them: AdaIN matches per-channel mean and standard deviation; the wavelet fix
keeps the output's high-frequency bands and takes the lowest band from the input.
"""
from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

AlignMethod = Literal["nofix", "adain", "wavelet"]
ALIGN_METHODS: tuple[str, ...] = ("nofix", "adain", "wavelet")


def adain_color_fix(target: torch.Tensor, source: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """AdaIN: (target - mu_t) / sigma_t * sigma_s + mu_s per image and channel; tensors [B, C, H, W]."""
    mu_t = target.mean(dim=(2, 3), keepdim=True)
    mu_s = source.mean(dim=(2, 3), keepdim=True)
    sd_t = target.std(dim=(2, 3), keepdim=True) + eps
    sd_s = source.std(dim=(2, 3), keepdim=True) + eps
    return ((target - mu_t) / sd_t * sd_s + mu_s).clamp(0, 1)


def atrous_blur(x: torch.Tensor, radius: int) -> torch.Tensor:
    """A-trous 3x3 binomial blur with dilation ``radius`` and replicate padding."""
    k1 = torch.tensor([0.25, 0.5, 0.25], dtype=x.dtype, device=x.device)
    kernel = (k1[:, None] * k1[None, :]).expand(x.shape[1], 1, 3, 3)
    x = F.pad(x, (radius,) * 4, mode="replicate")
    return F.conv2d(x, kernel, groups=x.shape[1], dilation=radius)


def wavelet_decompose(x: torch.Tensor, levels: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    """Split x into (high-frequency sum, low-frequency residual) with an a-trous wavelet of ``levels`` bands."""
    high = torch.zeros_like(x)
    low = x
    for i in range(levels):
        blurred = atrous_blur(low, 2 ** i)
        high = high + (low - blurred)
        low = blurred
    return high, low


def wavelet_color_fix(target: torch.Tensor, source: torch.Tensor, levels: int = 5) -> torch.Tensor:
    """Keep the target's high bands, take the source's low band (colour and shading)."""
    if source.shape[-2:] != target.shape[-2:]:
        source = F.interpolate(source, size=target.shape[-2:], mode="bicubic", align_corners=False)
    high, _ = wavelet_decompose(target, levels)
    _, low = wavelet_decompose(source, levels)
    return (high + low).clamp(0, 1)


def apply_color_fix(target: torch.Tensor, source: torch.Tensor, method: str = "nofix") -> torch.Tensor:
    """Dispatch on the official ``align_method`` name."""
    if method == "nofix":
        return target
    if method == "adain":
        return adain_color_fix(target, source)
    if method == "wavelet":
        return wavelet_color_fix(target, source)
    from .errors import ConfigError
    raise ConfigError(f"unknown align_method {method!r}; choose one of {', '.join(ALIGN_METHODS)}")
