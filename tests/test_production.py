"""Production plumbing: request ids and JSON logs, static caching, readiness, and a clean 503
when the database cannot be reached (a real refused connection, not a mock)."""

from __future__ import annotations

import io
import json
import logging
import socket

import pytest

from booking import create_app
from booking.logging import JsonFormatter


@pytest.fixture
def app_config() -> dict:
    return {"LOG_REQUESTS": True}


@pytest.fixture
def access_lines():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("booking.access")
    # Another test in this worker may have quietened it (the search benchmark does).
    level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def test_request_id_is_echoed_and_logged(client, access_lines):
    response = client.get("/healthz", headers={"X-Request-ID": "lb-42.abc"})
    assert response.headers["X-Request-ID"] == "lb-42.abc"
    line = access_lines()[-1]
    assert line["request_id"] == "lb-42.abc"
    assert line["path"] == "/healthz" and line["status"] == 200 and line["method"] == "GET"
    assert line["level"] == "info" and line["logger"] == "booking.access"
    assert isinstance(line["duration_ms"], float)


def test_unsafe_request_id_is_replaced(client, access_lines):
    response = client.get("/healthz", headers={"X-Request-ID": "bad id\" with spaces"})
    generated = response.headers["X-Request-ID"]
    assert generated != "bad id\" with spaces" and len(generated) == 32
    assert access_lines()[-1]["request_id"] == generated
    # Without a header every request gets its own id.
    first = client.get("/healthz").headers["X-Request-ID"]
    assert first != client.get("/healthz").headers["X-Request-ID"]


def test_secret_path_parameters_are_not_logged(app, client, access_lines):
    @app.get("/calendar-test/<secret>.ics")
    def _feed(secret: str):
        return "ok"

    client.get("/calendar-test/s3cr3t-value.ics")
    line = access_lines()[-1]
    assert "s3cr3t-value" not in json.dumps(line)
    assert line["path"] == "/calendar-test/[redacted].ics"


def test_static_files_are_cacheable(client):
    with client.get("/static/css/site.css") as response:
        assert response.status_code == 200
        assert "max-age=43200" in response.headers["Cache-Control"]
        etag = response.headers["ETag"]
    with client.get("/static/css/site.css", headers={"If-None-Match": etag}) as again:
        assert again.status_code == 304


def test_readyz_checks_the_database(client):
    response = client.get("/readyz")
    assert response.status_code == 200 and response.json == {"status": "ready"}


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed again when the block ends: nothing listens


@pytest.fixture
def app_without_database(tmp_path):
    url = f"postgresql+psycopg://postgres@127.0.0.1:{_closed_port()}/nowhere"
    return create_app({
        "TESTING": True, "SECRET_KEY": "test", "SQLALCHEMY_DATABASE_URI": url,
        "RATELIMIT_ENABLED": False, "RATELIMIT_STORAGE_URI": "memory://",
        "WTF_CSRF_ENABLED": False, "MAIL_DIR": str(tmp_path / "mail"),
        "UPLOAD_DIR": str(tmp_path / "uploads"),
    })


def test_database_down_gives_503_problem_and_page(app_without_database):
    client = app_without_database.test_client()
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.mimetype == "application/problem+json"
    assert ready.json["status"] == 503 and ready.headers["Retry-After"]

    # The API: a route that reads the database answers a problem, never a 500.
    api = client.post("/api/v1/tokens", json={"email": "a@example.jp", "password": "x" * 12})
    assert api.status_code == 503, api.data
    assert api.mimetype == "application/problem+json"
    assert api.json["title"] == "Service Unavailable"
    assert api.headers["Retry-After"] == "5"

    # An HTML page: a 503 page, with the request id.
    page = client.get("/")
    assert page.status_code == 503
    assert page.mimetype == "text/html"
    assert b"503" in page.data
    assert page.headers["X-Request-ID"]

    # The process-level health check does not depend on the database.
    assert client.get("/healthz").status_code == 200


def test_behind_a_proxy_the_client_address_is_used(tmp_path, access_lines):
    app = create_app({
        "TESTING": True, "SECRET_KEY": "test", "LOG_REQUESTS": True, "PROXY_COUNT": 1,
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'x.sqlite3'}",
        "RATELIMIT_ENABLED": False, "RATELIMIT_STORAGE_URI": "memory://",
    })
    client = app.test_client()
    client.get("/healthz", headers={"X-Forwarded-For": "203.0.113.7"})
    assert access_lines()[-1]["remote_addr"] == "203.0.113.7"
    # Without PROXY_COUNT a forged header changes nothing.
    plain = create_app({
        "TESTING": True, "SECRET_KEY": "test", "LOG_REQUESTS": True,
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'x.sqlite3'}",
        "RATELIMIT_ENABLED": False, "RATELIMIT_STORAGE_URI": "memory://",
    })
    plain.test_client().get("/healthz", headers={"X-Forwarded-For": "203.0.113.7"})
    assert access_lines()[-1]["remote_addr"] == "127.0.0.1"


@pytest.mark.parametrize("key", [None, "", "dev-only-not-secret"])
def test_the_app_refuses_to_start_without_a_secret_key(tmp_path, monkeypatch, key):
    """Outside debug mode and tests, a missing or development SECRET_KEY stops create_app
    with a message that says what to set (anyone could forge sessions signed with it)."""
    from booking.config import ConfigurationError

    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.delenv("FLASK_DEBUG", raising=False)
    overrides = {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'x.sqlite3'}"}
    if key is not None:
        overrides["SECRET_KEY"] = key
    with pytest.raises(ConfigurationError, match=r"SECRET_KEY is not set.*secrets\.token_hex"):
        create_app(overrides)
    # Debug mode (make run) and tests accept the development key; a real key always starts.
    assert create_app({**overrides, "DEBUG": True}).debug
    assert create_app({**overrides, "TESTING": True}).testing
    assert create_app({**overrides, "SECRET_KEY": "a-real-secret-of-this-deployment"})


def test_production_hashes_passwords_with_scrypt(tmp_path, monkeypatch):
    """The suite hashes with one round of PBKDF2 (tests/conftest.py) to save minutes; a
    deployment hashes with scrypt, and an app that is neither a test nor in debug mode
    refuses any other method rather than store weak hashes."""
    from booking.config import ConfigurationError
    from booking.extensions import db
    from booking.services import accounts

    monkeypatch.delenv("FLASK_DEBUG", raising=False)
    overrides = {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'x.sqlite3'}",
                 "SECRET_KEY": "a-real-secret-of-this-deployment"}
    with pytest.raises(ConfigurationError, match="PASSWORD_HASH_METHOD"):
        create_app({**overrides, "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1"})
    app = create_app(overrides)
    with app.app_context():
        db.create_all()
        user = accounts.create_user(db.session, email="owner@example.jp",
                                    password="a long enough passphrase", name="所有者",
                                    verified=True)
        assert user.password_hash.startswith("scrypt:32768:8:1$")
        accounts.confirm_password(user, "a long enough passphrase")
        db.session.remove()
        for engine in db.engines.values():
            engine.dispose()
