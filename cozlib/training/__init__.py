"""Training code of the demo-scale models (one code path: CUDA with bf16 autocast, or the CPU).

``tiny``: the tiny configurations of the paper's model classes, and their kept tokenizers.
``loop``: checkpoint / resume / progress shared by every training stage.
``sr``: the OSEDiff-SD3 demo backbone (VAE, base model, word critic, one-step 4x SR with LoRA).
``prompts``: the demo VLMs and the DAPE-like tagger. ``grpo``: the demo critic and the GRPO adapter.
``throughput``: notebook 04's measurements. Settings: ``cozlib.config`` and ``params/train/``.
"""
