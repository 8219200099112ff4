"""Settings: defaults, then the environment, then the overrides given to create_app."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

INSTANCE_DIR = Path(os.environ.get("BOOKING_INSTANCE_DIR", Path.cwd() / "instance"))
# Signs sessions when SECRET_KEY is unset: accepted in debug mode (`make run`) and in tests
# only; create_app refuses it anywhere else (check_secret_key).
DEV_SECRET_KEY = "dev-only-not-secret"


class ConfigurationError(RuntimeError):
    """A setting the application cannot run with; the message says what to set."""


def check_secret_key(key: str | None, *, debug: bool, testing: bool) -> None:
    """Refuse the development key (or none) outside debug mode and tests: anyone who read
    this repository could forge a session cookie signed with it."""
    if debug or testing:
        return
    if not key or key == DEV_SECRET_KEY:
        raise ConfigurationError(
            "SECRET_KEY is not set: the development key is accepted only in debug mode "
            "(flask --debug, make run) and in tests. Set SECRET_KEY in the environment to a "
            "long random value, the same on every app server and worker, e.g. "
            "python3 -c 'import secrets; print(secrets.token_hex(32))'")


# Werkzeug's default: scrypt (N=2^15, r=8, p=1), about 0.1 s per hash on purpose.
PASSWORD_HASH_METHOD = "scrypt"


def check_password_hash_method(method: str, *, debug: bool, testing: bool) -> None:
    """A cheaper hash (PASSWORD_HASH_METHOD) is for tests only: the suite creates and logs
    in thousands of users, and scrypt's cost, the point in production, is minutes there."""
    if debug or testing or method == PASSWORD_HASH_METHOD:
        return
    raise ConfigurationError(
        f"PASSWORD_HASH_METHOD={method!r} is accepted only in tests; "
        f"unset it (the default is {PASSWORD_HASH_METHOD!r})")


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _database_url(url: str | None) -> str:
    url = url or f"sqlite:///{INSTANCE_DIR / 'booking.sqlite3'}"
    # psycopg 3 is the only PostgreSQL driver we ship.
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


def from_environment() -> dict:
    """Every setting the application reads, with its default."""
    return {
        "SECRET_KEY": os.environ.get("SECRET_KEY", DEV_SECRET_KEY),
        "SQLALCHEMY_DATABASE_URI": _database_url(os.environ.get("DATABASE_URL")),
        # (Pooled connections idle for a while are pinged by booking.db's checkout hook.)
        "SQLALCHEMY_ENGINE_OPTIONS": {},
        # How new passwords are hashed (werkzeug's method string). Not read from the
        # environment: tests override it (check_password_hash_method).
        "PASSWORD_HASH_METHOD": PASSWORD_HASH_METHOD,
        "REDIS_URL": os.environ.get("REDIS_URL"),
        "PUBLIC_URL": os.environ.get("PUBLIC_URL", "http://127.0.0.1:5000"),
        # Mail: MAIL_URL is smtp://user:pass@host:port (smtps:// for TLS); when it is unset
        # the outbox worker writes .eml files into MAIL_DIR instead of sending.
        "MAIL_URL": os.environ.get("MAIL_URL"),
        "MAIL_FROM": os.environ.get("MAIL_FROM", "テレワーク予約 <noreply@telework.example.jp>"),
        "MAIL_DIR": os.environ.get("MAIL_DIR", str(INSTANCE_DIR / "mail")),
        "REMINDER_HOURS_BEFORE": int(os.environ.get("REMINDER_HOURS_BEFORE", "24")),
        # How long seats freed for a company on a unit's waitlist are held for it to
        # confirm (never past the booking's start). Two hours: someone at work reads the
        # mail within a morning or an afternoon, and a seat not taken still reaches the
        # next in line the same day (services/waitlist.py).
        "WAITLIST_HOLD_MINUTES": int(os.environ.get("WAITLIST_HOLD_MINUTES", "120")),
        # The operators' morning digest of the day's arrivals (services/digest.py): sent by
        # the worker from DIGEST_HOUR o'clock Tokyo time, and not once DIGEST_UNTIL_HOUR
        # has come (a worker back in the afternoon does not send "today's arrivals").
        "DIGEST_HOUR": int(os.environ.get("DIGEST_HOUR", "7")),
        "DIGEST_UNTIL_HOUR": int(os.environ.get("DIGEST_UNTIL_HOUR", "12")),
        # Attempts before the outbox worker parks a message (about a day with the backoff).
        "MAIL_MAX_ATTEMPTS": int(os.environ.get("MAIL_MAX_ATTEMPTS", "30")),
        "UPLOAD_DIR": os.environ.get("UPLOAD_DIR", str(INSTANCE_DIR / "uploads")),
        "MAX_CONTENT_LENGTH": 5 * 1024 * 1024,
        # Cache-Control max-age of static files (seconds); ETag revalidation after that.
        "SEND_FILE_MAX_AGE_DEFAULT": int(os.environ.get("STATIC_MAX_AGE", "43200")),
        # Geocoding: offline gazetteer unless GEOCODER=nominatim.
        "GEOCODER": os.environ.get("GEOCODER", "offline"),
        "NOMINATIM_DOMAIN": os.environ.get("NOMINATIM_DOMAIN", "nominatim.openstreetmap.org"),
        "NOMINATIM_USER_AGENT": os.environ.get("NOMINATIM_USER_AGENT", "telework-booking"),
        "MAP_TILE_URL": os.environ.get(
            "MAP_TILE_URL", "https://cyberjapandata.gsi.go.jp/xyz/std/{z}/{x}/{y}.png"
        ),
        "MAP_TILE_ATTRIBUTION": os.environ.get(
            "MAP_TILE_ATTRIBUTION", "地理院タイル (GSI Japan)"
        ),
        "SESSION_COOKIE_SECURE": _env_bool("SESSION_COOKIE_SECURE", False),
        # A browser session ends at log-out (on the server: see accounts.log_out), when
        # the browser is closed, or this long after its cookie was last written.
        "PERMANENT_SESSION_LIFETIME": timedelta(
            days=int(os.environ.get("SESSION_LIFETIME_DAYS", "31"))),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_HTTPONLY": True,
        "BABEL_DEFAULT_LOCALE": "ja",
        "BABEL_DEFAULT_TIMEZONE": "Asia/Tokyo",
        "LANGUAGES": ["ja", "en"],
        "RATELIMIT_ENABLED": _env_bool("RATELIMIT_ENABLED", True),
        "RATELIMIT_STORAGE_URI": os.environ.get("REDIS_URL") or "memory://",
        # Redis is a helper: asked with these timeouts (no retries); when it fails the
        # counting goes on in this process's memory, and Redis is asked again after
        # RATELIMIT_REDIS_RETRY_SECONDS (booking.throttles.RedisWithFallback). So
        # Flask-Limiter's own fallback is off, and any other limiter error is logged, not
        # turned into a 500.
        "RATELIMIT_REDIS_TIMEOUT_MS": int(os.environ.get("RATELIMIT_REDIS_TIMEOUT_MS", "50")),
        "RATELIMIT_REDIS_RETRY_SECONDS": float(
            os.environ.get("RATELIMIT_REDIS_RETRY_SECONDS", "5")),
        "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": False,
        "RATELIMIT_SWALLOW_ERRORS": True,
        # Several deployments (or a benchmark) may share one Redis: their keys stay apart.
        "RATELIMIT_KEY_PREFIX": os.environ.get("RATELIMIT_KEY_PREFIX", ""),
        # Reverse proxies in front of the app servers whose X-Forwarded-For/-Proto/-Host
        # are trusted (0: none). Behind one, rate limits and logs need the client's address.
        "PROXY_COUNT": int(os.environ.get("PROXY_COUNT", "0")),
        "RATELIMIT_HEADERS_ENABLED": True,
        "WTF_CSRF_TIME_LIMIT": None,
        "API_TOKEN_HOURS": int(os.environ.get("API_TOKEN_HOURS", "720")),
        # E-mail verification (services/accounts.py): how long the mailed link works, and
        # how many links one address is sent in 24 hours (sign-up's and "send again").
        "EMAIL_VERIFY_HOURS": int(os.environ.get("EMAIL_VERIFY_HOURS", "72")),
        "EMAIL_VERIFY_MAILS_PER_DAY": int(os.environ.get("EMAIL_VERIFY_MAILS_PER_DAY", "5")),
        # What one company may do (services/limits.py), counted over the last hour / 24
        # hours whoever of its members acts; 0 turns a limit off. Invitations: each booking
        # made counts one per person it is mailed to (the booker and each attendee).
        "COMPANY_BOOKINGS_PER_HOUR": int(os.environ.get("COMPANY_BOOKINGS_PER_HOUR", "100")),
        "COMPANY_BOOKINGS_PER_DAY": int(os.environ.get("COMPANY_BOOKINGS_PER_DAY", "300")),
        "COMPANY_INVITATIONS_PER_DAY": int(os.environ.get("COMPANY_INVITATIONS_PER_DAY", "500")),
        # How far back calendar feeds list bookings (unset: calendars.FEED_PAST, 90 days).
        "CALENDAR_FEED_PAST_DAYS": (int(os.environ["CALENDAR_FEED_PAST_DAYS"])
                                    if os.environ.get("CALENDAR_FEED_PAST_DAYS") else None),
    }
