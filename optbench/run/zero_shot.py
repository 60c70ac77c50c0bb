"""The zero-shot evaluation of a run: its test sets with the weights its training starts from
(the pretrained model after the E0 setting).

Those weights never change, so where the process has a spare CPU (`threads.room_beside`) the
evaluation runs on a copy of the model in a thread beside the training, which then starts at once;
its numbers are the same as when it runs first (same ops, same thread count, no random numbers).
zero_shot.json gets its `metrics` when they are in hand; a run killed before then computes them
again on resume, from the start checkpoint.
"""

from __future__ import annotations

from optbench.io import torch_load, write_json
from optbench.layout import RunDir
from optbench.provenance import log
from optbench.run_folder import HINT
from optbench.threads import Beside


class ZeroShot:
    """zero_shot.json's record (`e0`, `replay`) and its `metrics`, computed now or beside the training."""

    def __init__(self, record: dict, run: RunDir):
        self.record, self.run = record, run
        self._beside: Beside | None = None  # the evaluation in its thread
        self._written = False  # whether zero_shot.json holds the metrics

    def start(self, loop, beside: bool) -> ZeroShot:
        """Evaluate `loop`'s sets with the weights now in its model: here, or on a copy in a thread when `beside`."""
        if beside:
            self._beside = loop.evaluate_beside("zero-shot evaluation before the training")
            if self._beside is not None:
                log.info("zero-shot evaluation beside the training, on a spare CPU (OPTBENCH_BESIDE=0: before it)")
                return self
        self.record["metrics"] = loop.evaluate()
        return self

    @property
    def beside_s(self) -> float | None:
        """Seconds the evaluation took in its thread (None when it ran in the caller's)."""
        return None if self._beside is None else self._beside.seconds

    def write(self) -> None:
        """zero_shot.json as it stands (without `metrics` while the thread computes them)."""
        write_json(self.run.zero_shot_path, self.record)
        self._written = "metrics" in self.record

    def metrics(self) -> dict:
        """The zero-shot metrics (waits for the thread); zero_shot.json is written once they are in."""
        if self._beside is not None and "metrics" not in self.record:
            self.record["metrics"] = self._beside.result()
        if not self._written:
            self.write()
        return self.record["metrics"]

    @classmethod
    def resumed(cls, loop, run: RunDir, beside: bool) -> ZeroShot:
        """The record of a resumed run; its metrics from the start checkpoint's weights when the run was
        killed before they were in. Call it before the last checkpoint's weights are loaded."""
        zero = cls(run.zero_shot(), run)
        if "metrics" in zero.record:
            zero._written = True
            return zero
        path = run.checkpoint("start")
        state = torch_load(path, loop.config.device, required=("model_state",), what="start checkpoint",
                           hint=f"the zero-shot metrics need its weights; {HINT}")["model_state"]
        # the start weights into the model (checkpoint.resume loads the last ones next), then copied
        # from there: a copy of an adapter's module may hold extra buffers a saved state lacks (e3nn's)
        loop.backbone.model.load_state_dict(state)
        return zero.start(loop, beside)
