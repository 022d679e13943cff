"""The 4-step 256x chain at 512 px, three ways in one run (cozlib/speed.py; issue 27): the official-style
layout (fp32 SR model, fp16 text encoders, eager), the default transformers + diffusers composition (bf16,
eager, a dynamic KV cache) and ours (bf16, a static KV cache, the VLM's decoding and the SR parts
compiled). Random weights at the published configurations, written once in the release layouts by
bench/paper_memory.py's writers; every prompt is 32 new tokens (the random VLM's end token is suppressed).

Per layout: seconds per chain (median of ``--repeats`` after a warm-up chain, which pays any compilation),
the VLM and SR seconds of a step, each part of one step (``experiments.runtime.step_parts``), peak GPU
memory, and the check that ours gives the default's prompts (greedy tokens) and images (largest 8-bit
difference of any state); then the ratios. Writes ``<gpu>-paper_chain.json`` / ``.md``.

    .venv/bin/python bench/paper_chain.py --out bench/results                          # a CUDA GPU
    .venv/bin/python bench/paper_chain.py --tiny --device cpu --backend eager --out DIR  # the code path, tiny
"""
from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import statistics
import sys
import time
from pathlib import Path

#: (name, memory profile, speed-up) of each layout, in the order they run.
LAYOUTS = (("official", "official", False), ("default", "fast", False), ("ours", "fast", True))


def _model_folders(work: Path, tiny: bool) -> tuple[Path, Path]:
    """paper_memory.py's random model folders (written there once, shared)."""
    spec = importlib.util.spec_from_file_location("paper_memory", Path(__file__).with_name("paper_memory.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.model_folders(work, tiny)


def measure(sd3: Path, qwen: Path, layout: tuple[str, str, bool], device: str, size: int, steps: int,
            repeats: int, backend: str) -> tuple[dict, object]:
    """Load both models in ``layout``, warm up, time ``repeats`` chains and each part of a step."""
    import numpy as np
    import torch
    from cozlib.backbones.osediff.load import load_osediff
    from cozlib.chain import ChainConfig, run_chain
    from cozlib.data import photo
    from cozlib.experiments.runtime import step_parts
    from cozlib.prompts.vlm import make_vlm_prompt
    from cozlib.speed import Speed
    name, memory, fast = layout
    speed = Speed(backend=backend) if fast else None
    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    sr = load_osediff(sd3, None, None, name="bench", device=device, memory=memory, speed=speed)
    vlm = make_vlm_prompt(True, device=device, vlm=str(qwen), memory=memory, max_new_tokens=32, speed=speed)
    load_s = time.perf_counter() - t0
    cfg = ChainConfig(steps=steps, process_size=size)
    image = photo("astronaut")
    t1 = time.perf_counter()
    run_chain(image, cfg, sr, vlm)                                   # warm-up (compilation)
    warm_s = time.perf_counter() - t1
    times, res = [], None
    for _ in range(repeats):
        t2 = time.perf_counter()
        res = run_chain(image, cfg, sr, vlm)
        times.append(time.perf_counter() - t2)
    parts = step_parts(sr, vlm, res.states[1], cfg.upscale, repeats=max(1, repeats))
    peak = round(torch.cuda.max_memory_allocated() / 2 ** 30, 2) if cuda else None
    row = {"layout": name, "memory": memory, "speed": speed.tag() if speed else "eager",
           "device": torch.cuda.get_device_name() if cuda else device, "size": size, "steps": steps,
           "load_s": round(load_s, 1), "warmup_s": round(warm_s, 1), "chain_s": round(statistics.median(times), 3),
           "prompt_s_step": round(statistics.median(t["prompt_s"] for t in res.timings), 4),
           "sr_s_step": round(statistics.median(t["sr_s"] for t in res.timings), 4),
           **{f"{p}_ms": round(s * 1e3, 1) for p, s in parts.items()}, "peak_gib": peak}
    states = [np.asarray(im, dtype=np.int16) for im in res.states]
    del sr, vlm
    gc.collect()
    torch._dynamo.reset()
    if cuda:
        torch.cuda.empty_cache()
    return row, (res.prompts, states)


def compare(row: dict, mine, reference) -> None:
    """Ours against the default composition: the same prompts, images within bf16 noise."""
    prompts, states = mine
    ref_prompts, ref_states = reference
    row["prompts_match_default"] = prompts == ref_prompts
    row["max_diff_vs_default"] = int(max(abs(a - b).max() for a, b in zip(states, ref_states)))
    row["mean_diff_vs_default"] = round(float(sum(abs(a - b).mean() for a, b in zip(states, ref_states)) / len(states)), 3)


def markdown(rows: list[dict], note: str) -> str:
    head = list(dict.fromkeys(k for r in rows for k in r))
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(r.get(k, "")) for k in head) + " |" for r in rows]
    return "\n".join(lines) + "\n\n" + note + "\n"


def main(argv: list[str] | None = None) -> int:
    import diffusers
    import torch
    diffusers.utils.logging.set_verbosity_error()  # the random prompts are longer than CLIP's 77 tokens
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="folder of the record (<gpu>-paper_chain.json / .md)")
    ap.add_argument("--work", default="build/bench/paper_memory", help="where the random model folders are (shared "
                                                                       "with paper_memory.py)")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--tiny", action="store_true", help="cozlib's tiny sizes (a check of the code path, on any device)")
    ap.add_argument("--size", type=int, default=None, help="state size (default 512; tiny 64)")
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=3, help="timed chains per layout (the median is kept)")
    ap.add_argument("--backend", default="inductor", choices=("inductor", "eager"),
                    help="torch.compile's backend for ours (eager: traced only; the CPU test)")
    ap.add_argument("--layouts", nargs="+", default=[l[0] for l in LAYOUTS], choices=[l[0] for l in LAYOUTS])
    a = ap.parse_args(argv)
    if a.device.startswith("cuda") and not torch.cuda.is_available():
        print("error: no CUDA GPU here; run on a GPU, or use --tiny --device cpu to check the code path", file=sys.stderr)
        return 2
    size = a.size or (64 if a.tiny else 512)
    sd3, qwen = _model_folders(Path(a.work), a.tiny)
    rows, outputs = [], {}
    for layout in (l for l in LAYOUTS if l[0] in a.layouts):
        row, outputs[layout[0]] = measure(sd3, qwen, layout, a.device, size, a.steps, a.repeats, a.backend)
        rows.append(row)
        print("[bench]", json.dumps(row), flush=True)
    by = {r["layout"]: r for r in rows}
    if "default" in outputs and "ours" in outputs:
        compare(by["ours"], outputs["ours"], outputs["default"])
    for r in rows:
        for base in ("official", "default"):
            if base in by and r["layout"] != base:
                r[f"speedup_vs_{base}"] = round(by[base]["chain_s"] / r["chain_s"], 2)
    gpu = rows[0]["device"].lower().replace(" ", "-") if rows else a.device
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{gpu}-paper_chain" + ("-tiny" if a.tiny else "")
    (out / f"{stem}.json").write_text(json.dumps(rows, indent=1) + "\n")
    note = (f"Random weights at the {'tiny' if a.tiny else 'published'} configurations; {a.steps} steps at {size} px, "
            f"32-token prompts; chain_s the median of {a.repeats} chains after a warm-up; parts from "
            f"experiments.runtime.step_parts; peak = torch.cuda.max_memory_allocated; compile backend {a.backend}; "
            f"torch {torch.__version__}.")
    (out / f"{stem}.md").write_text(markdown(rows, note))
    print(f"[bench] wrote {out / stem}.json / .md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
