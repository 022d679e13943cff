"""Issue 28: does the demo VAE fail on flat / smooth images because it never trained on them?"""
import json, sys, time
import numpy as np, torch, torch.nn.functional as F
torch.set_num_threads(2)
from PIL import Image
from cozlib.runtime import seed_everything
from cozlib.training.tiny import build_pipeline
from cozlib.training.sr.config import SRTrainConfig
from cozlib.training.sr.data import cached_pairs, batch_of
from cozlib.training.loop import cosine_lr
from cozlib.backbones.osediff.load import _osediff_demo
from cozlib.experiments.methods import world_inputs
from cozlib.geometry import direct_crop
from cozlib.imageio import pil_to_tensor
from cozlib.metrics.truth import grid_peaks

cfg = SRTrainConfig(work="build/train/osediff-demo")
data = cached_pairs(cfg, "train", cfg.pairs, True, print)
val = cached_pairs(cfg, "val", cfg.val_pairs, False, print)

def batch(i):
    hr, lr, _ = batch_of(data, i, cfg.batch_vae, cfg.seed + 1, "cpu")
    g = np.random.default_rng([cfg.seed, i, 5]); c = cfg.vae_crop; n = hr.shape[0]
    out = []
    for j in range(n):
        kind = "hr" if j < n // 2 else ("lr" if j < 3 * n // 4 else "deep")
        if kind == "deep":
            s = int(g.choice([1, 2, 4, 8])); o = g.integers(0, hr.shape[-1] - s + 1, 2)
            out.append(F.interpolate(hr[j:j + 1, :, o[0]:o[0] + s, o[1]:o[1] + s], size=(c, c), mode="bicubic", align_corners=False).clamp(-1, 1))
        else:
            src = hr if kind == "hr" else lr
            o = g.integers(0, src.shape[-1] - c + 1, 2)
            out.append(src[j:j + 1, :, o[0]:o[0] + c, o[1]:o[1] + c])
    return torch.cat(out)

def train_variant():
    seed_everything(cfg.seed)
    pipe = build_pipeline(cfg.seed)
    vae = pipe.vae.train()
    opt = torch.optim.AdamW(vae.parameters(), lr=cfg.lr_vae, weight_decay=0.0)
    t = time.perf_counter()
    for i in range(cfg.steps_vae):
        x = batch(i)
        for gr in opt.param_groups: gr["lr"] = cosine_lr(i, cfg.steps_vae, cfg.lr_vae)
        dist = vae.encode(x).latent_dist
        rec = vae.decode(dist.sample()).sample
        l1 = (rec - x).abs().mean(); kl = dist.kl().mean() / x[0].numel()
        loss = l1 + cfg.kl_weight * kl
        opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
        if i % 500 == 0: print(f"step {i} l1 {l1.item():.4f} ({time.perf_counter() - t:.0f} s)", flush=True)
    vae.eval()
    print(f"vae variant trained in {time.perf_counter() - t:.0f} s")
    return vae

def rt(vae, x):
    with torch.no_grad():
        return vae.decode(vae.encode(x).latent_dist.mode()).sample.clamp(-1, 1)

def measure(vae):
    r = {}
    for key in ("hr", "lr"):
        x = val[key].float() / 127.5 - 1
        r[f"val {key} L1 (grey)"] = float((rt(vae, x) - x).abs().mean() * 127.5)
    for size in (64, 256):
        d = [float(((rt(vae, torch.full((1, 3, size, size), c)) - c) * 127.5).std()) for c in (-0.6, -0.2, 0.2, 0.6)]
        r[f"flat {size} px: output spread (grey)"] = float(np.mean(d))
    images, _ = world_inputs([1010000 + i for i in range(18)], 256)
    for k in (1, 2, 3, 4):
        xs = torch.cat([pil_to_tensor(direct_crop(x0, 4, k).resize((256, 256), Image.BICUBIC)).reshape(1, 3, 256, 256) * 2 - 1 for x0 in images.values()])
        y = rt(vae, xs)
        r[f"direct input {4**k}x: L1 (grey)"] = float((y - xs).abs().mean() * 127.5)
        r[f"direct input {4**k}x: GRID in / out"] = [float(grid_peaks(xs).mean((1, 2)).mean()), float(grid_peaks(y).mean((1, 2)).mean())]
    return r

base = _osediff_demo(device="cpu").vae.float().eval()
print("committed VAE", json.dumps(measure(base), indent=1), flush=True)
v = train_variant()
print("VAE trained on HR + LR + deep-zoom crops", json.dumps(measure(v), indent=1), flush=True)
torch.save(v.state_dict(), "build/exp/vae-inputs.pt")
