"""``python -m cozlib world render | words | vocab | dataset``: ZoomWorld from the command line."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..errors import ConfigError, OutputError

#: The PNG text chunk cozlib's renders carry, so that a later render may replace them (and nothing else).
SOFTWARE = "cozlib"


def add_parsers(sub) -> None:
    w = sub.add_parser("world", help="ZoomWorld: render views, their true words, the vocabulary, data sets")
    wsub = w.add_subparsers(dest="world_command", required=True)
    wr = wsub.add_parser("render", help="render one view to a PNG")
    ww = wsub.add_parser("words", help="print the true words of a view as JSON {word: area fraction}")
    for q in (wr, ww):
        q.add_argument("--seed", type=int, required=True, help="the scene (0 .. 2^63-1)")
        q.add_argument("--center", type=float, nargs=2, metavar=("X", "Y"), default=(0.5, 0.5),
                       help="view center in the base view's unit coordinates, each in [0, 1]")
        q.add_argument("--zoom", type=float, default=1.0,
                       help="magnification relative to the base view, above 0 and at most 4^20 (below 1 the view is "
                            "wider than the base view: the world goes on past it)")
    wr.add_argument("--size", type=int, default=512, help="px per side (1 .. 8192)")
    wr.add_argument("--out", required=True, help="a .png file; an existing file is replaced only if cozlib wrote it")
    wr.add_argument("--device", default="cpu")
    ww.add_argument("--size", type=int, default=512, help="the pixel size the view is seen at (word visibility)")
    wr.set_defaults(run=render)
    ww.set_defaults(run=words)
    wsub.add_parser("vocab", help="print the vocabulary as a JSON list").set_defaults(run=vocab)
    wd = wsub.add_parser("dataset", help="write (low-res, high-res, coarser view, words) samples")
    wd.add_argument("--split", choices=("train", "val", "test"), required=True)
    wd.add_argument("--n", type=int, required=True, help="number of samples (1 .. 1000000)")
    wd.add_argument("--zoom", type=float, nargs="+", default=[4, 16, 64, 256], help="zoom(s) of the high-res view")
    wd.add_argument("--size", type=int, default=128, help="high-res size in px (a multiple of --upscale)")
    wd.add_argument("--upscale", type=int, default=4, help="high-res / low-res size (2 .. 16)")
    wd.add_argument("--out", required=True, help="writes OUT/SPLIT/ (replaced only if cozlib wrote it)")
    wd.set_defaults(run=dataset)


def _view(args) -> tuple:
    """The view's window and size, every argument checked (scene seed, center, zoom, size)."""
    from .. import world
    world.check_seed(args.seed)
    world._check_size(args.size)
    return world.view_window(tuple(args.center), args.zoom)


def check_render_out(out: str) -> Path:
    """``--out`` of a render: a .png path whose folder can be written; an existing file only if cozlib wrote it."""
    from PIL import Image
    from ..imageio import kind_of
    from ..outputs import check_writable_dir
    p = Path(out)
    if p.suffix.lower() != ".png":
        raise ConfigError(f"--out {out!r}: give a file name ending in .png")
    if p.is_dir() or p.is_symlink():
        raise OutputError(f"--out {out} is a {'folder' if p.is_dir() else 'link'}; give the path of a .png file")
    if p.exists() and not p.is_file():
        raise OutputError(f"--out {out} is not a regular file ({kind_of(p)}); give the path of a .png file")
    check_writable_dir(p.parent if str(p.parent) else ".", "--out")
    if p.exists():
        try:
            with Image.open(p) as im:
                ours = im.info.get("Software") == SOFTWARE
        except OSError:
            ours = False
        if not ours:
            raise OutputError(f"--out {out} exists and was not written by cozlib; choose another file name or move it "
                              f"away yourself")
    return p


def render(args: argparse.Namespace) -> int:
    import io
    from PIL.PngImagePlugin import PngInfo
    from .. import world
    from ..outputs import atomic_write_bytes
    from ..runtime import resolve_device
    window = _view(args)
    device = resolve_device(args.device)
    out = check_render_out(args.out)
    img = world.render_window(args.seed, window, args.size, device=device)
    info = PngInfo()
    info.add_text("Software", SOFTWARE)
    buf = io.BytesIO()
    img.save(buf, format="PNG", pnginfo=info)
    atomic_write_bytes(out, buf.getvalue())
    return 0


def words(args: argparse.Namespace) -> int:
    from .. import world
    from .boundary import say, stdout
    stdout()
    window = _view(args)
    say(json.dumps(world.window_words(args.seed, window, args.size)))
    return 0


def vocab(args: argparse.Namespace) -> int:
    from .. import world
    from .boundary import say, stdout
    stdout()
    say(json.dumps(world.vocabulary()))
    return 0


def dataset(args: argparse.Namespace) -> int:
    from ..world.datasets import write_dataset
    n = write_dataset(args.out, args.split, args.n, zooms=args.zoom, size=args.size, upscale=args.upscale)
    from .boundary import status
    status(f"wrote {n} samples to {Path(args.out) / args.split}")
    return 0
