"""The strategy string and its config fields: canonical forms, one-line errors, old hashes kept."""

from __future__ import annotations

import pytest

from optbench.config import FinetuneConfig
from optbench.errors import InputError
from optbench.strategies import FULL, Strategy


@pytest.mark.parametrize("text,canonical", [
    ("full", "full"),
    ("FULL", "full"),
    ("freeze:embedding", "freeze:embedding"),
    (" freeze: embedding , readout ", "freeze:embedding,readout"),
    ("freeze:embedding+freeze:readout,embedding", "freeze:embedding,readout"),
    ("freeze:readout,embedding", "freeze:embedding,readout"),
    ("lora:8", "lora:8"),
    ("replay:0.20+freeze:readout", "freeze:readout+replay:0.2"),
    ("lora:4+replay:0.5", "lora:4+replay:0.5"),
    ("full+freeze:readout", "freeze:readout"),
])
def test_canonical_strings(text, canonical):
    s = Strategy.parse(text)
    assert str(s) == canonical and Strategy.parse(str(s)) == s


def test_fields():
    s = Strategy.parse("freeze:embedding,readout+replay:0.2")
    assert (s.freeze, s.lora_rank, s.replay_fraction) == (("embedding", "readout"), None, 0.2)
    assert Strategy.parse("full") is not None and Strategy.parse("full").is_full and FULL.is_full
    assert not s.is_full


@pytest.mark.parametrize("text,needle", [
    ("", "empty strategy"),
    ("++", "empty strategy"),
    ("freez:embedding", "unknown strategy 'freez'"),
    ("full:1", "'full' takes no argument"),
    ("freeze", "freeze needs parameter groups"),
    ("freeze:,", "freeze needs parameter groups"),
    ("lora:x", "integer rank"),
    ("lora:0", "rank must be >= 1"),
    ("replay:half", "replay needs a fraction"),
    ("replay:1", "fraction must be in (0, 1)"),
    ("replay:0", "fraction must be in (0, 1)"),
    ("lora:4+freeze:embedding", "drop freeze"),
])
def test_parse_errors_name_the_field(text, needle):
    with pytest.raises(InputError, match="field 'strategies.2'") as err:
        Strategy.parse(text, field="strategies.2")
    assert needle in err.value.message


def test_config_canonicalises_and_keeps_old_hashes(tmp_path):
    base = {"train": tmp_path / "t.xyz"}
    plain = FinetuneConfig(**base)
    assert FinetuneConfig(**base, strategy="full", lr_factors={}).hash() == plain.hash()
    cfg = FinetuneConfig(**base, strategy="replay:0.5+freeze: readout")
    assert cfg.strategy == "freeze:readout+replay:0.5" and cfg.hash() != plain.hash()
    assert FinetuneConfig(**base, lr_factors={"readout": 2.0}).hash() != plain.hash()


@pytest.mark.parametrize("data,field,needle", [
    ({"strategy": "freeze"}, "strategy", "freeze needs parameter groups"),
    ({"lr_factors": {"readout": 0.0}}, "lr_factors", "must be > 0"),
    ({"lr_factors": {"readout": -1.0}}, "lr_factors", "must be > 0"),
])
def test_config_errors(tmp_path, data, field, needle):
    with pytest.raises(InputError, match=f"field '{field}'") as err:
        FinetuneConfig.validated({"train": tmp_path / "t.xyz", **data})
    assert needle in err.value.message
