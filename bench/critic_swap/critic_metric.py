"""Word critics as texture metrics: per-image critic distance (losses.critic_loss's statistics) against
the texture distance (metrics.truth), on held-out val views and three kinds of wrong output."""
import sys, torch, numpy as np
import torch.nn.functional as F
from torch import nn
from scipy.stats import spearmanr
from cozlib.config import build
from cozlib.training.sr.config import SRTrainConfig
from cozlib.training.sr.data import cached_pairs
from cozlib.prompts.dape import make_tagger_net
from cozlib.world.vocab import vocabulary
from cozlib.metrics.truth import texture_stats_batch
torch.set_num_threads(2)
cfg = build(SRTrainConfig, "sr", "cpu", ["seed=0", "work=build/exp/critic-heldout", "variants=[perceptual]"])
val = cached_pairs(cfg, "val", 2000, False)
n = 600
hr = val["hr"][:n].float() / 127.5 - 1
lr = val["lr"][:n].float() / 127.5 - 1
g = torch.Generator().manual_seed(0)
cands = {"other view": hr[torch.randperm(n, generator=g)],
         "bicubic of LR": F.interpolate(lr, size=hr.shape[-2:], mode="bicubic", align_corners=False).clamp(-1, 1),
         "noise 0.2": (hr + 0.2 * torch.randn(hr.shape, generator=g)).clamp(-1, 1),
         "blur+noise": (F.avg_pool2d(hr, 3, 1, 1) + 0.1 * torch.randn(hr.shape, generator=g)).clamp(-1, 1)}
def tex(a, b):
    return (texture_stats_batch((a + 1) / 2, 5, patches=1) - texture_stats_batch((b + 1) / 2, 5, patches=1)).abs().flatten(1).mean(1)
def crit(net, a, b):
    tot, k = 0, 0
    for block in (m for m in net if isinstance(m, nn.Sequential)):
        a, b = block(a), block(b)
        for stat in (lambda f: f.mean((2, 3)), lambda f: (f.var((2, 3), unbiased=False) + 1e-6).sqrt()):
            tot = tot + ((stat(a) - stat(b)) ** 2).mean(1); k += 1
    return tot / k
with torch.no_grad():
    t = torch.cat([tex(c, hr) for c in cands.values()]).numpy()
    for path in sys.argv[1:]:
        ck = torch.load(path, map_location="cpu", weights_only=True)
        net = make_tagger_net(len(vocabulary())); net.load_state_dict(ck["state"]["net"]); net.eval()
        d = {k: crit(net, c, hr).numpy() for k, c in cands.items()}
        allc = np.concatenate(list(d.values()))
        per = " ".join(f"{k} {spearmanr(v, t[i * n:(i + 1) * n])[0]:+.3f}" for i, (k, v) in enumerate(d.items()))
        print(f"{path}: Spearman(critic distance, texture distance) all {spearmanr(allc, t)[0]:+.3f}; within kind: {per}")
