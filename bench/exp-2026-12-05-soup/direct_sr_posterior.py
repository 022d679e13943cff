"""Direct SR at 256x on notebook 06's 18 test scenes: its input (one pixel of the 256 px base view,
bicubic-enlarged: a flat colour) through the committed model as deployed (256 px, latent tiles of
64 px every 48 px) and as one 64 px tile; GRID of each, and how exactly the 256 px output repeats
every 48 px."""
import numpy as np, torch
from cozlib import experiments, geometry
from cozlib.backbones.osediff.load import _osediff_demo
from cozlib.metrics.truth import grid_score
torch.set_num_threads(2)
import sys
m = _osediff_demo("cpu")
m.options.posterior = sys.argv[1]
torch.manual_seed(0)
images, _ = experiments.world_inputs([1_010_000 + i for i in range(18)], 256)
rows = []
for i, x0 in enumerate(images.values()):
    crop = geometry.direct_crop(x0, 4, 4)
    inp = geometry.resize(crop, 256, "bicubic")
    out = m.upsample([inp], [""], 256)[0]
    tile = m.upsample([geometry.resize(crop, 64, "bicubic")], [""], 64)[0]
    a = np.asarray(out, dtype=np.float64)
    rep = np.abs(a[:-48] - a[48:]).mean()
    rows.append((grid_score(out), grid_score(tile), rep, a.std()))
    print(f"scene {i}: colour {np.asarray(crop).reshape(-1, 3)[0].tolist()} GRID 256 px {rows[-1][0]:.3f}, one tile {rows[-1][1]:.3f}; "
          f"mean |out(y) - out(y+48)| {rep:.2f} grey, spread {rows[-1][3]:.1f}", flush=True)
r = np.array(rows)
print(f"mean of 18: GRID 256 px {r[:, 0].mean():.3f}, one tile {r[:, 1].mean():.3f}; repeat error {r[:, 2].mean():.2f} grey; spread {r[:, 3].mean():.1f}")
