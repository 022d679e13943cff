"""The chain: states, prompts, the AR-2 inputs of the extractor, seeds, the cache, bad settings."""
from __future__ import annotations


import pytest
from PIL import Image

from cozlib.backbones.simple import InterpolationBackbone
from cozlib.chain import ChainCache, ChainConfig, run_chain
from cozlib.errors import BadImageError, ConfigError
from cozlib.prompts import PromptContext, make_prompt_extractor, with_user_prompt


class RecordingExtractor:
    """Records what the chain passes to p(c_i | x_{i-1}, x_{i-2})."""

    name = "recording"
    multiscale = True

    def __init__(self):
        self.calls: list[PromptContext] = []

    def identity(self) -> str:
        return "recording"

    def __call__(self, ctx: PromptContext) -> str:
        self.calls.append(ctx)
        return f"step{ctx.step}"


class PromptEcho(InterpolationBackbone):
    """A backbone whose output depends on the prompt and the seed (to test plumbing)."""

    uses_prompt = True

    def __init__(self):
        super().__init__("bicubic")
        self.seen: list[tuple[str, int]] = []

    def identity(self) -> str:
        return "echo"

    def upsample(self, lr, prompts, size, *, seed=0):
        import torch
        self.seen.append((prompts[0], seed))
        out = super().upsample(lr, prompts, size, seed=seed)
        g = torch.Generator().manual_seed(seed)
        shift = int(torch.randint(0, 50, (1,), generator=g))
        return [im.point(lambda v: min(255, v + shift)) for im in out]


@pytest.mark.parametrize("rec_type", ["nearest", "bicubic", "onestep", "recursive", "recursive_multiscale"])
def test_every_rec_type_returns_n_plus_one_states(random_image, rec_type):
    res = run_chain(random_image(), ChainConfig(rec_type=rec_type, steps=3, process_size=64),
                    backbone=InterpolationBackbone("bicubic"))
    assert len(res.states) == 4 and len(res.prompts) == 3 and len(res.timings) == 3
    assert all(s.size == (64, 64) and s.mode == "RGB" for s in res.states)
    assert res.magnifications == [1, 4, 16, 64]
    assert all(t["sr_s"] >= 0 and t["prompt_s"] >= 0 for t in res.timings)


def test_multiscale_extractor_gets_previous_state_and_zoomed_input(random_image):
    ext = RecordingExtractor()
    res = run_chain(random_image(), ChainConfig(rec_type="recursive_multiscale", steps=3, process_size=64),
                    backbone=InterpolationBackbone("bicubic"), extractor=ext)
    assert [c.step for c in ext.calls] == [1, 2, 3]
    for i, c in enumerate(ext.calls, start=1):
        assert c.previous.tobytes() == res.states[i - 1].tobytes()  # x_{i-1}, the coarser view
        assert c.zoomed.size == (64, 64)
        assert c.window == res.windows[i]
    assert res.prompts == ["step1", "step2", "step3"]


def test_single_image_rec_type_hides_the_previous_state(random_image):
    ext = RecordingExtractor()
    run_chain(random_image(), ChainConfig(rec_type="recursive", steps=2, process_size=64),
              backbone=InterpolationBackbone("bicubic"), extractor=ext)
    assert all(c.previous is None for c in ext.calls)


def test_user_prompt_is_appended_like_the_official_code(random_image):
    bb = PromptEcho()
    run_chain(random_image(), ChainConfig(rec_type="recursive", steps=2, process_size=64, user_prompt="sharp"),
              backbone=bb, extractor=make_prompt_extractor("fixed:fur"))
    assert [p for p, _ in bb.seen] == ["fur, sharp,", "fur, sharp,"]
    assert with_user_prompt("a", "") == "a"


def test_seed_is_honoured_and_runs_are_byte_identical(random_image):
    img = random_image()
    cfg = ChainConfig(rec_type="recursive", steps=2, process_size=64, seed=7)
    a = run_chain(img, cfg, backbone=PromptEcho())
    b = run_chain(img, cfg, backbone=PromptEcho())
    c = run_chain(img, ChainConfig(rec_type="recursive", steps=2, process_size=64, seed=8), backbone=PromptEcho())
    assert [s.tobytes() for s in a.states] == [s.tobytes() for s in b.states]
    assert a.states[2].tobytes() != c.states[2].tobytes()


def test_cache_hit_returns_identical_states_and_leaves_no_temp_files(tmp_path, random_image):
    cache = ChainCache(tmp_path / "cache")
    img = random_image()
    cfg = ChainConfig(rec_type="recursive", steps=2, process_size=64)
    first = run_chain(img, cfg, backbone=InterpolationBackbone("bicubic"), cache=cache)
    second = run_chain(img, cfg, backbone=InterpolationBackbone("bicubic"), cache=cache)
    assert not first.cached and second.cached and first.key == second.key
    assert [s.tobytes() for s in first.states] == [s.tobytes() for s in second.states]
    assert second.prompts == first.prompts and second.windows == first.windows
    assert not [p for p in (tmp_path / "cache").iterdir() if p.name.startswith(".tmp")]
    other = run_chain(img, ChainConfig(rec_type="recursive", steps=2, process_size=64, seed=1),
                      backbone=InterpolationBackbone("bicubic"), cache=cache)
    assert other.key != first.key


@pytest.mark.parametrize("kwargs,match", [
    ({"rec_type": "zigzag"}, "unknown rec_type"),
    ({"steps": 0}, "steps must be a whole number"),
    ({"steps": -2}, "steps must be a whole number"),
    ({"upscale": 1}, "upscale"),
    ({"align_method": "histogram"}, "align_method"),
    ({"rec_type": "onestep", "steps": 5, "process_size": 512}, "not a multiple of 1024"),
    ({"rec_type": "recursive", "process_size": 63}, "not a multiple of 4"),
    ({"steps": 30}, "at most --steps 20"),
    ({"seed": -1}, "seed must be"),
])
def test_bad_settings_are_clear_errors(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        ChainConfig(**kwargs).validate()


def test_backbone_required_and_unknown_names(random_image):
    from cozlib.backbones import make_backbone
    with pytest.raises(ConfigError, match="needs an SR backbone"):
        run_chain(random_image(), ChainConfig(rec_type="recursive", steps=1, process_size=64))
    with pytest.raises(ConfigError, match="unknown backbone 'esrgan9'.*realesrgan"):
        make_backbone("esrgan9")
    with pytest.raises(ConfigError, match="unknown prompt"):
        make_prompt_extractor("telepathy")
    with pytest.raises(ConfigError, match="needs text"):
        make_prompt_extractor("fixed")


def test_chain_refuses_non_rgb_images():
    with pytest.raises(BadImageError, match="grayscale"):
        run_chain(Image.new("L", (64, 64)), ChainConfig(rec_type="nearest", steps=1, process_size=64))


@pytest.mark.parametrize("align", ["adain", "wavelet"])
def test_color_fix_runs_in_the_chain(random_image, align):
    res = run_chain(random_image(), ChainConfig(rec_type="recursive", steps=1, process_size=64, align_method=align),
                    backbone=PromptEcho())
    assert res.states[1].size == (64, 64)


def test_full_image_blends_consistent_tiles_back_into_the_whole_upscale(random_image):
    """With a backbone whose tiles agree where they overlap (nearest upsampling), the Gaussian blend
    must give exactly the whole-image result; each tile gets its own prompt context."""
    from cozlib import geometry
    from cozlib.full_image import run_full_image
    rec = RecordingExtractor()
    cfg = ChainConfig(rec_type="recursive_multiscale", steps=2, process_size=32, upscale=4)
    res = run_full_image(random_image(), cfg, InterpolationBackbone("nearest"), rec, tile=32, overlap=8)
    assert [im.size for im in res.states] == [(32, 32), (128, 128), (512, 512)]
    x0 = res.states[0]
    import numpy as np
    assert np.array_equal(np.asarray(res.states[1]), np.asarray(geometry.resize(x0, 128, "nearest")))
    assert np.array_equal(np.asarray(res.states[2]), np.asarray(geometry.resize(x0, 512, "nearest")))
    starts = geometry.tile_starts(128, 32, 8, multiple=4)
    assert starts == [0, 24, 48, 72, 96] and len(res.tiles[0]) == 25
    assert all(c.previous is not None and c.zoomed.size == (32, 32) for c in rec.calls)
    assert rec.calls[0].window == (0.0, 0.0, 0.25, 0.25)
    with pytest.raises(ConfigError, match="limit"):
        run_full_image(random_image(), ChainConfig(steps=4, process_size=512), InterpolationBackbone("nearest"))


def test_official_full_image_prompts_each_latent_tile_from_x0_and_the_tile(random_image):
    """The official algorithm (inference_coz_full.py) on the demo OSEDiff: the state enlarged and
    encoded once, latent tiles flush with the edges, each tile decoded and shown to the extractor after
    x_0, 16 new tokens by default on the CLI; the blend is the size of the whole upscale."""
    from cozlib.backbones import make_backbone
    from cozlib.full_image import run_full_image_latent
    rec = RecordingExtractor()
    sr = make_backbone("osediff-demo", device="cpu")
    cfg = ChainConfig(rec_type="recursive_multiscale", steps=1, process_size=32, upscale=4)
    res = run_full_image_latent(random_image(), cfg, sr, rec)   # the model's own tile: 16, overlap 4
    assert [im.size for im in res.states] == [(32, 32), (128, 128)]
    assert [t["box"][:2] for t in res.tiles[0]] == [(x, y) for y in (0, 12, 16) for x in (0, 12, 16)]
    assert all(c.previous.size == (32, 32) and c.zoomed.size == (64, 64) for c in rec.calls)  # x_0, the tile
    with pytest.raises(ConfigError, match="needs an OSEDiff backbone"):
        run_full_image_latent(random_image(), cfg, InterpolationBackbone("nearest"), rec)
    with pytest.raises(ConfigError, match=r"position embedding reaches \(32 latent px\); use --latent-tiled-size 32"):
        run_full_image_latent(random_image(), cfg, sr, rec, tile=64)   # the official default, beyond the demo's reach


def test_zoom_cli_full_image_is_the_official_latent_blend_on_osediff(tmp_path):
    import json
    from cozlib.cli import main
    out = tmp_path / "o"
    assert main(["zoom", "world:3", "--backbone", "osediff-demo", "--prompt", "vlm", "--full-image", "--steps", "1",
                 "--process-size", "32", "--out", str(out)]) == 0       # the demo model's own latent tile: 16, overlap 4
    tiles = json.loads((out / "world-3" / "tiles.json").read_text())
    assert len(tiles[0]) == 9 and all(isinstance(t["prompt"], str) for t in tiles[0])
    assert main(["zoom", "world:3", "--backbone", "bicubic", "--full-image", "--full-image-blend", "latent",
                 "--steps", "1", "--process-size", "32", "--out", str(out)]) == 2
