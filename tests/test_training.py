"""Training: the resumable loop, and a smoke-sized run of the whole demo SR recipe."""
from __future__ import annotations

import json

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


def test_smoke_training_writes_loadable_weights_with_a_manifest(tmp_path):
    from cozlib.backbones import make_backbone
    from cozlib.training.sr import SRTrainConfig, train
    from cozlib.world import render_view
    out = train(SRTrainConfig.smoke(out=str(tmp_path / "w"), work=str(tmp_path / "work"), device="cpu"),
                log=lambda s: None)
    manifest = json.loads((out / "manifest.json").read_text())
    assert {s["name"] for s in manifest["stages"]} == {"vae", "base", "sr-gan", "sr-l2"}
    assert manifest["code_commit"] and manifest["device"].startswith("cpu") and manifest["wall_s_all_stages"] > 0
    assert set(manifest["metrics_val"]) == {"gan", "l2"}
    for f in ("model_index.json", "sr_lora.pkl", "vae_encoder_lora.pt", "sr_lora_l2.pkl", "cozlib.json"):
        assert (out / f).is_file()
    for variant in ("gan", "l2"):
        bb = make_backbone("osediff-demo", device="cpu", weights=str(out), variant=variant)
        lr = render_view(1_010_000, (0.5, 0.5), 1, 32)
        (y,) = bb.upsample([lr], ["cat, fur"], 96)  # 96 px: more than one 64 px tile
        assert y.size == (96, 96)
    assert not list(tmp_path.glob("w/.tmp*")) and not list(tmp_path.glob(".tmp-*"))
