import numpy as np, torch
torch.set_num_threads(2)
from cozlib.backbones.osediff.load import _osediff_demo
m = _osediff_demo(device="cpu")
vae = m.vae
for size in (32, 64, 256):
    for c in (-0.6, 0.0, 0.5):
        x = torch.full((1, 3, size, size), c)
        with torch.no_grad():
            rt = m.decode(m.encode(x))
        d = (rt - x) * 127.5
        print(f"const {c:+.1f} size {size}: roundtrip std {d.std():.2f} grey, mean err {d.mean():+.2f}, center 50% std {d[..., size//4:-size//4, size//4:-size//4].std():.2f}")
# the encoder's first GroupNorm on a constant image
acts = {}
h = vae.encoder.down_blocks[0].resnets[0].norm1.register_forward_hook(lambda mod, i, o: acts.update(inp=i[0], out=o))
with torch.no_grad():
    m.encode(torch.full((1, 3, 256, 256), 0.2))
print("encoder norm1 input std %.2e -> output std %.2e" % (acts['inp'].std(), acts['out'].std()))
print(vae.encoder.down_blocks[0].resnets[0].norm1)
