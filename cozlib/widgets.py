"""The zoom explorer's widgets (ipywidgets; clicks through ipyevents): pick a photo, a ZoomWorld
scene or an upload, click where to zoom, slide through the levels, compare the methods side by side.

Chains are computed in a background thread with a progress bar, so the kernel never blocks; a new
click cancels the chains of the previous one; results come from and go to the chain cache. The
logic lives in ``cozlib.explorer``; ``plots.explorer_grid`` draws the static version.
"""
from __future__ import annotations

import html
import threading
from pathlib import Path

from .experiments.methods import MethodModels
from .explorer import Cancelled, Source, compute, level_rows, methods_for, photo_source, png, upload_source, world_scene


class ZoomExplorer:
    """The explorer's state and widgets; ``widget`` is what the notebook displays."""

    def __init__(self, photos: list[str], process_size: int = 256, steps: int = 4, cache_dir: str | Path | None = None,
                 device: str = "cpu", tile: int = 200, overview: int = 320, seed: int = 1010000) -> None:
        import ipywidgets as W
        from .chain import ChainCache, ChainConfig
        self.config = ChainConfig(steps=steps, upscale=4, process_size=process_size).validate()
        self.cache = ChainCache(cache_dir) if cache_dir else None
        self.device, self.tile, self.overview_px = device, tile, overview
        self.models = MethodModels(device)  # loaded once, kept across clicks
        self.results: dict = {}
        self.point = (0.5, 0.5)
        self._generation = 0
        self._lock = threading.Lock()
        self.kind = W.ToggleButtons(options=[("photo", "photo"), ("ZoomWorld", "world"), ("upload", "upload")],
                                    value="photo", description="source")
        self.photo = W.Dropdown(options=photos, value=photos[0], description="photo")
        self.seed = W.BoundedIntText(value=seed, min=0, max=2 ** 62, description="scene seed")
        self.upload = W.FileUpload(accept="image/*", multiple=False, description="upload")
        self.overview = W.Image(format="png", width=overview, height=overview)
        self._shown = (overview, overview)
        self.overview.add_class("coz-overview")
        self.zoom = W.SelectionSlider(options=[("x_0", 0)] + [(f"{4 ** k}x", k) for k in range(1, steps + 1)], value=1,
                                      description="zoom", continuous_update=False)
        self.zoom.add_class("coz-zoom")
        self.progress = W.IntProgress(value=0, min=0, max=1, description="chains")
        self.status = W.HTML()
        self.status.add_class("coz-status")
        # as many columns of panels as the notebook's width holds (the rest wrap to new rows)
        self.panels = W.GridBox(layout=W.Layout(grid_template_columns=f"repeat(auto-fill, {tile + 10}px)",
                                                flex="1 1 auto"))
        self.source = photo_source(photos[0])
        self._connect()
        controls = W.VBox([self.kind, W.HBox([self.photo, self.seed, self.upload]), self.zoom,
                           W.HBox([self.progress, self.status])])
        help_text = W.HTML("<small>Click the image to choose where to zoom; the chain then zooms into that point "
                           "(x_0 re-centred there). Slide through the zoom levels above.</small>",
                           layout=W.Layout(width=f"{overview}px"))
        left = W.VBox([help_text, self.overview], layout=W.Layout(width=f"{overview + 16}px", flex="0 0 auto"))
        self.widget = W.VBox([controls, W.HBox([left, self.panels])])
        self._show_source()

    # -- events -------------------------------------------------------------------------------
    def _connect(self) -> None:
        from ipyevents import Event
        self._click = Event(source=self.overview, watched_events=["click"])
        self._click.on_dom_event(self._on_click)
        self.kind.observe(lambda _: self._pick(), "value")
        self.photo.observe(lambda _: self._pick() if self.kind.value == "photo" else None, "value")
        self.seed.observe(lambda _: self._pick() if self.kind.value == "world" else None, "value")
        self.upload.observe(lambda _: self._pick() if self.kind.value == "upload" else None, "value")
        self.zoom.observe(lambda _: self._draw(), "value")

    def _on_click(self, event: dict) -> None:
        x, y = event.get("dataX"), event.get("dataY")  # pixels of the shown PNG
        if x is None or y is None:
            return
        w, h = self._shown
        self.select((x / w, y / h))

    def _pick(self) -> None:
        try:
            if self.kind.value == "photo":
                self.source = photo_source(self.photo.value)
            elif self.kind.value == "world":
                self.source = world_scene(int(self.seed.value))
            else:
                if not self.upload.value:
                    self.status.value = "choose an image file with the upload button"
                    return
                f = self.upload.value[0]
                self.source = upload_source(bytes(f["content"]), f["name"])
        except Exception as e:  # noqa: BLE001  (a bad upload or seed: say so in the widget)
            self.status.value = f"<span style='color:#b00'>error: {html.escape(str(e))}</span>"
            return
        self.point = (0.5, 0.5)
        self._show_source()

    # -- work ---------------------------------------------------------------------------------
    def _show_source(self) -> None:
        self._draw_overview()
        self.select(self.point)

    def select(self, point: tuple[float, float]) -> None:
        """Zoom into ``point`` (fractions of the shown image): the chains run in a thread."""
        self.point = (min(max(point[0], 0.0), 1.0), min(max(point[1], 0.0), 1.0))
        self._draw_overview()
        with self._lock:
            self._generation += 1
            generation = self._generation
        methods = methods_for(self.source)
        self.progress.max, self.progress.value = self.config.steps * len(methods), 0
        self.status.value = f"computing {len(methods)} chains at ({self.point[0]:.2f}, {self.point[1]:.2f}) ..."
        threading.Thread(target=self._work, args=(generation, methods), daemon=True).start()

    def _work(self, generation: int, methods) -> None:
        def progress(done: int, total: int, label: str) -> None:
            self.progress.value = done
            self.status.value = f"{html.escape(label)}: step {done} of {total}"
        try:
            results = compute(self.source, self.point, self.config, self.cache, methods, self.device, progress,
                              cancelled=lambda: generation != self._generation, models=self.models)
        except Cancelled:
            return
        except Exception as e:  # noqa: BLE001  (shown in the widget; the kernel stays usable)
            self.status.value = f"<span style='color:#b00'>error: {html.escape(str(e))}</span>"
            return
        if generation != self._generation:
            return
        self.results = results
        self.progress.value = self.progress.max
        self._draw()  # the panels first: "done" means they show the new chains
        self.status.value = "done: slide through the zoom levels"

    # -- drawing ------------------------------------------------------------------------------
    def _draw_overview(self) -> None:
        """The whole source at most ``overview`` px a side, the zoom point marked."""
        from PIL import ImageDraw
        im = self.source.image.copy()
        scale = self.overview_px / max(im.size)
        im = im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))))
        self._shown = im.size
        self.overview.width, self.overview.height = im.size
        d = ImageDraw.Draw(im)
        x, y = self.point[0] * im.width, self.point[1] * im.height
        for r, c in ((7, (255, 255, 255)), (5, (230, 30, 30))):
            d.ellipse([x - r, y - r, x + r, y + r], outline=c, width=2)
        self.overview.value = png(im)

    def _draw(self) -> None:
        if not self.results:
            return
        k = self.zoom.value
        rows = level_rows(self.results, k)
        cards = []
        for label, res in self.results.items():
            row = rows.get(label, {})
            text = [f"<b>{html.escape(label)}</b>"]
            if k >= 1 and res.config.uses_backbone:
                text.append(f"<span class='coz-prompt'>prompt: {html.escape(row.get('prompt') or '(empty)')}</span>")
            if "texture" in row:
                hal = row.get("hallucination")
                text.append(f"texture distance {row['texture']:.3f}"
                            + (f", hallucination {hal:.2f}" if hal is not None else ""))
            cards.append(self._card(res.states[k], "<br>".join(text)))
        if "Truth" in rows and rows["Truth"]["image"] is not None:
            words = ", ".join(f"{w} {f:.2f}" for w, f in list(rows["Truth"]["words"].items())[:6])
            cards.append(self._card(rows["Truth"]["image"], f"<b>Truth</b><br>true words: {html.escape(words)}"))
        self.panels.children = cards

    def _card(self, image, caption: str):
        import ipywidgets as W
        img = W.Image(value=png(image, self.tile), format="png", width=self.tile, height=self.tile)
        cap = W.HTML(f"<div style='width:{self.tile}px;font-size:11px;line-height:1.25'>{caption}</div>")
        box = W.VBox([img, cap])
        box.add_class("coz-panel")
        return box


def zoom_explorer(photos: list[str], process_size: int = 256, steps: int = 4, cache_dir: str | Path | None = None,
                  device: str = "cpu", **kw):
    """The explorer widget (display it in JupyterLab)."""
    return ZoomExplorer(photos, process_size, steps, cache_dir, device, **kw).widget


__all__ = ["ZoomExplorer", "zoom_explorer", "Source"]
