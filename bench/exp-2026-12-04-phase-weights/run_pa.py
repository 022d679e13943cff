"""Experiment: phase averaging with binomial weights over shifts 0..p (p+1 per axis) instead of the
uniform mean over shifts 0..p-1. Each phase keeps the same total weight, so a pattern strictly
periodic on the patch grid still cancels; a slowly modulated one cancels to its second difference."""
import os, runpy, sys
import torch
import torch.nn.functional as F
from cozlib.backbones.osediff import model as M

def _v_binomial(self, z, prompt_embeds, pooled):
    p = self.transformer.config.patch_size if self.options.phase_average else 1
    if p == 1:
        return self._v_once(z, prompt_embeds, pooled)
    from math import comb
    B, _, H, W = z.shape
    w1 = [comb(p, k) / 2 ** p for k in range(p + 1)]
    shifts = [(dy, dx, w1[dy] * w1[dx]) for dy in range(p + 1) for dx in range(p + 1)]
    pad = lambda d: (d, (-(H + d)) % p if False else 0)
    zs, crops = [], []
    for dy, dx, _ in shifts:
        ry, rx = (p - (H + dy) % p) % p, (p - (W + dx) % p) % p   # right/bottom pad to a multiple of p
        zs.append(F.pad(z, (dx, rx, dy, ry), mode="reflect"))
    Hs = {t.shape[-2:] for t in zs}
    out = torch.zeros_like(z)
    for size in Hs:
        idx = [k for k, t in enumerate(zs) if t.shape[-2:] == size]
        batch = torch.cat([zs[k] for k in idx])
        v = self._v_once(batch, prompt_embeds.repeat(len(idx), 1, 1), pooled.repeat(len(idx), 1))
        for j, k in enumerate(idx):
            dy, dx, w = shifts[k]
            out = out + w * v[j * B:(j + 1) * B, :, dy:dy + H, dx:dx + W].to(out.dtype)
    return out

if os.environ.get("COZ_PHASE") == "binomial":
    M.OSEDiffSD3._v = _v_binomial
sys.argv = ["bench/prompt_sensitivity.py"] + sys.argv[1:]
runpy.run_path("bench/prompt_sensitivity.py", run_name="__main__")
