"""The one clock: every "now" and "today" of the application is asked here.

Times are stored and compared as aware UTC instants; the calendar a person lives by is
Tokyo's. Asking the host for a naive time or its local date (``date.today()``) gives the
wrong day from 15:00 to 24:00 UTC, so nothing else in the code does (ruff's DTZ rules).
Tests move this clock with time-machine, which moves every call below.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

TOKYO = ZoneInfo("Asia/Tokyo")


def now() -> datetime:
    """The current instant, aware, in UTC."""
    return datetime.now(UTC)


def tokyo_now() -> datetime:
    """The current instant on Tokyo's wall clock."""
    return datetime.now(TOKYO)


def today() -> date:
    """Today's date in Tokyo."""
    return datetime.now(TOKYO).date()
