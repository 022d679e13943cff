"""Figures of chains and views: the strip of states, the zoom boxes on x_0, the paper's Figure 5 and
Figure 8 grids, one protocol step, a grid of views with captions, the explorer's static grid.
"""
from __future__ import annotations

from typing import Mapping, Sequence

from PIL import Image, ImageDraw

from ..chain import ChainResult


def draw_zoom_boxes(x0: Image.Image, windows: Sequence[tuple[float, float, float, float]],
                    color=(255, 40, 40)) -> Image.Image:
    """x_0 with the nested windows of the states drawn on it (the paper's box-and-line style)."""
    from PIL import ImageDraw
    im = x0.copy()
    d = ImageDraw.Draw(im)
    w, h = im.size
    lw = max(1, w // 170)  # visible after the figure shrinks the panel
    for l, t, r, b in windows[1:]:
        d.rectangle([l * w - lw, t * h - lw, r * w + lw - 1, b * h + lw - 1], outline=color, width=lw)
    return im


def figure5(results: Mapping[tuple[str, str], ChainResult], image: str, methods: Sequence[str]):
    """Figure-5-style grid: one row per method, columns x_0 (with the zoom boxes) then 4x .. 4^n x."""
    import matplotlib.pyplot as plt
    first = results[(image, methods[0])]
    n = len(first.states) - 1
    fig, axes = plt.subplots(len(methods), n + 1, figsize=(2.0 * (n + 1), 2.05 * len(methods)), squeeze=False)
    for i, label in enumerate(methods):
        res = results[(image, label)]
        for k in range(n + 1):
            ax = axes[i][k]
            im = draw_zoom_boxes(res.states[0], res.windows) if k == 0 else res.states[k]
            ax.imshow(im, interpolation="nearest")
            ax.set_xticks([]), ax.set_yticks([])
            if i == 0:
                ax.set_title("x_0" if k == 0 else f"{res.magnifications[k]}x", fontsize=10)
            if k == 0:
                ax.set_ylabel(label, fontsize=10)
    fig.tight_layout()
    return fig


def protocol_figure(result: ChainResult, step: int = 1):
    """One zoom step drawn: x_{i-1} with the crop box, the low-res crop, its bicubic upsampling (the SR
    input and the VLM's "zoomed" image) and the SR output x_i."""
    import matplotlib.pyplot as plt
    from .. import geometry
    prev, out = result.states[step - 1], result.states[step]
    s = result.config.upscale
    box = geometry.center_crop_box(*prev.size, s)
    lr, up = geometry.zoom_input(prev, s)
    panel = draw_zoom_boxes(prev, [(0, 0, 1, 1), tuple(v / prev.size[0] for v in box)])
    titles = [f"x_{step - 1} and the crop box {box}", f"crop {lr.size[0]}x{lr.size[1]} px",
              f"BICUBIC to {up.size[0]} px (SR input)", f"SR output x_{step}"]
    fig, axes = plt.subplots(1, 4, figsize=(13, 3.6))
    for ax, im, t in zip(axes, [panel, lr, up, out], titles):
        ax.imshow(im, interpolation="nearest")
        ax.set_title(t, fontsize=9)
        ax.set_xticks([]), ax.set_yticks([])
    fig.tight_layout()
    return fig


def views_figure(images: Sequence[Image.Image], titles: Sequence[str], captions: Sequence[str] = (), cols: int | None = None,
                 panel: float = 2.3):
    """A row (or grid) of views with titles and optional captions (e.g. their true words); ``panel``: each
    view's width in inches (large grids use less, so that the published notebooks stay small)."""
    import matplotlib.pyplot as plt
    cols = cols or len(images)
    rows = -(-len(images) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(panel * cols, (panel + 0.3) * rows + (0.5 if captions else 0)),
                             squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.set_xticks([]), ax.set_yticks([])
        if i >= len(images):
            ax.axis("off")
            continue
        ax.imshow(images[i], interpolation="nearest")
        ax.set_title(titles[i], fontsize=9)
        if captions:
            ax.set_xlabel(captions[i], fontsize=7, wrap=True)
    fig.tight_layout()
    return fig


def figure8(results: Mapping[tuple[str, str], ChainResult], image: str, methods: Sequence[str], wrap: int = 28,
            truth: tuple[Sequence[Image.Image], Sequence[Mapping[str, float]]] | None = None):
    """Figure-8-style grid: one row per prompt source, columns the zoom levels; under each state the
    prompt that produced it (c_k), so a hallucinated word shows where it enters the chain. With
    ``truth`` (the true states x_0..x_n and the true words of each, ZoomWorld), a first row shows the
    truth with its words, and each prompt's false words (vocabulary words not true of the state's
    window) are named in red under it."""
    import textwrap
    import matplotlib.pyplot as plt
    from ..metrics.truth import prompt_words
    from ..world.vocab import vocabulary
    first = results[(image, methods[0])]
    n = len(first.states) - 1
    rows = (["truth"] if truth is not None else []) + list(methods)
    fig, axes = plt.subplots(len(rows), n, figsize=(2.2 * n, 2.8 * len(rows)), squeeze=False)
    vocab = vocabulary() if truth is not None else ()
    for i, label in enumerate(rows):
        res = None if label == "truth" else results[(image, label)]
        for k in range(1, n + 1):
            ax = axes[i][k - 1]
            state = truth[0][k] if res is None else res.states[k]
            ax.imshow(state, interpolation="nearest")
            ax.set_xticks([]), ax.set_yticks([])
            if res is None:
                text = "true: " + ", ".join(sorted(truth[1][k], key=lambda w: -truth[1][k][w]))
            else:
                text = res.prompts[k - 1] or "(empty)"
            ax.set_xlabel(textwrap.fill(text, wrap), fontsize=7)
            if res is not None and truth is not None:
                named, _ = prompt_words(res.prompts[k - 1], vocab)
                false = sorted(named - set(truth[1][k]))
                if false:
                    ax.text(0.5, 1.01, "false: " + ", ".join(false), transform=ax.transAxes, ha="center",
                            va="bottom", fontsize=7, color="C3", wrap=True)
            if i == 0:
                ax.set_title(f"{first.magnifications[k]}x", fontsize=10, pad=14 if truth is not None else 6)
            if k == 1:
                ax.set_ylabel(label, fontsize=9)
    fig.tight_layout()
    return fig


def chain_strip(states: Sequence[Image.Image], labels: Sequence[str] | None = None,
                tile: int = 256, pad: int = 4) -> Image.Image:
    """The states side by side, each resized to ``tile`` px (nearest, to show real pixels), labelled."""
    labels = list(labels) if labels is not None else [f"x{k}" for k in range(len(states))]
    label_h = 18
    W = len(states) * tile + (len(states) + 1) * pad
    strip = Image.new("RGB", (W, tile + 2 * pad + label_h), (255, 255, 255))
    draw = ImageDraw.Draw(strip)
    for k, (im, lab) in enumerate(zip(states, labels)):
        x = pad + k * (tile + pad)
        strip.paste(im.resize((tile, tile), Image.NEAREST if im.width < tile else Image.LANCZOS), (x, pad))
        draw.text((x + 2, tile + pad + 3), lab, fill=(0, 0, 0))
    return strip


def _fit(im: Image.Image, size: int) -> Image.Image:
    """``im`` at ``size`` px: nearest when enlarging (real pixels), LANCZOS when shrinking."""
    return im.resize((size, size), Image.NEAREST if im.width < size else Image.LANCZOS)


def explorer_grid(results: Mapping[tuple[str, str], ChainResult], image: str, methods: Sequence[str],
                  tile: int = 192, pad: int = 4, extra: Sequence[tuple[str, Sequence[Image.Image]]] = ()) -> Image.Image:
    """The zoom explorer as one static image: rows = methods (then ``extra`` rows such as the truth),
    columns = zoom levels, labelled."""
    rows = [(label, results[(image, label)].states) for label in methods] + [(l, list(s)) for l, s in extra]
    n = len(rows[0][1])
    label_w, label_h = 110, 16
    W = label_w + n * (tile + pad) + pad
    H = label_h + len(rows) * (tile + pad) + pad
    grid = Image.new("RGB", (W, H), (255, 255, 255))
    d = ImageDraw.Draw(grid)
    mags = results[(image, methods[0])].magnifications
    for k in range(n):
        d.text((label_w + k * (tile + pad) + 4, 2), "x_0" if k == 0 else f"{mags[k]}x", fill=(0, 0, 0))
    for i, (label, states) in enumerate(rows):
        y = label_h + i * (tile + pad)
        d.text((4, y + tile // 2), label, fill=(0, 0, 0))
        for k, st in enumerate(states):
            grid.paste(_fit(st, tile), (label_w + k * (tile + pad), y))
    return grid
