"""Saving results: one place writes every figure and table, with a manifest saying how each was made
(``provenance``). The figures themselves are drawn by ``cozlib.plots``.

``save_figure`` writes PNG + PDF, ``save_table`` writes CSV + Markdown, and both record in
``<figures_dir>/MANIFEST.json``: the seed and parameters, the git commit, the package versions,
the notebook that made it and when. Writes are atomic (temp file, then rename).
"""
from __future__ import annotations

import csv
import datetime as _dt
import io
import json
from pathlib import Path
from typing import Any, Sequence

from PIL import Image

from .imageio import save_json
from .outputs import atomic_write_bytes
from .provenance import git_commit, package_versions


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
        atomic_write_bytes(p, buf.getvalue())
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
        atomic_write_bytes(p, buf.getvalue())
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
               params: dict[str, Any], notebook: str | None = None, note: str = "", verdict: str = "") -> list[Path]:
    """Write ``name.csv`` and ``name.md`` (with an optional note under the table, then the result's
    computed verdict, ``experiments.verdicts``: docs/RESULTS.md shows it with the table) and record them."""
    figures_dir = Path(figures_dir)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows([["" if v is None else (f"{v:.4f}" if isinstance(v, float) else v) for v in r] for r in rows])
    csv_path, md_path = figures_dir / f"{name}.csv", figures_dir / f"{name}.md"
    atomic_write_bytes(csv_path, buf.getvalue().encode())
    md = markdown_table(header, rows) + (f"\n{note}\n" if note else "") + (f"\n{verdict}\n" if verdict else "")
    atomic_write_bytes(md_path, md.encode())
    _record(figures_dir, [csv_path, md_path], params, notebook)
    return [csv_path, md_path]
