"""Demo data from the source documents (shared/seed-facts.md): `seed` is what `flask seed`
loads (and the browser tests' server): demo.py's organisations, spaces and campaigns,
then history.py's companies and their bookings."""

from __future__ import annotations

from sqlalchemy.orm import Session


def seed(session: Session) -> tuple[dict[str, int], dict[str, int]]:
    """Loads the demo data and its history, committed; (rows demo.load created, what
    history.load made). Running it again changes nothing."""
    from booking.seeds import demo, history, members

    created = demo.load(session)
    session.commit()
    made = history.load(session)
    made.update(members.load(session))
    session.commit()
    return created, made
