"""Builds a fresh database with the demo data for the browser tests' server.

Run as `python -m tests.browser.serve_setup` with DATABASE_URL in the environment: the
schema from the models (the database layer's migrations are tested elsewhere), then the
demo data exactly as `flask seed` loads it.
"""

from __future__ import annotations

from booking import create_app
from booking.extensions import db


def main() -> None:
    from seeds import demo

    app = create_app()
    with app.app_context():
        db.create_all()
        demo.load(db.session)
        db.session.commit()


if __name__ == "__main__":
    main()
