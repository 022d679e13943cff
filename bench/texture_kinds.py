"""Can the texture distance tell texture kinds apart? Mean ``metrics.truth.texture_distance``
between pure views (one micro-texture covers >= 97% of the view) of the same kind at other places,
and between kinds. A CoZ output can only be rewarded for the right words if the right kind
scores clearly better than a wrong one.

    python bench/texture_kinds.py                # 64x views, 256 px, six per kind, test scenes

Records: bench/results/prompt_sensitivity_cpu.md and docs/lab/.
"""
from __future__ import annotations

import argparse
import itertools

import numpy as np

KINDS = ("hairs", "fibers", "cracks", "speckles", "grains", "cells", "ridges", "crumbs")


def pure_views(zoom: float, size: int, per_kind: int, scenes: int, seed: int = 0) -> dict:
    """{micro word: [PIL views]} from test-split scenes, near object centres (and the ground)."""
    from cozlib import world
    from cozlib.world.datasets import SPLITS
    from cozlib.world.vocab import level_of
    rng = np.random.default_rng(seed)
    lo, _ = SPLITS["test"]
    views: dict[str, list] = {}
    for s in range(lo, lo + scenes):
        sc = world.scene(s)
        for o in sc.objects:
            for _ in range(2):
                c = (o.cx + rng.uniform(-0.2, 0.2) * o.size, o.cy + rng.uniform(-0.2, 0.2) * o.size)
                if not (0.05 < c[0] < 0.95 and 0.05 < c[1] < 0.95):
                    continue
                w = world.view_window(c, zoom)
                top = [k for k, f in world.window_words(s, w, size).items() if f >= 0.97 and level_of(k) == "micro"]
                if top and len(views.setdefault(top[0], [])) < per_kind:
                    views[top[0]].append(world.render_window(s, w, size))
        if all(len(views.get(k, [])) >= per_kind for k in KINDS):
            break
    return {k: v for k, v in views.items() if len(v) >= 3}


def distance_table(views: dict) -> tuple[list[str], np.ndarray]:
    """Mean texture distance between every two kinds (the diagonal: same kind, other places)."""
    from cozlib.metrics.truth import texture_distance
    kinds = sorted(views)
    d = np.zeros((len(kinds), len(kinds)))
    for (i, a), (j, b) in itertools.combinations_with_replacement(list(enumerate(kinds)), 2):
        ds = [texture_distance(x, y) for p, x in enumerate(views[a]) for q, y in enumerate(views[b]) if a != b or p < q]
        d[i, j] = d[j, i] = float(np.mean(ds))
    return kinds, d


def main() -> None:
    from cozlib.runtime import set_threads
    from cozlib.world import RENDER_VERSION
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--zoom", type=float, default=64)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--per-kind", type=int, default=6)
    ap.add_argument("--scenes", type=int, default=400, help="test scenes searched at most")
    a = ap.parse_args()
    from cozlib.provenance import print_header
    print_header("cpu")
    set_threads(1)
    views = pure_views(a.zoom, a.size, a.per_kind, a.scenes)
    kinds, d = distance_table(views)
    print(f"render version {RENDER_VERSION}, {a.zoom:g}x, {a.size} px; views per kind:",
          {k: len(views[k]) for k in kinds})
    print("| | " + " | ".join(kinds) + " |\n|---|" + "---|" * len(kinds))
    for k, row in zip(kinds, d):
        print(f"| {k} | " + " | ".join(f"{v:.3f}" for v in row) + " |")


if __name__ == "__main__":
    main()
