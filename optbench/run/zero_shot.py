"""The zero-shot evaluation of a run: its test sets with the weights its training starts from
(the pretrained model after the E0 setting).

Those weights never change, so where the process has a spare CPU (`threads.room_beside`) the
evaluation runs on a copy of the model in a thread beside the training, which then starts at once;
its numbers are the same as when it runs first (same ops, same thread count, no random numbers).
zero_shot.json gets its `metrics` when they are in hand; a run killed before then computes them
again on resume, from the start checkpoint.
"""

from __future__ import annotations

import contextvars
import copy
import threading
import time

import torch

from optbench.errors import InputError
from optbench.io import write_json
from optbench.layout import RunDir
from optbench.provenance import log


class ZeroShot:
    """zero_shot.json's record (`e0`, `replay`) and its `metrics`, computed now or beside the training."""

    def __init__(self, record: dict, run: RunDir):
        self.record, self.run = record, run
        self.beside_s: float | None = None  # seconds the evaluation took in its thread
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._written = False  # whether zero_shot.json holds the metrics

    def start(self, loop, backbone, beside: bool) -> ZeroShot:
        """Evaluate `loop`'s sets with `backbone`'s weights: here, or on a copy in a thread when `beside`."""
        if "metrics" in self.record:
            return self
        if beside:
            try:
                model_copy = copy.deepcopy(backbone)
            except Exception as err:  # an adapter that cannot be copied: evaluate here instead
                log.info(f"zero-shot evaluation before the training (the model cannot be copied: {type(err).__name__})")
                model_copy = None
            if model_copy is not None:
                log.info("zero-shot evaluation beside the training, on a spare CPU (OPTBENCH_BESIDE=0: before it)")
                run = contextvars.copy_context().run  # the caller's context: its prediction cache setting
                self._thread = threading.Thread(target=run, args=(self._evaluate, loop, model_copy), daemon=True,
                                                name="optbench-zero-shot")
                self._thread.start()
                return self
        self.record["metrics"] = loop.evaluate()
        return self

    def _evaluate(self, loop, backbone) -> None:
        t0 = time.perf_counter()
        try:
            self.record["metrics"] = loop.evaluate(backbone=backbone)
        except BaseException as err:  # raised again in the thread that asks for the metrics
            self._error = err
        self.beside_s = time.perf_counter() - t0

    def write(self) -> None:
        """zero_shot.json as it stands (without `metrics` while the thread computes them)."""
        write_json(self.run.zero_shot_path, self.record)
        self._written = "metrics" in self.record

    def metrics(self) -> dict:
        """The zero-shot metrics (waits for the thread); zero_shot.json is written once they are in."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None
            if self._error is not None:
                raise self._error
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
        try:
            state = torch.load(path, map_location=loop.config.device, weights_only=False)["model_state"]
        except Exception as err:  # missing, truncated, foreign
            raise InputError(f"unreadable start checkpoint ({type(err).__name__}), needed for the zero-shot metrics; "
                             "run again with --restart", file=path) from None
        # the start weights into the model (checkpoint.resume loads the last ones next), then copied
        # from there: a copy of an adapter's module may hold extra buffers a saved state lacks (e3nn's)
        loop.backbone.model.load_state_dict(state)
        return zero.start(loop, loop.backbone, beside)
