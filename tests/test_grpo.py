"""GRPO: the three rewards on crafted completions, the critic's score parsing and its truth target,
and a smoke-sized run of the whole training (critic, trl GRPOTrainer with peft LoRA, export)."""
from __future__ import annotations

import json
import random

import pytest

from cozlib.grpo.critic import candidate_prompts, critic_messages, truth_score
from cozlib.grpo.rewards import (BLACKLIST, WEIGHTS, completion_text, critic_reward, parse_score, phrase_exclusion,
                                 phrase_reward, repetition_penalty, repetition_reward, total_reward)


@pytest.mark.parametrize("text, expected", [
    ("", 1.0), ("   \n\t", 1.0), ("fur, hairs", 1.0), ("Fur in the FIRST  IMAGE", 0.0),
    ("the second image shows fur", 0.0), ("zoomed in: fur", 0.0), ("ünïcödé, fur ✓", 1.0),
])
def test_phrase_exclusion(text, expected):
    assert phrase_exclusion(text) == expected


def test_phrase_blacklist_is_configurable_and_holds_the_papers_examples():
    assert {"first image", "second image"} <= set(BLACKLIST)
    assert phrase_exclusion("a cat", blacklist=["cat"]) == 0.0 and phrase_exclusion("a cat", blacklist=[]) == 1.0


@pytest.mark.parametrize("text, expected", [
    ("", 0.0), ("fur hairs", 0.0),                      # fewer than n words: no penalty
    ("cat fur hairs whiskers", 0.0),                    # all 3-grams distinct
    ("fur fur fur fur fur fur", -(1 - 1 / 4)),          # one distinct 3-gram of four
    ("Fur fur FUR fur", -(1 - 1 / 2)),                  # case-insensitive
])
def test_repetition_penalty(text, expected):
    assert repetition_penalty(text) == pytest.approx(expected)


def test_repetition_penalty_bounds_on_a_very_long_completion():
    assert -1.0 <= repetition_penalty("leaf " * 5000) < -0.99
    assert repetition_penalty(" ".join(f"w{i}" for i in range(5000))) == 0.0
    assert repetition_penalty("a b a b a b", n=2) == pytest.approx(-(1 - 2 / 5))


@pytest.mark.parametrize("answer, expected", [
    ("85", 85.0), ("Score: 85/100", 85.0), ("I'd say 72.5.", 72.5), ("150", 100.0), ("-3", 0.0),
    ("no idea", None), ("", None), ("40 or 60", 40.0),
])
def test_parse_score(answer, expected):
    assert parse_score(answer) == expected


def test_completion_text_takes_trl_formats():
    assert completion_text("fur") == "fur"
    assert completion_text([{"role": "assistant", "content": "fur, hairs"}]) == "fur, hairs"
    assert completion_text([{"role": "assistant", "content": [{"type": "text", "text": "fur"}]}]) == "fur"
    assert completion_text([]) == ""


def test_reward_functions_in_trl_form():
    comps = [[{"role": "assistant", "content": "cat, fur"}], [{"role": "assistant", "content": "second image second image second image"}]]
    assert phrase_reward()(prompts=None, completions=comps) == [1.0, 0.0]
    assert repetition_reward()(prompts=None, completions=comps) == [0.0, pytest.approx(-0.5)]

    class FakeCritic:
        def rate(self, images, prompts):
            return ["90" if p == "cat, fur" else "no number" for p in prompts]

    assert critic_reward(FakeCritic())(prompts=None, completions=comps, images=[None, None]) == [0.9, 0.0]
    assert WEIGHTS == {"critic": 1.0, "phrase": 0.5, "repetition": 0.5}
    assert total_reward(0.9, 1.0, 0.0) == pytest.approx(1.4)


def test_truth_score_and_candidates():
    truth = {"cat": 0.6, "fur": 0.5, "hairs": 0.4}
    assert truth_score("cat, fur, hairs", truth) == pytest.approx(100.0)
    assert truth_score("", truth) == 0.0 and truth_score("strawberry", truth) == 0.0
    assert 0 < truth_score("cat, strawberry", truth) < 100
    assert truth_score("cat, fur, hairs, banana", truth) < 100  # a non-vocabulary word counts as wrong
    rng = random.Random(0)
    cands = [c for _ in range(50) for c in candidate_prompts("cat, fur, hairs", rng, 2)]
    assert len(set(cands)) > 10 and "" in cands
    from cozlib.grpo.critic import coherent_prompt, twin_prompt
    assert twin_prompt(["cat", "fur", "hairs"]) == ["log", "rings", "fibers"] and twin_prompt(["wall"]) is None
    assert all(coherent_prompt(rng, {"cat"})[0] != "cat" for _ in range(30))
    assert any(set(c.split(", ")) == {"log", "rings", "fibers"} for c in cands)   # the twin negative appears
    from cozlib.grpo.critic import twin_swap
    assert twin_swap("cat, ground, fur, soil") == "log, ground, rings, soil"   # the policy's writing, the twin's words
    assert twin_swap("log, rings, fibers") == "cat, fur, hairs" and twin_swap("wall, bricks") is None
    assert truth_score(twin_swap("cat, ground, fur, soil"), {"cat": 1, "ground": 1, "fur": 1, "soil": 1}) == 50.0
    msg = critic_messages("cat, fur")
    assert msg[0]["content"][:2] == [{"type": "image"}, {"type": "image"}] and "cat, fur" in msg[0]["content"][2]["text"]


def test_smoke_grpo_training_writes_an_adapter_that_loads(tmp_path):
    """Everything at a few steps: critic SFT, trl GRPOTrainer + peft LoRA on a tiny policy, export; the
    adapter then loads through --prompt vlm-grpo's path."""
    from cozlib.prompts.vlm import VLMPrompt, load_vlm
    from cozlib.config import build
    from cozlib.training.grpo import GRPOTrainConfig, train
    from cozlib.training.tiny import build_qwen_vl
    model, proc = build_qwen_vl(seed=2)
    policy = tmp_path / "policy"
    model.save_pretrained(policy)
    proc.save_pretrained(policy)
    cfg = build(GRPOTrainConfig, "grpo", "smoke", dict(out=str(tmp_path / "grpo"), critic_out=str(tmp_path / "critic"),
                                                        work=str(tmp_path / "work"), policy=str(policy), device="cpu",
                                                        data_work=str(tmp_path / "data")))
    adapter, critic = train(cfg, log=lambda *_: None)
    manifest = json.loads((adapter / "manifest.json").read_text())
    assert {"val_before", "val_after", "critic_agreement_val"} <= set(manifest)
    (own,) = (tmp_path / "work").glob("policy-candidates-4x2-*.json")   # the critic also learnt the policy's completions
    assert len(json.loads(own.read_text())) == 8 and manifest["critic_agreement_val"]["policy_completions"]["n"] == 8
    hist = json.loads((adapter / "history.json").read_text())
    assert hist and {"rewards/critic/mean", "rewards/phrase/mean", "rewards/repetition/mean"} <= set(hist[-1])
    m, p = load_vlm(policy, adapter, device="cpu")
    assert isinstance(VLMPrompt(m, p, True, "t", 4).generate([[_img(), _img()]])[0], str)
    assert (critic / "config.json").is_file() and (critic / "manifest.json").is_file()


def _img():
    import numpy as np
    from PIL import Image
    return Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8))


def test_reward_trend_tells_a_rising_reward_from_noise():
    import numpy as np
    from cozlib.experiments import reward_trend
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 0.15, 300)
    rising = [{"reward": 0.6 + 0.3 * i / 300 + e} for i, e in enumerate(noise)]
    flat = [{"reward": 0.6 + e} for e in noise]
    up, level = reward_trend(rising, "reward"), reward_trend(flat, "reward")
    assert up["change_lo"] > 0 and up["change"] == pytest.approx(level["change"] + 0.3, abs=1e-6)
    assert level["change_lo"] < 0 < level["change_hi"]
    assert up["first"] == pytest.approx(np.mean([r["reward"] for r in rising[:50]]))
    with pytest.raises(ValueError, match="at least 20"):
        reward_trend(rising[:5], "reward")
