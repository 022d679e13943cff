"""The zoom explorer's logic (notebook 90, ``python -m cozlib explore``), apart from its widgets.

A ``Source`` is what the reader zooms into: a bundled photo, a ZoomWorld scene or an uploaded image.
A click picks a point; ``recenter`` makes x_0 the view centred there (the chain always zooms into
the centre of x_0, docs/PAPER.md §2); ``compute`` runs every method of the source through the
content-keyed chain cache; on ZoomWorld ``level_rows`` scores each method's state and prompt at a
level against the exact truth and its true words.
"""
from __future__ import annotations

import io
from dataclasses import dataclass, field, replace
from typing import Callable, Mapping

from PIL import Image

from .chain import ChainCache, ChainConfig, ChainResult
from .errors import ConfigError
from .experiments.methods import Method, MethodModels

#: The backbones the explorer uses at demo scale: Real-ESRGAN on photos (it takes no prompt); the
#: demo OSEDiff on ZoomWorld, where the prompts matter and the truth is known.
PHOTO_BACKBONE, WORLD_BACKBONE = "realesrgan", "osediff-demo"


@dataclass
class Source:
    """What the reader zooms into; ``image`` is shown for clicking (ZoomWorld: its base view)."""

    kind: str                      # "photo", "world" or "upload"
    name: str
    image: Image.Image
    world_seed: int | None = None
    info: dict = field(default_factory=dict)


def photo_source(name: str) -> Source:
    from .data import photo
    return Source("photo", name, photo(name))


def world_scene(seed: int, size: int = 512) -> Source:
    from . import world
    world.check_seed(seed)
    return Source("world", f"world-{seed}", world.render_view(seed, (0.5, 0.5), 1.0, size), seed)


def upload_source(data: bytes, name: str = "upload") -> Source:
    """An uploaded file, checked as the command line checks its inputs (``BadImageError`` if bad)."""
    import tempfile
    from pathlib import Path
    from .imageio import load_image
    suffix = Path(name).suffix.lower() or ".png"
    with tempfile.NamedTemporaryFile(suffix=suffix) as f:
        f.write(data)
        f.flush()
        image = load_image(f.name, convert=True)
    return Source("upload", Path(name).stem or "upload", image)


def recenter(source: Source, point: tuple[float, float], size: int) -> tuple[Image.Image, dict]:
    """x_0 centred on ``point`` (fractions of ``source.image``'s width and height) and what the chain
    must know about it. A photo: the largest square centred there that fits (at least a quarter of
    the shorter side; near an edge the square shifts inside, so the centre moves with it). ZoomWorld:
    the base view's window moved there (the world goes on past the base view)."""
    from . import world
    fx, fy = (min(max(float(v), 0.0), 1.0) for v in point)
    if source.kind == "world":
        window = (fx - 0.5, fy - 0.5, fx + 0.5, fy + 0.5)
        return world.render_window(source.world_seed, window, size), world.world_source(source.world_seed, window)
    w, h = source.image.size
    px, py = fx * w, fy * h
    side = min(w, h)
    side = max(side // 4, min(side, int(2 * min(px, py, w - px, h - py))))
    left = int(round(min(max(px - side / 2, 0), w - side)))
    top = int(round(min(max(py - side / 2, 0), h - side)))
    crop = source.image.crop((left, top, left + side, top + side))
    # the point asked for, and the crop of the photo that x_0 is (its centre moves inward near an edge)
    return crop, {"image": source.name, "center": [round(fx, 4), round(fy, 4)],
                  "crop": [left, top, left + side, top + side]}


def methods_for(source: Source, prompts: tuple[str, ...] | None = None) -> list[Method]:
    """The panels: nearest, bicubic, direct SR, and CoZ with each prompt source that suits the input
    (on ZoomWorld the learnt extractors and the oracle; on photos the null prompt: the demo VLMs
    know only ZoomWorld's words, and Real-ESRGAN reads no prompt)."""
    if source.kind != "world":
        return [Method("Nearest", "nearest"), Method("Bicubic", "bicubic"),
                Method("Direct SR", "onestep", PHOTO_BACKBONE), Method("CoZ", "recursive", PHOTO_BACKBONE)]
    b = WORLD_BACKBONE
    chosen = prompts or ("null", "dape", "vlm-single", "vlm", "vlm-grpo", "oracle")
    rows = [Method("Nearest", "nearest"), Method("Bicubic", "bicubic"), Method("Direct SR", "onestep", b)]
    names = {"null": "CoZ null", "dape": "CoZ DAPE", "vlm-single": "CoZ VLM single", "vlm": "CoZ VLM",
             "vlm-grpo": "CoZ VLM GRPO", "oracle": "CoZ oracle"}
    for p in chosen:
        if p not in names:
            raise ConfigError(f"unknown explorer prompt {p!r}; choose from {', '.join(names)}")
        rows.append(Method(names[p], "recursive_multiscale" if p in ("vlm", "vlm-grpo") else "recursive", b, p))
    return rows


class Cancelled(Exception):
    """A newer request replaced this one (the reader clicked again)."""


def compute(source: Source, point: tuple[float, float], config: ChainConfig, cache: ChainCache | None,
            methods: list[Method], device: str = "cpu", progress: Callable[[int, int, str], None] | None = None,
            cancelled: Callable[[], bool] = lambda: False, models: MethodModels | None = None) -> dict[str, ChainResult]:
    """Every method's chain at ``point``: {label: ChainResult}. ``progress(done, total, label)`` after
    each step; ``cancelled()`` is asked between steps (``Cancelled`` when it says so). ``models``
    (``MethodModels``) keeps the loaded backbones and extractors between calls."""
    from .chain import run_chain
    models = MethodModels(device) if models is None else models
    models.forget_outputs()  # shared first steps are of this point only
    x0, src = recenter(source, point, config.process_size)
    total = config.steps * len(methods)
    out: dict[str, ChainResult] = {}
    for i, m in enumerate(methods):
        cfg = replace(config, rec_type=m.rec_type)
        backbone = models.backbone(m.backbone) if cfg.uses_backbone else None
        extractor = models.extractor(m.prompt) if cfg.uses_backbone else None

        def step(k: int, n: int, i=i, label=m.label) -> None:
            if cancelled():
                raise Cancelled
            if progress:
                progress(i * config.steps + k, total, label)
        if cancelled():
            raise Cancelled
        out[m.label] = run_chain(x0, cfg, backbone, extractor, cache=cache, source=src, progress=step)
    return out


def level_rows(results: Mapping[str, ChainResult], k: int) -> dict[str, dict]:
    """On ZoomWorld, at level ``k``: {label: {"texture": distance to the truth, "hallucination":
    share of the prompt's words that are false (None without words), "prompt": c_k}}, and
    {"Truth": {"words": the true words}}."""
    from . import world
    from .experiments.methods import truth_states
    from .metrics.truth import score_prompt, texture_distance
    from .world.vocab import vocabulary
    any_result = next(iter(results.values()))
    seed = any_result.source.get("world_seed")
    truth = truth_states(any_result)[k] if seed is not None else None
    out: dict[str, dict] = {}
    for label, res in results.items():
        prompt = res.prompts[k - 1] if k >= 1 and res.prompts else ""
        row: dict = {"prompt": prompt}
        if truth is not None and k >= 1:
            row["texture"] = texture_distance(res.states[k], truth)
            if res.config.uses_backbone:
                words = world.window_words(seed, world.in_world(res.windows[k], res.source), res.config.process_size)
                row["hallucination"] = score_prompt(prompt, words, vocabulary()).hallucination
        out[label] = row
    if seed is not None:
        words = world.window_words(seed, world.in_world(any_result.windows[k], any_result.source),
                                   any_result.config.process_size)
        out["Truth"] = {"words": words, "image": truth}
    return out


def png(image: Image.Image, size: int | None = None) -> bytes:
    """PNG bytes of ``image`` at ``size`` px (nearest when enlarging: real pixels)."""
    if size is not None and image.size != (size, size):
        image = image.resize((size, size), Image.NEAREST if image.width < size else Image.LANCZOS)
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return buf.getvalue()
