"""Where does the texture distance of a chain come from? For the chains a ``prompt_sensitivity.py``
run cached (``WORK/cache``), per prompt source and zoom: the signed bias of the states' band
log-energies against the truth (mean over patches and orientations, finest band first), the texture
distance's energy and colour parts and its total, and an orientation-only distance (each band's
four orientations with their mean removed: the texture's direction without its strength).

    python bench/chain_energy.py build/exp/sd4 build/exp/sd5

A negative bias is a state smoother than the truth. Records: docs/lab/2026-12-05-sr-chain-energy.md.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch


def rows_of(work: Path) -> dict:
    """{(source, zoom): [per-chain feature rows]} for every chain cached under ``work/cache``."""
    from cozlib.chain import ChainCache
    from cozlib.experiments.methods import truth_states
    from cozlib.metrics.truth import texture_stats
    cache, acc = ChainCache(work / "cache"), {}
    for d in sorted((work / "cache").iterdir()):
        res = cache.load(d.name)
        if res is None:
            continue
        src = res.extractor.split(":")[0] if res.config.rec_type == "recursive" else "direct"
        truth = truth_states(res)
        for k in range(1, len(res.states)):
            a, b = texture_stats(res.states[k]), texture_stats(truth[k])  # [16 patches, 5 bands x 4 orientations + 3 colour]
            diff = a - b
            ea, eb = a[:, :20].reshape(16, 5, 4), b[:, :20].reshape(16, 5, 4)
            orient = ((ea - ea.mean(2, keepdim=True)) - (eb - eb.mean(2, keepdim=True))).abs().mean()
            acc.setdefault((src, 4 ** k), []).append(np.r_[diff[:, :20].reshape(16, 5, 4).mean((0, 2)).numpy(),
                                                           diff[:, :20].abs().mean(), diff[:, 20:].abs().mean(),
                                                           diff.abs().mean(), orient])
    return acc


def main() -> None:
    torch.set_num_threads(1)
    for work in sys.argv[1:]:
        for (src, zoom), v in sorted(rows_of(Path(work)).items(), key=lambda t: (t[0][1], t[0][0])):
            m = np.mean(v, 0)
            print(f"{work} {src:7s} {zoom:4d}x n={len(v):2d} energy bias by band {np.round(m[:5], 2)} "
                  f"|energy| {m[5]:.3f} |colour| {m[6]:.3f} texture {m[7]:.3f} orientation-only {m[8]:.3f}")


if __name__ == "__main__":
    main()
