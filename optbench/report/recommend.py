"""The report's sentences: who wins what, by how much, what a paired test over seeds says about it."""

from __future__ import annotations

import math

from optbench.report.aggregate import StudyData, refinement_by_pair
from optbench.report.strategy_axis import Point, panels, ranked, separation


def never_completed(data: StudyData, dataset: str) -> dict[str, list[str]]:
    """Optimizers none of whose trials on `dataset` completed -> the statuses of their trials."""
    by_opt: dict[str, list[str]] = {}
    for r in data.rows:
        if r["dataset"] == dataset:
            by_opt.setdefault(data.arm(r), []).append(r["status"])
    return {opt: st for opt, st in by_opt.items() if "completed" not in st}


def _failed_sentence(dataset: str, failed: dict[str, list[str]]) -> str:
    parts = [f"{opt} ({', '.join(f'{st.count(s)} {s}' for s in dict.fromkeys(st))})" for opt, st in failed.items()]
    return f"{dataset}: every trial of {'; '.join(parts)} failed; not ranked."


EDGE = {"lowest": "the lowest of its grid", "highest": "the highest of its grid", "only": "the only LR tried"}


def _named(entry: dict) -> str:
    """'adam (lr 0.001)', or with the grid edge it sits on: 'adam (lr 0.004, the highest of its grid)'."""
    edge = entry.get("lr_edge")
    return f"{entry['optimizer']} (lr {entry['lr']:g}{'' if edge is None else ', ' + EDGE[edge]})"


def _seeds(n: int) -> str:
    return f"{n} seed" + ("" if n == 1 else "s")


def _verdict(test: dict | None) -> str:
    """What the paired test over seeds says about a ranking of two optimizers."""
    if test is None or test["n"] < 2:
        return "a single seed, so no test backs the ranking"
    if test["p_holm"] is None:
        return f"the {test['n']} paired seeds give identical differences, so no test is possible"
    sig = "significant" if test["p_holm"] < 0.05 else "not significant, so the ranking is not settled"
    return (f"paired t-test over {test['n']} seeds, Holm-adjusted over all optimizer pairs: p = {test['p_holm']:.3g}, "
            f"{sig} at the 5% level")


def _ranking(data: StudyData, ds: str, rows: list[dict], name: str, tag: str) -> list[str]:
    key = f"{tag}:{name}:forces_mae"
    ranked = sorted((r for r in rows if r.get(key, {}).get("mean") is not None), key=lambda r: r[key]["mean"])
    if len(ranked) < 2:
        return []
    best, second, worst = ranked[0], ranked[1], ranked[-1]
    tests = data.pairwise(f"final.{name}.forces_mae", ds)
    margin = second[key]["mean"] - best[key]["mean"]
    rel = 100 * margin / second[key]["mean"] if second[key]["mean"] else 0.0
    out = [f"{ds}, {tag} set '{name}': {_named(best)} gives the lowest force MAE (mean over {_seeds(best[key]['n'])}), "
           f"{best[key]['mean']:.1f} meV/Å, {margin:.1f} meV/Å ({rel:.0f}%) below {_named(second)}; "
           f"{_verdict(tests.get((best['optimizer'], second['optimizer'])))}.",
           f"{ds}, {tag} set '{name}': {_named(worst)} is last at {worst[key]['mean']:.1f} meV/Å "
           f"({worst[key]['mean'] / best[key]['mean']:.1f}x the best; "
           f"{_verdict(tests.get((worst['optimizer'], best['optimizer'])))})."]
    return out


def _time_to_target(data: StudyData, ds: str, rows: list[dict]) -> list[str]:
    ttt = [t for t in data.time_to_target_summary(ds) if t["optimizer"] != data.reference]
    if not ttt:
        return []
    out = []
    everywhere = sorted((t for t in ttt if t["n_reached"] == t["n_seeds"]), key=lambda t: t["steps"]["mean"])
    if everywhere:
        t = everywhere[0]
        entry = next((r for r in rows if r["optimizer"] == t["optimizer"]), {"optimizer": t["optimizer"], "lr": math.nan})
        if t["steps"]["ci"] is None:
            spread = f"{_seeds(t['n_seeds'])}, so no interval"
            steps, secs = f"{t['steps']['mean']:.0f}", f"{t['seconds']['mean']:.0f}"
        else:
            spread = f"mean ± 95% CI over {_seeds(t['n_seeds'])}"
            steps = f"{t['steps']['mean']:.0f} ± {t['steps']['ci']:.0f}"
            secs = f"{t['seconds']['mean']:.0f} ± {t['seconds']['ci']:.0f}"
        out.append(f"{ds}: of the optimizers that reach {data.reference}'s best validation force error in every seed, "
                   f"{_named(entry)} needs the fewest steps: {steps} steps, {secs} s ({spread}).")
    partial = sorted(f"{t['optimizer']} ({t['n_reached']} of {_seeds(t['n_seeds'])})" for t in ttt if t["n_reached"] < t["n_seeds"])
    if partial:
        out.append(f"{ds}: do not reach {data.reference}'s best validation force error within the budget in every seed: "
                   f"{', '.join(partial)}.")
    return out


def recommendations(data: StudyData) -> list[str]:
    """Sentences drawn from the numbers: who wins what, by how much, what a paired test over seeds
    (Holm-corrected) says about it, and whether the LR chosen sits at an edge of its grid. An optimizer
    with no completed trial on a dataset is named as failed there and never ranked."""
    out = []
    summary = data.summary()
    by_strategy = panels(data)
    for ds in data.datasets:
        failed = never_completed(data, ds)
        if failed:
            out.append(_failed_sentence(ds, failed))
        for title, points in by_strategy.items():
            if points[0].dataset == ds:
                out += strategy_sentences(title, points)
        rows = [s for s in summary if s["dataset"] == ds and s["optimizer"] not in failed]
        for name, tag in data.test_sets(ds).items():
            out += _ranking(data, ds, rows, name, tag)
        edges = [_named(r) for r in rows if r.get("lr_edge")]
        if edges:
            out.append(f"{ds}: LR chosen at an edge of its grid (or the only one tried), so a better LR may lie "
                       f"outside it: {', '.join(edges)}.")
        diverged = [r["optimizer"] for r in rows if r["diverged"]]
        if diverged:
            out.append(f"{ds}: unstable at the chosen LR: {', '.join(diverged)} diverged in at least one seed.")
        out += _time_to_target(data, ds, rows)
        pairs = refinement_by_pair(data.refinement_gain(ds))
        if pairs:
            better = sum(g["change_pct"] < 0 for g in pairs)
            mean = sum(g["change_pct"] for g in pairs) / len(pairs)
            out.append(f"{ds}: L-BFGS refinement lowered the seed-mean force MAE in {better} of {len(pairs)} "
                       f"optimizer/test-set pairs (mean change {mean:+.1f}%).")
    return out


def _pair(p: Point) -> str:
    return f"{p.label} (lr {p.lr:g})"


def _mean(stat: dict) -> str:
    return f"{stat['mean']:.1f}" + ("" if stat["ci"] is None else f" ± {stat['ci']:.1f}")


def _separate(sep: dict) -> str:
    """What the 95% intervals say about the ranking of the best pair over the runner-up."""
    if sep["kind"] == "one seed":
        return "one seed: no interval"
    verdict = "the intervals separate" if sep["separated"] else "the intervals do not separate, so the ranking is not settled"
    if sep["kind"] == "paired":
        return f"paired over {sep['n']} seeds the difference is {sep['diff']:+.1f} ± {sep['ci']:.1f} meV/Å (95% CI): {verdict}"
    return f"the seeds differ, so unpaired 95% intervals: {verdict}"


def strategy_sentences(title: str, points: list[Point]) -> list[str]:
    """The best (optimizer, strategy) pair by force MAE, its margin to the runner-up and whether their
    95% intervals separate (paired over seeds where both have the same seeds); the Pareto front of
    accuracy against forgetting and the pair on it that forgets least."""
    out = []
    order = ranked(points)
    if len(order) >= 2:
        best, second = order[0], order[1]
        margin = second.accuracy["mean"] - best.accuracy["mean"]
        rel = 100 * margin / second.accuracy["mean"] if second.accuracy["mean"] else 0.0
        out.append(f"{title}: best pair by {best.test_set} force MAE: {_pair(best)}, {_mean(best.accuracy)} meV/Å "
                   f"(over {_seeds(best.accuracy['n'])}), {margin:.1f} meV/Å ({rel:.0f}%) below the runner-up "
                   f"{_pair(second)}; {_separate(separation(best, second))}.")
    front = [p for p in order if p.pareto]
    if not front:
        return out + ([f"{title}: no probe-set forgetting measured, so no accuracy-forgetting Pareto front."]
                      if order else [])
    least = min(front, key=lambda p: p.forgetting["mean"])
    if len(front) == 1:
        return out + [f"{title}: {_pair(least)} alone forms the accuracy-forgetting Pareto front: no pair has a lower "
                      f"force MAE or a lower probe-set force drift ({_mean(least.forgetting)} meV/Å)."]
    names = ", ".join(f"{p.label} ({p.accuracy['mean']:.1f}, {p.forgetting['mean']:.1f})" for p in front)
    return out + [f"{title}: accuracy-forgetting Pareto front (force MAE, probe-set force drift; meV/Å): {names}; "
                  f"least forgetting on it: {_pair(least)}, drift {_mean(least.forgetting)} meV/Å at force MAE "
                  f"{_mean(least.accuracy)} meV/Å."]
