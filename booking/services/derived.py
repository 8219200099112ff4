"""Data the application derives from other tables and keeps in step through Session hooks:
the unit loads (services/loads.py) and the search catalogue's change log
(services/catalogue.py). SQL that bypasses the Session (an import, a restore, a benchmark's
COPY) leaves them behind: `rebuild` brings them back."""

from __future__ import annotations

import sqlalchemy as sa

from booking.services import catalogue, loads


def rebuild(connection: sa.Connection) -> int:
    """Recount every unit load from the bookings and make every process read its whole
    search catalogue again; returns the number of load rows written."""
    catalogue.changed_everything(connection)
    return loads.rebuild(connection)
