"""The dates the service works with: one range, checked wherever a date comes in.

Python's dates run from 0001-01-01 to 9999-12-31, and a date at either end breaks the
code that uses it: adding a day to 9999-12-31, or turning a Tokyo day at its edge into
UTC, overflows (a 500). No booking, campaign, closure or report needs anything like
that, so every date a request brings (forms, query strings, JSON) must lie in

    EARLIEST (2000-01-01) … latest() (today in Tokyo + DAYS_AHEAD)

and anything else is bad input: a field error beside the date (booking.forms.DateField),
or a 422 problem in the API (booking.blueprints.api.common.ApiDate / ApiDatetime). How far
ahead a unit may actually be booked is a narrower rule of its own (Unit.max_days_ahead,
decided in booking.services.reservations).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from booking import clock

EARLIEST = date(2000, 1, 1)
DAYS_AHEAD = 5 * 366  # about five years: the most any unit's booking horizon may be


def latest() -> date:
    return clock.today() + timedelta(days=DAYS_AHEAD)


def supported(day: date) -> bool:
    return EARLIEST <= day <= latest()


def check(day: date) -> date:
    """`day`, or ValueError (with an English message, for the API) when out of range."""
    if not supported(day):
        raise ValueError(f"must be a date from {EARLIEST.isoformat()} to {latest().isoformat()}")
    return day


def check_datetime(value: datetime) -> datetime:
    """An aware datetime whose Tokyo date is supported; ValueError otherwise (also when
    converting it to Tokyo's time would overflow)."""
    try:
        day = value.astimezone(clock.TOKYO).date()
    except (OverflowError, ValueError):
        day = None
    if day is None or not supported(day):
        raise ValueError(f"must be a time from {EARLIEST.isoformat()} to {latest().isoformat()}")
    return value


def parse(text: str | None) -> date | None:
    """A YYYY-MM-DD date in the supported range, or None (missing, malformed or out of
    range): for optional query parameters that fall back to a default."""
    try:
        return check(date.fromisoformat((text or "").strip()))
    except ValueError:
        return None
