"""Image-quality metrics through pyiqa (the field's standard library; docs/PAPER.md §6).

No-reference: NIQE and PIQE (lower is better) run offline; MUSIQ, MANIQA-pipal and CLIPIQA (higher
is better) need weight files that pyiqa would download: here they are used when the files are
already on disk and skipped otherwise, with a message naming each file and its folder.
Full-reference (against ZoomWorld ground truth or a ``--reference`` folder): PSNR and SSIM.

pyiqa is licensed PolyForm Noncommercial 1.0.0: research and personal use only.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from PIL import Image

from ..errors import ConfigError, MissingWeightsError

NO_REFERENCE: tuple[str, ...] = ("niqe", "piqe", "musiq", "maniqa-pipal", "clipiqa")
FULL_REFERENCE: tuple[str, ...] = ("psnr", "ssim")
ALL_METRICS: tuple[str, ...] = NO_REFERENCE + FULL_REFERENCE
LOWER_IS_BETTER = frozenset({"niqe", "piqe", "texture", "grid"})   # and against the truth: texture distance, GRID
#: The smallest image side each metric takes (pyiqa 0.1.16, measured: NIQE's 96 px blocks, PIQE's
#: 8 px, SSIM's 11 px window); smaller images are refused before any scoring (``check_sizes``).
MIN_SIDE = {"niqe": 96, "piqe": 8, "ssim": 11}
#: The paper's Table 1 metrics, in its column order.
PAPER_METRICS: tuple[str, ...] = ("niqe", "musiq", "maniqa-pipal", "clipiqa")


@dataclass(frozen=True)
class WeightFile:
    """A file a metric needs: where pyiqa (or timm / CLIP) looks for it, and where it comes from."""

    filename: str
    folder: str  # "pyiqa", "clip" (under torch's hub dir) or "hf:<repo_id>" (the Hugging Face cache)
    origin: str

    def path(self) -> Path | None:
        """The local path when the file is present, else None."""
        if self.folder.startswith("hf:"):
            from huggingface_hub import try_to_load_from_cache
            found = try_to_load_from_cache(self.folder[3:], self.filename)
            return Path(found) if isinstance(found, str) else None
        p = hub_dir() / self.folder / self.filename
        return p if p.is_file() else None

    def where(self) -> str:
        if self.folder.startswith("hf:"):
            return f"the Hugging Face cache ($HF_HOME) as repo {self.folder[3:]}"
        return str(hub_dir() / self.folder)


_PYIQA_WEIGHTS = "https://huggingface.co/chaofengc/IQA-PyTorch-Weights"
WEIGHT_FILES: dict[str, tuple[WeightFile, ...]] = {
    "niqe": (WeightFile("niqe_modelparameters.mat", "pyiqa",
                        "made by `python -m cozlib setup` from basicsr 1.4.2's niqe_pris_params.npz (PyPI)"),),
    "musiq": (WeightFile("musiq_koniq_ckpt-e95806b9.pth", "pyiqa", _PYIQA_WEIGHTS),),
    "maniqa-pipal": (WeightFile("MANIQA_PIPAL-ae6d356b.pth", "pyiqa", _PYIQA_WEIGHTS),
                     WeightFile("model.safetensors", "hf:timm/vit_base_patch8_224.augreg2_in21k_ft_in1k",
                                "the timm model vit_base_patch8_224 on the Hugging Face Hub")),
    "clipiqa": (WeightFile("RN50.pt", "clip", "OpenAI CLIP RN50 (the `clip` package's download list)"),),
}


def hub_dir() -> Path:
    """torch's hub folder ($TORCH_HOME/hub), where pyiqa keeps its weights in ``pyiqa/``."""
    import torch.hub
    return Path(torch.hub.get_dir())


def availability(name: str) -> str | None:
    """None when the metric can run here; else a message naming each missing file and its folder."""
    if name not in ALL_METRICS:
        raise ConfigError(f"unknown metric {name!r}; choose from {', '.join(ALL_METRICS)}")
    missing = [w for w in WEIGHT_FILES.get(name, ()) if w.path() is None]
    if not missing:
        return None
    return "; ".join(f"needs {w.filename} in {w.where()} (from {w.origin})" for w in missing)


def check_sizes(names: Sequence[str], sizes: dict[str, tuple[int, int]]) -> None:
    """A ``ConfigError`` naming the first image too small for a metric, before anything is scored."""
    for n in names:
        least = MIN_SIDE.get(n, 1)
        small = [(p, wh) for p, wh in sizes.items() if min(wh) < least]
        if small:
            path, (w, h) = small[0]
            others = [m for m in names if MIN_SIDE.get(m, 1) <= min(w, h)]
            raise ConfigError(f"{path}: {w}x{h} is too small for {n} (it needs at least {least} px a side"
                              + (f"; {len(small)} images are" if len(small) > 1 else "") + "); score larger images"
                              + (f" or leave {n} out, e.g. --metrics {','.join(others)}" if others else ""))


def parse_metric_list(spec: str | Sequence[str]) -> list[str]:
    names = [s.strip() for s in spec.split(",")] if isinstance(spec, str) else list(spec)
    names = [n for n in names if n]
    for n in names:
        if n not in ALL_METRICS:
            raise ConfigError(f"unknown metric {n!r}; choose from {', '.join(ALL_METRICS)}")
    if not names:
        raise ConfigError(f"no metric named; choose from {', '.join(ALL_METRICS)}, e.g. --metrics niqe,piqe")
    return list(dict.fromkeys(names))


class Scorer:
    """Creates pyiqa metrics once and scores PIL images; weight-needing metrics must be on disk."""

    def __init__(self, device: str = "cpu") -> None:
        from ..runtime import resolve_device
        self.device = resolve_device(device)
        self._metrics: dict[str, object] = {}

    def metric(self, name: str):
        if name not in self._metrics:
            why = availability(name)
            if why is not None:
                raise MissingWeightsError(f"metric {name}: {why}")
            import pyiqa
            os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach a hub from here
            self._metrics[name] = pyiqa.create_metric(name, device=self.device, as_loss=False)
        return self._metrics[name]

    def score(self, name: str, images: Sequence[Image.Image],
              references: Sequence[Image.Image] | None = None) -> list[float]:
        """One float per image; full-reference metrics need ``references`` of the same sizes.

        NIQE is undefined on an image without any texture (its local statistics have zero
        variance; pyiqa's SVD then fails): such an image scores NaN, which tables leave out.
        """
        import torch
        from ..imageio import pil_to_tensor
        m = self.metric(name)
        if name in FULL_REFERENCE:
            if references is None or len(references) != len(images):
                raise ConfigError(f"{name} is full-reference: give one reference image per image")
            for im, ref in zip(images, references):
                if ref.size != im.size:
                    raise ConfigError(f"{name}: image is {im.size}, reference {ref.size}; they must match")
        if not images:
            return []

        def run(idx: list[int]) -> list[float]:
            x = torch.cat([pil_to_tensor(images[i]) for i in idx]).to(self.device)
            if name in FULL_REFERENCE:
                v = m(x, torch.cat([pil_to_tensor(references[i]) for i in idx]).to(self.device))
            else:
                v = m(x)
            return [float(a) for a in v.reshape(len(idx), -1)[:, 0]]

        out: list[float] = [math.nan] * len(images)
        with torch.inference_mode():
            by_size: dict[tuple[int, int], list[int]] = {}
            for i, im in enumerate(images):  # a batch per image size: one metric call each
                by_size.setdefault(im.size, []).append(i)
            for idx in by_size.values():
                try:
                    values = run(idx)
                except torch.linalg.LinAlgError:
                    if name != "niqe":
                        raise
                    values = []
                    for i in idx:  # find the textureless one(s): NaN, the others scored
                        try:
                            values += run([i])
                        except torch.linalg.LinAlgError:
                            values.append(math.nan)
                for i, v in zip(idx, values):
                    out[i] = v
        return out

    def usable(self, names: Sequence[str]) -> tuple[list[str], dict[str, str]]:
        """Split names into (runnable here, {skipped name: why})."""
        ok, skipped = [], {}
        for n in names:
            why = availability(n)
            if why is None:
                ok.append(n)
            else:
                skipped[n] = why
        return ok, skipped
