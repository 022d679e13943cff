"""From which zoom on does the coarser view carry what the zoomed view lacks? The ambiguity probe per zoom.

    python bench/ambiguity_zoom.py
    python bench/ambiguity_zoom.py --zooms 16 64 256 1024 2048 --n-train 200 --n-test 60

ZoomWorld's two look-alike pairs (``world.vocab.AMBIGUOUS_PAIRS``: a cat's ``hairs`` and a log's
``fibers``, a strawberry's ``pits`` and a leaf's ``cells``) share their micro-texture; only their
parents' structure tells them apart. ``world.ambiguity`` (notebook 05) trains a small CNN to name
the class of views lying wholly inside the part, at the world's deep ambiguity zoom, from the
zoomed view alone and from the zoomed view plus the 4x coarser one. This runs the same probe at the
zooms a CoZ chain at 256 px reaches, on the zoomed view's 64 px of information (what the chain's
extractor gets, before its upsampling), the coarser view alone beside them. Only ``hairs`` /
``fibers`` by default: the seeds and the blade's cells have no pure views at shallow zooms.

Where the zoomed view alone already tells the pair apart, a multi-scale prompt extractor can gain
nothing on that pair over a single-image one (the prompt-extraction issue's first test at 16x).

Held-out (test-split) scenes; one torch thread; about 40 s per zoom on the 2-core CPU.
Results of record: bench/results/hallucination_cpu.md.
"""
from __future__ import annotations

import argparse
import time


def main() -> None:
    import torch
    from cozlib.world import ambiguity
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--zooms", type=float, nargs="+", default=[16, 64, 256, 2048])
    ap.add_argument("--classes", nargs="+", default=["hairs", "fibers"], choices=list(ambiguity.CLASSES))
    ap.add_argument("--n-train", type=int, default=200, help="training views per class (train split)")
    ap.add_argument("--n-test", type=int, default=60, help="held-out views per class (test split)")
    ap.add_argument("--size", type=int, default=64, help="px of each view (a 256 px chain's zoomed input holds 64)")
    ap.add_argument("--epochs", type=int, default=25)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    from cozlib.provenance import print_header
    print_header("cpu")
    torch.set_num_threads(1)
    classes = tuple(args.classes)
    print(f"probe accuracy on {args.n_test} held-out views per class ({', '.join(classes)}), {args.size} px, "
          f"{args.n_train} training views per class, seed {args.seed}")
    print("\n| zoom | zoomed view | zoomed + coarser view | coarser view alone | s |")
    print("|---|---|---|---|---|")
    for zoom in args.zooms:
        t = time.perf_counter()
        res = ambiguity.run(args.n_train, args.n_test, args.size, args.epochs, args.seed, zoom, classes,
                            coarse_alone=True)
        print(f"| {zoom:g}x | {res['zoomed'].accuracy:.3f} | {res['zoomed+coarse'].accuracy:.3f} | "
              f"{res['coarse'].accuracy:.3f} | {time.perf_counter() - t:.0f} |", flush=True)


if __name__ == "__main__":
    main()
