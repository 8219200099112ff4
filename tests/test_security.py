"""Security: throttling, CSRF, headers and cookies, sessions, tokens, injection into
HTML / iCalendar / CSV, authorisation helpers, personal data."""

from __future__ import annotations

import csv
import hashlib
import io
import re
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest
import sqlalchemy as sa
import time_machine

from booking.extensions import db
from booking.models import (
    ApiToken,
    AuditEntry,
    Booking,
    BookingAttendee,
    Membership,
    OrgKind,
    User,
)
from booking.services import accounts, privacy, tokens
from booking.services.csvexport import csv_text, safe_cell
from booking.services.errors import DomainError
from tests.conftest import make_app
from tests.factories import Factory
from tests.security_world import build_world

TEMPLATES = Path(__file__).resolve().parent.parent / "booking" / "templates"
WRONG = {"password": "wrong-password-guess"}


# --------------------------------------------------------------------------- throttling

@pytest.fixture
def throttled(_schema, tmp_path):
    """An app with rate limits on (the suite turns them off elsewhere)."""
    app = make_app(_schema, RATELIMIT_ENABLED=True, RATELIMIT_STORAGE_URI="memory://",
                   UPLOAD_DIR=str(tmp_path / "u"), MAIL_DIR=str(tmp_path / "m"))
    with app.app_context():
        yield app
        db.session.remove()
        from tests.conftest import _empty_tables

        _empty_tables()
        for engine in db.engines.values():
            engine.dispose()


def test_sixth_wrong_password_in_a_minute_is_429_even_with_the_right_one(throttled):
    Factory(db.session).user("target@example.jp")
    client = throttled.test_client()
    with time_machine.travel(datetime(2027, 1, 5, 10, 0, tzinfo=UTC), tick=False):
        for _ in range(5):
            response = client.post("/account/login",
                                   data={"email": "target@example.jp", **WRONG})
            assert response.status_code == 422
        sixth = client.post("/account/login", data={"email": "TARGET@example.jp", **WRONG})
        assert sixth.status_code == 429
        assert "リクエストが多すぎます" in sixth.get_data(as_text=True)
        # The right password does not get through either while the account is throttled,
        # from another address too (the limit is per account).
        other = throttled.test_client()
        right = other.post("/account/login", environ_base={"REMOTE_ADDR": "10.9.9.9"},
                           data={"email": "target@example.jp", "password": Factory.PASSWORD})
        assert right.status_code == 429
    # A minute later it works again.
    with time_machine.travel(datetime(2027, 1, 5, 10, 1, 5, tzinfo=UTC), tick=False):
        ok = client.post("/account/login",
                         data={"email": "target@example.jp", "password": Factory.PASSWORD})
        assert ok.status_code == 302


def test_successful_logins_do_not_count_and_unknown_accounts_answer_alike(throttled):
    Factory(db.session).user("busy@example.jp")
    client = throttled.test_client()
    for _ in range(7):
        assert client.post("/account/login", data={
            "email": "busy@example.jp", "password": Factory.PASSWORD}).status_code == 302
    known = client.post("/account/login", data={"email": "busy@example.jp", **WRONG})
    unknown = client.post("/account/login", data={"email": "nobody@example.jp", **WRONG})
    assert known.status_code == unknown.status_code == 422
    message = "メールアドレスまたはパスワードが正しくありません"
    assert message in known.get_data(as_text=True) and message in unknown.get_data(as_text=True)


def test_one_address_trying_many_accounts_is_throttled(throttled):
    client = throttled.test_client()
    statuses = [client.post("/account/login", data={"email": f"u{i}@example.jp", **WRONG})
                .status_code for i in range(21)]
    assert statuses[:20] == [422] * 20 and statuses[20] == 429


def test_token_endpoint_sixth_wrong_password_is_429_problem_json(throttled):
    Factory(db.session).user("api@example.jp")
    client = throttled.test_client()
    for _ in range(5):
        response = client.post("/api/v1/tokens", json={"email": "api@example.jp", **WRONG})
        assert response.status_code == 401
        assert response.json["detail"] == "Wrong e-mail address or password."
    sixth = client.post("/api/v1/tokens", json={"email": "api@example.jp",
                                                "password": Factory.PASSWORD})
    assert sixth.status_code == 429
    assert sixth.mimetype == "application/problem+json" and sixth.json["status"] == 429
    unknown = client.post("/api/v1/tokens", json={"email": "ghost@example.jp", **WRONG})
    assert unknown.status_code == 401
    assert unknown.json["detail"] == "Wrong e-mail address or password."


def test_guessing_the_current_password_on_the_change_form_is_throttled(throttled):
    user = Factory(db.session).user("guess@example.jp")
    client = throttled.test_client()
    client.post("/account/login", data={"email": user.email, "password": Factory.PASSWORD})
    for _ in range(5):
        assert client.post("/account/password", data={
            "current": "a-wrong-guess", "password": "another-long-secret"}).status_code == 422
    assert client.post("/account/password", data={
        "current": Factory.PASSWORD, "password": "another-long-secret"}).status_code == 429


@pytest.fixture
def redis_server(tmp_path):
    """A real Redis server on a free loopback port, for this test only."""
    import shutil
    import socket
    import subprocess
    import time

    server = shutil.which("redis-server")
    if server is None:
        pytest.fail("redis-server is not installed (scripts/system-packages.sh installs it)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    process = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                "--appendonly", "no", "--dir", str(tmp_path)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        yield {"url": f"redis://127.0.0.1:{port}/0", "process": process}
    finally:
        if process.poll() is None:
            process.terminate()
        process.wait(timeout=10)


def test_app_servers_share_the_login_limit_through_redis(_schema, tmp_path, redis_server):
    """With REDIS_URL, every app server counts into the same place: 3 wrong passwords on
    one server, 2 on a server started afterwards (a fresh process would start with an
    empty memory), then the 6th is a 429. When Redis goes away, log-in still answers."""
    from tests.conftest import _empty_tables

    def server():
        return make_app(_schema, RATELIMIT_ENABLED=True,
                        RATELIMIT_STORAGE_URI=redis_server["url"],
                        UPLOAD_DIR=str(tmp_path / "u"), MAIL_DIR=str(tmp_path / "m"))

    def attempt(app) -> int:
        with app.app_context():
            return app.test_client().post("/account/login", data={
                "email": "shared@example.jp", **WRONG}).status_code

    first = server()
    with first.app_context():
        Factory(db.session).user("shared@example.jp")
    try:
        statuses = [attempt(first) for _ in range(3)]
        second = server()  # binds the limiter anew: memory storage would start from zero
        statuses += [attempt(second) for _ in range(3)]
        assert statuses == [422] * 5 + [429]
        redis_server["process"].terminate()
        redis_server["process"].wait(timeout=10)
        assert attempt(second) in (422, 429)  # the in-memory fallback, not a 500
        with second.app_context():
            for engine in db.engines.values():
                engine.dispose()
    finally:
        with first.app_context():
            db.session.remove()
            _empty_tables()
            for engine in db.engines.values():
                engine.dispose()


def test_limiter_uses_redis_when_redis_url_is_set(monkeypatch):
    from booking.config import from_environment

    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/3")
    assert from_environment()["RATELIMIT_STORAGE_URI"] == "redis://127.0.0.1:6379/3"
    monkeypatch.delenv("REDIS_URL")
    assert from_environment()["RATELIMIT_STORAGE_URI"] == "memory://"


# --------------------------------------------------------------------------- CSRF

@pytest.mark.parametrize("app_config", [{"WTF_CSRF_ENABLED": True}])
def test_every_html_post_route_rejects_a_request_without_csrf_token(app, make, app_config):
    from tests.security_world import as_role

    world = build_world(make)
    client = app.test_client()
    checked = 0
    for rule in app.url_map.iter_rules():
        if "POST" not in rule.methods or rule.rule.startswith("/api/"):
            continue
        url = rule.rule
        for arg in rule.arguments:
            url = re.sub(rf"<(?:[a-z]+:)?{arg}>", str(world.url_values.get(arg, 1)), url)
        for role in ("anon", "company", "operator_owner", "admin"):
            as_role(client, world.users[role])
            response = client.post(url, data={"x": "1"})
            assert response.status_code == 400, (url, role, response.status_code)
            checked += 1
    assert checked > 10
    # Nothing changed: the booking is still there, the users still exist.
    assert db.session.scalar(sa.select(sa.func.count()).select_from(User)) == 6


@pytest.mark.parametrize("app_config", [{"WTF_CSRF_ENABLED": True}])
def test_with_the_token_from_the_page_the_form_works(client, make, app_config):
    make.user("csrf@example.jp")
    page = client.get("/account/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    ok = client.post("/account/login", data={"email": "csrf@example.jp",
                                             "password": Factory.PASSWORD, "csrf_token": token})
    assert ok.status_code == 302
    forged = client.post("/account/logout-everywhere", data={"csrf_token": "forged"})
    assert forged.status_code == 400
    assert client.get("/account/").status_code == 200  # still logged in


def test_api_does_not_take_cookies_so_needs_no_csrf(client, make, login):
    """The API authenticates by bearer token only: a browser session cannot use it."""
    login(make.user("cookie@example.jp"))
    response = client.delete("/api/v1/tokens/current")
    assert response.status_code == 401


# --------------------------------------------------------------------------- headers

def _csp(response) -> dict[str, str]:
    policy = response.headers["Content-Security-Policy"]
    return {part.split()[0]: part.strip() for part in policy.split(";") if part.strip()}


@pytest.mark.parametrize("path", ["/", "/account/login", "/no-such-page", "/api/v1/openapi.json",
                                  "/api/v1/nothing-here"])
def test_security_headers_on_pages_errors_and_api(client, path):
    response = client.get(path)
    csp = _csp(response)
    assert csp["default-src"] == "default-src 'self'"
    assert csp["script-src"] == "script-src 'self'"
    assert csp["style-src"] == "style-src 'self'"
    assert csp["object-src"] == "object-src 'none'"
    assert csp["frame-ancestors"] == "frame-ancestors 'none'"
    assert csp["base-uri"] == "base-uri 'self'"
    assert csp["form-action"] == "form-action 'self'"
    assert "unsafe-inline" not in response.headers["Content-Security-Policy"]
    assert "unsafe-eval" not in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
    assert response.headers["X-Frame-Options"] == "DENY"


def test_pages_of_a_logged_in_user_are_not_cached(client, make, login):
    login(make.user("cache@example.jp"))
    assert client.get("/account/").headers["Cache-Control"] == "no-store"
    static = client.get("/static/css/site.css")
    static.close()
    assert "no-store" not in static.headers.get("Cache-Control", "")


def test_error_pages_in_both_languages_without_internals(client):
    ja = client.get("/no-such-page")
    assert ja.status_code == 404 and "ページが見つかりません" in ja.get_data(as_text=True)
    en = client.get("/no-such-page?lang=en")
    assert en.status_code == 404 and "Page not found" in en.get_data(as_text=True)
    assert "Traceback" not in en.get_data(as_text=True)
    api = client.get("/api/v1/no-such-thing")
    assert api.status_code == 404 and api.mimetype == "application/problem+json"


def test_unexpected_error_is_a_plain_500_page_or_problem(_schema, tmp_path):
    app = make_app(_schema, TESTING=False, UPLOAD_DIR=str(tmp_path))

    @app.get("/boom")
    def boom():
        raise RuntimeError("secret internals /etc/passwd")

    @app.get("/api/v1/boom")
    def api_boom():
        raise RuntimeError("secret internals")

    client = app.test_client()
    page = client.get("/boom")
    assert page.status_code == 500 and "secret internals" not in page.get_data(as_text=True)
    assert "Content-Security-Policy" in page.headers
    api = client.get("/api/v1/boom")
    assert api.status_code == 500 and api.mimetype == "application/problem+json"
    assert "secret" not in api.get_data(as_text=True)


def test_session_cookie_is_httponly_lax_and_secure_behind_https(_schema, tmp_path):
    app = make_app(_schema, TESTING=False, PUBLIC_URL="https://booking.example.jp",
                   UPLOAD_DIR=str(tmp_path))
    assert app.config["SESSION_COOKIE_SECURE"] and app.config["REMEMBER_COOKIE_SECURE"]
    with app.app_context():
        Factory(db.session).user("cookie2@example.jp")
        response = app.test_client().post("/account/login", data={
            "email": "cookie2@example.jp", "password": Factory.PASSWORD})
        from tests.conftest import _empty_tables

        db.session.remove()
        _empty_tables()
        for engine in db.engines.values():
            engine.dispose()
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" in cookie


# --------------------------------------------------------------------------- redirects

@pytest.mark.parametrize("target", [
    "https://evil.example/", "//evil.example/", "/\\evil.example/", "\\\\evil.example",
    "/\tevil", "javascript:alert(1)", "http:/evil.example", "/%0d%0aSet-Cookie:x=1",
])
def test_no_open_redirect_after_login_or_language_switch(client, make, target):
    make.user("redir@example.jp")
    response = client.post("/account/login", query_string={"next": target},
                           data={"email": "redir@example.jp", "password": Factory.PASSWORD})
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith("/") and not location.startswith(("//", "/\\")), location
    assert "evil" not in location.split("?")[0].lstrip("/").split("/")[0] or location == target
    language = client.post("/language", data={"lang": "en", "next": target})
    assert language.headers["Location"] in ("/", target) and not language.headers[
        "Location"].startswith(("//", "/\\", "http", "javascript"))


def test_local_path_keeps_ordinary_paths():
    from booking.web import local_path

    assert local_path("/spaces/koto?date=2027-07-24") == "/spaces/koto?date=2027-07-24"
    assert local_path("/\\evil.example") == "/"
    assert local_path(None, "/home") == "/home"


# --------------------------------------------------------------------------- sessions

def test_login_starts_a_new_session_keeping_only_the_language(client, make):
    make.user("fix@example.jp")
    with client.session_transaction() as sess:
        sess["lang"] = "en"
        sess["planted"] = "by-an-attacker"
    client.post("/account/login", data={"email": "fix@example.jp", "password": Factory.PASSWORD})
    with client.session_transaction() as sess:
        assert "planted" not in sess and sess["lang"] == "en" and "_user_id" in sess


def test_logout_everywhere_ends_other_sessions_and_api_tokens(app, make):
    user = make.user("every@example.jp")
    laptop, phone = app.test_client(), app.test_client()
    for c in (laptop, phone):
        assert c.post("/account/login", data={"email": user.email,
                                              "password": Factory.PASSWORD}).status_code == 302
    token = laptop.post("/api/v1/tokens", json={"email": user.email,
                                                "password": Factory.PASSWORD}).json["token"]
    assert phone.get("/account/").status_code == 200
    assert laptop.post("/account/logout-everywhere").status_code == 302
    assert phone.get("/account/").status_code == 302  # to the log-in page
    assert laptop.get("/account/").status_code == 302
    gone = laptop.delete("/api/v1/tokens/current", headers={"Authorization": f"Bearer {token}"})
    assert gone.status_code == 401


def test_password_change_keeps_this_session_and_ends_the_others(app, make):
    user = make.user("change@example.jp")
    here, there = app.test_client(), app.test_client()
    for c in (here, there):
        c.post("/account/login", data={"email": user.email, "password": Factory.PASSWORD})
    wrong = here.post("/account/password", data={"current": "nope", "password": "a-new-long-secret"})
    assert wrong.status_code == 422 and "現在のパスワードが正しくありません" in wrong.get_data(as_text=True)
    ok = here.post("/account/password", data={"current": Factory.PASSWORD,
                                              "password": "a-new-long-secret"})
    assert ok.status_code == 302
    assert here.get("/account/").status_code == 200
    assert there.get("/account/").status_code == 302
    assert accounts.authenticate(db.session, user.email, "a-new-long-secret") is not None


@pytest.mark.parametrize(("password", "ok"), [
    ("1234567890", False), ("password123", False), ("qwertyuiop", False),
    ("P@ssw0rd2019", False), ("aaaaaaaaaaaa", False), ("short", False),
    ("correct-horse-battery", True), ("kyoto-desk-tuesday", True),
])
def test_password_rules(password, ok):
    assert (accounts.password_problem(password) is None) is ok


def test_password_containing_the_users_own_address_is_refused(client):
    response = client.post("/account/signup", data={
        "name": "山田", "email": "yamada.taro@example.jp", "password": "yamada.taro@example.jp",
        "company_name": "山田商店", "prefecture": "13"})
    assert response.status_code == 422
    assert "推測されやすい" in response.get_data(as_text=True)
    api = client.post("/api/v1/accounts", json={
        "email": "x@example.jp", "password": "1234567890", "name": "X",
        "company": {"name": "X社", "prefecture": "東京都"}})
    assert api.status_code == 422 and "password" in api.json["errors"]


# --------------------------------------------------------------------------- API tokens

def test_tokens_are_stored_hashed_expire_and_can_be_revoked(app, make, client):
    user = make.user("tok@example.jp")
    issued = client.post("/api/v1/tokens", json={"email": user.email,
                                                 "password": Factory.PASSWORD})
    assert issued.status_code == 201
    token = issued.json["token"]
    row = db.session.scalar(sa.select(ApiToken))
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest() and token not in row.token_hash
    assert tokens.user_for(db.session, token).id == user.id
    expires = datetime.fromisoformat(issued.json["expires_at"])
    with time_machine.travel(expires + timedelta(seconds=1), tick=False):
        assert tokens.user_for(db.session, token) is None
        expired = client.delete("/api/v1/tokens/current",
                                headers={"Authorization": f"Bearer {token}"})
        assert expired.status_code == 401 and expired.mimetype == "application/problem+json"
    with time_machine.travel(expires - timedelta(seconds=5), tick=False):
        assert tokens.user_for(db.session, token) is not None
    # Revoked through the API: the same token no longer works.
    headers = {"Authorization": f"Bearer {token}"}
    assert client.delete("/api/v1/tokens/current", headers=headers).status_code == 204
    assert client.delete("/api/v1/tokens/current", headers=headers).status_code == 401


def test_token_revoked_on_the_account_page(app, make, client, login):
    user = make.user("page@example.jp")
    token = client.post("/api/v1/tokens", json={"email": user.email,
                                                "password": Factory.PASSWORD}).json["token"]
    login(user)
    row = db.session.scalar(sa.select(ApiToken))
    assert "有効" in client.get("/account/tokens").get_data(as_text=True)
    assert client.post(f"/account/tokens/{row.id}/revoke").status_code == 302
    assert tokens.user_for(db.session, token) is None
    # Somebody else's token cannot be revoked by id.
    other = make.user("other@example.jp")
    tokens.issue(db.session, other, 1)
    db.session.commit()
    other_row = db.session.scalar(sa.select(ApiToken).where(ApiToken.user_id == other.id))
    assert client.post(f"/account/tokens/{other_row.id}/revoke").status_code == 404
    db.session.refresh(other_row)
    assert other_row.revoked_at is None


@pytest.mark.parametrize("header", ["Bearer", "Bearer ", "Basic abc", "Bearer x" * 500,
                                    "Bearer \x00\x01", "bearer   "])
def test_malformed_authorization_headers_are_401(client, header):
    response = client.delete("/api/v1/tokens/current", headers={"Authorization": header})
    assert response.status_code == 401 and response.mimetype == "application/problem+json"


# --------------------------------------------------------------------------- XSS

XSS = '<script>alert(1)</script>"\'><img src=x onerror=alert(2)>'


def _set_every_text(obj, skip=("slug", "email", "calendar_secret", "filename", "password_hash",
                                 "session_token", "locale", "reference")) -> list[str]:
    """Puts the payload into every user-editable string column of the object (not the
    names the application makes: slugs, references, file names, secrets)."""
    changed = []
    for column in sa.inspect(type(obj)).columns:
        if column.key in skip or column.primary_key or column.foreign_keys:
            continue
        if isinstance(column.type, sa.String) and not isinstance(column.type, sa.Enum) \
                and not getattr(column.type, "enum_class", None):
            length = getattr(column.type, "length", None) or 500
            if isinstance(getattr(obj, column.key), str) or getattr(obj, column.key) is None:
                setattr(obj, column.key, (XSS + column.key)[:length])
                changed.append(column.key)
    return changed


def test_text_fields_come_out_escaped_on_public_pages(client, make):
    world = build_world(make)
    o = world.objects
    touched = {}
    for name in ("space", "unit", "operator", "campaign", "photo", "closure"):
        touched[name] = _set_every_text(o[name])
    touched["extra"] = _set_every_text(o["extra"])
    o["space"].amenities = ["wifi", XSS]
    db.session.commit()
    assert "name" in touched["space"] and "description" in touched["space"]
    pages = ["/", f"/spaces/{o['space'].slug}", f"/spaces/{o['space'].slug}?lang=en"]
    for rule in client.application.url_map.iter_rules():
        if rule.endpoint in ("search.search", "search.index", "campaigns.index"):
            pages.append(rule.rule + "?near=静岡&date=2027-07-26&prefecture=22")
        if rule.endpoint == "campaigns.show":
            pages.append(f"/campaigns/{o['campaign'].slug}")
    for path in pages:
        response = client.get(path)
        assert response.status_code == 200, path
        html = response.get_data(as_text=True)
        assert "<script>alert" not in html, path
        assert "<img src=x" not in html, path
        # Parsed as a browser would: the payload is text, never an element or an attribute.
        assert _injected_markup(html) == [], path
    space_page = client.get(f"/spaces/{o['space'].slug}").get_data(as_text=True)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in space_page


class _Elements(HTMLParser):
    """Every start tag with its attributes, and the text inside <script> elements."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts.append(data)


def _injected_markup(html: str) -> list[str]:
    """What of the XSS payload became markup: an <img src=x>, an on*="" handler running
    alert, or a script element saying alert(."""
    parser = _Elements()
    parser.feed(html)
    parser.close()
    found = [f"<{tag} {attrs}>" for tag, attrs in parser.tags
             if (tag == "img" and attrs.get("src") == "x")
             or any(name.startswith("on") and "alert" in (value or "")
                    for name, value in attrs.items())]
    found += [f"<script>{text[:80]}" for text in parser.scripts if "alert(" in text]
    return found


def test_the_markup_check_sees_an_injected_payload():
    """_injected_markup can fail: raw payloads are found, escaped ones are not."""
    assert _injected_markup(f"<p>{XSS}</p>") != []
    assert _injected_markup(f'<p title="{XSS}">x</p>') != []  # the quote breaks out
    escaped = XSS.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") \
        .replace('"', "&#34;").replace("'", "&#39;")
    assert _injected_markup(f'<p title="{escaped}">{escaped}</p>') == []


def test_no_template_marks_text_safe():
    """`|safe` or Markup on user text would undo the escaping; none is allowed."""
    offenders = [str(p.relative_to(TEMPLATES)) for p in TEMPLATES.rglob("*.html")
                 if re.search(r"\|\s*safe\b|autoescape\s+false", p.read_text(encoding="utf-8"))]
    assert offenders == []


# --------------------------------------------------------------------------- iCalendar

INJECT = "山田\r\nBEGIN:VEVENT\r\nSUMMARY:injected\r\nEND:VEVENT\r\nX-EVIL:1"


def test_crlf_in_names_cannot_inject_calendar_properties(make):
    import icalendar

    from booking.services import calendars

    world = build_world(make)
    o = world.objects
    o["space"].name = INJECT[:200]
    o["space"].address = INJECT
    o["unit"].name = INJECT
    o["operator"].name = INJECT
    bk = o["booking"]
    bk.note = INJECT
    world.users["company"].name = INJECT[:100]
    o["company"].name = INJECT
    db.session.add(BookingAttendee(booking_id=bk.id, email="x@example.jp", name=INJECT[:100]))
    db.session.commit()
    db.session.refresh(bk)
    outputs = [calendars.booking_ics(bk, method) for method in ("PUBLISH", "REQUEST", "CANCEL")]
    outputs.append(calendars.feed_ics([bk], INJECT))
    for raw in outputs:
        text = raw.decode() if isinstance(raw, bytes) else raw
        lines = text.replace("\r\n ", "").split("\r\n")  # unfolded
        assert sum(1 for line in lines if line == "BEGIN:VEVENT") == 1, text
        assert not any(line.startswith(("SUMMARY:injected", "X-EVIL")) for line in lines), text
        cal = icalendar.Calendar.from_ical(text)
        events = list(cal.walk("VEVENT"))
        assert len(events) == 1
        assert "X-EVIL" not in events[0]


# --------------------------------------------------------------------------- CSV

@pytest.mark.parametrize(("value", "expected"), [
    ("=HYPERLINK(\"http://evil\")", "'=HYPERLINK(\"http://evil\")"),
    ("+1+2", "'+1+2"), ("-2+3", "'-2+3"), ("@SUM(A1)", "'@SUM(A1)"),
    ("\t=1", "'\t=1"), ("\r=1", "'\r=1"), ("＝1+1", "'＝1+1"),
    ("田中", "田中"), ("a=b", "a=b"), (-5, -5), (1200, 1200), (None, ""),
])
def test_csv_cells_that_a_spreadsheet_would_run_are_defused(value, expected):
    assert safe_cell(value) == expected


def test_csv_document_guards_every_cell():
    text = csv_text(["=name"], [["=cmd|' /C calc'!A0", "-1", 3]])
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert rows == [["'=name"], ["'=cmd|' /C calc'!A0", "'-1", "3"]]


def test_exports_of_the_console_and_reports_defuse_formulas(app, make, client):
    """End to end: names typed by users reach the CSV exports defused."""
    from tests.security_world import as_role

    world = build_world(make)
    o = world.objects
    evil = "=HYPERLINK(\"http://evil.example\",\"x\")"
    world.users["company"].name = evil
    o["company"].name = "+cmd"
    o["booking"].note = "@SUM(1)"
    o["booking"].campaign_slot_id = o["slot"].id  # so that the report lists it
    o["campaign"].name = "＝campaign"
    db.session.execute(sa.update(BookingAttendee).values(name="-2+3"))
    db.session.commit()
    checked = 0
    for endpoint, role, url in (
        ("operator.export", "operator_owner",
         f"/operator/spaces/{o['space'].id}/export.csv?start=2027-07-01&end=2027-08-31"),
        ("municipality.report_csv", "municipality_owner",
         f"/municipality/campaigns/{o['campaign'].id}/report.csv"),
    ):
        as_role(client, world.users[role])
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
        text = response.get_data(as_text=True).lstrip("\ufeff")
        cells = [cell for row in csv.reader(io.StringIO(text, newline="")) for cell in row]
        for cell in cells:
            assert not cell.startswith(("=", "+", "@", "\t", "\r", "\n", "＝", "＋", "－", "＠")), \
                (endpoint, cell)
            if cell.startswith("-"):
                assert re.fullmatch(r"-\d+(\.\d+)?", cell), (endpoint, cell)
        # The names typed above are there, defused (tests/test_edges.py: every character).
        assert "'+cmd" in cells and "'＝campaign" in cells, (endpoint, cells)
        checked += 1
    assert checked == 2


# --------------------------------------------------------------------------- authorisation

def test_access_policies_for_organisations(app, make):
    """One module decides: members manage, owners own, strangers see nothing exist."""
    from booking.services import access

    org = make.organisation(OrgKind.OPERATOR)
    owner = make.user("o@example.jp", organisation=org)
    staff = make.user("s@example.jp", organisation=org, role="staff")
    stranger = make.user("x@example.jp")
    assert access.allowed(owner, "manage", org) and access.allowed(staff, "manage", org.id)
    assert access.allowed(owner, "own", org) and not access.allowed(staff, "own", org)
    assert not access.allowed(stranger, "manage", org) and not access.allowed(None, "view", org)
    assert access.allowed(owner, "audit", org.id) and not access.allowed(staff, "audit", org.id)
    access.require(staff, "manage", org)
    with pytest.raises(DomainError) as refused:
        access.require(staff, "own", org)
    assert refused.value.code == "owner_only"
    with pytest.raises(DomainError) as refused:
        access.require(stranger, "own", org)
    assert refused.value.code == "not_found"  # a stranger is not told that it exists
    with pytest.raises(KeyError):  # an action nobody wrote a policy for is never a yes
        access.allowed(owner, "fly", org)


def test_audit_log_is_for_owners_and_the_site_admin(app, make, client, login):
    world = build_world(make)
    org = world.objects["operator"]
    from booking.services.audit import record

    record(db.session, world.users["operator_owner"], "unit.price", world.objects["unit"],
           org.id, old=1000, new=1200)
    db.session.commit()
    staff = make.user("staff@example.jp", organisation=org, role="staff")
    login(world.users["operator_owner"])
    page = client.get(f"/account/organisations/{org.id}/audit")
    assert page.status_code == 200 and "unit.price" in page.get_data(as_text=True)
    client.post("/account/logout")
    login(staff)
    assert client.get(f"/account/organisations/{org.id}/audit").status_code == 403
    client.post("/account/logout")
    login(world.users["admin"])
    assert "unit.price" in client.get("/admin/audit").get_data(as_text=True)
    assert client.get(f"/account/organisations/{org.id}/audit").status_code == 200


def test_booking_references_are_random_not_sequential(app, make):
    """References come from the reservation service (reservations.new_reference)."""
    from booking.services import reservations

    refs = [reservations.new_reference() for _ in range(50)]
    assert len(set(refs)) == 50
    assert all(len(r) >= 8 for r in refs)


# --------------------------------------------------------------------------- personal data

def test_user_exports_their_data_as_json(client, make):
    world = build_world(make)
    user = world.users["company"]
    client.post("/account/login", data={"email": user.email, "password": Factory.PASSWORD})
    response = client.get("/account/data.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    assert "attachment" in response.headers["Content-Disposition"]
    data = response.json
    assert data["user"]["email"] == user.email
    assert [b["reference"] for b in data["bookings"]] == [world.objects["booking"].reference]
    assert data["memberships"][0]["organisation"] == "予約した会社"
    assert "password_hash" not in response.get_data(as_text=True)
    assert user.password_hash not in response.get_data(as_text=True)


def test_deleting_the_account_keeps_bookings_anonymised(client, make):
    world = build_world(make)
    user = world.users["company"]
    bk = world.objects["booking"]
    bk.note = "山田の携帯 090-0000-0000"
    db.session.add(BookingAttendee(booking_id=bk.id, email=user.email, name=user.name))
    db.session.commit()
    client.post("/account/login", data={"email": user.email, "password": Factory.PASSWORD})
    wrong = client.post("/account/delete", data={"password": "not-my-password"})
    assert wrong.status_code == 422
    assert client.post("/account/delete", data={"password": Factory.PASSWORD}).status_code == 302
    db.session.expire_all()
    assert db.session.scalar(sa.select(User).where(User.email == "company@example.jp")) is None
    kept = db.session.get(Booking, bk.id)
    assert kept is not None and kept.user_id is None and kept.note == ""
    emails = {a.email for a in kept.attendees}
    assert "company@example.jp" not in emails and "colleague@example.jp" in emails
    assert all(a.name == "" for a in kept.attendees if a.email.endswith(privacy.ANONYMOUS_DOMAIN))
    assert client.get("/account/").status_code == 302  # logged out
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AuditEntry)) >= 1


def test_sole_owner_of_an_organisation_with_members_cannot_delete(client, make):
    org = make.company()
    owner = make.user("boss@example.jp", organisation=org)
    make.user("worker@example.jp", organisation=org, role="staff")
    assert privacy.blocking_organisations(db.session, owner) == [org.name]
    with pytest.raises(DomainError, match="sole_owner"):
        privacy.delete_account(db.session, owner)
    db.session.rollback()
    client.post("/account/login", data={"email": owner.email, "password": Factory.PASSWORD})
    response = client.post("/account/delete", data={"password": Factory.PASSWORD})
    assert response.status_code == 409 and "オーナーを引き継いで" in response.get_data(as_text=True)
    assert db.session.get(User, owner.id) is not None
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Membership)) == 2


# --------------------------------------------------------------------------- calendar secrets

def test_calendar_feed_secrets_are_revocable(app, client, make, login):
    world = build_world(make)
    user = world.users["company"]
    login(user)
    for owner in ("user", "company"):
        assert client.post(f"/bookings/feeds/{owner}/renew").status_code == 302
        db.session.expire_all()
        holder = db.session.get(User, user.id) if owner == "user" else world.objects["company"]
        db.session.refresh(holder)
        first = holder.calendar_secret
        assert first and client.get(f"/calendar/{first}.ics").status_code == 200
        client.post(f"/bookings/feeds/{owner}/renew")
        db.session.refresh(holder)
        assert holder.calendar_secret != first
        assert client.get(f"/calendar/{first}.ics").status_code == 404  # the old URL is dead
        second = holder.calendar_secret
        client.post(f"/bookings/feeds/{owner}/revoke")
        db.session.refresh(holder)
        assert holder.calendar_secret is None
        assert client.get(f"/calendar/{second}.ics").status_code == 404
    for guess in ("", "u", "x" * 40, "../../etc/passwd"):
        assert client.get(f"/calendar/{guess}.ics").status_code == 404
    assert client.get("/calendar/%00.ics").status_code in (400, 404)  # a NUL: refused early
