"""The strategy axis of a study: accuracy against forgetting for each (optimizer, strategy) pair.

One point per pair and panel (a dataset; a dataset and backbone where the study has several
backbones): the force MAE on the dataset's first ID test set at the pair's selected LR, and the
force drift on the built-in probe set (RMS change against the pretrained model's own predictions),
each a mean and 95% t-interval over the completed seeds, with the per-seed values kept for paired
comparisons. Lower is better on both axes; the Pareto front holds the pairs no other pair beats on
both. Columns read (results.csv): `strategy` ('full' where absent), `final.<set>.forces_mae` and
`forgetting_forces_rms_meV_A`, both meV/Å.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from optbench.report.aggregate import StudyData
from optbench.report.labels import strategy_of
from optbench.report.stats import mean_ci, paired_test

FORGETTING = "forgetting_forces_rms_meV_A"  # probe-set force drift of a trial (meV/Å)


@dataclass
class Point:
    """One (optimizer, strategy) pair of one panel, at its selected LR."""

    panel: str
    dataset: str
    backbone: str
    optimizer: str
    strategy: str
    label: str  # the report's name of the pair (StudyData.arm)
    lr: float
    test_set: str  # the accuracy's test set
    n_seeds: int  # seeds at the selected LR; those that did not complete are left out of the statistics
    accuracy: dict  # mean_ci of the force MAE (meV/Å)
    forgetting: dict  # mean_ci of the probe-set force drift (meV/Å)
    accuracy_by_seed: dict = field(default_factory=dict)
    pareto: bool = False

    @property
    def failed(self) -> int:
        return self.n_seeds - self.accuracy["n"]

    @property
    def placed(self) -> bool:
        """Both means known: the point can be drawn and weighed on the front."""
        return self.accuracy["mean"] is not None and self.forgetting["mean"] is not None


def strategy_count(data: StudyData) -> int:
    return len({strategy_of(r) for r in data.rows})


def accuracy_set(data: StudyData, dataset: str) -> str | None:
    """The test set accuracy is read on: the first ID set (the first set where none is tagged ID)."""
    sets = data.test_sets(dataset)
    ids = [n for n, tag in sets.items() if tag == "ID"] or list(sets)
    return ids[0] if ids else None


def panels(data: StudyData) -> dict[str, list[Point]]:
    """Panel title -> its points with the Pareto front marked; {} for a study without strategies."""
    if not data.by_strategy:
        return {}
    backbones = list(dict.fromkeys(r["backbone"] for r in data.rows))
    out = {}
    for ds in data.datasets:
        test_set = accuracy_set(data, ds)
        for bb in backbones:
            title = ds if len(backbones) == 1 else f"{ds}, {bb}"
            points = _points(data, ds, bb, test_set, title) if test_set else []
            for p in pareto_front(points):
                p.pareto = True
            if points:
                out[title] = points
    return out


def _points(data: StudyData, ds: str, bb: str, test_set: str, title: str) -> list[Point]:
    key = f"final.{test_set}.forces_mae"
    out = []
    for arm in data.optimizers:
        rows = [r for r in data.selected(ds, arm) if r["backbone"] == bb]
        if not rows:
            continue
        done = [r for r in rows if r["status"] == "completed"]
        acc = {r["seed"]: r.get(key) for r in done}
        out.append(Point(title, ds, bb, rows[0]["optimizer"], strategy_of(rows[0]), arm, rows[0]["lr"], test_set,
                         len(rows), mean_ci(acc.values()), mean_ci(r.get(FORGETTING) for r in done), acc))
    return out


def pareto_front(points: list[Point]) -> list[Point]:
    """The placed points no other placed point beats on both axes (lower force MAE, lower drift;
    equal on both counts as not beaten), sorted by force MAE."""
    placed = [p for p in points if p.placed]

    def beats(q: Point, p: Point) -> bool:
        a, b = (q.accuracy["mean"], q.forgetting["mean"]), (p.accuracy["mean"], p.forgetting["mean"])
        return a[0] <= b[0] and a[1] <= b[1] and a != b

    front = [p for p in placed if not any(beats(q, p) for q in placed)]
    return sorted(front, key=lambda p: (p.accuracy["mean"], p.forgetting["mean"]))


def ranked(points: list[Point]) -> list[Point]:
    """Points with a force MAE, best (lowest mean) first."""
    return sorted((p for p in points if p.accuracy["mean"] is not None), key=lambda p: p.accuracy["mean"])


def separation(best: Point, second: Point) -> dict:
    """Whether `best`'s force MAE lies below `second`'s beyond the 95% intervals.

    kind 'one seed': either has a single seed, so no interval. kind 'paired': both have the same
    seeds, the interval of the paired difference best - second (`diff` ± `ci`) decides. kind
    'unpaired': the seeds differ, the two intervals of the means decide. `separated` is True when
    the difference's interval lies below zero (paired) or the intervals do not overlap (unpaired).
    """
    a, b = best.accuracy, second.accuracy
    if a["ci"] is None or b["ci"] is None:
        return {"kind": "one seed", "separated": None}
    both = {s for s, v in best.accuracy_by_seed.items() if v is not None}
    if both == {s for s, v in second.accuracy_by_seed.items() if v is not None}:
        test = paired_test(best.accuracy_by_seed, second.accuracy_by_seed)
        return {"kind": "paired", "n": test["n"], "diff": test["mean_diff"], "ci": test["ci"],
                "separated": test["mean_diff"] + test["ci"] < 0}
    return {"kind": "unpaired", "separated": a["mean"] + a["ci"] < b["mean"] - b["ci"]}
