"""The reporting period and the as-of date, as docs/metrics.md defines them.

`period = [start, end]`, whole days, both ends included. Default: the calendar year of the
as-of date. `as_of` defaults to the dataset's fixed as-of date when it has one, else today.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from analytics.errors import InputError


def parse_date(text: str, what: str = "date") -> dt.date:
    try:
        return dt.date.fromisoformat(str(text).strip())
    except ValueError as exc:
        raise InputError(f"{what} {text!r} is not a date: use YYYY-MM-DD") from exc


@dataclass(frozen=True)
class Period:
    start: dt.date
    end: dt.date

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise InputError(f"period {self}: the end is before the start")

    @classmethod
    def parse(cls, text: str) -> Period:
        """`START:END` (ISO dates, both included) or a year such as `2026`."""
        raw = str(text).strip()
        if raw.isdigit() and len(raw) == 4:
            return cls.year(int(raw))
        start, sep, end = raw.partition(":")
        if not sep:
            raise InputError(f"period {text!r}: expected START:END, e.g. 2026-01-01:2026-12-31")
        return cls(parse_date(start, "period start"), parse_date(end, "period end"))

    @classmethod
    def year(cls, year: int) -> Period:
        return cls(dt.date(year, 1, 1), dt.date(year, 12, 31))

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def elapsed(self, as_of: dt.date) -> float:
        """clamp((as_of - start + 1) / days, 0, 1)."""
        return min(max(((as_of - self.start).days + 1) / self.days, 0.0), 1.0)

    def __str__(self) -> str:
        return f"{self.start.isoformat()}:{self.end.isoformat()}"


def resolve(store_as_of: str | None, period: str | None, as_of: str | None):
    """(Period, as_of) from command-line text, with docs/metrics.md defaults."""
    if as_of:
        day = parse_date(as_of, "as-of date")
    elif store_as_of:
        day = dt.date.fromisoformat(store_as_of)
    else:
        day = dt.date.today()
    return (Period.parse(period) if period else Period.year(day.year)), day
