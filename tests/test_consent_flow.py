"""Issue 19, the consent flow end to end: a municipality proposes a slot on an operator's
unit; the operator is mailed (the real SMTP path: tests/mailbox.py) and sees it on the
console home; declines (a reason is required, shown beside its field) or accepts; the
municipality sees the answer on its console home and by mail; only an accepted slot is
offered. Strangers cannot answer; people who switched consent mail off get none; of two
answers racing only one applies."""

from __future__ import annotations

import re
from datetime import date

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from booking.extensions import db
from booking.models import CampaignSlot, Eligibility, OrgKind, OutboxMessage, User
from booking.services import campaign_management as management
from booking.services import mail
from booking.services.availability import at, timeline
from booking.services.errors import DomainError

DAY = date(2027, 7, 23)


@pytest.fixture
def app_config(smtp_port):
    return {"MAIL_URL": f"smtp://127.0.0.1:{smtp_port}"}


@pytest.fixture
def w(make):
    city = make.organisation(OrgKind.MUNICIPALITY, name="吉川市", name_en="Yoshikawa City")
    operator = make.organisation(OrgKind.OPERATOR, name="オアシス", name_en="Oasis")
    stranger_org = make.organisation(OrgKind.OPERATOR)
    space = make.space(operator, name="オアシス吉川", name_en="Oasis Yoshikawa")
    make.unit(make.space(stranger_org))
    return {
        "city": city, "operator": operator,
        "clerk": make.user("clerk@example.jp", organisation=city),
        "clerk_en": make.user("clerk-en@example.jp", organisation=city, locale="en"),
        "clerk_off": make.user("clerk-off@example.jp", organisation=city, role="staff"),
        "owner": make.user("owner@example.jp", organisation=operator),
        "owner_en": make.user("owner-en@example.jp", organisation=operator, locale="en"),
        "staff_off": make.user("staff-off@example.jp", organisation=operator, role="staff"),
        "stranger": make.user("stranger@example.jp", organisation=stranger_org),
        "unit": make.unit(space, name="フリー席"),
        "campaign": make.campaign(city, name="テレワーク・デイズ", name_en="Telework Days"),
    }


def _switch_off(*users: User) -> None:
    for user in users:
        user.notify_consents = False
    db.session.commit()


def _propose(w) -> CampaignSlot:
    data = management.SlotData(
        unit_id=w["unit"].id, start_date=DAY, end_date=date(2027, 7, 26), daily_start_min=540,
        daily_end_min=1080, seats=3, price_amount=0, subsidy_cap=None,
        max_seats_per_company_per_day=None, max_bookings_per_company=None,
        eligibility=Eligibility.ANY_COMPANY)
    slot = management.save_slot(db.session, w["clerk"], w["campaign"], data)
    db.session.commit()
    return slot


def _delivered(smtp_server) -> dict:
    """Sends what the outbox holds through SMTP; the messages received, by recipient."""
    smtp_server.messages.clear()
    mail.run_once(db.session)
    return {m["To"]: m for m in smtp_server.parsed()}


def _text(message) -> str:
    return message.get_body(preferencelist=("plain",)).get_content()


def _offered(slot: CampaignSlot) -> bool:
    db.session.expire_all()
    offered = [s.id for s in management.offered_slots(db.session, slot.campaign)]
    free = timeline(db.session, slot.unit, at(DAY, 540), at(DAY, 1080)).min_free(
        at(DAY, 540), at(DAY, 1080), slot.id)
    assert (slot.id in offered) == (free > 0)
    return slot.id in offered


def _answer(client, slot: CampaignSlot, consent: str, reason: str = ""):
    return client.post(f"/campaigns/consents/{slot.id}",
                       data={"consent": consent, "reason": reason})


def test_propose_decline_with_reason_then_accept(w, smtp_server, client, login):
    _switch_off(w["clerk_off"], w["staff_off"])
    slot = _propose(w)

    # The operator's members are asked by mail, each in their own language.
    got = _delivered(smtp_server)
    assert set(got) == {"owner@example.jp", "owner-en@example.jp"}
    assert "【同意のお願い】テレワーク・デイズ: オアシス吉川" in got["owner@example.jp"]["Subject"]
    assert "/campaigns/consents" in _text(got["owner@example.jp"])
    assert "吉川市" in _text(got["owner@example.jp"])
    english = got["owner-en@example.jp"]
    assert english["Subject"] == "[Your consent is requested] Telework Days: Oasis Yoshikawa"
    assert "Yoshikawa City" in _text(english)
    assert not _offered(slot)

    # The console home lists it, with the way to answer.
    login(w["owner"])
    home = client.get("/operator/").get_data(as_text=True)
    assert "対応が必要なこと" in home and "キャンペーンへの同意の依頼: 1件" in home
    assert f'href="/campaigns/consents#slot-{slot.id}"' in home
    assert 'href="/campaigns/consents"' in home  # the console's navigation too
    assert client.get("/campaigns/consents").status_code == 200

    # Declining without a reason is refused, beside the reason field; nothing changes.
    refused = _answer(client, slot, "0")
    assert refused.status_code == 422
    page = refused.get_data(as_text=True)
    assert f'id="reason-{slot.id}-error"' in page and "お断りする理由を入力してください。" in page
    db.session.expire_all()
    assert (slot.operator_consent, slot.consent_answered_at) == (False, None)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(OutboxMessage)
                             .where(OutboxMessage.sent_at.is_(None))) == 0

    # Declined with a reason: the municipality's members are told why.
    assert _answer(client, slot, "0", "7月は改装工事のため").status_code == 302
    db.session.expire_all()
    assert slot.operator_consent is False and slot.consent_answered_at is not None
    assert slot.consent_reason == "7月は改装工事のため"
    assert "対応が必要なこと" not in client.get("/operator/").get_data(as_text=True)
    got = _delivered(smtp_server)
    assert set(got) == {"clerk@example.jp", "clerk-en@example.jp"}
    assert "【同意されませんでした】" in got["clerk@example.jp"]["Subject"]
    assert "7月は改装工事のため" in _text(got["clerk@example.jp"])
    assert "7月は改装工事のため" in _text(got["clerk-en@example.jp"])
    assert not _offered(slot)

    # The municipality's console home shows the answer and the reason.
    client.post("/account/logout")
    login(w["clerk"])
    page = client.get("/municipality/").get_data(as_text=True)
    assert "施設からの回答" in page and "同意されませんでした" in page
    assert "7月は改装工事のため" in page

    # The operator changes its mind: accepted, offered, and the municipality is told.
    client.post("/account/logout")
    login(w["owner"])
    assert _answer(client, slot, "1").status_code == 302
    db.session.expire_all()
    assert slot.operator_consent is True and slot.consent_reason == ""
    assert _offered(slot)
    got = _delivered(smtp_server)
    assert set(got) == {"clerk@example.jp", "clerk-en@example.jp"}
    assert "【同意されました】" in got["clerk@example.jp"]["Subject"]

    # Withdrawing (as before) needs a reason too, and stops the offer.
    assert _answer(client, slot, "0").status_code == 422
    assert _answer(client, slot, "0", "利用者が増えたため").status_code == 302
    assert not _offered(slot)


def test_a_stranger_cannot_answer(w, client, login):
    slot = _propose(w)
    login(w["stranger"])
    assert _answer(client, slot, "1").status_code == 404
    assert _answer(client, slot, "0", "no").status_code == 404
    assert "対応が必要なこと" not in client.get("/operator/").get_data(as_text=True)
    with pytest.raises(DomainError) as refused:
        management.set_consent(db.session, w["stranger"], slot, True)
    assert refused.value.code == "not_found"
    with pytest.raises(DomainError):
        management.set_consent(db.session, w["clerk"], slot, True)  # the proposer itself
    db.session.rollback()
    db.session.expire_all()
    assert (slot.operator_consent, slot.consent_answered_at) == (False, None)


def test_members_who_switched_consent_mail_off_get_none(w, smtp_server):
    _switch_off(w["owner"], w["owner_en"], w["staff_off"])
    slot = _propose(w)
    assert _delivered(smtp_server) == {}
    _switch_off(w["clerk"], w["clerk_en"], w["clerk_off"])
    management.set_consent(db.session, w["owner"], slot, False, "満席のため")
    db.session.commit()
    assert _delivered(smtp_server) == {}
    assert not _offered(slot)


def test_of_two_answers_racing_only_the_first_applies(w, app):
    slot = _propose(w)
    assert slot.operator_consent is False  # read here: pending
    with Session(db.engine) as other:
        first = other.get(CampaignSlot, slot.id)
        management.set_consent(other, other.get(User, w["owner_en"].id), first, False, "No")
        other.commit()
    with pytest.raises(DomainError) as refused:
        management.set_consent(db.session, w["owner"], slot, True)  # still thought pending
    assert refused.value.code == "consent_changed"
    db.session.rollback()
    db.session.expire_all()
    assert (slot.operator_consent, slot.consent_reason) == (False, "No")


def test_new_terms_ask_again(w, smtp_server):
    slot = _propose(w)
    management.set_consent(db.session, w["owner"], slot, False, "狭いため")
    db.session.commit()
    _delivered(smtp_server)
    data = management.SlotData(
        unit_id=w["unit"].id, start_date=DAY, end_date=date(2027, 7, 26), daily_start_min=540,
        daily_end_min=1080, seats=2, price_amount=0, subsidy_cap=None,
        max_seats_per_company_per_day=None, max_bookings_per_company=None,
        eligibility=Eligibility.ANY_COMPANY)
    management.save_slot(db.session, w["clerk"], w["campaign"], data, slot)
    db.session.commit()
    assert (slot.operator_consent, slot.consent_answered_at, slot.consent_reason) == (
        False, None, "")
    assert set(_delivered(smtp_server)) >= {"owner@example.jp"}
    assert [s.id for s in management.waiting_consents(db.session, w["owner"])] == [slot.id]


def test_an_answer_without_the_csrf_token_is_refused(w, app, client, login):
    slot = _propose(w)
    login(w["owner"])
    app.config["WTF_CSRF_ENABLED"] = True
    try:
        assert _answer(client, slot, "1").status_code == 400  # CSRFProtect refuses it
        db.session.expire_all()
        assert slot.operator_consent is False
        page = client.get("/campaigns/consents").get_data(as_text=True)
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        answered = client.post(f"/campaigns/consents/{slot.id}",
                               data={"consent": "1", "csrf_token": token})
        assert answered.status_code == 302
    finally:
        app.config["WTF_CSRF_ENABLED"] = False
    db.session.expire_all()
    assert slot.operator_consent is True
