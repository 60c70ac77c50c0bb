"""Progress bars asked for show on a terminal only: a log file or a study worker's stderr gets none."""

from __future__ import annotations

import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios

import torch

from optbench.curvature.linalg import lanczos

_LANCZOS = ("import torch; from optbench.curvature.linalg import lanczos; "
            "A = torch.diag(torch.arange(1.0, 41.0, dtype=torch.float64)); "
            "lanczos(lambda v: A @ v, 40, k=2, n_iter=20, progress=True, desc='lanczos-bar')")


def test_a_bar_asked_for_stays_out_of_a_file(capfd):
    a = torch.diag(torch.arange(1.0, 41.0, dtype=torch.float64))
    run = lanczos(lambda v: a @ v, 40, k=2, n_iter=20, progress=True, desc="lanczos-bar")
    assert abs(run.top(1)[0][0] - 40.0) < 1e-3
    assert "lanczos-bar" not in capfd.readouterr().err


def test_a_bar_asked_for_shows_on_a_terminal():
    main, child = pty.openpty()
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a terminal 100 columns wide
    proc = subprocess.Popen([sys.executable, "-c", _LANCZOS], stderr=child, stdout=subprocess.DEVNULL)
    os.close(child)
    chunks = []
    while True:
        try:
            chunk = os.read(main, 4096)
        except OSError:  # the child closed its end
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(main)
    assert proc.wait(timeout=120) == 0 and b"lanczos-bar" in b"".join(chunks)
