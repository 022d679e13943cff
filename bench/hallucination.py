"""Does the multi-scale VLM hallucinate less than the single-image one? A larger, paired measurement.

    python bench/hallucination.py --n-per-zoom 400 --view-seed 1
    python bench/hallucination.py --n-per-zoom 400 --view-seed 1 2     # two samples pooled: 800 views per zoom
    python bench/hallucination.py --extractors vlm vlm-grpo     # the GRPO adapter too

Notebook 02's extractor table reads 100 held-out views per zoom (``experiments.extractor_views``,
view seed 0); a hallucination rate near 0.08 measured on 100 views has a standard error of about
0.02, the size of the gaps between the two extractors there. This reads more views, from another
view seed (a fresh held-out sample), and compares the two extractors on the same views: per zoom, the
mean hallucination (1 - precision, views where the prompt names a vocabulary word) of each, and
the mean of the per-view difference multi-scale minus single-image with a 95% bootstrap interval
(views where both name a word; ``experiments.paired_difference``, as notebook 02's paired table).
Then where each extractor's false words come from: per vocabulary
level, whether the word is true of the coarser view's window (seen in the context image but not
in the zoomed view: a context leak) or not. Committed weights (``data/weights/vlm-demo``), one torch thread.
``--critic`` also scores every prompt with the committed demo critic (R_critic, GRPO's reward, on
the deployed greedy prompts) and compares its mean per zoom, paired per view: does GRPO raise the
reward it was trained on, on views it never saw? Results of record: bench/results/hallucination_cpu.md; ``--record FILE`` also writes the paired tables
as JSON (``experiments.bench_record`` reads it: notebooks 02 and 03 show its verdicts beside their
own smaller samples).
"""
from __future__ import annotations

import argparse
import time
from collections import Counter



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


def write_record(args, rows: list[dict], n_views: int, seconds: float) -> None:
    """The paired hallucination and recall tables of every ordered pair of the extractors, as JSON
    ({"a - b": {header, rows, recall}}: a's per-view value minus b's)."""
    from cozlib import experiments
    from cozlib.imageio import save_json
    from cozlib.provenance import header
    names = [args.against] + args.extractors
    pairs = {}
    for a in names:
        for b in (n for n in names if n != a):
            cols, table = experiments.paired_extractors(rows, a, b)
            _, recall = experiments.paired_extractors(rows, a, b, metric="recall")
            pairs[f"{a} - {b}"] = {"header": cols, "rows": table, "recall": recall}
            if "critic" in rows[0]:
                pairs[f"{a} - {b}"]["critic"] = experiments.paired_extractors(rows, a, b, metric="critic")[1]
    save_json({"bench": "bench/hallucination.py", **header("cpu"), "view_seeds": args.view_seed,
               "views_per_zoom": n_views, "process_size": args.process_size, "paired": pairs,
               "seconds": round(seconds, 1)}, args.record)


def main() -> None:
    import torch
    from cozlib import experiments
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-per-zoom", type=int, default=400)
    ap.add_argument("--zooms", type=float, nargs="+", default=[4, 16, 64, 256])
    ap.add_argument("--view-seed", type=int, nargs="+", default=[1],
                    help="experiments.extractor_views' seed(s) (notebook 02 uses 0); several pool their views")
    ap.add_argument("--process-size", type=int, default=256)
    ap.add_argument("--against", default="vlm-single", help="the extractor the others are compared with")
    ap.add_argument("--extractors", nargs="+", default=["vlm"], help="compared with --against (e.g. vlm vlm-grpo)")
    ap.add_argument("--critic", action="store_true",
                    help="also score every prompt with the committed demo critic (R_critic, paired per view)")
    ap.add_argument("--record", help="also write the paired tables of every two extractors as JSON to this file "
                                     "(bench/results/hallucination_cpu.json is the record notebooks read)")
    args = ap.parse_args()
    from cozlib.provenance import print_header
    print_header("cpu")
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    views = [v for seed in args.view_seed
             for v in experiments.extractor_views(args.n_per_zoom, args.zooms, args.process_size, seed=seed)]
    n_views = args.n_per_zoom * len(args.view_seed)
    names = [args.against] + args.extractors
    rows = experiments.extractor_scores(views, names, device="cpu", progress=False)
    if args.critic:
        from cozlib.grpo.critic import load_critic
        experiments.critic_scores(rows, views, load_critic(device="cpu"))
    by = {(r["extractor"], i % len(views)): r for i, r in enumerate(rows)}
    seconds = time.perf_counter() - t0
    print(f"{len(views)} test-split views (view seeds {args.view_seed}), {seconds:.0f} s")
    if args.record:
        write_record(args, rows, n_views, seconds)
    for e in args.extractors:
        print(f"\n| zoom | n | {args.against} | {e} | {e} - {args.against} (95% interval, paired views) | recall {args.against} / {e} |")
        print("|---|---|---|---|---|---|")
        _, table = experiments.paired_extractors(rows, e, args.against)
        _, recall = experiments.paired_extractors(rows, e, args.against, metric="recall")
        for (zoom, base, mine, mean, lo, hi, n), rec in zip(table, recall):
            print(f"| {zoom} | {n_views} | {base:.3f} | {mine:.3f} | "
                  f"{mean:+.3f} ({lo:+.3f} .. {hi:+.3f}; {n} views) | {rec[1]:.3f} / {rec[2]:.3f} |")
        if args.critic:
            print(f"\n| zoom | R_critic {args.against} | R_critic {e} | {e} - {args.against} (95% interval, paired views) |")
            print("|---|---|---|---|")
            for zoom, base, mine, mean, lo, hi, n in experiments.paired_extractors(rows, e, args.against, "critic")[1]:
                print(f"| {zoom} | {base:.3f} | {mine:.3f} | {mean:+.3f} ({lo:+.3f} .. {hi:+.3f}; {n} views) |")
    print("\nWords named per zoom: all / false (object, part, micro) / false but true of the coarser view's window (object, part, micro)")
    for z in args.zooms:
        idx = [i for i, v in enumerate(views) if v["zoom"] == z]
        cells = []
        for e in names:
            named, false, leak = false_words([by[(e, i)]["prompt"] for i in idx], [views[i] for i in idx])
            cells.append(f"{e}: {named} / {sum(false.values())} ({false['object']}, {false['part']}, {false['micro']}) / "
                         f"{sum(leak.values())} ({leak['object']}, {leak['part']}, {leak['micro']})")
        print(f"  {z:g}x  " + ";  ".join(cells))


if __name__ == "__main__":
    main()
