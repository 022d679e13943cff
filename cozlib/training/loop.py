"""One resumable training loop for every stage: checkpoints, progress lines, loss history.

A stage keeps its modules and optimizers in one checkpoint file (written to a temp file, then
renamed), every ``ckpt_every`` steps and at the end. Run again after an interruption, it loads the
checkpoint and goes on from the step it holds; a finished stage just loads its final state. A
checkpoint marked with another ZoomWorld (``world.RENDER_VERSION``) is not resumed: the stage starts
over (files from before the mark are resumed). Batches
come from ``batch_fn(step)``, which must be a function of the step (seeded), so a resumed run sees
the batches an uninterrupted one would.
"""
from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable


def autocast(device: str):
    """bf16 autocast on CUDA, nothing on the CPU (CPU bf16 is slower here and changes results)."""
    import torch
    if str(device).startswith("cuda"):
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def cosine_lr(step: int, steps: int, base: float, warmup: int = 50) -> float:
    """Linear warm-up, then cosine decay to 10% of ``base``."""
    if step < warmup:
        return base * (step + 1) / warmup
    t = (step - warmup) / max(1, steps - warmup)
    return base * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(t, 1.0))))


@dataclass
class Stage:
    """A named training stage writing ``{ckpt_dir}/{name}.pt``."""

    name: str
    steps: int
    ckpt_dir: Path
    modules: dict = field(default_factory=dict)      # name -> nn.Module or Optimizer (anything with state_dict)
    ckpt_every: int = 200
    log_every: int = 25
    extra: dict = field(default_factory=dict)        # small picklable state kept with the checkpoint
    history: list = field(default_factory=list)      # [{"step": s, loss: value, ...}]
    wall_s: float = 0.0

    @staticmethod
    def identity() -> dict:
        """What a checkpoint must match to be resumed: the world its data was rendered from."""
        from ..world import RENDER_VERSION
        return {"render_version": RENDER_VERSION}

    @property
    def path(self) -> Path:
        return Path(self.ckpt_dir) / f"{self.name}.pt"

    def _save(self, step: int) -> None:
        import torch
        from ..imageio import save_torch
        save_torch({"step": step, "state": {k: m.state_dict() for k, m in self.modules.items()},
                    "extra": self.extra, "history": self.history, "wall_s": self.wall_s,
                    "rng": torch.get_rng_state(), "identity": self.identity()}, self.path)

    def _checkpoint(self, log: Callable[[str], None] | None = None) -> dict | None:
        """This stage's checkpoint, or None when there is none or it holds another world's run."""
        import torch
        if not self.path.is_file():
            return None
        try:
            ck = torch.load(self.path, map_location="cpu", weights_only=True)  # tensors and plain values only
        except Exception as e:  # noqa: BLE001  (an unreadable checkpoint is not trusted: the stage starts over)
            if log:
                log(f"[{self.name}] {self.path} cannot be read ({type(e).__name__}): starting over")
            return None
        if "identity" in ck and ck["identity"] != self.identity():  # older files have none: resumed
            if log:
                log(f"[{self.name}] {self.path} was trained on other data ({ck['identity']}, now "
                    f"{self.identity()}): starting over")
            return None
        return ck

    def finished(self) -> bool:
        """Whether this stage's checkpoint holds all its steps (of this world): ``run`` would only load it."""
        ck = self._checkpoint()
        return ck is not None and int(ck["step"]) >= self.steps

    def _load(self, log: Callable[[str], None] = print) -> int:
        import torch
        ck = self._checkpoint(log)
        if ck is None:
            return 0
        for k, m in self.modules.items():
            m.load_state_dict(ck["state"][k])
        self.extra.update(ck["extra"])
        self.history, self.wall_s = ck["history"], ck["wall_s"]
        torch.set_rng_state(ck["rng"])
        return int(ck["step"])

    def run(self, step_fn: Callable[[int], dict], log: Callable[[str], None] = print) -> "Stage":
        """Call ``step_fn(step)`` (returns {name: float}) for the remaining steps; resumable."""
        start = self._load(log)
        if start >= self.steps:
            log(f"[{self.name}] done ({self.steps} steps, {self.wall_s:.0f} s): loaded its checkpoint")
            return self
        if start:
            log(f"[{self.name}] resuming at step {start} of {self.steps}")
        t0, t_log, since = time.perf_counter(), time.perf_counter(), 0
        wall0 = self.wall_s
        acc: dict[str, float] = {}
        for step in range(start, self.steps):
            out = step_fn(step)
            since += 1
            for k, v in out.items():
                acc[k] = acc.get(k, 0.0) + float(v)
            if (step + 1) % self.log_every == 0 or step + 1 == self.steps:
                now = time.perf_counter()
                row = {"step": step + 1, **{k: v / since for k, v in acc.items()}}
                self.history.append(row)
                rate = since / (now - t_log)
                eta = (self.steps - step - 1) / max(rate, 1e-9)
                log(f"[{self.name}] {step + 1}/{self.steps} " + " ".join(f"{k} {v:.4f}" for k, v in row.items() if k != "step")
                    + f"  {rate:.2f} it/s, eta {eta / 60:.1f} min")
                acc, since, t_log = {}, 0, now
            if (step + 1) % self.ckpt_every == 0 or step + 1 == self.steps:
                self.wall_s = wall0 + time.perf_counter() - t0
                self._save(step + 1)
        return self
