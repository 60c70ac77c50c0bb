"""Outcome of every bad-input case of tests/robust against whichever optbench is importable.

    PYTHONPATH=<checkout> python bench/bad_inputs.py [--skip CASE ...]

Prints one row per case: exit code (or the exception that escaped main), whether a
results.json was written, and the first error line. Used for issue 14's before/after table
(the 0.5 Å cell is skipped on old code: it grew to 20 GB there).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parents[1] / "tests" / "robust"


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def outcome(case, ws, table) -> tuple[str, str, str]:
    from optbench.cli import main

    err = io.StringIO()
    try:
        call = case(ws)
    except Exception as exc:  # set-up needs the new code (e.g. the lock module)
        return "n/a", "", f"set-up failed: {type(exc).__name__}"
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            lock = None
            if case.__name__ in ("locked_run_folder", "study_locked_folder"):
                try:
                    from optbench.lock import folder_lock

                    lock = folder_lock(call.argv[call.argv.index("--out") + 1])
                except ImportError:
                    lock = None
            with lock or contextlib.nullcontext():
                code = str(main(call.argv))
    except SystemExit as exc:
        code = f"SystemExit({exc.code})"
    except BaseException as exc:  # a traceback would reach the user
        code = f"traceback {type(exc).__name__}"
    lines = [ln for ln in err.getvalue().splitlines() if ln.strip() and "Warning" not in ln and "warn" not in ln]
    from optbench.layout import RunDir

    wrote = "yes" if call.out is not None and RunDir(call.out).results_path.exists() else "no"
    return code, wrote, (lines[-1][:110] if lines else "")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--skip", nargs="*", default=[])
    args = parser.parse_args()
    conf = _load("robust_conftest", HERE / "conftest.py")
    table = _load("robust_table", HERE / "test_bad_inputs.py")
    import optbench

    print(f"optbench from {Path(optbench.__file__).parent}")
    ws = conf.Workspace(Path(tempfile.mkdtemp(prefix="badinputs-")))
    print("| case | exit | results.json | last stderr line |\n|---|---|---|---|")
    for case in table.CASES:
        if case.__name__ in args.skip:
            print(f"| {case.__name__} | skipped | | |", flush=True)
            continue
        code, wrote, line = outcome(case, ws, table)
        print(f"| {case.__name__} | {code} | {wrote} | {line.replace('|', '/')} |", flush=True)


if __name__ == "__main__":
    main()
