"""`replay:FRACTION`: every training batch holds structures of a replay set beside the training ones.

The replay set is
- by default the built-in replay structures (`replay_structures`: crystals, g2 molecules and slabs
  built like the forgetting probe's, none of whose compositions is one of the probe's, so that
  forgetting is never measured on what replay trained), those of the backbone's elements, labelled by
  the model itself (pseudo-labels, as MACE's multihead fine-tuning does when the pretraining data are
  not at hand): energy (eV), forces (eV/Å) and, on periodic structures, stress (eV/Å^3);
- or `replay_file`, a labelled extxyz read with the run's key names (energies may be missing: the
  loss masks them); its labels must share the training data's energy reference.

When the pseudo-labels are taken: after the E0 setting (`e0: refit`...), before the first step. The
E0 setting adds a per-element constant to the energies (eV/atom of each training element); labels
taken before it would ask the model to undo it on every replay structure holding a training element
(with a DFT reference far from the pretraining one, thousands of eV), and no later setting could
reconcile both. Taken after it, the labels are the pretrained model's energies relative to the refit
(elements outside the training set keep their pretrained E0s), forces and stress are unchanged (a
constant per atom moves neither), and the replay loss of step 0 is exactly zero: it penalises drift
only. They are written to zero_shot.json (`replay`), so a resumed run reads the very same numbers.

Batches: of size B, r = min(B - 1, max(1, floor(FRACTION * B + 1/2))) replay structures (rounded half
up, at least one, at least one training structure; B = 4 and 0.25 give exactly 1) and B - r training
structures in the loop's seeded epoch order; an epoch over the training set takes
ceil(N / (B - r)) steps, its last batch holding what remains of the training structures beside r
replay ones. The replay structures of step s are positions s*r ... s*r + r - 1 of a stream of
seeded permutations of the replay set (one per pass over it): a function of (seed, step) only, so
the same seed gives the same batches and a resumed run the batches of an uninterrupted one.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from optbench.data.io import Frame
from optbench.errors import InputError
from optbench.loss import Batch, FeaturizedSet

BUILTIN = "builtin"  # results.json's replay source for the built-in set ("probe" before it was disjoint)
BUILTIN_VERSION = 2  # in a replay run's identity: version 1 was the forgetting probe's structures, rattled again
_CRYSTALS = [  # (symbols, crystal structure, a in Å, extra kwargs); no composition of the forgetting probe
    ("Ag", "fcc", 4.09, {}), ("Au", "fcc", 4.08, {}), ("Pd", "fcc", 3.89, {}), ("Mo", "bcc", 3.15, {}),
    ("Cr", "bcc", 2.91, {}), ("Na", "bcc", 4.23, {}), ("Zn", "hcp", 2.66, {"c": 4.95}), ("Co", "hcp", 2.51, {"c": 4.07}),
    ("Ge", "diamond", 5.66, {}), ("InP", "zincblende", 5.87, {}), ("KCl", "rocksalt", 6.29, {}),
    ("CaO", "rocksalt", 4.81, {}), ("NaF", "rocksalt", 4.63, {}), ("CsBr", "cesiumchloride", 4.29, {}),
    ("SrF2", "fluorite", 5.80, {}), ("AlN", "wurtzite", 3.11, {"c": 4.98}), ("BeO", "wurtzite", 2.70, {"c": 4.38}),
    ("K", "bcc", 5.23, {}),
]
_MOLECULES = ["CH3OH", "C2H4", "C2H2", "HCN", "H2CO", "CH3COOH", "C3H8", "H3CNH2", "N2H4", "H2O2", "CH3COCH3",
              "C4H4O", "C4H4NH", "Si2H6", "SH2", "CH3CHO", "BF3", "SO2"]
_SLABS = [("fcc111", "Ag"), ("fcc100", "Au"), ("fcc111", "Pd"), ("bcc110", "Mo"), ("hcp0001", "Co")]
_STREAM = 6151  # salt of the replay index stream (the epoch order uses [seed, epoch])


def replay_structures() -> list:
    """The built-in replay structures (ASE Atoms, rattled by 0.05 Å, seed 1): 18 crystals, 18 g2
    molecules and 5 slabs, none with a composition of the forgetting probe's
    (`optbench.forgetting.probe_structures`)."""
    from optbench.forgetting import build_structures

    return build_structures(_CRYSTALS, _MOLECULES, _SLABS, rattle_A=0.05, seed=1)


def batch_split(fraction: float | None, batch_size: int) -> tuple[int, int]:
    """(training, replay) structures per batch of `batch_size` (replay 0 without replay)."""
    if not fraction:
        return batch_size, 0
    if batch_size < 2:
        raise InputError("replay needs batch_size >= 2 (one training and one replay structure)", field="batch_size")
    r = min(batch_size - 1, max(1, math.floor(fraction * batch_size + 0.5)))
    return batch_size - r, r


def training_per_batch(config) -> int:
    """Training structures per batch of a run's config (its batch_size without replay)."""
    from optbench.strategies import Strategy

    return batch_split(Strategy.parse(config.strategy).replay_fraction, config.batch_size)[0]


class ReplaySet:
    """The replay structures of a run; `label` (or `use_labels`) then `mixer` give the batches."""

    def __init__(self, frames: list[Frame], source: str, fraction: float, pseudo: bool):
        self.frames, self.source, self.fraction, self.pseudo = frames, source, fraction, pseudo

    @classmethod
    def read(cls, config, backbone) -> ReplaySet:
        """The replay set of `config` (fraction from its strategy), checked before anything is written."""
        from optbench.strategies import Strategy

        fraction = Strategy.parse(config.strategy).replay_fraction
        batch_split(fraction, config.batch_size)
        if config.replay_file is not None:
            return cls(_read_file(config, backbone), str(config.replay_file), fraction, pseudo=False)
        known = backbone.supported_numbers()
        frames = [Frame(a) for a in replay_structures() if {int(z) for z in a.numbers} <= known]
        if not frames:
            raise InputError(f"no built-in replay structure holds only elements of backbone '{backbone.name}'; "
                             "give a labelled replay_file", field="replay_file")
        return cls(frames, BUILTIN, fraction, pseudo=True)

    def label(self, backbone, batch_size: int = 16) -> dict | None:
        """Pseudo-labels of the structures by the model as it is now (for zero_shot.json and
        `use_labels`); None for a labelled file."""
        if not self.pseudo:
            return None
        return pseudo_labels(backbone, FeaturizedSet(self.frames, backbone, "replay"), batch_size)

    def use_labels(self, labels: dict | None) -> None:
        """Put the labels that `label` returned (read back from zero_shot.json on resume) on the frames."""
        if labels is None:
            return
        stress = labels["stress"]
        self.frames = [Frame(f.atoms, float(e), np.asarray(fo, dtype=float), None if s is None else np.asarray(s, dtype=float))
                       for f, e, fo, s in zip(self.frames, labels["energy"], labels["forces"], stress, strict=True)]

    def mixer(self, train: FeaturizedSet, backbone, config) -> ReplayMixer:
        _, r = batch_split(self.fraction, config.batch_size)
        return ReplayMixer(train, FeaturizedSet(self.frames, backbone, "replay"), r, config.seed)

    def describe(self, batch_size: int) -> str:
        """One line for the log."""
        rec = self.record(batch_size)
        return (f"replay:{self.fraction:g}: {rec['per_batch']} of every {batch_size} structures a batch from "
                f"{rec['n_structures']} replay structures ({self.source}, {rec['labels']} labels)")

    def record(self, batch_size: int) -> dict:
        """results.json's `replay`: fraction asked for, structures per batch, source and size."""
        _, r = batch_split(self.fraction, batch_size)
        return {"fraction": self.fraction, "per_batch": r, "batch_size": batch_size, "source": self.source,
                "labels": "pseudo" if self.pseudo else "file", "n_structures": len(self.frames)}


def pseudo_labels(backbone, fset: FeaturizedSet, batch_size: int) -> dict:
    """The model's energy (eV), forces (eV/Å) and, on periodic structures, stress (eV/Å^3, ASE sign)
    of every structure, as plain lists (JSON); periodic and other structures are batched apart."""
    from optbench.evaluate import predict_groups

    periodic = [bool(f.atoms.pbc.all()) for f in fset.frames]
    groups = [([i for i, p in enumerate(periodic) if p], True), ([i for i, p in enumerate(periodic) if not p], False)]
    energy, forces, stress = predict_groups(backbone, fset, batch_size, groups)
    return {"energy": energy, "forces": [f.tolist() for f in forces],
            "stress": [None if s is None else s.tolist() for s in stress]}


def _read_file(config, backbone) -> list[Frame]:
    from optbench.data.io import LabelKeys, read_frames
    from optbench.e0 import split_isolated
    from optbench.sanity import check_structures

    path = config.replay_file
    keys = LabelKeys(config.energy_key, config.forces_key, config.stress_key, config.virial_key)
    frames = split_isolated(read_frames(path, keys, require_energy=False), path)[0]
    backbone.check_elements({int(z) for f in frames for z in f.atoms.numbers}, path)
    check_structures(frames, path, getattr(backbone, "cutoff", None) or getattr(backbone, "r_max", None))
    for i, f in enumerate(frames):
        if f.energy is None and f.forces is None:
            raise InputError(f"frame {i} has neither energy nor forces: nothing to replay", file=path, field=config.energy_key)
        if f.stress is not None and not f.atoms.pbc.all():
            raise InputError(f"frame {i}: stress labels on a non-periodic structure", file=path, field=config.stress_key)
    return frames


@functools.lru_cache(maxsize=4)
def _order(seed: int, rnd: int, n: int) -> np.ndarray:
    return np.random.default_rng([seed, _STREAM, rnd]).permutation(n)


def replay_indices(step: int, per_batch: int, n_replay: int, seed: int) -> list[int]:
    """Replay structures (indices into the replay set) of the batch of `step` (0-based): positions
    step*per_batch ... of the stream of seeded permutations, one per pass over the replay set."""
    return [int(_order(seed, pos // n_replay, n_replay)[pos % n_replay])
            for pos in range(step * per_batch, (step + 1) * per_batch)]


class ReplayMixer:
    """Batches of training structures (given by the loop) and `per_batch` replay structures (by step)."""

    def __init__(self, train: FeaturizedSet, replay: FeaturizedSet, per_batch: int, seed: int):
        self.n_train, self.n_replay, self.per_batch, self.seed = len(train), len(replay), per_batch, seed
        self.both = FeaturizedSet([*train.frames, *replay.frames], None, "train+replay", [*train.graphs, *replay.graphs])

    def indices(self, step: int) -> list[int]:
        return replay_indices(step, self.per_batch, self.n_replay, self.seed)

    def batch(self, train_indices, step: int) -> Batch:
        """The batch of `step`: the training structures `train_indices`, then its replay structures."""
        return self.both.batch([*(int(i) for i in train_indices), *(self.n_train + j for j in self.indices(step))])
