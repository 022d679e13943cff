"""Full-image CoZ's overlap consistency (the paper's appendix; docs/PAPER.md §6): how much neighbouring
tiles disagree where they overlap, and whether the blended image shows seams at tile borders.

* disagreement: ``full_image.run_full_image``'s per-step mean standard deviation (0-255) of the tiles
  covering a pixel, before blending (0 would be perfectly consistent tiles);
* seam ratio: the mean absolute step between neighbouring pixels across the tile borders of the
  blended image, divided by the same on all other pixel pairs (1: borders invisible; above 1: seams).
"""
from __future__ import annotations

import math
from typing import Sequence

from PIL import Image


def seam_ratio(img: Image.Image, borders: Sequence[int]) -> float:
    """Mean |step| between pixel columns / rows b-1 and b for the border positions ``borders``, over
    the mean |step| between all other neighbouring columns / rows (luma)."""
    import numpy as np
    g = np.asarray(img.convert("L"), np.float32)
    dx, dy = np.abs(np.diff(g, axis=1)).mean(0), np.abs(np.diff(g, axis=0)).mean(1)  # step between i and i+1
    cut = np.zeros(len(dx), bool)
    cut[[b - 1 for b in borders if 0 < b < g.shape[1]]] = True
    if not cut.any():
        return math.nan
    across = (dx[cut].mean() + dy[cut].mean()) / 2
    inside = (dx[~cut].mean() + dy[~cut].mean()) / 2
    return float(across / inside) if inside > 0 else math.nan


def overlap_rows(image: Image.Image, config, backbone, extractor, overlaps: Sequence[int],
                 tile: int | None = None, source: dict | None = None) -> list[list]:
    """[overlap px, tiles in the last step, disagreement, seam ratio] of full-image CoZ with each overlap."""
    from ..full_image import run_full_image
    rows = []
    for ov in overlaps:
        res = run_full_image(image, config, backbone, extractor, tile=tile, overlap=ov, source=source)
        boxes = res.tiles[-1]
        # the borders a viewer could see: where a tile ends inside the image (its right / bottom edge)
        borders = sorted({b["box"][2] for b in boxes} | {b["box"][0] for b in boxes if ov == 0})
        rows.append([ov, len(boxes), res.disagreement[-1], seam_ratio(res.states[-1], borders)])
    return rows
