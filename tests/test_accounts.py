"""Sign-up, log-in, approval of supporter organisations, and bad input on the forms."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
import sqlalchemy as sa

from booking.extensions import db
from booking.models import Membership, Organisation, OrgKind, User
from tests.factories import Factory

GOOD_COMPANY = {
    "name": "高橋 真理", "email": "mari@example.jp", "password": "long-enough-pass",
    "company_name": "高橋製作所", "prefecture": "13", "address": "東京都大田区",
}
GOOD_SUPPORTER = {
    "name": "市役所 担当", "email": "city@fuchu.example.jp", "password": "long-enough-pass",
    "kind": "municipality", "organisation_name": "府中市", "organisation_name_en": "Fuchu City",
    "prefecture": "13", "address": "東京都府中市宮西町2-24",
}


class _Form(HTMLParser):
    """The form controls (their attributes) and the text of every element with an id."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.controls: list[dict[str, str | None]] = []
        self.text_of: dict[str, str] = {}
        self._open: list[tuple[str, str | None]] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag in ("input", "select", "textarea"):
            self.controls.append(values)
        if tag not in ("input", "img", "br", "hr", "meta", "link"):  # void elements
            self._open.append((tag, values.get("id")))

    def handle_endtag(self, tag: str) -> None:
        while self._open:
            if self._open.pop()[0] == tag:
                break

    def handle_data(self, data: str) -> None:
        for _tag, element_id in self._open:
            if element_id:
                self.text_of[element_id] = self.text_of.get(element_id, "") + data


def _rows() -> dict:
    return {m.__name__: db.session.scalar(sa.select(sa.func.count()).select_from(m))
            for m in (User, Organisation, Membership)}


def test_company_sign_up_creates_user_company_and_logs_in(client):
    response = client.post("/account/signup", data=GOOD_COMPANY)
    assert response.status_code == 302
    user = db.session.scalar(sa.select(User))
    assert user.email == "mari@example.jp"
    assert user.password_hash != GOOD_COMPANY["password"]
    assert user.password_hash.startswith(("scrypt:", "pbkdf2:"))
    company = user.company
    assert company.kind == OrgKind.COMPANY and company.prefecture_code == 13
    assert company.is_approved  # companies need no approval
    home = client.get("/")
    assert "ログアウト" in home.get_data(as_text=True)


@pytest.mark.parametrize(("change", "field", "message", "status"), [
    ({"name": ""}, "name", "必須", 422),
    ({"company_name": "あ" * 300}, "company_name", "200 文字", 422),
    ({"email": "not-an-email"}, "email", "無効なメールアドレス", 422),
    ({"password": "short"}, "password", "10 以上", 422),
    ({"password": "password123"}, "password", "推測されやすい", 422),
    ({"prefecture": "0"}, "prefecture", "必須", 422),
    ({"prefecture": ""}, "prefecture", "必須", 422),  # the placeholder option, as browsers send it
    ({"email": "Taken@Example.JP"}, "email", "既に登録されています", 409),
])
def test_company_sign_up_bad_input_shows_error_beside_field_and_writes_nothing(
        client, make, change, field, message, status):
    make.user("taken@example.jp")
    before = _rows()
    response = client.post("/account/signup", data={**GOOD_COMPANY, **change})
    page = _Form(response.get_data(as_text=True))
    assert response.status_code == status
    # The message is in the field's error element, and the field points at it.
    assert message in page.text_of.get(f"{field}-error", ""), page.text_of
    [control] = [attrs for attrs in page.controls if attrs.get("name") == field]
    assert f"{field}-error" in (control.get("aria-describedby") or "").split(), control
    assert control.get("aria-invalid") == "true", control
    # No other field is said to be wrong.
    others = [a["name"] for a in page.controls
              if a.get("aria-invalid") and a.get("name") != field]
    assert others == []
    assert _rows() == before


def test_supporter_is_invisible_until_a_site_admin_approves_it(client, make, login):
    response = client.post("/account/signup/supporter", data=GOOD_SUPPORTER)
    assert response.status_code == 302
    org = db.session.scalar(sa.select(Organisation).where(Organisation.name == "府中市"))
    assert org.kind == OrgKind.MUNICIPALITY and not org.is_approved
    space = make.space(org, slug="fuchu-hall", name="府中市役所 会議室", prefecture_code=13,
                       city="府中市", lat=35.6689, lon=139.4776)
    make.unit(space)
    client.post("/account/logout")

    search = "/api/v1/spaces?prefecture=13&date=2027-07-26"
    assert client.get("/spaces/fuchu-hall").status_code == 404
    assert "府中市役所 会議室" not in client.get("/").get_data(as_text=True)
    assert client.get(search).json["total"] == 0

    admin = make.user("root@example.jp", is_admin=True)
    login(admin)
    page = client.get("/admin/organisations").get_data(as_text=True)
    assert "府中市" in page and "承認待ち" in page
    assert client.post(f"/admin/organisations/{org.id}/approve").status_code == 302
    db.session.refresh(org)
    assert org.is_approved
    client.post("/account/logout")

    page = client.get("/spaces/fuchu-hall")
    assert page.status_code == 200
    assert "府中市役所 会議室" in page.get_data(as_text=True)
    found = client.get(search).json
    assert [r["name"] for r in found["results"]] == ["府中市役所 会議室"]


def test_only_site_admins_see_the_approval_page(client, make, login):
    assert client.get("/admin/organisations").status_code == 302  # to the login page
    login(make.user("someone@example.jp"))
    assert client.get("/admin/organisations").status_code == 403
    org = make.organisation(approved=False)
    assert client.post(f"/admin/organisations/{org.id}/approve").status_code == 403
    db.session.refresh(org)
    assert not org.is_approved


def test_login_with_wrong_password_is_generic_and_case_insensitive_email_works(client, make):
    make.user("Kana@Example.jp", password="right-password-1")
    wrong = client.post("/account/login", data={"email": "kana@example.jp", "password": "nope"})
    unknown = client.post("/account/login", data={"email": "ghost@example.jp", "password": "nope"})
    assert wrong.status_code == unknown.status_code == 422
    message = "メールアドレスまたはパスワードが正しくありません"
    assert message in wrong.get_data(as_text=True) and message in unknown.get_data(as_text=True)
    ok = client.post("/account/login", data={"email": "KANA@example.JP",
                                             "password": "right-password-1"})
    assert ok.status_code == 302


def test_create_admin_command(runner):
    result = runner.invoke(args=["create-admin", "--email", "Boss@Example.jp",
                                 "--password", "very-secret-pw"])
    assert result.exit_code == 0, result.output
    user = db.session.scalar(sa.select(User))
    assert user.email == "boss@example.jp" and user.is_admin
    again = runner.invoke(args=["create-admin", "--email", "boss@example.jp",
                                "--password", "very-secret-pw"])
    assert again.exit_code != 0 and "already registered" in again.output


# --------------------------------------------------------------------------- refusals as domain errors


def test_api_sign_up_with_a_taken_address_is_a_409_problem_naming_the_code(client, make):
    make.user("taken@example.jp")
    before = _rows()
    answer = client.post("/api/v1/accounts", json={
        "email": "TAKEN@example.jp", "password": "long-enough-pass", "name": "高橋 真理",
        "company": {"name": "高橋製作所", "prefecture": "東京都"}})
    assert answer.status_code == 409 and answer.mimetype == "application/problem+json"
    assert answer.json["code"] == "email_taken" and "既に登録されています" in answer.json["detail"]
    assert _rows() == before


def test_a_guessable_password_is_refused_beside_it_on_the_supporter_form(client):
    before = _rows()
    response = client.post("/account/signup/supporter",
                           data={**GOOD_SUPPORTER, "password": "qwertyuiop"})
    page = _Form(response.get_data(as_text=True))
    assert response.status_code == 422
    assert "推測されやすい" in page.text_of.get("password-error", ""), page.text_of
    assert _rows() == before


def test_the_sole_owner_is_told_at_the_top_of_the_form_and_keeps_the_account(client, make, login):
    org = make.company()
    owner = make.user("boss@example.jp", organisation=org)
    make.user("worker@example.jp", organisation=org, role="staff")
    login(owner)
    wrong = client.post("/account/delete", data={"password": "not-the-password"})
    assert wrong.status_code == 422
    assert "パスワードが正しくありません" in _Form(wrong.get_data(as_text=True)).text_of.get(
        "password-error", "")
    response = client.post("/account/delete", data={"password": Factory.PASSWORD})
    html = response.get_data(as_text=True)
    assert response.status_code == 409
    top = html.split('class="form-errors"', 1)[1].split("</div>", 1)[0]
    assert "オーナーを引き継いで" in top
    assert db.session.get(User, owner.id) is not None


def test_a_token_of_somebody_else_cannot_be_revoked(client, make, login):
    from booking.models import ApiToken
    from booking.services import tokens

    mine, theirs = make.user("me@example.jp"), make.user("them@example.jp")
    tokens.issue(db.session, theirs, 1)
    db.session.commit()
    token = db.session.scalar(sa.select(ApiToken))
    login(mine)
    assert client.post(f"/account/tokens/{token.id}/revoke").status_code == 404
    db.session.refresh(token)
    assert token.revoked_at is None
    login(theirs)
    assert client.post(f"/account/tokens/{token.id}/revoke").status_code == 302
    db.session.refresh(token)
    assert token.revoked_at is not None
