"""`make demo` until the study runner lands: a short AdamW fine-tune on revMD17 ethanol."""

from __future__ import annotations

import os
from pathlib import Path

from ase.io import read, write


def shared_data() -> Path:
    env = os.environ.get("OPTBENCH_SHARED_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"


def run_demo(out: str | Path, n_train: int = 200, n_test: int = 200, max_steps: int = 300) -> dict:
    """Fine-tune CHGNet with AdamW on `n_train` ethanol frames; print zero-shot vs final errors."""
    from optbench.config import FinetuneConfig
    from optbench.evaluate import format_table
    from optbench.train import finetune

    src = shared_data() / "ethanol_revmd17"
    out = Path(out)
    data = out / "data"
    data.mkdir(parents=True, exist_ok=True)
    for name, fname, index in [("train", "train.xyz", f":{n_train}"), ("id", "test_MD.xyz", f":{n_test}"),
                               ("ood", "test_H_removal.xyz", ":")]:
        write(data / f"{name}.xyz", read(src / fname, index=index), format="extxyz")
    cfg = FinetuneConfig(model="chgnet", train=data / "train.xyz", tests={"id": data / "id.xyz", "ood": data / "ood.xyz"},
                         optimizer="adamw", lr=1e-3, batch_size=4, max_steps=max_steps, refine="lbfgs", refine_steps=10,
                         out=out / "run")
    result = finetune(cfg)
    print(format_table(result["metrics"]))
    print(f"{result['status']}: {result['steps']} steps in {result['wall_time_s']:.0f} s -> {cfg.out}")
    return result
