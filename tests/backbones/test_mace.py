"""MACE specs: local files, MACE-MP from the cache, a clear error when a download is impossible."""

from __future__ import annotations

import os
import shutil
import time

import pytest
import torch
from ase.build import bulk

from optbench.backbones import load_backbone
from optbench.backbones import mace as mace_adapter
from optbench.errors import InputError


@pytest.fixture
def empty_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "mace"


def _cached_name(size: str) -> str:
    from mace.calculators.foundations_models import mace_mp_urls

    return "".join(c for c in os.path.basename(mace_mp_urls[size]) if c.isalnum() or c == "_")


def test_mace_mp_offline_fails_at_once_naming_the_local_path_option(empty_cache, monkeypatch):
    import mace.calculators  # noqa: F401  (import time is not what is measured)

    monkeypatch.setattr(mace_adapter, "_PROBE", ("127.0.0.1", 9))  # a closed port: no network
    for spec in ("mace-mp-small", "mace-mp-medium"):
        start = time.perf_counter()
        with pytest.raises(InputError, match="mace:PATH"):
            load_backbone(spec)
        assert time.perf_counter() - start < 5
    assert not empty_cache.exists() or not any(empty_cache.iterdir())  # nothing half-downloaded


def test_mace_mp_uses_the_cached_file_without_network(empty_cache, small_mace_file, monkeypatch):
    monkeypatch.setattr(mace_adapter, "_PROBE", ("127.0.0.1", 9))
    empty_cache.mkdir(parents=True)
    shutil.copy(small_mace_file, empty_cache / _cached_name("small"))
    bb = load_backbone("mace-mp-small")
    ref = load_backbone(f"mace:{small_mace_file}")
    atoms = bulk("Si", "diamond", a=5.43)
    assert bb.source == "mace-mp-small"
    assert bb.calculator().get_potential_energy(atoms) == ref.calculator().get_potential_energy(atoms)


def test_bad_mace_specs_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="unknown MACE-MP model"):
        load_backbone("mace-mp-gigantic")
    with pytest.raises(InputError, match="not found") as err:
        load_backbone(f"mace:{tmp_path / 'missing.model'}")
    assert err.value.file.endswith("missing.model")
    torch.save({"weights": torch.zeros(3)}, tmp_path / "dict.model")
    with pytest.raises(InputError, match="not a MACE model"):
        load_backbone(f"mace:{tmp_path / 'dict.model'}")
    (tmp_path / "junk.model").write_text("junk")
    with pytest.raises(InputError, match="not a MACE model file"):
        load_backbone(f"mace:{tmp_path / 'junk.model'}")


def test_unknown_head_is_an_input_error(small_mace_file):
    with pytest.raises(InputError, match="no head 'surface'"):
        load_backbone(f"mace:{small_mace_file}@surface")
    assert load_backbone(f"mace:{small_mace_file}@Default").head == "Default"


def test_float32_model_featurizes_in_its_own_dtype(tmp_path, small_mace_file):
    model = torch.load(small_mace_file, weights_only=False).float()
    torch.save(model, tmp_path / "f32.model")
    bb = load_backbone(f"mace:{tmp_path / 'f32.model'}")
    graph = bb.featurize(bulk("Si", "diamond", a=5.43))
    assert graph["positions"].dtype == torch.float32
    with torch.enable_grad():
        assert bb.predict([graph], stress=True).energy.dtype == torch.float32


def test_a_path_with_an_at_sign_is_a_path_not_a_head(tmp_path, small_mace_file):
    odd = tmp_path / "user@host" / "small.model"
    odd.parent.mkdir()
    shutil.copy(small_mace_file, odd)
    assert load_backbone(f"mace:{odd}").head == "Default"
