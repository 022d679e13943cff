"""Paper scale on one GPU, profile by profile (cozlib/memory.py; issue 26): the peak GPU memory and the
time of a 4-step 512 px CoZ chain (OSEDiff on SD3-medium, prompts from Qwen2.5-VL-3B) with random
weights at the published configurations (time and memory do not depend on the weights' values).

The models are written once as folders in the release layouts (diffusers SD3, transformers Qwen2.5-VL)
and loaded through the same code as real weights (``load_osediff``, ``make_vlm_prompt``), so the
profiles' precisions, offloading and T5 handling are what is measured. The random VLM is kept from
ending early (its end and padding tokens suppressed): every prompt is 32 new tokens, the worst case.

    .venv/bin/python bench/paper_memory.py --out bench/results           # on a CUDA GPU: every profile
    .venv/bin/python bench/paper_memory.py --tiny --device cpu --out DIR  # the same path at tiny sizes
"""
from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
from pathlib import Path

#: SD3-medium's VAE and text encoders (their config.json files); the transformer is throughput.SD3_MEDIUM.
SD3_VAE = dict(in_channels=3, out_channels=3, down_block_types=["DownEncoderBlock2D"] * 4,
               up_block_types=["UpDecoderBlock2D"] * 4, block_out_channels=[128, 256, 512, 512], layers_per_block=2,
               latent_channels=16, norm_num_groups=32, sample_size=1024, scaling_factor=1.5305, shift_factor=0.0609,
               use_quant_conv=False, use_post_quant_conv=False)
CLIP_L = dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12, projection_dim=768,
              max_position_embeddings=77, hidden_act="quick_gelu", vocab_size=49408)
CLIP_G = dict(hidden_size=1280, intermediate_size=5120, num_hidden_layers=32, num_attention_heads=20,
              projection_dim=1280, max_position_embeddings=77, hidden_act="gelu", vocab_size=49408)
T5_XXL = dict(d_model=4096, d_ff=10240, d_kv=64, num_heads=64, num_layers=24, vocab_size=32128,
              feed_forward_proj="gated-gelu", relative_attention_num_buckets=32)


def write_sd3(folder: Path, tiny: bool) -> None:
    """A random SD3 pipeline folder: the real sizes, or cozlib's tiny ones; bf16 files."""
    import torch
    from cozlib.training.tiny import TINY, build_pipeline, build_tokenizers, save_pipeline
    if tiny:
        save_pipeline(build_pipeline(0), folder)
        return
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, SD3Transformer2DModel, StableDiffusion3Pipeline
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection, T5Config, T5EncoderModel
    from cozlib.training.throughput import SD3_MEDIUM
    tok1, tok2, tok3 = build_tokenizers(TINY["vocab_size"], 77)   # ids of a small vocabulary: valid in the real one
    torch.set_default_dtype(torch.bfloat16)  # half the host memory while the 7 B parameters are drawn
    try:
        clip_l, clip_g = (CLIPTextModelWithProjection(CLIPTextConfig(bos_token_id=t.bos_token_id, eos_token_id=t.eos_token_id,
                                                                     pad_token_id=t.pad_token_id, **c))
                          for t, c in ((tok1, CLIP_L), (tok2, CLIP_G)))
        t5 = T5EncoderModel(T5Config(pad_token_id=tok3.pad_token_id, eos_token_id=tok3.eos_token_id, **T5_XXL))
        pipe = StableDiffusion3Pipeline(transformer=SD3Transformer2DModel(**SD3_MEDIUM), vae=AutoencoderKL(**SD3_VAE),
                                        scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0), text_encoder=clip_l,
                                        tokenizer=tok1, text_encoder_2=clip_g, tokenizer_2=tok2, text_encoder_3=t5,
                                        tokenizer_3=tok3)
    finally:
        torch.set_default_dtype(torch.float32)
    pipe.save_pretrained(folder, safe_serialization=True)


def write_qwen(folder: Path, tiny: bool) -> None:
    """A random Qwen2.5-VL folder (3B sizes, or cozlib's tiny ones) that always generates its full length."""
    import torch
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration
    from cozlib.training.throughput import QWEN25_VL_3B
    from cozlib.training.tiny import build_qwen_vl
    model, proc = build_qwen_vl(0)
    if not tiny:
        cfg = model.config.to_dict()
        big = Qwen2_5_VLConfig(**{**cfg, "text_config": {**{k: v for k, v in cfg["text_config"].items() if k != "layer_types"},
                                                  **QWEN25_VL_3B["text_config"]},
                                  "vision_config": {**cfg["vision_config"], **QWEN25_VL_3B["vision_config"]},
                                  "tie_word_embeddings": True})
        torch.set_default_dtype(torch.bfloat16)
        try:
            model = Qwen2_5_VLForConditionalGeneration(big)
        finally:
            torch.set_default_dtype(torch.float32)
        proc.image_processor.min_pixels, proc.image_processor.max_pixels = 3136, 12845056  # the release's
    vocab, n_tok = model.config.text_config.vocab_size, len(proc.tokenizer)
    ends = [proc.tokenizer.convert_tokens_to_ids(t) for t in ("<|im_end|>", "<|endoftext|>")]
    model.generation_config.suppress_tokens = ends + list(range(n_tok, vocab))
    model.save_pretrained(folder)
    proc.save_pretrained(folder)


def model_folders(work: Path, tiny: bool) -> tuple[Path, Path]:
    """The random SD3 and Qwen2.5-VL folders under ``work`` (written once; paper_chain.py shares them)."""
    work = work / ("tiny" if tiny else "real")
    sd3, qwen = work / "sd3", work / "qwen"
    for folder, write in ((sd3, write_sd3), (qwen, write_qwen)):
        if not (folder / "config.json").is_file() and not (folder / "model_index.json").is_file():
            folder.mkdir(parents=True, exist_ok=True)
            write(folder, tiny)
    return sd3, qwen


def measure(sd3: Path, qwen: Path, profile: str, device: str, size: int, steps: int) -> dict:
    """Load both models with ``profile``, run the chain twice (the second is timed), free them."""
    import torch
    from cozlib.backbones.osediff.load import load_osediff
    from cozlib.chain import ChainConfig, run_chain
    from cozlib.data import photo
    from cozlib.prompts.vlm import make_vlm_prompt
    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    sr = load_osediff(sd3, None, None, name="bench", device=device, memory=profile)
    vlm = make_vlm_prompt(True, device=device, vlm=str(qwen), memory=profile, max_new_tokens=32)
    load_s = time.perf_counter() - t0
    cfg = ChainConfig(steps=steps, process_size=size)
    run_chain(photo("astronaut"), cfg, sr, vlm)                  # warm-up
    t1 = time.perf_counter()
    res = run_chain(photo("astronaut"), cfg, sr, vlm)
    chain_s = time.perf_counter() - t1
    peak = torch.cuda.max_memory_allocated() / 2 ** 30 if cuda else float("nan")
    row = {"profile": profile, "device": torch.cuda.get_device_name() if cuda else device, "size": size,
           "steps": steps, "load_s": round(load_s, 1), "chain_s": round(chain_s, 2),
           "prompt_s_median": round(statistics.median(t["prompt_s"] for t in res.timings), 3),
           "sr_s_median": round(statistics.median(t["sr_s"] for t in res.timings), 3), "peak_gib": round(peak, 2)}
    del sr, vlm, res
    gc.collect()
    if cuda:
        torch.cuda.empty_cache()
    return row


def main(argv: list[str] | None = None) -> int:
    import torch
    from cozlib.memory import PROFILES
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="folder of the record (<gpu>-paper_memory.json / .md)")
    ap.add_argument("--work", default="build/bench/paper_memory", help="where the random model folders are written")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--tiny", action="store_true", help="cozlib's tiny sizes (a check of the code path, on any device)")
    ap.add_argument("--profiles", nargs="+", default=list(PROFILES), choices=list(PROFILES))
    ap.add_argument("--size", type=int, default=None, help="state size (default 512; tiny 64)")
    ap.add_argument("--steps", type=int, default=4)
    a = ap.parse_args(argv)
    if a.device.startswith("cuda") and not torch.cuda.is_available():
        print("error: no CUDA GPU here; run on a GPU, or use --tiny --device cpu to check the code path", file=sys.stderr)
        return 2
    size = a.size or (64 if a.tiny else 512)
    t0 = time.perf_counter()
    sd3, qwen = model_folders(Path(a.work), a.tiny)
    print(f"[bench] model folders ready in {time.perf_counter() - t0:.0f} s", flush=True)
    rows = []
    for p in a.profiles:
        rows.append(measure(sd3, qwen, p, a.device, size, a.steps))
        print("[bench]", json.dumps(rows[-1]), flush=True)
    gpu = rows[0]["device"].lower().replace(" ", "-") if rows else a.device
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{gpu}-paper_memory" + ("-tiny" if a.tiny else "")
    (out / f"{stem}.json").write_text(json.dumps(rows, indent=1) + "\n")
    head = list(rows[0]) if rows else []
    md = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)] + \
         ["| " + " | ".join(str(r[k]) for k in head) + " |" for r in rows]
    (out / f"{stem}.md").write_text("\n".join(md) + f"\n\nRandom weights at the {'tiny' if a.tiny else 'published'} "
                                    f"configurations; {a.steps} steps at {size} px; peak = torch.cuda.max_memory_allocated.\n")
    print(f"[bench] wrote {out / stem}.json / .md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
