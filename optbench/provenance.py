"""Where numbers came from: versions, device, threads and command line, and the run's plain-text log.

`provenance()` is the block results.json and study.json carry; `run_log(folder)` copies every
line optbench logs (logger "optbench") to FOLDER/log.txt, appended across resumes; `console()`
echoes them on stdout, which is how the command line prints, so the log holds what was printed.
"""

from __future__ import annotations

import logging
import os
import platform
import shlex
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path

from optbench.layout import LOG_FILE

log = logging.getLogger("optbench")



def __getattr__(name: str):
    if name == "BACKBONE_PACKAGES":  # adapter name -> its distribution: now in the backbone registry
        from optbench.backbones import _ADAPTERS, backbone_package

        return {n: backbone_package(n) for n in _ADAPTERS}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_command: list[str] | None = None


def set_command(argv: list[str]) -> None:
    """The command line to record (the CLI sets it; otherwise sys.argv is recorded)."""
    global _command
    _command = list(argv)


def command_line() -> str | None:
    """The command line this process records (the CLI's argv, else sys.argv), shell-quoted."""
    argv = _command if _command is not None else [Path(sys.argv[0]).name, *sys.argv[1:]] if sys.argv and sys.argv[0] else None
    return shlex.join(argv) if argv else None


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _device_name(device: str) -> str:
    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(torch.device(device))
    return platform.processor() or platform.machine()


def backbone_of(model: str) -> str:
    """Adapter name ('chgnet', 'sevennet', 'mace') of a model spec or run folder."""
    from optbench.backbones import _split
    from optbench.backbones.base import BACKBONE_FILE, read_backbone_json
    from optbench.layout import model_folder

    path = Path(model)
    if path.is_dir():
        folder = model_folder(path)
        if (folder / BACKBONE_FILE).is_file():
            return read_backbone_json(folder)["backbone"]
    return _split(str(model))[0]


def provenance(device: str = "cpu", backbones: Iterable[str] = (), threads: int | None = None) -> dict:
    """Versions (optbench, Python, torch, ASE, numpy, each backbone's package), device, threads, command.

    `threads` is the number of torch intra-op threads used (default: this process's setting).
    """
    import ase
    import numpy
    import torch

    import optbench

    versions = {"optbench": optbench.__version__, "python": platform.python_version(), "torch": torch.__version__,
                "ase": ase.__version__, "numpy": numpy.__version__}
    from optbench.backbones import backbone_package

    for name in dict.fromkeys(backbones):
        dist = backbone_package(name)
        versions[dist] = _version(dist)
    return {
        "versions": versions,
        "device": {"requested": device, "name": _device_name(device)},
        "threads": {"torch": threads or torch.get_num_threads(), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS")},
        "platform": platform.platform(),
        "command": command_line(),
    }


# what a published study records the versions of (distribution names; python is the interpreter's)
PUBLISHED_PACKAGES = ("optbench", "torch", "chgnet", "sevenn", "mace-torch", "ase", "phonopy", "pymatgen", "numpy",
                      "scipy", "pytorch-optimizer", "schedulefree")


def package_versions(names: Iterable[str] = PUBLISHED_PACKAGES) -> dict[str, str | None]:
    """Installed version of each distribution (None when not installed), and Python's."""
    return {"python": platform.python_version(), **{name: _version(name) for name in names}}


def git_commit(where: str | Path | None = None) -> dict | None:
    """{"commit", "dirty"} of the git checkout holding `where` (default: optbench's own source), or None
    when it is not in a git checkout or git is missing."""
    import subprocess

    folder = Path(where) if where is not None else Path(__file__).resolve().parent

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True, check=True,
                              timeout=30).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": dirty}


def summary(prov: dict) -> str:
    """One line for the log: versions, device and threads."""
    versions = ", ".join(f"{k} {v}" for k, v in prov["versions"].items())
    threads = prov["threads"]
    return (f"{versions}; device {prov['device']['requested']} ({prov['device']['name']}); "
            f"torch threads {threads['torch']}, OMP_NUM_THREADS={threads['OMP_NUM_THREADS']}")


# ---------------------------------------------------------------- the log
class _Console(logging.Handler):
    """Echo log lines on stdout through tqdm, so progress bars stay intact."""

    def emit(self, record: logging.LogRecord) -> None:
        from tqdm.auto import tqdm

        tqdm.write(self.format(record), file=sys.stdout)


def _has_console() -> bool:
    handlers = [*log.handlers, *logging.getLogger().handlers]
    return any(isinstance(h, _Console) or (type(h) is logging.StreamHandler) for h in handlers)


def console(level: int = logging.INFO) -> None:
    """Print optbench's log lines on stdout (what the command line does); once per process."""
    if any(isinstance(h, _Console) for h in log.handlers):
        return
    handler = _Console(level)
    handler.setFormatter(logging.Formatter("%(message)s"))
    log.addHandler(handler)
    log.setLevel(min(log.level or logging.INFO, level))


@contextmanager
def run_log(folder: str | Path) -> Iterator[Path]:
    """Append every optbench log line to FOLDER/log.txt (time-stamped) while the block runs.

    Without a console handler (library use), warnings are echoed on stdout as before.
    """
    path = (Path(folder) / LOG_FILE).resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    added = []
    if not any(isinstance(h, logging.FileHandler) and Path(h.baseFilename) == path for h in log.handlers):
        file_handler = logging.FileHandler(path, mode="a", encoding="utf-8")
        file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%dT%H:%M:%S%z"))
        added.append(file_handler)
    if not _has_console():
        warn = _Console(logging.WARNING)
        warn.setFormatter(logging.Formatter("%(message)s"))
        added.append(warn)
    level = log.level
    log.setLevel(logging.INFO if level in (logging.NOTSET,) else min(level, logging.INFO))
    for handler in added:
        log.addHandler(handler)
    try:
        yield path
    finally:
        for handler in added:
            log.removeHandler(handler)
            handler.close()
        log.setLevel(level)


def log_run_start(config, prov: dict, n_train: int, n_valid: int, steps_per_epoch: int, total_steps: int,
                  resumed_step: int | None = None) -> None:
    """The lines a run starts its log with: what, where, on what, for how many steps."""
    log.info(f"optbench finetune {config.model} with {config.optimizer} (lr {config.lr:g}, seed {config.seed}) "
             f"-> {config.out}  [config hash {config.hash()}]")
    if prov.get("command"):
        log.info(f"command: {prov['command']}")
    log.info(summary(prov))
    for note in getattr(config, "_notes", None) or []:
        log.info(note)
    limits = [f"epochs {config.epochs} x {steps_per_epoch} steps per epoch = {config.epochs * steps_per_epoch}"] \
        if config.epochs is not None else []
    limits += [f"max_steps {config.max_steps}"] if config.max_steps is not None else []
    budget = f"{total_steps} steps ({' or '.join(limits) if limits else 'one epoch'}, whichever is smaller)" \
        if len(limits) > 1 else f"{total_steps} steps ({limits[0] if limits else 'one epoch'})"
    if config.max_time_s is not None:
        budget += f", at most {config.max_time_s:g} s wall time"
    log.info(f"training structures: {n_train}, validation: {n_valid}; batch_size {config.batch_size} -> "
             f"{steps_per_epoch} steps per epoch; budget {budget}")
    if resumed_step is not None:
        log.info(f"resuming from step {resumed_step} (checkpoints/last.pt)")
