"""Progress bars on long work: shown where the caller asks for them and stderr is a terminal."""

from __future__ import annotations


def hidden(progress: bool) -> bool | None:
    """tqdm's `disable` for a bar shown when `progress`: None lets tqdm hide it where stderr is no
    terminal (a log file, CI, a study's worker processes), so logs hold no bar redraws."""
    return None if progress else True
