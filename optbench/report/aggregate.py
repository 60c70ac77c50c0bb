"""Aggregate stored trial results: one row per trial, seed statistics, comparisons, profiles.

Everything is read from the study folder, so a report can be rebuilt from stored results alone.
Errors: forces meV/Å, energies meV/atom; times s.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from optbench.io import read_json
from optbench.layout import RunDir, StudyDir, checkpoint_key
from optbench.report.labels import FULL_STRATEGY, arm_label, strategy_of
from optbench.report.stats import holm, mean_ci, paired_test

__all__ = ["STUDY_JSON", "StudyData", "flatten", "forgetting_columns", "grid_edge", "holm", "mean_ci", "paired_test",
           "refinement_by_pair"]

STUDY_JSON = StudyDir.INDEX  # its old import path


def grid_edge(lr: float, grid: list[float]) -> str | None:
    """'lowest' / 'highest' when `lr` sits at that end of its grid, 'only' for a one-LR grid, else None."""
    grid = sorted(set(grid))
    if len(grid) == 1:
        return "only"
    return "lowest" if lr == grid[0] else "highest" if lr == grid[-1] else None


def flatten(prefix: str, obj, out: dict) -> dict:
    if isinstance(obj, dict):
        for k, v in obj.items():
            flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    elif isinstance(obj, (int, float, str, bool)) or obj is None:
        out[prefix] = obj
    return out


class StudyData:
    """Everything the report needs, read from a study folder."""

    by_strategy = False  # True in a study with a strategy axis (set from the rows in __init__)

    def __init__(self, folder: str | Path):
        self.study = StudyDir(folder)
        self.folder = self.study.path
        self.index = self.study.index()
        self.rows = [self._row(t.row, t.run) for t in self.study.trials()]
        # a study with a strategy axis (more than one strategy, or one that is not 'full') compares
        # (optimizer, strategy) pairs: every view below groups by `arm(row)` instead of the optimizer
        self.by_strategy = any(strategy_of(r) != FULL_STRATEGY for r in self.rows)
        self.reference = self._reference(self.index.get("reference_optimizer", "adamw"))

    def arm(self, row: dict) -> str:
        """What the report compares: the optimizer, or 'optimizer / strategy' in a study with strategies."""
        return arm_label(row["optimizer"], strategy_of(row)) if self.by_strategy else row["optimizer"]

    def _reference(self, optimizer: str) -> str:
        """The reference arm: the reference optimizer, with the 'full' strategy where there are strategies."""
        full = arm_label(optimizer, FULL_STRATEGY)
        arms = [self.arm(r) for r in self.rows if r["optimizer"] == optimizer]
        return optimizer if not self.by_strategy else full if full in arms or not arms else arms[0]

    # ---- per trial
    def run_dir(self, key: str) -> Path:
        return self.study.trial(key).path

    def _row(self, plan: dict, run: RunDir) -> dict:
        row = dict(plan)
        res, crash = run.results(), run.crash()
        row["status"] = res["status"] if res else ("crashed" if crash else "missing")
        row["error"] = crash["error"] if crash and not res else None
        if res:
            row["steps"] = res["steps"]
            row["wall_time_s"] = res["wall_time_s"]
            flatten("", res["metrics"], row)
            if "refine" in res:
                row["refine.status"] = res["refine"]["status"]
        fg = self.study.forgetting_path(plan["trial"])
        if fg.exists():
            row.update(forgetting_columns(read_json(fg)))
        for prefix, key in (("property", plan["trial"]), ("property_final", checkpoint_key(plan["trial"], "final"))):
            for prop in self.study.property_files(plan["dataset"], key):  # property_final: before the refinement
                err = read_json(prop.path).get("error_vs_reference")
                if isinstance(err, dict):
                    flatten(f"{prefix}.{prop.structure}.{prop.name}", err, row)
        files = self.study.curvature_files(plan["trial"])
        for checkpoint, path in files:
            data = read_json(path)
            flatten(f"curvature.{checkpoint}", _curvature_summary(data), row)
            if checkpoint == "refined" and "final" not in dict(files) and isinstance(data.get("before_refinement"), dict):
                flatten("curvature.final", _curvature_summary(data["before_refinement"]), row)  # the same analysis
        return row

    def curve(self, key: str) -> list[dict]:
        return self.study.trial(key).metrics()

    # ---- views
    @property
    def datasets(self) -> list[str]:
        return list(dict.fromkeys(r["dataset"] for r in self.rows))

    @property
    def optimizers(self) -> list[str]:
        """The compared arms in order: optimizers, or 'optimizer / strategy' pairs (see `arm`)."""
        return list(dict.fromkeys(self.arm(r) for r in self.rows))

    def selected(self, dataset: str | None = None, optimizer: str | None = None) -> list[dict]:
        return [r for r in self.rows if r.get("selected") and (dataset is None or r["dataset"] == dataset)
                and (optimizer is None or self.arm(r) == optimizer)]

    def test_sets(self, dataset: str) -> dict[str, str]:
        """Test-set name -> ID/OOD tag."""
        return self.index["datasets"][dataset]["tags"]

    def summary(self, stage: str = "final") -> list[dict]:
        """Per dataset, backbone, optimizer (selected LR): mean and CI over seeds of each error."""
        out = []
        for ds in self.datasets:
            for bb in dict.fromkeys(r["backbone"] for r in self.rows):
                for opt in self.optimizers:
                    rows = [r for r in self.selected(ds, opt) if r["backbone"] == bb]
                    if not rows:
                        continue
                    grid = self.lr_grid(ds, bb, opt)
                    entry = {"dataset": ds, "backbone": bb, "optimizer": opt, "lr": rows[0]["lr"], "lr_grid": grid,
                             "lr_edge": grid_edge(rows[0]["lr"], grid),
                             "n_seeds": len(rows), "diverged": sum(r["status"] != "completed" for r in rows)}
                    for name, tag in self.test_sets(ds).items():
                        for metric in ("forces_mae", "energy_mae"):
                            entry[f"{tag}:{name}:{metric}"] = mean_ci(r.get(f"{stage}.{name}.{metric}") for r in rows)
                    entry["wall_time_s"] = mean_ci(r.get("wall_time_s") for r in rows)
                    out.append(entry)
        return out

    def lr_grid(self, dataset: str, backbone: str, optimizer: str) -> list[float]:
        """The learning rates tried for one optimizer (ascending)."""
        return sorted({r["lr"] for r in self.rows if r["dataset"] == dataset and r["backbone"] == backbone
                       and self.arm(r) == optimizer})

    def by_seed(self, metric_key: str, dataset: str, optimizer: str) -> dict:
        """(backbone, seed) -> one metric of the completed selected trials of one optimizer."""
        return self._by_seed(metric_key, dataset, optimizer)

    def _by_seed(self, metric_key: str, dataset: str, optimizer: str) -> dict:
        return {(r["backbone"], r["seed"]): r.get(metric_key) for r in self.selected(dataset, optimizer)
                if r["status"] == "completed"}

    def paired(self, metric_key: str, dataset: str) -> list[dict]:
        """Paired differences (optimizer - reference) over seeds of one metric: t-test, Holm-adjusted
        over the comparisons with the reference (significant: adjusted p < 0.05)."""
        ref = self._by_seed(metric_key, dataset, self.reference)
        out = [{"optimizer": opt, **paired_test(self._by_seed(metric_key, dataset, opt), ref)}
               for opt in self.optimizers if opt != self.reference]
        for entry, p in zip(out, holm([e["p_value"] for e in out])):
            entry["p_holm"] = p
            entry["significant"] = p is not None and p < 0.05
            entry["separated"] = entry["significant"]  # old name
        return out

    def pairwise(self, metric_key: str, dataset: str) -> dict[tuple[str, str], dict]:
        """Paired t-tests over seeds for every pair of optimizers (a - b), Holm-adjusted over all pairs."""
        opts = [o for o in self.optimizers if self.selected(dataset, o)]
        vals = {o: self._by_seed(metric_key, dataset, o) for o in opts}
        pairs = {(a, b): paired_test(vals[a], vals[b]) for i, a in enumerate(opts) for b in opts[i + 1:]}
        for test, p in zip(pairs.values(), holm([t["p_value"] for t in pairs.values()])):
            test["p_holm"] = p
        return {**pairs, **{(b, a): {**t, "mean_diff": None if t["mean_diff"] is None else -t["mean_diff"]}
                            for (a, b), t in pairs.items()}}

    def performance_profile(self, taus=None) -> dict:
        """Dolan-Moré profile: share of problems where an optimizer is within tau of the best."""
        taus = np.linspace(1, 4, 61) if taus is None else np.asarray(taus)
        problems: dict[tuple, dict[str, float]] = {}
        for r in self.rows:
            if not r.get("selected"):
                continue
            for name in self.test_sets(r["dataset"]):
                for metric in ("forces_mae", "energy_mae"):
                    v = r.get(f"final.{name}.{metric}")
                    if v is None or r["status"] != "completed":
                        v = math.inf
                    problems.setdefault((r["dataset"], r["backbone"], r["seed"], name, metric), {})[self.arm(r)] = v
        ratios: dict[str, list[float]] = {o: [] for o in self.optimizers}
        for vals in problems.values():
            best = min(vals.values())
            for o in self.optimizers:
                v = vals.get(o, math.inf)
                ratios[o].append(v / best if best > 0 and math.isfinite(best) else math.inf)
        curves = {o: [float(np.mean(np.asarray(r) <= t)) for t in taus] for o, r in ratios.items() if r}
        return {"tau": taus.tolist(), "curves": curves, "n_problems": len(problems)}

    def time_to_target(self, dataset: str) -> list[dict]:
        """Per (optimizer, seed): steps and seconds to reach the reference optimizer's best validation
        force MAE of the same seed (None when never reached)."""
        out = []
        ref_rows = {(r["backbone"], r["seed"]): r for r in self.selected(dataset, self.reference)}
        for r in self.selected(dataset):
            ref = ref_rows.get((r["backbone"], r["seed"]))
            if ref is None:
                continue
            ref_curve = [x["valid_forces_mae"] for x in self.curve(ref["trial"]) if x.get("valid_forces_mae") is not None]
            if not ref_curve:
                continue
            target = min(ref_curve)
            hit = next((x for x in self.curve(r["trial"]) if x.get("valid_forces_mae") is not None
                        and x["valid_forces_mae"] <= target), None)
            out.append({"optimizer": self.arm(r), "backbone": r["backbone"], "seed": r["seed"], "target_meV_A": target,
                        "steps": hit["step"] if hit else None, "seconds": hit["elapsed_s"] if hit else None})
        return out

    def time_to_target_summary(self, dataset: str) -> list[dict]:
        """Per optimizer: seeds that reached the target, and mean ± 95% CI over those seeds of steps and seconds."""
        per: dict[str, list[dict]] = {}
        for t in self.time_to_target(dataset):
            per.setdefault(t["optimizer"], []).append(t)
        out = []
        for opt, ts in per.items():
            hit = [t for t in ts if t["steps"] is not None]
            out.append({"optimizer": opt, "n_seeds": len(ts), "n_reached": len(hit),
                        "steps": mean_ci(t["steps"] for t in hit), "seconds": mean_ci(t["seconds"] for t in hit),
                        "target_meV_A": mean_ci(t["target_meV_A"] for t in ts)})
        return out

    def refinement_gain(self, dataset: str) -> list[dict]:
        """Change of each test error from first-order 'final' to L-BFGS 'refined' (negative = better)."""
        out = []
        for r in self.selected(dataset):
            for name, tag in self.test_sets(dataset).items():
                a, b = r.get(f"final.{name}.forces_mae"), r.get(f"refined.{name}.forces_mae")
                if a is not None and b is not None:
                    out.append({"optimizer": self.arm(r), "seed": r["seed"], "set": name, "tag": tag,
                                "final": a, "refined": b, "change_pct": 100 * (b - a) / a})
        return out


def forgetting_columns(data: dict) -> dict:
    """`forgetting_energy_*` (meV/atom) and `forgetting_forces_*` (meV/Å) columns of one trial; the
    old `forgetting.force_rms_meV_A` / `forgetting.energy_rms_meV_atom` stay as aliases of the probe set's."""
    from optbench.forgetting import PROBE, columns

    if PROBE not in data:  # a study folder written before the probe set: old flat names only
        return flatten("forgetting", data, {})
    out = columns(data)
    out["forgetting.force_rms_meV_A"] = data[PROBE]["forces_rms_meV_A"]
    out["forgetting.energy_rms_meV_atom"] = data[PROBE]["energy_rms_meV_atom"]
    return out


def refinement_by_pair(gains: list[dict]) -> list[dict]:
    """`refinement_gain` rows averaged over seeds: one row per (optimizer, test set) pair."""
    pairs: dict[tuple, list[dict]] = {}
    for g in gains:
        pairs.setdefault((g["optimizer"], g["set"]), []).append(g)
    return [{"optimizer": o, "set": name, "n_seeds": len(gs), "change_pct": float(np.mean([g["change_pct"] for g in gs]))}
            for (o, name), gs in pairs.items()]


def _curvature_summary(data: dict) -> dict:
    """Scalars of a curvature.json worth a column: extreme eigenvalues, condition numbers (null with
    their `*_reason` when the Ritz values did not converge), trace."""
    def keep(key: str, v) -> bool:
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return True
        return key.startswith("condition_number") and (v is None or isinstance(v, str))

    out = {}
    for key, value in data.items():
        if keep(key, value):
            out[key] = value
        elif isinstance(value, dict):
            for k2, v2 in value.items():
                if keep(k2, v2):
                    out[f"{key}.{k2}"] = v2
    return out
