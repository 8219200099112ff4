"""Sessions that end, one throttle for guessing a password, and Redis as a helper that may
go away (issue 17, findings 7, 12 and 14).

Every test here runs with rate limits on. The Redis tests start their own redis-server on a
free loopback port in a temporary directory (the machine's Redis at 6379 is shared and is
never touched), then stop it or freeze it (SIGSTOP) and check what the application answers.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from datetime import timedelta

import pytest
import redis
import sqlalchemy as sa
import time_machine

from booking import clock
from booking.extensions import db
from booking.models import Booking, User
from booking.services import tokens
from tests import worlds
from tests.conftest import _empty_tables, make_app
from tests.factories import Factory

WRONG = "wrong-password-guess"
COMPANY = {
    "name": "高橋 真理", "password": "long-enough-pass", "company_name": "高橋製作所",
    "prefecture": "13", "address": "東京都大田区",
}
SUPPORTER = {
    "name": "市役所 担当", "password": "long-enough-pass", "kind": "municipality",
    "organisation_name": "府中市", "prefecture": "13",
}
API_ACCOUNT = {"password": "long-enough-pass", "name": "高橋 真理",
               "company": {"name": "高橋製作所", "prefecture": "東京都"}}


@pytest.fixture
def app_config() -> dict:
    return {"RATELIMIT_ENABLED": True, "RATELIMIT_STORAGE_URI": "memory://"}


def _from(address: str) -> dict:
    return {"environ_base": {"REMOTE_ADDR": address}}


def _html_login(client, email: str, password: str = WRONG, address: str = "10.0.0.1") -> int:
    return client.post("/account/login", data={"email": email, "password": password},
                       **_from(address)).status_code


def _api_token(client, email: str, password: str = WRONG, address: str = "10.0.0.1") -> int:
    return client.post("/api/v1/tokens", json={"email": email, "password": password},
                       **_from(address)).status_code


# --------------------------------------------------------------------------- sessions

def _copy_of_session_cookie(app, client):
    """A second browser holding a copy of `client`'s session cookie (a stolen cookie)."""
    cookie = client.get_cookie("session")
    assert cookie is not None
    thief = app.test_client()
    thief.set_cookie("session", cookie.value)
    return thief


def test_a_copied_session_cookie_stops_working_at_logout(app, client, make, login):
    login(make.user("leaving@example.jp"))
    thief = _copy_of_session_cookie(app, client)
    assert thief.get("/account/").status_code == 200  # the copy works while the session lives

    assert client.post("/account/logout").status_code == 302
    assert client.get("/account/").status_code == 302

    replay = thief.get("/account/")
    assert replay.status_code == 302 and "/account/login" in replay.location
    assert thief.get("/account/data.json").status_code == 302


def test_logout_ends_every_browser_session_of_the_account_but_not_its_api_tokens(app, make):
    """The session version is per account: logging out on one device ends the others
    too (the README says so). API tokens are revoked separately (log out everywhere)."""
    user = make.user("two-devices@example.jp")
    laptop, phone = app.test_client(), app.test_client()
    for device in (laptop, phone):
        assert _html_login(device, user.email, Factory.PASSWORD) == 302
    token = laptop.post("/api/v1/tokens", json={"email": user.email,
                                                "password": Factory.PASSWORD}).json["token"]
    assert laptop.post("/account/logout").status_code == 302
    assert phone.get("/account/").status_code == 302
    bearer = {"Authorization": f"Bearer {token}"}
    assert laptop.get("/api/v1/bookings", headers=bearer).status_code == 200
    # Logging in again works, and a new session is a new session.
    assert _html_login(phone, user.email, Factory.PASSWORD) == 302
    assert phone.get("/account/").status_code == 200


def test_a_session_ends_after_its_lifetime_even_without_logout(app, client, make, login):
    days = app.config["PERMANENT_SESSION_LIFETIME"].days
    login(make.user("forgetful@example.jp"))
    thief = _copy_of_session_cookie(app, client)
    with time_machine.travel(clock.now() + timedelta(days=days - 1)):
        assert thief.get("/account/").status_code == 200
    thief = _copy_of_session_cookie(app, client)
    with time_machine.travel(clock.now() + timedelta(days=days, hours=1)):
        assert thief.get("/account/").status_code == 302


def test_session_lifetime_is_a_setting(monkeypatch):
    from booking.config import from_environment

    monkeypatch.setenv("SESSION_LIFETIME_DAYS", "3")
    assert from_environment()["PERMANENT_SESSION_LIFETIME"] == timedelta(days=3)


# --------------------------------------------------------------------------- one throttle

def test_html_login_and_api_tokens_share_one_guess_budget_per_account(app, make):
    """5 wrong passwords a minute per account, wherever they are tried (HTML or API) and
    from whichever address: 3 on the form and 2 on the API use it up."""
    make.user("target@example.jp")
    client = app.test_client()
    assert [_html_login(client, "target@example.jp", address=f"10.1.0.{i}")
            for i in range(3)] == [422] * 3
    assert [_api_token(client, "Target@Example.jp", address=f"10.2.0.{i}")
            for i in range(2)] == [401] * 2
    # The sixth try is refused on both surfaces, even with the right password.
    refused = client.post("/api/v1/tokens", json={"email": "target@example.jp",
                                                  "password": Factory.PASSWORD},
                          **_from("10.3.0.1"))
    assert refused.status_code == 429 and refused.mimetype == "application/problem+json"
    assert _html_login(client, "target@example.jp", Factory.PASSWORD, "10.3.0.2") == 429


def test_api_guesses_use_up_the_html_budget_too(app, make):
    make.user("api-first@example.jp")
    client = app.test_client()
    assert [_api_token(client, "api-first@example.jp", address=f"10.4.0.{i}")
            for i in range(5)] == [401] * 5
    assert _html_login(client, "api-first@example.jp", Factory.PASSWORD, "10.4.1.1") == 429


def test_one_address_spraying_accounts_over_html_and_api_shares_one_budget(app):
    client = app.test_client()
    html = [_html_login(client, f"spray{i}@example.jp", address="10.5.0.1") for i in range(10)]
    api = [_api_token(client, f"spray{i}@example.jp", address="10.5.0.1") for i in range(10, 20)]
    assert html == [422] * 10 and api == [401] * 10
    assert _api_token(client, "spray20@example.jp", address="10.5.0.1") == 429
    assert _html_login(client, "spray21@example.jp", address="10.5.0.1") == 429
    # Another address is not affected.
    assert _html_login(client, "spray22@example.jp", address="10.5.0.2") == 422


def test_guessing_the_current_password_on_the_account_pages_uses_the_same_budget(app, make,
                                                                                   client, login):
    """A stolen session may try the current-password fields: the logged-in account's
    budget, whatever e-mail address the request adds."""
    user = login(make.user("holder@example.jp"))
    other = app.test_client()
    assert [_html_login(other, user.email, address="10.6.0.1") for _ in range(3)] == [422] * 3
    wrong = client.post("/account/password", data={
        "current": WRONG, "password": "another-long-secret", "email": "else@example.jp"})
    assert wrong.status_code == 422
    deleting = client.post("/account/delete", data={"password": WRONG,
                                                    "email": "other@example.jp"})
    assert deleting.status_code == 422
    right = client.post("/account/password", data={
        "current": Factory.PASSWORD, "password": "another-long-secret",
        "email": "third@example.jp"})
    assert right.status_code == 429


def test_successful_logins_use_none_of_the_budget(app, make):
    make.user("regular@example.jp")
    client = app.test_client()
    for _ in range(8):
        assert _html_login(client, "regular@example.jp", Factory.PASSWORD) == 302
        assert _api_token(client, "regular@example.jp", Factory.PASSWORD) == 201
    assert _html_login(client, "regular@example.jp") == 422


def test_probing_registered_addresses_through_sign_up_is_throttled(app, make):
    """Each sign-up attempt counts (not only the accounts made), per address, across the
    company form, the supporter form and the API: the 21st in an hour is refused."""
    make.user("known@example.jp")
    client = app.test_client()
    answers = []
    for i in range(8):
        page = client.post("/account/signup", data={**COMPANY, "email": "known@example.jp"},
                           **_from("10.7.0.1"))
        answers.append(page.status_code)
        assert "既に登録されています" in page.get_data(as_text=True)
        answers.append(client.post("/account/signup/supporter",
                                   data={**SUPPORTER, "email": f"probe{i}@example.jp",
                                         "password": "short"},
                                   **_from("10.7.0.1")).status_code)
    for _ in range(4):
        answers.append(client.post("/api/v1/accounts",
                                   json={**API_ACCOUNT, "email": "known@example.jp"},
                                   **_from("10.7.0.1")).status_code)
    assert answers == [409, 422] * 8 + [409] * 4  # taken (beside the address), too short
    assert client.post("/account/signup", data={**COMPANY, "email": "known@example.jp"},
                       **_from("10.7.0.1")).status_code == 429
    assert client.post("/api/v1/accounts", json={**API_ACCOUNT, "email": "new@example.jp"},
                       **_from("10.7.0.1")).status_code == 429
    # Nobody was signed up by the refused requests; another address still can.
    assert db.session.scalar(sa.select(sa.func.count()).select_from(User)) == 1
    assert client.post("/account/signup", data={**COMPANY, "email": "new@example.jp"},
                       **_from("10.7.0.2")).status_code == 302


# --------------------------------------------------------------------------- Redis away

class RedisProcess:
    """A redis-server of our own on a free loopback port, in a temporary directory."""

    def __init__(self, directory) -> None:
        server = shutil.which("redis-server")
        if server is None:
            pytest.fail("redis-server is not installed (scripts/system-packages.sh installs it)")
        self.server, self.directory = server, directory
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None
        self.frozen = False
        self.start()

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.server, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.directory)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(200):
            try:
                if self.client().ping():
                    return
            except redis.ConnectionError:
                time.sleep(0.05)
        pytest.fail("our redis-server did not start")

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_timeout=2)

    def stop(self) -> None:
        self.thaw()
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)

    def freeze(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)
        self.frozen = True

    def thaw(self) -> None:
        if self.frozen and self.process is not None:
            os.kill(self.process.pid, signal.SIGCONT)
            self.frozen = False

    def keys(self) -> list[bytes]:
        return self.client().keys("*")


@pytest.fixture
def own_redis(tmp_path):
    server = RedisProcess(tmp_path)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_settings() -> dict:
    """Settings a Redis test may add to its app."""
    return {}


@pytest.fixture
def redis_app(_schema, tmp_path, own_redis, redis_settings):
    """An app counting in our Redis. (Not with the `app` fixture: the limiter is one
    object per process, and the last app bound decides whether it is on.)"""
    app = make_app(_schema, RATELIMIT_ENABLED=True, RATELIMIT_STORAGE_URI=own_redis.url,
                   UPLOAD_DIR=str(tmp_path / "u"), MAIL_DIR=str(tmp_path / "m"),
                   **redis_settings)
    with app.app_context():
        yield app
        db.session.remove()
        _empty_tables()
        for engine in db.engines.values():
            engine.dispose()


def _book(client, world) -> int:
    day = worlds.future_day()
    return client.post("/api/v1/bookings", headers=world["headers"], json={
        "unit_id": world["desks"].id, "date": day.isoformat(), "seats": 1}).status_code


def _bookings() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(Booking))


def test_guesses_are_counted_in_redis_shared_by_every_app_server(redis_app, own_redis):
    Factory(db.session).user("shared@example.jp")
    assert _api_token(redis_app.test_client(), "shared@example.jp") == 401
    assert own_redis.keys(), "the failed guess was counted in our Redis"


def test_redis_stopped_mid_request_answers_401_then_falls_back_to_counting_here(
        redis_app, own_redis):
    """The after-response counting of a wrong guess meets a Redis that has just gone:
    the answer is still 401 (it was a 500), the guess is counted in this process's
    memory, and the per-account limit still holds here."""
    stop_now = {"on": False}

    @redis_app.after_request
    def _redis_goes_away(response):  # runs before the limiter's own after-request counting
        if stop_now["on"]:
            own_redis.stop()
            stop_now["on"] = False
        return response

    Factory(db.session).user("victim@example.jp")
    client = redis_app.test_client()
    assert [_api_token(client, "victim@example.jp") for _ in range(2)] == [401] * 2
    stop_now["on"] = True
    assert _api_token(client, "victim@example.jp") == 401
    assert own_redis.process.poll() is not None  # Redis is gone
    # Counted here from that guess on: 4 more, then 429 (never a 500).
    statuses = [_api_token(client, "victim@example.jp", address=f"10.8.0.{i}") for i in range(6)]
    assert statuses == [401] * 4 + [429] * 2
    assert _html_login(client, "victim@example.jp", Factory.PASSWORD) == 429


def test_redis_frozen_guesses_answer_401_or_429_and_bookings_go_on(redis_app, own_redis):
    world = worlds.world(Factory(db.session), token=True)
    client = redis_app.test_client()
    assert _api_token(client, world["booker"].email) == 401
    own_redis.freeze()
    statuses = [_api_token(client, world["booker"].email, address=f"10.9.0.{i}")
                for i in range(6)]
    statuses += [_html_login(client, world["booker"].email, address="10.9.1.1")]
    # Counted in this process from the freeze on: 5 wrong guesses, then 429 (never a 500).
    assert statuses == [401] * 5 + [429] * 2
    assert _book(client, world) == 201
    assert _bookings() == 1
    own_redis.thaw()


def test_redis_frozen_while_counting_a_guess_answers_401(redis_app, own_redis):
    Factory(db.session).user("slow@example.jp")
    client = redis_app.test_client()

    @redis_app.after_request
    def _redis_freezes(response):  # before the limiter's after-request counting
        if not own_redis.frozen:
            own_redis.freeze()
        return response

    assert _api_token(client, "slow@example.jp") == 401
    assert own_redis.frozen
    assert _html_login(client, "slow@example.jp") == 422


def test_the_booking_path_never_asks_redis_even_after_an_outage(redis_app, own_redis):
    """Once a log-in had found Redis gone, Flask-Limiter's own fallback asked Redis "are
    you back?" from whatever request came next, bookings included. Here Redis comes back
    on the same port and we look at what it was asked while bookings were made, a while
    later: nothing."""
    world = worlds.world(Factory(db.session))
    secret, _expires = tokens.issue(db.session, world["booker"], 24 * 7)
    db.session.commit()
    world["headers"] = {"Authorization": f"Bearer {secret}"}
    client = redis_app.test_client()
    own_redis.stop()
    assert _api_token(client, world["booker"].email) == 401  # notices Redis is away
    own_redis.start()
    watcher = own_redis.client()
    watcher.config_resetstat()
    with time_machine.travel(clock.now() + timedelta(days=2)):
        assert [_book(client, world) for _ in range(3)] == [201] * 3
        assert client.get("/api/v1/bookings", headers=world["headers"]).status_code == 200
    asked = watcher.info("commandstats")
    assert {name.split("|")[0] for name in asked} <= {"cmdstat_config", "cmdstat_info"}, asked
    assert _bookings() == 3


@pytest.mark.parametrize("redis_settings", [{"RATELIMIT_REDIS_RETRY_SECONDS": 0}])
def test_counting_returns_to_redis_when_it_is_back(redis_app, own_redis, redis_settings):
    Factory(db.session).user("back@example.jp")
    client = redis_app.test_client()
    own_redis.stop()
    assert _api_token(client, "back@example.jp") == 401
    own_redis.start()
    assert own_redis.keys() == []
    assert _api_token(client, "back@example.jp") == 401
    assert own_redis.keys(), "counted in Redis again"
