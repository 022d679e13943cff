"""Does the demo OSEDiff invent texture, or stamp a pattern on its latent grid?

    python bench/grid_artifact.py data/weights/osediff-demo data/weights/osediff-demo:l2 build/exp/x/weights

For each weights folder (``FOLDER[:variant]``), one SR step from the *true* previous state of a CoZ
chain (256 px, 4x; ZoomWorld val scenes, steps to 16x and 64x), with the oracle prompt and the null
prompt, then ``metrics.truth.grid_score`` of the output:
the mean excess (over 2x) of the log spectral power at the harmonics of an 8 px grid (VAE factor
4 x SD3's patch 2; its harmonics include the 4 px latent pixel) over the 24 bins around each. 0 = a smooth spectrum there; the truth and the bicubic input are measured as the floor. The texture
distance to the truth is printed beside it. ``--base-samples N``: also the base text-to-image model of
the first folder (no LoRA), sampled in 28 Euler steps at 64 px for N val-pair prompts (guidance 1),
against those views' truths: is the grid the base model's or the one-step use's?
One torch thread; about a minute per folder on the 2-core CPU.
Records: bench/results/prompt_sensitivity_cpu.md and docs/lab/.
"""
from __future__ import annotations

import argparse

import numpy as np
import torch


def main() -> None:
    from cozlib import geometry, world
    from cozlib.backbones.osediff import _osediff_demo
    from cozlib.metrics.truth import grid_score as grid
    from cozlib.metrics.truth import texture_distance
    from cozlib.prompts.oracle import truth_prompt
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folders", nargs="+", help="weights folders, FOLDER or FOLDER:variant (perceptual, l2)")
    ap.add_argument("--scenes", type=int, default=6, help="val-split scenes 1000000.. (default 6)")
    ap.add_argument("--base-samples", type=int, default=0, help="also sample the base model for this many val prompts")
    args = ap.parse_args()
    from cozlib.provenance import print_header
    print_header("cpu")
    torch.set_num_threads(1)
    if args.base_samples:
        base_samples(args.folders[0].partition(":")[0], args.base_samples)
    wins = geometry.chain_windows(256, 4, 4)
    views = []
    for seed in range(1_000_000, 1_000_000 + args.scenes):
        for i in (2, 3):
            prev, truth = world.render_window(seed, wins[i - 1], 256), world.render_window(seed, wins[i], 256)
            views.append((geometry.zoom_crop(prev, 4), truth, truth_prompt(world.window_words(seed, wins[i], 256))))
    print(f"{len(views)} views; grid loss (0 = no grid) | texture distance to the truth")
    print(f"  truth    grid {np.mean([grid(t) for _, t, _ in views]):.3f}")
    print(f"  bicubic  grid {np.mean([grid(geometry.resize(c, 256, 'bicubic')) for c, _, _ in views]):.3f}  "
          f"texture {np.mean([texture_distance(geometry.resize(c, 256, 'bicubic'), t) for c, t, _ in views]):.3f}")
    for spec in args.folders:
        folder, _, variant = spec.partition(":")
        model = _osediff_demo("cpu", weights=folder, variant=variant or "perceptual")
        for name in ("oracle", "null"):
            outs = [model.upsample([c], [p if name == "oracle" else ""], 256)[0] for c, _, p in views]
            print(f"  {spec} {name:6s} grid {np.mean([grid(o) for o in outs]):.3f}  "
                  f"texture {np.mean([texture_distance(o, t) for o, (_, t, _) in zip(outs, views)]):.3f}", flush=True)


def base_samples(folder: str, n: int) -> None:
    """The mean grid peak (``metrics.truth.grid_peaks``) of the base model's own multi-step samples and
    of the truths of their prompts."""
    from diffusers import StableDiffusion3Pipeline
    from cozlib.imageio import pil_to_tensor
    from cozlib.paths import resolve
    from cozlib.metrics.truth import grid_peaks
    from cozlib.training.sr import SRTrainConfig, cached_pairs
    pipe = StableDiffusion3Pipeline.from_pretrained(resolve(folder), dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    val = cached_pairs(SRTrainConfig(), "val", max(n, SRTrainConfig.val_pairs), False)
    images = pipe(prompt=val["words"][:n], height=64, width=64, num_inference_steps=28, guidance_scale=1.0,
                  generator=torch.Generator().manual_seed(0), max_sequence_length=pipe.tokenizer.model_max_length).images
    samples = torch.cat([pil_to_tensor(im) for im in images]) * 2 - 1
    truth = val["hr"][:n].float() / 127.5 - 1
    print(f"base model of {folder}, {n} samples at 64 px: grid {float(grid_peaks(samples).mean()):.3f} "
          f"(their prompts' truth views {float(grid_peaks(truth).mean()):.3f})", flush=True)


if __name__ == "__main__":
    main()
