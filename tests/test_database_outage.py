"""The database connection dies in the middle of a booking request (issue 9).

No mock: on PostgreSQL the request's own server backend is ended with
pg_terminate_backend (what `pg_ctl stop -m fast` does to every backend) at two moments of
POST /api/v1/bookings: as the booking's COMMIT is sent (503 problem+json, nothing stored),
and after the answer is made, before the session's teardown ROLLBACK (201, stored: this
one used to escape the app and become gunicorn's 500). A retry with the Idempotency-Key
then gets the stored answer. SQLite has no server connection to lose: PostgreSQL only.
"""

from __future__ import annotations

import psycopg
import pytest
import sqlalchemy as sa

from booking.db import IMMEDIATE_OPTION
from booking.extensions import db
from booking.models import Booking
from tests import worlds
from tests.conftest import make_app
from tests.worlds import future_day


@pytest.fixture
def world(app, make, backend, tmp_path):
    if backend != "postgresql":
        pytest.skip("ending a server backend needs PostgreSQL")
    w = worlds.world(make, capacity=6, price=2000, token=True)
    # A second app whose requests push their own app context, as under gunicorn: its
    # session is removed (rolled back, connection returned) at the end of each request.
    served = make_app(app.config["SQLALCHEMY_DATABASE_URI"], MAIL_DIR=str(tmp_path / "mail"))
    return {"app": served, "url": app.config["SQLALCHEMY_DATABASE_URI"],
            "headers": {**w["headers"], "Idempotency-Key": "outage-1"},
            "body": {"unit_id": w["desks"].id, "date": future_day().isoformat(), "seats": 1}}


def _end_backend(url: str, pid: int) -> None:
    """What `pg_ctl stop -m fast` does to a backend: FATAL 57P01, connection closed."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))


def _backend_pid(connection: sa.Connection) -> int:
    return connection.connection.dbapi_connection.info.backend_pid


def _stored() -> int:
    db.session.rollback()
    return db.session.scalar(sa.select(sa.func.count()).select_from(Booking))


def test_connection_ends_after_the_answer_is_made(world):
    """The booking committed and the answer built; the connection dies before the
    request's session is closed: the client gets its 201, the booking is stored."""
    served = world["app"]

    @served.after_request
    def _end_connection(response):
        if response.status_code == 201:
            _end_backend(world["url"], _backend_pid(db.session.connection()))
        return response

    res = served.test_client().post("/api/v1/bookings", json=world["body"], headers=world["headers"])
    assert res.status_code == 201, res.data
    assert _stored() == 1
    # The worker goes on: its pool replaces the dead connection.
    again = served.test_client().post("/api/v1/bookings", json=world["body"],
                                      headers=world["headers"])
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json == res.json and _stored() == 1


def test_connection_ends_at_commit(world):
    """The connection dies as the booking's COMMIT is sent: 503 problem+json, nothing
    stored, and the client's retry with the same key books it once."""
    served = world["app"]
    with served.app_context():
        engine = db.engine
    armed = [True]

    @sa.event.listens_for(engine, "commit")
    def _end_connection(connection):
        if armed[0] and _booking_pending(connection):
            armed[0] = False
            _end_backend(world["url"], _backend_pid(connection))

    client = served.test_client()
    res = client.post("/api/v1/bookings", json=world["body"], headers=world["headers"])
    assert not armed[0], "the COMMIT of the booking was not reached"
    assert res.status_code == 503, res.data
    assert res.mimetype == "application/problem+json" and res.headers["Retry-After"]
    assert _stored() == 0
    retry = client.post("/api/v1/bookings", json=world["body"], headers=world["headers"])
    assert retry.status_code == 201, retry.data
    assert _stored() == 1


def _booking_pending(connection: sa.Connection) -> bool:
    """Whether this is the transaction in which a booking is decided (booking.db.begin_write)."""
    return bool(connection.get_execution_options().get(IMMEDIATE_OPTION))


def _pooled_backend(served) -> int:
    """The server backend of the one connection the served app's pool holds."""
    with served.app_context():
        pid = _backend_pid(db.session.connection())
        db.session.remove()  # back to the pool, idle
    return pid


def _book(served, key: str, world) -> tuple[int, bytes]:
    res = served.test_client().post("/api/v1/bookings", json=world["body"],
                                    headers={**world["headers"], "Idempotency-Key": key})
    return res.status_code, res.data


def test_a_connection_the_server_ended_is_replaced_before_use(world, monkeypatch):
    """The database restarted while the worker's pooled connection sat idle, moments after
    its last use (no ping due by the clock): the server's goodbye waiting on the socket
    gets it pinged at checkout, the ping fails, and the request runs on a new connection
    as if nothing had happened."""
    import booking.db

    monkeypatch.setattr(booking.db, "PING_AFTER_IDLE_SECONDS", 3600.0)
    served = world["app"]
    assert _book(served, "ended-1", world)[0] == 201
    _end_backend(world["url"], _pooled_backend(served))
    status, body = _book(served, "ended-2", world)
    assert status == 201, body
    assert _stored() == 2


@pytest.mark.parametrize(("window", "pinged"), [(3600.0, False), (0.0, True)])
def test_only_a_connection_idle_past_the_window_is_pinged(world, monkeypatch, window, pinged):
    """A connection given back moments ago is used as it is; one idle longer answers a
    ping first (the empty statement SQLAlchemy's pool_pre_ping sends too, counted on the
    real connections' cursors), and the request then runs on it."""
    import booking.db

    pings = []
    execute = psycopg.Cursor.execute

    def counted(self, query, *args, **kwargs):
        if query == ";":
            pings.append(self.connection.info.backend_pid)
        return execute(self, query, *args, **kwargs)

    monkeypatch.setattr(booking.db, "PING_AFTER_IDLE_SECONDS", window)
    served = world["app"]
    assert _book(served, "window-1", world)[0] == 201
    monkeypatch.setattr(psycopg.Cursor, "execute", counted)
    assert _book(served, "window-2", world)[0] == 201
    assert bool(pings) is pinged, pings
    assert _stored() == 2
