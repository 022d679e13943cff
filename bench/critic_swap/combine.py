"""Arm B's critic checkpoint: seed 1's critic.pt with seed 2's critic weights (state) put in; the
RNG state, step count and history stay seed 1's, so only the critic's weights differ from arm A."""
import sys, torch
from cozlib.imageio import save_torch
a, b, out = sys.argv[1:4]
ca = torch.load(a, map_location="cpu", weights_only=True)
cb = torch.load(b, map_location="cpu", weights_only=True)
assert ca["step"] == cb["step"] and ca["identity"] == cb["identity"]
ca["state"] = cb["state"]
save_torch(ca, out)
print("combined", out, "step", ca["step"])
