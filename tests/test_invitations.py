"""Issue 19, members and staff: an owner invites by e-mail with a role; the link (mailed
through the real SMTP path: tests/mailbox.py) lets a logged-in user of that address join,
or a new person sign up and join; it expires (the clock), can be revoked, is used once;
wrong accounts, members and a second company are refused; owners change roles and remove
members but never leave the organisation without an owner; of two acceptances at the same
instant one joins (PostgreSQL and SQLite, threads with their own connections).

And company roles: an admin (owner) sees and manages all the company's bookings, a
member (staff) the bookings they made, on the pages and through /api/v1/bookings."""

from __future__ import annotations

import hashlib
import re
import threading
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
import time_machine

from booking import clock
from booking.extensions import db
from booking.models import AuditEntry, Invitation, Membership, OrgKind, Role, User
from booking.services import invitations, mail, tokens
from booking.services.errors import DomainError


@pytest.fixture
def app_config(smtp_port):
    return {"MAIL_URL": f"smtp://127.0.0.1:{smtp_port}",
            "SQLALCHEMY_ENGINE_OPTIONS": {"pool_size": 4, "max_overflow": 4,
                                          "pool_timeout": 60}}


@pytest.fixture
def w(make):
    company = make.company(name="大手町商事", name_en="Otemachi Trading")
    operator = make.organisation(OrgKind.OPERATOR, name="駿河ワークス")
    return {
        "company": company, "operator": operator,
        "admin": make.user("admin@otemachi.example.jp", organisation=company, name="林 管理"),
        "op_owner": make.user("owner@suruga.example.jp", organisation=operator, name="望月"),
        "other_company": make.company(name="別会社"),
    }


def _delivered(smtp_server) -> dict:
    smtp_server.messages.clear()
    mail.run_once(db.session)
    db.session.commit()
    return {m["To"]: m for m in smtp_server.parsed()}


def _text(message) -> str:
    return message.get_body(preferencelist=("plain",)).get_content()


def _link(message) -> str:
    found = re.search(r"https?://\S+(/invitations/[A-Za-z0-9_-]+)", _text(message))
    assert found, _text(message)
    return found.group(1)


def _invite(client, login, owner, org, email: str, role: str = "staff"):
    login(owner)
    return client.post(f"/organisations/{org.id}/people", data={"email": email, "role": role})


def _logout(client) -> None:
    client.post("/account/logout")


def test_invite_mail_and_a_new_person_signs_up_and_joins(w, client, login, smtp_server):
    response = _invite(client, login, w["admin"], w["company"], "New.Person@Otemachi.example.jp")
    assert response.status_code == 302
    row = db.session.scalar(sa.select(Invitation))
    assert row.email == "new.person@otemachi.example.jp" and row.role == Role.STAFF
    assert row.expires_at - row.created_at == timedelta(days=7)
    got = _delivered(smtp_server)
    message = got["new.person@otemachi.example.jp"]
    assert "大手町商事への招待" in message["Subject"]
    assert "メンバー" in _text(message) and "林 管理" in _text(message)
    link = _link(message)
    # Only the digest is stored: the token of the link is nowhere in the table.
    token = link.rsplit("/", 1)[1]
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in str(db.session.execute(sa.select(Invitation.__table__)).all())
    # The page lists it as pending, with its expiry and a revoke button.
    page = client.get(f"/organisations/{w['company'].id}/people").get_data(as_text=True)
    assert "new.person@otemachi.example.jp" in page and "招待を取り消す" in page
    _logout(client)

    page = client.get(link)
    assert page.status_code == 200 and "登録して参加する" in page.get_data(as_text=True)
    weak = client.post(link, data={"name": "新人", "password": "password"})
    assert weak.status_code == 422
    done = client.post(link, data={"name": "新人 太郎", "password": "a-long-unguessable-phrase"})
    assert done.status_code == 302
    user = db.session.scalar(sa.select(User).where(User.email == "new.person@otemachi.example.jp"))
    assert user.email_verified_at is not None  # the link proved the address
    assert user.role_in(w["company"].id) == Role.STAFF
    # Logged in as the new member; the people page shows them as メンバー.
    page = client.get(f"/organisations/{w['company'].id}/people").get_data(as_text=True)
    assert "新人 太郎" in page and "メンバー" in page and "招待メールを送る" not in page
    # Used once.
    _logout(client)
    again = client.post(link, data={"name": "誰か", "password": "another-long-phrase-1"})
    assert again.status_code == 410 and "既に使われました" in again.get_data(as_text=True)


def test_an_existing_user_accepts_logged_in_and_wrong_accounts_are_refused(
        w, client, login, make, smtp_server):
    solo = make.user("solo@example.jp", name="単独")
    stranger = make.user("stranger@example.jp")
    _invite(client, login, w["op_owner"], w["operator"], "solo@example.jp", "owner")
    message = _delivered(smtp_server)["solo@example.jp"]
    assert "オーナー" in _text(message)
    link = _link(message)
    _logout(client)
    # Anonymous with an account for the address: told to log in.
    taken = client.post(link, data={"name": "単独", "password": "a-long-unguessable-phrase"})
    assert taken.status_code == 409 and "ログインしてから" in taken.get_data(as_text=True)
    login(stranger)
    page = client.get(link).get_data(as_text=True)
    assert "solo@example.jp宛てです" in page
    refused = client.post(link)
    assert refused.status_code == 403
    assert stranger.role_in(w["operator"].id) is None
    _logout(client)
    login(solo)
    assert client.post(link).status_code == 302
    db.session.expire_all()
    assert db.session.get(User, solo.id).role_in(w["operator"].id) == Role.OWNER


def test_expiry_revoke_and_refusals(w, client, login, make, smtp_server):
    owner = w["admin"]
    _invite(client, login, owner, w["company"], "late@example.jp")
    link = _link(_delivered(smtp_server)["late@example.jp"])
    with time_machine.travel(clock.now() + timedelta(days=7, minutes=1)):
        _logout(client)
        late = client.post(link, data={"name": "遅刻", "password": "a-long-unguessable-phrase"})
        assert late.status_code == 410 and "有効期限が切れています" in late.get_data(as_text=True)
        # And the people page no longer lists it as pending.
    assert db.session.scalar(sa.select(sa.func.count()).select_from(User).where(
        User.email == "late@example.jp")) == 0

    _invite(client, login, owner, w["company"], "revoked@example.jp")
    row = db.session.scalar(sa.select(Invitation).where(Invitation.email == "revoked@example.jp"))
    link = _link(_delivered(smtp_server)["revoked@example.jp"])
    assert client.post(f"/organisations/{w['company'].id}/people/revoke",
                       data={"invitation": row.id}).status_code == 302
    _logout(client)
    gone = client.post(link, data={"name": "取消", "password": "a-long-unguessable-phrase"})
    assert gone.status_code == 410 and "取り消されました" in gone.get_data(as_text=True)
    with pytest.raises(DomainError) as refused:
        invitations.revoke(db.session, owner, row.id)
    assert refused.value.code == "invitation_revoked"

    # Already a member; a user of another company (User.company is one company).
    elsewhere = make.user("elsewhere@example.jp", organisation=w["other_company"])
    with pytest.raises(DomainError) as member:
        invitations.invite(db.session, owner, w["company"].id, owner.email, Role.STAFF)
    assert member.value.code == "already_member"
    login(owner)
    second = client.post(f"/organisations/{w['company'].id}/people",
                         data={"email": elsewhere.email, "role": "staff"})
    assert second.status_code == 409 and "別の会社に所属" in second.get_data(as_text=True)
    # A made-up link.
    assert client.get("/invitations/not-a-real-token").status_code == 404


def test_staff_and_strangers_cannot_invite_or_change(w, client, login, make):
    staff = make.user("staff@otemachi.example.jp", organisation=w["company"], role="staff")
    login(staff)
    assert client.get(f"/organisations/{w['company'].id}/people").status_code == 200
    assert client.post(f"/organisations/{w['company'].id}/people",
                       data={"email": "x@example.jp", "role": "owner"}).status_code == 403
    _logout(client)
    login(w["op_owner"])
    assert client.get(f"/organisations/{w['company'].id}/people").status_code == 404
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Invitation)) == 0


def test_roles_change_and_the_last_owner_stays(w, client, login, make):
    company = w["company"]
    other_company = w["other_company"].id
    staff = make.user("staff@otemachi.example.jp", organisation=company, role="staff")
    admin_m = db.session.scalar(sa.select(Membership).where(Membership.user_id == w["admin"].id))
    staff_m = db.session.scalar(sa.select(Membership).where(Membership.user_id == staff.id))
    login(w["admin"])
    # The only owner cannot step down or leave: the page does not offer it, the service
    # refuses it.
    page = client.get(f"/organisations/{company.id}/people").get_data(as_text=True)
    assert "ほかに管理者がいないため" in page
    assert f'value="{admin_m.id}"' not in page and f'value="{staff_m.id}"' in page
    refused = client.post(f"/organisations/{company.id}/people/role",
                          data={"membership": admin_m.id, "role": "staff"})
    assert refused.status_code == 409 and "少なくとも1人の管理者" in refused.get_data(as_text=True)
    assert client.post(f"/organisations/{company.id}/people/remove",
                       data={"membership": admin_m.id}).status_code == 409
    # Promote the member; then the first admin may step down.
    assert client.post(f"/organisations/{company.id}/people/role",
                       data={"membership": staff_m.id, "role": "owner"}).status_code == 302
    assert client.post(f"/organisations/{company.id}/people/role",
                       data={"membership": admin_m.id, "role": "staff"}).status_code == 302
    db.session.expire_all()
    assert db.session.get(Membership, admin_m.id).role == Role.STAFF
    # Now staff: changes are refused.
    assert client.post(f"/organisations/{company.id}/people/remove",
                       data={"membership": staff_m.id}).status_code == 403
    _logout(client)
    login(staff)
    company_id, removed = company.id, admin_m.id
    assert client.post(f"/organisations/{company.id}/people/remove",
                       data={"membership": removed}).status_code == 302
    db.session.expunge_all()
    assert db.session.scalar(sa.select(Membership.id).where(Membership.id == removed)) is None
    # A membership of another organisation is "not found" here.
    other = make.user("o@example.jp", organisation=db.session.get(type(company), other_company))
    other_m = db.session.scalar(sa.select(Membership.id).where(Membership.user_id == other.id))
    assert client.post(f"/organisations/{company_id}/people/remove",
                       data={"membership": other_m}).status_code == 404
    actions = set(db.session.scalars(sa.select(AuditEntry.action)))
    assert {"member.role", "member.remove"} <= actions


def test_two_acceptances_at_once_one_joins(app, w, make):
    """Two sessions accept the same invitation at the same instant (the invited user in
    two tabs, or two people holding the forwarded link): one joins, the other is told it
    was used; one membership, the invitation accepted once."""
    person = make.user("racer@example.jp")
    _inv, token = invitations.invite(db.session, w["admin"], w["company"].id,
                                     "racer@example.jp", Role.STAFF)
    db.session.commit()
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def racer() -> None:
        with app.app_context():
            try:
                user = db.session.get(User, person.id)
                db.session.commit()
                barrier.wait(timeout=30)
                invitations.accept(db.session, user, token)
                db.session.commit()
                outcomes.append("ok")
            except DomainError as error:
                db.session.rollback()
                outcomes.append(error.code)
            except Exception as error:  # a failure of the test
                db.session.rollback()
                outcomes.append(f"error: {type(error).__name__}: {error}")
            finally:
                db.session.remove()

    threads = [threading.Thread(target=racer) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(outcomes) in (["invitation_used", "ok"], ["already_member", "ok"]), outcomes
    db.session.expire_all()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Membership).where(
        Membership.user_id == person.id)) == 1
    row = db.session.scalar(sa.select(Invitation))
    assert row.accepted_user_id == person.id


# --------------------------------------------------------------------------- company roles


def test_company_admin_sees_all_bookings_member_their_own(w, client, login, make):
    company = w["company"]
    member = make.user("member@otemachi.example.jp", organisation=company, role="staff")
    colleague = make.user("colleague@otemachi.example.jp", organisation=company, role="staff")
    unit = make.unit(make.space(w["operator"]))
    start = datetime(2027, 7, 26, 0, 0, tzinfo=UTC)
    mine = make.booking(unit, start, start + timedelta(hours=9), company=company,
                        user_id=member.id)
    theirs = make.booking(unit, start, start + timedelta(hours=9), company=company,
                          user_id=colleague.id)

    def listed(user) -> set[str]:
        token, _ = tokens.issue(db.session, user, 1)
        db.session.commit()
        body = client.get("/api/v1/bookings",
                          headers={"Authorization": f"Bearer {token}"}).get_json()
        return {b["reference"] for b in body["results"]}

    assert listed(w["admin"]) == {mine.reference, theirs.reference}
    assert listed(member) == {mine.reference}
    assert client.get(f"/api/v1/bookings/{theirs.reference}", headers={
        "Authorization": f"Bearer {tokens.issue(db.session, member, 1)[0]}"}).status_code == 404
    db.session.commit()

    login(member)
    page = client.get("/bookings").get_data(as_text=True)
    assert mine.reference in page and theirs.reference not in page
    # The company's calendar feed (all its bookings) is its admins' only.
    assert "会社の予約" not in page
    assert client.post("/bookings/feeds/company/renew").status_code == 404
    assert client.get(f"/bookings/{theirs.reference}").status_code == 404
    assert client.get(f"/bookings/{mine.reference}").status_code == 200
    _logout(client)
    login(w["admin"])
    page = client.get("/bookings").get_data(as_text=True)
    assert mine.reference in page and theirs.reference in page
    assert "会社の予約" in page
    assert client.post("/bookings/feeds/company/renew").status_code == 302
    assert client.get(f"/bookings/{theirs.reference}").status_code == 200
