"""Training: the resumable loop, and a smoke-sized run of the whole demo SR recipe."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from cozlib.training.loop import Stage


def _linear_stage(tmp_path, steps: int):
    torch.manual_seed(0)
    net = torch.nn.Linear(3, 1)
    opt = torch.optim.Adam(net.parameters(), lr=0.1)
    stage = Stage("toy", steps, tmp_path, {"net": net, "opt": opt}, ckpt_every=2, log_every=1)

    def step(i: int) -> dict:
        g = torch.Generator().manual_seed(i)  # batches are a function of the step
        x = torch.randn(8, 3, generator=g)
        loss = ((net(x) - x.sum(1, keepdim=True)) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        return {"loss": loss.item()}
    return stage, step, net


def test_interrupted_stage_resumes_to_the_same_weights(tmp_path):
    whole, step, net_whole = _linear_stage(tmp_path / "a", 6)
    whole.run(step, log=lambda s: None)

    part, step, _ = _linear_stage(tmp_path / "b", 6)

    class Stop(Exception):
        pass

    def interrupted(i):
        if i == 4:
            raise Stop  # killed after the checkpoint at step 4
        return step(i)
    with pytest.raises(Stop):
        part.run(interrupted, log=lambda s: None)
    resumed, step, net_resumed = _linear_stage(tmp_path / "b", 6)
    lines = []
    resumed.run(step, log=lines.append)
    assert lines[0].startswith("[toy] resuming at step 4")
    torch.testing.assert_close(net_resumed.weight, net_whole.weight)
    assert [r["step"] for r in resumed.history] == list(range(1, 7))
    again, step, _ = _linear_stage(tmp_path / "b", 6)
    lines = []
    again.run(step, log=lines.append)
    assert "done" in lines[0]


def test_stage_does_not_resume_a_checkpoint_of_another_world(tmp_path, monkeypatch):
    first, step, _ = _linear_stage(tmp_path, 4)
    first.run(step, log=lambda s: None)
    monkeypatch.setattr(Stage, "identity", staticmethod(lambda: {"render_version": -1}))
    again, step, _ = _linear_stage(tmp_path, 4)
    lines = []
    again.run(step, log=lines.append)
    assert "starting over" in lines[0]
    assert not any("done" in ln for ln in lines) and [r["step"] for r in again.history] == [1, 2, 3, 4]


def test_smoke_training_writes_loadable_weights_with_a_manifest(tmp_path):
    from cozlib.backbones import make_backbone
    from cozlib.config import build
    from cozlib.training.sr import SRTrainConfig, train
    from cozlib.world import render_view
    out = train(build(SRTrainConfig, "sr", "smoke", dict(out=str(tmp_path / "w"), work=str(tmp_path / "work"), device="cpu")),
                log=lambda s: None)
    manifest = json.loads((out / "manifest.json").read_text())
    assert [s["name"] for s in manifest["stages"]] == ["vae", "base", "critic", "sr-perceptual", "sr-perceptual-chain",
                                                       "sr-l2", "sr-l2-chain"]
    assert manifest["code_commit"] and manifest["device"].startswith("cpu") and manifest["wall_s_all_stages"] > 0
    assert set(manifest["metrics_val"]) == {"perceptual", "l2"} and manifest["config"]["steps_sr"] == 3
    rows = json.loads((out / "history.json").read_text())
    assert set(rows["sr-perceptual"][-1]) == {"step", "l2", "critic", "texture", "grid"}   # the recipe's four terms
    assert set(rows["sr-l2"][-1]) == {"step", "l2"}
    for f in ("model_index.json", "sr_lora.pkl", "vae_encoder_lora.pt", "sr_lora_l2.pkl", "cozlib.json"):
        assert (out / f).is_file()
    for variant in ("perceptual", "l2"):
        bb = make_backbone("osediff-demo", device="cpu", weights=str(out), variant=variant)
        lr = render_view(1_010_000, (0.5, 0.5), 1, 32)
        (y,) = bb.upsample([lr], ["cat, fur"], 96)  # 96 px: more than one 64 px tile
        assert y.size == (96, 96)
    assert not list(tmp_path.glob("w/.tmp*")) and not list(tmp_path.glob(".tmp-*"))


def test_training_settings_are_checked_before_any_work(tmp_path):
    from cozlib.config import build
    from cozlib.errors import ConfigError
    from cozlib.training.sr import SRTrainConfig, train
    bad = [("threads", 0, "threads"), ("steps_sr", -1, "steps_sr"), ("lr_sr", 0.0, "lr_sr"), ("batch_sr", 0, "batch_sr"),
           ("chain_share", 0.0, "chain_share"), ("chain_share", 0.1, "chain_share"), ("chain_depth", 0, "chain_depth"),
           ("chain_pairs", 0, "chain_pairs"), ("prompt_context", 0, "prompt_context"), ("variants", ["gan"], "variants"),
           ("photo_share", 1.5, "photo_share"), ("size", 60, "size")]
    for key, value, match in bad:
        with pytest.raises(ConfigError, match=match):
            build(SRTrainConfig, "sr", "smoke", {key: value})
    with pytest.raises(ConfigError, match="prompt_context must be int"):
        build(SRTrainConfig, "sr", None, {"prompt_context": 4.0})
    cfg = SRTrainConfig(out=str(tmp_path / "w"), work=str(tmp_path / "work"), threads=0)  # built without the checks
    with pytest.raises(ConfigError, match="threads"):
        train(cfg)                                                # train checks it first
    assert not (tmp_path / "w").exists() and not (tmp_path / "work").exists()


def test_one_configuration_mechanism_presets_overrides_and_help():
    import dataclasses
    from cozlib.config import build, fields_help, help_text, parse_overrides, presets
    from cozlib.errors import ConfigError
    from cozlib.training.grpo import GRPOTrainConfig
    from cozlib.training.prompts import PromptTrainConfig
    from cozlib.training.sr import SRTrainConfig
    for what, cls in (("sr", SRTrainConfig), ("prompts", PromptTrainConfig), ("grpo", GRPOTrainConfig)):
        assert {"cpu", "smoke"} <= set(presets(what))
        assert build(cls, what, "cpu") == cls()                   # the cpu preset is the defaults: the committed recipe
        assert all(text for _, _, _, text in fields_help(cls))    # help on every field
        names = [f.name for f in dataclasses.fields(cls)]
        drift = [n for n in names for word in ("steps", "lr", "batch")
                 if word in n.split("_") and not n.startswith(word + "_") and n != "save_steps"]
        assert not drift, drift                                   # one naming convention: steps_*, lr_*, batch_*
        assert all(n in help_text(cls) for n in names)
    cfg = build(SRTrainConfig, "sr", "smoke", ["steps_sr=10", "variants=[l2]", "lr_sr=1e-4", "out=x"])
    assert (cfg.steps_sr, cfg.variants, cfg.lr_sr, cfg.out, cfg.pairs) == (10, ["l2"], 1e-4, "x", 48)
    assert build(SRTrainConfig, "sr", "cuda").batch_sr == 32
    assert parse_overrides(["a=1", "b=x y", "c=[1, 2]", "d="]) == {"a": 1, "b": "x y", "c": [1, 2], "d": ""}
    for items, match in ((["stpes_sr=1"], "unknown SRTrainConfig field.*steps_sr"), (["steps_sr"], "key=value"),
                         (["steps_sr=ten"], "steps_sr must be int"), (["texture_weight=-1"], "texture_weight")):
        with pytest.raises(ConfigError, match=match):
            build(SRTrainConfig, "sr", None, items)
    with pytest.raises(ConfigError, match="unknown preset 'gpu'.*cpu, cuda, smoke"):
        build(SRTrainConfig, "sr", "gpu")


def test_checkpoints_and_trainer_folders_of_another_world_are_not_resumed(tmp_path, monkeypatch):
    from cozlib.training.grpo import _resumable
    old, step, _ = _linear_stage(tmp_path / "s", 4)
    old.run(step, log=lambda s: None)
    ck = torch.load(old.path, weights_only=True)
    del ck["identity"]                                           # a file from before the mark: resumed
    torch.save(ck, old.path)
    again, step, _ = _linear_stage(tmp_path / "s", 4)
    lines = []
    again.run(step, log=lines.append)
    assert "done" in lines[0]
    trainer = tmp_path / "trainer"
    (trainer / "checkpoint-5").mkdir(parents=True)
    assert _resumable(trainer, log=lambda s: None)               # unmarked: resumed, and marked now
    assert (trainer / "identity.json").is_file() and _resumable(trainer, log=lambda s: None)
    monkeypatch.setattr(Stage, "identity", staticmethod(lambda: {"render_version": -1}))
    assert not _resumable(trainer, log=lambda s: None)           # marked with another world: removed
    assert not (trainer / "checkpoint-5").exists()


def test_critic_loss_compares_feature_statistics_not_positions():
    from cozlib.prompts.dape import make_tagger_net
    from cozlib.training.sr import critic_loss
    torch.manual_seed(0)
    net = make_tagger_net(5, width=8).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert critic_loss(net, x, x) == 0
        assert critic_loss(net, x.flip(-1).flip(-2), x) < 0.2 * critic_loss(net, 0.2 * x, x)  # a mirror keeps the statistics


def test_texture_loss_is_the_texture_distance_of_each_view():
    from cozlib.imageio import tensor_to_pil
    from cozlib.metrics.truth import texture_distance, texture_stats, texture_stats_batch
    from cozlib.training.sr import texture_loss
    torch.manual_seed(0)
    stripes = torch.sin(torch.arange(64.0) * 2.2).view(1, 1, 1, 64).expand(2, 3, 64, 64)
    truth = (0.5 * stripes + 0.3 * torch.randn(2, 3, 64, 64)).clamp(-1, 1)
    blurred = torch.nn.functional.interpolate(torch.nn.functional.avg_pool2d(truth, 4), scale_factor=4, mode="bilinear")
    batch = texture_stats_batch((truth + 1) / 2, patches=2)
    assert torch.allclose(batch[1], texture_stats((truth[1:2] + 1) / 2, patches=2))  # one code path
    with pytest.raises(ValueError, match="texture_stats_batch"):
        texture_stats((truth + 1) / 2)
    assert texture_loss(truth, truth) == 0
    assert texture_loss(truth.roll(5, -1), truth) < 0.2 * texture_loss(blurred, truth)  # phase-blind, a blur costs
    # on 8-bit images it is the texture distance with one patch per view, averaged over the batch
    pil = [[tensor_to_pil((x + 1) / 2) for x in batch] for batch in (blurred, truth)]
    q = [torch.stack([torch.from_numpy(np.asarray(im, dtype=np.float32) / 127.5 - 1).permute(2, 0, 1) for im in ims])
         for ims in pil]
    dist = np.mean([texture_distance(a, b, patches=1) for a, b in zip(*pil)])
    assert float(texture_loss(q[0], q[1])) == pytest.approx(dist, rel=1e-4)
    x = blurred.clone().requires_grad_(True)
    texture_loss(x, truth).backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_grid_loss_finds_a_pattern_repeated_on_the_latent_grid():
    from cozlib.metrics.truth import grid_peaks, grid_score
    from cozlib.training.sr import grid_loss
    torch.manual_seed(0)
    noise = torch.nn.functional.avg_pool2d(torch.randn(2, 3, 68, 68), 5, stride=1)   # a smooth spectrum, 64 px
    tile = torch.randn(1, 3, 8, 8) * 0.3
    gridded = noise + tile.repeat(1, 1, 8, 8)                                            # the same plus an 8 px pattern
    assert grid_peaks(noise).shape == (2, 3, 8 * 8 - 1)
    assert grid_loss(noise) < 0.1 < 1.0 < grid_loss(gridded)
    assert grid_loss(noise.roll(3, -1)) == pytest.approx(float(grid_loss(noise)), abs=1e-4)  # blind to shifts
    assert grid_loss(noise * 3) == pytest.approx(float(grid_loss(noise)), rel=1e-3)          # to energy too
    x = gridded.clone().requires_grad_(True)
    grid_loss(x).backward()
    assert torch.isfinite(x.grad).all()
    with pytest.raises(ValueError, match="multiples of the period"):
        grid_peaks(torch.zeros(1, 3, 60, 64))
    from cozlib.imageio import tensor_to_pil  # the image metric: the same peaks of a picture in [0, 1]
    as_image = lambda t: tensor_to_pil(((t[:1] + 1) / 2).clamp(0, 1))  # noqa: E731
    assert grid_score(as_image(noise)) < 0.1 < 1.0 < grid_score(as_image(gridded))


def test_word_vector_marks_vocabulary_words():
    from cozlib.training.sr import word_vector
    from cozlib.world.vocab import vocabulary
    vocab = vocabulary()
    v = word_vector(["cat, fur, hairs", "", "a photo of Bark bark", "zebra"])
    assert v.shape == (4, len(vocab))
    assert {vocab[i] for i in v[0].nonzero().flatten().tolist()} == {"cat", "fur", "hairs"}
    assert v[1].sum() == 0 and v[3].sum() == 0          # no words / no vocabulary words: the null vector
    assert v[2].sum() == 1 and v[2, vocab.index("bark")] == 1


def test_the_one_step_stage_draws_pairs_of_its_own(tmp_path):
    from cozlib.config import build
    from cozlib.training.sr import SRTrainConfig, cached_pairs, sr_pairs
    cfg = build(SRTrainConfig, "sr", "smoke", dict(work=str(tmp_path), pairs=6, photo_share=0.0))
    data = cached_pairs(cfg, "train", cfg.pairs, True, lambda s: None)
    own = sr_pairs(cfg, lambda s: None)
    assert own["hr"].shape == data["hr"].shape and not torch.equal(own["hr"], data["hr"])
    assert len(list(tmp_path.glob("pairs-train-*.safetensors"))) == 2                  # each draw cached under its seed


def test_chain_pairs_feed_the_model_its_own_zoomed_outputs_with_each_levels_words():
    from cozlib.geometry import zoom_input
    from cozlib.imageio import tensor_to_pil
    from cozlib.config import build
    from cozlib.training.sr import SRTrainConfig, chain_draw, chain_levels, chain_pairs, context_prompt, zoom_state
    calls = []

    def flat(x, prompts):  # a "model" whose output is one flat colour per call: the LR must come from it
        calls.append(list(prompts))
        return torch.full_like(x, len(calls) / 10)
    cfg = build(SRTrainConfig, "sr", "smoke", dict(size=32, chain_depth=3, prompt_dropout_sr=0.5))
    data = chain_pairs(flat, cfg, 12, 0, batch=4)
    assert data["hr"].shape == data["lr"].shape == (12, 3, 32, 32) and data["lr"].dtype == torch.uint8
    assert all(len(torch.unique(v)) == 1 for v in data["lr"])     # every input is a zoomed model output
    specs, offsets, depths, worded = chain_draw(cfg, 12, 0)
    assert set(depths) <= {1, 2, 3} and worded.any() and not worded.all()
    want = []                                                      # level t of every view deeper than t, in batches of 4
    for t in range(int(depths.max())):
        idx = [i for i in range(12) if depths[i] > t]
        for j in range(0, len(idx), 4):
            want.append([context_prompt(chain_levels(specs[i], int(depths[i]), 4)[t], 32, cfg.prompt_context, offsets[i])
                         if worded[i] else "" for i in idx[j:j + 4]])
    assert calls == want                                          # each level's own words, null chains all null
    assert data["prompt"] == [context_prompt(s, 32, cfg.prompt_context, o) for s, o in zip(specs, offsets)]
    assert [v.zoom for v in chain_levels(specs[0], 2, 4)] == [specs[0].zoom / 16, specs[0].zoom / 4, specs[0].zoom]
    again = chain_pairs(lambda x, p: torch.full_like(x, 0.5), cfg, 12, 0, batch=5)
    assert torch.equal(again["hr"], data["hr"]) and again["prompt"] == data["prompt"]  # the draw is the seed's
    out = torch.rand(2, 3, 32, 32)                                 # zoom_state is the chain's own step
    want_img = np.asarray(zoom_input(tensor_to_pil(out[1]), 4)[1])
    assert (zoom_state(out, 4)[1].permute(1, 2, 0).numpy() == want_img).all()


def test_chain_state_ancestors_stay_inside_the_base_view():
    """A real chain starts at the 1x base view, so no chain-state pair starts from a wider ancestor."""
    from cozlib.training.sr import SRTrainConfig, chain_draw
    cfg = SRTrainConfig()
    specs, _, depths, _ = chain_draw(cfg, 2000, 0)
    zooms = np.array([s.zoom for s in specs])
    assert (zooms / cfg.upscale ** depths >= 1 - 1e-9).all() and set(depths) == {1, 2, 3}


def test_phase_average_cancels_a_pattern_tied_to_the_patch_grid():
    """OSEDiffOptions.phase_average: a transformer whose velocity is one fixed 2x2 pattern tiled on its
    patch grid (whatever the input) gives a flat velocity once averaged over the grid's phases, while an
    input-driven velocity (here the input itself) comes back as it was."""
    from types import SimpleNamespace
    from cozlib.backbones.osediff import OSEDiffOptions, OSEDiffSD3
    pattern = torch.tensor([[1.0, -1.0], [-0.5, 0.5]])

    class Tiled(torch.nn.Module):
        config = SimpleNamespace(patch_size=2)
        dtype = torch.float32

        def __init__(self, follow: bool) -> None:
            super().__init__()
            self.follow = follow

        def forward(self, hidden_states, **kw):
            B, C, H, W = hidden_states.shape
            grid = pattern.repeat(H // 2, W // 2).expand(B, C, H, W)
            return (hidden_states if self.follow else grid,)

    model = OSEDiffSD3.__new__(OSEDiffSD3)
    model.options, model.timestep = OSEDiffOptions(phase_average=True), torch.tensor(1000.0)
    z = torch.randn(1, 4, 8, 8)
    pe, pooled = torch.zeros(1, 3, 5), torch.zeros(1, 5)
    model.transformer = Tiled(False)
    v = model._v(z, pe, pooled)
    assert v.shape == z.shape and torch.allclose(v, torch.zeros_like(v), atol=1e-6)
    model.options = OSEDiffOptions(phase_average=False)
    assert torch.equal(model._v(z, pe, pooled), pattern.repeat(4, 4).expand(1, 4, 8, 8))
    model.options, model.transformer = OSEDiffOptions(phase_average=True), Tiled(True)
    assert torch.allclose(model._v(z, pe, pooled), z, atol=1e-6)


def test_chain_stage_trains_on_a_cached_draw_of_chain_pairs(tmp_path):
    from cozlib.config import build
    from cozlib.training.sr import SRTrainConfig, make_pairs, text_encoders, train_sr
    from cozlib.training.tiny import build_pipeline
    cfg = build(SRTrainConfig, "sr", "smoke", dict(work=str(tmp_path), pairs=8, steps_chain=3, chain_pairs=6,
                                                  phase_average=False))  # one transformer pass a step: the stages' order is checked
    pipe = build_pipeline(cfg.seed)  # untrained VAE and base: the SR stage's losses are what is checked
    for enc in text_encoders(pipe):
        enc.eval().requires_grad_(False)
    data, pre = make_pairs(cfg, "train"), []
    _, _, stage = train_sr(pipe, data, cfg, "cpu", "perceptual", lambda s: None, pre_stages=pre)
    assert [s.name for s in pre] == ["critic", "sr-perceptual"] and stage.name == "sr-perceptual-chain"
    assert stage.history[-1]["step"] == 3 and set(stage.history[-1]) == {"step", "l2", "critic", "texture", "grid"}
    (cached,) = tmp_path.glob("chain-perceptual-6-*.safetensors")
    cached.unlink()
    log = []
    train_sr(pipe, data, cfg, "cpu", "perceptual", log.append)    # finished: loaded, its pairs not made again
    assert any("sr-perceptual-chain] done" in line for line in log) and not list(tmp_path.glob("chain-*.safetensors"))


def test_sr_loss_is_pooled_l2_plus_the_weighted_phase_blind_terms():
    from cozlib.config import build
    from cozlib.prompts.dape import make_tagger_net
    from cozlib.training.sr import SRTrainConfig, critic_loss, grid_loss, l2_loss, sr_loss, texture_loss
    cfg = SRTrainConfig()
    torch.manual_seed(0)
    out, hr = torch.rand(2, 3, 64, 64) * 2 - 1, torch.rand(2, 3, 64, 64) * 2 - 1
    net = make_tagger_net(5, width=8).eval().requires_grad_(False)
    loss, row = sr_loss(out, hr, cfg, True, net)
    want = l2_loss(out, hr, 4) + 1.0 * critic_loss(net, out, hr) + 0.1 * texture_loss(out, hr) + 0.005 * grid_loss(out)
    assert float(loss) == pytest.approx(float(want), rel=1e-6) and list(row) == ["l2", "critic", "texture", "grid"]
    loss, row = sr_loss(out, hr, cfg, False)                       # the l2 variant: every pixel, nothing else
    assert list(row) == ["l2"] and float(loss) == pytest.approx(float(torch.nn.functional.mse_loss(out, hr)))
    off = build(SRTrainConfig, "sr", None, dict(texture_weight=0, grid_weight=0))
    assert list(sr_loss(out, hr, off, True)[1]) == ["l2"]


def test_prompt_context_keeps_the_images_and_describes_the_wider_window():
    from cozlib.prompts.oracle import truth_prompt
    from cozlib.training.sr.data import _render_pair, _zoomworld_pairs
    from cozlib.world import view_window, window_words
    from cozlib.world.datasets import ViewSpec
    spec = ViewSpec(1010002, (0.5, 0.5), 16.0)
    hr, lr, words = _render_pair(spec, 64, 4)
    hr4, lr4, words4 = _render_pair(spec, 64, 4, context=4)  # the view at the centre of a 4x wider window
    assert (hr == hr4).all() and (lr == lr4).all()
    assert words == truth_prompt(window_words(spec.seed, view_window(spec.center, 16.0), 64))
    assert words4 == truth_prompt(window_words(spec.seed, view_window(spec.center, 4.0), 256))
    a, b = _zoomworld_pairs(6, 32, 4, "val", 0), _zoomworld_pairs(6, 32, 4, "val", 0, context=4)
    assert all((x == y).all() for x, y in zip(a[0], b[0]))   # the same views, drawn first
    assert a[2] != b[2]                                       # told about more of the world
    assert a[3] == a[2] == b[3]                               # each view's own words (the critic's labels) stay
    for off in ((1.0, 1.0), (-1.0, 1.0)):                      # the view at a corner of the wider window
        words = _render_pair(spec, 64, 4, context=4, offset=off)[2]
        room = 0.5 * 3 / 16.0
        c = (0.5 - off[0] * room, 0.5 - off[1] * room)
        assert words == truth_prompt(window_words(spec.seed, (c[0] - 0.125, c[1] - 0.125, c[0] + 0.125, c[1] + 0.125), 256))
        v = view_window(spec.center, 16.0)                     # which holds the view
        assert c[0] - 0.125 <= v[0] + 1e-12 and v[2] <= c[0] + 0.125 + 1e-12 and c[1] - 0.125 <= v[1] + 1e-12


def test_word_reading_averages_own_and_other_words_over_views_that_have_one():
    from cozlib.training.sr import word_reading
    from cozlib.world.vocab import levels, vocabulary
    vocab = vocabulary()
    micro, obj = levels()["micro"][0], levels()["object"][0]
    n_micro = len(levels()["micro"])
    data = {"hr": torch.full((3, 3, 8, 8), 255, dtype=torch.uint8), "lr": torch.zeros(3, 3, 8, 8, dtype=torch.uint8),
            "prompt": [micro] * 3, "words": [f"{obj}, {micro}", obj, micro]}  # the second has no micro word

    def reader(y):  # bright images: the micro word at 0.9, dark ones 0.1; every other micro word 0.2
        q = torch.zeros(len(y), len(vocab))
        q[:, [i for i, w in enumerate(vocab) if w in levels()["micro"]]] = 0.2
        q[:, vocab.index(micro)] = torch.where(y.mean((1, 2, 3)) > 0.5, 0.9, 0.1)
        return q

    seen = []
    model = lambda x, prompts: seen.append(list(prompts)) or x  # noqa: E731  (returns its input: the bicubic view)
    r = word_reading(model, data, reader)
    assert r["views"] == 2
    assert r["truth"]["own"] == pytest.approx(0.9) and r["bicubic"]["own"] == pytest.approx(0.1)
    assert r["true"]["own"] == r["null"]["own"] == r["wrong"]["own"] == pytest.approx(0.1)
    assert all(r[k]["other"] == pytest.approx(0.2 if n_micro > 1 else 0.0) for k in ("true", "null", "wrong", "truth"))
    assert seen[0] == [micro, micro] and seen[1] == ["", ""]  # true words, then the null prompt, for the 2 views kept


def test_paper_scale_steps_run_on_small_configs():
    """Notebook 04's paper-scale LoRA steps (run at full size on CUDA only), on small configs of the
    same classes on the CPU: each returns a timed row, and the steps train the LoRA weights alone."""
    from cozlib.training import throughput
    sd3 = dict(throughput.SD3_MEDIUM, num_layers=2, attention_head_dim=16, num_attention_heads=2,
               joint_attention_dim=32, caption_projection_dim=32, pooled_projection_dim=16, sample_size=16,
               pos_embed_max_size=16)
    row = throughput._sd3_lora_step("cpu", 1, sd3, latent=8, text_tokens=5)
    assert row["steps_per_s"] > 0 and row["batch"] == 1 and "64 px" in row["what"]
    qwen = dict(text_config=dict(vocab_size=300, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                 num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=256,
                                 rope_parameters={"rope_type": "default", "rope_theta": 10000.0,
                                                  "mrope_section": [2, 3, 3]}),
                vision_config=dict(depth=1, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=32,
                                   fullatt_block_indexes=[0], window_size=56),
                image_token_id=290, video_token_id=291, vision_start_token_id=292, vision_end_token_id=293)
    row = throughput._qwen_lora_step("cpu", 1, qwen, patches=4)
    assert row["steps_per_s"] > 0 and "56 px" in row["what"]
    assert throughput.paper_scale_steps("cpu") == []  # full size on a GPU only


def test_demo_tokenizers_are_kept_and_are_the_committed_weights_own(tmp_path):
    """``tokenizers``' trainer orders tied merges by hash, so two trainings give other token ids:
    ``make weights`` reads the kept tokenizers (data/tokenizers), which the committed demo SD3 uses."""
    from transformers import CLIPTokenizer, T5Tokenizer
    from cozlib.errors import ConfigError
    from cozlib.paths import resolve
    from cozlib.training.tiny import TINY, build_tokenizers
    clip, clip2, t5 = build_tokenizers(TINY["vocab_size"], TINY["clip_max_length"])
    weights = resolve("data/weights/osediff-demo")
    text = "a cat, fur, hairs, rust-coloured 16x"
    assert clip is clip2 and clip.model_max_length == TINY["clip_max_length"]
    assert clip(text).input_ids == CLIPTokenizer.from_pretrained(weights / "tokenizer")(text).input_ids
    assert t5(text).input_ids == T5Tokenizer.from_pretrained(weights / "tokenizer_3")(text).input_ids
    clip.save_pretrained(tmp_path / "saved")  # the exported weights folder gets the kept files as they are
    assert (tmp_path / "saved" / "tokenizer_config.json").read_text() == (weights / "tokenizer" / "tokenizer_config.json").read_text()
    trained = build_tokenizers(TINY["vocab_size"], TINY["clip_max_length"], folder=tmp_path)  # none kept there
    assert len(trained[0]) <= TINY["vocab_size"] and trained[0].model_max_length == TINY["clip_max_length"]
    with pytest.raises(ConfigError, match="delete"):
        build_tokenizers(100, 32)


def test_parallel_map_runs_at_one_thread_and_gives_the_thread_count_back():
    """The renders run at one torch thread; the training after them must not inherit it (it did:
    `make weights` trained at one thread after rendering its pairs in-process)."""
    from cozlib.runtime import parallel_map
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        assert parallel_map(lambda x: (x * 2, torch.get_num_threads()), [1, 2, 3]) == [(2, 1), (4, 1), (6, 1)]
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_the_one_step_lora_starts_from_its_own_seed():
    """sr_model's fresh LoRA does not depend on what drew from torch's RNG before (a --base retrain
    and `make weights` start the one-step stage alike), and it leaves that RNG where it was."""
    import torch
    from cozlib.config import build
    from cozlib.training.sr import SRTrainConfig
    from cozlib.training.sr.stages import sr_model
    from cozlib.training.tiny import build_pipeline
    cfg = build(SRTrainConfig, "sr", "smoke", {})
    pipe = build_pipeline(cfg.seed)
    starts = []
    for before in (1, 2):
        torch.manual_seed(before)
        model, _ = sr_model(pipe, cfg, "cpu")
        starts.append({n: p.detach().clone() for n, p in model.transformer.named_parameters() if "lora_A" in n})
        assert torch.equal(torch.rand(3), torch.rand(3, generator=torch.Generator().manual_seed(before)))
    assert starts[0] and all(torch.equal(starts[0][n], starts[1][n]) for n in starts[0])


def test_sr_seed_redraws_the_one_step_stage_alone(tmp_path):
    """``sr_seed`` draws the one-step stages again (another LoRA start) on the same word critic; unset,
    it is ``seed``."""
    from cozlib.config import build
    from cozlib.training.sr import SRTrainConfig, make_pairs, text_encoders, train_sr
    from cozlib.training.tiny import build_pipeline
    runs = {}
    for name, sr_seed in (("unset", None), ("same", 0), ("other", 1)):
        cfg = build(SRTrainConfig, "sr", "smoke", dict(work=str(tmp_path / name), pairs=8, steps_sr=1, steps_critic=1,
                                                      steps_chain=0, phase_average=False, sr_seed=sr_seed))
        pipe = build_pipeline(cfg.seed)
        for enc in text_encoders(pipe):
            enc.eval().requires_grad_(False)
        model, _, _ = train_sr(pipe, make_pairs(cfg, "train"), cfg, "cpu", "perceptual", lambda s: None)
        critic = torch.load(tmp_path / name / "ckpt" / "critic.pt", weights_only=True)["state"]["net"]
        runs[name] = ({n: p.detach() for n, p in model.transformer.named_parameters() if p.requires_grad}, critic)
    lora, critic = runs["unset"]
    assert all(torch.equal(lora[n], runs["same"][0][n]) for n in lora)
    assert not all(torch.equal(lora[n], runs["other"][0][n]) for n in lora)
    assert all(torch.equal(critic[k], runs["other"][1][k]) for k in critic)


def test_the_one_step_stages_train_on_the_base_model_as_saved(tmp_path):
    """``round_as_saved`` leaves the pipeline as ``save_pipeline`` + loading in float32 gives it back, so
    ``make weights`` and a ``--base`` retrain start the one-step stages from the same base model."""
    from diffusers import StableDiffusion3Pipeline
    from cozlib.training.tiny import build_pipeline, round_as_saved, save_pipeline
    pipe = build_pipeline(0)
    round_as_saved(pipe)
    save_pipeline(pipe, tmp_path / "p")
    back = StableDiffusion3Pipeline.from_pretrained(tmp_path / "p", dtype=torch.float32)
    for part in ("transformer", "vae", "text_encoder", "text_encoder_2", "text_encoder_3"):
        mine, theirs = getattr(pipe, part).state_dict(), getattr(back, part).state_dict()
        assert mine.keys() == theirs.keys() and all(torch.equal(mine[k], theirs[k]) for k in mine), part


def test_words_loss_asks_the_true_words_to_beat_wrong_ones_by_a_margin():
    """The hinge is zero when the wrong-words output is farther from the truth by the margin, and
    otherwise pulls the true-words output towards the truth and pushes the wrong one away."""
    from cozlib.training.sr.losses import texture_distances, words_loss
    g = torch.Generator().manual_seed(0)
    hr = torch.rand(2, 3, 32, 32, generator=g) * 2 - 1
    near, far = (hr + 0.02 * torch.randn(hr.shape, generator=g)).requires_grad_(), torch.zeros_like(hr).requires_grad_()
    assert float(texture_distances(far, hr).detach().min()) > float(texture_distances(near, hr).detach().max()) + 0.05
    assert float(words_loss(near, far, hr, 0.05).detach()) == 0.0
    loss = words_loss(far, near, hr, 0.05)
    loss.backward()
    assert float(loss) > 0.05 and far.grad.abs().sum() > 0 and near.grad.abs().sum() > 0


def test_smoke_one_step_stage_logs_the_words_term(tmp_path):
    """With ``words_weight`` > 0 the one-step steps run worded samples again with wrong words."""
    from cozlib.config import build
    from cozlib.training.sr import SRTrainConfig, make_pairs, text_encoders, train_sr
    from cozlib.training.tiny import build_pipeline
    cfg = build(SRTrainConfig, "sr", "smoke", dict(work=str(tmp_path), pairs=8, steps_sr=2, steps_critic=1, steps_chain=0,
                                                  phase_average=False, prompt_dropout_sr=0.0, words_weight=1.0))
    pipe = build_pipeline(cfg.seed)
    for enc in text_encoders(pipe):
        enc.eval().requires_grad_(False)
    rows = []
    train_sr(pipe, make_pairs(cfg, "train"), cfg, "cpu", "perceptual", rows.append)
    assert any(r.startswith("[sr-perceptual]") and " words " in r for r in rows), rows
