"""Benchmark: ZoomWorld render speed per view, on one CPU thread (or a GPU with --device cuda).

    .venv/bin/python bench/bench_world.py [--size 128] [--batch 1] [--device cpu] [--threads 1]

Prints the median milliseconds per view at several zooms, and the ratio to a baseline run in the
same process: one octave of value noise over the same pixels (the renderer's unit of work).
Target from the ZoomWorld issue: a 128x128 view in at most 30 ms on one CPU core.
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from cozlib.runtime import set_threads
from cozlib.world import scene, view_window
from cozlib.world.noise import value_noise


def median_ms(fn, repeats: int, device: str) -> float:
    fn()
    times = []
    for _ in range(repeats):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        t = time.perf_counter()
        fn()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--scenes", type=int, default=8)
    a = ap.parse_args()
    from cozlib.provenance import print_header
    print_header(a.device)
    set_threads(a.threads)
    grid = torch.rand(a.batch, a.size, a.size, dtype=torch.float64, device=a.device) * 100
    base = median_ms(lambda: value_noise(grid, grid.flip(-1), 1), a.repeats, a.device)
    print(f"size {a.size}, batch {a.batch}, device {a.device}, {a.threads} thread(s); "
          f"baseline (one noise octave): {base:.2f} ms")
    print(f"{'zoom':>6s} {'ms/view':>9s} {'views/s':>9s} {'x baseline':>11s}")
    rng = np.random.default_rng(0)
    for zoom in (1, 4, 16, 64, 256, 1024):
        per_view = []
        for s in range(a.scenes):
            sc = scene(s)
            o = sc.objects[int(rng.integers(len(sc.objects)))]
            c = (0.5, 0.5) if zoom == 1 else (o.cx, o.cy)
            wins = [view_window((min(max(c[0] + 0.1 * i / zoom, 0), 1), c[1]), zoom) for i in range(a.batch)]
            per_view.append(median_ms(lambda: sc.render(wins, a.size, device=a.device), a.repeats, a.device) / a.batch)
        ms = statistics.median(per_view)
        print(f"{zoom:>6g} {ms:9.1f} {1000 / ms:9.0f} {ms * a.batch / base:11.1f}")


if __name__ == "__main__":
    main()
