"""Reading, checking and writing images; every write goes to a temp file first, then a rename."""
from __future__ import annotations

import contextlib
import io
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import numpy as np
from PIL import Image, UnidentifiedImageError

from .errors import BadImageError
from .outputs import atomic_dir, atomic_write_bytes, temp_dir  # noqa: F401  (the atomic writers, re-exported)

if TYPE_CHECKING:
    import torch

#: The smallest side an input may have: one 4x zoom step must leave at least one pixel.
MIN_SIDE = 4
#: The largest long-side/short-side ratio an input may have before the center crop throws most of it away.
MAX_ASPECT = 16.0

_MODES_CONVERTIBLE = {"L": "grayscale", "LA": "grayscale with alpha", "P": "palette", "RGBA": "RGBA",
                      "CMYK": "CMYK", "YCbCr": "YCbCr", "1": "1-bit"}
_MODES_HIGH_DEPTH = {"I", "I;16", "I;16B", "I;16L", "I;16N", "F", "RGB;16", "RGBA;16"}


CONVERT_HINT = "re-save it as 8-bit RGB, or pass --convert (Python: convert=True)"


def _png_bit_depth(path: Path) -> int | None:
    """Bit depth from a PNG's IHDR chunk (Pillow silently reduces 16-bit RGB PNGs to 8 bits)."""
    with open(path, "rb") as f:
        head = f.read(26)
    if head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR" and len(head) >= 25:
        return head[24]
    return None


#: The largest image (in pixels) read without being asked: Pillow's own guard against decompression
#: bombs (about 9459 x 9459). ``--max-pixels N`` raises it, 0 removes it.
DEFAULT_MAX_PIXELS = 89_478_485


def _describe_pixels(n: int) -> str:
    return f"{n / 1e6:.1f} Mpx" if n >= 1e6 else f"{n:,} px"


def _open_error(path: Path, e: OSError) -> BadImageError:
    """The message for a file PIL could not open or read, by cause."""
    import errno
    if e.errno in (errno.EACCES, errno.EPERM):
        return BadImageError(f"{path}: no permission to read it; fix its permissions (chmod) or copy it somewhere readable")
    return BadImageError(f"{path}: the image is corrupt or truncated ({e}). Re-export or re-download it.")


def kind_of(path: Path) -> str:
    """What a path that is not a regular file is, for an error message."""
    try:
        if path.is_symlink() and not path.exists():
            return "a link that leads nowhere or in a loop"
        if path.is_dir():
            return "a folder"
    except OSError:
        return "a path that cannot be followed (a link loop?)"
    return "a pipe, device or socket"


def _check_regular_file(path: Path) -> None:
    if path.is_symlink() and not path.exists():
        raise BadImageError(f"{path}: {kind_of(path)}; give the path of a PNG or JPEG image")
    if not path.exists():
        raise BadImageError(f"{path}: no such file. Give the path of a PNG or JPEG image.")
    if path.is_dir():
        raise BadImageError(f"{path}: is a folder, not an image file.")
    if not path.is_file():
        raise BadImageError(f"{path}: not a regular file ({kind_of(path)}); give the path of a PNG or JPEG image")


@contextlib.contextmanager
def _own_pixel_guard() -> Iterator[None]:
    """Pillow's decompression-bomb guard off inside the block: ``image_size`` applies ours, whose
    message names ``--max-pixels``."""
    import warnings
    guard = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            yield
    finally:
        Image.MAX_IMAGE_PIXELS = guard


def image_size(path: str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[int, int]:
    """An image file's (width, height) from its header, nothing decoded; ``BadImageError`` when it is
    not an image or is over ``max_pixels`` (0: no limit)."""
    path = Path(path)
    _check_regular_file(path)
    try:
        with _own_pixel_guard(), Image.open(path) as probe:  # checked below, with a message that says what to do
            w, h = probe.size
    except UnidentifiedImageError:
        raise BadImageError(f"{path}: not an image file PIL can read. Give a PNG or JPEG image.") from None
    except OSError as e:
        raise _open_error(path, e) from None
    if max_pixels and w * h > max_pixels:
        raise BadImageError(
            f"{path}: {w}x{h} is {_describe_pixels(w * h)}, over the limit of {_describe_pixels(max_pixels)} that "
            f"guards against decompression bombs; if you trust the file, pass --max-pixels {w * h} (or 0 for no limit)")
    return w, h


def load_image(path: str | os.PathLike, *, convert: bool = False, min_side: int = MIN_SIDE,
               max_aspect: float = MAX_ASPECT, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Open an image file as 8-bit RGB, upright (its EXIF orientation applied), or raise
    BadImageError saying what is wrong and what to do.

    Grayscale, palette, RGBA and 16-bit inputs are refused unless ``convert`` is true; then
    they become 8-bit RGB (alpha composited on white, 16 bits scaled to 8). The zoom protocol
    works on 8-bit RGB states, like the official code. Images over ``max_pixels`` (0: no limit)
    are refused before they are decoded.
    """
    from PIL import ImageOps
    path = Path(path)
    image_size(path, max_pixels)  # the file checked, the header only read: refused before anything is decoded
    try:
        with _own_pixel_guard():
            with Image.open(path) as probe:
                probe.verify()
            img = Image.open(path)
            img.load()
            img = ImageOps.exif_transpose(img)  # a phone photo's orientation tag: pixels turned upright
    except BadImageError:
        raise
    except UnidentifiedImageError:
        raise BadImageError(f"{path}: not an image file PIL can read. Give a PNG or JPEG image.") from None
    except OSError as e:
        raise _open_error(path, e) from None
    except (SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise BadImageError(f"{path}: the image is corrupt or truncated ({e}). Re-export or re-download it.") from None
    if _png_bit_depth(path) == 16 and img.mode in ("RGB", "RGBA") and not convert:
        raise BadImageError(f"{path}: a 16-bit PNG; {CONVERT_HINT}.")  # with convert: Pillow kept the high byte
    return check_image(img, name=str(path), convert=convert, min_side=min_side, max_aspect=max_aspect)


def _to_8bit_rgb(img: Image.Image) -> Image.Image:
    """Grayscale/palette/RGBA/16-bit -> 8-bit RGB; alpha composited on white, 16 bits scaled by 1/257."""
    mode = img.mode
    if mode in _MODES_HIGH_DEPTH or mode.startswith("I;16"):
        arr = np.asarray(img, dtype=np.float64)
        if mode == "F":  # float: [0, 1] or [0, 255]
            arr = arr * 255.0 if arr.max(initial=0) <= 1.0 else arr
        else:  # 16-bit integers: full range 0..65535
            arr = arr / 257.0
        gray = np.clip(np.round(arr), 0, 255).astype(np.uint8)
        return Image.fromarray(gray, "L").convert("RGB")
    if "A" in mode or "transparency" in img.info:
        rgba = img.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(canvas, rgba).convert("RGB")
    return img.convert("RGB")


def check_image(img: Image.Image, *, name: str = "image", convert: bool = False,
                min_side: int = MIN_SIDE, max_aspect: float = MAX_ASPECT) -> Image.Image:
    """Validate an in-memory PIL image and return it as 8-bit RGB (see ``load_image``)."""
    if not isinstance(img, Image.Image):
        raise BadImageError(f"{name}: expected a PIL image, got {type(img).__name__}.")
    mode = img.mode
    if mode != "RGB":
        if mode in _MODES_HIGH_DEPTH or mode.startswith("I;16"):
            what = f"a 16-bit or float image (mode {mode})"
        elif "A" in mode or "transparency" in img.info:
            what = f"an image with an alpha channel (mode {mode})"
        elif mode in ("L", "1"):
            what = f"a grayscale image (mode {mode})"
        else:
            what = f"a {_MODES_CONVERTIBLE.get(mode, mode)} image (mode {mode})"
        if not convert:
            raise BadImageError(f"{name}: {what}; {CONVERT_HINT}.")
        img = _to_8bit_rgb(img)
    w, h = img.size
    if min(w, h) < min_side:
        raise BadImageError(
            f"{name}: {w}x{h} is too small; the shorter side must be at least {min_side} px "
            f"(one zoom step crops 1/4 of it). Use a larger image.")
    if max(w, h) / min(w, h) > max_aspect:
        raise BadImageError(
            f"{name}: {w}x{h} has an aspect ratio over {max_aspect:g}:1; the center crop would keep "
            f"only a sliver of it. Crop the region of interest first.")
    return img


def pil_to_tensor(img: Image.Image) -> "torch.Tensor":
    """8-bit RGB PIL image -> float tensor [1, 3, H, W] in [0, 1]."""
    import torch
    arr = np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).unsqueeze(0)


def tensor_to_pil(t: "torch.Tensor", truncate: bool = False) -> Image.Image:
    """Float tensor [1, 3, H, W] or [3, H, W] in [0, 1] -> 8-bit RGB PIL image (clamped; rounded, or
    truncated as torchvision's ToPILImage does: the official code's states)."""
    if t.dim() == 4:
        if t.shape[0] != 1:
            raise ValueError(f"tensor_to_pil takes one image, got a batch of {t.shape[0]}")
        t = t[0]
    v = t.detach().float().clamp(0, 1) * 255.0
    arr = (v.floor() if truncate else v.round()).to("cpu").byte().permute(1, 2, 0).numpy()
    return Image.fromarray(arr, "RGB")


def save_image(img: Image.Image, path: str | os.PathLike) -> Path:
    """Save a PIL image atomically (temp file, then rename); the format follows the suffix."""
    path = Path(path)
    buf = io.BytesIO()
    fmt = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}.get(path.suffix.lower(), "PNG")
    img.save(buf, format=fmt)
    atomic_write_bytes(path, buf.getvalue())
    return path


def save_text(text: str, path: str | os.PathLike) -> Path:
    """Write text atomically (temp file, then rename)."""
    path = Path(path)
    atomic_write_bytes(path, text.encode("utf-8"))
    return path


def save_torch(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` atomically (checkpoints, LoRA files, cached tensors)."""
    import torch
    path = Path(path)
    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())
    return path


def save_tensors(tensors: dict, meta: dict, path: str | os.PathLike) -> Path:
    """A data cache: tensors (or numpy arrays) in a safetensors file, ``meta`` (JSON-able: strings,
    numbers, lists) in its header; atomically. Nothing in it can run code when read back."""
    import torch
    from safetensors.torch import save
    blobs = {k: (torch.from_numpy(np.ascontiguousarray(v)) if isinstance(v, np.ndarray) else v).contiguous()
             for k, v in tensors.items()}
    path = Path(path)
    atomic_write_bytes(path, save(blobs, metadata={"cozlib": json.dumps(meta)}))
    return path


def load_tensors(path: str | os.PathLike, log=None) -> tuple[dict, dict] | None:
    """(tensors, meta) of a ``save_tensors`` file; None when it is absent or cannot be read (then the
    caller builds it again: a cache is never trusted past a failed read; ``log`` hears why)."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        from safetensors import safe_open
        with safe_open(str(path), framework="pt") as f:
            meta = json.loads((f.metadata() or {})["cozlib"])
            tensors = {k: f.get_tensor(k) for k in f.keys()}
        return tensors, meta
    except Exception as e:  # noqa: BLE001  (any unreadable cache is rebuilt)
        if log is not None:
            log(f"warning: the cache {path} cannot be read ({type(e).__name__}); building it again")
        return None


def save_json(obj: Any, path: str | os.PathLike) -> Path:
    """Write JSON atomically, indented and with sorted keys so diffs stay small."""
    return save_text(json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n", path)
