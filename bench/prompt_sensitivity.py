"""Do the words choose the texture? Retrain the demo OSEDiff's base and one-step (perceptual) stages
with some ``SRTrainConfig`` settings (from the committed VAE), then measure what the words change.

    python bench/prompt_sensitivity.py --work build/exp/ctx8 --set prompt_context=8
    python bench/prompt_sensitivity.py --work build/exp/recipe --scenes 0:18      # the committed recipe
    python bench/prompt_sensitivity.py --work build/exp/m --weights data/weights/osediff-demo --scenes 0:18
    python bench/prompt_sensitivity.py --work build/exp/s1 --base data/weights/osediff-demo \
        --critic build/train/osediff-demo/ckpt/critic.pt --sr-seed 1 --scenes 0:18   # another SR-stage seed

Prints (1) the base model's flow loss at sigma 0.5 / 0.8 / 0.95 on the val pairs with the true, null
and wrong words (lower = the words help it predict the image); (2) the one-step model on the val
pairs (PSNR, texture distance) with true / null / wrong words; (3) CoZ (256 px, 4 steps) on test
scenes (``--scenes``; notebook 06 uses the first 18) with oracle / null / wrong prompts: the mean
texture distance per zoom, then the per-scene differences oracle - null and null - wrong (with
``--vlm`` also multi-scale VLM - null, and the VLMs' hallucination inside their chains, multi-scale
against single-image) with 95% bootstrap intervals. About 45 min on the 2-core CPU with the recipe.
``--weights FOLDER`` skips the training and measures (3) for a trained folder; ``--base FOLDER``
keeps that folder's VAE and base model (with ``--critic``, a trained critic's checkpoint) and trains
the one-step stage alone. ``--split val`` measures on val-split scenes (1000000+i) instead.
Records: bench/results/prompt_sensitivity_cpu.md and docs/lab/.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch


def flow_losses(pipe, val, sigmas=(0.5, 0.8, 0.95), draws: int = 4) -> dict:
    """The base model's rectified-flow loss at fixed noise levels with the views' true, null and wrong words."""
    from cozlib.prompts.oracle import wrong_prompt
    from cozlib.training.sr import PromptCache, base_latent, flow_noise
    tr, vae = pipe.transformer.eval(), pipe.vae.eval()
    enc = PromptCache(pipe, "cpu", pipe.tokenizer.model_max_length)
    hr = val["hr"].float() / 127.5 - 1
    words = {"true": val["words"], "null": [""] * len(hr), "wrong": [wrong_prompt(p) for p in val["words"]]}  # the base model learnt the views' own
    out = {}
    with torch.no_grad():
        z = base_latent(vae, hr)
        for s in sigmas:
            row = {}
            for name, ps in words.items():
                pe, pooled = enc(ps)
                g, total = torch.Generator().manual_seed(1), 0.0
                for _ in range(draws):
                    _, e, zt, t = flow_noise(z, torch.full((len(z),), s), g)
                    v = tr(hidden_states=zt, timestep=t, encoder_hidden_states=pe, pooled_projections=pooled,
                           return_dict=False)[0]
                    total += float(((v - (e - z)) ** 2).mean()) / draws
                row[name] = round(total, 4)
            out[f"sigma {s}"] = row
    return out


def differences(rows: list[dict], pairs: list[tuple[str, str]], mags=(4, 16, 64, 256)) -> list[dict]:
    """Per zoom, the per-scene texture difference a - b of CoZ with prompt sources a and b, its 95%
    bootstrap interval (``experiments.paired_difference``) and on how many scenes a is ahead."""
    from cozlib import experiments
    out = []
    for a, b in pairs:
        for x in mags:
            va, vb = (experiments.per_scene_values(rows, "texture", f"CoZ {p} (OSEDiff)", x) for p in (a, b))
            keys = sorted(va)
            d, lo, hi, n = experiments.paired_difference([va[k] for k in keys], [vb[k] for k in keys])
            out.append({"zoom": f"{x}x", f"{a} - {b}": round(d, 4), "95%": [round(lo, 4), round(hi, 4)],
                        f"{a} ahead": f"{sum(va[k] < vb[k] for k in keys)}/{n}"})
    return out


def chain_texture(weights: Path, cache_dir: Path, seeds: list[int], vlm: bool = False, device: str = "cpu") -> list[dict]:
    """(3): CoZ with oracle / null / wrong prompts (and with ``vlm`` the multi-scale VLM's) against
    direct SR on the scenes ``seeds``; then the paired differences with their intervals."""
    from cozlib import experiments
    from cozlib.chain import ChainCache, ChainConfig
    os.environ["COZ_OSEDIFF_DEMO"] = str(weights)
    images, sources = experiments.world_inputs(seeds, 256)
    labels = ["Direct SR (OSEDiff)", "CoZ null (OSEDiff)", "CoZ oracle (OSEDiff)", "CoZ wrong (OSEDiff)"]
    labels += ["CoZ VLM (OSEDiff)", "CoZ VLM single (OSEDiff)"] if vlm else []
    methods = experiments.methods_by_label(labels, experiments.world_methods("osediff-demo", None))
    cache = ChainCache(cache_dir)
    results = experiments.run_methods(images, methods, ChainConfig(upscale=4, steps=4, process_size=256, seed=42),
                                      cache, device=device, sources=sources)
    rows = experiments.score_truth(results, cache)
    mags = (4, 16, 64, 256)
    direct = experiments.per_scale_means(rows, "texture")["Direct SR (OSEDiff)"]
    header, orderings = experiments.prompt_orderings(rows, mags)
    table = [{"direct SR": round(direct[x], 3), **{k: round(v, 3) if isinstance(v, float) else v
                                                   for k, v in zip(header, row)}} for x, row in zip(mags, orderings)]
    grids = experiments.per_scale_means(rows, "grid")
    for row, x in zip(table, mags):
        row["GRID direct / null / oracle / wrong"] = [round(grids[l][x], 3) for l in labels[:4]]
    if vlm:
        means = experiments.per_scale_means(rows, "texture")["CoZ VLM (OSEDiff)"]
        for row, x in zip(table, mags):
            row["VLM"] = round(means[x], 3)
    table += differences(rows, [("oracle", "null"), ("null", "wrong")] + ([("VLM", "null"), ("VLM single", "null")] if vlm else []), mags)
    return table + (chain_hallucination(experiments.chain_prompt_scores(results), mags) if vlm else [])


def chain_hallucination(rows: list[dict], mags=(4, 16, 64, 256)) -> list[dict]:
    """Per zoom, the hallucination of the prompts the multi-scale and the single-image VLM gave
    inside their own chains, and multi - single per scene (where both named a word) with its 95%
    bootstrap interval: the prompt issue's first test, read in chains."""
    from cozlib import experiments
    out = []
    for x in mags:
        multi, single = (experiments.per_scene_values(rows, "hallucination", f"CoZ {v} (OSEDiff)", x)
                         for v in ("VLM", "VLM single"))
        keys = sorted(multi)
        d, lo, hi, n = experiments.paired_difference([multi[k] for k in keys], [single.get(k, float("nan")) for k in keys])
        out.append({"zoom": f"{x}x", "hallucination multi": round(float(np.nanmean(list(multi.values()))), 3),
                    "single": round(float(np.nanmean(list(single.values()))), 3),
                    "multi - single": round(d, 4), "95%": [round(lo, 4), round(hi, 4)], "scenes": n})
    return out


def main() -> None:
    from diffusers import StableDiffusion3Pipeline
    from cozlib.config import build
    from cozlib.paths import resolve
    from cozlib.provenance import print_header
    from cozlib.runtime import seed_everything, set_threads
    from cozlib.training.sr import (SRTrainConfig, cached_pairs, evaluate, export, sr_pairs, text_encoders, train_base,
                                    train_sr)
    from cozlib.training.tiny import build_pipeline
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", required=True)
    ap.add_argument("--preset", default=None, help="an SRTrainConfig preset (params/train/sr-NAME.yaml); default the recipe")
    ap.add_argument("--set", nargs="+", action="extend", default=[], metavar="KEY=VALUE", help="SRTrainConfig overrides, as `train sr --set`")
    ap.add_argument("--scenes", default="0:6", help="test scenes 1010000+i for i in START:STOP (default the first 6)")
    ap.add_argument("--weights", default=None, help="only measure the chains of this trained folder")
    ap.add_argument("--split", choices=("test", "val"), default="test", help="the scenes' split (default test)")
    ap.add_argument("--base", default=None, help="a trained folder whose VAE and base model to keep (no base stage)")
    ap.add_argument("--critic", default=None, help="with --base: a trained critic checkpoint (critic.pt) to reuse")
    ap.add_argument("--sr-seed", type=int, default=None, help="the one-step stage's seed (default the config's; same pairs)")
    ap.add_argument("--device", default="cpu", help="with --weights: where the chains run (cpu, cuda or cuda:N; default cpu)")
    ap.add_argument("--vlm", action="store_true", help="with --weights: CoZ with the demo VLMs' prompts too (multi-scale and single-image) and their hallucination in the chains")
    args = ap.parse_args()
    if args.device != "cpu" and not args.weights:
        ap.error("--device applies to --weights (the chains); the training here runs on the CPU")
    set_threads(int(os.environ.get("COZ_THREADS", "2")))
    print_header(args.device)
    lo, hi = (int(x) for x in args.scenes.split(":"))
    first = {"test": 1_010_000, "val": 1_000_000}[args.split]
    seeds = [first + i for i in range(lo, hi)]
    if args.weights:
        for row in chain_texture(resolve(args.weights), Path(args.work) / "cache", seeds, args.vlm, args.device):
            print("[chain]", json.dumps(row), flush=True)
        return
    work = Path(args.work)
    cfg = build(SRTrainConfig, "sr", args.preset, args.set, work=str(work), variants=["perceptual"], device="cpu")
    print("[config]", json.dumps({k: v for k, v in vars(cfg).items() if k not in ("out", "work")}), flush=True)
    seed_everything(cfg.seed)  # torch starts each process from a random seed: the LoRA's start is drawn from this
    pipe = StableDiffusion3Pipeline.from_pretrained(resolve(args.base or "data/weights/osediff-demo"),
                                                    dtype=torch.float32)
    if not args.base:
        pipe.transformer = build_pipeline(cfg.seed).transformer      # a fresh base model; the committed VAE
    if args.critic:
        (work / "ckpt").mkdir(parents=True, exist_ok=True)
        if not (work / "ckpt" / "critic.pt").exists():
            shutil.copy2(resolve(args.critic), work / "ckpt" / "critic.pt")
    for enc in text_encoders(pipe):
        enc.eval().requires_grad_(False)
    data = cached_pairs(cfg, "train", cfg.pairs, True)
    val = cached_pairs(cfg, "val", cfg.val_pairs, False)
    t0 = time.perf_counter()
    stages = [] if args.base else [train_base(pipe, data, cfg, "cpu")]
    print("[flow]", json.dumps(flow_losses(pipe, val)), flush=True)
    sr_cfg = cfg if args.sr_seed is None else replace(cfg, seed=args.sr_seed)
    model, names, st = train_sr(pipe, sr_pairs(cfg), sr_cfg, "cpu", "perceptual", pre_stages=stages, critic_data=data)
    stages.append(st)
    metrics = evaluate(model, val, "cpu")
    print("[val]", json.dumps(metrics), flush=True)
    out = export(pipe, {"perceptual": (model, names)}, cfg, stages, metrics, "cpu", time.perf_counter() - t0, work / "weights")
    for row in chain_texture(out, work / "cache", seeds):
        print("[chain]", json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
