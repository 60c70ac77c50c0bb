"""One invocation of `optbench run` on a study folder, as study.json's `sessions` keep it: when it started,
the command, the git commit and package versions it ran with, and the wall time of its trials, analyses
and report. A resumed study has one session per invocation; its wall time is their sum."""

from __future__ import annotations

import os
import time
from datetime import datetime, timezone


class Session:
    """Times the phases of one invocation: `lap("trials")` after the trials, and so on; `close()` the record."""

    def __init__(self, command: str | None, executor: str, workers: int):
        from optbench.provenance import git_commit, package_versions

        self._t0 = self._last = time.perf_counter()
        self.record = {"started": datetime.now(timezone.utc).isoformat(timespec="seconds"), "command": command,
                       "git": git_commit(), "versions": package_versions(), "executor": executor, "workers": workers}

    def lap(self, phase: str) -> None:
        now = time.perf_counter()
        self.record[f"{phase}_s"] = round(now - self._last, 2)
        self._last = now

    def close(self) -> dict:
        """The record, with the whole invocation's wall time and the machine's load average at its end."""
        self.record["total_s"] = round(time.perf_counter() - self._t0, 2)
        self.record["load_average_1_5_15min"] = [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None
        return self.record
