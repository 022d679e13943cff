"""The whole demo SR recipe (``make weights``, ``python -m cozlib train sr``): data, every stage,
held-out evaluation, and the export of the weights folder with its manifest.
"""
from __future__ import annotations

import copy
import json
import time
from dataclasses import asdict, replace
from pathlib import Path

from ...config import check
from ...errors import ConfigError
from ..loop import Stage
from .config import SRTrainConfig
from .data import cached_pairs, sr_pairs
from .evaluate import evaluate
from .stages import text_encoders, train_base, train_sr, train_vae

#: Shares of a time budget (``plan_steps``): the base model is the largest job, as SD3's pretraining is.
BUDGET_SHARES = {"vae": 0.12, "base": 0.43, "sr": 0.45}


def export(pipe, models: dict, cfg: SRTrainConfig, stages: list[Stage], metrics: dict, device: str,
           wall_s: float, out: Path, minutes: float | None = None) -> Path:
    """Write the diffusers folder (base transformer + VAE, fp16), each variant's two LoRA files in the
    official formats (docs/PAPER.md §5), ``cozlib.json`` (backbone options), ``manifest.json`` and
    ``history.json``; atomically."""
    from ...backbones.osediff import OPTIONS_FILE, demo_lora_files, save_official_lora, save_vae_encoder
    from ...imageio import atomic_dir
    from ...provenance import training_manifest
    from ..tiny import TINY, save_pipeline
    with atomic_dir(out, kind="weights") as tmp:
        save_pipeline(pipe, tmp)
        opts = None
        for variant, (model, names) in models.items():
            lora, venc = demo_lora_files(tmp, variant)
            save_official_lora(model.transformer, lora, names)
            save_vae_encoder(model.vae, venc)
            opts = model.options
        (tmp / OPTIONS_FILE).write_text(json.dumps({"options": asdict(opts)}, indent=1) + "\n")
        manifest = training_manifest(
            "OSEDiff on a tiny Stable Diffusion 3 (diffusers classes, TINY sizes)", cfg, stages, device, wall_s,
            tiny=TINY, steps_planned_for_minutes=minutes, metrics_val=metrics,
            data={"zoomworld": f"train split scenes, zoom 1x-4096x, {cfg.size} px, {cfg.pairs} pairs "
                               f"({cfg.photo_share:.0%} bundled-photo patches)",
                  "validation": f"{cfg.val_pairs} ZoomWorld val-split pairs"},
            files={p.name: {"bytes": p.stat().st_size} for p in sorted(tmp.rglob("*")) if p.is_file()})
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
        (tmp / "history.json").write_text(json.dumps({s.name: s.history for s in stages}) + "\n")
    return out


def plan_steps(cfg: SRTrainConfig, seconds: float, pipe, data, device: str, probe: int = 30, log=print) -> SRTrainConfig:
    """Step counts that fit the stages into ``seconds`` on this device: each stage runs ``probe`` steps
    on a throw-away copy of the model (warm-up included, so the estimate errs short), then its share of
    the budget (``BUDGET_SHARES``; the SR share split over the variants) sets its steps. The chain part
    keeps its ratio to the one-step stage and runs, with its pairs, outside the budget."""
    import tempfile
    quiet = lambda *_: None  # noqa: E731
    with tempfile.TemporaryDirectory() as tmp:
        c = replace(cfg, work=tmp, steps_vae=probe, steps_base=probe, steps_sr=probe, steps_chain=0,
                    steps_critic=min(cfg.steps_critic, probe))  # the critic is only probed; the real run gives it its steps
        p = copy.copy(pipe)
        for part in ("transformer", "vae", "text_encoder", "text_encoder_2", "text_encoder_3"):
            setattr(p, part, copy.deepcopy(getattr(pipe, part)))  # the probe trains them: leave pipe's alone
        per_step = {"vae": train_vae(p, data, c, device, quiet).wall_s / probe,
                    "base": train_base(p, data, c, device, quiet).wall_s / probe}
        per_step["sr"] = sum(train_sr(p, data, c, device, v, quiet)[2].wall_s / probe for v in cfg.variants)
    steps = {k: max(probe, int(seconds * BUDGET_SHARES[k] / per_step[k])) for k in per_step}
    chain = cfg.chain_steps_for(steps["sr"])
    log("[plan] s/step " + " ".join(f"{k} {v * 1000:.1f} ms" for k, v in per_step.items())
        + f" -> steps vae {steps['vae']}, base {steps['base']}, sr {steps['sr']} (+ chain part {chain}, outside the budget)"
        + f" for {seconds / 60:.1f} min")
    return replace(cfg, steps_vae=steps["vae"], steps_base=steps["base"], steps_sr=steps["sr"], steps_chain=chain)


def train(cfg: SRTrainConfig, log=print, minutes: float | None = None) -> Path:
    """Every stage, then the export. Resumes from ``cfg.work``'s checkpoints. With ``minutes``, the
    step counts are first fitted to that time budget (``plan_steps``; the manifest keeps them)."""
    import diffusers
    import transformers
    from ...runtime import resolve_device, seed_everything
    from ..tiny import build_pipeline, round_as_saved
    check(cfg)
    from ...outputs import check_output_folders
    check_output_folders(cfg.out, work=cfg.work)
    if minutes is not None and not minutes > 0:
        raise ConfigError(f"--minutes must be a positive number, got {minutes!r}")
    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.disable_progress_bar()
    device = resolve_device(cfg.device, "--set device")
    if device == "cpu":
        import torch
        torch.set_num_threads(cfg.threads)
    t0 = time.perf_counter()
    seed_everything(cfg.seed)
    pipe = build_pipeline(cfg.seed)
    for enc in text_encoders(pipe):
        enc.to(device).eval().requires_grad_(False)
    data = cached_pairs(cfg, "train", cfg.pairs, True, log)
    own = sr_pairs(cfg, log)
    val = cached_pairs(cfg, "val", cfg.val_pairs, False, log)
    if minutes:
        cfg = plan_steps(cfg, minutes * 60, pipe, data, device, log=log)
    stages = [train_vae(pipe, data, cfg, device, log), train_base(pipe, data, cfg, device, log)]
    round_as_saved(pipe)  # the one-step stages see the base model as exported (fp16), as `--base` retrains do
    models, metrics = {}, {}
    for variant in cfg.variants:
        model, names, st = train_sr(pipe, own, cfg, device, variant, log, pre_stages=stages, critic_data=data)
        stages.append(st)
        models[variant] = (model, names)
        metrics[variant] = evaluate(model, val, device)
        log(f"[eval] {variant}: {json.dumps(metrics[variant])}")
    for net in [pipe.transformer, pipe.vae, *text_encoders(pipe)] + [m.transformer for m, _ in models.values()] \
            + [m.vae for m, _ in models.values()]:
        net.to("cpu")
    out = export(pipe, models, cfg, stages, metrics, device, time.perf_counter() - t0, Path(cfg.out), minutes)
    log(f"[done] {out} in {(time.perf_counter() - t0) / 60:.1f} min")
    return out
