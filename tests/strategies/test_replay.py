"""`replay:FRACTION`: batches hold the requested share of replay structures, seeded and a function of
the step; the pseudo-labels are the pretrained model's predictions after the E0 setting (the replay
loss starts at zero); a user's labelled file replaces them; bad settings name their field."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.io import write

from optbench.backbones import load_backbone, load_calculator, register_backbone
from optbench.config import FinetuneConfig
from optbench.data.io import read_frames
from optbench.errors import InputError
from optbench.forgetting import probe_structures
from optbench.layout import RunDir
from optbench.loss import FeaturizedSet, LossWeights, compute_loss
from optbench.run import finetune
from optbench.strategies.replay import (
    BUILTIN,
    ReplayMixer,
    ReplaySet,
    batch_split,
    replay_indices,
    replay_structures,
)
from tests.curvature import toy


@pytest.mark.parametrize("batch_size,fraction,split", [
    (4, 0.25, (3, 1)), (8, 0.2, (6, 2)), (4, 0.1, (3, 1)), (4, 0.375, (2, 2)), (2, 0.9, (1, 1)), (4, None, (4, 0)),
])
def test_batch_split_rounds_half_up_keeping_one_of_each(batch_size, fraction, split):
    assert batch_split(fraction, batch_size) == split


def test_the_builtin_replay_set_shares_no_composition_with_the_forgetting_probe():
    """Forgetting is measured on the probe: a replay set holding its structures would train on it."""
    replay, probe = replay_structures(), probe_structures()
    assert len(replay) == 41
    formulas = {a.get_chemical_formula(mode="reduce") for a in probe}
    assert not {a.get_chemical_formula(mode="reduce") for a in replay} & formulas
    assert replay_structures()[0].positions.tolist() == replay[0].positions.tolist()  # seeded
    assert sum(a.pbc.all() for a in replay) == 23 and sum(not a.pbc.any() for a in replay) == 18


def test_a_builtin_replay_run_names_its_replay_set_in_its_identity(ethanol_dir):
    """Runs made with another built-in replay set are other runs: never resumed or reused as these."""
    train = ethanol_dir / "train.xyz"
    assert FinetuneConfig(train=train, strategy="replay:0.25").identity()["replay_set"] == 2
    assert "replay_set" not in FinetuneConfig(train=train).identity()
    assert "replay_set" not in FinetuneConfig(train=train, strategy="replay:0.25", replay_file=train).identity()


def test_batches_hold_the_requested_fraction_seeded_by_step(ethanol_dir):
    bb = toy.ToyBackbone()
    train = FeaturizedSet(read_frames(ethanol_dir / "train.xyz"), bb, "train")
    replay = ReplaySet.read(FinetuneConfig(train=ethanol_dir / "train.xyz", strategy="replay:0.5", batch_size=8), bb)
    replay.use_labels(replay.label(bb))
    rset = FeaturizedSet(replay.frames, bb, "replay")
    mixer = ReplayMixer(train, rset, batch_split(0.5, 8)[1], seed=0)
    rounds = len(rset) // 4 + 1
    for step in range(rounds):
        batch = mixer.batch(range(4), step)
        assert len(batch.graphs) == 8 and batch.graphs[:4] == train.graphs[:4]
        assert batch.graphs[4:] == [rset.graphs[j] for j in mixer.indices(step)]
    stream = [j for s in range(len(rset)) for j in mixer.indices(s)]  # 4 passes over the replay set
    assert all(sorted(stream[k : k + len(rset)]) == list(range(len(rset))) for k in range(0, 4 * len(rset), len(rset)))
    again = ReplayMixer(train, rset, 4, seed=0)
    assert [again.indices(s) for s in reversed(range(rounds))] == [mixer.indices(s) for s in reversed(range(rounds))]
    assert [ReplayMixer(train, rset, 4, seed=1).indices(s) for s in range(rounds)] != [mixer.indices(s) for s in range(rounds)]


@pytest.fixture(scope="module")
def chgnet_run(ethanol_small, tmp_path_factory):
    out = tmp_path_factory.mktemp("replay") / "run"
    result = finetune(dict(model="chgnet", train=ethanol_small["train"], optimizer="adamw", lr=1e-3, batch_size=4,
                           max_steps=3, seed=0, eval_every=3, checkpoint_every=3, strategy="replay:0.25", out=out))
    return out, result


def test_chgnet_trains_with_replay(chgnet_run):
    out, result = chgnet_run
    assert result["status"] == "completed" and result["steps"] == 3
    assert result["replay"] == {"fraction": 0.25, "per_batch": 1, "batch_size": 4, "source": "builtin",
                                "labels": "pseudo", "n_structures": 41}
    assert result["epochs_completed"] == pytest.approx(3 / 8)  # 22 training structures, 3 a batch
    steps = [m for m in RunDir(out).metrics() if "loss" in m]
    assert len(steps) == 3 and all(np.isfinite(m["loss"]) for m in steps)
    # the ethanol set has no stress: a stress loss comes from the periodic replay structure of the batch
    # (zero to float32 rounding on step 1: the labels are the model's own predictions as training starts)
    frames = ReplaySet.read(FinetuneConfig(train=out, strategy="replay:0.25"), load_backbone("chgnet")).frames
    periodic = [bool(frames[replay_indices(s, 1, 41, 0)[0]].atoms.pbc.all()) for s in range(3)]
    assert steps[0]["loss_stress"] < 1e-8 and any(periodic[1:])
    assert [m["loss_stress"] > 1e-6 for m in steps[1:]] == periodic[1:]


def test_pseudo_labels_are_the_pretrained_predictions_relative_to_the_e0_refit(chgnet_run):
    out, _ = chgnet_run
    zero = RunDir(out).zero_shot()
    labels, shifts = zero["replay"], zero["e0"]["shifts_eV"]
    frames = ReplaySet.read(FinetuneConfig(train=out, strategy="replay:0.25"), load_backbone("chgnet")).frames
    calc = load_calculator("chgnet")
    for k, frame in enumerate(frames):
        atoms = frame.atoms.copy()
        atoms.calc = calc
        shift = sum(shifts.get(s, 0.0) for s in atoms.get_chemical_symbols())  # eV/atom per training element
        # CHGNet computes in float32: a few ulp of energies of ~1000 eV after the refit
        assert labels["energy"][k] == pytest.approx(atoms.get_potential_energy() + shift, rel=1e-6, abs=1e-5)
        np.testing.assert_allclose(labels["forces"][k], atoms.get_forces(), atol=2e-5)
        if atoms.pbc.all():
            assert np.allclose(np.asarray(labels["stress"][k])[[0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]],
                               atoms.get_stress(), atol=1e-6)
        else:
            assert labels["stress"][k] is None
    assert any(s in {"H", "C", "O"} for f in frames for s in f.atoms.get_chemical_symbols()), "the refit would not show"

    start = load_backbone("chgnet")  # the weights the run started from (after the refit): replay loss zero
    start.model.load_state_dict(torch.load(out / "checkpoints" / "start.pt", weights_only=False)["model_state"])
    replay = ReplaySet(frames, BUILTIN, 0.25, pseudo=True)
    replay.use_labels(labels)
    rset = FeaturizedSet(replay.frames, start, "replay")
    loss, _ = compute_loss(start, rset.batch(range(len(rset))), LossWeights())
    assert float(loss) < 1e-8


def test_toy_backbone_trains_with_a_users_labelled_replay_file(tmp_path, ethanol_dir):
    cells = []
    for seed in range(3):
        cell = bulk("Cu", "fcc", a=3.6, cubic=True)
        cell.rattle(0.05, seed=seed)
        cell.calc = EMT()
        cell.get_potential_energy()
        cells.append(cell)
    write(tmp_path / "replay.xyz", cells, format="extxyz")
    register_backbone("toy", f"{toy.__name__}:load")
    res = finetune(dict(model="toy", train=ethanol_dir / "train.xyz", optimizer="adam", lr=1e-2, batch_size=4,
                        max_steps=3, seed=0, loss_weights={"stress": 0.0}, strategy="replay:0.5",
                        replay_file=tmp_path / "replay.xyz", out=tmp_path / "run"))
    assert res["replay"]["source"] == str(tmp_path / "replay.xyz") and res["replay"]["labels"] == "file"
    assert res["replay"]["n_structures"] == 3 and res["replay"]["per_batch"] == 2 and res["steps"] == 3
    assert RunDir(tmp_path / "run").zero_shot()["replay"] is None
    assert res["inputs"]["replay_file"]["sha256"]  # a changed replay file is a changed run


def test_bad_replay_settings_name_their_field(tmp_path, ethanol_dir):
    bb = toy.ToyBackbone()
    cell = bulk("Cu", "fcc", a=3.6)
    write(tmp_path / "bare.xyz", [cell], format="extxyz")
    cfg = FinetuneConfig(train=ethanol_dir / "train.xyz", strategy="replay:0.2", replay_file=tmp_path / "bare.xyz")
    with pytest.raises(InputError, match="neither energy nor forces") as err:
        ReplaySet.read(cfg, bb)
    assert err.value.file == str(tmp_path / "bare.xyz")
    with pytest.raises(InputError, match="batch_size >= 2") as err:
        ReplaySet.read(FinetuneConfig(train=ethanol_dir / "train.xyz", strategy="replay:0.2", batch_size=1), bb)
    assert err.value.field == "batch_size"
