"""What the readiness probe asks: can the database answer now?"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session


def database_ready(session: Session) -> bool:
    """False when the database does not answer a trivial query (the request's edge rolls
    the failed transaction back with the error answer)."""
    try:
        session.execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError:
        return False
    return True
