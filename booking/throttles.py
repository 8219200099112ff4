"""Throttles at the request edge, and where they count.

**One budget for guessing a password**, whatever the door: the log-in form, the API's
token endpoint, the current-password fields of the account pages (change password,
delete account). Only failed attempts count (a log-in that works costs nothing):

- per account (the e-mail address, normalised as the log-in looks it up; on the account
  pages the logged-in account's, whatever the request says): 5 a minute; the 6th is
  refused with 429, even with the right password, from any address;
- per client address: 20 a minute, whatever accounts they try (password spraying).

**Sign-up**, by the company form, the supporter form or the API, per client address:
every attempt counts, 20 an hour (so "already registered" cannot be probed faster than
that), and at most 10 accounts made an hour.

**Where the counts live.** With REDIS_URL they are kept in Redis, shared by every app
server. Redis is a helper, not a single point of failure (`RedisWithFallback`): it is
asked with short timeouts and no retries; when it fails, a warning is logged and the
counting goes on in this process's memory, for RATELIMIT_REDIS_RETRY_SECONDS, after
which the next throttled request asks Redis again. While Redis is away the limits are
therefore per process, not shared (they fall back, they do not fail closed: the README
says why). Only the throttled endpoints above ever talk to Redis: bookings, search and
the other pages are not throttled and never wait on it.

Flask-Limiter's own in-memory fallback is not used: it did not cover the counting done
after the response (a Redis error there became a 500), and once Redis had failed it
asked "is Redis back?" from whatever request came next, a booking included.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, ClassVar

import redis
from flask import Flask, request
from flask_limiter.util import get_remote_address
from flask_login import current_user
from limits.storage import MemoryStorage, RedisStorage, Storage
from limits.storage.base import MovingWindowSupport, SlidingWindowCounterSupport
from redis.backoff import NoBackoff
from redis.retry import Retry

from booking.extensions import limiter

log = logging.getLogger(__name__)

GUESSES_PER_ACCOUNT = "5 per minute"
GUESSES_PER_ADDRESS = "20 per minute"
SIGNUP_ATTEMPTS_PER_ADDRESS = "20 per hour"
SIGNUPS_PER_ADDRESS = "10 per hour"

_REDIS_SCHEMES = ("redis", "rediss", "redis+unix")
_FALLBACK = "fallback+"


# --------------------------------------------------------------------------- keys

def _email_asked() -> str | None:
    if request.is_json:
        body = request.get_json(silent=True)
        value = body.get("email") if isinstance(body, dict) else None
    else:
        value = request.form.get("email")
    return value if isinstance(value, str) else None


def _account(email: str | None) -> str:
    """Normalised by the function the log-in looks accounts up with, so that spellings of
    one address share one budget. An empty key makes Flask-Limiter skip the limit (there
    is no account to guess at)."""
    from booking.services.accounts import normalise_email

    if not email:
        return ""
    try:
        normalised = normalise_email(email)
    except ValueError:  # an address the normaliser refuses: no account has it
        normalised = email.strip().lower()
    return "account:" + normalised[:254]


def asked_account_key() -> str:
    """Log-in and tokens: the account named in the form or the JSON body."""
    return _account(_email_asked())


def own_account_key() -> str:
    """The account pages: the logged-in user's own account, whatever the form says."""
    return _account(current_user.email if current_user.is_authenticated else None)


def address_key() -> str:
    return "address:" + (get_remote_address() or "unknown")


def _failed(response) -> bool:
    """A guess failed unless it logged in (302), issued a token (201) or, on the account
    pages, did what was asked (302)."""
    return response.status_code not in (201, 302)


def _created(response) -> bool:
    return response.status_code in (201, 302)


def _guess_limit(key_func: Callable[[], str]):
    return limiter.shared_limit(GUESSES_PER_ACCOUNT, scope="password-guess", key_func=key_func,
                                methods=["POST"], deduct_when=_failed)


_guess_asked_account = _guess_limit(asked_account_key)
_guess_own_account = _guess_limit(own_account_key)
_guess_per_address = limiter.shared_limit(
    GUESSES_PER_ADDRESS, scope="password-guess", key_func=address_key, methods=["POST"],
    deduct_when=_failed)
_signup_attempt = limiter.shared_limit(
    SIGNUP_ATTEMPTS_PER_ADDRESS, scope="signup-attempt", key_func=address_key,
    methods=["POST"])
_signup_made = limiter.shared_limit(
    SIGNUPS_PER_ADDRESS, scope="signup", key_func=address_key, methods=["POST"],
    deduct_when=_created)


def password_guess(view: Callable) -> Callable:
    """For log-in and tokens (the account named in the request): the guessing budget."""
    return _guess_per_address(_guess_asked_account(view))


def own_password_guess(view: Callable) -> Callable:
    """For the account pages that ask the user's current password: the same budget, of
    the logged-in account."""
    return _guess_per_address(_guess_own_account(view))


def signup(view: Callable) -> Callable:
    """For a view that makes an account (and says whether its address is taken)."""
    return _signup_made(_signup_attempt(view))


# --------------------------------------------------------------------------- storage

class RedisWithFallback(Storage, MovingWindowSupport, SlidingWindowCounterSupport):
    """Redis while it answers, this process's memory while it does not.

    Every call goes to Redis unless Redis failed less than `retry_seconds` ago; a failure
    (refused, timed out, any Redis error) logs one warning for the outage and the call is
    answered from memory instead. After `retry_seconds` one request tries Redis again
    (the others keep to memory meanwhile); when it answers, an info line says so and the
    counting is shared again (what was counted in memory meanwhile stays in memory)."""

    STORAGE_SCHEME: ClassVar[list[str]] = [_FALLBACK + scheme for scheme in _REDIS_SCHEMES]

    def __init__(self, uri: str, wrap_exceptions: bool = False, retry_seconds: float = 5.0,
                 **options: Any) -> None:
        super().__init__(uri, wrap_exceptions=wrap_exceptions)
        self.redis = RedisStorage(uri.removeprefix(_FALLBACK), **options)
        self.memory = MemoryStorage()
        self.retry_seconds = float(retry_seconds)
        self._lock = threading.Lock()
        self._away = False
        self._next_try = 0.0

    @property
    def base_exceptions(self) -> tuple[type[Exception], ...]:
        return ()  # nothing escapes: a Redis error is answered from memory

    def _redis_turn(self) -> bool:
        with self._lock:
            if not self._away:
                return True
            now = time.monotonic()
            if now < self._next_try:
                return False
            self._next_try = now + self.retry_seconds  # this request tries; others wait
            return True

    def _call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        if self._redis_turn():
            try:
                result = getattr(self.redis, name)(*args, **kwargs)
            except (redis.RedisError, OSError) as error:
                with self._lock:
                    first = not self._away
                    self._away = True
                    self._next_try = time.monotonic() + self.retry_seconds
                if first:
                    log.warning("rate-limit storage (Redis) unreachable, counting in this "
                                "process's memory meanwhile: %s: %s",
                                type(error).__name__, error)
            else:
                with self._lock:
                    back, self._away = self._away, False
                if back:
                    log.info("rate-limit storage (Redis) answers again")
                return result
        return getattr(self.memory, name)(*args, **kwargs)

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        return self._call("incr", key, expiry, amount)

    def get(self, key: str) -> int:
        return self._call("get", key)

    def get_expiry(self, key: str) -> float:
        return self._call("get_expiry", key)

    def check(self) -> bool:
        return True  # the pair always answers; see _call

    def reset(self) -> int | None:
        self.memory.reset()
        return self._call("reset")

    def clear(self, key: str) -> None:
        self.memory.clear(key)
        self._call("clear", key)

    def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        return self._call("acquire_entry", key, limit, expiry, amount)

    def get_moving_window(self, key: str, limit: int, expiry: int) -> tuple[float, int]:
        return self._call("get_moving_window", key, limit, expiry)

    def acquire_sliding_window_entry(self, key: str, limit: int, expiry: int,
                                     amount: int = 1) -> bool:
        return self._call("acquire_sliding_window_entry", key, limit, expiry, amount)

    def get_sliding_window(self, key: str, expiry: int) -> tuple[int, float, int, float]:
        return self._call("get_sliding_window", key, expiry)

    def clear_sliding_window(self, key: str, expiry: int) -> None:
        self.memory.clear_sliding_window(key, expiry)
        self._call("clear_sliding_window", key, expiry)


def init_app(app: Flask) -> None:
    """Before limiter.init_app: a Redis storage URI gets the fallback and short timeouts."""
    uri = app.config.get("RATELIMIT_STORAGE_URI") or "memory://"
    scheme = uri.partition("://")[0]
    if scheme not in _REDIS_SCHEMES:
        return
    timeout = app.config["RATELIMIT_REDIS_TIMEOUT_MS"] / 1000
    app.config["RATELIMIT_STORAGE_URI"] = _FALLBACK + uri
    app.config["RATELIMIT_STORAGE_OPTIONS"] = {
        **app.config.get("RATELIMIT_STORAGE_OPTIONS", {}),
        "socket_connect_timeout": timeout,
        "socket_timeout": timeout,
        "retry": Retry(NoBackoff(), 0),  # redis-py's default retries 10 times, with backoff
        "retry_seconds": app.config["RATELIMIT_REDIS_RETRY_SECONDS"],
    }
