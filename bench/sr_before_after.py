"""Two demo OSEDiff weights folders side by side on held-out ZoomWorld scenes: the truth, then each
folder's CoZ chain with the oracle prompt, at every zoom (256 px states, 4x steps), each panel titled
with its GRID score (``metrics.truth.grid_score``; 0 = no 8 px latent grid) and texture distance.

    python bench/sr_before_after.py BEFORE_FOLDER AFTER_FOLDER --out docs/lab/img/NAME.png

About a minute per folder and scene on the 2-core CPU. Records: docs/lab/.
"""
from __future__ import annotations

import argparse
import os


def main() -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from cozlib import experiments
    from cozlib.chain import ChainConfig
    from cozlib.metrics.truth import grid_score, texture_distance
    from cozlib.runtime import set_threads
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folders", nargs=2, help="the weights folders: before, after")
    ap.add_argument("--scenes", type=int, nargs="+", default=[1010000, 1010003], help="test-split scene seeds")
    ap.add_argument("--labels", nargs=2, default=["before", "after"])
    ap.add_argument("--out", required=True, help="the figure (.png)")
    a = ap.parse_args()
    set_threads(int(os.environ.get("COZ_THREADS", "2")))
    images, sources = experiments.world_inputs(a.scenes, 256)
    cfg = ChainConfig(upscale=4, steps=4, process_size=256, seed=42)
    rows = {}
    for folder, label in zip(a.folders, a.labels):
        os.environ["COZ_OSEDIFF_DEMO"] = folder
        method = experiments.methods_by_label(["CoZ oracle (OSEDiff)"], experiments.world_methods("osediff-demo", None))
        res = experiments.run_methods(images, method, cfg, None, device="cpu", sources=sources, progress=False)
        for (name, _), r in res.items():
            rows[(name, label)] = r
    fig, axes = plt.subplots(3 * len(a.scenes), 4, figsize=(10, 7.6 * len(a.scenes)), squeeze=False)
    for s, name in enumerate(images):
        truth = experiments.truth_states(rows[(name, a.labels[0])])
        for k in range(1, 5):
            panels = [("truth", truth[k])] + [(lab, rows[(name, lab)].states[k]) for lab in a.labels]
            for j, (lab, im) in enumerate(panels):
                ax = axes[3 * s + j][k - 1]
                ax.imshow(im, interpolation="nearest")
                ax.set_xticks([]), ax.set_yticks([])
                extra = "" if lab == "truth" else f", texture {texture_distance(im, truth[k]):.2f}"
                ax.set_title(f"{name} {4 ** k}x, {lab}\nGRID {grid_score(im):.2f}{extra}", fontsize=7)
    fig.tight_layout()
    fig.savefig(a.out, dpi=72)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
