"""The VLM prompt extractor (docs/PAPER.md §3): Qwen2.5-VL asked for "a set of words".

``recursive_multiscale`` (CoZ proper, c_i from x_{i-1} and x_{i-2}): a system turn with
MULTISCALE_SYSTEM and a user turn holding the coarser state, then the zoomed input, nothing else.
``recursive``: SINGLE_SYSTEM and the zoomed input alone. Greedy decoding, ``max_new_tokens`` 32 (the
later official release; the first used 128). The generation is cleaned into a comma-separated
prompt (``clean_prompt``) that the SR backbone takes.

Both scales run through the same class (transformers' Qwen2_5_VLForConditionalGeneration):
* paper scale: Qwen2.5-VL-3B-Instruct from a folder or the HF cache (``COZ_VLM`` / ``--vlm``), with the
  released GRPO LoRA adapter (``ckpt/VLM_LoRA/checkpoint-10000``, ``--vlm-lora``) if given;
* demo scale: a tiny Qwen2.5-VL trained here on ZoomWorld (``data/weights/vlm-demo``, ``make weights``),
  in a multi-scale and a single-image variant.

The processor is Qwen2.5-VL's without its video processor (which needs torchvision's video
stack): ``ImageOnlyProcessor`` with the PIL image processor.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Sequence

from PIL import Image

from ..errors import ConfigError, MissingWeightsError
from . import PromptContext, register

MULTISCALE_SYSTEM = ("The second image is a zoom-in of the first image. Based on this knowledge, "
                     "what is in the second image? Give me a set of words.")
SINGLE_SYSTEM = "What is in this image? Give me a set of words."

VLM_REPO = "Qwen/Qwen2.5-VL-3B-Instruct"
#: The demo weights: one folder per variant (multi-scale, single-image).
DEMO_DIR = "data/weights/vlm-demo"
DEMO_VARIANTS = ("multiscale", "single")

#: Qwen's chat format (<|im_start|>role\n ... <|im_end|>\n; an image as <|vision_start|><|image_pad|><|vision_end|>),
#: written here for the tiny model; a real Qwen2.5-VL folder brings its own template.
CHAT_TEMPLATE = (
    "{%- for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' }}"
    "{%- if m['content'] is string %}{{ m['content'] }}"
    "{%- else %}{%- for c in m['content'] %}"
    "{%- if c['type'] == 'image' %}{{ '<|vision_start|><|image_pad|><|vision_end|>' }}"
    "{%- elif c['type'] == 'text' %}{{ c['text'] }}{%- endif %}"
    "{%- endfor %}{%- endif %}{{ '<|im_end|>\\n' }}{%- endfor %}"
    "{%- if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{%- endif %}")


def vlm_messages(multiscale: bool) -> list[dict]:
    """The official messages: the system text, then a user turn of images only (coarser first)."""
    images = [{"type": "image"}] * (2 if multiscale else 1)
    return [{"role": "system", "content": MULTISCALE_SYSTEM if multiscale else SINGLE_SYSTEM},
            {"role": "user", "content": images}]


_SPLIT = re.compile(r"[,;\n]+|\.\s|\.$")
_STRIP = " \t\"'`*-•·:()[]{}0123456789."


def clean_prompt(text: str, max_items: int = 16, max_chars: int = 240) -> str:
    """A generation -> "w1, w2, ..." (lowercase, no bullets/numbering/quotes, each item once, at most
    ``max_items`` whole items within ``max_chars`` characters; a first item longer than that is cut).
    Empty or only special tokens -> "" (the null prompt: the SR model then works as without text)."""
    text = re.sub(r"<\|[^|>]*\|>", " ", text)  # special tokens left in the text
    items: list[str] = []
    for raw in _SPLIT.split(text.lower()):
        item = " ".join(raw.strip(_STRIP).split())
        if item and item not in items:
            items.append(item)
        if len(items) >= max_items:
            break
    kept: list[str] = []
    for item in items:
        if len(", ".join(kept + [item])) > max_chars:
            break
        kept.append(item)
    return ", ".join(kept) if kept else (items[0][:max_chars].strip() if items else "")


def image_only_processor_class():
    """Qwen2_5_VLProcessor without the video processor (built lazily: transformers is heavy)."""
    from transformers import Qwen2_5_VLProcessor

    class ImageOnlyProcessor(Qwen2_5_VLProcessor):
        def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
            super().__init__(image_processor, tokenizer, None, chat_template=chat_template, **kwargs)

    return ImageOnlyProcessor


def load_processor(folder: str | os.PathLike, max_pixels: int | None = None):
    """Tokenizer + PIL image processor + chat template of a Qwen2.5-VL folder, as one processor."""
    import json
    from transformers import AutoTokenizer
    from transformers.models.qwen2_vl import Qwen2VLImageProcessorPil
    folder = Path(folder)
    tok = AutoTokenizer.from_pretrained(folder)
    cfg = {}
    for name in ("preprocessor_config.json", "processor_config.json"):
        if (folder / name).is_file():
            data = json.loads((folder / name).read_text())
            cfg = data.get("image_processor", data)
            break
    keep = {k: cfg[k] for k in ("min_pixels", "max_pixels", "patch_size", "temporal_patch_size", "merge_size",
                                "image_mean", "image_std", "size") if k in cfg}
    if max_pixels:
        keep["max_pixels"] = max_pixels
        keep.pop("size", None)
    ip = Qwen2VLImageProcessorPil(**keep)
    template = tok.chat_template
    for name in ("chat_template.jinja", "chat_template.json"):
        if template is None and (folder / name).is_file():
            raw = (folder / name).read_text()
            template = json.loads(raw)["chat_template"] if name.endswith(".json") else raw
    if template is None:
        raise MissingWeightsError(f"{folder} has no chat template (chat_template.json / .jinja or in "
                                  f"tokenizer_config.json); copy it from {VLM_REPO}'s files")
    tok.padding_side = "left"  # batched generation appends to the right
    return image_only_processor_class()(ip, tok, chat_template=template)


def resolve_vlm(source: str | os.PathLike | None) -> str:
    """A local Qwen2.5-VL folder, or the repo id when it is in the HF cache; else a clear error."""
    src = str(source or os.environ.get("COZ_VLM") or VLM_REPO)
    if Path(src).is_dir():
        if not (Path(src) / "config.json").is_file():
            raise MissingWeightsError(f"{src} is not a model folder (no config.json); it should hold {VLM_REPO}'s "
                                      "files: config.json, model*.safetensors, tokenizer files, preprocessor_config.json")
        return src
    try:
        from huggingface_hub import snapshot_download
        return snapshot_download(src, local_files_only=True)
    except Exception as e:
        raise MissingWeightsError(
            f"VLM weights not found: {src!r} is neither a folder nor in the Hugging Face cache. Put {VLM_REPO} "
            f"in a folder and pass --vlm DIR or set COZ_VLM=DIR (nothing is downloaded at run time)") from e


def load_vlm(folder: str | os.PathLike, adapter: str | os.PathLike | None = None, device: str = "auto",
             dtype: str = "auto", max_pixels: int | None = None):
    """(model, processor): Qwen2_5_VLForConditionalGeneration in eval mode, with a peft LoRA adapter
    folder (adapter_config.json + adapter_model.safetensors, as the released checkpoint-10000) merged in."""
    import torch
    import transformers
    from transformers import Qwen2_5_VLForConditionalGeneration
    from ..runtime import resolve_device
    transformers.utils.logging.disable_progress_bar()
    device = resolve_device(device)
    if dtype == "auto":
        dtype = "bfloat16" if device.startswith("cuda") else "float32"
    if dtype not in ("float32", "bfloat16"):
        raise ConfigError(f"VLM dtype must be float32 or bfloat16, got {dtype!r}")
    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(folder, dtype=getattr(torch, dtype))
    if adapter:
        model = merge_adapter(model, adapter)
    processor = load_processor(folder, max_pixels)
    return model.to(device).eval(), processor


def _v5_key(key: str) -> str:
    """An adapter key saved with transformers 4.x module names -> 5.x names (the language model moved
    under ``model.language_model``, the vision tower under ``model.visual``)."""
    for old, new in (("base_model.model.model.layers.", "base_model.model.model.language_model.layers."),
                     ("base_model.model.visual.", "base_model.model.model.visual.")):
        if key.startswith(old):
            return new + key[len(old):]
    return key


def merge_adapter(model, adapter: str | os.PathLike):
    """A peft LoRA adapter folder applied and merged (inference needs no separate LoRA matmuls).
    Every tensor of the adapter must land in the model (keys saved under transformers 4.x names are
    renamed); an adapter that would silently change nothing is an error."""
    from peft import PeftModel, set_peft_model_state_dict
    from safetensors.torch import load_file
    adapter = Path(adapter)
    if not (adapter / "adapter_config.json").is_file() or not (adapter / "adapter_model.safetensors").is_file():
        raise MissingWeightsError(f"{adapter} holds no adapter_config.json + adapter_model.safetensors: pass the adapter "
                                  "folder itself (e.g. ckpt/VLM_LoRA/checkpoint-10000)")
    import warnings
    with warnings.catch_warnings():  # keys under 4.x names are reported missing here, then loaded below
        warnings.filterwarnings("ignore", message="Found missing adapter keys")
        peft_model = PeftModel.from_pretrained(model, adapter)
    saved = {_v5_key(k): v for k, v in load_file(str(adapter / "adapter_model.safetensors")).items()}
    result = set_peft_model_state_dict(peft_model, saved)
    if result.unexpected_keys:
        raise ConfigError(f"{adapter}: {len(result.unexpected_keys)} adapter tensors match no module of this model "
                          f"(e.g. {result.unexpected_keys[0]}); is it an adapter of this Qwen2.5-VL?")
    return peft_model.merge_and_unload()


class VLMPrompt:
    """c_i from Qwen2.5-VL: multi-scale ([x_{i-1}, zoomed]) or single-image ([zoomed])."""

    multiscale: bool

    def __init__(self, model, processor, multiscale: bool, weights_id: str, max_new_tokens: int = 32,
                 offload_device: str | None = None, clean: bool = True) -> None:
        self.model, self.processor = model, processor
        self.multiscale = multiscale
        self.name = "vlm" if multiscale else "vlm-single"
        self.weights_id = weights_id
        self.max_new_tokens = max_new_tokens
        self.offload_device = offload_device  # the model waits on the CPU and runs there (``memory`` profiles)
        self.clean = clean  # clean_prompt the answers (the demo), or pass them raw (the official code)
        self.speed_tag = ""  # set by cozlib.speed (static KV cache, compiled decoding)

    def identity(self) -> str:
        return (f"{self.name}:{self.weights_id}:{self.max_new_tokens}" + ("" if self.clean else ":raw")
                + (f":{self.speed_tag}" if self.speed_tag else ""))

    def images_of(self, ctx: PromptContext) -> list[Image.Image]:
        if not self.multiscale:
            return [ctx.zoomed]
        if ctx.previous is None:
            raise ConfigError("--prompt vlm is the multi-scale extractor: it needs --rec-type recursive_multiscale "
                              "(the coarser state); with --rec-type recursive use --prompt vlm-single")
        return [ctx.previous, ctx.zoomed]

    def __call__(self, ctx: PromptContext) -> str:
        return self.generate([self.images_of(ctx)])[0]

    def batch(self, contexts: list[PromptContext]) -> list[str]:
        return self.generate([self.images_of(c) for c in contexts])

    def generate(self, image_lists: Sequence[Sequence[Image.Image]]) -> list[str]:
        """One cleaned prompt per list of images (a batch, padded on the left)."""
        raw = self.generate_raw(image_lists)
        return [clean_prompt(t) for t in raw] if self.clean else raw

    def generate_raw(self, image_lists: Sequence[Sequence[Image.Image]]) -> list[str]:
        import torch
        n = 2 if self.multiscale else 1
        for imgs in image_lists:
            if len(imgs) != n:
                raise ConfigError(f"{self.name} takes {n} image(s) per prompt, got {len(imgs)}")
        text = self.processor.apply_chat_template(vlm_messages(self.multiscale), add_generation_prompt=True,
                                                  tokenize=False)
        from ..memory import visiting
        with visiting(self.model, self.offload_device), torch.inference_mode():
            inputs = self.processor(text=[text] * len(image_lists),
                                    images=[[im.convert("RGB") for im in imgs] for imgs in image_lists],
                                    return_tensors="pt", padding=True).to(self.model.device)
            out = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens, do_sample=False)
        return self.processor.batch_decode(out[:, inputs["input_ids"].shape[1]:], skip_special_tokens=True)


def demo_folder(variant: str) -> Path:
    """The demo VLM variant's folder ($COZ_VLM_DEMO or data/weights/vlm-demo, then the variant)."""
    from ..paths import resolve
    return resolve(os.environ.get("COZ_VLM_DEMO") or DEMO_DIR) / variant


def _demo_availability() -> str | None:
    missing = [v for v in DEMO_VARIANTS if not (demo_folder(v) / "config.json").is_file()]
    return f"demo VLM weights missing ({', '.join(missing)}): run `make weights`" if missing else None


def _grpo_availability() -> str | None:
    from ..paths import resolve
    if not (resolve(os.environ.get("COZ_VLM_GRPO_DEMO") or GRPO_DEMO_DIR) / "adapter_config.json").is_file():
        return f"demo GRPO adapter missing ({GRPO_DEMO_DIR}): run `make weights`"
    return _demo_availability()


GRPO_DEMO_DIR = "data/weights/vlm-grpo-demo"


def vlm_files(multiscale: bool, vlm: str | None = None, vlm_lora: str | None = None,
              grpo: bool = False) -> tuple[Path, str | None]:
    """(model folder, adapter folder or None) of an extractor: the demo VLM (default) or, with ``vlm``
    (or COZ_VLM), Qwen2.5-VL from a folder or the HF cache, plus an optional LoRA adapter folder
    (``vlm_lora`` or COZ_VLM_LORA); the errors of missing files."""
    from ..paths import resolve
    vlm = vlm or os.environ.get("COZ_VLM")
    vlm_lora = vlm_lora or os.environ.get("COZ_VLM_LORA")
    if vlm:
        if grpo and not vlm_lora:
            raise ConfigError("--prompt vlm-grpo with --vlm needs --vlm-lora: the GRPO adapter folder "
                              "(the released ckpt/VLM_LoRA/checkpoint-10000)")
        return Path(resolve_vlm(vlm)), vlm_lora
    if vlm_lora:
        raise ConfigError("--vlm-lora needs --vlm (the Qwen2.5-VL-3B folder the adapter belongs to)")
    folder = demo_folder("multiscale" if multiscale else "single")
    if not (folder / "config.json").is_file():
        raise MissingWeightsError(f"{folder} is missing: run `make weights` (or pass --vlm DIR for Qwen2.5-VL-3B)")
    if grpo:
        vlm_lora = str(resolve(os.environ.get("COZ_VLM_GRPO_DEMO") or GRPO_DEMO_DIR))
        if not (Path(vlm_lora) / "adapter_config.json").is_file():
            raise MissingWeightsError(f"{vlm_lora} is missing: run `make weights` (it trains the demo GRPO adapter)")
    return folder, vlm_lora


def cleans(vlm: str | None = None, clean: bool | None = None) -> bool:
    """Whether an extractor cleans its answers: ``clean`` when given; else the demo VLM does and
    Qwen2.5-VL at paper scale (``vlm`` or COZ_VLM) passes them raw, as the official code does."""
    return clean if clean is not None else not (vlm or os.environ.get("COZ_VLM"))


def vlm_identity(multiscale: bool, vlm: str | None = None, vlm_lora: str | None = None, max_new_tokens: int = 32,
                 grpo: bool = False, memory: str | None = None, clean: bool | None = None, speed=None) -> str:
    """The extractor's identity (``VLMPrompt.identity``) without loading it."""
    from ..paths import folder_hash
    folder, lora = vlm_files(multiscale, vlm, vlm_lora, grpo)
    name = "vlm-grpo" if grpo else ("vlm" if multiscale else "vlm-single")
    return (f"{name}:{folder_hash(Path(folder), [Path(lora)] if lora else [])}:{max_new_tokens}"
            + ("" if cleans(vlm, clean) else ":raw") + (f":{speed.tag()}" if speed is not None else ""))


def make_vlm_prompt(multiscale: bool, device: str = "auto", vlm: str | None = None, vlm_lora: str | None = None,
                    max_new_tokens: int = 32, grpo: bool = False, memory: str | None = None,
                    clean: bool | None = None, speed=None) -> VLMPrompt:
    """The extractor of ``vlm_files``, loaded; a ``cozlib.memory`` profile with ``vlm_offload`` keeps it on
    the CPU between its calls on a GPU (placement only: the identity and the answers do not change);
    ``speed`` a ``cozlib.speed.Speed`` (static KV cache, compiled decoding)."""
    from ..memory import vlm_placement
    from ..paths import folder_hash
    from ..runtime import resolve_device
    folder, vlm_lora = vlm_files(multiscale, vlm, vlm_lora, grpo)
    if speed is not None:
        from ..speed import check_speed
        check_speed(speed, memory, resolve_device(device))
    where, dtype, offload = vlm_placement(memory, resolve_device(device))
    model, proc = load_vlm(folder, vlm_lora, where, dtype)
    extra = [Path(vlm_lora)] if vlm_lora else []
    ex = VLMPrompt(model, proc, multiscale, folder_hash(Path(folder), extra), max_new_tokens, offload, cleans(vlm, clean))
    if grpo:
        ex.name = "vlm-grpo"
    if speed is not None:
        from ..speed import speed_up_vlm
        speed_up_vlm(ex, speed)
    return ex


@register("vlm", "Qwen2.5-VL, multi-scale message (coarser state + zoomed input); demo weights, or --vlm DIR",
          availability=_demo_availability, options=("vlm", "max_new_tokens", "memory", "clean", "speed"), needs=("multiscale",),
          identity=lambda arg=None, device="auto", **o: vlm_identity(True, **o))
def _vlm(arg: str | None = None, device: str = "auto", **options) -> VLMPrompt:
    return make_vlm_prompt(True, device, **options)


@register("vlm-single", "Qwen2.5-VL, single-image message (zoomed input only); demo weights, or --vlm DIR",
          availability=_demo_availability, options=("vlm", "max_new_tokens", "memory", "clean", "speed"),
          identity=lambda arg=None, device="auto", **o: vlm_identity(False, **o))
def _vlm_single(arg: str | None = None, device: str = "auto", **options) -> VLMPrompt:
    return make_vlm_prompt(False, device, **options)


@register("vlm-grpo", "Qwen2.5-VL multi-scale with the GRPO LoRA adapter (demo adapter, or --vlm DIR --vlm-lora DIR)",
          availability=_grpo_availability, options=("vlm", "vlm_lora", "max_new_tokens", "memory", "clean", "speed"), needs=("multiscale",),
          identity=lambda arg=None, device="auto", **o: vlm_identity(True, grpo=True, **o))
def _vlm_grpo(arg: str | None = None, device: str = "auto", **options) -> VLMPrompt:
    return make_vlm_prompt(True, device, grpo=True, **options)
