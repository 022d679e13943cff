"""The paper's Figures 1-4 and 7 (docs/PAPER.md §7), drawn from measured results: zoom chains with
boxes and lines (Figure 1), one step against the chain (Figure 2), detail per step (Figure 3), the
GRPO pipeline from the trainer's own objects with one real group (Figure 4), reward curves of two
critics (Figure 7).
"""
from __future__ import annotations

from typing import Mapping, Sequence

from PIL import Image

BOX = (1.0, 0.16, 0.16)   # the paper's red boxes and lines


def _panel(ax, im: Image.Image, title: str = "", caption: str = "") -> None:
    ax.imshow(im, interpolation="nearest")
    ax.set_xticks([]), ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)
    if caption:
        import textwrap
        ax.set_xlabel(textwrap.fill(caption, 44), fontsize=7)


def zoom_chain_figure(rows: Sequence[tuple[str, Sequence[Image.Image]]], upscale: int,
                      captions: Sequence[str] = ()):
    """Figure 1's layout: each row a zoom chain x_0 .. x_n; on every panel but the last, the box of
    the next state's window (the centred 1/upscale crop), joined by lines to the next panel's corners.
    ``captions`` go under the panels of the first row (e.g. the prompts c_k)."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import ConnectionPatch, Rectangle
    n = len(rows[0][1])
    fig, axes = plt.subplots(len(rows), n, figsize=(2.3 * n, 2.5 * len(rows)), squeeze=False)
    for r, (label, states) in enumerate(rows):
        for k, im in enumerate(states):
            ax = axes[r][k]
            cap = captions[k] if r == 0 and k < len(captions) else ""
            _panel(ax, im, f"x_{k}  ({upscale ** k}x)" if r == 0 else "", cap)
            if k == 0:
                ax.set_ylabel(label, fontsize=9)
            if k == n - 1:
                continue
            w, h = im.size
            bw, bh = w / upscale, h / upscale
            x0, y0 = (w - bw) / 2, (h - bh) / 2
            ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), bw, bh, fill=False, ec=BOX, lw=1.5))
            nw, nh = states[k + 1].size
            for (ya, yb) in ((y0 - 0.5, -0.5), (y0 + bh - 0.5, nh - 0.5)):   # box corners -> next panel corners
                fig.add_artist(ConnectionPatch(xyA=(x0 + bw - 0.5, ya), coordsA=ax.transData, xyB=(-0.5, yb),
                                               coordsB=axes[r][k + 1].transData, color=BOX, lw=1))
    fig.tight_layout(w_pad=2.5)
    return fig


def onestep_figure(direct: Sequence[Image.Image], chain: Sequence[Image.Image], truth: Sequence[Image.Image],
                   magnifications: Sequence[int], prompts: Sequence[str], scores: Mapping[str, Sequence[float]],
                   labels: tuple[str, str] = ("one step (direct SR)", "chain (CoZ)")):
    """Figure 2's layout: per magnification (columns) the one-step state, the chain's state with the
    prompts that led to it, and the truth; ``scores`` {row label: texture distance per column}."""
    import matplotlib.pyplot as plt
    cols = len(magnifications)
    fig, axes = plt.subplots(3, cols, figsize=(3.0 * cols, 9.0), squeeze=False)
    for c, x in enumerate(magnifications):
        for r, (label, ims) in enumerate(zip((*labels, "truth"), (direct, chain, truth))):
            s = scores.get(label)
            title = f"{x}x" + (f" · texture {s[c]:.3f}" if s is not None else "")
            _panel(axes[r][c], ims[c], title, prompts[c] if r == 1 else "")
            if c == 0:
                axes[r][c].set_ylabel(label, fontsize=9)
    fig.tight_layout()
    return fig


def detail_figure(strips: Sequence[tuple[str, Sequence[Image.Image]]], table: Sequence[Sequence],
                  magnifications: Sequence[int]):
    """Figure 3: left, the states of one scene per row (Markov chain, AR-2 chain, truth); right, the
    measured detail energy per step (``experiments.detail.detail_table``'s rows) and the texture
    distance to the truth."""
    import matplotlib.pyplot as plt
    n = len(strips[0][1])
    fig = plt.figure(figsize=(2.0 * n + 7.5, 2.0 * len(strips) + 0.6))
    gs = fig.add_gridspec(len(strips), n + 4)
    for r, (label, ims) in enumerate(strips):
        for k, im in enumerate(ims):
            ax = fig.add_subplot(gs[r, k])
            _panel(ax, im, f"{magnifications[k]}x" if r == 0 else "")
            if k == 0:
                ax.set_ylabel(label, fontsize=8)
    xs = list(range(len(table)))
    ax = fig.add_subplot(gs[:, n:n + 2])
    for col, label, style in ((1, "Markov (null prompt)", "o-"), (2, "AR-2 with prompts", "s-"), (3, "truth", "k--")):
        ax.plot(xs, [row[col] for row in table], style, label=label)
    ax.set_title("detail energy (finest bands)", fontsize=9)
    ax.set_ylabel("mean square of the finest bands x1e3", fontsize=8)
    ax.legend(fontsize=7)
    ax2 = fig.add_subplot(gs[:, n + 2:])
    for col, label, style in ((6, "Markov (null prompt)", "o-"), (7, "AR-2 with prompts", "s-")):
        ax2.plot(xs, [row[col] for row in table], style, label=label)
    ax2.set_title("texture distance to the truth (lower is better)", fontsize=9)
    ax2.set_ylabel("texture distance", fontsize=8)
    for a in (ax, ax2):
        a.set_xticks(xs, [row[0] for row in table])
        a.set_xlabel("magnification of the state", fontsize=8)
        a.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def _box(ax, xy, text, color="#eef", fontsize=8):
    ax.text(*xy, text, ha="center", va="center", fontsize=fontsize, wrap=True,
            bbox=dict(boxstyle="round,pad=0.5", fc=color, ec="0.3"))


def _arrow(ax, a, b):
    ax.annotate("", xy=b, xytext=a, arrowprops=dict(arrowstyle="->", color="0.3", lw=1.2))


def grpo_pipeline_figure(spec: Mapping, group: Mapping):
    """Figure 4: the GRPO pipeline as the trainer runs it (``grpo.pipeline.pipeline_spec``: the
    message, the trainable LoRA, the reward functions and their weights, the frozen critic) with one
    real group (``grpo.pipeline.sample_group``): its two images, completions, three rewards, R and the
    group-normalised advantages."""
    import matplotlib.pyplot as plt
    import textwrap
    fig = plt.figure(figsize=(15, 8.2))
    gs = fig.add_gridspec(2, 6, height_ratios=[1.15, 1])
    for i, (im, t) in enumerate(zip(group["images"], ("x_{i-1} (coarser)", "zoomed input"))):
        _panel(fig.add_subplot(gs[0, i]), im, t)
    ax = fig.add_subplot(gs[0, 2:])
    ax.set_xlim(0, 1), ax.set_ylim(0, 1), ax.axis("off")
    msg = textwrap.fill(spec["message"], 46)
    _box(ax, (0.13, 0.82), "message (system)\n" + msg, "#f4f4f4", 7)
    _box(ax, (0.13, 0.38), f"policy VLM\n{textwrap.fill(str(spec['policy']), 36)}\ntrainable: LoRA r={spec['lora_r']}, "
                           f"alpha={spec['lora_alpha']} on\n{textwrap.fill(spec['lora_targets'], 36)}\nvision tower frozen",
         "#dfd", 7)
    _arrow(ax, (0.13, 0.66), (0.13, 0.5))
    _box(ax, (0.45, 0.38), f"{len(group['completions'])} completions\n(temperature {spec['temperature']}, "
                           f"<= {spec['max_completion_length']} tokens)", "#fff", 7)
    _arrow(ax, (0.29, 0.38), (0.36, 0.38))
    for j, r in enumerate(spec["rewards"]):
        y = 0.82 - 0.3 * j
        _box(ax, (0.75, y), f"{r['name']} (weight {r['weight']})\n{textwrap.fill(r['what'], 40)}",
             "#fde" if r["name"] == "critic" else "#eef", 7)
        _arrow(ax, (0.54, 0.38), (0.6, y))
        _arrow(ax, (0.9, y), (0.93, 0.45 if y > 0.38 else 0.31))
    _box(ax, (0.96, 0.38), "R = " + " + ".join(f"{r['weight']} R_{r['name']}" for r in spec["rewards"])
         + "\nadvantage = (R - mean) / std\nin the group", "#ffd", 7)
    ax.set_title(f"GRPO as trained here (trl GRPOTrainer; critic frozen: {spec['critic']})", fontsize=9)
    tab = fig.add_subplot(gs[1, :])
    tab.axis("off")
    names = [r["name"] for r in spec["rewards"]]
    cells = [[textwrap.shorten(c or "''", 60), *(f"{group['rewards'][n][i]:.3f}" for n in names),
              f"{group['total'][i]:.3f}", f"{group['advantage'][i]:+.2f}"] for i, c in enumerate(group["completions"])]
    t = tab.table(cellText=cells, colLabels=["completion (as generated)", *(f"R_{n}" for n in names), "R", "advantage"],
                  loc="upper center", colWidths=[0.5, 0.1, 0.1, 0.1, 0.08, 0.1])
    t.auto_set_font_size(False)
    t.set_fontsize(8)
    t.scale(1, 1.3)
    tab.set_title(f"one training example (true words: {group['truth']})", fontsize=9)
    fig.tight_layout()
    return fig


def reward_curves(histories: Mapping[str, Sequence[dict]], paper: bool = False):
    """Reward curves of several GRPO runs in the four panels of Figures 6 and 7 (critic, phrase,
    repetition, total): each run's per-step mean (faint) and running mean against its optimizer step;
    ``paper`` adds the paper's Figure 6 read-off values against the paper's own steps (top axis: its
    run is about 35 times longer than the demo's)."""
    import matplotlib.pyplot as plt
    from ..grpo.rewards import PAPER_CURVES, REWARD_KEYS
    fig, axes = plt.subplots(1, 4, figsize=(15, 3.6))
    for c, (label, history) in enumerate(histories.items()):
        steps = [r["step"] for r in history]
        for ax, key in zip(axes, REWARD_KEYS.values()):
            ys = [r.get(key) for r in history]
            ax.plot(steps, ys, lw=1, alpha=0.3, color=f"C{c}")
            k = max(1, len(ys) // 10)
            sm = [sum(ys[max(0, i - k + 1):i + 1]) / len(ys[max(0, i - k + 1):i + 1]) for i in range(len(ys))]
            ax.plot(steps, sm, color=f"C{c}", label=f"{label} ({max(steps) if steps else 0} steps)")
    for ax, name in zip(axes, REWARD_KEYS):
        if paper:
            top = ax.twiny()
            px, py = zip(*PAPER_CURVES[name])
            top.plot(px, py, "--", color="C3", label="paper (read off Fig. 6)")
            top.set_xlabel("paper's GRPO step", fontsize=8, color="C3")
            top.tick_params(axis="x", labelsize=7, colors="C3")
            if name == "critic":
                top.legend(fontsize=7, loc="lower right")
        ax.set_title(name, fontsize=10, pad=24 if paper else 6)
        ax.set_xlabel("GRPO step (this run)")
        ax.set_ylabel(f"R_{name}" if name != "total" else "R (weighted sum)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    return fig
