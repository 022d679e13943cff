"""Figure 4 (docs/PAPER.md §4, §7): the GRPO pipeline as this project trains it, read from the trainer's
own objects, and one real group of completions scored by the same reward functions.

``pipeline_spec`` describes the message, the trainable LoRA, the reward functions with their weights
(``rewards.trainer_rewards``, the list GRPOTrainer receives) and the frozen critic; ``sample_group``
draws one group as the trainer does (the multi-scale message with a training example's two crops,
``num_generations`` completions sampled at the training temperature) and scores it: each reward,
R = sum of weight x reward, and trl's group-normalised advantage (R - mean) / (std + 1e-4).
"""
from __future__ import annotations

from typing import Any

#: What each reward function pays (its docstring's gist, for the diagram).
WHAT = {"critic": "frozen critic VLM: the two crops + the completion -> a score 0-100, / 100",
        "phrase": "1 unless a blacklisted phrase appears (e.g. 'first image', 'second image')",
        "repetition": "-(1 - unique 3-grams / all 3-grams): 0 without repeats, down to -1"}


def pipeline_spec(cfg, critic) -> dict[str, Any]:
    """The diagram's content from ``GRPOTrainConfig`` ``cfg`` and the reward functions GRPO trains with."""
    from ..prompts.vlm import MULTISCALE_SYSTEM
    from ..training.grpo import LORA_TARGETS
    from .rewards import trainer_rewards
    return {"message": MULTISCALE_SYSTEM, "policy": cfg.policy, "lora_r": cfg.lora_r, "lora_alpha": cfg.lora_alpha,
            "lora_targets": LORA_TARGETS.replace(".*", "").replace("\\", ""), "temperature": cfg.temperature,
            "max_completion_length": cfg.max_completion_length, "num_generations": cfg.num_generations,
            "critic": getattr(critic, "weights_id", "?")[:12],
            "rewards": [{"name": f.__name__, "weight": w, "what": WHAT.get(f.__name__, "")}
                        for f, w in trainer_rewards(critic)]}


def sample_group(cfg, critic, data: dict, j: int, adapter: str | None = None, device: str = "cpu") -> dict[str, Any]:
    """One GRPO group on training example ``j``: the policy (``cfg.policy``, with ``adapter`` merged
    when given) samples ``cfg.num_generations`` completions; every trainer reward scores them."""
    from ..paths import resolve
    from ..prompts.vlm import load_vlm, vlm_messages
    from ..training.grpo import sample_completions
    from ..training.prompts import view_images
    from .rewards import trainer_rewards
    model, proc = load_vlm(resolve(cfg.policy), resolve(adapter) if adapter else None, device)
    images = view_images(data, j)
    text = proc.apply_chat_template(vlm_messages(True), add_generation_prompt=True, tokenize=False)
    (completions,) = sample_completions(model, proc, [images], cfg.num_generations, cfg.temperature,
                                        cfg.max_completion_length, cfg.seed)
    rewards, total = {}, [0.0] * len(completions)
    for f, w in trainer_rewards(critic):
        rewards[f.__name__] = f(prompts=[text] * len(completions), completions=completions,
                                images=[images] * len(completions))
        total = [t + w * r for t, r in zip(total, rewards[f.__name__])]
    mean = sum(total) / len(total)
    std = (sum((t - mean) ** 2 for t in total) / max(1, len(total) - 1)) ** 0.5
    return {"images": images, "truth": data["prompt"][j], "completions": completions, "rewards": rewards,
            "total": total, "advantage": [(t - mean) / (std + 1e-4) for t in total]}
