"""Structured logs: one JSON object per line, each tagged with the id of its request.

Every request gets an id: the caller's `X-Request-ID` when it is a safe token (a proxy or
load balancer in front of several app servers usually sets one), a new random one
otherwise. It is echoed in the response header, written on the access line of the request
and on every log line written while the request runs, so one request can be followed
through the proxy, the app servers and the logs.

Settings (environment or config): `LOG_FORMAT` `json` (default) or `text`; `LOG_LEVEL`
(default INFO); `LOG_REQUESTS` writes one access line per request (default on, except in
tests). booking/gunicorn_conf.py uses `JsonFormatter` for gunicorn's own lines too.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
import uuid
from datetime import UTC, datetime

from flask import Flask, Response, g, has_request_context, request
from flask.logging import default_handler

REQUEST_ID_HEADER = "X-Request-ID"
# A caller's id is kept only if it is short and plain: it goes into logs and headers.
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:+=@/-]{1,128}$")
# Attributes every LogRecord has; anything else was passed with `extra=` and is logged.
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}
# Path parameters that are secrets (subscription feeds): never written to a log.
_SECRET_PARTS = ("secret", "token", "key")


def current_request_id() -> str | None:
    if not has_request_context():
        return None
    request_id = g.get("request_id")
    if request_id is None:
        # A request stopped before our before_request ran (an early 429, say) still gets one.
        request_id = g.request_id = _incoming_or_new_id()
    return request_id


def _incoming_or_new_id() -> str:
    incoming = request.headers.get(REQUEST_ID_HEADER, "")
    return incoming if _SAFE_ID.match(incoming) else uuid.uuid4().hex


class JsonFormatter(logging.Formatter):
    """A log record as one line of JSON: ts, level, logger, msg, request_id, extras, exc."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None) or current_request_id()
        if request_id:
            entry["request_id"] = request_id
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key not in entry and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """Readable lines for development, still with the request id."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        record.request_id = getattr(record, "request_id", None) or current_request_id() or "-"
        return super().format(record)


def _setting(app: Flask, name: str, default: str) -> str:
    value = app.config.get(name)
    if value is None:
        value = os.environ.get(name, default)
    return str(value)


def _truthy(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _configure_logger(app: Flask) -> None:
    """One handler on the `booking` logger (stderr), whatever number of apps is created."""
    logger = app.logger  # named after the package: "booking"; "booking.access" propagates to it
    logger.removeHandler(default_handler)
    formatter = TextFormatter() if _setting(app, "LOG_FORMAT", "json") == "text" else JsonFormatter()
    handler = next((h for h in logger.handlers if getattr(h, "_booking", False)), None)
    if handler is None:
        handler = logging.StreamHandler(sys.stderr)
        handler._booking = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
    handler.setFormatter(formatter)
    logger.setLevel(_setting(app, "LOG_LEVEL", "INFO").upper())
    # Records still propagate to the root logger, which has no handler in production (so
    # no line is written twice) and where pytest's caplog listens in tests.


def _logged_path() -> str:
    path = request.path
    for name, value in (request.view_args or {}).items():
        if any(part in name.lower() for part in _SECRET_PARTS):
            path = path.replace(str(value), "[redacted]")
    return path


def init_app(app: Flask) -> None:
    """Call first in create_app, so that the request id exists before any other hook runs."""
    _configure_logger(app)
    access = logging.getLogger("booking.access")
    log_requests = _truthy(_setting(app, "LOG_REQUESTS", "false" if app.testing else "true"))

    @app.before_request
    def _start_request() -> None:
        g.request_id = _incoming_or_new_id()
        g.request_started = time.perf_counter()

    @app.after_request
    def _finish_request(response: Response) -> Response:
        request_id = current_request_id()
        if request_id:
            response.headers[REQUEST_ID_HEADER] = request_id
        if log_requests:
            started = g.get("request_started")
            rule = request.url_rule
            access.info(
                "request",
                extra={
                    "method": request.method,
                    "path": _logged_path(),
                    "route": rule.rule if rule is not None else None,
                    "status": response.status_code,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2)
                    if started is not None else None,
                    "remote_addr": request.remote_addr,
                },
            )
        return response
