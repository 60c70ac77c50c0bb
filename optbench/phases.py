"""Wall time of the phases of a run, for results.json's `phases_s` (seconds)."""

from __future__ import annotations

import contextlib
import time


class Phases:
    """Seconds spent in each named phase (summed over repeated entries), in the order first entered."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.seconds: dict[str, float] = {}

    def add(self, name: str, seconds: float) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds

    @contextlib.contextmanager
    def __call__(self, name: str):
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - t0)

    def as_dict(self) -> dict[str, float]:
        """Each phase and `total` (s since this object was made; phases are parts of it, not all of it)."""
        return {**{k: round(v, 4) for k, v in self.seconds.items()},
                "total": round(time.perf_counter() - self.started, 4)}
