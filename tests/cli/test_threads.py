"""Thread count and wait policy: --threads on every command, defaults that leave room on a shared machine."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from optbench.cli import _leaf_parsers, build_parser
from optbench.threads import available_cpus, configure, default_threads


def test_every_command_takes_threads():
    sub = next(a for a in build_parser()._actions if a.__class__.__name__ == "_SubParsersAction")
    leaves = _leaf_parsers(sub)
    assert len(leaves) >= 9  # finetune evaluate data{generate,list,fetch} property curvature run report
    for parser in leaves:
        assert any("--threads" in a.option_strings for a in parser._actions), parser.prog


def test_default_is_half_the_cpus_and_passive(monkeypatch):
    import torch

    before = torch.get_num_threads()
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    try:
        n = configure(None)
        assert n == default_threads() == max(1, available_cpus() // 2)
        assert torch.get_num_threads() == n and os.environ["OMP_NUM_THREADS"] == str(n)
        assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
        monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
        monkeypatch.setenv("OMP_NUM_THREADS", "3")
        assert configure(None) == 3 and os.environ["OMP_WAIT_POLICY"] == "ACTIVE"  # the user's choice is kept
        assert configure(2) == 2 and torch.get_num_threads() == 2  # --threads wins over the environment
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("flag", [["--threads", "0"], ["--threads", "two"]])
def test_bad_thread_count_is_exit_2_naming_the_option(flag):
    proc = subprocess.run([sys.executable, "-m", "optbench.cli", "report", "nowhere", *flag], capture_output=True, text=True)
    assert proc.returncode == 2 and "--threads" in proc.stderr and "Traceback" not in proc.stderr


def test_the_count_reaches_a_fresh_process():
    code = "import torch, optbench.cli as c, sys; c.main(['report', 'nowhere', '--threads', '2']) ; print(torch.get_num_threads())"
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env).stdout.split()
    assert out[-1] == "2"
