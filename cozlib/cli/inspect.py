"""``python -m cozlib metrics | list | setup``: score images, list what is available, provision pyiqa's files."""
from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

from ..errors import ConfigError


def add_parsers(sub) -> None:
    from ..imageio import DEFAULT_MAX_PIXELS
    m = sub.add_parser("metrics", help="score images with pyiqa; prints CSV path,metric,value")
    m.add_argument("dirs", nargs="+", metavar="DIR", help="image files or folders (searched recursively)")
    m.add_argument("--metrics", default="niqe,piqe", help="comma list; psnr,ssim need --reference")
    m.add_argument("--reference", default=None, help="folder with reference images at the same relative paths")
    m.add_argument("--device", default="cpu")
    m.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS,
                   help="refuse images larger than this many pixels (a decompression-bomb guard; 0: no limit)")
    m.set_defaults(run=metrics)
    sub.add_parser("list", help="backbones, prompt extractors and metrics, and what each missing one needs"
                   ).set_defaults(run=list_all)
    sub.add_parser("setup", help="provision offline files pyiqa needs (NIQE parameters, calibration set)"
                   ).set_defaults(run=setup)


def image_files(root: Path) -> list[Path]:
    """The images under ``root`` (or ``root`` itself), sorted; hidden paths and zoom's strips left out."""
    from ..data import IMAGE_SUFFIXES
    from ..imageio import kind_of
    if root.is_file():
        return [root]
    if root.exists() and not root.is_dir():
        raise ConfigError(f"{root}: not a regular file or folder ({kind_of(root)}); give images or folders")
    if root.is_symlink() and not root.exists():
        raise ConfigError(f"{root}: {kind_of(root)}; give images or folders")
    if not root.is_dir():
        raise ConfigError(f"{root}: no such file or folder")
    found = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES
                   and not any(part.startswith(".") for part in p.relative_to(root).parts)
                   and not (p.name == "chain.png" and (p.parent / "chain.json").is_file()))  # zoom's strip
    odd = [p for p in found if not p.is_file() and not p.is_dir()]
    if odd:
        raise ConfigError(f"{odd[0]}: named like an image but not a regular file ({kind_of(odd[0])}); move it "
                          f"out of {root}")
    return [p for p in found if p.is_file()]


def _verify(path: Path) -> None:
    """Read the whole file once (PIL's verify: every chunk and checksum), so a truncated image among
    good ones stops the command before the first score is printed."""
    from PIL import Image
    from ..errors import BadImageError
    try:
        with Image.open(path) as im:
            im.verify()
    except (OSError, SyntaxError, ValueError) as e:
        raise BadImageError(f"{path}: the image is corrupt or truncated ({e}). Re-export it, or leave it out") from None


def _plan(args) -> list[tuple[Path, Path | None]]:
    """(image, reference or None) for every image, every file and size checked before any scoring."""
    from ..imageio import image_size
    from ..metrics import FULL_REFERENCE, check_sizes, parse_metric_list
    from ..runtime import resolve_device
    names = parse_metric_list(args.metrics)
    resolve_device(args.device)
    full = [n for n in names if n in FULL_REFERENCE]
    if full and not args.reference:
        raise ConfigError(f"{', '.join(full)} need --reference DIR (reference images at the same relative paths)")
    if args.reference and not Path(args.reference).exists():
        raise ConfigError(f"--reference {args.reference}: no such file or folder")
    if args.max_pixels < 0:
        raise ConfigError(f"--max-pixels must be >= 0 (0: no limit), got {args.max_pixels}")
    plan, sizes = [], {}
    for d in args.dirs:
        root = Path(d)
        files = image_files(root)
        if not files:
            raise ConfigError(f"{root}: no images there (PNG, JPEG, BMP, WebP, TIFF); give a folder that holds some")
        for f in files:
            ref = None
            if full:
                ref_root = Path(args.reference)
                ref = ref_root if not ref_root.is_dir() else ref_root / (f.relative_to(root) if root.is_dir() else f.name)
                if ref.exists() and not ref.is_file():
                    from ..imageio import kind_of
                    raise ConfigError(f"reference {ref}: not a regular file ({kind_of(ref)}); give an image")
                if not ref.is_file():
                    raise ConfigError(f"{f}: no reference image at {ref}; the reference folder must hold the same "
                                      f"relative paths")
                if image_size(ref, args.max_pixels) != image_size(f, args.max_pixels):
                    raise ConfigError(f"{f} and its reference {ref} differ in size; full-reference metrics compare "
                                      f"images of the same size")
            sizes[str(f)] = image_size(f, args.max_pixels)
            _verify(f)
            plan.append((f, ref))
    check_sizes(names, sizes)
    return plan


def metrics(args: argparse.Namespace) -> int:
    from ..imageio import load_image
    from ..metrics import FULL_REFERENCE, Scorer, parse_metric_list
    from .boundary import stdout
    out = stdout()
    plan = _plan(args)
    names = parse_metric_list(args.metrics)
    scorer = Scorer(args.device)
    runnable, skipped = scorer.usable(names)
    if not runnable:
        raise ConfigError(f"none of {', '.join(names)} can run here: " + "; ".join(f"{n} {why}" for n, why in skipped.items())
                          + " (`python -m cozlib list`); niqe, piqe, psnr and ssim need no weight files")
    for n, why in skipped.items():
        print(f"skipping {n}: {why}", file=sys.stderr)
    from ..errors import OutputError
    writer = csv.writer(out, lineterminator="\n")
    try:
        writer.writerow(["path", "metric", "value"])
        for f, ref_path in plan:
            img = load_image(f, min_side=1, convert=True, max_pixels=args.max_pixels)
            ref = load_image(ref_path, min_side=1, convert=True, max_pixels=args.max_pixels) if ref_path else None
            for n in runnable:
                v = scorer.score(n, [img], [ref] if n in FULL_REFERENCE else None)[0]
                writer.writerow([str(f), n, f"{v:.6g}"])
            out.flush()
    except BrokenPipeError:
        raise
    except OSError as e:
        if e.filename:
            raise
        raise OutputError(f"standard output cannot be written ({e.strerror or e}); redirect it elsewhere") from None
    return 0


def list_all(args: argparse.Namespace) -> int:
    from ..backbones import registry as backbones
    from ..metrics import ALL_METRICS, LOWER_IS_BETTER, availability
    from ..prompts import registry as extractors
    from .boundary import say, stdout
    stdout()

    def line(name: str, summary: str, why: str | None) -> str:
        return f"  {name:16s} {'ok     ' if why is None else 'MISSING'} {summary}" + (f"\n{'':26s}-> {why}" if why else "")

    lines = ["backbones (--backbone):"]
    lines += [line(n, info.summary, info.availability()) for n, info in sorted(backbones().items())]
    lines.append("prompt extractors (--prompt):")
    lines += [line(n + (":TEXT" if info.takes_argument else ""), info.summary, info.availability())
              for n, info in sorted(extractors().items())]
    lines.append("metrics (metrics --metrics):")
    for n in ALL_METRICS:
        kind = "full-reference" if n in ("psnr", "ssim") else "no-reference"
        lines.append(line(n, f"{kind}, {'lower' if n in LOWER_IS_BETTER else 'higher'} is better", availability(n)))
    say("\n".join(lines))
    return 0


def setup(args: argparse.Namespace) -> int:
    from ..assets import setup_all
    setup_all()
    return 0
