"""Band-limited procedural noise in torch: the building blocks of ZoomWorld's textures.

Every function takes float64 base-view coordinates (so a 1/1,000,000 window is still exact),
a seed, and the pixel size of the view being rendered. Octaves finer than the pixel are faded
out (band-limiting: the render is antialiased and equals a downsampled finer render), octaves
coarser than the view are kept (they set the local mean, so windows stay consistent across
zooms). Octaves have equal amplitude, so every zoom level shows the same amount of new detail:
no blur floor however deep one zooms.
"""
from __future__ import annotations

import math

import torch

_MASK = 0x7FFFFFFF


def hash2(ix: torch.Tensor, iy: torch.Tensor, seed: int) -> torch.Tensor:
    """A 31-bit integer hash of lattice coordinates (int64 tensors) and a seed; no overflow in int64."""
    h = (ix * 0x27D4EB2D) ^ (iy * 0x165667B1) ^ ((seed * 0x9E3779B1) & _MASK)
    h = h & _MASK
    h = (((h >> 15) ^ h) * 0x2C1B3C6D) & _MASK
    h = (((h >> 12) ^ h) * 0x297A2D39) & _MASK
    return (h >> 15) ^ h


def uniform(ix: torch.Tensor, iy: torch.Tensor, seed: int) -> torch.Tensor:
    """A deterministic uniform value in [0, 1) per lattice point (float32)."""
    return hash2(ix, iy, seed).to(torch.float32) * (1.0 / 2147483648.0)


class Lattice:
    """Uniform lattice values around the points (ix, iy), looked up by neighbour offset.

    Where the points span few lattice cells (every octave coarser than the pixel), the hash is
    computed once per lattice cell on a small table and gathered, instead of once per pixel:
    same values, a fraction of the work. On CUDA (where the bounds would force a sync) and for
    the finest octaves it hashes per pixel.
    """

    def __init__(self, ix: torch.Tensor, iy: torch.Tensor, seed: int, reach: int = 1,
                 bounds: tuple[int, int, int, int] | None = None) -> None:
        self.ix, self.iy, self.seed = ix, iy, seed
        self.table = None
        if ix.device.type == "cpu":
            if bounds is None:  # (min ix, max ix, min iy, max iy), when the caller knows them
                bounds = (int(ix.min()), int(ix.max()), int(iy.min()), int(iy.max()))
            x0, x1 = bounds[0] - reach, bounds[1] + reach
            y0, y1 = bounds[2] - reach, bounds[3] + reach
            nx, ny = x1 - x0 + 1, y1 - y0 + 1
            if nx * ny * 2 <= ix.numel():
                gx = torch.arange(x0, x1 + 1, dtype=torch.int64)
                gy = torch.arange(y0, y1 + 1, dtype=torch.int64)
                self.table = uniform(gx[None, :], gy[:, None], seed).flatten()
                self.index = ((iy - y0) * nx + (ix - x0)).flatten()  # index_select: 5x faster than t[idx]
                self.nx = nx

    def __call__(self, dx: int = 0, dy: int = 0) -> torch.Tensor:
        if self.table is None:
            return uniform(self.ix + dx, self.iy + dy, self.seed)
        return self.table.index_select(0, self.index + (dy * self.nx + dx)).view(self.ix.shape)

    def many(self, offsets: list[tuple[int, int]]) -> torch.Tensor:
        """Values at several neighbour offsets at once, stacked on a first axis (one gather)."""
        if self.table is None:
            return torch.stack([uniform(self.ix + dx, self.iy + dy, self.seed) for dx, dy in offsets])
        rows = torch.stack([torch.roll(self.table, -(dy * self.nx + dx)) for dx, dy in offsets])
        return rows.index_select(1, self.index).view(len(offsets), *self.ix.shape)


def band_weight(freq: float, pixel: float) -> float:
    """1 for octaves of 3.3 px per cycle or more, fading to 0 at 1.7 px (value noise is smooth within
    a lattice cell, so its energy sits below its lattice frequency: this keeps aliasing negligible)."""
    t = freq * pixel  # cycles per pixel
    if t <= 0.3:
        return 1.0
    if t >= 0.6:
        return 0.0
    u = (0.6 - t) / 0.3
    return u * u * (3 - 2 * u)


def octaves(f_lo: float, pixel: float) -> list[tuple[float, float, int]]:
    """(frequency, weight, index) of every octave from f_lo up to the band limit of ``pixel``."""
    out, j, f = [], 0, f_lo
    while True:
        w = band_weight(f, pixel)
        if w <= 0.0:
            return out
        out.append((f, w, j))
        j += 1
        f *= 2.0


def extent(x: torch.Tensor, y: torch.Tensor) -> tuple[float, float, float, float] | None:
    """(min x, max x, min y, max y) as floats on the CPU (None on other devices: no sync there)."""
    if x.device.type != "cpu":
        return None
    (x0, x1), (y0, y1) = torch.aminmax(x), torch.aminmax(y)
    return float(x0), float(x1), float(y0), float(y1)


def _scaled(ext: tuple[float, float, float, float] | None, fx: float, fy: float):
    """Lattice bounds of (x * fx, y * fy) from the extent of (x, y); fx, fy > 0. Exact: rounding is
    monotone, so the extreme of the scaled values is the scaled extreme."""
    if ext is None:
        return None
    return (math.floor(ext[0] * fx), math.floor(ext[1] * fx), math.floor(ext[2] * fy), math.floor(ext[3] * fy))


def value_noise(x: torch.Tensor, y: torch.Tensor, seed: int,
                bounds: tuple[int, int, int, int] | None = None) -> torch.Tensor:
    """Smooth value noise with unit lattice spacing, values in [-1, 1] (float32)."""
    fx, fy = torch.floor(x), torch.floor(y)
    lat = Lattice(fx.to(torch.int64), fy.to(torch.int64), seed, bounds=bounds)
    tx, ty = (x - fx).to(torch.float32), (y - fy).to(torch.float32)
    tx = tx * tx * (3 - 2 * tx)
    ty = ty * ty * (3 - 2 * ty)
    a, b, c, d = lat.many([(0, 0), (1, 0), (0, 1), (1, 1)])
    return torch.lerp(torch.lerp(a, b, tx), torch.lerp(c, d, tx), ty) * 2 - 1


#: Mean of a ridged octave (1 - 2|n|) of value noise (measured on 400k points): subtracted, so an
#: octave faded out by band-limiting takes no mean with it (renders at two sizes agree).
RIDGED_MEAN = 0.2858


def fbm(x: torch.Tensor, y: torch.Tensor, seed: int, f_lo: float, pixel: float,
        stretch: float = 1.0, angle: torch.Tensor | float = 0.0, gain: float = 1.0,
        max_octaves: int = 64, ridged: bool = False) -> torch.Tensor:
    """Sum of band-limited value-noise octaves from ``f_lo`` cycles per base unit.

    ``gain`` is the amplitude ratio between octaves (1: self-similar detail). ``stretch`` > 1 makes
    streaks along ``angle`` (radians, scalar or per-pixel): hairs, fibres. ``ridged`` folds each
    octave (1 - 2|n|): thin sharp crests, like single hairs.
    """
    if stretch != 1.0:
        ca, sa = torch.cos(torch.as_tensor(angle, dtype=x.dtype)), torch.sin(torch.as_tensor(angle, dtype=x.dtype))
        x, y = x * ca + y * sa, -x * sa + y * ca
    out = torch.zeros(x.shape, dtype=torch.float32, device=x.device)
    amp = 1.0
    ext = extent(x, y)
    for f, w, j in octaves(f_lo, pixel)[:max_octaves]:
        n = value_noise(x * (f / stretch), y * f, seed * 131 + j, _scaled(ext, f / stretch, f))
        out = out + (amp * w) * ((0.5 - n.abs()) * 2 - RIDGED_MEAN if ridged else n)
        amp *= gain
    return out


def voronoi(x: torch.Tensor, y: torch.Tensor, seed: int, bounds: tuple[int, int, int, int] | None = None,
            ids: bool = True) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor]:
    """Jittered-grid Voronoi at unit spacing: (nearest site's ix, iy, distance to the nearest wall).

    The wall distance is approximated by (d2 - d1) / 2, d1 and d2 the two nearest site distances.
    With ``ids=False`` only the distance is computed (the ids are None).
    """
    fx, fy = torch.floor(x), torch.floor(y)
    ix, iy = fx.to(torch.int64), fy.to(torch.int64)
    offsets = [(dx, dy) for dx in (-1, 0, 1) for dy in (-1, 0, 1)]
    jx = Lattice(ix, iy, seed, bounds=bounds).many(offsets)
    jy = Lattice(ix, iy, seed + 7, bounds=bounds).many(offsets)
    tx, ty = (x - fx).to(torch.float32), (y - fy).to(torch.float32)
    d1 = torch.full(tx.shape, 81.0, device=x.device)  # squared distances until the end
    d2 = torch.full(tx.shape, 81.0, device=x.device)
    bx, by = (ix.clone(), iy.clone()) if ids else (None, None)
    for k, (dx, dy) in enumerate(offsets):
        d = (tx - dx - jx[k]).square_() + (ty - dy - jy[k]).square_()
        closer = d < d1
        d2 = torch.where(closer, d1, torch.minimum(d2, d))
        d1 = torch.where(closer, d, d1)
        if ids:
            bx = torch.where(closer, ix + dx, bx)
            by = torch.where(closer, iy + dy, by)
    return bx, by, (d2.sqrt_() - d1.sqrt_()) * 0.5


def cell_edge_distance(x: torch.Tensor, y: torch.Tensor, seed: int,
                       bounds: tuple[int, int, int, int] | None = None) -> torch.Tensor:
    """Approximate distance (in cell units) to the nearest Voronoi cell wall, unit site spacing."""
    return voronoi(x, y, seed, bounds, ids=False)[2]


def cell_walls(x: torch.Tensor, y: torch.Tensor, seed: int,
               bounds: tuple[int, int, int, int] | None = None) -> torch.Tensor:
    """Cellular (Voronoi) pattern at unit spacing: 1 on cell walls, falling to 0 inside cells."""
    return torch.clamp(1.0 - cell_edge_distance(x, y, seed, bounds) * 12.0, 0.0, 1.0)


def cellular(x: torch.Tensor, y: torch.Tensor, seed: int, f_lo: float, pixel: float,
             gain: float = 1.0) -> torch.Tensor:
    """Cells within cells: band-limited octaves of ``cell_walls`` (centred on 0), equal amplitude.

    An octave whose cells are much larger than the view and whose walls are all farther from the
    view's centre than its half-diagonal contributes a constant: it is not evaluated per pixel.
    """
    out = torch.zeros(x.shape, dtype=torch.float32, device=x.device)
    (x0, x1), (y0, y1) = torch.aminmax(x), torch.aminmax(y)
    ext = (float(x0), float(x1), float(y0), float(y1)) if x.device.type == "cpu" else None
    span = max(float(x1 - x0), float(y1 - y0))
    centre = ((x1 + x0) / 2).reshape(1), ((y1 + y0) / 2).reshape(1)
    amp = 1.0
    for f, w, j in octaves(f_lo, pixel):
        s = seed * 131 + j
        if span * f < 0.5 and float(cell_edge_distance(centre[0] * f, centre[1] * f, s)) > 0.71 * span * f + 1 / 12:
            out = out - (amp * w) * 0.25  # no wall of this octave reaches the view
        else:
            out = out + (amp * w) * (cell_walls(x * f, y * f, s, _scaled(ext, f, f)) - 0.25)
        amp *= gain
    return out


def fractal_offset(x: torch.Tensor, y: torch.Tensor, seed: int, f_lo: float, pixel: float,
                   roughness: float = 0.35) -> torch.Tensor:
    """A displacement with amplitude ~ roughness / frequency per octave: a self-similar rough edge."""
    out = torch.zeros(x.shape, dtype=torch.float32, device=x.device)
    ext = extent(x, y)
    for f, w, j in octaves(f_lo, pixel):
        out = out + (w * roughness / f) * value_noise(x * f, y * f, seed * 977 + j, _scaled(ext, f, f))
    return out


def line_coverage(distance: torch.Tensor, half_width: float, pixel: float) -> torch.Tensor:
    """Antialiased coverage of a line (distance to its centre line) that keeps its true area when
    it is thinner than a pixel: a one-pixel tent scaled by width / pixel."""
    eff = max(half_width, 0.5 * pixel)
    return torch.clamp(0.5 - (distance - eff) / pixel, 0.0, 1.0).float() * min(1.0, 2 * half_width / pixel)


def rough_coverage(sdf: torch.Tensor, x: torch.Tensor, y: torch.Tensor, seed: int, f_lo: float,
                   pixel: float, roughness: float) -> torch.Tensor:
    """Coverage of a shape whose outline is displaced by ``fractal_offset``. The displacement is
    at most ~2 * roughness / f_lo, so where the whole view is farther than that from the outline
    the (costly) displacement is skipped: same result, much faster at deep zoom."""
    margin = 2.2 * roughness / f_lo + pixel
    if float(sdf.abs().min()) > margin:
        return (sdf < 0).float()
    return smooth_coverage(sdf + fractal_offset(x, y, seed, f_lo, pixel, roughness).double(), pixel)


def smooth_coverage(sdf: torch.Tensor, pixel: float) -> torch.Tensor:
    """Antialiased inside-coverage from a signed distance (negative inside), one pixel wide (float32)."""
    return torch.clamp(0.5 - sdf / pixel, 0.0, 1.0).float()


__all__ = ["hash2", "uniform", "band_weight", "octaves", "value_noise", "fbm", "Lattice", "voronoi", "cell_edge_distance", "cell_walls", "line_coverage", "rough_coverage", "cellular",
           "fractal_offset", "smooth_coverage"]
