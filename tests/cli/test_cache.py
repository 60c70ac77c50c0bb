"""`optbench cache`: what the featurization cache holds, and clearing it (by kind, by age) without
touching what is not its own; a cleared entry is featurized again to the same graphs."""

from __future__ import annotations

import os
import time

import torch

from optbench.backbones import load_backbone
from optbench.cli import main
from optbench.data.io import read_frames
from optbench.featcache import featurize_frames


def _graphs(frames, backbone):
    return [{k: v for k, v in vars(g).items() if torch.is_tensor(v)} for g in featurize_frames(frames, backbone)]


def test_cache_info_and_clear(tmp_path, monkeypatch, capsys, ethanol_small, cli_console):
    root = tmp_path / "cache"
    monkeypatch.setenv("OPTBENCH_CACHE", str(root))
    backbone = load_backbone("chgnet")
    frames = read_frames(ethanol_small["id"])[:3]
    first = _graphs(frames, backbone)
    setups = root / "gpaw-setups" / "26.7.0" / "Si.PBEsol.gz"  # beside the cache under the same root, not its own
    setups.parent.mkdir(parents=True)
    setups.write_bytes(b"setup")

    assert main(["cache"]) == 0
    out = capsys.readouterr().out
    assert f"cache: {root}" in out and "graphs" in out and "     1 entries" in out

    assert main(["cache", "clear", "--older-than", "1", "--dir", str(root)]) == 0
    assert "removed 0 entries" in capsys.readouterr().out  # written just now
    entry = next((root / "graphs").rglob("*.pt"))
    two_days_ago = time.time() - 2 * 86400
    os.utime(entry, (two_days_ago, two_days_ago))
    assert main(["cache", "clear", "--older-than", "1", "--kind", "graphs"]) == 0
    assert "removed 1 entries" in capsys.readouterr().out
    assert not entry.exists() and setups.read_bytes() == b"setup"

    again = _graphs(frames, backbone)  # featurized again, stored again: the same graphs
    assert entry.exists() and len(again) == len(first)
    for a, b in zip(first, again, strict=True):
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert main(["cache", "clear"]) == 0
    assert not any(p.is_file() for kind in ("graphs", "frames", "predictions") for p in (root / kind).rglob("*"))
    assert setups.exists()


def test_a_bad_age_is_an_input_error(tmp_path, capsys, cli_console):
    assert main(["cache", "clear", "--older-than", "-1", "--dir", str(tmp_path)]) == 2
    assert "older_than" in capsys.readouterr().err
