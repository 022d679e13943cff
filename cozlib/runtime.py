"""Devices, seeds and threads: the few run-time settings every entry point shares."""
from __future__ import annotations

import os
import random

from .errors import ConfigError


def resolve_device(device: str = "auto") -> str:
    """'auto' -> 'cuda' when a CUDA GPU is visible, else 'cpu'; 'cuda' without a GPU is an error."""
    import torch
    if device in ("auto", None, ""):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"--device {device}: no CUDA GPU is visible here; use --device cpu or auto")
    if not (device == "cpu" or device.startswith("cuda") or device == "mps"):
        raise ConfigError(f"unknown device {device!r}; use auto, cpu, cuda or cuda:N")
    return device


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices). The official code parsed --seed and never used it."""
    import numpy as np
    import torch
    random.seed(seed)
    np.random.seed(seed % (2 ** 32))
    torch.manual_seed(seed)


def set_threads(n: int | None = None) -> None:
    """Set torch's CPU threads from ``n`` or $COZ_THREADS (tests and benchmarks use one)."""
    import torch
    n = n or int(os.environ.get("COZ_THREADS", "0") or 0)
    if n > 0:
        torch.set_num_threads(n)


def _one_thread() -> None:
    import torch
    torch.set_num_threads(1)


def parallel_map(fn, items: list, workers: int = 1) -> list:
    """``[fn(x) for x in items]``, in ``workers`` forked processes when there is enough work (the
    result does not depend on ``workers``; fork before any CUDA use). Every call of ``fn`` runs at
    one torch thread (forked workers would share the cores; the ZoomWorld renders come out the same
    on any machine), and this process's thread count is given back afterwards, so the training
    after a render runs at its own thread count."""
    import torch
    if workers > 1 and len(items) >= 4 * workers:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"), initializer=_one_thread) as ex:
            return list(ex.map(fn, items, chunksize=max(1, len(items) // (8 * workers))))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return [fn(x) for x in items]
    finally:
        torch.set_num_threads(threads)
