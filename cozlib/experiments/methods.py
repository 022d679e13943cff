"""The methods of the paper's tables (docs/PAPER.md §2, §6) and running them: a ``Method`` is one row
(a rec_type, a backbone, a prompt source); ``run_methods`` runs every (image, method) chain through the
content-keyed cache, sharing identical SR calls; ``world_inputs`` / ``truth_states`` give ZoomWorld
inputs and the exact truth of every state.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Iterable, Mapping, Sequence

from PIL import Image

from ..chain import ChainCache, ChainConfig, ChainResult, run_chains


@dataclass(frozen=True)
class Method:
    """One row of a Table-1-style comparison."""

    label: str
    rec_type: str
    backbone: str | None = None
    prompt: str = "null"


#: Table 1's rows that run on natural photos with a prompt-blind backbone (Real-ESRGAN): the
#: VLM/DAPE rows need a prompt-conditioned backbone (``world_methods``).
PHOTO_METHODS: tuple[Method, ...] = (
    Method("Nearest", "nearest"),
    Method("Bicubic", "bicubic"),
    Method("Direct SR", "onestep", "realesrgan"),
    Method("CoZ", "recursive", "realesrgan"),
)


def world_methods(backbone: str = "osediff-demo", l2_backbone: str | None = "osediff-demo-l2") -> tuple[Method, ...]:
    """Table 1 on ZoomWorld with a prompt-conditioned OSEDiff: the paper's rows (null, DAPE, VLM
    prompts; the single-image VLM beside the multi-scale one), the oracle (ZoomWorld's truth), a
    deliberately wrong prompt, and the L2-only variant."""
    rows = [Method("Nearest", "nearest"), Method("Bicubic", "bicubic"),
            Method("Direct SR (OSEDiff)", "onestep", backbone),
            Method("CoZ null (OSEDiff)", "recursive", backbone),
            Method("CoZ DAPE (OSEDiff)", "recursive", backbone, "dape"),
            Method("CoZ VLM single (OSEDiff)", "recursive", backbone, "vlm-single"),
            Method("CoZ VLM (OSEDiff)", "recursive_multiscale", backbone, "vlm"),
            Method("CoZ VLM GRPO (OSEDiff)", "recursive_multiscale", backbone, "vlm-grpo"),
            Method("CoZ oracle (OSEDiff)", "recursive", backbone, "oracle"),
            Method("CoZ wrong (OSEDiff)", "recursive", backbone, "wrong")]
    if l2_backbone:
        rows.append(Method("CoZ oracle (OSEDiff L2)", "recursive", l2_backbone, "oracle"))
    return tuple(rows)


WORLD_METHODS = world_methods()

#: Table 2's backbones that run here, on ZoomWorld: Real-ESRGAN (prompt-blind) beside the OSEDiff rows.
REALESRGAN_WORLD = (Method("Direct SR (Real-ESRGAN)", "onestep", "realesrgan"),
                    Method("CoZ (Real-ESRGAN)", "recursive", "realesrgan"))


def methods_by_label(labels: Iterable[str],
                     catalogue: Sequence[Method] = PHOTO_METHODS + WORLD_METHODS + REALESRGAN_WORLD) -> list[Method]:
    from ..errors import ConfigError
    index = {m.label: m for m in catalogue}
    missing = [l for l in labels if l not in index]
    if missing:
        raise ConfigError(f"unknown method(s) {missing}; known: {list(index)}")
    return [index[l] for l in labels]


class _MemoBackbone:
    """Remembers SR outputs by input pixels, prompt, size and seed: direct SR's first step and the
    chain's first step are the same computation, done once."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.name, self.scale, self.uses_prompt = inner.name, inner.scale, inner.uses_prompt
        self._memo: dict[tuple, Image.Image] = {}

    def identity(self) -> str:
        return self.inner.identity()

    def forget(self) -> None:
        self._memo.clear()

    def upsample(self, lr, prompts, size, *, seed=0):
        import hashlib
        keys = [(hashlib.sha256(im.tobytes()).hexdigest(), im.size, p, size, seed) for im, p in zip(lr, prompts)]
        todo = [i for i, k in enumerate(keys) if k not in self._memo]
        if todo:
            outs = self.inner.upsample([lr[i] for i in todo], [prompts[i] for i in todo], size, seed=seed)
            for i, out in zip(todo, outs):
                self._memo[keys[i]] = out
        return [self._memo[k].copy() for k in keys]


class MethodModels:
    """The backbones and extractors of a set of methods, each built once (lazily: a chain found in the
    cache loads nothing) and shared between methods: direct SR and CoZ share their first SR call."""

    def __init__(self, device: str = "auto", prompt_options: Mapping[str, object] | None = None,
                 backbone_options: Mapping[str, object] | None = None) -> None:
        self.device, self.prompt_options = device, dict(prompt_options or {})
        #: options of the OSEDiff backbones (e.g. ``memory``, a ``cozlib.memory`` profile); None values left out
        self.backbone_options = {k: v for k, v in (backbone_options or {}).items() if v is not None}
        self._backbones: dict[str, _MemoBackbone] = {}
        self._extractors: dict[str, object] = {}

    def backbone(self, name: str) -> _MemoBackbone:
        from ..backbones import make_backbone
        if name not in self._backbones:
            options = self.backbone_options if name.startswith("osediff") else {}
            self._backbones[name] = _MemoBackbone(make_backbone(name, device=self.device, lazy=True, **options))
        return self._backbones[name]

    def extractor(self, spec: str):
        from ..prompts import make_prompt_extractor
        if spec not in self._extractors:
            self._extractors[spec] = make_prompt_extractor(spec, device=self.device, lazy=True, **self.prompt_options)
        return self._extractors[spec]

    def adopt(self, name: str, model) -> None:
        """Use ``model``, already loaded by the caller, as backbone ``name``: each model is loaded once."""
        self._backbones[name] = _MemoBackbone(model)

    def loaded_backbone(self, name: str):
        """Backbone ``name`` itself, loaded (not the memo or the lazy wrapper): for looking inside it."""
        inner = self.backbone(name).inner
        return inner.model() if hasattr(inner, "_info") else inner

    def loaded_extractor(self, spec: str):
        """Extractor ``spec`` itself, loaded (not the lazy wrapper)."""
        ex = self.extractor(spec)
        return ex.model() if hasattr(ex, "_info") else ex

    def forget_outputs(self) -> None:
        """Drop the remembered SR outputs (they are of one input; the models stay loaded)."""
        for b in self._backbones.values():
            b.forget()


def run_methods(images: Mapping[str, Image.Image], methods: Sequence[Method], config: ChainConfig,
                cache: ChainCache | None, device: str = "auto", progress: bool = True,
                sources: Mapping[str, dict] | None = None, prompt_options: Mapping[str, object] | None = None,
                backbone_options: Mapping[str, object] | None = None,
                models: MethodModels | None = None, batch: int = 1) -> dict[tuple[str, str], ChainResult]:
    """Every (image name, method label) chain; each backbone and extractor is built once.
    ``sources`` adds what an extractor may need per image (``{"world_seed": S}`` for ZoomWorld);
    ``prompt_options`` go to the extractors that take them (e.g. ``vlm=DIR`` for Qwen2.5-VL-3B),
    ``backbone_options`` to the OSEDiff backbones (e.g. ``memory="24gb"``); ``models`` shares the
    models of an earlier call (then device and options are its own); ``batch`` images of a method run
    in lockstep (``chain.run_chains``: one extractor and one SR call per step for all)."""
    from tqdm.auto import tqdm
    models = models or MethodModels(device, prompt_options, backbone_options)
    results: dict[tuple[str, str], ChainResult] = {}
    names = list(images)
    groups = [names[i:i + max(1, batch)] for i in range(0, len(names), max(1, batch))]
    jobs = [(group, m) for group in groups for m in methods]
    for group, m in tqdm(jobs, desc="chains", disable=not progress):
        cfg = replace(config, rec_type=m.rec_type)
        backbone = models.backbone(m.backbone) if cfg.uses_backbone else None
        srcs = [{"image": name, **((sources or {}).get(name, {}))} for name in group]
        outs = run_chains([images[name] for name in group], cfg, backbone, models.extractor(m.prompt),
                          cache=cache, sources=srcs)
        results.update({(name, m.label): res for name, res in zip(group, outs)})
    return {(name, m.label): results[(name, m.label)] for name in names for m in methods}


def world_inputs(seeds: Sequence[int], size: int) -> tuple[dict[str, Image.Image], dict[str, dict]]:
    """Base views of ZoomWorld scenes as chain inputs, named ``world-SEED``, with their sources."""
    from .. import world
    images = {f"world-{s}": world.render_view(s, (0.5, 0.5), 1.0, size) for s in seeds}
    return images, {f"world-{s}": world.world_source(s) for s in seeds}


def truth_states(result: ChainResult) -> list[Image.Image]:
    """The exact ground truth of every state of a chain run on a ZoomWorld input (same windows, size);
    rendered once per scene and windows (chains of one scene share them)."""
    from ..world import in_world
    seed = result.source["world_seed"]
    windows = tuple(in_world(w, result.source) for w in result.windows)
    return [im.copy() for im in _truth(seed, windows, result.states[0].size[0])]


def truth_words(result: ChainResult) -> list[dict[str, float]]:
    """The true words ({word: area fraction}) of every state's window of a ZoomWorld chain."""
    from .. import world
    size = result.states[0].size[0]
    return [world.window_words(result.source["world_seed"], world.in_world(w, result.source), size)
            for w in result.windows]


@lru_cache(maxsize=128)
def _truth(seed: int, windows: tuple, size: int) -> tuple[Image.Image, ...]:
    from .. import world
    return tuple(world.render_window(seed, w, size) for w in windows)
