"""Memory profiles: where the paper-scale models live on one GPU (docs/PAPER.md §5, §9).

A CoZ step runs Qwen2.5-VL-3B (bf16 about 7.4 GiB at its peak), the three SD3 text encoders (T5-XXL
alone about 9 GiB in bf16), the SD3-medium transformer (about 4.1 GiB in bf16, twice that in fp32)
and the VAE. A profile says in which precision each is held and which ones leave the GPU while
another runs:

* ``official``: the official code's precisions (transformer and VAE fp32, text encoders fp16), all
  resident on one GPU (the official code splits them over two). The default.
* ``fast``: everything in bf16 and resident: no transfers; about 22 GiB of weights.
* ``24gb``: bf16; the SR model's parts are moved to the GPU only while each runs (diffusers'
  model offload) and the VLM only while it generates, so one large model at a time is on the GPU.
* ``8gb``: as ``24gb`` without T5-XXL (zeros in its place, as diffusers does when it is left out).

Each profile's peak memory and time per step are measured by ``bench/paper_memory.py`` on a GPU with
random weights at the real configurations (records in ``bench/results/``).
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

from .errors import ConfigError


@dataclass(frozen=True)
class MemoryProfile:
    name: str
    dtype: str            # transformer and VAE
    text_dtype: str       # CLIP-L, CLIP-G, T5-XXL
    drop_t5: bool         # leave T5-XXL out
    offload: bool         # SR parts on the GPU only while each runs
    vlm_offload: bool     # the VLM on the GPU only while it generates
    help: str


PROFILES = {p.name: p for p in (
    MemoryProfile("official", "float32", "float16", False, False, False,
                  "the official precisions (fp32 transformer and VAE, fp16 text encoders), all on the GPU"),
    MemoryProfile("fast", "bfloat16", "bfloat16", False, False, False, "bf16, everything on the GPU (about 22 GiB)"),
    MemoryProfile("24gb", "bfloat16", "bfloat16", False, True, True,
                  "bf16, one model on the GPU at a time (24 GB cards)"),
    MemoryProfile("8gb", "bfloat16", "bfloat16", True, True, True, "as 24gb without T5-XXL (8 GB cards)"),
)}


def profile(name: str | None) -> MemoryProfile | None:
    """The named profile (None: none chosen), or a clear error naming the choices."""
    if name is None:
        return None
    if name not in PROFILES:
        raise ConfigError(f"unknown memory profile {name!r}; choose one of: "
                          + "; ".join(f"{p.name} ({p.help})" for p in PROFILES.values()))
    return PROFILES[name]


def vlm_placement(memory: str | None, device: str) -> tuple[str, str, str | None]:
    """(load device, dtype, offload device) of a VLM (prompt extractor or critic): with a profile that
    offloads it on a GPU, it is loaded on the CPU in bf16 and visits ``device`` only while it runs."""
    prof = profile(memory)
    if prof is not None and prof.vlm_offload and device.startswith("cuda"):
        return "cpu", "bfloat16", device
    return device, "auto", None


@contextmanager
def visiting(model, device: str | None):
    """``model`` on ``device`` for the block, back on the CPU after it (its GPU memory freed for the
    next model); nothing moves when ``device`` is None."""
    if device is None:
        yield model
        return
    import torch
    model.to(device)
    try:
        yield model
    finally:
        model.to("cpu")
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
