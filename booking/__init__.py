"""Workspace booking for Japan's telework supporter organisations."""

from __future__ import annotations

from flask import Flask

from booking.config import (
    INSTANCE_DIR,
    check_password_hash_method,
    check_secret_key,
    from_environment,
)


def create_app(config_overrides: dict | None = None) -> Flask:
    """Defaults, then the environment, then the overrides (tests pass their own)."""
    from booking.unit_of_work import App

    app = App(__name__, instance_path=str(INSTANCE_DIR), instance_relative_config=False)
    app.config.from_mapping(from_environment())
    if config_overrides:
        app.config.update(config_overrides)
    check_secret_key(app.config.get("SECRET_KEY"), debug=app.debug, testing=app.testing)
    check_password_hash_method(app.config["PASSWORD_HASH_METHOD"], debug=app.debug,
                               testing=app.testing)
    # The default SQLite file, uploads and .eml mail live here; a fresh clone has none.
    INSTANCE_DIR.mkdir(parents=True, exist_ok=True)

    from booking import cli, throttles, web
    from booking import db as database
    from booking import logging as app_logging
    from booking.blueprints import api
    from booking.extensions import babel, csrf, db, limiter, login_manager, migrate
    from booking.services import catalogue, loads, spaces

    # The ORM hooks, installed here rather than as a side effect of some import: the
    # engine's (SQLite's busy timeout and BEGIN IMMEDIATE; which transactions wrote), the
    # search catalogue's and the unit loads' (kept in step with every flush and bulk
    # statement), and the photos' (in the catalogue's change log: the space page keeps
    # them). In this order: loads' do_orm_execute hook runs a bulk statement itself
    # and answers it, so that a hook registered after it would not see the statement.
    database.install()
    catalogue.install()
    spaces.install()
    loads.install()

    app_logging.init_app(app)  # first: every later hook and log line sees the request id
    if app.config.get("PROXY_COUNT"):
        from werkzeug.middleware.proxy_fix import ProxyFix

        hops = app.config["PROXY_COUNT"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)
    db.init_app(app)
    migrate.init_app(app, db, directory=str(web.MIGRATIONS_DIR), render_as_batch=True)
    login_manager.init_app(app)
    csrf.init_app(app)
    babel.init_app(app, locale_selector=web.select_locale, timezone_selector=lambda: "Asia/Tokyo")
    throttles.init_app(app)  # a Redis storage gets short timeouts and its fallback
    limiter.init_app(app)

    web.init_app(app)
    csrf.exempt(api.bp)  # bearer tokens, never cookies: nothing to forge
    cli.init_app(app)
    return app
