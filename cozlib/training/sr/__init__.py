"""Training the demo OSEDiff-SD3 backbone (``make weights``): the paper's recipe (docs/PAPER.md §5)
at a size a CPU can train.

- ``config``: ``SRTrainConfig``, every setting with its reason; presets in ``params/train/sr-*.yaml``.
- ``data``: ZoomWorld and photo pairs with their words, the render cache, seeded batches.
- ``chain_data``: pairs whose input is the model's own chain state.
- ``losses``: the one-step loss (pooled L2 + word-critic statistics + texture statistics)
  and SD3's rectified flow.
- ``stages``: vae -> base -> critic -> sr-perceptual / sr-l2 -> their chain-state parts.
- ``evaluate``: held-out PSNR / texture distance with true, null and wrong words; ``word_reading``.
- ``recipe``: ``train`` (all of it, resumable), ``plan_steps`` (a time budget), ``export``.
"""
from .chain_data import chain_draw, chain_levels, chain_pairs, zoom_state
from .config import SRTrainConfig
from .data import SR_PAIRS_SEED, batch_of, cached_pairs, context_prompt, make_pairs, own_words, sr_pairs, word_vector
from .evaluate import evaluate, prompt_outputs, word_reading
from .losses import base_latent, critic_loss, flow_noise, l2_loss, sr_loss, texture_loss
from .recipe import export, plan_steps, train
from .stages import DEMO_LORA, PromptCache, sr_model, text_encoders, train_base, train_sr, train_vae, train_word_critic

__all__ = ["SRTrainConfig", "train", "plan_steps", "export", "make_pairs", "cached_pairs", "sr_pairs", "own_words",
           "batch_of", "word_vector", "context_prompt", "SR_PAIRS_SEED", "chain_draw", "chain_levels", "chain_pairs",
           "zoom_state", "base_latent", "flow_noise", "l2_loss", "critic_loss", "texture_loss", "sr_loss",
           "DEMO_LORA", "PromptCache", "sr_model", "text_encoders", "train_vae", "train_base", "train_word_critic",
           "train_sr", "evaluate", "prompt_outputs", "word_reading"]
