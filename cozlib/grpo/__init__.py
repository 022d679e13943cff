"""GRPO preference alignment of the prompt extractor (docs/PAPER.md §4): the rewards (rewards.py)
and the critic (critic.py); the training itself is ``cozlib.training.grpo`` (trl's GRPOTrainer)."""
