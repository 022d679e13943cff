"""Devices, seeds and threads: the few run-time settings every entry point shares."""
from __future__ import annotations

import os
import random

from .errors import ConfigError

#: The largest run seed: what NumPy's and torch's generators both take.
MAX_SEED = 2 ** 32 - 1


def resolve_device(device: str = "auto", flag: str = "--device") -> str:
    """'auto' -> 'cuda' when a CUDA GPU is visible, else 'cpu'; a GPU that is not there is an error
    (``flag``: how the user set it, for the message, e.g. ``--set device``)."""
    import re
    import torch
    if device in ("auto", None, ""):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if not (device == "cpu" or device == "mps" or re.fullmatch(r"cuda(:\d+)?", str(device))):
        raise ConfigError(f"{flag} {device!r} is not a device; use auto, cpu, cuda or cuda:N")
    if device == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"{flag} mps: no Apple GPU (MPS) is available here; use {flag}{'=' if '--set' in flag else ' '}cpu or auto")
    if device.startswith("cuda"):
        index = int(device.split(":")[1]) if ":" in device else 0
        if not torch.cuda.is_available():
            raise ConfigError(f"{flag} {device}: no CUDA GPU is visible here; use {flag}{'=' if '--set' in flag else ' '}cpu or auto")
        if index >= torch.cuda.device_count():
            raise ConfigError(f"{flag} {device}: only {torch.cuda.device_count()} CUDA GPU(s) here; use cuda:0 .. "
                              f"cuda:{torch.cuda.device_count() - 1}")
    return device


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices). The official code parsed --seed and never used it."""
    import numpy as np
    import torch
    random.seed(seed)
    np.random.seed(seed % (2 ** 32))
    torch.manual_seed(seed)


def coz_threads() -> int:
    """$COZ_THREADS as a thread count; 0 when unset (torch's default)."""
    raw = os.environ.get("COZ_THREADS", "0") or "0"
    if not raw.isdigit():
        raise ConfigError(f"COZ_THREADS must be a whole number of threads (0: torch's default), got {raw!r}")
    return int(raw)


def set_threads(n: int | None = None) -> None:
    """Set torch's CPU threads from ``n`` or $COZ_THREADS (tests and benchmarks use one)."""
    import torch
    n = coz_threads() if n is None else n
    if n > 0:
        torch.set_num_threads(n)


def _one_thread() -> None:
    import torch
    torch.set_num_threads(1)


def _worker_init() -> None:
    """A render worker: one torch thread; Ctrl-C is the parent's to handle, and SIGTERM (which the
    parent sends to stop it) ends it at once instead of raising inside its task."""
    import signal
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _one_thread()


def _quiet_cancelled_pool() -> None:
    """The pool's manager thread, finding its workers terminated, marks every pending future broken,
    including those just cancelled, and Python 3.11 prints that thread's ``InvalidStateError`` as a
    traceback. It says nothing the one error line does not, so it is left out."""
    import threading
    from concurrent.futures import InvalidStateError
    previous = threading.excepthook

    def hook(args) -> None:
        if not issubclass(args.exc_type, InvalidStateError):
            previous(args)
    threading.excepthook = hook


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
        ex = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"), initializer=_worker_init)
        try:
            out = list(ex.map(fn, items, chunksize=max(1, len(items) // (8 * workers))))
        except BaseException:  # Ctrl-C, SIGTERM, an error: stop the workers now, not after the queue
            _quiet_cancelled_pool()
            for proc in list(getattr(ex, "_processes", {}).values()):
                proc.terminate()
            ex.shutdown(wait=False, cancel_futures=True)
            raise
        ex.shutdown()
        return out
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return [fn(x) for x in items]
    finally:
        torch.set_num_threads(threads)
