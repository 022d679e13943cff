"""OSEDiff-SD3: the one-step formula, tiling, and the paper-scale loading path with files in the
official formats (tiny random SD3 saved in the real diffusers folder layout)."""
from __future__ import annotations

import pickle

import pytest
import torch
from PIL import Image

from cozlib.backbones.osediff import OSEDiffOptions, load_osediff, vae_encoder_lora_names
from cozlib.geometry import gaussian_weights, tile_starts
from cozlib.errors import ConfigError, MissingWeightsError

RANK = 4


@pytest.fixture(scope="module")
def sd3_folder(tmp_path_factory):
    """A tiny random SD3 in the diffusers layout, with a nonzero VAE shift (SD3's is 0.0609)."""
    from cozlib.training.tiny import build_pipeline, save_pipeline
    pipe = build_pipeline(seed=3)
    pipe.vae.register_to_config(shift_factor=0.3, scaling_factor=1.7)
    folder = tmp_path_factory.mktemp("sd3")
    save_pipeline(pipe, folder, half=False)
    return folder


@pytest.fixture(scope="module")
def official_files(sd3_folder, tmp_path_factory):
    """model_20001.pkl and vae_encoder_20001.pt written the way the official code writes them:
    a list [up, down, ...] over the AdaLayerNormZero linears in module order, and the LoRA-wrapped
    encoder's state dict (peft layout, adapter 'default_encoder')."""
    from diffusers import AutoencoderKL, SD3Transformer2DModel
    g = torch.Generator().manual_seed(0)
    tr = SD3Transformer2DModel.from_pretrained(sd3_folder / "transformer")
    tensors = []
    for mod in tr.modules():
        if type(mod).__name__ == "AdaLayerNormZero":
            for lin in (m for m in mod.modules() if isinstance(m, torch.nn.Linear)):
                tensors += [torch.randn(lin.out_features, RANK, generator=g) * 0.05,
                            torch.randn(RANK, lin.in_features, generator=g) * 0.05]
    d = tmp_path_factory.mktemp("lora")
    torch.save(tensors, d / "model_20001.pkl")
    vae = AutoencoderKL.from_pretrained(sd3_folder / "vae")
    targets = {n.removeprefix("encoder.") for n in vae_encoder_lora_names(vae) if n.startswith("encoder.")}
    sd = {}
    for key, value in vae.encoder.state_dict().items():
        mod, _, leaf = key.rpartition(".")
        if mod in targets:
            sd[f"{mod}.base_layer.{leaf}"] = value
        else:
            sd[key] = value
    for mod in targets:
        w = vae.encoder.get_submodule(mod).weight
        if w.dim() == 4:
            sd[f"{mod}.lora_A.default_encoder.weight"] = torch.randn(RANK, w.shape[1], *w.shape[2:], generator=g) * 0.05
            sd[f"{mod}.lora_B.default_encoder.weight"] = torch.randn(w.shape[0], RANK, 1, 1, generator=g) * 0.05
        else:
            sd[f"{mod}.lora_A.default_encoder.weight"] = torch.randn(RANK, w.shape[1], generator=g) * 0.05
            sd[f"{mod}.lora_B.default_encoder.weight"] = torch.randn(w.shape[0], RANK, generator=g) * 0.05
    torch.save({k: v.half() for k, v in sd.items()}, d / "vae_encoder_20001.pt")  # the release is fp16
    return d / "model_20001.pkl", d / "vae_encoder_20001.pt", tensors


def _load(folder, lora, venc, **kw):
    return load_osediff(folder, lora, venc, name="t", device="cpu",
                        options=OSEDiffOptions(max_sequence_length=32), **kw)


def test_official_lora_lands_on_the_adaln_linears(sd3_folder, official_files):
    lora, venc, tensors = official_files
    m = _load(sd3_folder, lora, venc)
    names = m.lora_targets
    assert names and all(".norm1" in n and n.endswith(".linear") for n in names)
    assert len(tensors) == 2 * len(names)
    name = names[1]
    layer = m.transformer.get_submodule(name)
    x = torch.randn(2, layer.base_layer.in_features)
    up, down = tensors[2], tensors[3]  # the second linear's pair
    expected = layer.base_layer(x) + x @ down.T @ up.T  # scale 1, as the official LoraInjectedLinear
    torch.testing.assert_close(layer(x), expected, atol=1e-5, rtol=1e-5)


def test_vae_encoder_file_is_loaded_whole(sd3_folder, official_files):
    lora, venc, _ = official_files
    m = _load(sd3_folder, lora, venc)
    sd = torch.load(venc, weights_only=True)
    own = m.vae.encoder.state_dict()
    assert set(own) == set(sd)
    key = next(k for k in sd if k.endswith("lora_B.default_encoder.weight"))
    torch.testing.assert_close(own[key], sd[key].float())


def test_one_step_encodes_without_shift_and_decodes_with_it(sd3_folder, official_files):
    lora, venc, _ = official_files
    m = _load(sd3_folder, lora, venc)
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    pe, pooled = m.encode_prompt(["fur, hairs"])
    with torch.no_grad():
        got = m.one_step(x, pe, pooled)
        cfg = m.vae.config
        z = m.vae.encode(x).latent_dist.mode() * cfg.scaling_factor            # no shift here
        v = m.transformer(hidden_states=z, timestep=torch.tensor([1000.0]), encoder_hidden_states=pe,
                          pooled_projections=pooled, return_dict=False)[0]
        want = m.vae.decode((z - v) / cfg.scaling_factor + cfg.shift_factor).sample
        z_shifted = (m.vae.encode(x).latent_dist.mode() - cfg.shift_factor) * cfg.scaling_factor
        v2 = m.transformer(hidden_states=z_shifted, timestep=torch.tensor([1000.0]), encoder_hidden_states=pe,
                           pooled_projections=pooled, return_dict=False)[0]
        other = m.vae.decode((z_shifted - v2) / cfg.scaling_factor + cfg.shift_factor).sample
    assert m.sigma == 1.0 and float(m.timestep) == 1000.0
    torch.testing.assert_close(got, want)
    assert (got - other).abs().max() > 1e-3  # the convention matters


def test_prompt_changes_the_output_and_t5_can_be_dropped(sd3_folder, official_files):
    lora, venc, _ = official_files
    m = _load(sd3_folder, lora, venc)
    x = torch.rand(1, 3, 64, 64)
    a, b = m(x, ["fur, hairs"]), m(x, ["bricks, mortar"])
    assert a.shape == (1, 3, 64, 64) and (a - b).abs().max() > 1e-4
    m2 = _load(sd3_folder, lora, venc, drop_t5=True)
    assert m2.pipe.text_encoder_3 is None
    pe, _ = m2.encode_prompt(["fur"])
    assert pe.shape[1] == m.encode_prompt(["fur"])[0].shape[1]  # zeros stand in for T5's tokens
    assert m2(x, ["fur"]).shape == (1, 3, 64, 64)


def test_bad_files_give_clear_errors(sd3_folder, official_files, tmp_path):
    lora, venc, tensors = official_files
    with pytest.raises(MissingWeightsError, match="not found"):
        _load(sd3_folder, tmp_path / "nope.pkl", venc)
    short = tmp_path / "short.pkl"
    torch.save(tensors[:-2], short)
    with pytest.raises(ConfigError, match="tensors"):
        _load(sd3_folder, short, venc)
    wrong_rank = tmp_path / "rank8.pkl"
    torch.save([torch.zeros(t.shape[0], 8) if i % 2 == 0 else torch.zeros(8, t.shape[1])
                for i, t in enumerate(tensors)], wrong_rank)
    with pytest.raises(ConfigError, match="shape"):
        _load(sd3_folder, wrong_rank, venc)
    code = tmp_path / "code.pkl"
    code.write_bytes(pickle.dumps(OSEDiffOptions()))  # a pickle that needs a class import: refused
    with pytest.raises(ConfigError, match="weights_only"):
        _load(sd3_folder, code, venc)
    partial = tmp_path / "venc.pt"
    sd = torch.load(venc, weights_only=True)
    sd.pop(next(iter(sd)))
    torch.save(sd, partial)
    with pytest.raises(ConfigError, match="missing"):
        _load(sd3_folder, lora, partial)
    with pytest.raises(MissingWeightsError, match="model_index.json"):
        from cozlib.backbones.osediff import resolve_sd3
        resolve_sd3(tmp_path)


def test_tiles_cover_and_blend_to_identity():
    assert tile_starts(40, 16, 4) == [0, 12, 24]
    assert tile_starts(16, 16, 4) == [0]
    w = gaussian_weights(16)
    assert w.shape == (16, 16) and float(w.min()) > 0
    with pytest.raises(ConfigError, match="overlap"):
        tile_starts(40, 16, 16)

    class Echo:  # a 'transformer' returning its input: blending must give the input back
        dtype = torch.float32

        def __call__(self, hidden_states, **kw):
            return (hidden_states,)

    from cozlib.backbones.osediff import OSEDiffSD3
    m = OSEDiffSD3.__new__(OSEDiffSD3)
    m.transformer, m.timestep, m.options = Echo(), torch.tensor(1000.0), OSEDiffOptions()
    z = torch.randn(2, 4, 40, 36)
    torch.testing.assert_close(m._v_tiled(z, torch.zeros(2, 3, 8), torch.zeros(2, 8), 16, 4), z)
    torch.testing.assert_close(m._v_tiled(z, torch.zeros(2, 3, 8), torch.zeros(2, 8), 16, 4, max_batch=2), z)


def test_vae_tiling_option_tiles_large_images_only(sd3_folder, official_files):
    lora, venc, _ = official_files
    whole = _load(sd3_folder, lora, venc)
    tiled = load_osediff(sd3_folder, lora, venc, name="t", device="cpu",
                         options=OSEDiffOptions(max_sequence_length=32, vae_tile=32))
    assert tiled.vae.use_tiling and (tiled.vae.tile_sample_min_size, tiled.vae.tile_latent_min_size) == (32, 8)
    assert "vae_tile=32" in tiled.identity() and "vae_tile" not in whole.identity()  # the chain cache tells them apart
    torch.manual_seed(0)
    small, big = torch.rand(1, 3, 32, 32) * 2 - 1, torch.rand(1, 3, 96, 96) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(tiled.encode(small), whole.encode(small))      # one tile: the same
        assert (tiled.encode(big) - whole.encode(big)).abs().max() > 1e-4       # GroupNorm sees each tile alone
        assert tiled.decode(tiled.encode(big)).shape == big.shape
    with pytest.raises(ConfigError, match="vae_tile"):
        load_osediff(sd3_folder, lora, venc, name="t", device="cpu", options=OSEDiffOptions(vae_tile=30))


def test_memory_profiles_set_precision_and_t5_and_the_identity_says_so():
    from cozlib.backbones import make_backbone
    from cozlib.backbones.osediff.load import placement
    from cozlib.memory import PROFILES
    assert placement(memory="official") == ("float32", "float16", False, False)
    assert placement(memory="8gb") == ("bfloat16", "bfloat16", True, True)
    assert placement("bfloat16") == ("bfloat16", "bfloat16", False, False)
    with pytest.raises(ConfigError, match="unknown memory profile 'huge'; choose one of: official"):
        placement(memory="huge")
    with pytest.raises(ConfigError, match="text_dtype must be"):
        placement(text_dtype="int8")
    assert set(PROFILES) == {"official", "fast", "24gb", "8gb"}
    lazy = make_backbone("osediff-demo", device="cpu", lazy=True, memory="8gb")
    model = make_backbone("osediff-demo", device="cpu", memory="8gb")
    assert lazy.identity() == model.identity() and ":bfloat16:t5=False:" in model.identity()
    assert model.pipe.text_encoder_3 is None and model.transformer.dtype == torch.bfloat16
    out = model.upsample([Image.new("RGB", (64, 64), (120, 90, 60))], ["strawberry"], 64)[0]
    assert out.size == (64, 64)
    official = make_backbone("osediff-demo", device="cpu", lazy=True, memory="official").identity()
    assert ":float32:text=float16:t5=True:" in official   # fp16 text encoders change the outputs: a new key


def test_official_lora_files_load_by_path_under_any_name(sd3_folder, official_files, tmp_path, monkeypatch):
    """The official CLI's --lora_path / --vae_path: the files themselves, renamed."""
    import shutil
    from cozlib.backbones import make_backbone
    lora, venc, _ = official_files
    a, b = tmp_path / "my_sr.pkl", tmp_path / "my_vae.pt"
    shutil.copy(lora, a)
    shutil.copy(venc, b)
    by_dir = make_backbone("osediff-sd3", device="cpu", weights=str(sd3_folder), lora_dir=str(lora.parent))
    by_path = make_backbone("osediff-sd3", device="cpu", weights=str(sd3_folder), lora_path=str(a), vae_path=str(b))
    sd = by_dir.transformer.state_dict()
    assert all(torch.equal(v, sd[k]) for k, v in by_path.transformer.state_dict().items())
    assert by_path.options.to_8bit == "truncate" and by_path.identity().endswith(":truncate")  # official states


def test_the_paper_memory_bench_runs_its_code_path_at_tiny_sizes(tmp_path):
    """bench/paper_memory.py (the GPU measurement of the memory profiles) on the CPU at tiny sizes:
    the folders it writes load through load_osediff / make_vlm_prompt and a chain runs per profile."""
    import importlib.util
    import json
    from pathlib import Path
    spec = importlib.util.spec_from_file_location("paper_memory", Path(__file__).parents[1] / "bench" / "paper_memory.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert bench.main(["--tiny", "--device", "cpu", "--out", str(tmp_path / "out"), "--work", str(tmp_path / "w"),
                       "--profiles", "official", "8gb", "--steps", "1"]) == 0
    rows = json.loads((tmp_path / "out" / "cpu-paper_memory-tiny.json").read_text())
    assert [r["profile"] for r in rows] == ["official", "8gb"] and all(r["chain_s"] > 0 for r in rows)


def test_states_can_be_truncated_to_8_bits_as_the_official_topilimage():
    from cozlib.imageio import tensor_to_pil
    t = torch.full((3, 2, 2), 0.999)
    assert tensor_to_pil(t).getpixel((0, 0)) == (255, 255, 255)
    assert tensor_to_pil(t, truncate=True).getpixel((0, 0)) == (254, 254, 254)


def test_with_only_sd3_and_the_coz_checkpoints_the_sr_notebooks_can_run(sd3_folder, official_files, monkeypatch):
    """Issue 26: with SD3 and the release's ckpt/ present (and no VLM), a params section that needs only
    those has nothing missing; one that also names Qwen2.5-VL says what to put where."""
    from cozlib.needs import missing
    monkeypatch.setenv("COZ_SD3", str(sd3_folder))
    monkeypatch.setenv("COZ_OSEDIFF_LORA", str(official_files[0].parent))
    monkeypatch.delenv("COZ_VLM", raising=False)
    assert missing({"backbone": "osediff-sd3", "l2_backbone": None, "device": "cpu"}) == []
    need = missing({"backbone": "osediff-sd3", "vlm": "/nowhere/Qwen2.5-VL-3B-Instruct", "device": "cpu"})
    assert len(need) == 1 and need[0].startswith("vlm:") and "COZ_VLM" in need[0]


def test_vae_tiling_and_text_device_options_reach_the_model(sd3_folder, official_files):
    lora, venc, _ = official_files
    m = _load(sd3_folder, lora, venc, vae_tile=64, text_device="cpu")
    assert m.options.vae_tile == 64 and ":vae_tile=64" in m.identity() and m.text_device.type == "cpu"


def test_sd3_folder_with_the_release_tokenizer_file_formats_loads_and_runs(sd3_folder, official_files, tmp_path):
    """stabilityai/stable-diffusion-3-medium-diffusers keeps CLIP-L's and CLIP-G's tokenizers as
    vocab.json + merges.txt (no tokenizer.json) and T5's as a sentencepiece spiece.model: tiny ones in
    those formats load through load_osediff, and the prompt reaches the model."""
    import json
    import shutil
    import sentencepiece as spm
    from transformers import CLIPTokenizer
    from cozlib.training.tiny import tokenizer_corpus
    folder = tmp_path / "sd3"
    shutil.copytree(sd3_folder, folder)
    for sub in ("tokenizer", "tokenizer_2"):
        tok = CLIPTokenizer.from_pretrained(folder / sub)
        tok.backend_tokenizer.model.save(str(folder / sub))               # vocab.json, merges.txt
        specials = {k: getattr(tok, k) for k in ("bos_token", "eos_token", "pad_token", "unk_token")}
        (folder / sub / "tokenizer.json").unlink()
        (folder / sub / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "CLIPTokenizer",
                                                                        "model_max_length": tok.model_max_length,
                                                                        **specials}))
        (folder / sub / "special_tokens_map.json").write_text(json.dumps(specials))
    t5 = folder / "tokenizer_3"
    shutil.rmtree(t5)
    t5.mkdir()
    (tmp_path / "corpus.txt").write_text("\n".join(tokenizer_corpus()))
    spm.SentencePieceTrainer.train(input=str(tmp_path / "corpus.txt"), model_prefix=str(t5 / "spiece"), vocab_size=120,
                                   model_type="unigram", pad_id=0, eos_id=1, unk_id=2, bos_id=-1, hard_vocab_limit=False,
                                   minloglevel=2)
    (t5 / "spiece.vocab").unlink()
    (t5 / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "T5Tokenizer", "extra_ids": 0,
                                                          "eos_token": "</s>", "pad_token": "<pad>", "unk_token": "<unk>"}))
    assert sorted(p.name for p in (folder / "tokenizer").iterdir()) == ["merges.txt", "special_tokens_map.json",
                                                                        "tokenizer_config.json", "vocab.json"]
    lora, venc, _ = official_files
    m = load_osediff(folder, lora, venc, name="t", device="cpu", options=OSEDiffOptions(max_sequence_length=32))
    pe, pooled = m.encode_prompt(["strawberry, seeds"])
    pe0, _ = m.encode_prompt([""])
    assert not torch.allclose(pe, pe0)          # the words reach CLIP-L, CLIP-G and T5
    assert m.upsample([Image.new("RGB", (64, 64), (150, 60, 50))], ["strawberry"], 64)[0].size == (64, 64)
