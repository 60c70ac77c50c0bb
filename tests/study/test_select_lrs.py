"""`select_lrs`: the fairness of every study. Each optimizer's LR is chosen from its own grid by
the mean validation loss over seeds; failed seeds disqualify an LR; ties go to the smaller LR."""

from __future__ import annotations

import math

import pytest

from optbench.config import FinetuneConfig
from optbench.study.aggregate import grid_edge
from optbench.study.runner import select_lrs, valid_loss
from optbench.study.trials import Trial


def trial(lr: float, seed: int = 0, optimizer: str = "adamw", dataset: str = "d", backbone: str = "chgnet") -> Trial:
    config = FinetuneConfig(train="/data/train.xyz", optimizer=optimizer, lr=lr, seed=seed)
    return Trial(dataset, "molecular", backbone, optimizer, lr, seed, config)


def done(loss: float | None) -> dict:
    return {"status": "completed", "valid_loss": loss}


def pick(rows: list[tuple[Trial, dict]]) -> dict[tuple, float]:
    return select_lrs([t for t, _ in rows], [r for _, r in rows])


def test_the_lowest_mean_over_seeds_wins_not_the_best_single_seed():
    rows = [(trial(1e-3, 0), done(1.0)), (trial(1e-3, 1), done(3.0)),  # mean 2.0, best single seed
            (trial(1e-4, 0), done(1.5)), (trial(1e-4, 1), done(1.5))]  # mean 1.5
    assert pick(rows) == {("d", "chgnet", "adamw"): 1e-4}


def test_each_optimizer_dataset_and_backbone_is_chosen_on_its_own_grid():
    rows = [(trial(1e-3), done(1.0)), (trial(1e-2), done(2.0)),
            (trial(1e-3, optimizer="sgd"), done(5.0)), (trial(1e-1, optimizer="sgd"), done(4.0)),
            (trial(1e-3, dataset="e"), done(9.0)), (trial(1e-2, dataset="e"), done(8.0)),
            (trial(1e-3, backbone="mace"), done(0.5)), (trial(1e-2, backbone="mace"), done(0.4))]
    assert pick(rows) == {("d", "chgnet", "adamw"): 1e-3, ("d", "chgnet", "sgd"): 1e-1,
                          ("e", "chgnet", "adamw"): 1e-2, ("d", "mace", "adamw"): 1e-2}


def test_a_tie_goes_to_the_smaller_lr_whatever_the_order():
    rows = [(trial(1e-2), done(1.0)), (trial(1e-3), done(1.0)), (trial(1e-1), done(2.0))]
    assert pick(rows) == pick(rows[::-1]) == {("d", "chgnet", "adamw"): 1e-3}


@pytest.mark.parametrize("failure", [{"status": "diverged", "valid_loss": 0.1}, {"status": "crashed", "error": "x"},
                                     done(None), done(math.nan), done(math.inf), None])
def test_an_lr_with_a_failed_seed_is_never_chosen_over_one_whose_seeds_all_completed(failure):
    rows = [(trial(1e-2, 0), done(0.1)), (trial(1e-2, 1), failure),  # best loss, but one seed failed
            (trial(1e-3, 0), done(5.0)), (trial(1e-3, 1), done(5.0))]
    assert pick(rows) == {("d", "chgnet", "adamw"): 1e-3}
    assert valid_loss(failure) == math.inf


def test_when_every_lr_failed_the_smallest_is_kept_for_the_record():
    rows = [(trial(1e-1), {"status": "diverged", "valid_loss": 0.1}), (trial(1e-2), {"status": "crashed"})]
    assert pick(rows) == {("d", "chgnet", "adamw"): 1e-2}


def test_the_choice_can_sit_at_either_edge_of_the_grid_and_says_so():
    grid = [1e-4, 1e-3, 1e-2]
    for best, edge in ((1e-4, "lowest"), (1e-3, None), (1e-2, "highest")):
        rows = [(trial(lr), done(0.5 if lr == best else 1.0)) for lr in grid]
        chosen = pick(rows)[("d", "chgnet", "adamw")]
        assert chosen == best and grid_edge(chosen, grid) == edge
    assert grid_edge(1e-3, [1e-3]) == "only"


def test_trials_and_results_must_pair_up():
    with pytest.raises(ValueError):
        select_lrs([trial(1e-3), trial(1e-2)], [done(1.0)])
