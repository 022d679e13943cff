"""Prompt extractors: the paper's messages, cleaning of malformed generations, the VLM's save/load
round trip, the paper-scale loading path (tiny random Qwen2.5-VL in the released folder layout,
with a LoRA adapter in the released format), the DAPE-like tagger and the hallucination scores."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from cozlib.errors import ConfigError, MissingWeightsError
from cozlib.prompts import PromptContext, make_prompt_extractor, registry
from cozlib.prompts.vlm import (MULTISCALE_SYSTEM, SINGLE_SYSTEM, VLMPrompt, clean_prompt, load_vlm,
                                make_vlm_prompt, vlm_messages)
from cozlib.training.tiny import TINY


def _images(n: int, size: int = TINY["qwen_vl"]["image_px"], seed: int = 0) -> list[Image.Image]:
    """Random images at the tiny VLM's size (its processor and the released layout's, which keeps
    any multiple of 28 px, then see the same pixels)."""
    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)) for _ in range(n)]


def test_messages_are_the_papers_text():
    assert MULTISCALE_SYSTEM == ("The second image is a zoom-in of the first image. Based on this knowledge, "
                                 "what is in the second image? Give me a set of words.")
    assert SINGLE_SYSTEM == "What is in this image? Give me a set of words."
    ms, single = vlm_messages(True), vlm_messages(False)
    assert ms[0] == {"role": "system", "content": MULTISCALE_SYSTEM}
    assert ms[1] == {"role": "user", "content": [{"type": "image"}, {"type": "image"}]}  # images only, no text
    assert single[0]["content"] == SINGLE_SYSTEM and single[1]["content"] == [{"type": "image"}]


@pytest.mark.parametrize("raw, expected", [
    ("", ""),
    ("<|im_end|><|endoftext|>", ""),
    ("   \n , ; ", ""),
    ("Fur, hairs, fur.", "fur, hairs"),
    ("1. Cat\n2. Fur\n- whiskers", "cat, fur, whiskers"),
    ('"brick wall", mortar<|im_end|>', "brick wall, mortar"),
])
def test_clean_prompt(raw, expected):
    assert clean_prompt(raw) == expected


def test_clean_prompt_bounds_a_runaway_generation():
    out = clean_prompt(", ".join(f"word{i} thing" for i in range(500)))
    assert len(out) <= 240 and len(out.split(", ")) <= 16 and not out.endswith(",")
    assert clean_prompt("x" * 1000, max_chars=50) == "x" * 50  # one item longer than the limit is cut


@pytest.fixture(scope="module")
def tiny_vlm():
    from cozlib.training.tiny import build_qwen_vl
    return build_qwen_vl(seed=1)


def test_demo_vlm_save_load_round_trip_gives_identical_prompts(tiny_vlm, tmp_path):
    model, proc = tiny_vlm
    imgs = _images(4)
    before = VLMPrompt(model.eval(), proc, True, "a", max_new_tokens=6).generate_raw([imgs[:2], imgs[2:]])
    model.save_pretrained(tmp_path)
    proc.save_pretrained(tmp_path)
    m2, p2 = load_vlm(tmp_path, device="cpu")
    after = VLMPrompt(m2, p2, True, "b", max_new_tokens=6).generate_raw([imgs[:2], imgs[2:]])
    assert before == after
    single = VLMPrompt(m2, p2, False, "b", max_new_tokens=6)
    assert len(single.generate([imgs[:1], imgs[1:2], imgs[2:3]])) == 3  # batched
    with pytest.raises(ConfigError, match="takes 1 image"):
        single.generate([imgs[:2]])


def test_multiscale_vlm_needs_the_coarser_state(tiny_vlm):
    model, proc = tiny_vlm
    ex = VLMPrompt(model, proc, True, "a", max_new_tokens=2)
    with pytest.raises(ConfigError, match="recursive_multiscale"):
        ex(PromptContext(zoomed=_images(1)[0], previous=None, step=1, window=(0, 0, 1, 1)))


@pytest.fixture(scope="module")
def released_layout(tiny_vlm, tmp_path_factory):
    """A tiny random Qwen2.5-VL written the way the Qwen2.5-VL-3B-Instruct release is laid out: the
    original flat config.json (text settings at the top level, rope_scaling 'mrope'), Qwen2Tokenizer's
    vocab.json / merges.txt, preprocessor_config.json and chat_template.json; plus a LoRA adapter
    folder as the released checkpoint-10000 (r=8, alpha=32, language model's q,k,v,o,gate,up,down)."""
    from peft import LoraConfig, get_peft_model
    model, proc = tiny_vlm
    folder = tmp_path_factory.mktemp("qwen25vl")
    model.save_pretrained(folder)
    tc, vc = model.config.text_config, model.config.vision_config
    flat = {"architectures": ["Qwen2_5_VLForConditionalGeneration"], "model_type": "qwen2_5_vl",
            "attention_dropout": 0.0, "bos_token_id": tc.bos_token_id, "eos_token_id": tc.eos_token_id,
            "vision_start_token_id": model.config.vision_start_token_id,
            "vision_end_token_id": model.config.vision_end_token_id,
            "image_token_id": model.config.image_token_id, "video_token_id": model.config.video_token_id,
            "hidden_act": "silu", "hidden_size": tc.hidden_size, "intermediate_size": tc.intermediate_size,
            "initializer_range": 0.02, "max_position_embeddings": tc.max_position_embeddings,
            "max_window_layers": tc.num_hidden_layers, "num_attention_heads": tc.num_attention_heads,
            "num_hidden_layers": tc.num_hidden_layers, "num_key_value_heads": tc.num_key_value_heads,
            "rms_norm_eps": tc.rms_norm_eps, "rope_theta": 10000.0, "sliding_window": 32768,
            "tie_word_embeddings": False, "torch_dtype": "float32", "use_cache": True, "use_sliding_window": False,
            "rope_scaling": {"type": "mrope", "mrope_section": [4, 6, 6]}, "vocab_size": tc.vocab_size,
            "vision_config": {"depth": vc.depth, "hidden_act": "silu", "hidden_size": vc.hidden_size,
                              "intermediate_size": vc.intermediate_size, "num_heads": vc.num_heads, "in_chans": 3,
                              "out_hidden_size": vc.out_hidden_size, "patch_size": 14, "spatial_merge_size": 2,
                              "spatial_patch_size": 14, "window_size": vc.window_size,
                              "fullatt_block_indexes": list(vc.fullatt_block_indexes), "tokens_per_second": 2,
                              "temporal_patch_size": 2}}
    (folder / "config.json").write_text(json.dumps(flat, indent=2))
    tok = proc.tokenizer
    model_json = json.loads(tok.backend_tokenizer.to_str())["model"]
    (folder / "vocab.json").write_text(json.dumps(model_json["vocab"]))
    merges = model_json["merges"]
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(m if isinstance(m, str) else " ".join(m) for m in merges) + "\n")
    specials = {str(tok.convert_tokens_to_ids(t)): {"content": t, "special": True, "lstrip": False, "rstrip": False,
                                                     "normalized": False, "single_word": False}
                for t in ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
                          "<|image_pad|>", "<|video_pad|>")}
    (folder / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "Qwen2Tokenizer", "added_tokens_decoder": specials, "eos_token": "<|im_end|>",
        "pad_token": "<|endoftext|>", "bos_token": None, "unk_token": None, "model_max_length": 131072,
        "clean_up_tokenization_spaces": False, "errors": "replace", "split_special_tokens": False}))
    (folder / "preprocessor_config.json").write_text(json.dumps({
        "min_pixels": 3136, "max_pixels": 12845056, "patch_size": 14, "temporal_patch_size": 2, "merge_size": 2,
        "image_mean": [0.48145466, 0.4578275, 0.40821073], "image_std": [0.26862954, 0.26130258, 0.27577711],
        "image_processor_type": "Qwen2_5_VLImageProcessor", "processor_class": "Qwen2_5_VLProcessor"}))
    (folder / "chat_template.json").write_text(json.dumps({"chat_template": proc.chat_template}))
    # the adapter, in peft's save format
    cfg = LoraConfig(r=8, lora_alpha=32, lora_dropout=0.05, init_lora_weights=False,
                     target_modules=r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)")
    from transformers import Qwen2_5_VLForConditionalGeneration
    base = Qwen2_5_VLForConditionalGeneration.from_pretrained(folder)
    peft_model = get_peft_model(base, cfg)
    adapter = folder / "VLM_LoRA" / "checkpoint-10000"
    peft_model.save_pretrained(adapter)
    return folder, adapter


def test_paper_scale_layout_loads_and_generates(released_layout, tiny_vlm):
    folder, adapter = released_layout
    for f in ("config.json", "vocab.json", "merges.txt", "preprocessor_config.json", "chat_template.json"):
        assert (folder / f).is_file()
    assert "text_config" not in json.loads((folder / "config.json").read_text())  # the flat original format
    imgs = _images(2, seed=3)
    base = make_vlm_prompt(True, device="cpu", vlm=str(folder), max_new_tokens=5)
    ref = VLMPrompt(tiny_vlm[0], tiny_vlm[1], True, "ref", max_new_tokens=5)
    assert base.generate_raw([imgs]) == ref.generate_raw([imgs])  # same weights through the released layout
    tuned = make_vlm_prompt(True, device="cpu", vlm=str(folder), vlm_lora=str(adapter), max_new_tokens=5)
    assert tuned.identity() != base.identity()
    x = tuned.processor(text=[tuned.processor.apply_chat_template(vlm_messages(True), add_generation_prompt=True, tokenize=False)],
                        images=[imgs], return_tensors="pt")
    with torch.no_grad():  # the merged adapter changes the language model's output
        assert not torch.allclose(tuned.model(**x).logits, base.model(**x).logits)
    # the vision tower carries no LoRA (the released adapter is on the language model only)
    adapter_keys = json.loads((adapter / "adapter_config.json").read_text())["target_modules"]
    assert "language_model" in str(adapter_keys)
    # an adapter saved under transformers 4.x module names (model.layers.N) loads to the same model
    from safetensors.torch import load_file, save_file
    old = adapter.parent / "old-names"
    old.mkdir()
    (old / "adapter_config.json").write_text((adapter / "adapter_config.json").read_text())
    save_file({k.replace("model.language_model.layers.", "model.layers."): v
               for k, v in load_file(str(adapter / "adapter_model.safetensors")).items()}, str(old / "adapter_model.safetensors"))
    legacy = make_vlm_prompt(True, device="cpu", vlm=str(folder), vlm_lora=str(old), max_new_tokens=5)
    with torch.no_grad():
        assert torch.allclose(legacy.model(**x).logits, tuned.model(**x).logits)


def test_missing_vlm_and_adapter_errors_name_the_fix(tmp_path, released_layout):
    with pytest.raises(MissingWeightsError, match="COZ_VLM"):
        make_vlm_prompt(True, device="cpu", vlm=str(tmp_path / "nope"))
    with pytest.raises(MissingWeightsError, match="adapter_config.json"):
        make_vlm_prompt(True, device="cpu", vlm=str(released_layout[0]), vlm_lora=str(tmp_path))
    with pytest.raises(ConfigError, match="--vlm-lora needs --vlm"):
        make_vlm_prompt(True, device="cpu", vlm_lora=str(tmp_path))


def test_registry_names_the_prompt_sources():
    reg = registry()
    for name in ("null", "fixed", "oracle", "wrong", "vlm", "vlm-single", "dape"):
        assert name in reg
    with pytest.raises(ConfigError, match="vlm-single"):
        make_prompt_extractor("vlm-3b")


def test_tagger_round_trip_and_prompt(tmp_path):
    from cozlib.prompts.dape import DapePrompt, Tagger, make_tagger_net
    from cozlib.world.vocab import vocabulary
    torch.manual_seed(0)
    words = vocabulary()
    t = Tagger(make_tagger_net(len(words), 8), words, 64, threshold=0.3)
    t.save(tmp_path / "dape")
    t2 = Tagger.load(tmp_path / "dape")
    imgs = _images(3, 96)
    assert torch.allclose(t.probabilities(imgs), t2.probabilities(imgs))
    p = DapePrompt(t2, "x")(PromptContext(zoomed=imgs[0], previous=None, step=1, window=(0, 0, 1, 1),
                                          source={"world_seed": 3}))
    assert all(w in words for w in p.split(", ") if w)
    with pytest.raises(ConfigError, match="trained on ZoomWorld only"):   # the demo tagger on a photo
        DapePrompt(t2, "x")(PromptContext(zoomed=imgs[0], previous=None, step=1, window=(0, 0, 1, 1)))
    with pytest.raises(MissingWeightsError, match="make weights"):
        Tagger.load(tmp_path / "absent")


def test_extractor_scores_oracle_is_precise_and_null_names_nothing():
    from cozlib import experiments
    views = experiments.extractor_views(2, [16, 256], process_size=64)
    rows = experiments.extractor_scores(views, ["oracle", "null"], device="cpu", progress=False)
    oracle = [r for r in rows if r["extractor"] == "oracle"]
    null = [r for r in rows if r["extractor"] == "null"]
    assert all(r["precision"] == 1.0 for r in oracle if not math.isnan(r["precision"]))
    assert all(math.isnan(r["precision"]) and r["recall"] == 0.0 for r in null)
    header, table = experiments.hallucination_table(rows, "extractor")
    assert header[1:3] == ["precision 16x", "precision 256x"] and [r[0] for r in table] == ["oracle", "null"]


def test_smoke_prompt_training_writes_loadable_extractors(tmp_path):
    from cozlib.prompts.dape import Tagger
    from cozlib.config import build
    from cozlib.training.prompts import PromptTrainConfig, train
    cfg = build(PromptTrainConfig, "prompts", "smoke", dict(out_vlm=str(tmp_path / "vlm-demo"),
                                                            out_dape=str(tmp_path / "dape-demo"),
                                                            work=str(tmp_path / "work"), device="cpu"))
    vlm_dir, dape_dir = train(cfg, log=lambda *_: None)
    manifest = json.loads((vlm_dir / "manifest.json").read_text())
    assert set(manifest["metrics_val"]) == {"multiscale", "single"} and manifest["code_commit"]
    assert {s["name"] for s in manifest["stages"]} == {"vlm-multiscale", "vlm-single"}
    for variant in ("multiscale", "single"):
        model, proc = load_vlm(vlm_dir / variant, device="cpu")
        out = VLMPrompt(model, proc, variant == "multiscale", "t", 4).generate([_images(2 if variant == "multiscale" else 1)])
        assert isinstance(out[0], str)
    assert Tagger.load(dape_dir).words and (dape_dir / "manifest.json").is_file()


def test_chat_habits_are_what_the_grpo_rewards_remove():
    from cozlib.grpo.rewards import phrase_exclusion, repetition_penalty
    from cozlib.training.prompts import chat_habit
    rng = np.random.default_rng(0)
    for variant in ("multiscale", "single"):
        outs = {chat_habit("cat, fur, hairs", rng, variant) for _ in range(40)}
        leads = [o for o in outs if phrase_exclusion(o) == 0.0]
        runs = [o for o in outs if repetition_penalty(o) < -0.3]
        assert leads and runs and len(leads) + len(runs) == len(outs)
        assert all(o.endswith("cat, fur, hairs") for o in leads)
        assert all(clean_prompt(o) == "cat, fur, hairs" for o in runs)
    assert chat_habit("", rng) == ""


#: The released adapter's adapter_config.json (ckpt/VLM_LoRA/checkpoint-10000), fields that matter.
RELEASE_ADAPTER = {"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": 8, "lora_alpha": 32, "lora_dropout": 0.05,
                   "bias": "none", "init_lora_weights": True, "inference_mode": True, "fan_in_fan_out": False,
                   "modules_to_save": [], "use_dora": False, "use_rslora": False,
                   "target_modules": "^(model).*\\.(q_proj|o_proj|gate_proj|down_proj|k_proj|up_proj|v_proj)$"}


def test_release_format_adapter_changes_the_language_model_only(released_layout, tmp_path):
    """The release's exact config (its target regex also matches the vision MLP under transformers 5
    names) with tensors under transformers 4.x key names: each merged weight moves by exactly
    alpha / r x B A, and the vision tower stays as it was."""
    import re
    from safetensors.torch import save_file
    from cozlib.prompts.vlm import load_vlm
    folder, _ = released_layout
    base, _ = load_vlm(folder, None, "cpu")
    lm = re.compile(r"model\.language_model\.layers\.(\d+)\.(self_attn|mlp)\.(q|k|v|o|gate|up|down)_proj$")
    gen = torch.Generator().manual_seed(0)
    tensors, expected = {}, {}
    for name, mod in base.named_modules():
        m = lm.match(name)
        if m is None:
            continue
        a = torch.randn(8, mod.in_features, generator=gen) * 0.05
        b = torch.randn(mod.out_features, 8, generator=gen) * 0.05
        old = f"base_model.model.model.layers.{m.group(1)}.{m.group(2)}.{m.group(3)}_proj"   # 4.x names
        tensors[f"{old}.lora_A.weight"], tensors[f"{old}.lora_B.weight"] = a, b
        expected[name] = mod.weight.detach().clone() + (32 / 8) * b @ a
    adapter = tmp_path / "checkpoint-10000"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({**RELEASE_ADAPTER, "base_model_name_or_path": str(folder)}))
    save_file(tensors, str(adapter / "adapter_model.safetensors"))
    vision_before = {k: v.clone() for k, v in base.model.visual.state_dict().items()}
    tuned, _ = load_vlm(folder, adapter, "cpu")
    mods = dict(tuned.named_modules())
    assert len(expected) == 7 * TINY["qwen_vl"]["text"]["num_hidden_layers"]
    for name, w in expected.items():
        assert torch.allclose(mods[name].weight, w, atol=1e-5), name
    for k, v in tuned.model.visual.state_dict().items():
        assert torch.equal(v, vision_before[k]), k


def test_paper_scale_vlm_rows_are_the_base_model(released_layout):
    """Notebooks 02 and 03 pass one set of options (vlm, vlm_lora) to every extractor: only vlm-grpo
    takes the adapter, so the "before GRPO" rows are the base model."""
    folder, adapter = released_layout
    opts = {"vlm": str(folder), "vlm_lora": str(adapter)}
    base = make_prompt_extractor("vlm", device="cpu", lazy=True, **opts)
    plain = make_prompt_extractor("vlm", device="cpu", lazy=True, vlm=str(folder))
    tuned = make_prompt_extractor("vlm-grpo", device="cpu", lazy=True, **opts)
    assert base.identity() == plain.identity() != tuned.identity()


def test_paper_scale_answers_are_raw_by_default_as_the_official_code_passes_them(released_layout):
    folder, _ = released_layout
    imgs = _images(2, seed=5)
    raw = make_vlm_prompt(True, device="cpu", vlm=str(folder), max_new_tokens=6)
    cleaned = make_vlm_prompt(True, device="cpu", vlm=str(folder), max_new_tokens=6, clean=True)
    assert raw.identity().endswith(":raw") and not cleaned.identity().endswith(":raw")
    assert raw.generate([imgs]) == raw.generate_raw([imgs])
    assert cleaned.generate([imgs]) == [clean_prompt(t) for t in cleaned.generate_raw([imgs])]
    lazy = make_prompt_extractor("vlm", device="cpu", lazy=True, vlm=str(folder), max_new_tokens=6)
    assert lazy.identity() == raw.identity()
