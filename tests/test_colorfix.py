from __future__ import annotations

import pytest
import torch

from cozlib.colorfix import adain_color_fix, apply_color_fix, wavelet_color_fix, wavelet_decompose
from cozlib.errors import ConfigError


def test_adain_matches_source_statistics():
    g = torch.Generator().manual_seed(0)
    src = torch.rand(1, 3, 32, 32, generator=g) * 0.5 + 0.25
    tgt = torch.rand(1, 3, 32, 32, generator=g) * 0.3
    out = adain_color_fix(tgt, src)
    assert torch.allclose(out.mean((2, 3)), src.mean((2, 3)), atol=1e-4)
    assert torch.allclose(out.std((2, 3)), src.std((2, 3)), atol=1e-3)


def test_wavelet_decomposition_is_exact_and_fix_takes_source_low_band():
    g = torch.Generator().manual_seed(1)
    x = torch.rand(1, 3, 64, 64, generator=g)
    high, low = wavelet_decompose(x)
    assert torch.allclose(high + low, x, atol=1e-5)
    flat_src = torch.full_like(x, 0.5)
    out = wavelet_color_fix(x * 0.5, flat_src)
    _, low_out = wavelet_decompose(out)
    assert abs(low_out.mean().item() - 0.5) < 0.02


def test_nofix_is_identity_and_unknown_is_an_error():
    x = torch.rand(1, 3, 8, 8)
    assert apply_color_fix(x, x * 0, "nofix") is x
    with pytest.raises(ConfigError, match="align_method"):
        apply_color_fix(x, x, "histogram")
