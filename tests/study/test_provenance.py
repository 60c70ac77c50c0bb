"""The study record carries versions, device, threads and the command; every trial keeps its log."""

from __future__ import annotations

import json
import platform
from importlib import metadata

import torch

import optbench


def test_study_json_records_provenance_and_trials_keep_a_log(sequential):
    study, out = sequential
    prov = json.loads((out / "study.json").read_text())["provenance"]
    assert prov["versions"]["optbench"] == optbench.__version__
    assert prov["versions"]["torch"] == torch.__version__
    assert prov["versions"]["python"] == platform.python_version()
    assert prov["versions"]["chgnet"] == metadata.version("chgnet")
    assert prov["device"]["requested"] == "cpu" and prov["threads"]["torch"] == study.threads_per_trial
    for trial in (out / "trials").iterdir():
        text = (trial / "log.txt").read_text()
        assert "optbench finetune chgnet" in text and "E0s (refit)" in text
        assert json.loads((trial / "results.json").read_text())["provenance"]["versions"]["chgnet"]
