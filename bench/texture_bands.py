"""Where does the texture distance come from? Per band of its a-trous pyramid (finest first: 1-2,
2-4, 4-8, 8-16, 16-32 px) the mean signed log-energy difference, output minus truth (negative =
too smooth), and the mean absolute one, for CoZ with null / oracle / wrong prompts on notebook 06's
18 test scenes at 16x, 64x and 256x; and the mean colour term.

    python bench/texture_bands.py            # reads (or fills) notebook 06's chain cache

Uses the committed demo OSEDiff (or $COZ_OSEDIFF_DEMO). About a minute on the 2-core CPU when
notebook 06 has run. Records: bench/results/prompt_sensitivity_cpu.md and docs/lab/.
"""
from __future__ import annotations

import numpy as np
import torch


def main() -> None:
    from cozlib import experiments, paths
    from cozlib.chain import ChainCache, ChainConfig
    from cozlib.metrics.truth import texture_stats
    from cozlib.provenance import print_header
    torch.set_num_threads(2)
    print_header("cpu")
    images, sources = experiments.world_inputs(list(range(1010000, 1010018)), 256)
    config = ChainConfig(upscale=4, steps=4, process_size=256, seed=42)
    cache = ChainCache(paths.resolve("build/cache/chains"))
    labels = ["CoZ null (OSEDiff)", "CoZ oracle (OSEDiff)", "CoZ wrong (OSEDiff)"]
    catalogue = experiments.world_methods("osediff-demo", "osediff-demo-l2")
    results = experiments.run_methods(images, experiments.methods_by_label(labels, catalogue), config, cache,
                                      device="cpu", sources=sources, progress=False)
    truths = {n: experiments.truth_states(results[(n, labels[0])]) for n in images}  # the same windows for every prompt
    for k in (2, 3, 4):
        print(f"{4 ** k}x: band levels 1-2 / 2-4 / 4-8 / 8-16 / 16-32 px (output - truth, log energy)")
        for label in labels:
            diff = np.stack([(texture_stats(results[(n, label)].states[k]) - texture_stats(truths[n][k])).numpy()
                             for n in images])                          # [scenes, patches, 5 * 4 + 3]
            bands = diff[..., :20].reshape(*diff.shape[:2], 5, 4)        # level, orientation
            print(f"  {label:22s} signed {np.round(bands.mean((0, 1, 3)), 3)}  "
                  f"abs {np.round(np.abs(bands).mean((0, 1, 3)), 3)}  colour abs {np.abs(diff[..., 20:]).mean():.3f}")


if __name__ == "__main__":
    main()
