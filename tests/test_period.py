"""The reporting period and the as-of date (docs/metrics.md, "Period")."""

from __future__ import annotations

import datetime as dt

import pytest

from analytics.errors import InputError
from analytics.period import Period, parse_date, resolve

D = dt.date


def test_parse_start_end():
    p = Period.parse("2026-01-01:2026-12-31")
    assert (p.start, p.end) == (D(2026, 1, 1), D(2026, 12, 31))
    assert str(p) == "2026-01-01:2026-12-31"
    assert Period.parse(" 2026-03-01 : 2026-03-31 ") == Period(D(2026, 3, 1), D(2026, 3, 31))


def test_parse_year():
    assert Period.parse("2026") == Period(D(2026, 1, 1), D(2026, 12, 31))
    assert Period.parse(" 2024 ") == Period.year(2024)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("last year", "expected START:END"),
        ("26", "expected START:END"),
        ("2026-01-01", "expected START:END"),
        ("2026-01-01:", "period end '' is not a date"),
        ("2026-02-30:2026-03-01", "period start '2026-02-30' is not a date"),
        ("2026-01-01:31/12/2026", "period end '31/12/2026' is not a date: use YYYY-MM-DD"),
        ("2026-12-31:2026-01-01", "the end is before the start"),
    ],
)
def test_parse_errors(text, needle):
    with pytest.raises(InputError) as exc:
        Period.parse(text)
    assert needle in str(exc.value)


@pytest.mark.parametrize(
    ("period", "days"),
    [
        (Period.year(2026), 365),
        (Period.year(2024), 366),  # leap year
        (Period.year(2000), 366),  # divisible by 400: leap
        (Period.year(2100), 365),  # divisible by 100 only: not leap
        (Period(D(2026, 5, 5), D(2026, 5, 5)), 1),  # both ends included
        (Period(D(2026, 1, 1), D(2026, 6, 30)), 181),
        (Period(D(2024, 2, 28), D(2024, 3, 1)), 3),
    ],
)
def test_days(period, days):
    assert period.days == days


def test_elapsed():
    year = Period.year(2026)
    assert year.elapsed(D(2025, 12, 31)) == 0.0          # before the start: clamped
    assert year.elapsed(D(2026, 1, 1)) == pytest.approx(1 / 365)  # first day counts
    assert year.elapsed(D(2026, 7, 2)) == pytest.approx(183 / 365)
    assert year.elapsed(D(2026, 12, 31)) == 1.0
    assert year.elapsed(D(2027, 6, 1)) == 1.0            # after the end: clamped
    assert Period.year(2024).elapsed(D(2024, 12, 30)) == pytest.approx(365 / 366)


def test_parse_date():
    assert parse_date(" 2026-09-30 ") == D(2026, 9, 30)
    with pytest.raises(InputError, match=r"as-of date '30\.09\.2026' is not a date"):
        parse_date("30.09.2026", "as-of date")


def test_resolve_defaults():
    # explicit as-of wins over the dataset's; the period defaults to its calendar year
    period, as_of = resolve("2026-09-30", None, "2025-02-03")
    assert (period, as_of) == (Period.year(2025), D(2025, 2, 3))
    period, as_of = resolve("2026-09-30", None, None)
    assert (period, as_of) == (Period.year(2026), D(2026, 9, 30))
    period, as_of = resolve(None, "2026-01-01:2026-03-31", None)
    assert period == Period(D(2026, 1, 1), D(2026, 3, 31))
    assert as_of == dt.date.today()
    period, _ = resolve(None, None, None)
    assert period == Period.year(dt.date.today().year)
    with pytest.raises(InputError, match="as-of date"):
        resolve(None, None, "tomorrow")
