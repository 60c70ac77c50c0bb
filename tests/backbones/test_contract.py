"""The backbone contract, checked the same way for every adapter (CHGNet, SevenNet, MACE)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk, molecule

from optbench.backbones import load_backbone
from optbench.data.io import Frame
from optbench.errors import InputError
from optbench.loss import FeaturizedSet, LossWeights, compute_loss

SPECS = ["chgnet", "sevennet-0", "mace"]


@pytest.fixture(scope="module", params=SPECS)
def spec(request, small_mace_file) -> str:
    return f"mace:{small_mace_file}" if request.param == "mace" else request.param


@pytest.fixture(scope="module")
def backbone(spec):
    bb = load_backbone(spec)
    bb.model.eval()
    return bb


def silicon(seed: int = 0, rattle: float = 0.08) -> Atoms:
    """A rattled, sheared 2-atom Si cell (non-zero forces and all six stress components)."""
    atoms = bulk("Si", "diamond", a=5.43)
    atoms.set_cell(atoms.cell.array @ np.array([[1.0, 0.02, 0.0], [0.0, 1.0, -0.03], [0.01, 0.0, 0.98]]), scale_atoms=True)
    atoms.rattle(rattle, seed=seed)
    return atoms


def water() -> Atoms:
    atoms = molecule("H2O")
    atoms.rattle(0.05, seed=1)
    return atoms


def predict(bb, structures, stress=False):
    with torch.enable_grad():
        return bb.predict([bb.featurize(a) for a in structures], stress=stress)


def energies(bb, structures) -> np.ndarray:
    """Total energies (eV) of many structures in one batched call."""
    return predict(bb, structures).energy.detach().double().numpy()


def test_forces_are_minus_energy_gradient(backbone):
    atoms = silicon()
    forces = predict(backbone, [atoms]).forces.detach().double().numpy()
    eps = 5e-3  # Å
    moved = []
    for i in range(len(atoms)):
        for k in range(3):
            for sign in (1, -1):
                m = atoms.copy()
                m.positions[i, k] += sign * eps
                moved.append(m)
    e = energies(backbone, moved).reshape(len(atoms), 3, 2)
    fd = -(e[..., 0] - e[..., 1]) / (2 * eps)
    assert np.abs(forces).max() > 0.05  # a real test: the rattled cell has forces
    np.testing.assert_allclose(forces, fd, atol=3e-3 + 0.02 * np.abs(fd).max())


def test_stress_is_strain_derivative(backbone):
    """ASE sign: sigma_ij = (1/V) dE/d(eps_ij), positive in tension; eV/Å^3."""
    atoms = silicon()
    stress = predict(backbone, [atoms], stress=True).stress[0].detach().double().numpy()
    eps, cell, volume = 1e-3, atoms.cell.array.copy(), atoms.get_volume()
    pairs = [(i, j) for i in range(3) for j in range(i, 3)]
    strained = []
    for i, j in pairs:
        for sign in (1, -1):
            strain = np.eye(3)
            strain[i, j] += sign * eps / (1 if i == j else 2)
            strain[j, i] += 0 if i == j else sign * eps / 2
            s = atoms.copy()
            s.set_cell(cell @ strain.T, scale_atoms=True)
            strained.append(s)
    e = energies(backbone, strained).reshape(len(pairs), 2)
    fd = np.zeros((3, 3))
    for (i, j), (ep, em) in zip(pairs, e):
        fd[i, j] = fd[j, i] = (ep - em) / (2 * eps) / volume
    assert np.abs(stress).max() > 1e-4
    np.testing.assert_allclose(stress, stress.T, atol=1e-6)
    np.testing.assert_allclose(stress, fd, atol=2e-5 + 0.02 * np.abs(fd).max())


def test_batch_equals_single_structures(backbone):
    """Batching is the backbone's own collate and changes no prediction; cached graphs are reusable."""
    structures = [silicon(0), water(), silicon(1)]
    graphs = [backbone.featurize(a) for a in structures]
    with torch.enable_grad():
        batched = backbone.predict(graphs, stress=True)
        again = backbone.predict(graphs, stress=True)
        singles = [backbone.predict([g], stress=True) for g in graphs]
    assert batched.energy.shape == (3,) and batched.stress.shape == (3, 3, 3)
    assert batched.n_atoms.tolist() == [len(a) for a in structures]
    assert batched.forces.shape == (sum(len(a) for a in structures), 3)
    torch.testing.assert_close(batched.energy, again.energy, rtol=0, atol=0)
    torch.testing.assert_close(batched.energy, torch.cat([s.energy for s in singles]), rtol=1e-6, atol=1e-5)
    torch.testing.assert_close(batched.forces, torch.cat([s.forces for s in singles]), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(batched.stress[[0, 2]], torch.cat([singles[0].stress, singles[2].stress]), rtol=1e-5, atol=1e-6)


def test_save_load_round_trip_gives_identical_predictions(backbone, tmp_path):
    structures = [silicon(), water()]
    before = predict(backbone, structures, stress=True)
    backbone.save(tmp_path / "model")
    reloaded = load_backbone(tmp_path / "model")
    reloaded.model.eval()
    after = predict(reloaded, structures, stress=True)
    assert reloaded.name == backbone.name
    for a, b in [(before.energy, after.energy), (before.forces, after.forces), (before.stress, after.stress)]:
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def own_calculator(name: str, path):
    """The backbone's own ASE calculator on a file that optbench saved."""
    if name == "chgnet":
        from chgnet.model import CHGNet
        from chgnet.model.dynamics import CHGNetCalculator

        return CHGNetCalculator(model=CHGNet.from_file(str(path)), use_device="cpu")
    if name == "sevennet":
        from sevenn.calculator import SevenNetCalculator

        return SevenNetCalculator(str(path), device="cpu")
    from mace.calculators import MACECalculator

    return MACECalculator(model_paths=str(path), device="cpu", default_dtype="float64")


def test_own_calculator_loads_saved_model_and_agrees(backbone, tmp_path):
    backbone.shift_reference_energies({14: 0.25})  # a modified model, so the file must carry the change
    try:
        path = backbone.save(tmp_path / "model")
        atoms = silicon()
        ours, theirs = atoms.copy(), atoms.copy()
        ours.calc = backbone.calculator()
        theirs.calc = own_calculator(backbone.name, path)
        assert theirs.get_potential_energy() == pytest.approx(ours.get_potential_energy(), abs=1e-4)
        np.testing.assert_allclose(theirs.get_forces(), ours.get_forces(), atol=1e-4)
        np.testing.assert_allclose(theirs.get_stress(), ours.get_stress(), atol=1e-6)
    finally:
        backbone.shift_reference_energies({14: -0.25})


def test_reference_energy_shift_moves_energy_per_atom_only(backbone):
    atoms = silicon()
    before = predict(backbone, [atoms])
    backbone.shift_reference_energies({14: 0.5})
    try:
        after = predict(backbone, [atoms])
    finally:
        backbone.shift_reference_energies({14: -0.5})
    assert float(after.energy - before.energy) == pytest.approx(0.5 * len(atoms), abs=1e-4)
    torch.testing.assert_close(after.forces, before.forces, rtol=0, atol=1e-6)


def test_elements_outside_the_model_are_rejected(backbone):
    assert {1, 8, 14} <= backbone.supported_numbers()
    with pytest.raises(InputError, match="unknown to backbone"):
        backbone.check_elements([14, 118], path="x.extxyz")


def test_force_and_stress_losses_reach_the_parameters(backbone):
    """The graph of forces and stress is kept (create_graph), so their losses backprop, in train mode
    and in eval mode alike (curvature runs in eval mode; SevenNet and MACE only keep second
    derivatives in train mode unless told), with identical gradients; create_graph=False is the
    cheap inference path without that graph."""
    frames = [Frame(atoms=a, energy=-10.0, forces=np.full((len(a), 3), 0.1), stress=np.eye(3) * 1e-3)
              for a in (silicon(0),)]
    data = FeaturizedSet(frames, backbone)
    params = backbone.parameters()
    grads = {}
    try:
        for train in (True, False):
            backbone.model.train(train)
            for term in ("forces", "stress"):
                weights = LossWeights(energy=0.0, forces=float(term == "forces"), stress=float(term == "stress"))
                loss, _ = compute_loss(backbone, data.batch([0]), weights)
                grads[term, train] = torch.autograd.grad(loss, params, allow_unused=True)
    finally:
        backbone.model.eval()
    for term in ("forces", "stress"):
        norm = sum(float(x.abs().sum()) for x in grads[term, True] if x is not None)
        assert np.isfinite(norm) and norm > 0, term
        scale = sum(float(x.norm()) for x in grads[term, True] if x is not None)
        for a, b in zip(grads[term, False], grads[term, True], strict=True):
            assert (a is None) == (b is None), term
            if a is not None:
                torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6 * scale)
    inference = backbone.predict(data.batch([0]).graphs, stress=True, create_graph=False)
    assert inference.forces.grad_fn is None


# ---------------------------------------------------------------- through the fine-tuning loop
@pytest.fixture(scope="module")
def si_train(tmp_path_factory):
    """Four rattled Si cells with energy, forces and stress labels (Lennard-Jones: consistent E/F/stress)."""
    from ase.calculators.lj import LennardJones
    from ase.calculators.singlepoint import SinglePointCalculator
    from ase.io import write

    frames = []
    for seed in range(4):
        atoms = silicon(seed, rattle=0.1)
        atoms.calc = LennardJones(sigma=2.1, epsilon=0.05, rc=4.5, smooth=True)
        e, f, s = atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress()
        atoms.calc = SinglePointCalculator(atoms, energy=e - 5.4 * len(atoms), forces=f, stress=s)
        frames.append(atoms)
    path = tmp_path_factory.mktemp("si") / "train.xyz"
    write(path, frames, format="extxyz")
    return path


def _run_config(spec, train, out):
    from optbench.config import FinetuneConfig

    return FinetuneConfig(model=spec, train=train, out=out, optimizer="adamw", lr=1e-3, batch_size=2,
                          max_steps=4, seed=1, valid_fraction=0.0, eval_every=2, checkpoint_every=1,
                          loss_weights={"energy": 1.0, "forces": 10.0, "stress": 0.1})


def _numbers(result: dict) -> dict:
    return {k: v for k, v in result.items() if k not in ("wall_time_s", "phases_s")}


def test_finetune_is_deterministic_and_resumes_after_a_crash(spec, si_train, tmp_path, monkeypatch):
    """A run that crashed after step 2 resumes to exactly the numbers of an uninterrupted run with the
    same seed (so the loop is deterministic and its checkpoints complete) and trains the model."""
    import optbench.run.loop as loop
    from optbench.run import finetune

    straight = finetune(_run_config(spec, si_train, tmp_path / "a"))
    assert straight["status"] == "completed" and straight["steps"] == 4
    first = straight["metrics"]["zero_shot"]["train"]["forces_mae"]
    assert straight["metrics"]["final"]["train"]["forces_mae"] < first

    real, calls = loop.compute_loss, {"n": 0}

    def crash_at_step_3(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("simulated crash")
        return real(*args, **kwargs)

    monkeypatch.setattr(loop, "compute_loss", crash_at_step_3)
    with pytest.raises(RuntimeError, match="simulated crash"):
        finetune(_run_config(spec, si_train, tmp_path / "c"))
    monkeypatch.setattr(loop, "compute_loss", real)
    assert not (tmp_path / "c" / "results.json").exists()
    resumed = finetune(_run_config(spec, si_train, tmp_path / "c"))
    assert _numbers(resumed) == _numbers(straight)
    # the fine-tuned model reloads with identical predictions
    bb = load_backbone(tmp_path / "c")
    bb.model.eval()
    ref = load_backbone(tmp_path / "a")
    ref.model.eval()
    torch.testing.assert_close(predict(bb, [silicon(9)]).forces, predict(ref, [silicon(9)]).forces, rtol=0, atol=0)
    # ... and the backbone's own calculator reads the fine-tuned native file
    meta = json.loads((tmp_path / "c" / "model" / "backbone.json").read_text())
    ours, theirs = silicon(9), silicon(9)
    ours.calc = bb.calculator()
    theirs.calc = own_calculator(bb.name, tmp_path / "c" / "model" / meta["file"])
    np.testing.assert_allclose(theirs.get_forces(), ours.get_forces(), atol=1e-4)



def test_predict_energy_is_the_energy_of_predict(backbone):
    """The forward alone (the E0 refit's pass) gives the energies of the full prediction, bit for bit."""
    from optbench.evaluate import inference

    graphs = [backbone.featurize(a) for a in (silicon(0), silicon(1), water())]
    with inference(backbone):
        full = backbone.predict(graphs, create_graph=False).energy.detach()
        alone = backbone.predict_energy(graphs)
    assert alone.shape == (3,) and not alone.requires_grad
    assert torch.equal(alone, full)


def test_zero_shot_beside_the_training_is_the_zero_shot_before_it(spec, si_train, tmp_path, monkeypatch):
    """The evaluation on a copy of the model in a thread (optbench.run.zero_shot) gives the numbers of
    the one before the training, for every adapter."""
    from optbench.run import finetune

    monkeypatch.setenv("OPTBENCH_CACHE", "off")  # both compute their predictions
    before = finetune(_run_config(spec, si_train, tmp_path / "before"), beside=False)
    beside = finetune(_run_config(spec, si_train, tmp_path / "beside"), beside=True)
    assert "evaluate_beside_train" in beside["phases_s"]
    assert beside["metrics"] == before["metrics"]
