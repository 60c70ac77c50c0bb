"""The refinement's closure memo: L-BFGS takes bitwise the same steps with it as when every call
evaluates, with fewer evaluations; a NaN weight still matches its own bits."""

from __future__ import annotations

import torch

from optbench.run.refine import _Memo, _same_bits


def _lbfgs_run(memo: bool, steps: int = 6):
    torch.manual_seed(0)
    w = torch.nn.Parameter(torch.randn(40))
    a = torch.randn(40, 40)
    a = a @ a.T / 40
    opt = torch.optim.LBFGS([w], lr=1.0, max_iter=1, max_eval=10, history_size=20, line_search_fn="strong_wolfe")
    calls = []

    def closure():
        opt.zero_grad(set_to_none=True)
        loss = 0.5 * w @ a @ w + torch.sin(3 * w).sum()
        loss.backward()
        calls.append(1)
        return loss.detach()

    fn = _Memo([w], closure) if memo else closure
    losses = []
    for _ in range(steps):
        if memo:
            fn.next_step()
        losses.append(float(opt.step(fn)))
    losses.append(float(fn()))
    return losses, w.detach().clone(), len(calls)


def test_memo_takes_the_same_steps_with_fewer_evaluations():
    plain_losses, plain_w, plain_calls = _lbfgs_run(memo=False)
    memo_losses, memo_w, memo_calls = _lbfgs_run(memo=True)
    assert memo_losses == plain_losses
    assert torch.equal(memo_w, plain_w)
    assert memo_calls <= plain_calls - 6  # each later step's opening closure and the final loss were repeats


def test_memo_restores_gradients_and_compares_bits():
    w = torch.nn.Parameter(torch.tensor([1.0, float("nan")]))
    evaluations = []

    def closure():
        w.grad = torch.tensor([2.0, 3.0])
        evaluations.append(1)
        return torch.tensor(5.0)

    memo = _Memo([w], closure)
    assert float(memo()) == 5.0
    w.grad = None
    assert float(memo()) == 5.0 and len(evaluations) == 1  # NaN weights: same bits, one evaluation
    assert torch.equal(w.grad, torch.tensor([2.0, 3.0]))
    with torch.no_grad():
        w[0] = 1.5
    memo()
    assert len(evaluations) == 2
    assert _same_bits(torch.tensor([0.0]), torch.tensor([0.0])) and not _same_bits(torch.tensor([0.0]), torch.tensor([-0.0]))
