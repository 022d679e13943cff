"""Do the words steer the demo OSEDiff's texture *kind*, even where the texture distance hardly moves?

    python bench/words_steer.py --weights data/weights/osediff-demo
    python bench/words_steer.py --weights build/exp/s1/weights --critic build/train/osediff-demo/ckpt/critic.pt

On the 64 val-split pairs of ``make weights`` (``SRTrainConfig``'s cache in ``--work``), the one-step
model with the pairs' true words, a null prompt and a wrong prompt (``oracle.wrong_prompt``), then:

1. the texture distance (``metrics.truth.texture_distance``, as ``training.sr.evaluate``) split
   into its band-energy part (per band, finest first) and its colour part;
2. how strongly a word reader names each view's own micro-texture words (mean probability over
   those words, and over the other micro-texture words): the demo DAPE tagger (trained on degraded
   single views, independent of the SR training) and, with ``--critic``, the SR stage's own word
   critic (the network its perceptual loss uses: not independent). The truth and the bicubic input
   are read too, as the ceiling and the floor.

One torch thread; about a minute on the 2-core CPU. Results of record: bench/results/prompt_sensitivity_cpu.md.
"""
from __future__ import annotations

import argparse

import numpy as np
import torch


def main() -> None:
    from cozlib.backbones.osediff import _osediff_demo
    from cozlib.imageio import tensor_to_pil
    from cozlib.metrics.truth import texture_stats
    from cozlib.paths import resolve
    from cozlib.prompts.dape import Tagger, demo_folder, make_tagger_net
    from cozlib.training.sr import SRTrainConfig, cached_pairs, prompt_outputs, word_reading
    from cozlib.world.vocab import vocabulary
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", default="data/weights/osediff-demo")
    ap.add_argument("--work", default="build/train/osediff-demo", help="where make weights cached its val pairs")
    ap.add_argument("--critic", default=None, help="the SR stage's critic checkpoint (critic.pt) to read with too")
    ap.add_argument("--level", default="micro", choices=("object", "part", "micro"))
    args = ap.parse_args()
    from cozlib.provenance import print_header
    print_header("cpu")
    torch.set_num_threads(1)
    cfg = SRTrainConfig(work=args.work)
    val = cached_pairs(cfg, "val", cfg.val_pairs, False)
    model = _osediff_demo("cpu", weights=str(resolve(args.weights)))
    tagger = Tagger.load(demo_folder())
    assert tagger.words == vocabulary(), "the DAPE tagger's vocabulary is not ZoomWorld's"
    readers = {"dape": lambda y: tagger.probabilities([tensor_to_pil(a) for a in y])}
    if args.critic:
        net = make_tagger_net(len(tagger.words))
        net.load_state_dict(torch.load(resolve(args.critic), weights_only=True)["state"]["net"])
        net.eval()
        readers["critic"] = lambda y: torch.sigmoid(net(y * 2 - 1))
    tex = {k: [] for k in ("true", "null", "wrong", "truth", "bicubic")}
    with torch.no_grad():
        for i in range(0, len(val["prompt"]), 16):
            hr, lr = val["hr"][i:i + 16].float() / 255, val["lr"][i:i + 16].float() / 255
            prompts = val["prompt"][i:i + 16]
            outs = prompt_outputs(model, lr, prompts) | {"truth": hr, "bicubic": lr}
            for k, y in outs.items():
                for a, b in zip(y, hr):
                    d = (texture_stats(a[None], 4, 2) - texture_stats(b[None], 4, 2)).abs()
                    tex[k].append([float(d.mean()), float(d[:, :-3].sum() / d.numel()), float(d[:, -3:].sum() / d.numel())]
                                  + [float(d[:, 4 * j:4 * j + 4].sum() / d.numel()) for j in range(4)])
    print(f"{len(val['prompt'])} val pairs; texture distance to the truth (lower is better):")
    for k, v in tex.items():
        m = np.mean(v, 0)
        print(f"  {k:8s} total {m[0]:.3f}  band energies {m[1]:.3f} (finest..coarsest {np.round(m[3:], 3).tolist()})  colour {m[2]:.3f}")
    for r, fn in readers.items():
        reading = word_reading(model, val, fn, args.level)
        print(f"{r}: mean probability of each view's own {args.level} words / of the other {args.level} words "
              f"({reading['views']} views with any):")
        for k in tex:
            print(f"  {k:8s} {reading[k]['own']:.3f} / {reading[k]['other']:.3f}")


if __name__ == "__main__":
    main()
