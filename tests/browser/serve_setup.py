"""The browser tests' WSGI entry: builds a fresh database with the demo data, then serves.

gunicorn imports `tests.browser.serve_setup:app` with DATABASE_URL pointing at an empty
SQLite file: the schema comes from the models (the database layer's migrations are tested
elsewhere), then the demo data and its history exactly as `flask seed` loads them (the
history laid out around the suite's frozen "today"). Doing it in the server's own process
saves a second import of the application on a busy CI machine.
"""

from __future__ import annotations

from booking import create_app
from booking.extensions import db
from tests import clock


def _freeze_clock() -> None:
    """The server runs from the suite's instant (tests/clock.py), as the tests do."""
    moment = clock.instant()
    if moment is not None:
        import time_machine

        time_machine.travel(moment, tick=True).start()


def build():
    from booking import seeds

    application = create_app()
    with application.app_context():
        db.create_all()
        seeds.seed(db.session)  # the demo data and its history, as `flask seed` loads them
        db.session.remove()
        for engine in db.engines.values():
            engine.dispose()
    return application


_freeze_clock()
app = build()
