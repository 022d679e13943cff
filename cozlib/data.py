"""Input images: the bundled demo photos and the paper's data sets (DIV2K, DIV8K) from a user folder.

The demo photos ship inside scikit-image and matplotlib (licences in data/README.md), so the
natural-image results need no download. DIV2K and DIV8K are read from a folder the user names
(``--data-root`` or $COZ_DATA); nothing is fetched.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from .errors import ConfigError
from .imageio import load_image

#: name -> (package, file inside the package's data folder)
PHOTOS: dict[str, tuple[str, str]] = {
    "astronaut": ("skimage", "astronaut.png"),
    "coffee": ("skimage", "coffee.png"),
    "chelsea": ("skimage", "chelsea.png"),
    "rocket": ("skimage", "rocket.jpg"),
    "hubble": ("skimage", "hubble_deep_field.jpg"),
    "grace_hopper": ("matplotlib", "grace_hopper.jpg"),
}

#: The paper's evaluation sets (docs/PAPER.md §6): folder names under the data root, expected counts.
DATASETS: dict[str, tuple[str, int]] = {
    "div2k": ("DIV2K_train_HR", 800),
    "div8k": ("DIV8K_train_HR", 1500),
}

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")


def photo_path(name: str) -> Path:
    """Path of a bundled photo inside its package."""
    if name not in PHOTOS:
        raise ConfigError(f"unknown photo {name!r}; bundled photos: {', '.join(PHOTOS)}")
    package, filename = PHOTOS[name]
    if package == "skimage":
        import skimage.data
        return Path(skimage.data.__file__).parent / filename
    import matplotlib
    return Path(matplotlib.get_data_path()) / "sample_data" / filename


def photo(name: str) -> Image.Image:
    """A bundled photo as 8-bit RGB."""
    return load_image(photo_path(name))


def photo_names() -> list[str]:
    return list(PHOTOS)


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The user's data folder: the argument, else $COZ_DATA, else ./data."""
    return Path(root or os.environ.get("COZ_DATA") or "data")


def dataset_images(name: str, root: str | os.PathLike | None = None, limit: int | None = None) -> list[Path]:
    """Sorted image paths of DIV2K or DIV8K under the data root (or any folder given as ``name``)."""
    if name in DATASETS:
        folder = data_root(root) / DATASETS[name][0]
        hint = (f"Put the {name.upper()} training images (the {DATASETS[name][0]} folder, "
                f"{DATASETS[name][1]} images) under {data_root(root)} or point $COZ_DATA at their parent.")
    else:
        folder, hint = Path(name), "Give a folder of PNG or JPEG images."
    if not folder.is_dir():
        raise ConfigError(f"data set folder {folder} does not exist. {hint}")
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise ConfigError(f"{folder} holds no images. {hint}")
    return paths[:limit] if limit else paths


@dataclass
class InputItem:
    """One CLI input: output folder name, file (if any), the image, and what the chain should know."""

    stem: str
    path: Path | None
    image: Image.Image
    source: dict = field(default_factory=dict)


def resolve_input(spec: str, convert: bool = False, process_size: int = 512,
                  max_pixels: int | None = None) -> list[InputItem]:
    """CLI inputs -> items: a file, a folder of images, ``photo:NAME`` or ``world:SEED`` (ZoomWorld's
    base view, rendered at ``process_size``). Images over ``max_pixels`` are refused (``load_image``)."""
    from .imageio import DEFAULT_MAX_PIXELS
    limit = {"max_pixels": DEFAULT_MAX_PIXELS if max_pixels is None else max_pixels}
    from .world import parse_world_input, render_view, world_source
    seed = parse_world_input(spec)
    if seed is not None:
        return [InputItem(f"world-{seed}", None, render_view(seed, (0.5, 0.5), 1.0, process_size),
                          world_source(seed))]
    if spec.startswith("photo:"):
        name = spec.split(":", 1)[1]
        return [InputItem(name, photo_path(name), photo(name), {"input": spec})]
    path = Path(spec)
    if path.is_dir():
        return [InputItem(p.stem, p, load_image(p, convert=convert, **limit), {"input": p.name})
                for p in dataset_images(str(path))]
    return [InputItem(path.stem, path, load_image(path, convert=convert, **limit), {"input": path.name})]


def load_images(dataset: str = "photos", names: list[str] | None = None, limit: int | None = None,
                root: str | os.PathLike | None = None) -> dict[str, Image.Image]:
    """Name -> image for a notebook: the bundled ``photos`` (optionally only ``names``),
    ``div2k`` / ``div8k`` under the data root, or any folder of images."""
    if dataset == "photos":
        chosen = names or photo_names()
        return {n: photo(n) for n in (chosen[:limit] if limit else chosen)}
    return {p.stem: load_image(p) for p in dataset_images(dataset, root, limit)}
