"""Tiles that know their place: SD3's position embedding read at a latent offset (issue 28;
docs/lab/2026-12-05-direct-sr-tiles.md).

diffusers' ``PatchEmbed`` gives every input the centre crop of its sincos table, so the latent tiles
of a full-image step all get the same positions, and on a flat input all give the same answer: the
state repeats every tile stride. With ``use_places`` the transformer's ``pos_embed`` reads, for each
sample, the table continued past its edge with the same spacing, shifted by that sample's offset
(``pos_embed.places``, [B, 2] latent px, y then x); offset (0, 0) is the centre crop itself.
"""
from __future__ import annotations

from diffusers.models.embeddings import PatchEmbed  # this module is imported only where diffusers runs

def placed_pos_embed(patch_embed, height: int, width: int, offsets):
    """[B, h * w, D]: each sample's sincos position embedding, its token grid shifted by ``offsets``."""
    import torch
    from diffusers.models.embeddings import get_2d_sincos_pos_embed_from_grid
    p, m = patch_embed.patch_size, patch_embed.pos_embed_max_size
    h, w = height // p, width // p
    scale = m / patch_embed.base_size  # table rows per unit of position (diffusers: arange(m) / (m / base_size))
    off = offsets.detach().to("cpu", torch.float32)
    rows = ((m - h) // 2 + torch.arange(h, dtype=torch.float32))[None] + off[:, :1] / p
    cols = ((m - w) // 2 + torch.arange(w, dtype=torch.float32))[None] + off[:, 1:] / p
    dim = patch_embed.pos_embed.shape[-1]
    out = [get_2d_sincos_pos_embed_from_grid(dim, torch.stack(torch.meshgrid(c / scale, r / scale, indexing="xy"))
                                             .reshape(2, 1, h, w), output_type="pt") for r, c in zip(rows, cols)]
    return torch.stack(out).to(patch_embed.pos_embed.device, patch_embed.pos_embed.dtype)


class PlacedPatchEmbed(PatchEmbed):
    """diffusers' PatchEmbed whose crop of the sincos table follows ``places`` when set."""

    places = None

    def cropped_pos_embed(self, height, width):
        if self.places is None:
            return super().cropped_pos_embed(height, width)
        return placed_pos_embed(self, height, width, self.places)


def use_places(transformer) -> None:
    """Let ``transformer.pos_embed`` take per-sample offsets from its ``places`` (None: the centre
    crop): its class becomes ``PlacedPatchEmbed`` (same parameters and buffers; survives deepcopy)."""
    pe = transformer.pos_embed
    if not isinstance(pe, PlacedPatchEmbed):
        pe.__class__ = PlacedPatchEmbed
        pe.places = None


def random_places(n: int, span: int, seed: list[int], step: int = 2):
    """[n, 2] offsets, multiples of ``step`` latent px in 0 .. ``span`` (2: any whole patch; the tile
    stride: the places a full-image step's tiles take), a seeded draw."""
    import numpy as np
    import torch
    g = np.random.default_rng(seed)
    return torch.from_numpy(float(step) * g.integers(0, span // step + 1, (n, 2))).float()

