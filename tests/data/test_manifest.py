"""Manifest reading: clear errors naming the file and the field."""

from __future__ import annotations

import json
import shutil

import pytest

from optbench.data import dataset_files, load_manifest, suite_path
from optbench.errors import InputError


@pytest.fixture
def copy(tmp_path):
    dst = tmp_path / "mol"
    shutil.copytree(suite_path("molecular"), dst)
    return dst


def _edit(folder, change):
    path = folder / "manifest.json"
    man = json.loads(path.read_text())
    change(man)
    path.write_text(json.dumps(man))


def test_not_a_dataset_folder(tmp_path):
    with pytest.raises(InputError, match="no manifest.json"):
        load_manifest(tmp_path)


def test_missing_field_is_named(copy):
    _edit(copy, lambda m: m.pop("keys"))
    with pytest.raises(InputError, match="field 'keys'"):
        load_manifest(copy)


def test_bad_tag_and_missing_file(copy):
    _edit(copy, lambda m: m["splits"]["ood_scan"].update(tag="weird"))
    with pytest.raises(InputError, match="splits.ood_scan.tag"):
        load_manifest(copy)
    _edit(copy, lambda m: m["splits"]["ood_scan"].update(tag="OOD"))
    (copy / "valid.extxyz").unlink()
    with pytest.raises(InputError, match="splits.valid.file"):
        load_manifest(copy)


def test_changed_file_fails_verification(copy):
    with open(copy / "train.extxyz", "a") as fh:
        fh.write("\n")
    load_manifest(copy)  # without verify: only structure checks
    with pytest.raises(InputError, match="sha256") as err:
        load_manifest(copy, verify=True)
    assert "train.extxyz" in str(err.value)


def test_suite_path_and_files():
    with pytest.raises(InputError, match="unknown regime"):
        suite_path("plasma")
    files = dataset_files(suite_path("liquid"))
    assert files.train.name == "train.extxyz" and files.valid.name == "valid.extxyz"
    assert set(files.tests) == {"test_id", "ood_400K", "ood_dense"}
