"""``python -m cozlib zoom``: run a zoom chain (or full-image CoZ) on images.

Order of work: every argument and every input is checked, and every output folder found free or
cozlib's own, before any model is loaded; then each input's chain runs and its folder
``OUT/<stem>/`` (marked ``.cozlib``) is renamed into place complete.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import ConfigError


def add_parsers(sub) -> None:
    from ..chain import REC_TYPES
    from ..imageio import DEFAULT_MAX_PIXELS
    z = sub.add_parser("zoom", help="run a zoom chain on images",
                       description="Zoom into the center of each INPUT (a file, a folder, photo:NAME or world:SEED).")
    z.add_argument("inputs", nargs="+", metavar="INPUT", help="image file, folder, photo:NAME or world:SEED")
    z.add_argument("--out", required=True,
                   help="output folder; writes OUT/<stem>/scale{k}.png, prompts.json, chain.png, chain.json. A folder "
                        "OUT/<stem> that cozlib did not write is never replaced")
    z.add_argument("--rec-type", default="recursive_multiscale", choices=REC_TYPES)
    z.add_argument("--backbone", default=None,
                   help="SR backbone (see `list`; default realesrgan); nearest and bicubic rec types use none")
    z.add_argument("--prompt", default="null",
                   help="prompt extractor: null, fixed:TEXT, vlm, vlm-single, vlm-grpo, dape, oracle, wrong (see `list`)")
    z.add_argument("--user-prompt", default="", help='appended as "{prompt}, {user_prompt},"')
    z.add_argument("--steps", type=int, default=4, help="number of zoom steps (official --rec_num)")
    z.add_argument("--upscale", type=int, default=4, help="magnification of one step")
    z.add_argument("--process-size", type=int, default=512, help="state size in px (a multiple of --upscale)")
    z.add_argument("--align-method", default="nofix", choices=("nofix", "adain", "wavelet"))
    z.add_argument("--seed", type=int, default=42, help="0 .. 2^32-1; the same seed gives the same bytes")
    z.add_argument("--device", default="auto")
    z.add_argument("--weights", default=None,
                   help="weights folder of an OSEDiff backbone (osediff-sd3: the SD3 diffusers folder; "
                        "osediff-demo: default data/weights/osediff-demo)")
    z.add_argument("--lora-dir", default=None, help="osediff-sd3: folder holding model_20001.pkl and vae_encoder_20001.pt")
    z.add_argument("--lora-path", default=None, help="osediff-sd3: the SR LoRA file itself, any name (official "
                                                     "--lora_path; default: model_20001.pkl under --lora-dir)")
    z.add_argument("--vae-path", default=None, help="osediff-sd3: the VAE-encoder LoRA file itself, any name (official "
                                                    "--vae_path; default: vae_encoder_20001.pt under --lora-dir)")
    z.add_argument("--dtype", default=None, choices=("float32", "bfloat16"), help="OSEDiff backbones' precision")
    z.add_argument("--drop-t5", action="store_true", help="OSEDiff: leave T5 out (zeros in its place; saves ~9 GB)")
    z.add_argument("--offload", action="store_true", help="OSEDiff: keep models on the CPU until each runs (small GPUs)")
    z.add_argument("--text-device", default=None,
                   help="OSEDiff: where the three text encoders run, e.g. cuda:1 (the official two-GPU layout) or cpu")
    z.add_argument("--vae-tiled-size", type=int, default=None,
                   help="OSEDiff: encode and decode in VAE tiles of this many pixels (the official "
                        "--vae_encoder_tiled_size / --vae_decoder_tiled_size, one size here); default: whole images")
    z.add_argument("--memory", default=None, choices=("official", "fast", "24gb", "8gb"),
                   help="paper scale on one GPU: official (fp32 SR, fp16 text encoders; the osediff-sd3 default on a "
                        "GPU), fast (bf16, all resident), 24gb (one model on the GPU at a time), 8gb (24gb without T5); "
                        "see cozlib/memory.py")
    z.add_argument("--compile", action="store_true",
                   help="paper scale on a GPU: the VLM decodes into a static KV cache with its step compiled, and the "
                        "OSEDiff parts are compiled (cozlib/speed.py; the first chain pays the compilation)")
    z.add_argument("--vlm", default=None,
                   help="--prompt vlm/vlm-single: a Qwen2.5-VL folder or cached repo id (default: the demo VLM, "
                        "data/weights/vlm-demo; also COZ_VLM)")
    z.add_argument("--vlm-lora", default=None,
                   help="--prompt vlm/vlm-single with --vlm: a LoRA adapter folder (e.g. ckpt/VLM_LoRA/checkpoint-10000)")
    z.add_argument("--max-new-tokens", type=int, default=None,
                   help="--prompt vlm, vlm-single, vlm-grpo: generation length (1 .. 1024; default 32)")
    z.add_argument("--clean-prompt", choices=("yes", "no"), default=None,
                   help="--prompt vlm*: clean the VLM's answer (lower-case, each item once) before the SR model reads "
                        "it; default: yes for the demo VLM, no with --vlm (the official code passes it raw)")
    z.add_argument("--full-image", action="store_true",
                   help="full-image CoZ: each step super-resolves the whole image in overlapping tiles "
                        "(Gaussian blending, a prompt per tile); states grow by --upscale each step")
    z.add_argument("--full-image-blend", choices=("latent", "pixel"), default=None,
                   help="--full-image: latent = the official algorithm (OSEDiff only; tiles of the latent, each "
                        "prompted from x_0 and the tile, 16 new tokens); pixel = tiles of the image blended in pixels "
                        "(any backbone). Default: latent for the osediff backbones")
    z.add_argument("--latent-tiled-size", type=int, default=None,
                   help="--full-image latent: tile in latent px (official --latent_tiled_size; default the model's "
                        "own: 64 for SD3 as the official code, the tile the demo model learnt on, 16)")
    z.add_argument("--latent-tiled-overlap", type=int, default=None,
                   help="--full-image latent: overlap in latent px (official --latent_tiled_overlap; default 16 for "
                        "SD3, 4 for the demo model)")
    z.add_argument("--tile-overlap", type=int, default=None, help="--full-image pixel: tile overlap in px (default tile/4)")
    z.add_argument("--cache", default=None, help="chain cache folder (default: none for the CLI)")
    z.add_argument("--center", type=float, nargs=2, metavar=("X", "Y"), default=None,
                   help="zoom into this point (fractions of the input's width and height) instead of its centre: "
                        "x_0 is re-centred there (an extension; the official code zooms into the centre)")
    z.add_argument("--convert", action="store_true",
                   help="accept grayscale, palette, RGBA and 16-bit inputs by converting them to 8-bit RGB")
    z.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS,
                   help="refuse input images larger than this many pixels before decoding them (a guard against "
                        "decompression bombs; 0: no limit)")
    z.set_defaults(run=run)


def _check_arguments(args: argparse.Namespace):
    """Every argument, before any input is read: the chain's settings, the extractor's and backbone's
    names and the options that apply to them, the device, the output folder. Returns the ChainConfig
    (and fills in the backbone's default)."""
    from ..backbones import registry as backbones
    from ..chain import ChainConfig
    from ..full_image import check_full_image
    from ..outputs import check_not_inside_output, check_writable_dir
    from ..prompts import check_prompt_spec, parse_prompt_spec
    from ..runtime import resolve_device
    config = ChainConfig(rec_type=args.rec_type, upscale=args.upscale, steps=args.steps,
                         process_size=args.process_size, align_method=args.align_method,
                         user_prompt=args.user_prompt, seed=args.seed).validate()
    if not config.uses_backbone:
        unused = [f for f, given in (("--backbone", args.backbone), ("--prompt", args.prompt != "null"),
                                     ("--user-prompt", args.user_prompt), ("--align-method", args.align_method != "nofix"))
                  if given]
        if unused:
            raise ConfigError(f"{', '.join(unused)} {'is' if len(unused) == 1 else 'are'} not used by --rec-type "
                              f"{args.rec_type} (it resizes crops of x_0 without a model); leave "
                              f"{'it' if len(unused) == 1 else 'them'} out, or use onestep, recursive or "
                              f"recursive_multiscale")
    args.backbone = args.backbone or "realesrgan"
    if args.max_pixels < 0:
        raise ConfigError(f"--max-pixels must be >= 0 (0: no limit), got {args.max_pixels}")
    if config.uses_backbone and args.backbone not in backbones():
        raise ConfigError(f"unknown backbone {args.backbone!r}; choose one of: {', '.join(sorted(backbones()))} "
                          f"(`python -m cozlib list` shows what each needs)")
    options = _backbone_options(args)
    if args.vae_tiled_size is not None and not 8 <= args.vae_tiled_size <= 8192:
        raise ConfigError(f"--vae-tiled-size must be a whole number from 8 to 8192 pixels, got {args.vae_tiled_size}")
    if args.text_device is not None:
        resolve_device(args.text_device, "--text-device")
    if args.memory and (args.dtype or args.drop_t5 or args.offload):
        raise ConfigError("--memory sets the precision, T5 and offloading: leave out --dtype, --drop-t5 and --offload, "
                          "or --memory")
    if {k: v for k, v in options.items() if k != "memory"} and not args.backbone.startswith("osediff"):
        raise ConfigError(f"--weights/--lora-dir/--lora-path/--vae-path/--dtype/--drop-t5/--offload apply to the "
                          f"osediff backbones, not {args.backbone!r}")
    for flag, path in (("--lora-dir", args.lora_dir), ("--lora-path", args.lora_path), ("--vae-path", args.vae_path)):
        if path is not None and args.backbone != "osediff-sd3":
            raise ConfigError(f"{flag} applies to --backbone osediff-sd3 (the official LoRA files), not {args.backbone}")
    for flag, path in (("--lora-path", args.lora_path), ("--vae-path", args.vae_path)):
        if path is not None and not Path(path).is_file():
            raise ConfigError(f"{flag} {path}: no such file; give the official LoRA file itself "
                              f"(e.g. ckpt/SR_LoRA/model_20001.pkl, ckpt/SR_VAE/vae_encoder_20001.pt)")
    for flag, path in (("--weights", args.weights if args.backbone.startswith("osediff-demo") else None),
                       ("--lora-dir", args.lora_dir), ("--vlm-lora", args.vlm_lora)):
        if path is not None and not Path(path).is_dir():
            raise ConfigError(f"{flag} {path}: no such folder; give the folder that holds the files")
    info = check_prompt_spec(args.prompt, config.rec_type)
    for flag, option, given in (("--vlm", "vlm", args.vlm), ("--vlm-lora", "vlm_lora", args.vlm_lora),
                                ("--max-new-tokens", "max_new_tokens", args.max_new_tokens),
                                ("--clean-prompt", "clean", args.clean_prompt)):
        if given is not None and option not in info.options:
            takes = "--prompt vlm-grpo (the base model is --prompt vlm)" if option == "vlm_lora" else \
                "--prompt vlm, vlm-single and vlm-grpo"
            raise ConfigError(f"{flag} applies to {takes}, not {parse_prompt_spec(args.prompt)[0]}; leave it out")
    if args.max_new_tokens is not None and not 1 <= args.max_new_tokens <= 1024:
        raise ConfigError(f"--max-new-tokens must be a whole number from 1 to 1024, got {args.max_new_tokens}")
    if args.full_image:
        if not config.uses_backbone:
            raise ConfigError("--full-image runs the SR backbone on tiles: use --rec-type recursive or recursive_multiscale")
        osediff = args.backbone.startswith("osediff")
        args.full_image_blend = args.full_image_blend or ("latent" if osediff else "pixel")
        if args.full_image_blend == "latent":
            if not osediff:
                raise ConfigError(f"--full-image-blend latent needs an osediff backbone, not {args.backbone}; "
                                  f"use --full-image-blend pixel")
            if args.tile_overlap is not None:
                raise ConfigError("--tile-overlap is the pixel blend's; the latent blend takes --latent-tiled-overlap")
            size, lap = args.latent_tiled_size, args.latent_tiled_overlap
            if (size is not None and size < 2) or (lap is not None and lap < 0) or \
                    (size is not None and lap is not None and lap >= size):
                raise ConfigError(f"--latent-tiled-size must be >= 2 and 0 <= --latent-tiled-overlap < it, got "
                                  f"{size} and {lap}")
            if args.max_new_tokens is None and "max_new_tokens" in info.options:
                args.max_new_tokens = 16  # the official full-image code's prompts
            check_full_image(config)
        else:
            if args.latent_tiled_size is not None or args.latent_tiled_overlap is not None:
                raise ConfigError("--latent-tiled-size and --latent-tiled-overlap are the latent blend's; the pixel "
                                  "blend takes --tile-overlap")
            check_full_image(config, overlap=args.tile_overlap)
    elif any(v is not None for v in (args.tile_overlap, args.full_image_blend, args.latent_tiled_size,
                                      args.latent_tiled_overlap)):
        raise ConfigError("--tile-overlap, --full-image-blend and --latent-tiled-* apply to --full-image only")
    if args.compile:
        from ..speed import Speed, check_speed
        if not (config.uses_backbone and (args.backbone.startswith("osediff") or "speed" in info.options)):
            raise ConfigError("--compile speeds up the osediff backbones and the VLM prompts; this chain uses neither")
        check_speed(Speed(), args.memory, resolve_device(args.device), args.offload)
    if args.center is not None and not all(0.0 <= v <= 1.0 for v in args.center):
        raise ConfigError(f"--center takes two fractions of the input's width and height, each in [0, 1]; got "
                          f"{args.center[0]} {args.center[1]}")
    if args.cache and args.full_image:
        raise ConfigError("--cache keeps zoom chains; --full-image runs are not cached: leave --cache out")
    resolve_device(args.device)
    check_writable_dir(args.out)
    check_not_inside_output(args.out)
    if args.cache:
        check_writable_dir(args.cache, "--cache")
        check_not_inside_output(args.cache, "--cache")
    return config


def _backbone_options(args) -> dict:
    options = {k: v for k, v in (("weights", args.weights), ("lora_dir", args.lora_dir), ("lora_path", args.lora_path),
                                 ("vae_path", args.vae_path), ("dtype", args.dtype), ("memory", args.memory),
                                 ("text_device", args.text_device), ("vae_tile", args.vae_tiled_size)) if v is not None}
    options.update({k: True for k in ("drop_t5", "offload") if getattr(args, k)})
    return options


def _check_inputs(args, config) -> list:
    """Every input read and checked, stems unique, and each OUT/<stem> free or cozlib's."""
    from ..data import resolve_input
    from ..outputs import check_replaceable
    from ..prompts import check_prompt_spec
    inputs = [item for spec in args.inputs
              for item in resolve_input(spec, convert=args.convert, process_size=config.process_size,
                                        max_pixels=args.max_pixels)]
    stems = [item.stem for item in inputs]
    if len(set(stems)) != len(stems):
        raise ConfigError(f"two inputs share an output folder name: {sorted({s for s in stems if stems.count(s) > 1})}; "
                          f"rename one or run them separately")
    check_prompt_spec(args.prompt, config.rec_type, world=all("world_seed" in i.source for i in inputs))
    for item in inputs:
        check_replaceable(Path(args.out) / item.stem, "zoom")
        if args.center is not None:
            _recenter(item, tuple(args.center), config.process_size)
    return inputs


def _recenter(item, point: tuple[float, float], size: int) -> None:
    """The input re-centred on ``point`` (``explorer.recenter``): the chain zooms in there."""
    from ..explorer import Source, recenter
    seed = item.source.get("world_seed")
    source = Source("world" if seed is not None else "photo", item.stem, item.image, seed)
    item.image, extra = recenter(source, point, size)
    item.source = {**item.source, **extra} if seed is None else extra


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm
    from ..backbones import make_backbone
    from ..chain import ChainCache, run_chain
    from ..full_image import run_full_image, run_full_image_latent
    from ..prompts import make_prompt_extractor
    from ..speed import Speed
    config = _check_arguments(args)
    inputs = _check_inputs(args, config)
    speed = Speed() if args.compile else None
    extractor = make_prompt_extractor(args.prompt, device=args.device, vlm=args.vlm, vlm_lora=args.vlm_lora,
                                      max_new_tokens=args.max_new_tokens, memory=args.memory, speed=speed,
                                      clean=None if args.clean_prompt is None else args.clean_prompt == "yes")
    options = _backbone_options(args)
    if not args.backbone.startswith("osediff"):
        options.pop("memory", None)  # --memory places the VLM too; the other backbones are small
    elif speed is not None:
        options["speed"] = speed
    backbone = make_backbone(args.backbone, device=args.device, **options) if config.uses_backbone else None
    cache = ChainCache(args.cache) if args.cache else None
    out = Path(args.out)
    bar = tqdm(total=len(inputs) * config.steps, desc="zoom", unit="step", file=sys.stderr)
    try:
        for item in inputs:
            bar.set_postfix_str(item.stem)
            done = [0]

            def progress(i: int, n: int) -> None:
                bar.update(i - done[0])
                done[0] = i

            if args.full_image and args.full_image_blend == "latent":
                _write_full_image(run_full_image_latent(item.image, config, backbone, extractor,
                                                        tile=args.latent_tiled_size, overlap=args.latent_tiled_overlap,
                                                        source=item.source, progress=progress), out / item.stem)
            elif args.full_image:
                _write_full_image(run_full_image(item.image, config, backbone, extractor, overlap=args.tile_overlap,
                                                 source=item.source, progress=progress), out / item.stem)
            else:
                result = run_chain(item.image, config, backbone, extractor, cache=cache, source=item.source,
                                   progress=progress)
                _write_chain(result, item.source, out / item.stem)
    finally:
        bar.close()  # ends the bar's line, so an error below it stays one line of its own
    from .boundary import status
    status(f"wrote {len(inputs)} chain(s) to {out}")
    return 0


def _write_chain(result, source: dict, folder: Path) -> None:
    """OUT/STEM/: scale{k}.png, prompts.json, chain.json, the strip chain.png, and for ZoomWorld inputs truth/."""
    from ..imageio import atomic_dir, save_json
    from ..plots import chain_strip
    with atomic_dir(folder, kind="zoom") as tmp:
        for k, im in enumerate(result.states):
            im.save(tmp / f"scale{k}.png")
        save_json(result.prompts, tmp / "prompts.json")
        save_json(result.meta(), tmp / "chain.json")
        chain_strip(result.states, [f"{m}x" if m > 1 else "x0" for m in result.magnifications]).save(tmp / "chain.png")
        if "world_seed" in source:
            _write_world_truth(source["world_seed"], result, tmp / "truth")


def _write_full_image(result, folder: Path) -> None:
    """OUT/STEM/scale{k}.png (growing sizes) and tiles.json (each step's tiles with their prompts)."""
    from ..imageio import atomic_dir, save_json
    with atomic_dir(folder, kind="zoom") as tmp:
        for k, im in enumerate(result.states):
            im.save(tmp / f"scale{k}.png")
        save_json(result.tiles, tmp / "tiles.json")


def _write_world_truth(seed: int, result, folder: Path) -> None:
    """truth/scale{k}.png (the exact window of each state) and truth/words.json ({word: fraction} per k)."""
    from .. import world
    from ..experiments import truth_states
    from ..imageio import save_json
    folder.mkdir(parents=True, exist_ok=True)
    for k, im in enumerate(truth_states(result)):
        im.save(folder / f"scale{k}.png")
    save_json([world.window_words(seed, world.in_world(w, result.source), result.config.process_size)
               for w in result.windows], folder / "words.json")
