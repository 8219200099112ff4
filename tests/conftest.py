"""Fixtures: every database test runs on SQLite and on PostgreSQL.

The `backend` parameter makes each test that uses `app` run twice. Each pytest worker
creates its own PostgreSQL database (dropped at the end) and its own SQLite file; tables
are emptied after each test, so tests may commit, and race tests can use many
connections. PostgreSQL comes from TEST_POSTGRES_URL (default: the local server); when
it is not reachable the PostgreSQL half fails rather than quietly running on SQLite.

Every test starts at one instant (tests/clock.py): by default 2026-12-07T15:30Z, when
Tokyo is already on the next day; `TEST_CLOCK=2027-03-01T14:59:00Z` picks another,
`TEST_CLOCK=real` runs on the host's clock. The clock ticks from there.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest
import sqlalchemy as sa
from psycopg import sql

from booking import create_app
from booking.extensions import db
from tests import clock as test_clock
from tests.factories import Factory
from tests.mailbox import smtp_port, smtp_server  # noqa: F401 — fixtures for the mail tests


def pytest_configure(config) -> None:
    test_clock.start_session()


@pytest.hookimpl(trylast=True)  # after tests/browser/conftest.py marks its tests
def pytest_collection_modifyitems(items) -> None:
    """The long tests (browser walks, benchmarks' smokes, fault checks, the wheel) first,
    each group in its order: the workers then end together, not with one of them alone on
    a minute-long test at the end of the run."""
    items.sort(key=lambda item: not (item.get_closest_marker("slow")
                                     or item.get_closest_marker("browser")))


def pytest_report_header(config) -> str:
    return test_clock.describe()


@pytest.fixture(autouse=True)
def _clock(request) -> Iterator[None]:
    """Each test starts at the suite's instant; a test that needs another travels.

    Tests marked `continuous_clock` keep the clock running from where their module's
    fixtures left it: a server those fixtures started signs sessions with its time, and
    a signature from the future counts as expired."""
    if request.node.get_closest_marker("continuous_clock"):
        yield
        return
    with test_clock.at_instant():
        yield

@pytest.fixture(autouse=True)
def _api_contract() -> Iterator[None]:
    """Every answer under /api/v1 that a test receives matches /api/v1/openapi.json, read
    strictly (tests/api_contract.py): an undocumented field, status or content type fails
    the test that made the request."""
    from flask import request, request_finished

    from tests.api_contract import checked

    wrong: list[str] = []

    def check(sender, response, **_extra) -> None:
        try:
            wrong.extend(checked(sender, request, response))
        except Exception as error:  # a broken check fails the test, not the app
            wrong.append(f"contract check failed: {error!r}")

    request_finished.connect(check)
    try:
        yield
    finally:
        request_finished.disconnect(check)
    assert not wrong, "answers not as /api/v1/openapi.json documents them:\n" + "\n".join(
        dict.fromkeys(wrong))


POSTGRES_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
BACKENDS = [b for b in os.environ.get("TEST_BACKENDS", "sqlite,postgresql").split(",") if b]


def _pg_url(dbname: str) -> str:
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0]
    return f"{base}/{dbname}"


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this worker; dropped afterwards."""
    name = f"booking_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield _pg_url(name)
    finally:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request) -> str:
    return request.param


@pytest.fixture(scope="session")
def database_url(backend: str, request, tmp_path_factory) -> str:
    if backend == "postgresql":
        return request.getfixturevalue("postgres_database")
    return f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'test.sqlite3'}"


# A real hash (tests/test_accounts.py checks production keeps scrypt), one round of it.
CHEAP_PASSWORD_HASH = "pbkdf2:sha256:1"


def make_app(database_url: str, **overrides):
    config = {
        "TESTING": True,
        "SECRET_KEY": "test-secret",
        "SQLALCHEMY_DATABASE_URI": database_url,
        "WTF_CSRF_ENABLED": False,
        "RATELIMIT_ENABLED": False,
        "RATELIMIT_STORAGE_URI": "memory://",
        "SERVER_NAME": "localhost",
        "PUBLIC_URL": "http://localhost",
    }
    config.update(overrides)
    if config["TESTING"]:
        # Scrypt costs ~0.1 s a hash on purpose; the suite makes and logs in thousands of
        # users. An app that plays production (TESTING off) keeps scrypt, as it must.
        config.setdefault("PASSWORD_HASH_METHOD", CHEAP_PASSWORD_HASH)
    app = create_app(config)
    _made_apps.append(app)
    return app


# Apps a test makes besides its own: their connections are closed when the test ends, not
# when the garbage collector finds them (its ResourceWarning would fail whichever test runs).
_made_apps: list = []


@pytest.fixture(autouse=True)
def _close_made_apps() -> Iterator[None]:
    yield
    while _made_apps:
        made = _made_apps.pop()
        with made.app_context():
            for engine in db.engines.values():
                engine.dispose()


@pytest.fixture(scope="session")
def _schema(database_url: str) -> str:
    app = make_app(database_url)
    with app.app_context():
        db.drop_all()
        db.create_all()
        for engine in db.engines.values():
            engine.dispose()
    return database_url


@pytest.fixture
def app_config() -> dict:
    """Settings a test module may override (e.g. CSRF or rate limits on)."""
    return {}


@pytest.fixture
def app(_schema: str, app_config: dict, tmp_path):
    app = make_app(_schema, UPLOAD_DIR=str(tmp_path / "uploads"), MAIL_DIR=str(tmp_path / "mail"),
                   **app_config)
    with app.app_context():
        yield app
        db.session.remove()
        _empty_tables()
        for engine in db.engines.values():
            engine.dispose()


def _empty_tables() -> None:
    with db.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            names = ", ".join(f'"{t.name}"' for t in db.metadata.sorted_tables)
            conn.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            for table in reversed(db.metadata.sorted_tables):
                conn.execute(table.delete())


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def make(app) -> Factory:
    return Factory(db.session)


@pytest.fixture
def login(client):
    """Log a user in through the real form."""

    def _login(user, password: str = Factory.PASSWORD):
        response = client.post("/account/login", data={"email": user.email, "password": password})
        assert response.status_code == 302, response.data
        return user

    return _login


@pytest.fixture
def count_queries(app):
    """Counts SQL statements run inside the `with` block."""
    from contextlib import contextmanager

    @contextmanager
    def _count():
        statements: list[str] = []

        def before(conn, cursor, statement, *args):
            statements.append(statement)

        sa.event.listen(db.engine, "before_cursor_execute", before)
        try:
            yield statements
        finally:
            sa.event.remove(db.engine, "before_cursor_execute", before)

    return _count


@pytest.fixture
def empty_database_url(backend, tmp_path):
    """A database with nothing in it, on the test's backend, for migrations to build."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'migrated.sqlite3'}"
        return
    name = f"booking_mig_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield _pg_url(name)
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
            sql.Identifier(name)))
