"""Training code of the demo-scale models (one code path: CUDA with bf16 autocast, or the CPU).

``tiny``: the tiny configurations of the paper's model classes, and their locally trained tokenizers.
``loop``: checkpoint / resume / progress shared by every training stage.
``sr``: the OSEDiff-SD3 demo backbone (VAE, base model, one-step 4x SR with LoRA), `make weights`.
"""
