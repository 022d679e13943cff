"""Held-out quality of word critics: BCE, mean per-word average precision on val-split views."""
import sys, torch, numpy as np
import torch.nn.functional as F
from cozlib.config import build
from cozlib.training.sr.config import SRTrainConfig
from cozlib.training.sr.data import cached_pairs, word_vector
from cozlib.prompts.dape import make_tagger_net
from cozlib.world.vocab import vocabulary
torch.set_num_threads(2)
cfg = build(SRTrainConfig, "sr", "cpu", ["seed=0", "work=build/exp/critic-heldout", "variants=[perceptual]"])
val = cached_pairs(cfg, "val", 2000, False)
y = word_vector(val["words"])
def ap(score, lab):
    o = np.argsort(-score); lab = lab[o]
    if lab.sum() == 0: return None
    prec = np.cumsum(lab) / (np.arange(len(lab)) + 1)
    return float((prec * lab).sum() / lab.sum())
for path in sys.argv[1:]:
    ck = torch.load(path, map_location="cpu", weights_only=True)
    net = make_tagger_net(len(vocabulary())); net.load_state_dict(ck["state"]["net"]); net.eval()
    with torch.no_grad():
        logits = torch.cat([net(val["hr"][i:i + 256].float() / 127.5 - 1) for i in range(0, len(y), 256)])
    bce = F.binary_cross_entropy_with_logits(logits, y).item()
    aps = [a for a in (ap(logits[:, j].numpy(), y[:, j].numpy()) for j in range(y.shape[1])) if a is not None]
    acc = ((logits > 0).float() == y).float().mean().item()
    print(f"{path}: val bce {bce:.4f}, mean AP {np.mean(aps):.4f} over {len(aps)} words, bit accuracy {acc:.4f}")
