"""Project folders: every default path resolves from the repository root, wherever a notebook runs."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence


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


def locate(path: str | os.PathLike) -> Path:
    """A file the user named: as given (relative to the current folder) when it is there, else
    relative to the project root (where ``params/...`` lives)."""
    p = Path(path)
    return p if p.is_absolute() or p.exists() else project_root() / p


def cache_root() -> Path:
    """Chain-result cache: $COZ_CHAIN_CACHE, else build/cache/chains."""
    return Path(os.environ.get("COZ_CHAIN_CACHE") or resolve("build/cache/chains"))


def folder_hash(folder: Path, extra: Sequence[Path] = (), full_below: int = 64 << 20) -> str:
    """A short hash of a weights folder and extra files or folders (the chain's cache key): contents
    of files under 64 MB, name and size of bigger ones (hashing SD3's 10+ GB on every load would take
    minutes)."""
    import hashlib
    extra = [q for e in extra for q in (sorted(x for x in Path(e).rglob("*") if x.is_file()) if Path(e).is_dir() else [Path(e)])]
    h = hashlib.sha256()
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in (".safetensors", ".bin", ".json", ".pkl", ".pt"))
    for p in [*files, *extra]:
        h.update(str(p.relative_to(folder) if p.is_relative_to(folder) else p.name).encode())
        size = p.stat().st_size
        h.update(hashlib.sha256(p.read_bytes()).digest() if size < full_below else str(size).encode())
    return h.hexdigest()[:16]
