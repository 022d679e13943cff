"""Does the multi-scale VLM hallucinate less than the single-image one? A larger, paired measurement.

    python bench/hallucination.py --n-per-zoom 400 --view-seed 1

Notebook 02's extractor table reads 100 held-out views per zoom (``experiments.extractor_views``,
view seed 0); a hallucination rate near 0.08 measured on 100 views has a standard error of about
0.02, the size of the gaps between the two extractors there. This reads more views, from another
view seed (a fresh held-out sample), and compares the two extractors on the same views: per zoom, the
mean hallucination (1 - precision, views where the prompt names a vocabulary word) of each, and
the mean of the per-view difference multi-scale minus single-image with a 95% bootstrap interval
(views where both name a word). Then where each extractor's false words come from: per vocabulary
level, whether the word is true of the coarser view's window (seen in the context image but not
in the zoomed view: a context leak) or not. Committed weights (``data/weights/vlm-demo``), one torch thread.
Results of record: bench/results/hallucination_cpu.md.
"""
from __future__ import annotations

import argparse
import math
import time
from collections import Counter

import numpy as np


def paired_difference(a: list[float], b: list[float], draws: int = 4000, seed: int = 0) -> tuple[float, float, float, int]:
    """Mean of a - b over the pairs where both are numbers, and its 95% bootstrap interval."""
    d = np.array([x - y for x, y in zip(a, b) if not (math.isnan(x) or math.isnan(y))])
    rng = np.random.default_rng(seed)
    boot = d[rng.integers(0, len(d), (draws, len(d)))].mean(1)
    return float(d.mean()), float(np.quantile(boot, 0.025)), float(np.quantile(boot, 0.975)), len(d)


def false_words(prompts: list[str], views: list[dict]) -> tuple[int, Counter, Counter]:
    """(vocabulary words named, false ones per level, false ones true of the coarser view's window
    per level) over views from ``experiments.extractor_views`` (the coarser view: zoom / 4)."""
    from cozlib import world
    from cozlib.metrics.truth import prompt_words
    from cozlib.world.vocab import level_of, vocabulary
    vocab = vocabulary()
    named, false, leak = 0, Counter(), Counter()
    for prompt, v in zip(prompts, views):
        pred, _ = prompt_words(prompt, vocab)
        named += len(pred)
        l, t, r, b = v["window"]
        coarse = world.window_words(v["seed"], world.view_window(((l + r) / 2, (t + b) / 2), v["zoom"] / 4), 256)
        for w in pred - set(v["words"]):
            false[level_of(w)] += 1
            leak[level_of(w)] += w in coarse
    return named, false, leak


def main() -> None:
    import torch
    from cozlib import experiments
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-per-zoom", type=int, default=400)
    ap.add_argument("--zooms", type=float, nargs="+", default=[4, 16, 64, 256])
    ap.add_argument("--view-seed", type=int, default=1, help="experiments.extractor_views' seed (notebook 02 uses 0)")
    ap.add_argument("--process-size", type=int, default=256)
    args = ap.parse_args()
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    views = experiments.extractor_views(args.n_per_zoom, args.zooms, args.process_size, seed=args.view_seed)
    rows = experiments.extractor_scores(views, ["vlm-single", "vlm"], device="cpu", progress=False)
    by = {(r["extractor"], i % len(views)): r for i, r in enumerate(rows)}
    print(f"{len(views)} test-split views (view seed {args.view_seed}), {time.perf_counter() - t0:.0f} s")
    print("| zoom | n | single | multi-scale | multi - single (95% interval, paired views) | recall single / multi |")
    print("|---|---|---|---|---|---|")
    for z in args.zooms:
        idx = [i for i, v in enumerate(views) if v["zoom"] == z]
        single = [by[("vlm-single", i)]["hallucination"] for i in idx]
        multi = [by[("vlm", i)]["hallucination"] for i in idx]
        rec = [np.mean([by[(e, i)]["recall"] for i in idx]) for e in ("vlm-single", "vlm")]
        mean, lo, hi, n = paired_difference(multi, single)
        print(f"| {z:g}x | {len(idx)} | {np.nanmean(single):.3f} | {np.nanmean(multi):.3f} | "
              f"{mean:+.3f} ({lo:+.3f} .. {hi:+.3f}; {n} views) | {rec[0]:.3f} / {rec[1]:.3f} |")
    print("\nWords named per zoom: all / false (object, part, micro) / false but true of the coarser view's window (object, part, micro)")
    for z in args.zooms:
        idx = [i for i, v in enumerate(views) if v["zoom"] == z]
        cells = []
        for e in ("vlm-single", "vlm"):
            named, false, leak = false_words([by[(e, i)]["prompt"] for i in idx], [views[i] for i in idx])
            cells.append(f"{e}: {named} / {sum(false.values())} ({false['object']}, {false['part']}, {false['micro']}) / "
                         f"{sum(leak.values())} ({leak['object']}, {leak['part']}, {leak['micro']})")
        print(f"  {z:g}x  " + ";  ".join(cells))


if __name__ == "__main__":
    main()
