"""Project folders: every default path resolves from the repository root, wherever a notebook runs."""
from __future__ import annotations

import os
from pathlib import Path


def project_root() -> Path:
    """The folder holding pyproject.toml above the current directory (or above this package)."""
    for start in (Path.cwd(), Path(__file__).resolve().parent):
        for d in (start, *start.parents):
            if (d / "pyproject.toml").is_file() and (d / "cozlib").is_dir():
                return d
    return Path.cwd()


def resolve(path: str | os.PathLike) -> Path:
    """A path relative to the project root (absolute paths pass through)."""
    p = Path(path)
    return p if p.is_absolute() else project_root() / p


def cache_root() -> Path:
    """Chain-result cache: $COZ_CHAIN_CACHE, else build/cache/chains."""
    return Path(os.environ.get("COZ_CHAIN_CACHE") or resolve("build/cache/chains"))
