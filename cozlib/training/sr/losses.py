"""The losses of the demo SR training, each beside the equation it implements.

The paper trains OSEDiff with L2 + LPIPS(VGG) + VSD (docs/PAPER.md §5). At demo size there is no
VGG and no teacher worth distilling, so the perceptual variant's loss is

    L = MSE(pool_4(x), pool_4(y)) + 1.0 L_critic(x, y) + 0.1 L_texture(x, y) + 0.005 L_grid(x)
        [+ w L_words(x, x~, y), x~ the output with wrong words; w = 0 in the recipe]

with x the one-step output and y the truth: L2 on the band the input already holds, and three
phase-blind terms for the band the model has to invent (a texture's kind, not its exact phase,
which the low-res view cannot tell). The ``l2`` variant is MSE(x, y) alone. Inputs in [-1, 1].
"""
from __future__ import annotations

from .config import SRTrainConfig


def base_latent(vae, x):
    """The base model's latent of images ``x``: (E(x) - shift) * scaling, SD3's convention (the
    one-step model's own ``encode`` leaves the shift in, as the official code; docs/PAPER.md §5)."""
    cfg = vae.config
    return (vae.encode(x).latent_dist.mode() - (cfg.shift_factor or 0.0)) * cfg.scaling_factor


def flow_noise(z0, sigmas, generator):
    """Rectified flow's forward process (SD3): z_t = (1 - sigma) z0 + sigma e, velocity target e - z0.
    ``sigmas``: float32 [B] on the CPU, drawn by the caller. Returns (sigma [B, 1, 1, 1] in z0's dtype,
    e, z_t, timestep = 1000 sigma in float32: bf16 would round it)."""
    import torch
    s32 = sigmas.to(z0.device)
    s = s32.to(z0.dtype).view(-1, 1, 1, 1)
    e = torch.randn(z0.shape, generator=generator).to(z0)
    return s, e, (1 - s) * z0 + s * e, s32 * 1000


def l2_loss(out, hr, lowpass: int = 1):
    """MSE of output and truth, both average-pooled by ``lowpass`` (1: every pixel)."""
    import torch.nn.functional as F
    if lowpass > 1:
        return F.mse_loss(F.avg_pool2d(out, lowpass), F.avg_pool2d(hr, lowpass))
    return F.mse_loss(out, hr)


def critic_loss(net, out, hr):
    """L_critic: in each conv block of the frozen word critic, the per-image, per-channel mean and
    standard deviation of the activations, output against truth (MSE), averaged over blocks and both
    statistics. LPIPS's role, phase-blind: it compares texture statistics, not positions."""
    import torch.nn.functional as F
    from torch import nn
    total, n, a, b = 0.0, 0, out, hr
    for block in (m for m in net if isinstance(m, nn.Sequential)):  # the conv blocks, before the pooled head
        a, b = block(a), block(b)
        for stat in (lambda f: f.mean((2, 3)), lambda f: (f.var((2, 3), unbiased=False) + 1e-6).sqrt()):
            total = total + F.mse_loss(stat(a.float()), stat(b.float()).detach())
            n += 1
    return total / n


def texture_loss(out, hr, levels: int = 5):
    """L_texture: the texture distance (``metrics.truth.texture_distance``) as a loss: the mean absolute
    difference of output's and truth's oriented band log-energies and mean colour, each training view
    one patch (the chains' distance reads 64 px patches of a 256 px state)."""
    return texture_distances(out, hr, levels).mean()


def texture_distances(out, hr, levels: int = 5):
    """Per sample, the texture distance of ``texture_loss`` (one patch per view): [B]."""
    from ...metrics.truth import texture_stats_batch
    a = texture_stats_batch((out.float() + 1) / 2, levels, patches=1)
    b = texture_stats_batch((hr.float() + 1) / 2, levels, patches=1)
    return (a - b.detach()).abs().mean((1, 2))


def words_loss(out, out_wrong, hr, margin: float):
    """L_words = mean_i max(0, margin + T(x_i, y_i) - T(x~_i, y_i)), x~ the output for the same input
    with wrong words (``oracle.wrong_prompt``), T the per-view texture distance: the words must
    choose the texture, so the true words have to beat wrong ones by ``margin``."""
    return (margin + texture_distances(out, hr) - texture_distances(out_wrong, hr)).clamp(min=0).mean()


def grid_loss(out, period: int = 8):
    """L_grid: the mean spectral peak at the harmonics of the latent grid (VAE factor 4 x patch 2 =
    8 px), ``metrics.truth.grid_peaks``. A one-step model's cheapest "detail" is a pattern repeated
    on that grid; this punishes periodicity, not energy: a texture with a smooth spectrum costs 0."""
    from ...metrics.truth import grid_peaks
    return grid_peaks(out, period).mean()


def sr_loss(out, hr, cfg: SRTrainConfig, perceptual: bool, critic=None):
    """The one-step stage's loss (the module's equation) and its logged terms {l2, critic, texture, grid}."""
    l2 = l2_loss(out, hr, cfg.l2_lowpass if perceptual else 1)
    loss, row = l2, {"l2": l2.item()}
    terms = []
    if critic is not None:
        terms.append(("critic", cfg.critic_weight, lambda: critic_loss(critic, out, hr)))
    if perceptual and cfg.texture_weight > 0:
        terms.append(("texture", cfg.texture_weight, lambda: texture_loss(out, hr)))
    if perceptual and cfg.grid_weight > 0:
        terms.append(("grid", cfg.grid_weight, lambda: grid_loss(out)))
    for name, weight, term in terms:
        value = term()
        loss = loss + weight * value
        row[name] = value.item()
    return loss, row
