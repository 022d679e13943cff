"""The zoom explorer: a slider over zoom levels, the methods side by side, from cached chain results.

``zoom_explorer`` builds the ipywidgets view (works in JupyterLab and in executed notebooks);
``plots.explorer_grid`` draws the same content as one static image, so a headless run yields a figure.
"""
from __future__ import annotations

import io
from typing import Mapping, Sequence

from PIL import Image

from .chain import ChainResult


def _png(im: Image.Image, size: int) -> bytes:
    buf = io.BytesIO()
    im.resize((size, size), Image.NEAREST if im.width < size else Image.LANCZOS).save(buf, "PNG")
    return buf.getvalue()


def zoom_explorer(results: Mapping[tuple[str, str], ChainResult], methods: Sequence[str], tile: int = 256):
    """ipywidgets: an image dropdown, a zoom slider, one panel (+ its prompt) per method."""
    import ipywidgets as W

    images = sorted({name for name, _ in results})
    first = results[(images[0], methods[0])]
    n = len(first.states) - 1
    pick = W.Dropdown(options=images, description="image")
    zoom = W.SelectionSlider(options=[("x_0" if k == 0 else f"{first.config.upscale ** k}x", k) for k in range(n + 1)],
                             value=0, description="zoom", continuous_update=True)
    panels = {m: W.Image(format="png", width=tile, height=tile) for m in methods}
    captions = {m: W.HTML() for m in methods}

    def update(*_):
        for m in methods:
            res = results[(pick.value, m)]
            k = zoom.value
            panels[m].value = _png(res.states[k], tile)
            prompt = res.prompts[k - 1] if k >= 1 and res.prompts else ""
            captions[m].value = f"<b>{m}</b>" + (f"<br><small>prompt: {prompt or '(empty)'}</small>" if k else "")

    pick.observe(update, "value")
    zoom.observe(update, "value")
    update()
    columns = [W.VBox([captions[m], panels[m]]) for m in methods]
    return W.VBox([W.HBox([pick, zoom]), W.HBox(columns)])
