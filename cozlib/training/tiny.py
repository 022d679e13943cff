"""Tiny configurations of SD3's classes (diffusers + transformers), built from configs: no download.

The classes are the paper model's (SD3Transformer2DModel, the 16-channel AutoencoderKL, CLIP-L/G
with projection, T5 encoder, FlowMatchEulerDiscreteScheduler); only the sizes differ. The tokenizers
are trained here on ZoomWorld's vocabulary plus every printable ASCII character (so any text
tokenizes). The text encoders stay at their seeded random initialisation and frozen, as SD3's are
frozen: no pretrained text model exists at this size, and the transformer learns to read the
(prompt-dependent) features a random encoder gives.
"""
from __future__ import annotations

import string
from pathlib import Path

from ..errors import ConfigError

#: Sizes of the demo model. The VAE downsamples 4x (three blocks): a 64 px patch is a 16x16 latent,
#: 8x8 transformer tokens of patch 2. No attention in the VAE (a 512 px image would need 16k tokens).
TINY = {
    "vae": dict(in_channels=3, out_channels=3, down_block_types=["DownEncoderBlock2D"] * 3,
                up_block_types=["UpDecoderBlock2D"] * 3, block_out_channels=[16, 32, 64], layers_per_block=1,
                latent_channels=16, norm_num_groups=8, sample_size=64, use_quant_conv=False,
                use_post_quant_conv=False, mid_block_add_attention=False, scaling_factor=1.0, shift_factor=0.0),
    "transformer": dict(sample_size=16, patch_size=2, in_channels=16, out_channels=16, num_layers=4,
                        attention_head_dim=32, num_attention_heads=4, joint_attention_dim=64,
                        caption_projection_dim=128, pooled_projection_dim=64, pos_embed_max_size=16),
    "clip": dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                 max_position_embeddings=32, projection_dim=32),
    "t5": dict(d_model=64, d_ff=128, d_kv=32, num_layers=2, num_heads=2, relative_attention_num_buckets=8),
    "scheduler": dict(num_train_timesteps=1000, shift=3.0),
    "clip_max_length": 32,   # tokens; the T5 length is the same (OSEDiffOptions.max_sequence_length)
    "vocab_size": 512,
    # Qwen2.5-VL (the prompt extractor): 2 text layers, 2 vision blocks; images at 140 px are 10x10
    # patches of 14 px, merged 2x2: 25 tokens of 28 px each (Qwen2.5-VL-3B sees a 512 px state as
    # 324). An odd token grid puts one token wholly inside the zoomed window (the coarser image's
    # central quarter, 35 px): at 112 px (a 4x4 grid) that window straddles four tokens, each three
    # quarters context (docs/PAPER.md §3's multi-scale prompt; measured in docs/lab/).
    "qwen_vl": {
        "text": dict(hidden_size=128, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4,
                     num_key_value_heads=2, max_position_embeddings=1024,
                     rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [4, 6, 6]}),
        "vision": dict(depth=2, hidden_size=64, intermediate_size=128, num_heads=2, out_hidden_size=128,
                       fullatt_block_indexes=[1], window_size=56),
        "image_px": 140,
        "vocab_size": 640,
    },
}

#: Qwen2's special tokens the chat format and the vision placeholders use.
QWEN_SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
                "<|image_pad|>", "<|video_pad|>"]


def tokenizer_corpus() -> list[str]:
    """ZoomWorld's words in prompt-like lines, and every printable character."""
    from ..world.vocab import vocabulary
    words = vocabulary()
    lines = [", ".join(words[i:] + words[:i]) for i in range(len(words))]
    lines += [f"a photo of {w}" for w in words] + [string.printable] * 4
    return lines


#: The demo SD3's tokenizers, trained once and kept: ``tokenizers``' trainer breaks ties between
#: equally frequent merges (BPE, CLIP's) and pieces (Unigram, T5's) in hash order, which changes from
#: one process to the next, so each training gave other token ids, other text features and another
#: base model. ``make weights`` reads these; delete the folder to train new ones.
TOKENIZERS_DIR = "data/tokenizers"


def build_tokenizers(vocab_size: int, clip_max_length: int, folder: str | Path | None = TOKENIZERS_DIR):
    """(CLIP tokenizer, CLIP-G tokenizer, T5 tokenizer): those kept in ``folder`` (``clip/``, ``t5/``)
    when it holds them, else trained on ``tokenizer_corpus`` (and not saved)."""
    from transformers import CLIPTokenizer, T5Tokenizer
    from ..paths import resolve
    kept = resolve(folder) if folder is not None else None
    if kept is not None and (kept / "clip" / "tokenizer.json").is_file() and (kept / "t5" / "tokenizer.json").is_file():
        clip, t5 = CLIPTokenizer.from_pretrained(kept / "clip"), T5Tokenizer.from_pretrained(kept / "t5")
        for tok in (clip, t5):  # keys loading adds, which saving would write into the weights folder
            for key in ("is_local", "local_files_only", "max_length", "pad_to_multiple_of", "pad_token_type_id",
                        "padding_side"):
                tok.init_kwargs.pop(key, None)
        if len(clip) > vocab_size or len(t5) > vocab_size:
            raise ConfigError(f"the tokenizers in {kept} have {len(clip)} / {len(t5)} tokens, more than vocab_size "
                              f"{vocab_size}: delete {kept} to train new ones")
    else:
        corpus = tokenizer_corpus()
        clip = CLIPTokenizer().train_new_from_iterator(corpus, vocab_size=vocab_size)
        t5 = T5Tokenizer(extra_ids=0).train_new_from_iterator(corpus, vocab_size=vocab_size)
    clip.model_max_length = clip_max_length
    return clip, clip, t5


def build_qwen_tokenizer(vocab_size: int):
    """A byte-level BPE tokenizer (Qwen2's kind) trained on ZoomWorld's words and the two system texts,
    wrapped as transformers' Qwen2Tokenizer, with our chat template (prompts.vlm.CHAT_TEMPLATE)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import Qwen2Tokenizer
    from ..prompts.vlm import CHAT_TEMPLATE, MULTISCALE_SYSTEM, SINGLE_SYSTEM
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=QWEN_SPECIAL,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(tokenizer_corpus() + [MULTISCALE_SYSTEM, SINGLE_SYSTEM, "system user assistant"], trainer)
    qt = Qwen2Tokenizer(tokenizer_object=tok, unk_token=None, bos_token=None, eos_token="<|im_end|>",
                        pad_token="<|endoftext|>")
    qt.chat_template = CHAT_TEMPLATE
    return qt


def build_qwen_vl(seed: int = 0):
    """(Qwen2_5_VLForConditionalGeneration of the TINY sizes with seeded random weights, its processor)."""
    import torch
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration
    from transformers.models.qwen2_vl import Qwen2VLImageProcessorPil
    from ..prompts.vlm import CHAT_TEMPLATE, image_only_processor_class
    t = TINY["qwen_vl"]
    tok = build_qwen_tokenizer(t["vocab_size"])
    ids = {s: tok.convert_tokens_to_ids(s) for s in QWEN_SPECIAL}
    cfg = Qwen2_5_VLConfig(
        text_config=dict(vocab_size=len(tok), bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"],
                         pad_token_id=ids["<|endoftext|>"], **t["text"]),
        vision_config=t["vision"], image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"])
    torch.manual_seed(seed)
    model = Qwen2_5_VLForConditionalGeneration(cfg)
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
    model.generation_config.eos_token_id = ids["<|im_end|>"]
    px = t["image_px"] ** 2
    proc = image_only_processor_class()(Qwen2VLImageProcessorPil(min_pixels=px, max_pixels=px), tok,
                                        chat_template=CHAT_TEMPLATE)
    tok.padding_side = "left"
    return model, proc


def build_pipeline(seed: int = 0):
    """A StableDiffusion3Pipeline of the TINY sizes, seeded random weights."""
    import torch
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, SD3Transformer2DModel, StableDiffusion3Pipeline
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection, T5Config, T5EncoderModel
    tok1, tok2, tok3 = build_tokenizers(TINY["vocab_size"], TINY["clip_max_length"])
    torch.manual_seed(seed)
    encoders = []
    for tok in (tok1, tok2):
        cfg = CLIPTextConfig(vocab_size=len(tok), bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                             pad_token_id=tok.pad_token_id, **TINY["clip"])
        encoders.append(CLIPTextModelWithProjection(cfg))
    t5 = T5EncoderModel(T5Config(vocab_size=len(tok3), pad_token_id=tok3.pad_token_id,
                                 eos_token_id=tok3.eos_token_id, **TINY["t5"]))
    return StableDiffusion3Pipeline(
        transformer=SD3Transformer2DModel(**TINY["transformer"]), vae=AutoencoderKL(**TINY["vae"]),
        scheduler=FlowMatchEulerDiscreteScheduler(**TINY["scheduler"]),
        text_encoder=encoders[0], tokenizer=tok1, text_encoder_2=encoders[1], tokenizer_2=tok2,
        text_encoder_3=t5, tokenizer_3=tok3)


def round_as_saved(pipe) -> None:
    """Round the weights ``save_pipeline`` writes to fp16 precision, in place (still float32): the
    one-step stages then train on the base model they will run with, the one a ``--base`` retrain loads."""
    import torch
    with torch.no_grad():
        for part in (pipe.transformer, pipe.vae, pipe.text_encoder, pipe.text_encoder_2, pipe.text_encoder_3):
            for t in (part.state_dict().values() if part is not None else ()):
                if t.is_floating_point():
                    t.copy_(t.to(torch.float16).to(t.dtype))


def save_pipeline(pipe, folder: str | Path, half: bool = True) -> None:
    """Save in the diffusers folder layout (fp16 weights when ``half``: half the repository size;
    loading in float32 upcasts them)."""
    import copy
    import torch
    p = copy.deepcopy(pipe)
    if half:
        for part in (p.transformer, p.vae, p.text_encoder, p.text_encoder_2, p.text_encoder_3):
            if part is not None:
                part.to(torch.float16)
    p.save_pretrained(folder, safe_serialization=True)
