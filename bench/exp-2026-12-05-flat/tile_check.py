"""Is direct SR's grid at 256x the tiles repeating? Flat inputs through the committed model:
the 256 px output (tiled, stride 48 px) and one 64 px tile; power at the harmonics of 8 px, of 48 px
(not of 8 px), and elsewhere."""
import numpy as np, torch
from cozlib.backbones.osediff.load import _osediff_demo
from cozlib.metrics.truth import grid_score
from PIL import Image
torch.set_num_threads(1)
m = _osediff_demo("cpu")
def bands(img):
    a = np.asarray(img.convert("L"), dtype=np.float64)[:192, :192]
    P = np.abs(np.fft.fft2(a - a.mean())) ** 2
    k = np.arange(192)
    h8 = (k % 24 == 0); h48 = (k % 4 == 0) & ~h8
    H8 = np.logical_or.outer(h8, h8) & ~np.outer(k == 0, k == 0)  # any axis on an 8 px harmonic line
    on8 = np.outer(h8, h8) & ~np.outer(k == 0, k == 0)
    on48 = np.outer(h8 | h48, h8 | h48) & ~on8 & ~np.outer(k == 0, k == 0)
    rest = ~on8 & ~on48 & ~np.outer(k == 0, k == 0)
    return P[on8].mean(), P[on48].mean(), P[rest].mean()
for c in [(90, 120, 60), (200, 180, 150), (40, 40, 40)]:
    flat = Image.new("RGB", (256, 256), c)
    out = m.upsample([flat], [""], 256)[0]
    tile = m.upsample([Image.new("RGB", (64, 64), c)], [""], 64)[0]
    a = np.asarray(out, dtype=np.float64)
    per48 = np.abs(a[48:144, 48:144] - a[96:192, 96:192]).mean()
    print(c, "GRID 256:", round(grid_score(out), 3), "GRID one tile:", round(grid_score(tile), 3),
          "power on 8px / 48px-only / rest harmonics:", [f"{v:.1f}" for v in bands(out)],
          "mean |out(x) - out(x+48)|:", round(per48, 2), "spread", round(a.std(), 2), flush=True)
