"""The Chain-of-Zoom loop: scale-states x_0..x_n, the AR-2 prompts and the baselines (docs/PAPER.md §1-2).

    p(x_0..x_n) = p(x_0, x_1) * prod_{i>=2} p(x_i | x_{i-1}, x_{i-2})
    p(x_i | x_{i-1}, x_{i-2}) = integral p(x_i | x_{i-1}, c_i) p(c_i | x_{i-1}, x_{i-2}) dc_i

The SR backbone sees x_{i-2} only through the prompt c_i: ``x_i = f(crop(x_{i-1}), c_i)``.
``rec_type`` follows the official CLI:

* ``nearest`` / ``bicubic``: state k is the centered 1/upscale**k crop of x_0, resized back (no model);
* ``onestep``: the same crop through the SR backbone once (direct SR, the Markov baseline at k = 1);
* ``recursive``: the chain, the prompt from the zoomed input alone;
* ``recursive_multiscale``: the chain, the prompt from [x_{i-1}, zoomed input] (CoZ proper).

As in the official code, step 1 of ``recursive_multiscale`` already passes two images (x_0 and
its zoom), although the paper writes c_1 ~ p(c_1 | x_0). States are 8-bit RGB images between
steps, as the official code's PNG round trip makes them.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from PIL import Image

from . import geometry
from .errors import ConfigError
from .runtime import MAX_SEED

REC_TYPES: tuple[str, ...] = ("nearest", "bicubic", "onestep", "recursive", "recursive_multiscale")
#: Bump when the chain's outputs change for the same inputs, so old cache entries are not reused.
CHAIN_FORMAT = 2
#: Limits every chain is checked against (``ChainConfig.validate``): a state of 4096^2 px is 48 MB and
#: each model call grows with it; the deepest zoom is ``geometry.MAX_ZOOM``.
MAX_PROCESS_SIZE = 4096
MAX_UPSCALE = 16


@dataclass(frozen=True)
class ChainConfig:
    """The official CLI's settings (``rec_num`` is called ``steps`` here)."""

    rec_type: str = "recursive_multiscale"
    upscale: int = 4
    steps: int = 4
    process_size: int = 512
    align_method: str = "nofix"
    user_prompt: str = ""
    seed: int = 42

    def validate(self) -> "ChainConfig":
        """Clear errors for settings that cannot run, before any work: the windows every step will
        need must exist at the last step, and each step must magnify by exactly ``upscale``."""
        from .colorfix import ALIGN_METHODS
        if self.rec_type not in REC_TYPES:
            raise ConfigError(f"unknown rec_type {self.rec_type!r}; choose one of: {', '.join(REC_TYPES)}")
        for name, lo, hi in (("upscale", 2, MAX_UPSCALE), ("steps", 1, 64), ("process_size", 8, MAX_PROCESS_SIZE),
                             ("seed", 0, MAX_SEED)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
                raise ConfigError(f"{name} must be a whole number from {lo} to {hi}, got {v!r}")
        if self.align_method not in ALIGN_METHODS:
            raise ConfigError(f"unknown align_method {self.align_method!r}; choose one of {', '.join(ALIGN_METHODS)}")
        if not isinstance(self.user_prompt, str) or len(self.user_prompt) > 1000:
            raise ConfigError("user_prompt must be text of at most 1000 characters")
        MAX_ZOOM = geometry.MAX_ZOOM
        if self.upscale ** self.steps > MAX_ZOOM:
            most = max(k for k in range(1, 64) if self.upscale ** k <= MAX_ZOOM)
            raise ConfigError(f"{self.steps} steps of {self.upscale}x zoom {self.upscale}^{self.steps}x: past "
                              f"{MAX_ZOOM:.1e}x a pixel is smaller than 64-bit coordinates tell apart. Use at most "
                              f"--steps {most}")
        one_shot = self.rec_type in ("nearest", "bicubic", "onestep")
        step = self.upscale ** (self.steps if one_shot else 1)
        if self.process_size % step:
            what = (f"the 1/{step} crop of x_0 at the last step" if one_shot else f"the 1/{step} crop of every step")
            good = self.process_size // step * step or step
            raise ConfigError(f"process_size {self.process_size} is not a multiple of {step}, so {what} would not be "
                              f"a whole number of pixels and the zoom would not be {self.upscale}x per step; use "
                              f"--process-size {good} (or fewer --steps)")
        return self

    @property
    def uses_backbone(self) -> bool:
        return self.rec_type not in ("nearest", "bicubic")


@dataclass
class ChainResult:
    """Every scale-state with its prompt, window (in x_0's unit square) and timing."""

    config: ChainConfig
    states: list[Image.Image]
    prompts: list[str]
    windows: list[tuple[float, float, float, float]]
    timings: list[dict[str, float]]
    backbone: str | None
    extractor: str | None
    key: str = ""
    cached: bool = False
    source: dict[str, Any] = field(default_factory=dict)

    @property
    def magnifications(self) -> list[int]:
        return [self.config.upscale ** k for k in range(len(self.states))]

    def meta(self) -> dict[str, Any]:
        return {"config": asdict(self.config), "prompts": self.prompts, "windows": self.windows,
                "timings": self.timings, "backbone": self.backbone, "extractor": self.extractor,
                "key": self.key, "source": self.source, "format": CHAIN_FORMAT}


def chain_key(x0: Image.Image, config: ChainConfig, backbone_id: str | None, extractor_id: str | None,
              source: dict[str, Any] | None = None) -> str:
    """Content key of a chain result: x_0's pixels, every setting, the models' identities."""
    h = hashlib.sha256()
    h.update(f"{x0.size}{x0.mode}".encode())
    h.update(x0.tobytes())
    h.update(json.dumps({"config": asdict(config), "backbone": backbone_id, "extractor": extractor_id,
                         "source": source or {}, "format": CHAIN_FORMAT}, sort_keys=True).encode())
    return h.hexdigest()[:32]


class ChainCache:
    """A content-keyed folder of chain results: ``root/<key>/scale{k}.png`` and ``meta.json``.

    Entries are written to a temporary folder and renamed into place, so a crash never leaves
    a half-written entry behind, and a reader sees either nothing or the whole result.
    """

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)

    def _dir(self, key: str) -> Path:
        return self.root / key

    def load(self, key: str) -> ChainResult | None:
        """The cached result of ``key``, or None. An entry that cannot be read is never trusted: it is
        reported, removed when it is a cache entry's files only, and computed again."""
        d = self._dir(key)
        meta_path = d / "meta.json"
        if not d.exists():
            return None
        try:
            meta = json.loads(meta_path.read_text())
            if meta.get("format") != CHAIN_FORMAT:
                return None
            n = meta["config"]["steps"]
            states = []
            for k in range(n + 1):
                with Image.open(d / f"scale{k}.png") as im:
                    states.append(im.convert("RGB"))
            return ChainResult(ChainConfig(**meta["config"]), states, meta["prompts"],
                               [tuple(w) for w in meta["windows"]], meta["timings"], meta["backbone"],
                               meta["extractor"], key, True, meta.get("source", {}))
        except (OSError, ValueError, KeyError, TypeError) as e:  # a broken entry: JSON, keys, images
            import sys
            print(f"warning: chain cache entry {d} cannot be read ({type(e).__name__}: {e}); computing it again",
                  file=sys.stderr)
            self._discard(d)
            return None

    def _discard(self, d: Path) -> None:
        """Remove a broken entry, but only when every file in it is one a cache entry holds."""
        names = {p.name for p in d.iterdir()} if d.is_dir() else set()
        ours = all(n in ("meta.json", "scores.json", ".cozlib") or (n.startswith("scale") and n.endswith(".png"))
                   for n in names)
        if ours:
            shutil.rmtree(d, ignore_errors=True)

    def load_scores(self, key: str) -> dict[str, list[float]]:
        """Per-state metric values stored beside a chain (metric -> [value for x_0..x_n]); an unreadable
        file counts as none (the scores are computed again)."""
        p = self._dir(key) / "scores.json"
        if not p.is_file():
            return {}
        try:
            scores = json.loads(p.read_text())
            return scores if isinstance(scores, dict) else {}
        except (OSError, ValueError):
            return {}

    def store_scores(self, key: str, scores: dict[str, list[float]]) -> None:
        from .imageio import save_json
        if self._dir(key).is_dir():
            save_json(scores, self._dir(key) / "scores.json")

    def store(self, result: ChainResult) -> None:
        from .outputs import make_parents, remove_if_empty, remove_stale_temps, temp_dir
        final = self._dir(result.key)
        if final.exists():
            return
        created = make_parents(self.root)
        remove_stale_temps(self.root, ".tmp-")
        tmp = None
        try:
            tmp = temp_dir(self.root, ".tmp-", kind="chain-cache")
            for k, im in enumerate(result.states):
                im.save(tmp / f"scale{k}.png")
            (tmp / "meta.json").write_text(json.dumps(result.meta(), indent=2, sort_keys=True))
            os.rename(tmp, final)
        except BaseException:
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)
            remove_if_empty(created)
            if not final.exists():  # else another process stored the same key first: theirs is as good
                raise


def _sr_input(crop: Image.Image, backbone, size: int) -> Image.Image:
    """What the backbone is fed: the raw crop (scale None) or the crop BICUBIC-resized to size // scale."""
    if backbone.scale is None:
        return crop
    want = size // backbone.scale
    return crop if crop.size == (want, want) else geometry.resize(crop, want, "bicubic")


def _color_fix(out: Image.Image, reference: Image.Image, method: str) -> Image.Image:
    if method == "nofix":
        return out
    from .colorfix import apply_color_fix
    from .imageio import pil_to_tensor, tensor_to_pil
    return tensor_to_pil(apply_color_fix(pil_to_tensor(out), pil_to_tensor(reference), method))


def run_chain(image: Image.Image, config: ChainConfig, backbone=None, extractor=None, *,
              cache: ChainCache | None = None, source: dict[str, Any] | None = None,
              progress: Callable[[int, int], None] | None = None) -> ChainResult:
    """Run one zoom chain on a raw RGB image (x_0 is prepared here) and return every state.

    ``backbone`` and ``extractor`` follow the protocols in ``cozlib.backbones`` and
    ``cozlib.prompts``; the extractor defaults to the null prompt. With a ``cache`` the result
    is looked up by content first and stored after.
    """
    return run_chains([image], config, backbone, extractor, cache=cache, sources=[source], progress=progress)[0]


def run_chains(images: Sequence[Image.Image], config: ChainConfig, backbone=None, extractor=None, *,
               cache: ChainCache | None = None, sources: Sequence[dict[str, Any] | None] | None = None,
               progress: Callable[[int, int], None] | None = None) -> list[ChainResult]:
    """``run_chain`` on several images in lockstep: at each step one extractor call
    (``prompts_for``: one VLM ``generate`` for all views) and one backbone call for every image not
    found in the cache. Each chain is the one ``run_chain`` gives; a step's ``timings`` are those of
    the calls all its images shared (``batch`` images)."""
    from .imageio import check_image
    from .prompts import PromptContext, prompts_for
    from .prompts.simple import NullPrompt
    from .runtime import seed_everything

    config.validate()
    sources = [dict(s or {}) for s in (sources or [None] * len(images))]
    if len(sources) != len(images):
        raise ConfigError(f"{len(images)} images but {len(sources)} sources")
    if config.uses_backbone and backbone is None:
        raise ConfigError(f"rec_type {config.rec_type} needs an SR backbone (e.g. backbone='realesrgan')")
    if extractor is None:
        extractor = NullPrompt()
    x0s = [geometry.resize_and_center_crop(check_image(im), config.process_size) for im in images]
    backbone_id = backbone.identity() if config.uses_backbone else None
    extractor_id = extractor.identity() if config.uses_backbone else None
    keys = [chain_key(x0, config, backbone_id, extractor_id, src) for x0, src in zip(x0s, sources)]
    results: list[ChainResult | None] = [cache.load(k) if cache is not None else None for k in keys]
    todo = [j for j, r in enumerate(results) if r is None]
    if not todo:
        if progress:
            progress(config.steps, config.steps)
        return results  # type: ignore[return-value]

    seed_everything(config.seed)
    size, s, n = config.process_size, config.upscale, config.steps
    one_shot = config.rec_type in ("nearest", "bicubic", "onestep")
    windows = (geometry.direct_windows if one_shot else geometry.chain_windows)(size, s, n)
    states = {j: [x0s[j]] for j in todo}
    prompts: dict[int, list[str]] = {j: [] for j in todo}
    timings: list[dict[str, float]] = []
    for i in range(1, n + 1):
        t0 = time.perf_counter()
        crops = {j: geometry.direct_crop(x0s[j], s, i) if one_shot else geometry.zoom_crop(states[j][-1], s)
                 for j in todo}
        if config.rec_type in ("nearest", "bicubic"):
            for j in todo:
                states[j].append(geometry.resize(crops[j], size, config.rec_type))
                prompts[j].append("")
            timings.append({"prompt_s": 0.0, "sr_s": time.perf_counter() - t0, "batch": len(todo)})
        else:
            zoomed = {j: geometry.resize(crops[j], size, "bicubic") for j in todo}
            ctxs = [PromptContext(zoomed=zoomed[j], step=i, window=windows[i], source=sources[j],
                                  previous=states[j][-1] if config.rec_type == "recursive_multiscale" else None)
                    for j in todo]
            step_prompts = prompts_for(extractor, ctxs, config.user_prompt)
            t1 = time.perf_counter()
            outs = backbone.upsample([_sr_input(crops[j], backbone, size) for j in todo], step_prompts, size,
                                     seed=config.seed * 1000 + i)
            for j, out, prompt in zip(todo, outs, step_prompts):
                states[j].append(_color_fix(out, zoomed[j], config.align_method))
                prompts[j].append(prompt)
            timings.append({"prompt_s": t1 - t0, "sr_s": time.perf_counter() - t1, "batch": len(todo)})
        if progress:
            progress(i, n)
    for j in todo:
        results[j] = ChainResult(config, states[j], prompts[j], [tuple(w) for w in windows],
                                 [dict(t) for t in timings], backbone_id, extractor_id, keys[j], False, sources[j])
        if cache is not None:
            cache.store(results[j])
    return results  # type: ignore[return-value]
