"""Command line: ``python -m cozlib {zoom, metrics, list, setup}``.

Argument names follow the official ``inference_coz.py`` (rec_type, upscale, process_size,
prompt_type, align_method); ``--steps`` is its ``--rec_num``. User errors print one line and exit 2.
"""
from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

from .errors import CozError


def _build_parser() -> argparse.ArgumentParser:
    from .chain import REC_TYPES
    p = argparse.ArgumentParser(prog="python -m cozlib", description="Chain-of-Zoom companion tools.")
    sub = p.add_subparsers(dest="command", required=True)

    z = sub.add_parser("zoom", help="run a zoom chain on images",
                       description="Zoom into the center of each INPUT (a file, a folder, or photo:NAME).")
    z.add_argument("inputs", nargs="+", metavar="INPUT", help="image file, folder, photo:NAME or world:SEED")
    z.add_argument("--out", required=True, help="output folder; writes OUT/<stem>/scale{k}.png, prompts.json, chain.png")
    z.add_argument("--rec-type", default="recursive_multiscale", choices=REC_TYPES)
    z.add_argument("--backbone", default="realesrgan", help="SR backbone (see `list`)")
    z.add_argument("--prompt", default="null",
                   help="prompt extractor: null, fixed:TEXT, vlm, vlm-single, dape, oracle, wrong (see `list`)")
    z.add_argument("--user-prompt", default="", help='appended as "{prompt}, {user_prompt},"')
    z.add_argument("--steps", type=int, default=4, help="number of zoom steps (official --rec_num)")
    z.add_argument("--upscale", type=int, default=4)
    z.add_argument("--process-size", type=int, default=512)
    z.add_argument("--align-method", default="nofix", choices=("nofix", "adain", "wavelet"))
    z.add_argument("--seed", type=int, default=42)
    z.add_argument("--device", default="auto")
    z.add_argument("--weights", default=None,
                   help="weights folder of an OSEDiff backbone (osediff-sd3: the SD3 diffusers folder; "
                        "osediff-demo: default data/weights/osediff-demo)")
    z.add_argument("--lora-dir", default=None, help="osediff-sd3: folder holding model_20001.pkl and vae_encoder_20001.pt")
    z.add_argument("--dtype", default=None, choices=("float32", "bfloat16"), help="OSEDiff backbones' precision")
    z.add_argument("--drop-t5", action="store_true", help="OSEDiff: leave T5 out (zeros in its place; saves ~9 GB)")
    z.add_argument("--offload", action="store_true", help="OSEDiff: keep models on the CPU until each runs (small GPUs)")
    z.add_argument("--vlm", default=None,
                   help="--prompt vlm/vlm-single: a Qwen2.5-VL folder or cached repo id (default: the demo VLM, "
                        "data/weights/vlm-demo; also COZ_VLM)")
    z.add_argument("--vlm-lora", default=None,
                   help="--prompt vlm/vlm-single with --vlm: a LoRA adapter folder (e.g. ckpt/VLM_LoRA/checkpoint-10000)")
    z.add_argument("--max-new-tokens", type=int, default=32, help="--prompt vlm/vlm-single: generation length")
    z.add_argument("--full-image", action="store_true",
                   help="full-image CoZ: each step super-resolves the whole image in overlapping tiles "
                        "(Gaussian blending, a prompt per tile); states grow by --upscale each step")
    z.add_argument("--tile-overlap", type=int, default=None, help="--full-image: tile overlap in px (default tile/4)")
    z.add_argument("--cache", default=None, help="chain cache folder (default: none for the CLI)")
    z.add_argument("--convert", action="store_true",
                   help="accept grayscale, palette, RGBA and 16-bit inputs by converting them to 8-bit RGB")

    m = sub.add_parser("metrics", help="score images with pyiqa; prints CSV path,metric,value")
    m.add_argument("dirs", nargs="+", metavar="DIR", help="image files or folders (searched recursively)")
    m.add_argument("--metrics", default="niqe,piqe", help="comma list; psnr,ssim need --reference")
    m.add_argument("--reference", default=None, help="folder with reference images at the same relative paths")
    m.add_argument("--device", default="cpu")

    w = sub.add_parser("world", help="ZoomWorld: render views, their true words, the vocabulary, data sets")
    wsub = w.add_subparsers(dest="world_command", required=True)
    wr = wsub.add_parser("render", help="render one view to a PNG")
    ww = wsub.add_parser("words", help="print the true words of a view as JSON {word: area fraction}")
    for q in (wr, ww):
        q.add_argument("--seed", type=int, required=True)
        q.add_argument("--center", type=float, nargs=2, metavar=("X", "Y"), default=(0.5, 0.5),
                       help="view center in the base view's unit coordinates")
        q.add_argument("--zoom", type=float, default=1.0, help="magnification relative to the base view")
    wr.add_argument("--size", type=int, default=512)
    wr.add_argument("--out", required=True)
    wr.add_argument("--device", default="cpu")
    ww.add_argument("--size", type=int, default=512, help="the pixel size the view is seen at (word visibility)")
    wsub.add_parser("vocab", help="print the vocabulary as a JSON list")
    wd = wsub.add_parser("dataset", help="write (low-res, high-res, coarser view, words) samples")
    wd.add_argument("--split", choices=("train", "val", "test"), required=True)
    wd.add_argument("--n", type=int, required=True, help="number of samples")
    wd.add_argument("--zoom", type=float, nargs="+", default=[4, 16, 64, 256], help="zoom(s) of the high-res view")
    wd.add_argument("--size", type=int, default=128)
    wd.add_argument("--upscale", type=int, default=4)
    wd.add_argument("--out", required=True)

    t = sub.add_parser("train", help="train a demo-scale model (writes weights with a manifest)",
                       description="Train a demo-scale model: settings from a preset file (params/train/WHAT-PRESET.yaml) "
                                   "and --set overrides; `train WHAT --help` lists every setting.")
    tsub = t.add_subparsers(dest="what", required=True)
    for what, (summary, cls) in _trainers().items():
        q = tsub.add_parser(what, help=summary, description=summary, epilog=_config_help(cls),
                            formatter_class=argparse.RawDescriptionHelpFormatter)
        q.add_argument("--preset", default="auto",
                       help="a preset name (params/train/%s-NAME.yaml: %s) or a YAML file; auto = cuda when CUDA is "
                            "visible and such a preset exists, else cpu" % (what, ", ".join(_presets(what))))
        q.add_argument("--set", dest="overrides", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                       help="override settings (values read as YAML), e.g. --set steps_sr=100 device=cpu")
        if what == "sr":
            q.add_argument("--minutes", type=float, default=None,
                           help="fit the step counts to this many minutes of training (measured on this device first)")

    sub.add_parser("list", help="backbones, prompt extractors and metrics, and what each missing one needs")
    sub.add_parser("setup", help="provision offline files pyiqa needs (NIQE parameters, calibration set)")
    return p


def _cmd_zoom(args) -> int:
    from tqdm import tqdm
    from .backbones import make_backbone
    from .chain import ChainCache, ChainConfig, run_chain, run_full_image
    from .data import resolve_input
    from .errors import ConfigError
    from .plots import chain_strip
    from .imageio import atomic_dir, save_json
    from .prompts import make_prompt_extractor

    config = ChainConfig(rec_type=args.rec_type, upscale=args.upscale, steps=args.steps,
                         process_size=args.process_size, align_method=args.align_method,
                         user_prompt=args.user_prompt, seed=args.seed).validate()
    extractor = make_prompt_extractor(args.prompt, device=args.device, vlm=args.vlm, vlm_lora=args.vlm_lora,
                                      max_new_tokens=args.max_new_tokens)
    inputs = [item for spec in args.inputs
              for item in resolve_input(spec, convert=args.convert, process_size=config.process_size)]
    stems = [item.stem for item in inputs]
    if len(set(stems)) != len(stems):
        raise ConfigError(f"two inputs share an output folder name: {sorted({s for s in stems if stems.count(s) > 1})}; "
                          f"rename one or run them separately")
    options = {k: v for k, v in (("weights", args.weights), ("lora_dir", args.lora_dir), ("dtype", args.dtype))
               if v is not None}
    options.update({k: True for k in ("drop_t5", "offload") if getattr(args, k)})
    if options and not args.backbone.startswith("osediff"):
        raise ConfigError(f"--weights/--lora-dir/--dtype/--drop-t5/--offload apply to the osediff backbones, not {args.backbone!r}")
    backbone = make_backbone(args.backbone, device=args.device, **options) if config.uses_backbone else None
    cache = ChainCache(args.cache) if args.cache else None
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    bar = tqdm(total=len(inputs) * config.steps, desc="zoom", unit="step", file=sys.stderr)
    for item in inputs:
        stem = item.stem
        bar.set_postfix_str(stem)
        done = [0]

        def progress(i: int, n: int) -> None:
            bar.update(i - done[0])
            done[0] = i

        if args.full_image:
            _write_full_image(run_full_image(item.image, config, backbone, extractor, overlap=args.tile_overlap,
                                             source=item.source, progress=progress), out, stem)
            continue
        result = run_chain(item.image, config, backbone, extractor, cache=cache, source=item.source,
                           progress=progress)
        with atomic_dir(out / stem) as tmp:
            for k, im in enumerate(result.states):
                im.save(tmp / f"scale{k}.png")
            save_json(result.prompts, tmp / "prompts.json")
            save_json(result.meta(), tmp / "chain.json")
            chain_strip(result.states, [f"{m}x" if m > 1 else "x0" for m in result.magnifications]).save(tmp / "chain.png")
            if "world_seed" in item.source:
                _write_world_truth(item.source["world_seed"], result, tmp / "truth")
    bar.close()
    print(f"wrote {len(inputs)} chain(s) to {out}")
    return 0


def _write_full_image(result, out: Path, stem: str) -> None:
    """OUT/STEM/scale{k}.png (growing sizes) and tiles.json (each step's tiles with their prompts)."""
    from .imageio import atomic_dir, save_json
    with atomic_dir(out / stem) as tmp:
        for k, im in enumerate(result.states):
            im.save(tmp / f"scale{k}.png")
        save_json(result.tiles, tmp / "tiles.json")


def _write_world_truth(seed: int, result, folder: Path) -> None:
    """truth/scale{k}.png (the exact window of each state) and truth/words.json ({word: fraction} per k)."""
    from . import world
    from .experiments import truth_states
    from .imageio import save_json
    folder.mkdir(parents=True, exist_ok=True)
    for k, im in enumerate(truth_states(result)):
        im.save(folder / f"scale{k}.png")
    save_json([world.window_words(seed, w, result.config.process_size) for w in result.windows], folder / "words.json")


def _image_files(root: Path) -> list[Path]:
    from .data import IMAGE_SUFFIXES
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise CozError(f"{root}: no such file or folder")
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
                  and not any(part.startswith(".") for part in p.relative_to(root).parts)
                  and not (p.name == "chain.png" and (p.parent / "chain.json").is_file()))  # zoom's strip


def _cmd_metrics(args) -> int:
    from .errors import ConfigError
    from .imageio import load_image
    from .metrics import FULL_REFERENCE, Scorer, parse_metric_list

    names = parse_metric_list(args.metrics)
    if any(n in FULL_REFERENCE for n in names) and not args.reference:
        raise ConfigError(f"{', '.join(n for n in names if n in FULL_REFERENCE)} need --reference DIR")
    scorer = Scorer(args.device)
    runnable, skipped = scorer.usable(names)
    for n, why in skipped.items():
        print(f"skipping {n}: {why}", file=sys.stderr)
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(["path", "metric", "value"])
    for d in args.dirs:
        root = Path(d)
        for f in _image_files(root):
            img = load_image(f, min_side=1, convert=True)
            ref = None
            if args.reference:
                rel = f.relative_to(root) if root.is_dir() else Path(f.name)
                ref_path = Path(args.reference) / rel
                ref = load_image(ref_path, min_side=1, convert=True)
            for n in runnable:
                v = scorer.score(n, [img], [ref] if n in FULL_REFERENCE else None)[0]
                writer.writerow([str(f), n, f"{v:.6g}"])
            sys.stdout.flush()
    return 0


def _cmd_list(args) -> int:
    from .backbones import registry as backbones
    from .metrics import ALL_METRICS, LOWER_IS_BETTER, availability
    from .prompts import registry as extractors

    def line(name: str, summary: str, why: str | None) -> str:
        return f"  {name:16s} {'ok     ' if why is None else 'MISSING'} {summary}" + (f"\n{'':26s}-> {why}" if why else "")

    print("backbones (--backbone):")
    for n, info in sorted(backbones().items()):
        print(line(n, info.summary, info.availability()))
    print("prompt extractors (--prompt):")
    for n, info in sorted(extractors().items()):
        print(line(n + (":TEXT" if info.takes_argument else ""), info.summary, info.availability()))
    print("metrics (metrics --metrics):")
    for n in ALL_METRICS:
        kind = "full-reference" if n in ("psnr", "ssim") else "no-reference"
        print(line(n, f"{kind}, {'lower' if n in LOWER_IS_BETTER or n == 'niqe' else 'higher'} is better",
                   availability(n)))
    return 0


def _cmd_world(args) -> int:
    import json
    from . import world
    if args.world_command == "vocab":
        print(json.dumps(world.vocabulary()))
        return 0
    if args.world_command == "dataset":
        from .world.datasets import write_dataset
        n = write_dataset(args.out, args.split, args.n, zooms=args.zoom, size=args.size, upscale=args.upscale)
        print(f"wrote {n} samples to {Path(args.out) / args.split}")
        return 0
    if args.world_command == "words":
        print(json.dumps(world.view_words(args.seed, tuple(args.center), args.zoom, args.size)))
        return 0
    from .imageio import save_image
    from .runtime import resolve_device
    img = world.render_view(args.seed, tuple(args.center), args.zoom, args.size, device=resolve_device(args.device))
    save_image(img, args.out)
    return 0


def _trainers() -> dict:
    """{what: (summary, config class's import path)} of ``train``."""
    return {"sr": ("the OSEDiff-SD3 demo backbone (VAE, base model, word critic, one-step SR in two variants)",
                   "cozlib.training.sr.config:SRTrainConfig"),
            "prompts": ("the demo VLM (multi-scale and single-image) and the DAPE-like tagger",
                        "cozlib.training.prompts:PromptTrainConfig"),
            "grpo": ("the demo critic and the GRPO LoRA adapter of the multi-scale VLM (needs `train prompts` first)",
                     "cozlib.training.grpo:GRPOTrainConfig")}


def _load(spec: str):
    import importlib
    module, name = spec.split(":")
    return getattr(importlib.import_module(module), name)


def _config_help(spec: str) -> str:
    """The settings' help for ``train WHAT --help``, built only when asked (the imports are heavy)."""
    if not any(a in ("-h", "--help") for a in sys.argv[1:]):
        return ""
    from .config import help_text
    return help_text(_load(spec))


def _presets(what: str) -> list[str]:
    from .config import presets
    return presets(what)


def _cmd_train(args) -> int:
    from .config import build, presets
    from .runtime import resolve_device
    cls = _load(_trainers()[args.what][1])
    preset = args.preset
    if preset == "auto":
        device = build(cls, args.what, None, args.overrides).device
        preset = "cuda" if resolve_device(device).startswith("cuda") and "cuda" in presets(args.what) else "cpu"
    cfg = build(cls, args.what, preset, args.overrides)
    if args.what == "sr":
        from .training.sr import train
        train(cfg, minutes=args.minutes)
    elif args.what == "prompts":
        from .training.prompts import train
        train(cfg)
    else:
        from .training.grpo import train
        train(cfg)
    return 0


def _cmd_setup(args) -> int:
    from .assets import setup_all
    setup_all()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _build_parser().parse_args(argv)
    from .runtime import set_threads
    set_threads()
    try:
        return {"zoom": _cmd_zoom, "metrics": _cmd_metrics, "list": _cmd_list, "setup": _cmd_setup,
                "world": _cmd_world, "train": _cmd_train}[args.command](args)
    except CozError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
