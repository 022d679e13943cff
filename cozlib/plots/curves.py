"""Curves: metrics per magnification, GRPO's reward curves beside the paper's (Figure 6), training
curves of a weights folder.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

from ..experiments.tables import per_scale_means


def per_scale_figure(rows: Sequence[dict], metrics: Sequence[str], methods: Sequence[str], intervals: bool = True):
    """Mean metric per magnification, one panel per metric, one line per method, with the 95% bootstrap
    interval of the mean over images shaded (``experiments.stats.mean_interval``)."""
    import matplotlib.pyplot as plt
    from ..experiments.stats import mean_interval
    from ..experiments.tables import per_scene_values
    from ..metrics import LOWER_IS_BETTER
    ncol = min(len(metrics), 3)
    nrow = -(-len(metrics) // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.4 * ncol, 3.4 * nrow), squeeze=False)
    for ax in axes.flat[len(metrics):]:
        ax.axis("off")
    for ax, metric in zip(axes.flat, metrics):
        means = per_scale_means(rows, metric)
        for label in methods:
            if label not in means:
                continue
            xs = list(means[label])
            line, = ax.plot(xs, [means[label][x] for x in xs], marker="o", label=label)
            if intervals:
                ci = [mean_interval(list(per_scene_values(rows, metric, label, x).values()))[1:3] for x in xs]
                ax.fill_between(xs, [c[0] for c in ci], [c[1] for c in ci], color=line.get_color(), alpha=0.15, lw=0)
        ax.set_xscale("log", base=4)
        ax.set_xticks(xs, [f"{x}x" for x in xs])
        ax.set_title(f"{metric.upper()} ({'lower' if metric in LOWER_IS_BETTER else 'higher'} is better)")
        ax.set_xlabel("magnification of the state")
        ax.set_ylabel(f"mean {metric.upper()} over images")
        ax.grid(alpha=0.3)
    axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def figure6(history: Sequence[dict]):
    """Figure-6-style reward curves of a GRPO run (trl's log: rewards/<name>/mean per step), four
    panels (critic, phrase, repetition, total), the paper's read-off values beside them against the
    paper's own steps (``reward_curves``)."""
    from .paper import reward_curves
    return reward_curves({"this run": history}, paper=True)


def training_curves(folder: str | os.PathLike, key: str | None = None, ylabel: str = "loss"):
    """The training curves of a weights folder (its ``history.json``: {stage: [{step, loss...}]}),
    one panel per stage (or, with ``key``, that loss of every stage in one panel)."""
    import matplotlib.pyplot as plt
    hist = json.loads((Path(folder) / "history.json").read_text())
    stages = [s for s, rows in hist.items() if rows]
    if key is not None:
        fig, ax = plt.subplots(figsize=(5, 3))
        for name in stages:
            ax.plot([r["step"] for r in hist[name]], [r[key] for r in hist[name]], label=name)
        ax.set_yscale("log"), ax.set_xlabel("step"), ax.set_ylabel(ylabel), ax.legend()
        fig.tight_layout()
        return fig
    cols = min(4, len(stages))
    nrows = -(-len(stages) // cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(4.2 * cols, 3.4 * nrows), squeeze=False)
    for ax in axes.flat[len(stages):]:
        ax.set_visible(False)
    for ax, name in zip(axes.flat, stages):
        rows = hist[name]
        steps = [r["step"] for r in rows]
        keys = [k for k in rows[0] if k != "step"]
        for k in keys:
            ax.plot(steps, [r[k] for r in rows], label=k)
        positive = all(r[k] > 0 for r in rows for k in keys)
        ax.set_yscale("log") if positive else ax.set_yscale("symlog", linthresh=0.01)
        ax.set_title(name)
        ax.set_xlabel("optimizer step")
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
