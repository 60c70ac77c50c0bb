"""The report of a study with fine-tuning strategies, built from a synthetic study folder (no
training): the strategy x optimizer table, the Pareto front of accuracy against forgetting, the
sentences that name the best pair and say whether the intervals separate, the figure; and a study
without a strategy column reads as before."""

from __future__ import annotations

import csv
import json

import pytest

from optbench.io import write_json, write_text
from optbench.layout import StudyDir
from optbench.report.aggregate import StudyData
from optbench.report.build import build_report
from optbench.report.recommend import strategy_sentences
from optbench.report.strategy_axis import Point, panels, separation
from optbench.report.tables import tables

# (optimizer, strategy) -> per seed (ID force MAE, probe-set force drift), meV/Å. The front is
# schedulefree/full, adamw/full, adamw/replay, adamw/freeze; schedulefree/freeze and /replay are dominated.
PAIRS = {
    ("adamw", "full"): [(50.0, 30.0), (52.0, 32.0)],
    ("adamw", "freeze:embedding"): [(60.0, 10.0), (61.0, 11.0)],
    ("adamw", "replay:0.25"): [(55.0, 20.0), (57.0, 22.0)],
    ("schedulefree", "full"): [(48.0, 35.0), (49.5, 36.0)],
    ("schedulefree", "freeze:embedding"): [(65.0, 12.0), (66.0, 13.0)],
    ("schedulefree", "replay:0.25"): [(58.0, 25.0), (60.0, 27.0)],
}


def write_study(folder, pairs=PAIRS, strategy_column=True, datasets=("molecular",)):
    """study.json, each trial's results.json and forgetting analysis, as a study run leaves them."""
    study = StudyDir(folder)
    rows = []
    for ds in datasets:
        for (opt, strategy), seeds in pairs.items():
            for seed, (mae, drift) in enumerate(seeds):
                key = f"{ds}-{opt}-{strategy.replace(':', '_')}-{seed}"
                row = {"trial": key, "dataset": ds, "regime": ds, "backbone": "chgnet", "optimizer": opt,
                       "lr": 1e-3, "seed": seed, "selected": True}
                if strategy_column:
                    row["strategy"] = strategy
                rows.append(row)
                metrics = {"final": {"id": {"forces_mae": mae, "energy_mae": 2.0},
                                     "ood": {"forces_mae": 2 * mae, "energy_mae": 4.0}}}
                write_json(study.trial(key).results_path,
                           {"status": "completed", "steps": 10, "wall_time_s": 1.0, "metrics": metrics})
                curve = [{"step": 0, "loss": 1.0}, {"step": 10, "loss": 0.5, "valid_forces_mae": mae, "elapsed_s": 1.0}]
                write_text(study.trial(key).metrics_path, "".join(json.dumps(x) + "\n" for x in curve))
                probe = {"n_structures": 41, "energy_rms_meV_atom": drift / 10, "energy_max_meV_atom": drift / 5,
                         "energy_offsets_removed": 3, "energy_offsets_eV": {}, "forces_rms_meV_A": drift,
                         "forces_mae_meV_A": drift / 2}
                write_json(study.forgetting_path(key), {"pretrained": "chgnet", "probe": probe})
    write_json(study.index_path, {"name": "synthetic", "reference_optimizer": "adamw", "trials": rows,
                                  "datasets": {ds: {"regime": ds, "tags": {"id": "ID", "ood": "OOD"}} for ds in datasets}})
    return folder


@pytest.fixture(scope="module")
def with_strategies(tmp_path_factory):
    return write_study(tmp_path_factory.mktemp("strategies"), datasets=("molecular", "crystal"))


def test_points_and_pareto_front(with_strategies):
    data = StudyData(with_strategies)
    assert data.by_strategy and data.reference == "adamw / full"
    points = {p.label: p for p in panels(data)["molecular"]}
    assert len(points) == 6 and points["adamw / full"].accuracy["mean"] == pytest.approx(51.0)
    assert points["adamw / full"].forgetting["mean"] == pytest.approx(31.0)
    front = {label for label, p in points.items() if p.pareto}
    assert front == {"schedulefree / full", "adamw / full", "adamw / replay:0.25", "adamw / freeze:embedding"}
    assert not points["schedulefree / freeze:embedding"].pareto  # beaten on both axes by adamw / freeze


def test_table_is_strategy_rows_by_optimizer_columns(with_strategies):
    data = StudyData(with_strategies)
    title, head, body = next(t for t in tables(data) if "strategy x optimizer" in t[0])
    assert title.startswith("molecular:") and "id force MAE" in title
    assert head == ["strategy", "adamw: force MAE; drift (meV/Å)", "schedulefree: force MAE; drift (meV/Å)"]
    assert [row[0] for row in body] == ["full", "freeze:embedding", "replay:0.25"]
    assert body[0][2] == "48.8 ± 9.5; drift 35.5 ± 6.4 (best, front)"  # t(0.975, 1) = 12.71
    assert body[1][2].endswith("drift 12.5 ± 6.4") and "(front)" in body[1][1]
    assert sum("best" in cell for row in body for cell in row) == 1


def test_report_has_strategy_table_sentences_and_figure(with_strategies):
    paths = build_report(with_strategies)
    md = paths["md"].read_text()
    assert "![accuracy_forgetting](figures/accuracy_forgetting.png)" in md
    assert (paths["figures"] / "accuracy_forgetting.png").stat().st_size > 10_000
    assert "molecular: strategy x optimizer" in md and "crystal: strategy x optimizer" in md
    assert "best pair by id force MAE: schedulefree / full (lr 0.001)" in md
    assert "id='fig-accuracy_forgetting'" in paths["html"].read_text()
    with open(paths["csv"]) as fh:
        row = next(csv.DictReader(fh))
    assert {"strategy", "final.id.forces_mae", "forgetting_forces_rms_meV_A"} <= set(row)


def _point(label, maes, drifts=None, seeds=None):
    from optbench.report.stats import mean_ci

    opt, strategy = label.split(" / ")
    seeds = list(range(len(maes))) if seeds is None else seeds
    drifts = drifts or [10.0] * len(maes)
    return Point("molecular", "molecular", "chgnet", opt, strategy, label, 1e-3, "id", len(maes), mean_ci(maes),
                 mean_ci(drifts), dict(zip(seeds, maes)))


def test_separation_paired_unpaired_and_one_seed():
    best = _point("adamw / full", [48.0, 49.9, 51.1])
    assert separation(best, _point("sgd / full", [50.0, 52.0, 53.0])) == pytest.approx(
        {"kind": "paired", "n": 3, "diff": -2.0, "ci": 0.2484, "separated": True}, abs=1e-3)
    assert not separation(best, _point("sgd / full", [50.0, 49.0, 54.0]))["separated"]
    other_seeds = _point("sgd / full", [47.0, 48.0, 49.0], seeds=[3, 4, 5])  # 48 ± 2.5
    assert separation(_point("adamw / full", [40.0, 41.0, 42.0]), other_seeds) == {"kind": "unpaired", "separated": True}
    assert not separation(_point("adamw / full", [43.0, 44.0, 45.0]), other_seeds)["separated"]  # 44 ± 2.5
    assert separation(_point("adamw / full", [40.0]), _point("sgd / full", [50.0]))["kind"] == "one seed"


def test_sentences_name_the_pair_the_margin_and_the_verdict():
    best, second = _point("adamw / full", [48.0, 49.9, 51.1], [30.0, 31.0, 32.0]), _point(
        "adamw / freeze:embedding", [50.0, 52.0, 53.0], [5.0, 6.0, 7.0])
    best.pareto = second.pareto = True
    first, front = strategy_sentences("molecular", [second, best])
    assert first.startswith("molecular: best pair by id force MAE: adamw / full (lr 0.001), 49.7 ± 3.9 meV/Å")
    assert "2.0 meV/Å (4%) below the runner-up adamw / freeze:embedding (lr 0.001)" in first
    assert "difference is -2.0 ± 0.2 meV/Å (95% CI): the intervals separate." in first
    assert "least forgetting on it: adamw / freeze:embedding (lr 0.001), drift 6.0 ± 2.5 meV/Å" in front
    close = strategy_sentences("molecular", [_point("adamw / full", [48.0, 50.0, 51.0]),
                                             _point("sgd / full", [50.0, 49.0, 54.0])])[0]
    assert "the intervals do not separate, so the ranking is not settled" in close
    single = strategy_sentences("molecular", [_point("adamw / full", [48.0]), _point("sgd / full", [50.0])])[0]
    assert single.endswith("; one seed: no interval.")


def test_a_study_without_strategies_reads_as_before(tmp_path):
    plain = {k: v for k, v in PAIRS.items() if k[1] == "full"}
    without = build_report(write_study(tmp_path / "without", plain, strategy_column=False))
    explicit = build_report(write_study(tmp_path / "full", plain))
    md = without["md"].read_text()
    assert "strategy" not in md and "drift (meV/Å)" not in md and "Pareto" not in md
    assert not (without["figures"] / "accuracy_forgetting.png").exists()
    assert md == explicit["md"].read_text()  # a `strategy` column of 'full' everywhere is no strategy axis
    assert StudyData(tmp_path / "without").optimizers == ["adamw", "schedulefree"]


def test_failed_seeds_and_no_forgetting_are_said(tmp_path):
    folder = write_study(tmp_path / "study", {k: v for k, v in PAIRS.items() if k[0] == "adamw"})
    study = StudyDir(folder)
    for path in study.forgetting_path("x").parent.glob("*.json"):
        path.unlink()
    failed = study.trial("molecular-adamw-replay_0.25-1").results_path
    write_json(failed, {"status": "diverged", "steps": 3, "wall_time_s": 1.0, "metrics": {}})
    data = StudyData(folder)
    _, _, body = next(t for t in tables(data) if "strategy x optimizer" in t[0])
    assert body[2] == ["replay:0.25", "55.0; drift – (1 of 2 seeds failed)"]
    text = " ".join(strategy_sentences("molecular", panels(data)["molecular"]))
    assert "no probe-set forgetting measured, so no accuracy-forgetting Pareto front" in text
    assert build_report(folder)["md"].read_text().count("accuracy_forgetting") == 0
