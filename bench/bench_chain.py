"""Benchmark: one zoom step per backbone, as a ratio to the bicubic baseline run in the same process.

    .venv/bin/python bench/bench_chain.py [--process-size 512] [--repeats 3] [--threads 1]

Prints the median seconds of one SR step (crop -> backbone -> state) and the ratio to bicubic.
Speed targets live here, never in timed tests.
"""
from __future__ import annotations

import argparse
import statistics
import time

from cozlib import data, geometry
from cozlib.backbones import make_backbone
from cozlib.runtime import set_threads


def time_step(backbone, x0, size: int, repeats: int) -> float:
    crop = geometry.zoom_crop(x0, 4)
    inp = crop if backbone.scale is None else geometry.resize(crop, size // backbone.scale, "bicubic")
    backbone.upsample([inp], [""], size)  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        backbone.upsample([inp], [""], size)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--process-size", type=int, default=512)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    a = ap.parse_args()
    from cozlib.provenance import print_header
    print_header(a.device)
    set_threads(a.threads)
    x0 = geometry.resize_and_center_crop(data.photo("astronaut"), a.process_size)
    base = time_step(make_backbone("bicubic"), x0, a.process_size, a.repeats)
    print(f"process_size {a.process_size}, {a.threads} thread(s), device {a.device}")
    print(f"{'backbone':12s} {'s/step':>10s} {'x bicubic':>10s}")
    for name in ("bicubic", "nearest", "realesrgan"):
        t = time_step(make_backbone(name, device=a.device), x0, a.process_size, a.repeats)
        print(f"{name:12s} {t:10.4f} {t / base:10.1f}")


if __name__ == "__main__":
    main()
