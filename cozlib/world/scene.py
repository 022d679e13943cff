"""ZoomWorld scenes: continuous functions of position, rendered for any window at any size.

A scene (from an integer seed) is a ground plane with 3-5 objects drawn from ``vocab.OBJECTS``.
Each object is a signed-distance shape with a fractal, self-similar outline; inside it, parts
(seeds, eyes, mortar, veins, ...) are painted on a base part; each part is filled with its
micro-texture (``vocab.MICRO``), band-limited octaves of equal amplitude that continue to any
depth: a shared mottle down to the word's scale, then the texture's own kind (a coarse view does
not tell which kind will appear; the words do). Coordinates are float64 in the base view's unit square [0, 1]^2 (x right, y down).

``render`` takes windows (left, top, right, bottom) of one scene and a pixel size and returns an
RGB batch; ``weights`` returns, per pixel, how much of it belongs to each (object, part); the
ground-truth words of a view derive from those (``words``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from . import noise
from .vocab import MESO_PERIOD, MICRO, OBJECTS, Micro

Window = tuple[float, float, float, float]
#: Bump when renders change for the same seed and window: it is part of every ZoomWorld input's
#: source, so cached chains, truth scores and oracle prompts from an older renderer are not reused.
RENDER_VERSION = 6
#: A micro-texture's octaves start this many times below its word's frequency ``f_lo``: these
#: lead octaves fill the scales between a part and its micro-structure with a plain mottle, the
#: same for every texture (no gap in detail, but no hint of what comes); from ``f_lo`` on, the
#: texture's own generator (speckle, streak, cellular).
TEXTURE_LEAD = 16.0
LEAD_OCTAVES = 4  # log2(TEXTURE_LEAD)
#: The mottle is stretched along the part's direction (``angle``): from afar a view shows which way
#: its texture runs, not which kind it is.
LEAD_STRETCH = 2.5


@dataclass(frozen=True)
class Obj:
    kind: str
    cx: float
    cy: float
    size: float
    angle: float
    seed: int
    tint: tuple[float, float, float]


def _ellipse(u: torch.Tensor, v: torch.Tensor, a: float, b: float) -> torch.Tensor:
    """Approximate signed distance to an axis-aligned ellipse (object units)."""
    return (torch.sqrt((u / a) ** 2 + (v / b) ** 2) - 1.0) * min(a, b)


def _box(u: torch.Tensor, v: torch.Tensor, a: float, b: float) -> torch.Tensor:
    qx, qy = u.abs() - a, v.abs() - b
    return torch.sqrt(qx.clamp(min=0) ** 2 + qy.clamp(min=0) ** 2) + torch.maximum(qx, qy).clamp(max=0)


def _body_sdf(kind: str, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """The object's outline in its own units (about [-0.5, 0.5]^2), negative inside."""
    if kind == "strawberry":
        return (torch.sqrt((u / (0.42 * (1 - 0.35 * v).clamp(min=0.3))) ** 2 + (v / 0.5) ** 2) - 1) * 0.4
    if kind == "cat":
        return torch.minimum(_ellipse(u, v - 0.1, 0.5, 0.3), _ellipse(u + 0.36, v + 0.2, 0.2, 0.18))
    if kind == "wall":
        return _box(u, v, 0.48, 0.34) - 0.02
    if kind == "log":
        return _ellipse(u, v, 0.46, 0.4)
    if kind == "leaf":
        half = 0.22 * torch.sqrt((1 - (u / 0.5) ** 2).clamp(min=0))
        return torch.maximum(v.abs() - half, u.abs() - 0.5) * 0.8
    if kind == "fish":
        tail = torch.maximum(torch.maximum(0.3 - u, u - 0.56), v.abs() - (u - 0.3) * 1.1)
        return torch.minimum(_ellipse(u + 0.05, v, 0.4, 0.2), tail)
    raise KeyError(kind)


class Scene:
    """One ZoomWorld scene, deterministic by seed."""

    def __init__(self, seed: int) -> None:
        if not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"scene seed must be a non-negative integer, got {seed!r}")
        self.seed = int(seed)
        rng = np.random.default_rng([self.seed, 20251126])
        kinds = [k for k in OBJECTS if k != "ground"]
        objs: list[Obj] = []
        for i in range(int(rng.integers(3, 6))):
            for _ in range(30):  # rejection-sample centres so objects overlap only a little
                size = float(rng.uniform(0.22, 0.42))
                cx, cy = (float(c) for c in rng.uniform(0.15, 0.85, 2))
                if all(math.hypot(cx - o.cx, cy - o.cy) > 0.45 * (size + o.size) for o in objs):
                    break
            objs.append(Obj(str(rng.choice(kinds)), cx, cy, size, float(rng.uniform(-math.pi, math.pi)),
                            int(rng.integers(0, 2 ** 30)), tuple(float(t) for t in rng.uniform(0.88, 1.12, 3))))
        self.objects = objs
        self.ground_seed = int(rng.integers(0, 2 ** 30))
        self.ground_angle = float(rng.uniform(-math.pi, math.pi))  # the ground's grain (lead octaves)

    # -- the pieces ---------------------------------------------------------------------------

    def _local(self, o: Obj, X: torch.Tensor, Y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        c, s = math.cos(o.angle), math.sin(o.angle)
        dx, dy = X - o.cx, Y - o.cy
        return (dx * c + dy * s) / o.size, (-dx * s + dy * c) / o.size

    @staticmethod
    def _texture(m: Micro, X, Y, seed: int, pixel: float, angle) -> torch.Tensor:
        """The micro-texture's modulation in [-1, 1]."""
        # lead octaves: a mottle shared by all textures, so a coarse view does not reveal the kind
        t = noise.fbm(X, Y, seed + 977, m.f_lo / TEXTURE_LEAD, pixel, stretch=LEAD_STRETCH, angle=angle,
                      max_octaves=LEAD_OCTAVES)
        if noise.band_weight(m.f_lo, pixel) > 0.0:  # the texture's own octaves, from its word's scale
            if m.family == "speckle":
                t = t + noise.fbm(X, Y, seed, m.f_lo, pixel)
            elif m.family == "streak":
                t = t + noise.fbm(X, Y, seed, m.f_lo, pixel, stretch=m.stretch, angle=angle, ridged=True)
            else:
                t = t + noise.cellular(X, Y, seed, m.f_lo, pixel) * 1.6
        # A triangle wave, not tanh: the sum grows with the number of octaves at deep zoom, and a
        # saturating map would flatten the finest ones (a blur floor). The fold keeps local contrast,
        # and being piecewise linear, a pixel's average is the map of its average almost everywhere
        # (renders at two resolutions agree).
        x = 0.9 * t / 4 + 0.25
        return 1 - 4 * (x - torch.floor(x) - 0.5).abs()

    def _paint(self, m: Micro, X, Y, seed: int, pixel: float, tint, angle=0.0, shade=None) -> torch.Tensor:
        """RGB [B, 3, H, W] of a micro-texture with a tint and optional shading multiplier."""
        t = self._texture(m, X, Y, seed, pixel, angle)
        k = (0.5 + 0.45 * t).unsqueeze(1)
        dark = torch.tensor(m.dark, dtype=torch.float32, device=X.device).view(1, 3, 1, 1)
        light = torch.tensor(m.light, dtype=torch.float32, device=X.device).view(1, 3, 1, 1)
        rgb = (dark + (light - dark) * k) * torch.tensor(tint, dtype=torch.float32, device=X.device).view(1, 3, 1, 1)
        if shade is not None:
            rgb = rgb * shade.unsqueeze(1)
        return rgb

    def _parts(self, o: Obj, X, Y, pixel: float, lo):
        """[(part word, coverage [B,H,W] or None for the base part, paint())] in paint order.

        ``paint`` is called only when the part is visible in the view (textures are the costly bit).
        """
        u, v = self._local(o, X, Y)
        P = MESO_PERIOD
        m = {p.word: MICRO[p.micro] for p in OBJECTS[o.kind]}
        paint = self._paint

        out = []
        if o.kind == "cat":
            # fur locks: Voronoi cells of size P, one hair direction per lock, faint partings
            def fur():  # locks: one random direction each, parted by thin lines of (textured) skin
                angle, edge = _streak_cells(X, Y, o.seed + 11, pixel, lambda sx, sy, c: c * math.pi)
                col = paint(m["fur"], X, Y, o.seed, pixel, o.tint, angle, lo())
                if edge is None:
                    return col
                parting = noise.line_coverage(edge, 0.012 * P, pixel).unsqueeze(1)
                if float(parting.max()) == 0.0:
                    return col
                skin = paint(MICRO["creases"], X, Y, o.seed + 13, pixel, (1.0, 0.95, 0.9))
                return col * (1 - parting) + skin * parting
            out.append(("fur", None, fur))
            for k, ((eu, ev), r, word) in enumerate((((-0.45, -0.27), 0.04, "eye"), ((-0.31, -0.27), 0.04, "eye"),
                                                     ((-0.38, -0.17), 0.025, "nose"))):
                sdf = (torch.sqrt((u - eu) ** 2 + (v - ev) ** 2) - r) * o.size
                ang = torch.atan2(v - ev, u - eu)
                out.append((word, noise.smooth_coverage(sdf, pixel),
                            lambda word=word, ang=ang: paint(m[word], X, Y, o.seed + 1, pixel, (1, 1, 1), ang)))
        elif o.kind == "strawberry":
            out.append(("skin", None, lambda: paint(m["skin"], X, Y, o.seed, pixel, o.tint, o.angle, lo())))
            # seeds: an absolute jittered grid, spacing 1.6 P, radius 0.35 P, below the calyx
            g, rad = 1.6 * P, 0.35 * P
            gx, gy = torch.floor(X / g), torch.floor(Y / g)
            ix, iy = gx.to(torch.int64), gy.to(torch.int64)
            sx = (gx + 0.3 + 0.4 * noise.Lattice(ix, iy, o.seed + 21, 0)().double()) * g
            sy = (gy + 0.3 + 0.4 * noise.Lattice(ix, iy, o.seed + 22, 0)().double()) * g
            sdf = torch.sqrt((X - sx) ** 2 + (Y - sy) ** 2) - rad
            cov = noise.rough_coverage(sdf, X, Y, o.seed + 23, 1 / rad, pixel, 0.1) * (v > -0.3).float()
            rim = lambda: (1.0 - 0.35 * ((sdf / rad + 1).clamp(0, 1) ** 3)).float()  # noqa: E731
            out.append(("seeds", cov, lambda: paint(m["seeds"], X, Y, o.seed + 2, pixel, o.tint, o.angle, rim())))
            cal = (v - (-0.3 + 0.05 * torch.cos(u * 40))) * o.size
            out.append(("calyx", noise.smooth_coverage(cal, pixel),
                        lambda: paint(m["calyx"], X, Y, o.seed + 3, pixel, o.tint, torch.atan2(v + 0.6, u))))
        elif o.kind == "wall":
            out.append(("bricks", None, lambda: paint(m["bricks"], X, Y, o.seed, pixel, o.tint, o.angle, lo())))
            rows = (v + 0.34) / 0.07
            fv = rows - torch.floor(rows)
            cols = (u + 0.48) / 0.16 + (torch.floor(rows) % 2) * 0.5
            fu = cols - torch.floor(cols)
            d = torch.minimum(torch.minimum(fv, 1 - fv) * 0.07, torch.minimum(fu, 1 - fu) * 0.16) * o.size
            out.append(("mortar", noise.line_coverage(d, 0.006 * o.size, pixel),
                        lambda: paint(m["mortar"], X, Y, o.seed + 1, pixel, (1, 1, 1), o.angle)))
        elif o.kind == "log":
            out.append(("bark", None, lambda: paint(m["bark"], X, Y, o.seed, pixel, o.tint, o.angle, lo())))
            inner = _ellipse(u, v, 0.4, 0.34) * o.size

            def rings():
                r = torch.sqrt((u / 0.4) ** 2 + (v / 0.34) ** 2) * 0.34 * o.size  # radial distance, base units
                # dark latewood lines every P/2 along the rings, parallel to the fibres: every 4x
                # coarser view of the wood shows one; a view at AMBIGUITY_ZOOM mostly does not
                q = r / (0.5 * P)
                bands = 1.0 - 0.5 * noise.line_coverage((q - torch.floor(q) - 0.5).abs() * 0.5 * P, 0.04 * P, pixel)

                def tangent(sx, sy, _):  # the rings' direction at each cell's site: coherent across cells
                    su, sv = self._local(o, sx, sy)
                    return torch.atan2(sv * 0.4 / 0.34, su * 0.34 / 0.4) + math.pi / 2 + o.angle
                angle, _ = _streak_cells(X, Y, o.seed + 41, pixel, tangent)
                return paint(m["rings"], X, Y, o.seed + 1, pixel, o.tint, angle, lo() * bands)
            out.append(("rings", noise.rough_coverage(inner, X, Y, o.seed + 41, 1 / (0.05 * o.size), pixel, 0.1), rings))
        elif o.kind == "leaf":
            sub_pixel = pixel > 4 * P  # areoles and veinlets average out below the pixel: skip them
            if not sub_pixel:
                ax, ay, edge = noise.voronoi(X / P, Y / P, o.seed + 51)  # areoles: cells of size P

            def blade():
                patch = 1.0 if sub_pixel else 1.0 + 0.10 * (noise.uniform(ax, ay, o.seed + 52) * 2 - 1)
                return paint(m["blade"], X, Y, o.seed, pixel, o.tint, o.angle, lo() * patch)
            out.append(("blade", None, blade))
            s = (u * 0.7 + v.abs() * 0.7) / 0.12
            lateral = (s - torch.floor(s) - 0.5).abs() * 0.12 * 0.7 * o.size
            cov = torch.maximum(noise.line_coverage(v.abs() * o.size, 0.008 * o.size, pixel),
                                noise.line_coverage(lateral, 0.004 * o.size, pixel))
            if not sub_pixel:
                cov = torch.maximum(cov, noise.line_coverage(edge.double() * P, 0.03 * P, pixel))
            out.append(("veins", cov,
                        lambda: paint(m["veins"], X, Y, o.seed + 1, pixel, o.tint, o.angle)))
        elif o.kind == "fish":
            def scales():
                edge = noise.cell_edge_distance(u / 0.05, v / 0.05, o.seed + 61).double() * 0.05 * o.size
                rim = 1 - 0.25 * noise.line_coverage(edge, 0.002 * o.size, pixel)
                return paint(m["scales"], X, Y, o.seed, pixel, o.tint, o.angle + math.pi / 2, lo() * rim)
            out.append(("scales", None, scales))
            tail = torch.maximum(torch.maximum(0.3 - u, u - 0.56), v.abs() - (u - 0.3) * 1.1) * o.size
            out.append(("fin", noise.smooth_coverage(tail, pixel),
                        lambda: paint(m["fin"], X, Y, o.seed + 1, pixel, o.tint, o.angle)))
        return out

    def _ground(self, X, Y, pixel: float, lo):
        s = self.ground_seed
        out = [("soil", None, lambda: self._paint(MICRO["crumbs"], X, Y, s, pixel, (1, 1, 1), self.ground_angle, lo()))]
        g = 1 / 24
        gx, gy = torch.floor(X / g), torch.floor(Y / g)
        ix, iy = gx.to(torch.int64), gy.to(torch.int64)
        u = lambda k: noise.Lattice(ix, iy, s + k, 0)()  # noqa: E731
        keep = (u(3) < 0.45).float()
        sx = (gx + 0.3 + 0.4 * u(1).double()) * g
        sy = (gy + 0.3 + 0.4 * u(2).double()) * g
        rad = g * (0.15 + 0.15 * u(4).double())
        sdf = torch.sqrt((X - sx) ** 2 + (Y - sy) ** 2) - rad
        cov = noise.rough_coverage(sdf, X, Y, s + 6, 1 / (0.15 * g), pixel, 0.1) * keep
        out.append(("pebbles", cov, lambda: self._paint(MICRO["specks"], X, Y, s + 1, pixel, (1, 1, 1), self.ground_angle)))
        return out

    # -- public ---------------------------------------------------------------------------------

    def _pixel_box(self, o: Obj, windows: list[Window], size: int) -> tuple[int, int, int, int]:
        """Rows and columns (r0, r1, c0, c1) of the views an object can touch (union over the batch)."""
        reach = 0.75 * o.size
        r0, r1, c0, c1 = size, 0, size, 0
        for l, t, r, b in windows:
            pw, ph = (r - l) / size, (b - t) / size
            c0 = min(c0, max(0, math.floor((o.cx - reach - l) / pw)))
            c1 = max(c1, min(size, math.ceil((o.cx + reach - l) / pw)))
            r0 = min(r0, max(0, math.floor((o.cy - reach - t) / ph)))
            r1 = max(r1, min(size, math.ceil((o.cy + reach - t) / ph)))
        return r0, r1, c0, c1

    def evaluate(self, windows: list[Window], size: int, want_rgb: bool = True, device: str = "cpu"):
        """RGB [B, 3, size, size] (or None) and weights {(object index or -1, part): [B, size, size]}.

        Weights of every pixel sum to 1 (painter's order: ground, then objects, parts on top).
        All windows must have the same width (one pixel size per batch). Each object is evaluated
        only on the rows and columns it can reach.
        """
        X, Y, pixel = _grid(windows, size, device)
        full = (0, size, 0, size)
        objects = []
        for i, o in enumerate(self.objects):
            box = self._pixel_box(o, windows, size)
            if box[0] >= box[1] or box[2] >= box[3]:  # the object reaches none of the views
                continue
            Xc = X[:, box[0]:box[1], box[2]:box[3]].contiguous()
            Yc = Y[:, box[0]:box[1], box[2]:box[3]].contiguous()
            u, v = self._local(o, Xc, Yc)
            sdf = _body_sdf(o.kind, u, v) * o.size
            alpha = noise.rough_coverage(sdf, Xc, Yc, o.seed + 99, 4 / o.size, pixel, 0.08)
            if float(alpha.max()) > 0:
                objects.append((i, o, Xc, Yc, alpha, box))
        # an object covering the whole view hides everything painted before it: skip that
        first = 0
        for k, (_, _, _, _, alpha, box) in enumerate(objects):
            if box == full and float(alpha.min()) >= 1.0:
                first = k + 1
        memo: list[torch.Tensor] = []

        def shade(box):  # slow brightness variation (one field per scene, computed once, on demand)
            def crop() -> torch.Tensor:
                if not memo:
                    memo.append(1.0 + 0.09 * noise.fbm(X, Y, self.ground_seed + 5, 6.0, pixel, gain=0.5, max_octaves=4))
                return memo[0][:, box[0]:box[1], box[2]:box[3]]
            return crop

        layers = [] if first else [(-1, self._ground(X, Y, pixel, shade(full)), None, full)]
        start = max(first - 1, 0)
        for i, o, Xc, Yc, alpha, box in objects[start:]:
            layers.append((i, self._parts(o, Xc, Yc, pixel, shade(box)),
                           None if (first and i == objects[start][0]) else alpha, box))

        def embed(t: torch.Tensor, box) -> torch.Tensor:
            if box == full:
                return t
            out = torch.zeros(X.shape, dtype=torch.float32, device=X.device)
            out[:, box[0]:box[1], box[2]:box[3]] = t
            return out

        # weights first (cheap), then paint only the parts with any weight left in the view
        weights: dict[tuple[int, str], torch.Tensor] = {}
        for idx, parts, alpha, box in layers:
            a = torch.ones(X.shape, dtype=torch.float32, device=X.device) if alpha is None else embed(alpha, box)
            for key in weights:
                weights[key] = weights[key] * (1 - a)
            layer_w: list[tuple[str, torch.Tensor]] = []
            for word, cov, _ in parts:
                c = torch.ones(X.shape, dtype=torch.float32, device=X.device) if cov is None else embed(cov.float(), box)
                layer_w = [(wd, w * (1 - c)) for wd, w in layer_w] + [(word, c)]
            for word, w in layer_w:
                weights[(idx, word)] = weights.get((idx, word), 0) + w * a
        if not want_rgb:
            return None, weights
        rgb = torch.zeros((len(windows), 3, size, size), dtype=torch.float32, device=X.device)
        for idx, parts, _, box in layers:
            for word, _, paint in parts:
                w = weights.get((idx, word))
                if w is None:
                    continue
                w = w[:, box[0]:box[1], box[2]:box[3]]
                if float(w.max()) > 1e-4:
                    rgb[:, :, box[0]:box[1], box[2]:box[3]] += paint() * w.unsqueeze(1)
        return rgb.clamp(0, 1), weights

    def render(self, windows: list[Window], size: int, device: str = "cpu") -> torch.Tensor:
        """RGB float [B, 3, size, size] in [0, 1] of the given windows."""
        return self.evaluate(windows, size, True, device)[0]

    def kind_of(self, idx: int) -> str:
        return "ground" if idx < 0 else self.objects[idx].kind


def _grid(windows: list[Window], size: int, device: str = "cpu"):
    """Pixel-centre coordinates [B, size, size] (float64) and the common pixel size."""
    if size <= 0:
        raise ValueError(f"size must be a positive number of pixels, got {size}")
    w = torch.tensor(windows, dtype=torch.float64, device=device).reshape(-1, 4)
    widths = w[:, 2] - w[:, 0]
    if torch.any(widths <= 0) or torch.any(w[:, 3] - w[:, 1] <= 0):
        raise ValueError("window must have right > left and bottom > top")
    if not torch.allclose(widths, widths[0], rtol=1e-9, atol=0):
        raise ValueError("all windows in one batch must have the same width")
    t = (torch.arange(size, dtype=torch.float64, device=device) + 0.5) / size
    X = w[:, 0, None, None] + t[None, None, :] * widths[:, None, None]
    Y = w[:, 1, None, None] + t[None, :, None] * (w[:, 3] - w[:, 1])[:, None, None]
    X, Y = X.expand(-1, size, size), Y.expand(-1, size, size)
    return X.contiguous(), Y.contiguous(), float(widths[0]) / size


def _streak_cells(X, Y, seed: int, pixel: float, angle_of) -> tuple[torch.Tensor | float, torch.Tensor | None]:
    """Cells of size MESO_PERIOD with one streak direction each: (direction, distance to the
    nearest cell wall in base units).

    Fur locks and wood both use it, so their deep-zoom views share one distribution; what
    differs is ``angle_of(site_x, site_y, u)`` (random per lock for fur, the ring tangent for
    wood) and what each draws at the walls (fur: partings; wood: nothing). A direction constant
    per cell also avoids the phase 'chirp' a per-pixel rotation of high-frequency noise would
    cause. When the streak texture has no visible octave, nothing is computed.
    """
    P = MESO_PERIOD
    if noise.band_weight(0.5 / P, pixel) == 0.0:  # hairs' and fibres' first octave (f_lo / TEXTURE_LEAD)
        return 0.0, None
    cx, cy, edge = noise.voronoi(X / P, Y / P, seed)
    sx = (cx.double() + noise.uniform(cx, cy, seed).double()) * P
    sy = (cy.double() + noise.uniform(cx, cy, seed + 7).double()) * P
    return angle_of(sx, sy, noise.uniform(cx, cy, seed + 1).double()), edge.double() * P
