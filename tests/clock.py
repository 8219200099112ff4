"""The instant the suite runs at, shared by the test process and the servers it starts.

The default is a fixed instant, 2026-12-07T15:30Z: Tokyo is then already on Tuesday the 8th
while UTC is on Monday the 7th, the hours in which code that asks the host for "today"
goes wrong; being fixed, the suite gives the same answers next year (its tests name dates
of the 2027 campaign). TEST_CLOCK chooses another instant (ISO 8601, e.g.
``2027-03-01T14:59:00Z``) or ``real`` for the host's clock.
The controller resolves it once and exports it, so pytest-xdist workers and the
application servers of the browser tests run from the same instant.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from datetime import UTC, datetime

import time_machine

ENV = "TEST_CLOCK"
DEFAULT = datetime(2026, 12, 7, 15, 30, tzinfo=UTC)
_session: time_machine.travel | None = None


def instant() -> datetime | None:
    """The suite's starting instant (aware, UTC), or None for the host's clock."""
    raw = os.environ.get(ENV, "").strip()
    if raw.lower() == "real":
        return None
    if raw:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        if value.tzinfo is None:
            raise ValueError(f"{ENV}={raw!r} needs a time zone (e.g. a trailing Z)")
        return value.astimezone(UTC)
    return DEFAULT


def start_session() -> None:
    """Travel for the whole process (collection included); exported for child processes."""
    global _session
    moment = instant()
    if moment is None:
        os.environ[ENV] = "real"
        return
    os.environ[ENV] = moment.isoformat().replace("+00:00", "Z")
    if _session is None:
        _session = time_machine.travel(moment, tick=True)
        _session.start()


@contextlib.contextmanager
def at_instant() -> Iterator[None]:
    moment = instant()
    if moment is None:
        yield
        return
    with time_machine.travel(moment, tick=True):
        yield


def describe() -> str:
    moment = instant()
    if moment is None:
        return f"clock: the host's ({ENV}=real)"
    return f"clock: every test starts at {moment:%Y-%m-%dT%H:%M:%SZ} ({ENV} to change)"
