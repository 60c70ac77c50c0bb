import pytest
import torch

# One thread per test process: on a shared CPU, torch's default thread pool oversubscribes the
# cores and makes the tiny CHGNet calls of these tests an order of magnitude slower.
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def chgnet():
    """The real pretrained CHGNet as an ASE calculator (weights ship in the wheel)."""
    from optbench.backbones import load_calculator

    return load_calculator("chgnet")
