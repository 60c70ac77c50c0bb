"""results.json records versions, device, threads and the command; log.txt holds what was printed."""

from __future__ import annotations

import json
import platform
from importlib import metadata

import ase
import torch

import optbench
from optbench.cli import main


def test_results_record_provenance_and_the_log_holds_what_was_printed(ethanol_small, tmp_path, capsys, cli_console):
    out = tmp_path / "run"
    args = ["finetune", "--model", "chgnet", "--train", str(ethanol_small["train"]), "--test", f"id={ethanol_small['id']}",
            "--max-steps", "2", "--batch-size", "4", "--eval-every", "1", "--out", str(out)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    prov = json.loads((out / "results.json").read_text())["provenance"]
    assert prov["versions"] == {
        "optbench": optbench.__version__, "python": platform.python_version(), "torch": torch.__version__,
        "ase": ase.__version__, "numpy": prov["versions"]["numpy"], "chgnet": metadata.version("chgnet"),
    }
    assert prov["device"]["requested"] == "cpu" and prov["device"]["name"]
    assert prov["threads"]["torch"] == torch.get_num_threads()
    assert prov["command"].startswith("optbench finetune --model chgnet --train ")
    text = (out / "log.txt").read_text()
    lines = [ln for ln in printed.splitlines() if ln.strip()]
    assert any("F MAE" in ln for ln in lines) and any("meV/Å" in ln for ln in lines)  # the results table
    for line in lines:  # every printed line is in the log, after a time stamp and level
        assert line in text, line
    for expected in ("optbench finetune chgnet with adamw", "command: optbench finetune --model chgnet", "E0s (refit): H ", "training structures: ",
                     "completed after 2 steps"):
        assert expected in text, expected
    # a rerun appends to the log instead of starting it again
    assert main(args) == 0
    again = (out / "log.txt").read_text()
    assert again.startswith(text) and "nothing to do" in again[len(text):]
