"""The appendix runtime analysis (docs/PAPER.md §6, §9): where the time of one CoZ step goes.

One step = the VLM's prompt c_i from (x_{i-1}, zoomed input), then OSEDiff's one step: the text
encoders (CLIP-L + CLIP-G + T5), VAE encode, one transformer call, VAE decode. ``step_parts`` times
each part on the models given (median of ``repeats`` runs after a warm-up), so the same function
measures the demo on the CPU and the paper's models on a GPU; ``read_record`` reads a record of it
(bench/results/), such as the paper-scale one.
"""
from __future__ import annotations

import csv
import statistics
import time
from pathlib import Path
from typing import Callable

from PIL import Image

#: The parts of a step, in order, with what each is.
PARTS = {"vlm": "VLM prompt (generate)", "text_encoders": "text encoders (CLIP-L + CLIP-G + T5)",
         "vae_encode": "VAE encode", "transformer": "transformer (one call)", "vae_decode": "VAE decode"}


def _timed(fn: Callable[[], object], device, repeats: int) -> float:
    import torch
    sync = torch.cuda.synchronize if str(device).startswith("cuda") else (lambda: None)
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        sync()
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def step_parts(backbone, extractor, prev: Image.Image, upscale: int = 4, repeats: int = 3) -> dict[str, float]:
    """Median seconds of each part of one CoZ step from state ``prev`` (``PARTS``): ``backbone`` an
    ``OSEDiffSD3`` (its ``encode_prompt``, ``encode``, ``velocity``, ``decode``), ``extractor`` a
    prompt extractor called with the step's ``PromptContext``."""
    import torch
    from .. import geometry
    from ..imageio import pil_to_tensor
    from ..prompts import PromptContext
    size = prev.size[0]
    _, zoomed = geometry.zoom_input(prev, upscale)
    ctx = PromptContext(zoomed=zoomed, step=2, window=(0.0, 0.0, 1.0, 1.0), source={}, previous=prev)
    prompt = extractor(ctx)
    dev = backbone.device
    x = pil_to_tensor(geometry.resize(zoomed, size, "bicubic")) * 2 - 1
    with torch.inference_mode():
        pe, pooled = backbone.encode_prompt([prompt])
        z = backbone.encode(x)
        v = backbone.velocity(z, pe, pooled)
        z0 = z - backbone.sigma * v
        return {"vlm": _timed(lambda: extractor(ctx), dev, repeats),
                "text_encoders": _timed(lambda: backbone.encode_prompt([prompt]), dev, repeats),
                "vae_encode": _timed(lambda: backbone.encode(x), dev, repeats),
                "transformer": _timed(lambda: backbone.velocity(z, pe, pooled), dev, repeats),
                "vae_decode": _timed(lambda: backbone.decode(z0), dev, repeats)}


def read_record(path: str | Path) -> dict[str, float]:
    """{part: seconds} from a record CSV with columns part, seconds (other columns are kept for readers)."""
    with open(path, newline="") as f:
        return {r["part"]: float(r["seconds"]) for r in csv.DictReader(f) if r.get("seconds")}


def runtime_table(columns: dict[str, dict[str, float]]) -> tuple[list[str], list[list]]:
    """Rows per part: milliseconds and share of the step in each column (e.g. demo CPU, paper-scale GPU
    record), then the step's total; the paper's own numbers are not known (an empty column)."""
    header = ["part"] + [h for name in columns for h in (f"{name} ms", f"{name} share")] + ["paper"]
    rows = []
    totals = {name: sum(c.values()) for name, c in columns.items()}
    for part, what in PARTS.items():
        row: list = [what]
        for name, c in columns.items():
            s = c.get(part)
            row += [None if s is None else s * 1e3, None if s is None else s / totals[name]]
        rows.append(row + [None])
    rows.append(["one step (sum)"] + [v for name in columns for v in (totals[name] * 1e3, 1.0)] + [None])
    return header, rows


def vlm_share(columns: dict[str, dict[str, float]]) -> dict[str, float]:
    """The VLM's share of the step per column (the appendix's claim: it dominates)."""
    return {name: c["vlm"] / sum(c.values()) for name, c in columns.items() if "vlm" in c}
