"""Request plumbing shared by every blueprint: locale, login, errors, headers, filters."""

from __future__ import annotations

import contextlib
from pathlib import Path

import psycopg
from flask import Flask, g, jsonify, render_template, request, session
from flask.json.provider import DefaultJSONProvider
from flask_babel import lazy_gettext as _l
from flask_babel import refresh
from sqlalchemy import exc as sa_exc
from werkzeug.exceptions import BadRequest, HTTPException
from werkzeug.routing import IntegerConverter

from booking.extensions import db, login_manager
from booking.formatting import FILTERS, current_locale, local_date  # noqa: F401 - re-exported: views and booking.forms import them from here

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def select_locale() -> str:
    lang = request.args.get("lang") or session.get("lang")
    if lang in ("ja", "en"):
        return lang
    return "ja"  # Japanese first, whatever the browser says: the service is for Japan.


@login_manager.user_loader
def load_user(identity: str):
    from booking.models import User

    user_id, _sep, token = identity.partition(":")
    if not user_id.isdigit():
        return None
    user = db.session.get(User, int(user_id))
    # A changed session token logs the user out on every device.
    if user is None or user.session_token != token:
        return None
    return user


def wants_json() -> bool:
    return request.path.startswith("/api/")


def api_style() -> bool:
    """A request from an API client rather than a browser: under /api/, with an
    Authorization header, or preferring JSON to HTML."""
    if wants_json() or "Authorization" in request.headers:
        return True
    best = request.accept_mimetypes.best_match(
        ["text/html", "application/json", "application/problem+json"])
    return best in ("application/json", "application/problem+json")


def problem_type(code: str) -> str:
    """The `type` URI of a problem code: GET it for the code's title, status and meaning."""
    from flask import current_app

    base = (current_app.config.get("PUBLIC_URL") or request.host_url).rstrip("/")
    return f"{base}/api/v1/problems/{code}"


def problem(status: int, code: str | None = None, detail: str = "", **extra):
    """An RFC 9457 problem document: `type` the URI of its code, `title` the code's fixed
    English title, `detail` this occurrence (in the user's language where it is a rule's
    message). A status without a code of its own is `about:blank` with the status phrase."""
    from booking.services.errors import CODE_OF_STATUS, problem_codes, problem_title

    code = code or CODE_OF_STATUS.get(status)
    if code is not None and code in problem_codes():
        body = {"type": problem_type(code), "title": problem_title(code), "status": status,
                "code": code}
    else:
        from http import HTTPStatus

        phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
        body = {"type": "about:blank", "title": phrase, "status": status,
                "code": code or f"http_{status}"}
    if detail:
        body["detail"] = detail
    body.update(extra)
    response = jsonify(body)
    response.status_code = status
    response.mimetype = "application/problem+json"
    return response


def _handle_http_error(error: HTTPException):
    if wants_json():
        return problem(error.code or 500, detail=error.description or "")
    return render_template("error.html", code=error.code, name=error.name), error.code


def _handle_unexpected(error: Exception):
    with contextlib.suppress(Exception):  # a failed rollback must not hide the error itself
        db.session.rollback()
    from flask import current_app

    current_app.logger.exception("unhandled error")
    if wants_json():
        return problem(500, "internal_error", "An unexpected error occurred.")
    return render_template("error.html", code=500, name="Internal Server Error"), 500


# Errors that mean "the database cannot be reached now" (restart, failover, network, a full
# pool, a lock or statement timeout): the request may be retried, so 503 + Retry-After, not
# 500. The pool hands the next request a fresh connection once the database is back
# (booking.db pings idle connections at checkout; a dead one is dropped).
DATABASE_DOWN = (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError,
                 psycopg.OperationalError, psycopg.InterfaceError)


def _handle_database_down(error: Exception):
    from flask import current_app

    with contextlib.suppress(Exception):  # the connection may be gone; the pool discards it
        db.session.rollback()
    current_app.logger.warning("database unavailable: %s", _error_name(error))
    if wants_json():
        response = problem(503, "service_unavailable",
                           "The database is unavailable. Try again in a few seconds.")
    else:
        try:
            body = render_template("error.html", code=503, name="Service Unavailable")
        except DATABASE_DOWN:  # the page itself needed the database (the logged-in user)
            body = "<!doctype html><title>503</title><h1>503 Service Unavailable</h1>"
        response = current_app.make_response((body, 503))
    response.headers["Retry-After"] = "5"
    return response


def _error_name(error: BaseException) -> str:
    """`OperationalError (AdminShutdown)`: the driver's error says what the database did."""
    orig = getattr(error, "orig", None)
    return f"{type(error).__name__} ({type(orig).__name__})" if orig is not None else type(error).__name__


def _end_session(_error: BaseException | None) -> None:
    """Close the request's session, also when its connection has died since the last query.

    Runs after the answer is made: a read after the booking's COMMIT leaves a transaction
    open until here, and when the database stops meanwhile its ROLLBACK fails. Raised from
    a teardown, that error would reach gunicorn, which answers 500 instead of the answer
    already made (the booking stored and answered 201 by the app). The connection is
    invalidated by then (the pool opens a new one); closing again only forgets the session.
    Registered after Flask-SQLAlchemy's teardown, so it runs before it (reverse order).
    """
    try:
        db.session.remove()
    except DATABASE_DOWN as error:
        from flask import current_app

        current_app.logger.warning("database connection lost after the answer: %s",
                                   _error_name(error))
        db.session.remove()


# ------------------------------------------------------------------ hostile input at the edge

MAX_JSON_DEPTH = 32  # no body of ours nests more than a few levels


class JSONTooDeep(ValueError):
    """A JSON document nested deeper than MAX_JSON_DEPTH."""


def _json_strings(value, max_depth: int = MAX_JSON_DEPTH):
    """Every string (keys too) of a parsed JSON value, without recursion; JSONTooDeep
    when it nests deeper than `max_depth`."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, dict | list):
            if depth > max_depth:
                raise JSONTooDeep(f"JSON nested deeper than {max_depth} levels")
            if isinstance(item, dict):
                yield from (k for k in item if isinstance(k, str))
                item = item.values()
            stack.extend((child, depth + 1) for child in item)


class GuardedJSONProvider(DefaultJSONProvider):
    # UTF-8 as it is: 静岡 in the answer, not "\\u9759\\u5ca1".
    ensure_ascii = False

    """Flask's JSON, read with a depth limit: Python's parser recurses, so a body of
    100 000 nested brackets raised RecursionError (a 500) in every view that read JSON.
    Too deep is a ValueError like any malformed body: request.get_json() answers 400,
    get_json(silent=True) gives None."""

    def loads(self, s, **kwargs):
        try:
            value = super().loads(s, **kwargs)
        except RecursionError:
            raise JSONTooDeep(f"JSON nested deeper than {MAX_JSON_DEPTH} levels") from None
        for _string in _json_strings(value):
            pass
        return value


class HostileInput(BadRequest):
    """400 for input no view should ever see (NUL bytes, JSON nested too deep)."""


NUL_REFUSED = "NUL bytes (\\0) are not accepted in a request."


def _refuse_hostile_input() -> None:
    """Runs before every other hook: input that no field of ours may hold is refused at
    once, whatever the route, with a 400 (problem+json under /api/, the error page
    elsewhere). PostgreSQL refuses NUL in text, so a NUL that reached a query was a 500.
    A malformed JSON body is left to the view (its 422 says which field); only a body
    nested too deep is refused here."""
    if "\0" in request.path or any("\0" in k or "\0" in v
                                   for k, v in request.args.items(multi=True)):
        raise HostileInput(NUL_REFUSED)
    # (Not Authorization: a credential is only ever hashed, and a malformed one is the
    # API's documented 401.)
    if any("\0" in value for name, value in request.headers.items()
           if name.lower() != "authorization"):
        raise HostileInput(NUL_REFUSED)
    if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        fields = request.form.items(multi=True)
        names = [f.filename or "" for _k, f in request.files.items(multi=True)]
        if any("\0" in k or "\0" in v for k, v in fields) or any("\0" in n for n in names):
            raise HostileInput(NUL_REFUSED)
    elif request.is_json and request.content_length != 0:
        from flask import current_app

        try:
            value = current_app.json.loads(request.get_data(cache=True))
        except JSONTooDeep as error:
            raise HostileInput(str(error)) from None
        except ValueError:
            return  # malformed: the view says what is wrong with it
        if any("\0" in string for string in _json_strings(value)):
            raise HostileInput(NUL_REFUSED)


def _security_headers(response):
    tile_origin = g.get("tile_origin", "")
    response.headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; script-src 'self'; style-src 'self'; "
        f"img-src 'self' data: {tile_origin}; object-src 'none'; base-uri 'self'; "
        "form-action 'self'; frame-ancestors 'none'",
    )
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    response.headers.setdefault("Permissions-Policy", "camera=(), microphone=(), payment=()")
    # Pages shown to a logged-in user carry personal data (APPI): no shared caches, and
    # no copy left on a shared computer's disk after log-out.
    # (Only a user this request already loaded: no database query here.)
    user = g.get("_login_user")
    if (request.endpoint != "static" and "Cache-Control" not in response.headers
            and getattr(user, "is_authenticated", False)):
        response.headers["Cache-Control"] = "no-store"
    return response


class DatabaseIntConverter(IntegerConverter):
    """`<int:…>` limited to a 32-bit signed INTEGER (every id column of the schema)."""

    def __init__(self, map, *args, **kwargs) -> None:  # `map`: werkzeug's name
        kwargs.setdefault("max", 2**31 - 1)
        super().__init__(map, *args, **kwargs)


def local_path(target: str | None, default: str = "/") -> str:
    """`target` when it is a path on this site, else `default`: never an open redirect.

    Browsers read a backslash as a slash ("/\\evil.example" is "//evil.example") and
    drop tabs and newlines inside URLs, so those are refused too."""
    from urllib.parse import urlsplit

    if not target or any(c in target for c in "\\\t\r\n") or any(ord(c) < 32 for c in target):
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return default
    return target


def _unauthorized():
    """Anonymous where a login is needed: 401 problem+json for the API, else the log-in page."""
    from flask import redirect, url_for

    if wants_json():
        return problem(401, "unauthorized", "Log in or send a valid bearer token.")
    target = request.full_path.rstrip("?") if request.method == "GET" else ""
    return redirect(url_for("account.login", next=target or None))


def _production_cookies(app: Flask) -> None:
    """Behind HTTPS (PUBLIC_URL https://), cookies are Secure; always HttpOnly, SameSite=Lax."""
    if app.config.get("PUBLIC_URL", "").startswith("https://") and not app.testing:
        app.config["SESSION_COOKIE_SECURE"] = True
        app.config["REMEMBER_COOKIE_SECURE"] = True
    app.config.setdefault("REMEMBER_COOKIE_SAMESITE", "Lax")
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    app.config["REMEMBER_COOKIE_HTTPONLY"] = True
    app.config.setdefault("SESSION_COOKIE_SAMESITE", "Lax")


def init_app(app: Flask) -> None:
    from urllib.parse import urlsplit

    from booking.blueprints import register_blueprints

    tile = urlsplit(app.config["MAP_TILE_URL"])
    tile_origin = f"{tile.scheme}://{tile.netloc}" if tile.netloc else ""

    app.json = GuardedJSONProvider(app)
    # First of all hooks (before CSRF, the rate limiter's keys, the user's loading).
    app.before_request_funcs.setdefault(None, []).insert(0, _refuse_hostile_input)

    @app.before_request
    def _per_request_state():
        g.tile_origin = tile_origin
        # Babel caches the locale on `g`, which outlives a request when an app context
        # is already pushed (the CLI, tests): choose the locale afresh for each request.
        refresh()
        # Flask-Login caches the user on `g` too: without this, the first visitor of an
        # app context that outlives requests (tests, the CLI) would be everybody's user.
        g.pop("_login_user", None)

    login_manager.login_view = "account.login"
    login_manager.login_message = None
    login_manager.unauthorized_handler(_unauthorized)
    _production_cookies(app)

    # Ids in URLs fit the database's INTEGER: /spaces/2147483648 is a 404 at routing,
    # not an "integer out of range" (PostgreSQL) or OverflowError (SQLite) as a 500.
    app.url_map.converters["int"] = DatabaseIntConverter
    register_blueprints(app)
    app.register_error_handler(HTTPException, _handle_http_error)
    for database_error in DATABASE_DOWN:
        app.register_error_handler(database_error, _handle_database_down)
    if not app.testing and not app.debug:
        app.register_error_handler(Exception, _handle_unexpected)
    app.after_request(_security_headers)
    app.teardown_appcontext(_end_session)
    # yen, local_date, local_time, local_period, hhmm, distance…: booking.formatting's.
    app.jinja_env.filters.update(FILTERS)
    app.jinja_env.globals["current_locale"] = current_locale
    app.jinja_env.globals["has_endpoint"] = lambda name: name in app.view_functions
    app.jinja_env.globals["role_links"] = _role_links
    from booking.labels import TEMPLATE_GLOBALS

    app.jinja_env.globals.update(TEMPLATE_GLOBALS)


# The surfaces each kind of organisation has: (kind, endpoint, label).
ROLE_LINKS = (
    ("company", "bookings.mine", _l("予約一覧")),
    ("operator", "operator.index", _l("施設の管理")),
    ("municipality", "municipality.index", _l("キャンペーン管理")),
    # Municipalities own spaces too (駒ヶ根市 runs Koto): the same console.
    ("municipality", "operator.index", _l("施設の管理")),
)


def _role_links() -> list[dict]:
    from flask import current_app, url_for
    from flask_login import current_user

    kinds = {m.organisation.kind.value for m in current_user.memberships}
    return [
        {"url": url_for(endpoint), "label": label}
        for kind, endpoint, label in ROLE_LINKS
        if kind in kinds and endpoint in current_app.view_functions
    ]
