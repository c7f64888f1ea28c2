"""Errors that carry where the bad input is, so every message can name file, row and column."""

from __future__ import annotations


class InputError(Exception):
    """Bad input from a user: a file, a setting, an argument. The CLI exits 2 on it."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        row: int | None = None,
        column: str | None = None,
    ) -> None:
        self.message = message
        self.file = file
        self.row = row
        self.column = column
        super().__init__(str(self))

    def __str__(self) -> str:
        where = []
        if self.file:
            where.append(str(self.file))
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column:
            where.append(f"column {self.column!r}")
        return (": ".join([", ".join(where), self.message])) if where else self.message
