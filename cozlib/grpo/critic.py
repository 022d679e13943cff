"""The critic of GRPO's R_critic (docs/PAPER.md §4): a VLM that sees the two crops and a candidate
prompt and answers a score from 0 to 100.

The paper's critic is InternVL2.5-8B (Qwen2.5-VL-7B-Instruct in its robustness study); its
instruction text is unknown. Ours is CRITIC_INSTRUCTION, the same at both scales:
* paper scale: Qwen2.5-VL-7B-Instruct from a folder or the HF cache (``COZ_CRITIC`` / ``critic=DIR``;
  InternVL2.5-8B needs remote code, which this project does not run);
* demo scale: a tiny Qwen2.5-VL trained here (``cozlib.training.grpo.train_critic``) to answer
  ``truth_score``, the F1 of the prompt's words against ZoomWorld's true words; it learns that
  only approximately, like a real critic, and its agreement with the truth is measured.
"""
from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Sequence

from PIL import Image

from ..errors import MissingWeightsError

CRITIC_REPO = "Qwen/Qwen2.5-VL-7B-Instruct"
DEMO_DIR = "data/weights/critic-demo"

#: Our critic instruction (the paper's text is unknown): the two crops first, then this.
CRITIC_INSTRUCTION = ("The second image is a zoom-in of the first image. How well do these words describe "
                      "what is in the second image: \"{prompt}\"? Answer with one number from 0 (not at all) "
                      "to 100 (exactly).")


def critic_messages(prompt: str) -> list[dict]:
    """A user turn holding the two crops (coarser first), then the instruction with the candidate."""
    return [{"role": "user", "content": [{"type": "image"}, {"type": "image"},
                                         {"type": "text", "text": CRITIC_INSTRUCTION.format(prompt=prompt)}]}]


#: What a demo critic is taught to answer (``GRPOTrainConfig.critic_target``): ``f1`` (the committed
#: critic) or ``precision``, a stricter critic of another kind that pays only for words that are there
#: (Figure 7's second critic at demo scale; the paper's is another VLM family, docs/PAPER.md §4).
CRITIC_TARGETS = ("f1", "precision")


def truth_score(prompt: str, truth: dict[str, float], target: str = "f1") -> float:
    """What an ideal critic would answer: 100 x F1 (or precision) of the prompt's vocabulary words
    against the true words (0 for a prompt naming nothing; words outside the vocabulary count as wrong)."""
    from ..metrics.truth import prompt_words
    from ..world.vocab import vocabulary
    named, unknown = prompt_words(prompt, vocabulary())
    hit = len(named & set(truth))
    n_pred = len(named) + unknown
    if hit == 0 or n_pred == 0 or not truth:
        return 0.0
    p, r = hit / n_pred, hit / len(truth)
    return 100.0 * (p if target == "precision" else 2 * p * r / (p + r))


def coherent_prompt(rng: random.Random, avoid: set[str]) -> list[str]:
    """A plausible prompt about another object: [object, part, its micro-texture], the object not in
    ``avoid`` ('strawberry, seeds, pits' for a cat): wrong, but it reads like a true answer."""
    from ..world.vocab import OBJECTS
    obj = rng.choice([o for o in OBJECTS if o not in avoid] or list(OBJECTS))
    part = rng.choice(OBJECTS[obj])
    return [obj, part.word, part.micro]


def twin_prompt(true: list[str]) -> list[str] | None:
    """The truth's ambiguous micro-texture swapped for its twin, with the twin's part and object
    ('log, rings, fibers' for 'cat, fur, hairs'): only the coarser view tells them apart (Figure 8's
    case). None when the truth has no ambiguous micro-texture."""
    from ..world.vocab import AMBIGUOUS_PAIRS, parent_of
    twins = {a: b for pair in AMBIGUOUS_PAIRS for a, b in (pair, pair[::-1])}
    micro = next((w for w in true if w in twins), None)
    if micro is None:
        return None
    twin = twins[micro]
    part = parent_of(twin)
    return [parent_of(part), part, twin]


def twin_swap(text: str) -> str | None:
    """``text`` with each word of an ambiguous chain (object, part, micro-texture) replaced by its
    twin's ('cat, ground, fur' -> 'log, ground, rings'): the mistake only the coarser view can catch,
    written as the policy writes. None when the text names no such word."""
    from ..world.vocab import AMBIGUOUS_PAIRS, parent_of
    chain = lambda m: [parent_of(parent_of(m)), parent_of(m), m]  # noqa: E731
    swap = {x: y for a, b in AMBIGUOUS_PAIRS for p, q in ((a, b), (b, a)) for x, y in zip(chain(p), chain(q))}
    words = text.split(", ")
    if not any(w in swap for w in words):
        return None
    return ", ".join(swap.get(w, w) for w in words)


def candidate_prompts(truth: str, rng: random.Random, k: int = 3) -> list[str]:
    """Prompts of varied quality for one view (the critic's training material): the truth, subsets
    of it, with wrong words of the same levels mixed in, wrong only, plausible prompts about another
    object (``coherent_prompt``) or the ambiguous twin (``twin_prompt``), empty, and repetitive ones."""
    from ..prompts.oracle import wrong_word
    from ..world.vocab import vocabulary
    true = [w for w in truth.split(", ") if w]
    vocab = vocabulary()
    out = []
    for _ in range(k):
        kind = rng.random()
        keep = [w for w in true if rng.random() < 0.7]
        if kind < 0.15:
            words = list(true)
        elif kind < 0.45:
            words = keep + [wrong_word(w) for w in true if rng.random() < 0.4]
        elif kind < 0.6:
            words = keep + rng.sample(vocab, rng.randint(1, 3))
        elif kind < 0.7:
            words = [wrong_word(w) for w in true] or rng.sample(vocab, 2)
        elif kind < 0.9:
            words = (kind < 0.8 and twin_prompt(true)) or coherent_prompt(rng, set(true))
        elif kind < 0.95:
            words = []
        else:
            words = (keep or rng.sample(vocab, 1)) * 3
        if kind < 0.95:
            rng.shuffle(words)
        out.append(", ".join(words))
    return out


class VLMCritic:
    """``rate(image_pairs, prompts) -> answers``: the critic's raw text, batched greedy generation."""

    def __init__(self, model, processor, weights_id: str, max_new_tokens: int = 6, batch: int = 16,
                 offload_device: str | None = None) -> None:
        self.model, self.processor, self.weights_id = model, processor, weights_id
        self.max_new_tokens, self.batch = max_new_tokens, batch
        self.offload_device = offload_device  # on the CPU between calls, on this device while rating (memory profiles)

    def rate(self, image_pairs: Sequence[Sequence[Image.Image]], prompts: Sequence[str]) -> list[str]:
        from ..memory import visiting
        out: list[str] = []
        with visiting(self.model, self.offload_device):
            for i in range(0, len(prompts), self.batch):
                out += self._rate(image_pairs[i:i + self.batch], prompts[i:i + self.batch])
        return out

    def _rate(self, pairs, texts) -> list[str]:
        """One batch: the critic's greedy answers."""
        import torch
        chats = [self.processor.apply_chat_template(critic_messages(t), add_generation_prompt=True, tokenize=False)
                 for t in texts]
        inputs = self.processor(text=chats, images=[[im.convert("RGB") for im in p] for p in pairs],
                                return_tensors="pt", padding=True).to(self.model.device)
        with torch.inference_mode():
            gen = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens, do_sample=False)
        return self.processor.batch_decode(gen[:, inputs["input_ids"].shape[1]:], skip_special_tokens=True)

    def scores(self, image_pairs, prompts) -> list[float | None]:
        from .rewards import parse_score
        return [parse_score(a) for a in self.rate(image_pairs, prompts)]


def demo_folder() -> Path:
    from ..paths import resolve
    return resolve(os.environ.get("COZ_CRITIC_DEMO") or DEMO_DIR)


def load_critic(source: str | os.PathLike | None = None, device: str = "auto", memory: str | None = None) -> VLMCritic:
    """The demo critic (default), or Qwen2.5-VL-7B-Instruct from a folder / the HF cache (``source`` or
    COZ_CRITIC); a ``cozlib.memory`` profile with ``vlm_offload`` keeps it on the CPU between calls on a GPU."""
    from ..paths import folder_hash
    from ..prompts.vlm import load_vlm, resolve_vlm
    source = source or os.environ.get("COZ_CRITIC")
    if source:
        try:
            folder = resolve_vlm(source)
        except MissingWeightsError as e:
            raise MissingWeightsError(f"critic weights not found: {e}. For the paper-scale critic put {CRITIC_REPO} "
                                      "in a folder and pass it (COZ_CRITIC=DIR)") from None
    else:
        folder = demo_folder()
        if not (folder / "config.json").is_file():
            raise MissingWeightsError(f"{folder} is missing: run `make weights` (it trains the demo critic)")
    from ..memory import vlm_placement
    from ..runtime import resolve_device
    where, dtype, offload = vlm_placement(memory, resolve_device(device))
    model, proc = load_vlm(folder, None, where, dtype)
    return VLMCritic(model, proc, folder_hash(Path(folder)), offload_device=offload)
