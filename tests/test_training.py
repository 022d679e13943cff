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
    from cozlib.training.sr import SRTrainConfig, train
    from cozlib.world import render_view
    out = train(SRTrainConfig.smoke(out=str(tmp_path / "w"), work=str(tmp_path / "work"), device="cpu",
                                    csd_weight=0.05, vsd_weight=0.05, style_weight=1.0,
                                    disc_pretrain=2, gan_weight=0.05),  # the off-by-default terms run too
                log=lambda s: None)
    manifest = json.loads((out / "manifest.json").read_text())
    assert {s["name"] for s in manifest["stages"]} == {"vae", "base", "sr-disc-pooled", "critic", "sr-perceptual",
                                                     "sr-perceptual-chain", "sr-l2", "sr-l2-chain"}
    assert manifest["code_commit"] and manifest["device"].startswith("cpu") and manifest["wall_s_all_stages"] > 0
    assert set(manifest["metrics_val"]) == {"perceptual", "l2"}
    rows = json.loads((out / "history.json").read_text())["sr-perceptual"]
    assert {"csd", "vsd", "fake", "style", "critic", "g", "d"} <= set(rows[-1])  # distillation and perceptual terms ran
    assert all((tmp_path / "work" / "ckpt" / f).is_file() for f in ("sr-disc-pooled.pt", "critic.pt"))
    for f in ("model_index.json", "sr_lora.pkl", "vae_encoder_lora.pt", "sr_lora_l2.pkl", "cozlib.json"):
        assert (out / f).is_file()
    for variant in ("perceptual", "l2"):
        bb = make_backbone("osediff-demo", device="cpu", weights=str(out), variant=variant)
        lr = render_view(1_010_000, (0.5, 0.5), 1, 32)
        (y,) = bb.upsample([lr], ["cat, fur"], 96)  # 96 px: more than one 64 px tile
        assert y.size == (96, 96)
    assert not list(tmp_path.glob("w/.tmp*")) and not list(tmp_path.glob(".tmp-*"))


def test_training_threads_must_be_a_whole_number(tmp_path):
    from cozlib.errors import ConfigError
    from cozlib.training.sr import SRTrainConfig, train
    with pytest.raises(ConfigError, match="threads"):
        train(SRTrainConfig.smoke(out=str(tmp_path / "w"), work=str(tmp_path / "work"), device="cpu", threads=0))
    assert not (tmp_path / "w").exists()


def test_csd_direction_is_normalised_and_vanishes_when_words_change_nothing():
    from cozlib.training.sr import PromptCache, csd_direction
    from cozlib.training.tiny import build_pipeline
    pipe = build_pipeline(0)
    enc = PromptCache(pipe, "cpu", pipe.tokenizer.model_max_length)
    pe, pooled = enc(["cat, fur, hairs", "log, bark, cracks"])
    pn, pooled_n = enc(["", ""])
    z0 = torch.randn(2, pipe.transformer.config.in_channels, 8, 8, requires_grad=True)
    g = csd_direction(pipe.transformer, z0, pe, pooled, pn, pooled_n, (0.5, 0.98), torch.Generator().manual_seed(0))
    assert g.shape == z0.shape and not g.requires_grad
    assert torch.allclose(g.abs().mean(dim=(1, 2, 3)), torch.ones(2), atol=1e-4)
    same = csd_direction(pipe.transformer, z0, pe, pooled, pe, pooled, (0.5, 0.98), torch.Generator().manual_seed(0))
    assert float(same.abs().max()) == 0.0


class _ToyFlow(torch.nn.Module):
    """A 'transformer' whose clean estimate is a constant chosen by the prompt: v = (z_t - x0) / sigma."""

    def __init__(self, x0_worded: float, x0_null: float):
        super().__init__()
        self.x0 = (x0_worded, x0_null)

    def forward(self, hidden_states, timestep, encoder_hidden_states, pooled_projections, return_dict=False):
        sigma = (timestep / 1000).view(-1, 1, 1, 1)
        worded = (encoder_hidden_states.abs().sum(dim=(1, 2)) > 0).view(-1, 1, 1, 1)
        x0 = torch.where(worded, torch.tensor(self.x0[0]), torch.tensor(self.x0[1]))
        return ((hidden_states - x0) / sigma,)


def test_distillation_directions_point_from_the_words_estimate_back():
    """Descending the loss mean(z0 * g) moves z0 along -g: towards the base model's clean estimate
    with the words (CSD: and away from the one without; VSD: away from the fake model's)."""
    from cozlib.training.sr import csd_direction, vsd_direction
    z0 = torch.zeros(2, 4, 3, 3)
    pe, pooled = torch.ones(2, 5, 8), torch.ones(2, 6)
    pn = torch.zeros(2, 5, 8)
    base = _ToyFlow(x0_worded=1.0, x0_null=-1.0)
    g = csd_direction(base, z0, pe, pooled, pn, pooled, (0.5, 0.98), torch.Generator().manual_seed(0))
    assert torch.allclose(-g, torch.ones_like(g), atol=1e-5)     # -g = x0(words) - x0(null) > 0, normalised
    fake = _ToyFlow(x0_worded=3.0, x0_null=3.0)                  # the outputs so far: too bright
    g = vsd_direction(base, fake, z0, pe, pooled, (0.5, 0.98), torch.Generator().manual_seed(0))
    assert torch.allclose(-g, -torch.ones_like(g), atol=1e-5)    # -g = x0(base) - x0(fake) < 0


def test_checkpoints_and_trainer_folders_of_another_world_are_not_resumed(tmp_path, monkeypatch):
    from cozlib.training.grpo import _resumable
    old, step, _ = _linear_stage(tmp_path / "s", 4)
    old.run(step, log=lambda s: None)
    ck = torch.load(old.path, weights_only=False)
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


def test_vsd_direction_vanishes_while_the_fake_score_equals_the_base_and_the_fake_learns():
    import copy
    from cozlib.backbones.osediff import add_transformer_lora, adaln_linear_names
    from cozlib.training.sr import PromptCache, fake_score_loss, vsd_direction
    from cozlib.training.tiny import build_pipeline
    pipe = build_pipeline(0)
    base = pipe.transformer.eval().requires_grad_(False)
    fake = copy.deepcopy(base)
    add_transformer_lora(fake, 4, adaln_linear_names(fake), adapter="fake_score")  # B = 0: fake == base
    pe, pooled = PromptCache(pipe, "cpu", pipe.tokenizer.model_max_length)(["cat, fur, hairs", ""])
    z0 = torch.randn(2, base.config.in_channels, 8, 8)
    g = vsd_direction(base, fake, z0, pe, pooled, (0.5, 0.98), torch.Generator().manual_seed(0))
    assert g.shape == z0.shape and float(g.abs().max()) == 0.0
    opt = torch.optim.SGD([p for p in fake.parameters() if p.requires_grad], lr=0.5)
    for k in range(3):
        loss = fake_score_loss(fake, z0, pe, pooled, torch.Generator().manual_seed(k))
        opt.zero_grad()
        loss.backward()
        opt.step()
    g = vsd_direction(base, fake, z0, pe, pooled, (0.5, 0.98), torch.Generator().manual_seed(0))
    assert torch.allclose(g.abs().mean(dim=(1, 2, 3)), torch.ones(2), atol=1e-4)


def test_style_loss_is_phase_blind_and_punishes_a_blur():
    from diffusers import AutoencoderKL
    from cozlib.training.sr import high_band, style_loss
    torch.manual_seed(0)
    vae = AutoencoderKL(block_out_channels=(8, 16), down_block_types=("DownEncoderBlock2D",) * 2,
                        up_block_types=("UpDecoderBlock2D",) * 2, latent_channels=4, norm_num_groups=4).eval()
    stripes = torch.sin(torch.arange(64.0) * 2.2).view(1, 1, 1, 64).expand(2, 3, 64, 64).contiguous()
    texture = 0.5 * stripes + 0.5 * torch.randn(2, 3, 64, 64)
    shifted = texture.roll(3, dims=-1)                      # the same texture, another phase
    blurred = texture - high_band(texture)                   # only what the 4x-pooled input shows
    with torch.no_grad():
        assert style_loss(vae, texture, texture) == 0
        same, blur = style_loss(vae, shifted, texture), style_loss(vae, blurred, texture)
    assert blur > 20 * same, (blur, same)
    assert torch.nn.functional.mse_loss(shifted, texture) > torch.nn.functional.mse_loss(blurred, texture)  # L2 prefers the blur


def test_critic_loss_compares_feature_statistics_not_positions():
    from cozlib.prompts.dape import make_tagger_net
    from cozlib.training.sr import critic_loss
    torch.manual_seed(0)
    net = make_tagger_net(5, width=8).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert critic_loss(net, x, x) == 0
        assert critic_loss(net, x.flip(-1).flip(-2), x) < 0.2 * critic_loss(net, 0.2 * x, x)  # a mirror keeps the statistics


def test_degrade_lr_blurs_and_noises_each_sample_reproducibly():
    from cozlib.training.sr import degrade_lr, gaussian_kernels
    assert torch.allclose(gaussian_kernels([0.0], 2)[0], torch.tensor([0.0, 0.0, 1.0, 0.0, 0.0]))  # sigma 0: identity
    torch.manual_seed(0)
    x = torch.rand(6, 3, 32, 32) * 2 - 1
    assert degrade_lr(x, 0.0, 0.0, 0, 5) is x
    y = degrade_lr(x, 2.0, 0.0, 0, 5)
    assert torch.equal(y, degrade_lr(x, 2.0, 0.0, 0, 5)) and not torch.equal(y, degrade_lr(x, 2.0, 0.0, 0, 6))
    assert torch.allclose(y.mean((1, 2, 3)), x.mean((1, 2, 3)), atol=0.02)      # a blur keeps the mean
    rough = lambda t: (t[..., 1:] - t[..., :-1]).abs().mean((1, 2, 3))          # noqa: E731
    assert (rough(y) < rough(x)).all()                                          # and removes detail
    spread = rough(y) / rough(x)
    assert spread.max() - spread.min() > 0.1                                    # each sample its own sigma
    z = degrade_lr(x, 0.0, 0.05, 0, 5)
    assert 0 < (z - x).std() < 0.1 and z.abs().max() <= 1


def test_critic_word_loss_reads_the_own_words_of_worded_samples_only():
    from cozlib.prompts.dape import make_tagger_net
    from cozlib.training.sr import batch_of, batch_words, critic_word_loss
    from cozlib.world.vocab import vocabulary
    vocab = vocabulary()
    data = {"hr": torch.zeros(5, 3, 8, 8, dtype=torch.uint8), "lr": torch.zeros(5, 3, 8, 8, dtype=torch.uint8),
            "prompt": [f"a wide view {i}" for i in range(5)], "words": [vocab[i] for i in range(5)]}
    _, _, prompts = batch_of(data, 7, 6, 3, "cpu")
    assert [int(p.split()[-1]) for p in prompts] == [vocab.index(w) for w in batch_words(data, 7, 6, 3)]  # the same samples
    torch.manual_seed(0)
    net = make_tagger_net(len(vocab), width=8).eval().requires_grad_(False)
    x = torch.randn(3, 3, 32, 32, requires_grad=True)
    none = torch.zeros(3, dtype=torch.bool)
    assert critic_word_loss(net, x, ["cat", "bark", "fur"], none) == 0
    loss = critic_word_loss(net, x, ["cat", "bark", "fur"], torch.tensor([True, False, True]))
    loss.backward()
    assert loss > 0 and x.grad[1].abs().sum() == 0 and x.grad[0].abs().sum() > 0   # the null sample is left alone


def test_texture_loss_is_the_texture_distance_of_each_view():
    from cozlib.imageio import tensor_to_pil
    from cozlib.metrics.truth import texture_distance, texture_stats, texture_stats_batch
    from cozlib.training.sr import high_band, texture_loss
    torch.manual_seed(0)
    stripes = torch.sin(torch.arange(64.0) * 2.2).view(1, 1, 1, 64).expand(2, 3, 64, 64)
    truth = (0.5 * stripes + 0.3 * torch.randn(2, 3, 64, 64)).clamp(-1, 1)
    blurred = truth - high_band(truth)
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
    # fine_weight scales the finest band's four terms: a blur, which loses that band most, costs more
    d = (texture_stats_batch((blurred + 1) / 2, patches=1) - texture_stats_batch((truth + 1) / 2, patches=1)).abs()[:, 0]
    w = torch.ones(d.shape[-1])
    w[:4] = 3.0
    assert float(texture_loss(blurred, truth, fine_weight=3.0)) == pytest.approx(float((d * w).mean()), rel=1e-5)
    assert texture_loss(blurred, truth, fine_weight=3.0) > texture_loss(blurred, truth)


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


def test_word_vector_marks_vocabulary_words_and_conditions_the_discriminator():
    from cozlib.training.sr import make_discriminator, word_vector
    from cozlib.world.vocab import vocabulary
    vocab = vocabulary()
    v = word_vector(["cat, fur, hairs", "", "a photo of Bark bark", "zebra"])
    assert v.shape == (4, len(vocab))
    assert {vocab[i] for i in v[0].nonzero().flatten().tolist()} == {"cat", "fur", "hairs"}
    assert v[1].sum() == 0 and v[3].sum() == 0          # no words / no vocabulary words: the null vector
    assert v[2].sum() == 1 and v[2, vocab.index("bark")] == 1
    d = make_discriminator(len(vocab), width=8)
    out = d(torch.zeros(4, 3, 16, 16), v)
    assert out.shape == (4, 1, 4, 4)


def test_hue_rotation_keeps_gray_and_channel_mean_and_pairs_stay_aligned():
    import numpy as np
    from cozlib.training.sr import batch_of, hue_rotation
    m = hue_rotation(np.array([2 * np.pi / 3, 1.3]))
    assert np.allclose(m[0], [[0, 0, 1], [1, 0, 0], [0, 1, 0]], atol=1e-12)  # the cyclic channel permutation
    assert np.allclose(m[1] @ np.ones(3), np.ones(3))                       # gray stays gray
    g = torch.Generator().manual_seed(0)
    hr = torch.randint(0, 256, (6, 3, 8, 8), dtype=torch.uint8, generator=g)
    data = {"hr": hr, "lr": hr.clone(), "prompt": [f"w{i}" for i in range(6)]}
    plain = batch_of(data, 3, 4, 0, "cpu")
    same = batch_of(data, 3, 4, 0, "cpu", colour_aug=0.0)
    assert torch.equal(plain[0], same[0]) and plain[2] == same[2]
    hr_a, lr_a, prompts = batch_of(data, 3, 4, 0, "cpu", colour_aug=1.0)
    assert prompts == plain[2]                                                # words untouched
    assert torch.equal(hr_a, lr_a)                                            # one rotation per pair
    assert not torch.allclose(hr_a, plain[0])
    inside = (plain[0] > -0.6) & (plain[0] < 0.6)                             # away from clamping
    keep = inside.all(1)
    assert torch.allclose(hr_a.mean(1)[keep], plain[0].mean(1)[keep], atol=1e-5)  # channel mean kept


def test_sr_own_pairs_draws_other_views_for_the_one_step_stage(tmp_path):
    from cozlib.training.sr import SRTrainConfig, cached_pairs, sr_pairs
    cfg = SRTrainConfig.smoke(work=str(tmp_path), pairs=6, photo_share=0.0, sr_own_pairs=False)
    data = cached_pairs(cfg, "train", cfg.pairs, True, lambda s: None)
    assert sr_pairs(cfg, data) is data                                        # off: the same pairs
    own = sr_pairs(SRTrainConfig.smoke(work=str(tmp_path), pairs=6, photo_share=0.0), data, lambda s: None)  # the default
    assert own["hr"].shape == data["hr"].shape and not torch.equal(own["hr"], data["hr"])
    assert len(list(tmp_path.glob("pairs-train-*.pt"))) == 2                  # each draw cached under its seed


def test_chain_pairs_feed_the_model_its_own_zoomed_outputs_with_each_levels_words():
    from cozlib.geometry import zoom_input
    from cozlib.imageio import tensor_to_pil
    from cozlib.training.sr import SRTrainConfig, _context_prompt, chain_draw, chain_levels, chain_pairs, zoom_state
    calls = []

    def flat(x, prompts):  # a "model" whose output is one flat colour per call: the LR must come from it
        calls.append(list(prompts))
        return torch.full_like(x, len(calls) / 10)
    cfg = SRTrainConfig.smoke(size=32, sr_chain_depth=3, prompt_dropout_sr=0.5)
    data = chain_pairs(flat, cfg, 12, 0, batch=4)
    assert data["hr"].shape == data["lr"].shape == (12, 3, 32, 32) and data["lr"].dtype == torch.uint8
    assert all(len(torch.unique(v)) == 1 for v in data["lr"])     # every input is a zoomed model output
    specs, offsets, depths, worded = chain_draw(cfg, 12, 0)
    assert set(depths) <= {1, 2, 3} and worded.any() and not worded.all()
    want = []                                                      # level t of every view deeper than t, in batches of 4
    for t in range(int(depths.max())):
        idx = [i for i in range(12) if depths[i] > t]
        for j in range(0, len(idx), 4):
            want.append([_context_prompt(chain_levels(specs[i], int(depths[i]), 4)[t], 32, cfg.prompt_context, offsets[i])
                         if worded[i] else "" for i in idx[j:j + 4]])
    assert calls == want                                          # each level's own words, null chains all null
    assert data["prompt"] == [_context_prompt(s, 32, cfg.prompt_context, o) for s, o in zip(specs, offsets)]
    assert [v.zoom for v in chain_levels(specs[0], 2, 4)] == [specs[0].zoom / 16, specs[0].zoom / 4, specs[0].zoom]
    again = chain_pairs(lambda x, p: torch.full_like(x, 0.5), cfg, 12, 0, batch=5)
    assert torch.equal(again["hr"], data["hr"]) and again["prompt"] == data["prompt"]  # the draw is the seed's
    out = torch.rand(2, 3, 32, 32)                                 # zoom_state is the chain's own step
    want_img = np.asarray(zoom_input(tensor_to_pil(out[1]), 4)[1])
    assert (zoom_state(out, 4)[1].permute(1, 2, 0).numpy() == want_img).all()


def test_chain_stage_trains_on_a_cached_draw_of_chain_pairs(tmp_path):
    from cozlib.errors import ConfigError
    from cozlib.training.sr import SRTrainConfig, make_pairs, text_encoders, train_sr
    from cozlib.training.tiny import build_pipeline
    cfg = SRTrainConfig.smoke(work=str(tmp_path), sr_chain_steps=3, sr_chain_pairs=6, critic_word_weight=0.1)
    pipe = build_pipeline(cfg.seed)
    for enc in text_encoders(pipe):
        enc.eval().requires_grad_(False)
    data, pre = make_pairs(cfg, "train"), []
    _, _, stage = train_sr(pipe, data, cfg, "cpu", "perceptual", lambda s: None, pre_stages=pre)
    assert stage.name == "sr-perceptual-chain" and stage.history[-1]["step"] == 3 and "word" in stage.history[-1]
    assert pre[-1].name == "sr-perceptual"                        # the first part joins the stages before
    (cached,) = tmp_path.glob("chain-perceptual-6-*.pt")
    cached.unlink()
    log = []
    train_sr(pipe, data, cfg, "cpu", "perceptual", log.append)    # finished: loaded, its pairs not made again
    assert any("sr-perceptual-chain] done" in line for line in log) and not list(tmp_path.glob("chain-*.pt"))
    for bad in (dict(sr_chain_share=0.0), dict(sr_chain_share=0.1), dict(sr_chain_depth=0), dict(sr_chain_pairs=0)):
        with pytest.raises(ConfigError, match="sr_chain"):        # before the first part trains
            train_sr(pipe, data, SRTrainConfig.smoke(work=str(tmp_path / "x"), sr_chain_steps=2, **bad), "cpu", "l2", lambda s: None)
    assert not (tmp_path / "x" / "ckpt").exists()


def test_default_sr_recipe_trains_a_critic_and_no_discriminator(tmp_path):
    from cozlib.errors import ConfigError
    from cozlib.training.sr import SRTrainConfig, make_pairs, text_encoders, train_sr
    from cozlib.training.tiny import build_pipeline
    cfg = SRTrainConfig.smoke(work=str(tmp_path / "work"), device="cpu", pairs=8)
    assert cfg.critic_weight > 0 and cfg.gan_weight == 0 and cfg.prompt_context == 4
    pipe = build_pipeline(cfg.seed)  # untrained VAE and base: the SR stage's losses are what is checked
    for enc in text_encoders(pipe):
        enc.eval().requires_grad_(False)
    data, pre = make_pairs(cfg, "train"), []
    _, _, stage = train_sr(pipe, data, cfg, "cpu", "perceptual", lambda s: None, pre_stages=pre)
    assert [s.name for s in pre] == ["critic", "sr-perceptual"] and stage.name == "sr-perceptual-chain"  # chain part on by default
    assert "critic" in stage.history[-1] and not {"g", "d"} & set(stage.history[-1])  # no GAN terms
    with pytest.raises(ConfigError, match="gan_weight"):
        train_sr(pipe, data, SRTrainConfig.smoke(work=str(tmp_path / "w2"), disc_pretrain=2), "cpu", "perceptual")


def test_sr_options_texture_grid_and_patch_lora(tmp_path):
    from cozlib.training.sr import SRTrainConfig, make_pairs, sr_model, text_encoders, train_sr
    from cozlib.training.tiny import build_pipeline
    cfg = SRTrainConfig.smoke(work=str(tmp_path / "work"), device="cpu", pairs=8, steps_sr=2, steps_critic=2,
                              texture_weight=0.03, grid_weight=0.005, critic_word_weight=0.1,
                              degrade_blur=2.0, degrade_noise=0.02)
    pipe = build_pipeline(cfg.seed)
    for enc in text_encoders(pipe):
        enc.eval().requires_grad_(False)
    _, _, stage = train_sr(pipe, make_pairs(cfg, "train"), cfg, "cpu", "perceptual", lambda s: None)
    assert {"texture", "grid", "critic", "word", "l2"} <= set(stage.history[-1])  # each term reaches the loss
    _, names = sr_model(pipe, cfg, "cpu")
    _, fewer = sr_model(pipe, SRTrainConfig.smoke(lora_patch_layers=False), "cpu")
    assert {"proj_out", "pos_embed.proj"} <= set(names) and set(names) - set(fewer) == {"proj_out", "pos_embed.proj"}


def test_prompt_context_keeps_the_images_and_describes_the_wider_window():
    from cozlib.prompts.oracle import truth_prompt
    from cozlib.training.sr import _render_pair, _zoomworld_pairs
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


def test_prompt_context_must_be_a_whole_number():
    from cozlib.errors import ConfigError
    from cozlib.training.sr import SRTrainConfig, make_pairs
    for bad in (0, 4.0):
        with pytest.raises(ConfigError, match="prompt_context"):
            make_pairs(SRTrainConfig(prompt_context=bad, work="unused"), "val", 2)


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
    import torch
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
