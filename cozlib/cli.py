"""Command line: ``python -m cozlib {zoom, metrics, list, setup}``.

Argument names follow the official ``inference_coz.py`` (rec_type, upscale, process_size,
prompt_type, align_method); ``--steps`` is its ``--rec_num``. User errors print one line and exit 2.
"""
from __future__ import annotations

import argparse
import csv
import shutil
import sys
import tempfile
from pathlib import Path

from .errors import CozError


def _build_parser() -> argparse.ArgumentParser:
    from .chain import REC_TYPES
    p = argparse.ArgumentParser(prog="python -m cozlib", description="Chain-of-Zoom companion tools.")
    sub = p.add_subparsers(dest="command", required=True)

    z = sub.add_parser("zoom", help="run a zoom chain on images",
                       description="Zoom into the center of each INPUT (a file, a folder, or photo:NAME).")
    z.add_argument("inputs", nargs="+", metavar="INPUT")
    z.add_argument("--out", required=True, help="output folder; writes OUT/<stem>/scale{k}.png, prompts.json, chain.png")
    z.add_argument("--rec-type", default="recursive_multiscale", choices=REC_TYPES)
    z.add_argument("--backbone", default="realesrgan", help="SR backbone (see `list`)")
    z.add_argument("--prompt", default="null", help="prompt extractor: null or fixed:TEXT (see `list`)")
    z.add_argument("--user-prompt", default="", help='appended as "{prompt}, {user_prompt},"')
    z.add_argument("--steps", type=int, default=4, help="number of zoom steps (official --rec_num)")
    z.add_argument("--upscale", type=int, default=4)
    z.add_argument("--process-size", type=int, default=512)
    z.add_argument("--align-method", default="nofix", choices=("nofix", "adain", "wavelet"))
    z.add_argument("--seed", type=int, default=42)
    z.add_argument("--device", default="auto")
    z.add_argument("--cache", default=None, help="chain cache folder (default: none for the CLI)")
    z.add_argument("--convert", action="store_true",
                   help="accept grayscale, palette, RGBA and 16-bit inputs by converting them to 8-bit RGB")

    m = sub.add_parser("metrics", help="score images with pyiqa; prints CSV path,metric,value")
    m.add_argument("dirs", nargs="+", metavar="DIR", help="image files or folders (searched recursively)")
    m.add_argument("--metrics", default="niqe,piqe", help="comma list; psnr,ssim need --reference")
    m.add_argument("--reference", default=None, help="folder with reference images at the same relative paths")
    m.add_argument("--device", default="cpu")

    sub.add_parser("list", help="backbones, prompt extractors and metrics, and what each missing one needs")
    sub.add_parser("setup", help="provision offline files pyiqa needs (NIQE parameters, calibration set)")
    return p


def _cmd_zoom(args) -> int:
    from tqdm import tqdm
    from .backbones import make_backbone
    from .chain import ChainCache, ChainConfig, run_chain
    from .data import resolve_input
    from .errors import ConfigError
    from .figures import chain_strip
    from .imageio import save_json
    from .prompts import make_prompt_extractor

    config = ChainConfig(rec_type=args.rec_type, upscale=args.upscale, steps=args.steps,
                         process_size=args.process_size, align_method=args.align_method,
                         user_prompt=args.user_prompt, seed=args.seed).validate()
    extractor = make_prompt_extractor(args.prompt, device=args.device)
    inputs = [item for spec in args.inputs for item in resolve_input(spec, convert=args.convert)]
    stems = [stem for stem, _, _ in inputs]
    if len(set(stems)) != len(stems):
        raise ConfigError(f"two inputs share an output folder name: {sorted({s for s in stems if stems.count(s) > 1})}; "
                          f"rename one or run them separately")
    backbone = make_backbone(args.backbone, device=args.device) if config.uses_backbone else None
    cache = ChainCache(args.cache) if args.cache else None
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    bar = tqdm(total=len(inputs) * config.steps, desc="zoom", unit="step", file=sys.stderr)
    for stem, path, image in inputs:
        bar.set_postfix_str(stem)
        done = [0]

        def progress(i: int, n: int) -> None:
            bar.update(i - done[0])
            done[0] = i

        result = run_chain(image, config, backbone, extractor, cache=cache,
                           source={"input": str(path) if path else stem}, progress=progress)
        tmp = Path(tempfile.mkdtemp(dir=out, prefix=f".tmp-{stem}-"))
        try:
            for k, im in enumerate(result.states):
                im.save(tmp / f"scale{k}.png")
            save_json(result.prompts, tmp / "prompts.json")
            save_json(result.meta(), tmp / "chain.json")
            chain_strip(result.states, [f"{m}x" if m > 1 else "x0" for m in result.magnifications]).save(tmp / "chain.png")
            final = out / stem
            if final.exists():
                shutil.rmtree(final)
            tmp.rename(final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    bar.close()
    print(f"wrote {len(inputs)} chain(s) to {out}")
    return 0


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


def _cmd_setup(args) -> int:
    from .assets import setup_all
    setup_all()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _build_parser().parse_args(argv)
    from .runtime import set_threads
    set_threads()
    try:
        return {"zoom": _cmd_zoom, "metrics": _cmd_metrics, "list": _cmd_list, "setup": _cmd_setup}[args.command](args)
    except CozError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
