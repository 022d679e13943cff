"""The paper's "naive" prompt extractor, DAPE (a RAM tagger fine-tuned on degraded images by SeeSR):
tags of the single degraded view, no coarser context.

Paper scale needs RAM's Swin-L model, whose code is not packaged anywhere installable, so here it is
a slot: any object with ``tags(images) -> list[str]`` (one prompt per image) can be wrapped by
``DapePrompt``. Demo scale: ``Tagger``, a small multi-label CNN over ZoomWorld's vocabulary, trained
here on single degraded views (``cozlib.training.prompts``, ``make weights``); a word is named when
its probability is at least ``threshold``.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

from PIL import Image

from ..errors import MissingWeightsError
from . import PromptContext, register

DEMO_DIR = "data/weights/dape-demo"


def make_tagger_net(n_words: int, width: int = 48):
    """Conv net: RGB (64 px in the demo) -> one logit per vocabulary word."""
    from torch import nn

    def block(i, o):
        return nn.Sequential(nn.Conv2d(i, o, 3, padding=1), nn.BatchNorm2d(o), nn.ReLU(), nn.MaxPool2d(2))

    return nn.Sequential(block(3, width), block(width, width), block(width, 2 * width), block(2 * width, 2 * width),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2 * width, n_words))


class Tagger:
    """The demo DAPE: ``net`` + the vocabulary + input size; ``tags`` names words above ``threshold``."""

    def __init__(self, net, words: Sequence[str], image_px: int = 64, threshold: float = 0.5,
                 device: str = "cpu") -> None:
        self.net, self.words, self.image_px, self.threshold, self.device = net.eval(), list(words), image_px, threshold, device

    def probabilities(self, images: Sequence[Image.Image]):
        import torch
        from ..imageio import pil_to_tensor
        x = torch.cat([pil_to_tensor(im.convert("RGB").resize((self.image_px,) * 2, Image.BICUBIC)) for im in images])
        with torch.inference_mode():
            return torch.sigmoid(self.net(x.to(self.device) * 2 - 1)).cpu()

    def tags(self, images: Sequence[Image.Image]) -> list[str]:
        from ..prompts.oracle import truth_prompt
        out = []
        for p in self.probabilities(images):
            named = {w: float(q) for w, q in zip(self.words, p) if q >= self.threshold}
            out.append(truth_prompt(named, min_fraction=0.0))  # objects, then parts, then micro; by probability
        return out

    def save(self, folder: str | os.PathLike, extra: dict[str, str] | None = None) -> None:
        """``tagger.safetensors`` + ``tagger.json`` (words, input size, threshold, width) and ``extra``
        text files ({name: text}), atomically."""
        from safetensors.torch import save_file
        from ..imageio import atomic_dir
        with atomic_dir(Path(folder), kind="weights") as tmp:
            save_file({k: v.contiguous() for k, v in self.net.state_dict().items()}, str(tmp / "tagger.safetensors"))
            (tmp / "tagger.json").write_text(json.dumps({"words": self.words, "image_px": self.image_px,
                                                         "threshold": self.threshold,
                                                         "width": self.net[0][0].out_channels}, indent=1) + "\n")
            for name, text in (extra or {}).items():
                (tmp / name).write_text(text)

    @classmethod
    def load(cls, folder: str | os.PathLike, device: str = "cpu") -> "Tagger":
        from safetensors.torch import load_file
        folder = Path(folder)
        if not (folder / "tagger.json").is_file():
            raise MissingWeightsError(f"{folder}/tagger.json not found: run `make weights` (it trains the demo tagger)")
        meta = json.loads((folder / "tagger.json").read_text())
        net = make_tagger_net(len(meta["words"]), meta["width"])
        net.load_state_dict(load_file(str(folder / "tagger.safetensors")))
        return cls(net.to(device), meta["words"], meta["image_px"], meta["threshold"], device)


class DapePrompt:
    """c_i = tags of the zoomed input alone (a single-image extractor)."""

    name = "dape"
    multiscale = False

    def __init__(self, tagger, weights_id: str) -> None:
        self.tagger, self.weights_id = tagger, weights_id

    def identity(self) -> str:
        return f"dape:{self.weights_id}"

    def __call__(self, ctx: PromptContext) -> str:
        return self.batch([ctx])[0]

    def batch(self, contexts: list[PromptContext]) -> list[str]:
        if isinstance(self.tagger, Tagger) and not all("world_seed" in c.source for c in contexts):
            from ..errors import ConfigError
            from . import WORLD_ONLY
            raise ConfigError(f"--prompt dape needs ZoomWorld inputs (world:SEED): {WORLD_ONLY['dape']}")
        return self.tagger.tags([c.zoomed for c in contexts])


def demo_folder() -> Path:
    from ..paths import resolve
    return resolve(os.environ.get("COZ_DAPE_DEMO") or DEMO_DIR)


def _availability() -> str | None:
    return None if (demo_folder() / "tagger.json").is_file() else f"{demo_folder()} missing: run `make weights`"


def _identity(arg: str | None = None, device: str = "auto", **options) -> str:
    from ..paths import folder_hash
    return f"dape:{folder_hash(demo_folder())}"


@register("dape", "a DAPE-like tagger of the zoomed input alone (demo: a CNN trained on ZoomWorld, ZoomWorld "
                  "inputs only; RAM/DAPE weights are a pluggable slot)", availability=_availability, identity=_identity,
          needs=("world",))
def _dape(arg: str | None = None, device: str = "auto", **options) -> DapePrompt:
    from ..paths import folder_hash
    from ..runtime import resolve_device
    folder = demo_folder()
    return DapePrompt(Tagger.load(folder, resolve_device(device)), folder_hash(folder))
