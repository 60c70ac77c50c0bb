"""User-facing errors: one clear line each; the CLI alone maps them to exit codes.

InputError (exit 2): bad user input, named by file and field. The others (exit 1) are typed
failures of a run that the user can act on; any other exception is a bug, shown as one line
unless `--debug` is given.
"""

from __future__ import annotations


class InputError(ValueError):
    """Bad user input. `str(err)` is the one line the CLI prints."""

    def __init__(self, message: str, *, file: str | None = None, field: str | None = None):
        self.file = None if file is None else str(file)
        self.field = field
        self.message = message
        where = []
        if self.file:
            where.append(self.file)
        if field:
            where.append(f"field '{field}'")
        prefix = ": ".join(where)
        super().__init__(f"{prefix}: {message}" if prefix else message)


class LockedError(InputError):
    """The folder is in use by another optbench process (exit 2)."""


class OptbenchError(RuntimeError):
    """A typed failure of a run that is not bad input (exit 1); `str(err)` is one line."""


class BackboneError(OptbenchError):
    """A backbone or a reference calculator (pyscf, GPAW) failed while loading or computing on valid input."""


class OptimizerError(OptbenchError):
    """The optimizer itself raised during a step (a user optimizer, usually)."""


class StudyFailed(OptbenchError):
    """A study ended without a single completed trial."""


EXIT_CODES = ((InputError, 2), (OptbenchError, 1))


def exit_code(err: BaseException) -> int:
    """The process exit code of an error (1 for anything untyped)."""
    for kind, code in EXIT_CODES:
        if isinstance(err, kind):
            return code
    return 1
