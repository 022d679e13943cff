"""One CoZ step from the *true* previous state: do the words help the single step, apart from what a
chain accumulates?

    python bench/step_from_truth.py --weights data/weights/osediff-demo
    python bench/step_from_truth.py --weights data/weights/osediff-demo --vae-tile 64

For each val-split scene (1000000+i) and each step of the 4x, 4-step, 256 px chain, the demo OSEDiff
super-resolves the centre of the ground-truth previous state with the oracle, null and wrong prompts
(as ``bench/prompt_sensitivity.py``'s chains do from their own states), and the texture distance to
the truth of that step is printed per zoom, with the scene counts of the SR issue's orderings.
``--vae-tile N`` loads the model with ``OSEDiffOptions.vae_tile=N`` (encode and decode in N px tiles).
One torch thread; about two minutes on the 2-core CPU. Results of record: bench/results/prompt_sensitivity_cpu.md.
"""
from __future__ import annotations

import argparse

import numpy as np
import torch


def main() -> None:
    from cozlib import geometry, world
    from cozlib.backbones.osediff import OSEDiffOptions, _osediff_demo
    from cozlib.metrics.truth import texture_distance
    from cozlib.paths import resolve
    from cozlib.prompts.oracle import truth_prompt, wrong_prompt
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", default="data/weights/osediff-demo")
    ap.add_argument("--scenes", type=int, default=18, help="val-split scenes 1000000.. (default 18)")
    ap.add_argument("--vae-tile", type=int, default=None)
    args = ap.parse_args()
    from cozlib.provenance import print_header
    print_header("cpu")
    torch.set_num_threads(1)
    folder = resolve(args.weights)
    options = OSEDiffOptions.from_folder(folder)
    if args.vae_tile:
        options.vae_tile = args.vae_tile
    model = _osediff_demo("cpu", weights=str(folder), options=options)
    wins = geometry.chain_windows(256, 4, 4)
    res = {4 ** i: {"oracle": [], "null": [], "wrong": []} for i in range(1, 5)}
    for seed in range(1_000_000, 1_000_000 + args.scenes):
        truths = [world.render_window(seed, w, 256) for w in wins]
        for i in range(1, 5):
            crop = geometry.zoom_crop(truths[i - 1], 4)
            oracle = truth_prompt(world.window_words(seed, wins[i], 256))
            for name, prompt in (("oracle", oracle), ("null", ""), ("wrong", wrong_prompt(oracle))):
                out = model.upsample([crop], [prompt], 256, seed=42 * 1000 + i)[0]
                res[4 ** i][name].append(texture_distance(out, truths[i]))
    print(f"{args.weights} (vae_tile {options.vae_tile}), {args.scenes} val scenes; texture distance oracle / null / wrong")
    for z, r in res.items():
        o, n, w = (np.array(r[k]) for k in ("oracle", "null", "wrong"))
        print(f"  {z}x {o.mean():.3f} / {n.mean():.3f} / {w.mean():.3f}  oracle < null {(o < n).sum()}/{len(o)}"
              f"  null < wrong {(n < w).sum()}/{len(o)}", flush=True)


if __name__ == "__main__":
    main()
