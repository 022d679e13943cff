"""``python -m cozlib evaluate``: Table 1 over a folder of images (``experiments.evaluation``); with
``accelerate launch`` (or ``torchrun``) the images are split over the processes, and a rerun resumes."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import ConfigError


def add_parsers(sub) -> None:
    e = sub.add_parser("evaluate", help="Table 1 over images: every method's chain, every state scored; "
                                        "sharded with accelerate launch, resumable",
                       description="Run each method on each image, score every state with no-reference metrics and "
                                   "write OUT/table1.csv. Launch with `accelerate launch [--cpu] --num_processes N -m "
                                   "cozlib evaluate ...` to split the images over processes; a rerun into the same "
                                   "OUT skips the images already scored.")
    e.add_argument("inputs", nargs="+", metavar="INPUT", help="image file, folder (e.g. DIV2K_train_HR), photo:NAME or "
                                                              "world:SEED")
    e.add_argument("--out", required=True, help="output folder (OUT/images/*.json per image, OUT/table1.csv)")
    e.add_argument("--methods", nargs="+", default=["Nearest", "Direct SR", "CoZ"],
                   help="Table 1's rows by label (experiments.methods: Nearest, Bicubic, Direct SR, CoZ with Real-ESRGAN; "
                        "'Direct SR (OSEDiff)', 'CoZ VLM (OSEDiff)', ... with --backbone)")
    e.add_argument("--backbone", default="osediff-demo", help="the backbone of the '(OSEDiff)' rows (osediff-sd3 at "
                                                               "paper scale)")
    e.add_argument("--metrics", default="niqe,piqe",
                   help="comma-separated pyiqa metrics (default: those that run offline; the paper's four are "
                        "niqe,musiq,maniqa-pipal,clipiqa, whose weights `python -m cozlib list` names)")
    e.add_argument("--steps", type=int, default=4)
    e.add_argument("--upscale", type=int, default=4)
    e.add_argument("--process-size", type=int, default=512)
    e.add_argument("--seed", type=int, default=42)
    e.add_argument("--device", default="auto", help="auto: each process's accelerator (cpu without one)")
    e.add_argument("--vlm", default=None, help="a Qwen2.5-VL-3B-Instruct folder for the VLM rows (paper scale)")
    e.add_argument("--vlm-lora", default=None, help="the GRPO adapter folder, for the 'VLM GRPO' row")
    e.add_argument("--memory", default=None, choices=("official", "fast", "24gb", "8gb"), help="see `zoom --help`")
    e.add_argument("--compile", action="store_true", help="static KV cache and torch.compile (see `zoom --help`)")
    e.add_argument("--batch", type=int, default=1,
                   help="images per chain call: their chains run in lockstep, one VLM generate and one SR call per "
                        "step for all (a record per image as before; a killed run loses the batch in flight)")
    e.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..chain import ChainConfig
    from ..data import resolve_input
    from ..experiments import PHOTO_METHODS, methods_by_label, world_methods
    from ..experiments.evaluation import check_out, evaluate, settings
    from ..metrics import Scorer, parse_metric_list
    from ..outputs import check_not_inside_output
    from ..runtime import resolve_device
    from ..speed import Speed, check_speed
    if not 1 <= args.batch <= 256:
        raise ConfigError(f"--batch must be a whole number from 1 to 256, got {args.batch}")
    speed = Speed() if args.compile else None
    if speed is not None:
        check_speed(speed, args.memory, resolve_device(args.device))
    config = ChainConfig(steps=args.steps, upscale=args.upscale, process_size=args.process_size, seed=args.seed).validate()
    methods = methods_by_label(args.methods, PHOTO_METHODS + world_methods(args.backbone, None))
    metrics = parse_metric_list(args.metrics)
    usable, missing = Scorer("cpu").usable(metrics)
    if missing:
        raise ConfigError("; ".join(f"metric {m}: {why}" for m, why in missing.items()) + " (or leave it out of --metrics)")
    items = [i for spec in args.inputs for i in resolve_input(spec, process_size=config.process_size)]
    stems = [i.stem for i in items]
    if len(set(stems)) != len(stems):
        raise ConfigError("two inputs have the same name; every image needs its own (its record is OUT/images/NAME.json)")
    out = Path(args.out)
    check_not_inside_output(out)
    check_out(out, settings(methods, config, usable, stems))
    table = evaluate(items, methods, config, usable, out, args.device,
                     {"vlm": args.vlm, "vlm_lora": args.vlm_lora, "memory": args.memory, "speed": speed},
                     {"memory": args.memory, "speed": speed}, batch=args.batch)
    if table is not None:
        from .boundary import status
        status(f"wrote {table}")
    return 0
