"""Shared fixtures. Tests run offline (HF_HUB_OFFLINE=1) on one torch thread."""
from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("COZ_THREADS", "1")

import numpy as np
import pytest
from PIL import Image


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    import torch
    torch.set_num_threads(1)


@pytest.fixture
def random_image():
    """A random non-square 8-bit RGB image (odd sizes exercise integer rounding)."""
    def make(w: int = 301, h: int = 217, seed: int = 0) -> Image.Image:
        rng = np.random.default_rng(seed)
        return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), "RGB")
    return make


def pytest_collection_modifyitems(config, items):
    """The papermill run of the notebooks first, then the browser test (a stable sort): they are the
    longest tests, and
    under ``make test``'s pytest-xdist workers (``--dist loadfile``) its file then starts at once
    instead of last."""
    items.sort(key=lambda item: (item.get_closest_marker("notebooks") is None, item.get_closest_marker("browser") is None))
