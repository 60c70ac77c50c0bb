"""User-facing errors: one clear line naming the file and the field, exit code 2."""

from __future__ import annotations


class InputError(ValueError):
    """Bad user input. `str(err)` is the one line the CLI prints."""

    def __init__(self, message: str, *, file: str | None = None, field: str | None = None):
        self.file = None if file is None else str(file)
        self.field = field
        where = []
        if self.file:
            where.append(self.file)
        if field:
            where.append(f"field '{field}'")
        prefix = ": ".join(where)
        super().__init__(f"{prefix}: {message}" if prefix else message)
