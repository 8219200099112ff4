"""The one clock: every "now" and "today" of the application is asked here.

Times are stored and compared as aware UTC instants; the calendar a person lives by is
Tokyo's. Asking the host for a naive time or its local date (``date.today()``) gives the
wrong day from 15:00 to 24:00 UTC, so nothing else in the code does (ruff's DTZ rules).
Tests move this clock with time-machine, which moves every call below.

``as_of(instant)`` runs a block of code as if it were that instant: the demo data's
history (booking/seeds/history.py) books the past through the same services a user goes through,
which refuse a start in the past, so each step runs "as of" a moment before it. The
instant is held in a context variable (so it belongs to the code that set it: another
thread or request does not see it) and is fixed while the block runs. Outside such a
block the clock is the host's (or time-machine's) as before.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

TOKYO = ZoneInfo("Asia/Tokyo")

# The instant set by as_of(), or None: the real (or time-machine's) clock.
_fixed: ContextVar[datetime | None] = ContextVar("booking_clock_fixed", default=None)


def now() -> datetime:
    """The current instant, aware, in UTC."""
    fixed = _fixed.get()
    return fixed if fixed is not None else datetime.now(UTC)


def tokyo_now() -> datetime:
    """The current instant on Tokyo's wall clock."""
    return now().astimezone(TOKYO)


def today() -> date:
    """Today's date in Tokyo."""
    return tokyo_now().date()


@contextlib.contextmanager
def as_of(instant: datetime) -> Iterator[datetime]:
    """Run the block as if it were `instant` (aware; it does not tick while the block
    runs): now(), tokyo_now(), today() and every default that calls them (created_at, …)
    answer that instant. Blocks nest (the innermost wins) and the previous clock is back
    after the block, also when it raises. For seeding the demo's past and for tools;
    the application itself never travels in time."""
    if instant.tzinfo is None:
        raise ValueError("as_of() needs an aware datetime")
    token = _fixed.set(instant.astimezone(UTC))
    try:
        yield instant
    finally:
        _fixed.reset(token)
