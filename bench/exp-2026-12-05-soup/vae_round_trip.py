"""Does the demo VAE pass the finest octave? Truth views of 24 val scenes at 1x, 16x, 64x, 256x (256 px),
VAE encode (mode) + decode, and the energy bias per a-trous band (finest first) of the round trip
against the view (texture_stats, as chain_energy.py)."""
import numpy as np, torch
from PIL import Image
from cozlib import world
from cozlib.backbones.osediff.load import _osediff_demo
from cozlib.metrics.truth import texture_stats, texture_distance
torch.set_num_threads(1)
import sys
from cozlib.backbones.osediff.model import set_vae_tiling
m = _osediff_demo("cpu")
if "--plain" in sys.argv:
    m.vae.disable_adapters(); print("plain VAE (no encoder LoRA)")
if len(sys.argv) > 1 and sys.argv[1].isdigit():
    set_vae_tiling(m.vae, int(sys.argv[1]))
    print("vae_tile", sys.argv[1])
for zoom in (1, 16, 64, 256):
    rows, td = [], []
    for i in range(24):
        s = 1_000_000 + i
        v = world.render_view(s, (0.5, 0.5), float(zoom), 256)
        x = torch.from_numpy(np.asarray(v, dtype=np.float32) / 127.5 - 1).permute(2, 0, 1)[None]
        with torch.no_grad():
            y = m.decode(m.encode(x)).clamp(-1, 1)
        r = Image.fromarray(((y[0].permute(1, 2, 0).numpy() + 1) * 127.5).round().astype(np.uint8))
        a, b = texture_stats(r), texture_stats(v)
        rows.append((a - b)[:, :20].reshape(16, 5, 4).mean((0, 2)).numpy())
        td.append(texture_distance(r, v))
    print(f"zoom {zoom:>3}x: VAE round trip energy bias by band {np.round(np.mean(rows, 0), 2)}, texture distance {np.mean(td):.3f}", flush=True)
