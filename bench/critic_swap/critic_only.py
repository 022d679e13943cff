"""Train only the word critic of a seed's recipe run (experiment helper, not committed)."""
import sys
import torch
from cozlib.config import build
from cozlib.training.sr.config import SRTrainConfig
from cozlib.training.sr.data import cached_pairs
from cozlib.training.sr.stages import train_word_critic
seed, work = int(sys.argv[1]), sys.argv[2]
cfg = build(SRTrainConfig, "sr", "cpu", [f"seed={seed}", f"work={work}", "variants=[perceptual]"])
torch.set_num_threads(cfg.threads)
data = cached_pairs(cfg, "train", cfg.pairs, True)
net, st = train_word_critic(data, cfg, "cpu")
print("critic done", st.path)
