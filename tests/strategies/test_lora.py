"""`lora:RANK`: adapters start at the pretrained model, train alone, merge into the native file (the
merged model predicts what the adapter model does), resume exactly after a crash, and a backbone
without plain Linear layers (SevenNet) is refused naming the backbone and the strategy."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from ase.build import bulk

from optbench.backbones import load_backbone, load_calculator, register_backbone
from optbench.cli import main
from optbench.data.io import Frame, read_frames
from optbench.errors import InputError
from optbench.loss import FeaturizedSet, LossWeights, compute_loss
from optbench.run import TrainingLoop, finetune
from optbench.strategies.lora import apply_lora, has_lora, merge_lora
from tests.curvature import toy

STRATEGY = "lora:4+replay:0.25"


def _predict(backbone, frames):
    fset = FeaturizedSet(frames, backbone)
    pred = backbone.predict(fset.graphs, stress=True, create_graph=False)
    return {k: getattr(pred, k).detach().double() for k in ("energy", "forces", "stress")}


@pytest.fixture(scope="module")
def probe_frames(ethanol_dir):
    """An ethanol frame and a rattled Si cell (periodic: stress is compared too)."""
    si = bulk("Si", "diamond", a=5.43)
    si.rattle(0.05, seed=2)
    return [read_frames(ethanol_dir / "train.xyz", index=":1")[0], Frame(si)]


def _config(ethanol_small, out: Path, **extra) -> dict:
    return dict(model="chgnet", train=ethanol_small["train"], tests={"id": ethanol_small["id"]}, optimizer="adamw",
                lr=3e-3, batch_size=4, max_steps=5, seed=0, eval_every=2, checkpoint_every=2, ema_decay=0.5,
                strategy=STRATEGY, out=out, **extra)


@pytest.fixture(scope="module")
def straight(ethanol_small, tmp_path_factory):
    """An uninterrupted CHGNet run with LoRA (and replay), EMA on."""
    out = tmp_path_factory.mktemp("lora") / "straight"
    return out, finetune(_config(ethanol_small, out))


def test_adapters_start_at_the_pretrained_model_and_alone_are_trained(probe_frames):
    bb = load_backbone("chgnet")
    before = _predict(bb, probe_frames)
    base = {k: v.clone() for k, v in bb.model.state_dict().items()}
    record = apply_lora(bb, 4, seed=0)
    assert record["adapted_layers"] == 50 and 0.95 < record["covered_fraction"] < 1
    assert record["adapter_parameters"] == sum(p.numel() for p in bb.parameters())
    names = [n for n, _ in bb.named_parameters()]
    assert names and all(n.endswith(("lora_A", "lora_B")) for n in names)
    assert not any(n.startswith("composition_model") for n in names)  # the E0 table is left to the E0 setting
    after = _predict(bb, probe_frames)
    assert all(torch.equal(before[k], after[k]) for k in before), "B = 0: the adapted model starts unchanged"

    opt = torch.optim.Adam(bb.parameters(), 1e-2)
    batch = FeaturizedSet(probe_frames[:1] * 2, bb).batch([0, 1])
    batch.energy[:] = batch.energy - 1.0  # a target away from the model, so that the weights move
    for _ in range(2):
        opt.zero_grad()
        compute_loss(bb, batch, LossWeights())[0].backward(inputs=bb.parameters())
        opt.step()
    assert not torch.equal(_predict(bb, probe_frames)["energy"], before["energy"])
    merge_lora(bb)
    assert not has_lora(bb) and all(p.requires_grad for p in bb.model.parameters())
    for name, w in bb.model.state_dict().items():
        delta = (w - base[name]).double()
        if delta.dim() == 2 and not name.startswith("composition_model"):
            assert torch.linalg.matrix_rank(delta, rtol=1e-4) <= 4, name  # above float32 rounding
        else:
            assert torch.equal(w, base[name]), f"{name} moved outside the adapters"


def test_merged_native_model_predicts_like_the_adapter_model(straight, probe_frames):
    out, result = straight
    assert result["status"] == "completed" and result["steps"] == 5
    assert result["lora"]["rank"] == 4 and result["lora"]["adapted_layers"] == 50
    adapter = load_backbone("chgnet")
    apply_lora(adapter, 4, seed=123)  # another init: the checkpoint's values replace it
    ckpt = torch.load(out / "checkpoints" / "final.pt", map_location="cpu", weights_only=False)
    adapter.model.load_state_dict(ckpt["model_state"])  # the deliverable (EMA) adapter weights
    merged = load_backbone(out)  # CHGNet's own file format, read by CHGNet.from_file
    assert not has_lora(merged)
    a, m = _predict(adapter, probe_frames), _predict(merged, probe_frames)
    assert not torch.equal(a["energy"], _predict(load_backbone("chgnet"), probe_frames)["energy"]), "nothing trained"
    for key in ("energy", "forces", "stress"):
        np.testing.assert_allclose(m[key].numpy(), a[key].numpy(), rtol=0, atol=1e-6, err_msg=key)
    atoms = probe_frames[1].atoms.copy()
    atoms.calc = load_calculator(out)
    assert atoms.get_potential_energy() == pytest.approx(float(a["energy"][1]), abs=1e-6)


class _Killed(BaseException):
    """What a crash in the middle of a step leaves: the last checkpoint and a few metrics lines after it."""


def test_a_crashed_lora_run_resumes_to_the_uninterrupted_numbers(straight, ethanol_small, tmp_path, monkeypatch):
    out = tmp_path / "killed"
    original, calls = TrainingLoop.step, []

    def crashing_step(self, batch):
        if len(calls) == 3:  # after the checkpoint of step 2 and one more logged step
            raise _Killed
        calls.append(1)
        return original(self, batch)

    monkeypatch.setattr(TrainingLoop, "step", crashing_step)
    with pytest.raises(_Killed):
        finetune(_config(ethanol_small, out))
    monkeypatch.undo()
    assert not (out / "results.json").exists() and (out / "checkpoints" / "last.pt").exists()
    resumed = finetune(_config(ethanol_small, out))
    skip = ("wall_time_s", "phases_s", "provenance", "inputs")
    assert {k: v for k, v in resumed.items() if k not in skip} == {k: v for k, v in straight[1].items() if k not in skip}
    steps = [json.loads(x)["step"] for x in (out / "metrics.jsonl").read_text().splitlines() if '"loss"' in x]
    assert steps == [1, 2, 3, 4, 5]
    assert "resuming from step 2" in (out / "log.txt").read_text()


def test_toy_backbone_trains_low_rank_updates_only(tmp_path, ethanol_dir):
    register_backbone("toy", f"{toy.__name__}:load")
    out = tmp_path / "toy"
    res = finetune(dict(model="toy", train=ethanol_dir / "train.xyz", optimizer="adam", lr=3e-2, batch_size=4,
                        max_steps=3, seed=0, loss_weights={"stress": 0.0}, strategy="lora:1", out=out))
    assert res["lora"]["adapted_layers"] == 4 and res["lora"]["adapter_parameters"] == (2 + 8) + (8 + 8) + (8 + 1) + (2 + 2)
    base, tuned = toy.load().model.state_dict(), load_backbone(out).model.state_dict()
    assert not torch.equal(base["e0"], tuned["e0"])  # the E0 refit, on the frozen E0
    moved = [k for k in base if k != "e0" and not torch.equal(base[k], tuned[k])]
    assert moved and all(k.endswith("weight") for k in moved), moved  # biases stay
    assert all(torch.linalg.matrix_rank(tuned[k] - base[k]) == 1 for k in moved)


def test_small_mace_takes_maces_own_adapters_and_merges_exactly(tmp_path, probe_frames):
    from tests.backbones.conftest import build_small_mace

    spec = f"mace:{build_small_mace(tmp_path / 'small.model')}"
    bb = load_backbone(spec)
    frames = [Frame(bulk("Si", "diamond", a=5.43, cubic=True))]
    frames[0].atoms.rattle(0.05, seed=3)
    before = _predict(bb, frames)
    record = apply_lora(bb, 2)
    assert record["implementation"] == "mace.modules.lora" and record["adapted_layers"] > 0
    assert torch.equal(_predict(bb, frames)["energy"], before["energy"])
    opt = torch.optim.Adam(bb.parameters(), 1e-2)
    batch = FeaturizedSet([Frame(frames[0].atoms, energy=float(before["energy"][0]) - 1.0)], bb).batch([0])
    for _ in range(2):
        opt.zero_grad()
        compute_loss(bb, batch, LossWeights())[0].backward(inputs=bb.parameters())
        opt.step()
    adapted = _predict(bb, frames)
    assert not torch.equal(adapted["energy"], before["energy"])
    merge_lora(bb)
    bb.save(tmp_path / "model")
    merged = _predict(load_backbone(tmp_path / "model"), frames)
    for key in adapted:
        np.testing.assert_allclose(merged[key].numpy(), adapted[key].numpy(), rtol=0, atol=1e-9, err_msg=key)


def test_sevennet_has_no_plain_linear_layer_and_exits_2(tmp_path, ethanol_small, capsys, cli_console):
    with pytest.raises(InputError, match=r"backbone 'sevennet' cannot do strategy 'lora:4'"):
        apply_lora(load_backbone("sevennet-0"), 4)
    config = tmp_path / "run.yaml"
    config.write_text(f"model: sevennet-0\ntrain: {ethanol_small['train']}\nstrategy: lora:4\nmax_steps: 2\n")
    out = tmp_path / "run"
    assert main(["finetune", "--config", str(config), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "sevennet" in err and "lora:4" in err and "strategy" in err
    assert not out.exists()
