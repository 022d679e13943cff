"""GRPO's three rewards (docs/PAPER.md §4): R = 1.0 R_critic + 0.5 R_phrase + 0.5 R_rep.

Each is a trl reward function: ``f(prompts, completions, **columns) -> list[float]``, where a
completion is a string or, in trl's conversational format, a list of messages whose last one is
the assistant's. The texts are scored as generated (before ``prompts.vlm.clean_prompt``), so that
the policy is rewarded for what it says, not for what the cleaner rescues.

How each can be gamed (notebook 03 shows it on examples):
* R_phrase pays 1 for saying nothing: an empty answer avoids every blacklisted phrase.
* R_rep pays 0 (its best) for any text of fewer than ``n`` words, and for lists of distinct words
  whatever they mean.
* R_critic is only as good as the critic: it can be flattered by words the critic likes (for the
  demo critic, frequent true words), and it is the only reward that looks at the images.
"""
from __future__ import annotations

import re
from typing import Any, Callable, Sequence

#: The paper's reward curves (its Figure 6), read off the plot: (step, value) points, approximate.
PAPER_CURVES = {"critic": [(0, 0.75), (1200, 0.75), (3000, 0.87), (10500, 0.91)],
                "phrase": [(0, 0.955), (2500, 1.0), (10500, 0.995)],
                "repetition": [(0, -0.045), (2000, 0.0), (10500, -0.002)],
                "total": [(0, 1.20), (10500, 1.41)]}

#: trl's per-step log keys of the four Figure 6 curves.
REWARD_KEYS = {"critic": "rewards/critic/mean", "phrase": "rewards/phrase/mean",
               "repetition": "rewards/repetition/mean", "total": "reward"}

#: Reward weights of the paper: critic, phrase exclusion, repetition.
WEIGHTS = {"critic": 1.0, "phrase": 0.5, "repetition": 0.5}

#: Phrases the prompt must not contain. The paper names "first image" and "second image" and does
#: not give its full list; the others are our choice: references to the images or to zooming,
#: which describe the message, not the content the SR model should draw.
BLACKLIST = ("first image", "second image", "zoom-in", "zoomed-in", "zoomed in", "zoom in", "this image",
             "the image")


def completion_text(completion: Any) -> str:
    """The text of a completion: a string, or trl's conversational list of messages (the last
    assistant message's content; a content list's text parts joined)."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        completion = [completion]
    if isinstance(completion, Sequence) and completion:
        content = completion[-1].get("content", "")
        if isinstance(content, str):
            return content
        return " ".join(c.get("text", "") for c in content if isinstance(c, dict))
    return ""


def phrase_exclusion(text: str, blacklist: Sequence[str] = BLACKLIST) -> float:
    """R_phrase: 1 when no blacklisted phrase appears (case-insensitive, whitespace-normalised), else 0."""
    norm = " ".join(text.lower().split())
    return 0.0 if any(p.lower() in norm for p in blacklist) else 1.0


def repetition_penalty(text: str, n: int = 3) -> float:
    """R_rep = -(1 - unique n-grams / all n-grams) over lowercase whitespace words; 0 with fewer
    than ``n`` words (the cited work's public form, docs/PAPER.md §4). In [-1, 0]."""
    words = text.lower().split()
    if len(words) < n:
        return 0.0
    grams = [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]
    return -(1.0 - len(set(grams)) / len(grams))


_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?")


def parse_score(text: str) -> float | None:
    """The critic's answer -> a score in [0, 100]: the first number in the text, clamped to the
    range ("85", "Score: 85/100" -> 85; "150" -> 100; "-3" -> 0); None when there is no number."""
    m = _NUMBER.search(text or "")
    if m is None:
        return None
    return min(100.0, max(0.0, float(m.group())))


def phrase_reward(blacklist: Sequence[str] = BLACKLIST) -> Callable[..., list[float]]:
    def phrase(prompts=None, completions=(), **kwargs) -> list[float]:
        return [phrase_exclusion(completion_text(c), blacklist) for c in completions]
    phrase.__name__ = "phrase"
    return phrase


def repetition_reward(n: int = 3) -> Callable[..., list[float]]:
    def repetition(prompts=None, completions=(), **kwargs) -> list[float]:
        return [repetition_penalty(completion_text(c), n) for c in completions]
    repetition.__name__ = "repetition"
    return repetition


def critic_reward(critic) -> Callable[..., list[float]]:
    """R_critic: ``critic.score(images, prompt_text) -> text``, parsed by ``parse_score`` and divided
    by 100 (an unparsable answer scores 0). ``images`` is the dataset's "images" column (the two
    crops, coarser first)."""
    def critic_fn(prompts=None, completions=(), images=None, **kwargs) -> list[float]:
        texts = [completion_text(c) for c in completions]
        answers = critic.rate(list(images or [None] * len(texts)), texts)
        return [(parse_score(a) or 0.0) / 100.0 for a in answers]
    critic_fn.__name__ = "critic"
    return critic_fn


def trainer_rewards(critic) -> list[tuple[Callable[..., list[float]], float]]:
    """The reward functions GRPO trains with and their weights, in trl's order (``training.grpo``
    passes these to GRPOTrainer; Figure 4 is drawn from the same list)."""
    return [(critic_reward(critic), WEIGHTS["critic"]), (phrase_reward(), WEIGHTS["phrase"]),
            (repetition_reward(), WEIGHTS["repetition"])]


def total_reward(critic: float, phrase: float, repetition: float, weights: dict = WEIGHTS) -> float:
    """R = 1.0 R_critic + 0.5 R_phrase + 0.5 R_rep."""
    return weights["critic"] * critic + weights["phrase"] * phrase + weights["repetition"] * repetition


def reward_rows(texts: Sequence[str], critic_scores: Sequence[float | None] | None = None) -> list[list]:
    """[text, R_critic, R_phrase, R_rep, R] per text (R_critic from the given 0-100 scores, or blank)."""
    rows = []
    for i, t in enumerate(texts):
        c = None if critic_scores is None else critic_scores[i]
        ph, rep = phrase_exclusion(t), repetition_penalty(t)
        rc = None if c is None else c / 100.0
        rows.append([t if t.strip() else repr(t), rc, ph, round(rep, 3),
                     None if rc is None else round(total_reward(rc, ph, rep), 3)])
    return rows
