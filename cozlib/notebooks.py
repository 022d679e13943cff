"""Running the numbered notebooks with papermill (``make figures`` and the notebook tests).

Each notebook has one cell tagged ``parameters``; ``params/*.yaml`` holds one section per
notebook (its file stem). Executed copies go to an output folder, never over the source: each is
written to a temp file and renamed when papermill finishes.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from .paths import resolve


def notebook_paths(names: list[str] | None = None) -> list[Path]:
    nbs = sorted(resolve("notebooks").glob("[0-9][0-9]_*.ipynb"))
    if names:
        nbs = [p for p in nbs if p.stem in names or p.stem.split("_", 1)[0] in names]
    return nbs


def load_params(params_file: str | os.PathLike) -> dict[str, dict]:
    import yaml
    data = yaml.safe_load(Path(params_file).read_text()) or {}
    return {k: v for k, v in data.items() if not k.startswith("_")}


def run_notebook(nb: Path, parameters: dict, out_dir: Path) -> Path:
    import papermill as pm
    out_dir.mkdir(parents=True, exist_ok=True)
    final = out_dir / nb.name
    tmp = out_dir / f".{nb.stem}.tmp.ipynb"
    try:
        # no cwd=: papermill would chdir the whole process (a race with kernels side by side); the
        # notebooks resolve every path against the project root (paths.resolve)
        pm.execute_notebook(str(nb), str(tmp), parameters=parameters,
                            kernel_name="python3", progress_bar=False, log_output=False)
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()
    return final


def run_all(params_file: str, out_dir: str, names: list[str] | None = None,
            extra: dict | None = None, workers: int = 1) -> list[tuple[str, float]]:
    """Execute every notebook (or the named ones) with its section of ``params_file``; with
    ``workers`` > 1, that many kernels side by side (the notebooks do not read each other's output)."""
    from concurrent.futures import ThreadPoolExecutor, as_completed
    params = load_params(resolve(params_file))

    def one(nb: Path) -> tuple[str, float]:
        section = dict(params.get(nb.stem, {}))
        section.update(extra or {})
        t0 = time.perf_counter()
        print(f"[notebooks] {nb.name} ...", flush=True)
        run_notebook(nb, section, resolve(out_dir))
        took = time.perf_counter() - t0
        print(f"[notebooks] {nb.name} done in {took:.0f} s", flush=True)
        return nb.name, took
    paths = notebook_paths(names)
    pool = ThreadPoolExecutor(max(1, workers))
    futures = [pool.submit(one, nb) for nb in paths]
    try:
        for f in as_completed(futures):
            f.result()  # the first failure stops the run: notebooks not started yet are cancelled
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return [f.result() for f in futures]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m cozlib.notebooks")
    ap.add_argument("--params", default="params/demo.yaml")
    ap.add_argument("--out", default="build/notebooks")
    ap.add_argument("--workers", type=int, default=1, help="kernels side by side (default 1)")
    ap.add_argument("names", nargs="*", help="notebook stems or numbers (default: all)")
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    run_all(a.params, a.out, a.names or None, workers=a.workers)
    print(f"[notebooks] all done in {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
