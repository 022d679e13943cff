"""``SRTrainConfig``: every setting of the demo OSEDiff-SD3 training, each with its reason.

The defaults are the recipe of the committed weights (``data/weights/osediff-demo``), trained on a
2-core CPU; presets in ``params/train/sr-*.yaml`` change sizes for other machines (``cuda``) and for
the tests (``smoke``). The history of how the recipe was found is in ``docs/lab/``.
"""
from __future__ import annotations

from dataclasses import dataclass

from ...config import option, require_share, require_whole
from ...errors import ConfigError


@dataclass
class SRTrainConfig:
    # -- where ---------------------------------------------------------------------------------
    out: str = option("data/weights/osediff-demo", "the weights folder written at the end (diffusers layout + LoRA files + manifest)")
    work: str = option("build/train/osediff-demo", "checkpoints and cached training data; a rerun resumes from here")
    device: str = option("auto", "auto (CUDA when present, bf16 autocast), cpu, cuda or cuda:N")
    threads: int = option(2, "torch CPU threads while training: the weights depend on the thread count (float "
                             "sums in another order), so a fixed count makes a retrain on the same kind of CPU "
                             "give the same weights (another CPU's kernels order them differently too); two, "
                             "because the phase-averaged one-step stages cost four transformer passes a step")
    workers: int = option(1, "processes rendering the ZoomWorld pairs (0: one per CPU core but one); the pairs do not depend on it")
    seed: int = option(0, "seed of every draw (pairs, batches, noise, initial weights)")
    # -- data ----------------------------------------------------------------------------------
    size: int = option(64, "training view size in px (the HR target; the SR input is its 1/upscale view, bicubic-upsampled)")
    upscale: int = option(4, "the SR factor s of one chain step (docs/PAPER.md §1)")
    pairs: int = option(6000, "training pairs rendered per draw (ZoomWorld views 1x-4096x plus photo patches)")
    photo_share: float = option(0.2, "share of the pairs cut from the bundled photos (null prompt), so photos stay in range")
    val_pairs: int = option(64, "val-split pairs for the held-out metrics in the manifest")
    prompt_context: int = option(4, "a pair's prompt names the words of a window this many times wider than its view: "
                                    "what the chain's prompt says about each 64 px tile of a 256 px state")
    # -- stage 1: the VAE ----------------------------------------------------------------------
    steps_vae: int = option(3500, "VAE optimizer steps (L1 reconstruction + a small KL)")
    batch_vae: int = option(16, "VAE batch size")
    lr_vae: float = option(1e-3, "VAE peak learning rate (cosine schedule, as every stage)")
    vae_crop: int = option(32, "the VAE is fully convolutional: it trains on crops of this size, 4x cheaper")
    kl_weight: float = option(1e-6, "weight of the VAE's KL term")
    # -- stage 2: the base text-to-image model (our stand-in for the pretrained SD3) -----------
    steps_base: int = option(1200, "base model steps (SD3's rectified-flow objective on the VAE's latents)")
    batch_base: int = option(16, "base model batch size")
    lr_base: float = option(5e-4, "base model peak learning rate")
    prompt_dropout_base: float = option(0.1, "share of base-model prompts dropped to '' (unconditional)")
    random_places: bool = option(False, "base and one-step stages: each sample's position embedding read at a random place "
                                        "(whole patches, 0 .. places_span latent px), so the transformer knows every place "
                                        "a tile of a full-image step takes, as SD3 learnt many sizes; the weights then run "
                                        "with OSEDiffOptions.tile_places (docs/lab/2026-12-05-direct-sr-tiles.md)")
    places_span: int = option(48, "the largest latent offset random_places draws: the last 64 px tile of a 256 px state")
    places_step: int = option(2, "random_places draws multiples of this many latent px: 2, any whole patch; 12, the "
                                 "tile stride (latent_tile 16 - overlap 4), only the places a 256 px state's tiles take")
    # -- stage 3: the word critic (LPIPS's role) -----------------------------------------------
    steps_critic: int = option(800, "steps of the word classifier whose features the perceptual loss compares")
    batch_critic: int = option(32, "word critic batch size")
    lr_critic: float = option(2e-3, "word critic peak learning rate")
    # -- stage 4: OSEDiff's one-step 4x stage --------------------------------------------------
    variants: list[str] = option(["perceptual", "l2"], "one-step variants to train: perceptual (the recipe) and l2 "
                                                       "(pixel L2 only, shown beside it: it blurs)")
    steps_sr: int = option(2000, "one-step stage steps on rendered pairs")
    batch_sr: int = option(8, "one-step stage batch size")
    lr_sr: float = option(5e-4, "one-step stage peak learning rate")
    lora_rank: int = option(16, "LoRA rank on the transformer (the AdaLayerNormZero linears as the paper, plus "
                                "attention, feed-forward and patch layers: a 2M-parameter base has no SD3 prior to steer)")
    vae_lora_rank: int = option(4, "LoRA rank on the VAE encoder (the paper's)")
    prompt_dropout_sr: float = option(0.2, "share of one-step prompts dropped to '', so a null prompt still works")
    l2_lowpass: int = option(4, "perceptual variant: L2 on the output average-pooled by this factor (the band the "
                                "input already holds; the finer bands are left to the phase-blind terms)")
    critic_weight: float = option(1.0, "perceptual variant: weight of critic_loss (per-channel mean and spread of "
                                       "the word critic's features, output against truth: a texture's kind, not its phase); "
                                       "the term through which the words choose the texture, so it outweighs the others")
    texture_weight: float = option(0.1, "perceptual variant: weight of texture_loss (the texture distance's band statistics, "
                                        "per orientation: a texture's direction)")
    grid_weight: float = option(0.005, "perceptual variant: weight of grid_loss (spectral peaks on the 8 px latent grid)")
    phase_average: bool = option(True, "the velocity averaged over the transformer's patch phases in training and use "
                                       "(OSEDiffOptions.phase_average): no pattern can sit on the 8 px latent grid")
    # -- stage 4b: the one-step stage on its own chain states ----------------------------------
    steps_chain: int = option(1000, "one-step steps on chain states the model made itself (0: none); from the "
                                    "chain's second step on, its input is its own output (docs/PAPER.md §2)")
    lr_chain: float = option(2.5e-4, "peak learning rate of the chain-state part (a fresh cosine schedule)")
    chain_pairs: int = option(6000, "chain-state pairs drawn for that part")
    chain_share: float = option(0.5, "share of each of its batches from chain states (the rest: rendered pairs)")
    chain_depth: int = option(3, "a chain-state pair's view is 1..this many zoom steps below its rendered ancestor")

    def validate(self) -> "SRTrainConfig":
        """Clear errors for settings that cannot train, before any work is done."""
        require_whole(self, ("size", "upscale", "pairs", "val_pairs", "prompt_context", "threads", "lora_rank",
                             "vae_lora_rank", "l2_lowpass", "vae_crop", "chain_pairs", "chain_depth", "places_span",
                             "places_step"))
        require_whole(self, ("workers",), least=0)
        if self.size % self.upscale or self.size % 8:
            raise ConfigError(f"size {self.size} must be a multiple of 8 and of upscale {self.upscale}")
        require_share(self, ("photo_share", "prompt_dropout_base", "prompt_dropout_sr"))
        for name in ("critic_weight", "texture_weight", "grid_weight", "kl_weight"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0 (0 leaves the term out), got {getattr(self, name)!r}")
        if not self.variants or set(self.variants) - {"perceptual", "l2"}:
            raise ConfigError(f"variants must be a non-empty list of perceptual and l2, got {self.variants!r}")
        if self.steps_chain and (not 0.0 < self.chain_share <= 1.0 or round(self.batch_sr * self.chain_share) < 1):
            raise ConfigError(f"chain_share is the share of each batch from chain states, in (0, 1], at least one "
                              f"of batch_sr={self.batch_sr} samples; got {self.chain_share!r}")
        return self

    def chain_steps_for(self, steps_sr: int) -> int:
        """The chain part's steps when the first part has ``steps_sr``: the same ratio (0 stays off)."""
        return round(steps_sr * self.steps_chain / max(self.steps_sr, 1))
