"""Issue 28 experiment: tiles that know their place. Each latent tile of a full-image step gets the
position embedding of its place in the state (the sincos grid continued past the 16 x 16 table,
same spacing), not the centre crop every tile gets now; a 64 px view at place (0, 0) gets exactly
the crop it was trained with. ``PLACE['off']``: per-sample (Y, X) latent offsets of the transformer
batch, set by the patched ``_v_tiled`` (or by a training loop)."""
import torch
from diffusers.models.embeddings import PatchEmbed, get_2d_sincos_pos_embed_from_grid
from cozlib.backbones.osediff.model import OSEDiffSD3

PLACE = {"off": None}
_orig_crop = PatchEmbed.cropped_pos_embed
_orig_tiled = OSEDiffSD3._v_tiled


def _crop(self, height, width):
    off = PLACE["off"]
    if off is None:
        return _orig_crop(self, height, width)
    p, m = self.patch_size, self.pos_embed_max_size
    h, w = height // p, width // p
    top, left = (m - h) // 2, (m - w) // 2
    scale = m / self.base_size  # grid rows per unit of position (diffusers: arange(m) / (m / base_size))
    off = off.to(torch.float32)
    rows = (top + torch.arange(h, dtype=torch.float32))[None] + off[:, :1] / p   # [B, h] grid rows
    cols = (left + torch.arange(w, dtype=torch.float32))[None] + off[:, 1:] / p
    out = []
    for r, c in zip(rows / scale, cols / scale):
        grid = torch.stack(torch.meshgrid(c, r, indexing="xy"), 0).reshape(2, 1, h, w)
        out.append(get_2d_sincos_pos_embed_from_grid(self.pos_embed.shape[-1], grid, output_type="pt"))
    return torch.stack(out).to(self.pos_embed.dtype)


def _tiled(self, z, prompt_embeds, pooled, tile, overlap, max_batch=64):
    from cozlib.geometry import gaussian_weights, tile_starts
    B, C, H, W = z.shape
    w = torch.from_numpy(gaussian_weights(tile)).to(z.device, z.dtype)
    ys, xs = tile_starts(H, tile, overlap), tile_starts(W, tile, overlap)
    pos = [(y, x) for y in ys for x in xs]
    per_call = max(1, max_batch // B)
    acc = torch.zeros_like(z)
    norm = torch.zeros((1, 1, H, W), device=z.device, dtype=z.dtype)
    shifts = self.transformer.config.patch_size ** 2 if self.options.phase_average else 1
    for i in range(0, len(pos), per_call):
        chunk = pos[i:i + per_call]
        tiles = torch.cat([z[:, :, y:y + tile, x:x + tile] for y, x in chunk])
        n = len(chunk)
        off = torch.tensor([[y, x] for y, x in chunk for _ in range(B)], dtype=torch.float32)
        PLACE["off"] = off.repeat(shifts, 1)
        try:
            v = self._v(tiles, prompt_embeds.repeat(n, 1, 1), pooled.repeat(n, 1)).to(z.dtype)
        finally:
            PLACE["off"] = None
        for j, (y, x) in enumerate(chunk):
            acc[:, :, y:y + tile, x:x + tile] += v[j * B:(j + 1) * B] * w
            norm[:, :, y:y + tile, x:x + tile] += w
    return acc / norm


def install():
    PatchEmbed.cropped_pos_embed = _crop
    OSEDiffSD3._v_tiled = _tiled


def check():
    """Place (0, 0) reproduces the trained crop."""
    pe = PatchEmbed(height=16, width=16, patch_size=2, in_channels=16, embed_dim=128, pos_embed_max_size=16)
    for size in (16, 18):
        PLACE["off"] = torch.zeros(3, 2)
        a = _crop(pe, size, size)
        PLACE["off"] = None
        b = _orig_crop(pe, size, size)
        assert torch.allclose(a, b.expand_as(a), atol=1e-6), (size, (a - b).abs().max())
    return True
