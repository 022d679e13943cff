"""The crop/resize protocol equals the official inference_coz.py, checked against an independent
PIL implementation written here from the paper's description (docs/PAPER.md §2)."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from cozlib import geometry
from cozlib.backbones.simple import InterpolationBackbone
from cozlib.chain import ChainConfig, run_chain


def reference_x0(img: Image.Image, size: int) -> Image.Image:
    w, h = img.size
    s = size / min(w, h)
    nw, nh = int(w * s), int(h * s)
    r = img.resize((nw, nh), Image.LANCZOS)
    l, t = (nw - size) // 2, (nh - size) // 2
    return r.crop((l, t, l + size, t + size))


def reference_step(prev: Image.Image, upscale: int) -> Image.Image:
    w, h = prev.size
    nw, nh = w // upscale, h // upscale
    crop = prev.crop(((w - nw) // 2, (h - nh) // 2, (w + nw) // 2, (h + nh) // 2))
    return crop.resize((w, h), Image.BICUBIC)


def reference_one_shot(x0: Image.Image, upscale: int, k: int, method) -> Image.Image:
    w, h = x0.size
    r = upscale ** k
    nw, nh = w // r, h // r
    crop = x0.crop(((w - nw) // 2, (h - nh) // 2, (w + nw) // 2, (h + nh) // 2))
    return crop.resize((w, h), method)


@pytest.mark.parametrize("size,wh", [(512, (301, 217)), (512, (640, 480)), (96, (97, 200)), (130, (130, 130))])
def test_x0_matches_official(random_image, size, wh):
    img = random_image(*wh)
    ours = geometry.resize_and_center_crop(img, size)
    assert ours.size == (size, size)
    assert ours.tobytes() == reference_x0(img, size).tobytes()


@pytest.mark.parametrize("upscale", [2, 3, 4])
def test_zoom_input_matches_official(random_image, upscale):
    prev = geometry.resize_and_center_crop(random_image(), 128)
    lr, up = geometry.zoom_input(prev, upscale)
    assert lr.size == (128 // upscale, 128 // upscale)
    assert up.tobytes() == reference_step(prev, upscale).tobytes()


def test_center_crop_box_512():
    assert geometry.center_crop_box(512, 512, 4) == (192, 192, 320, 320)
    assert geometry.center_crop_box(512, 512, 256) == (255, 255, 257, 257)


@pytest.mark.parametrize("rec_type,method", [("nearest", Image.NEAREST), ("bicubic", Image.BICUBIC)])
def test_one_shot_baselines_match_official(random_image, rec_type, method):
    img = random_image(400, 300, seed=3)
    res = run_chain(img, ChainConfig(rec_type=rec_type, steps=4, process_size=256))
    x0 = reference_x0(img, 256)
    assert res.states[0].tobytes() == x0.tobytes()
    for k in range(1, 5):
        assert res.states[k].tobytes() == reference_one_shot(x0, 4, k, method).tobytes()


def test_recursive_chain_with_bicubic_backbone_matches_repeated_official_steps(random_image):
    """With a bicubic 'SR model' every recursive state is the official step applied k times."""
    img = random_image(seed=5)
    res = run_chain(img, ChainConfig(rec_type="recursive", steps=3, process_size=128),
                    backbone=InterpolationBackbone("bicubic"))
    state = reference_x0(img, 128)
    for k in range(1, 4):
        state = reference_step(state, 4)
        assert res.states[k].tobytes() == state.tobytes()


def test_windows_nest_and_shrink():
    ws = geometry.chain_windows(512, 4, 4)
    for (l0, t0, r0, b0), (l1, t1, r1, b1) in zip(ws, ws[1:]):
        assert l0 <= l1 < r1 <= r0 and t0 <= t1 < b1 <= b0
        assert np.isclose((r1 - l1), (r0 - l0) / 4)
    assert np.allclose(ws[4], geometry.direct_windows(512, 4, 4)[4])
