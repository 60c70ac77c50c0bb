import pytest


@pytest.fixture(scope="session")
def chgnet():
    """The real pretrained CHGNet as an ASE calculator (weights ship in the wheel)."""
    from optbench.backbones import load_calculator

    return load_calculator("chgnet")
