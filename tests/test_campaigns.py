"""Campaigns of municipalities: the seeded Telework Days slots booked at their price, the
per-company and outside-prefecture rules, subsidies, extras lent with seats, operator
consent, participation registration, and the public campaign page."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa
import time_machine

from booking.extensions import db
from booking.models import (
    Booking,
    BookingStatus,
    Campaign,
    CampaignExtra,
    CampaignSlot,
    Eligibility,
    OrgKind,
    TeleworkCategory,
    User,
)
from booking.seeds import demo
from booking.services import booking_requests, campaign_extras, campaign_management, campaign_rules
from booking.services.availability import at, timeline
from booking.services.errors import DomainError
from tests.edge import reservations
from tests.worlds import future_day

BEFORE_2019 = datetime(2019, 7, 1, 3, 0, tzinfo=UTC)  # 12:00 in Tokyo, three weeks before


@pytest.fixture
def seeded(app):
    demo.load(db.session, today=date(2019, 7, 1))
    db.session.commit()
    return db.session


def _user(email: str) -> User:
    return db.session.scalar(sa.select(User).where(User.email == email))


def _slot(slug: str) -> CampaignSlot:
    return db.session.scalar(sa.select(CampaignSlot).join(Campaign).where(Campaign.slug == slug))


def _book(user: User, slot: CampaignSlot, day: date, seats: int) -> Booking:
    unit = slot.unit
    found, _chosen = booking_requests.resolve_slot(
        db.session, unit, user,
        booking_requests.BookingRequest(unit_id=unit.id, first_date=day, campaign=slot.campaign.slug))
    [made] = reservations.book(db.session, unit, user,
                               [reservations.day_period(unit, day, found)], seats, slot=found)
    return made


def _message(error: DomainError) -> str:
    from flask import current_app

    with current_app.test_request_context():
        return error.message


def _company_user(make, **kw) -> User:
    return make.user(organisation=make.company(**kw))


# ------------------------------------------------------------------------------- acceptance


def test_oasis_is_free_7_23_to_26_from_9_to_18_and_books_at_price_0(seeded):
    slot = _slot("telework-days-2019-yoshikawa")
    assert (slot.start_date, slot.end_date) == (date(2019, 7, 23), date(2019, 7, 26))
    assert (slot.daily_start_min, slot.daily_end_min) == (9 * 60, 18 * 60)
    assert slot.price_amount == 0 and slot.unit.space.slug == "oasis-yoshikawa"
    with time_machine.travel(BEFORE_2019, tick=False):
        booking = _book(_user("company@example.jp"), slot, date(2019, 7, 23), 2)
    assert booking.price_amount == 0 and booking.subsidy_amount == 0
    assert booking.campaign_slot_id == slot.id
    assert booking.starts_at == at(date(2019, 7, 23), 540)
    assert booking.ends_at == at(date(2019, 7, 23), 1080)


def test_seats_per_company_per_day_rule_refuses_with_403_naming_the_rule(seeded, make):
    slot = _slot("telework-days-2019-yoshikawa")
    assert slot.max_seats_per_company_per_day == 5  # the seeded rule
    demo_user = _user("company@example.jp")
    with time_machine.travel(BEFORE_2019, tick=False):
        _book(demo_user, slot, date(2019, 7, 23), 5)
        with pytest.raises(DomainError) as refused:
            _book(demo_user, slot, date(2019, 7, 23), 1)
        # Another company is not affected by the first one's allowance.
        other = _book(_company_user(make), slot, date(2019, 7, 23), 5)
    assert refused.value.code == "campaign_seats_per_day"
    assert refused.value.status == 403
    assert "1社1日あたりの席数" in _message(refused.value)
    assert refused.value.extra == {"limit": 5}
    assert other.price_amount == 0


def test_bookings_per_company_rule_refuses_the_second_booking(seeded, make):
    slot = _slot("telework-days-2019-yoshikawa")
    slot.max_bookings_per_company = 1
    db.session.commit()
    demo_user = _user("company@example.jp")
    with time_machine.travel(BEFORE_2019, tick=False):
        _book(demo_user, slot, date(2019, 7, 23), 1)
        with pytest.raises(DomainError) as refused:
            _book(demo_user, slot, date(2019, 7, 24), 1)
        _book(_company_user(make), slot, date(2019, 7, 24), 1)
    assert refused.value.code == "campaign_bookings_per_company"
    assert refused.value.status == 403
    assert "1社あたりの予約は" in _message(refused.value)
    held = db.session.scalar(sa.select(sa.func.count()).select_from(Booking)
                             .where(Booking.campaign_slot_id == slot.id))
    assert held == 2  # nothing half-written by the refused one


def test_outside_prefecture_rule_refuses_a_company_registered_in_that_prefecture(seeded, make):
    slot = _slot("shizuoka-trial-2019")
    assert slot.eligibility == Eligibility.OUTSIDE_PREFECTURE
    local = _company_user(make, prefecture_code=22)  # 静岡県, like the space
    with time_machine.travel(BEFORE_2019, tick=False):
        with pytest.raises(DomainError) as refused:
            _book(local, slot, date(2019, 7, 24), 1)
        tokyo = _book(_user("company@example.jp"), slot, date(2019, 7, 24), 1)
    assert refused.value.code == "campaign_outside_prefecture"
    assert refused.value.status == 403
    assert "県外の企業のみ" in _message(refused.value)
    assert tokyo.id is not None


def test_subsidised_booking_records_what_company_and_municipality_pay(seeded):
    slot = _slot("shizuoka-trial-2019")  # unit price ¥1,000/day, city pays up to ¥1,000
    with time_machine.travel(BEFORE_2019, tick=False):
        booking = _book(_user("company@example.jp"), slot, date(2019, 7, 24), 3)
    assert (booking.price_amount, booking.subsidy_amount) == (2000, 1000)
    assert campaign_rules.split_price(slot, 3000) == (2000, 1000)
    assert campaign_rules.split_price(slot, 600) == (0, 600)
    assert campaign_rules.split_price(None, 600) == (600, 0)


def test_a_named_campaign_needs_a_slot_on_the_unit_for_the_days_asked(seeded):
    slot = _slot("telework-days-2019-yoshikawa")
    user = _user("demo@example.jp")

    def resolve(slug: str, day: date):
        return booking_requests.resolve_slot(
            db.session, slot.unit, user,
            booking_requests.BookingRequest(unit_id=slot.unit_id, first_date=day, campaign=slug))

    with time_machine.travel(BEFORE_2019, tick=False):  # once ended, a slot offers nothing
        assert resolve(slot.campaign.slug, date(2019, 7, 23)) == (slot, False)
        with pytest.raises(DomainError) as outside:
            resolve(slot.campaign.slug, date(2019, 7, 27))
        assert outside.value.code == "campaign_closed"
        with pytest.raises(DomainError) as unknown:
            resolve("no-such-campaign", date(2019, 7, 23))
        assert unknown.value.code == "campaign_closed"
    with pytest.raises(DomainError) as ended:  # today: history (tests/test_history.py)
        resolve(slot.campaign.slug, date(2019, 7, 23))
    assert ended.value.code == "campaign_closed" and ended.value.variant == "ended"


# ------------------------------------------------------------------------------- extras


@pytest.fixture
def trial(seeded):
    slot = _slot("shizuoka-trial-2019")
    wifi = db.session.scalar(sa.select(CampaignExtra).where(CampaignExtra.campaign_id == slot.campaign_id))
    wifi.quantity = 2
    wifi.max_per_booking = 2
    db.session.commit()
    return slot, wifi


def _booking_on(make, slot, day: date, **kw) -> Booking:
    return make.booking(slot.unit, at(day, 540), at(day, 1080), campaign_slot_id=slot.id,
                        company=kw.pop("company", None) or make.company(), **kw)


def test_extras_are_limited_in_number_at_every_instant(trial, make):
    slot, wifi = trial
    first, second, third = (_booking_on(make, slot, date(2019, 7, 24)) for _ in range(3))
    campaign_extras.reserve_extras(db.session, first, {wifi.id: 1})
    campaign_extras.reserve_extras(db.session, second, {wifi.id: 1})
    db.session.commit()
    with pytest.raises(DomainError) as sold_out:
        campaign_extras.reserve_extras(db.session, third, {wifi.id: 1})
    db.session.rollback()
    assert sold_out.value.code == "extra_sold_out" and sold_out.value.status == 409
    assert sold_out.value.extra["available"] == 0
    # Another day: all are back.
    other_day = _booking_on(make, slot, date(2019, 7, 25))
    campaign_extras.reserve_extras(db.session, other_day, {wifi.id: 1})
    # Cancelling a booking returns what it held.
    first.status = BookingStatus.CANCELLED
    db.session.commit()
    campaign_extras.reserve_extras(db.session, third, {wifi.id: 1})
    db.session.commit()
    lines = campaign_extras.booking_extras(db.session, third)
    assert [(line.extra.name, line.quantity) for line in lines] == [("ポケットWi-Fi", 1)]
    available = {e.id: n for e, n in campaign_extras.extras_available(
        db.session, slot.campaign, at(date(2019, 7, 24), 540), at(date(2019, 7, 24), 1080))}
    assert available[wifi.id] == 0


def test_extras_touching_ranges_do_not_overlap(trial, make):
    slot, wifi = trial
    morning = make.booking(slot.unit, at(date(2019, 7, 24), 540), at(date(2019, 7, 24), 720),
                           seats=1, campaign_slot_id=slot.id, company=make.company())
    afternoon = make.booking(slot.unit, at(date(2019, 7, 24), 720), at(date(2019, 7, 24), 1080),
                             seats=1, campaign_slot_id=slot.id, company=make.company())
    campaign_extras.reserve_extras(db.session, morning, {wifi.id: 2})
    campaign_extras.reserve_extras(db.session, afternoon, {wifi.id: 2})  # [9,12) and [12,18) touch
    db.session.commit()
    assert campaign_extras.extras_held(db.session, [wifi.id], at(date(2019, 7, 24), 540),
                                 at(date(2019, 7, 24), 1080)) == {wifi.id: 2}


def test_extras_of_another_campaign_or_too_many_are_refused(trial, make):
    slot, wifi = trial
    wifi.max_per_booking = 1
    db.session.commit()
    booking = _booking_on(make, slot, date(2019, 7, 24))
    with pytest.raises(DomainError) as too_many:
        campaign_extras.reserve_extras(db.session, booking, {wifi.id: 2})
    db.session.rollback()
    foreign = CampaignExtra(campaign_id=_slot("telework-days-2019-yoshikawa").campaign_id,
                            name="プロジェクター", quantity=1)
    db.session.add(foreign)
    db.session.commit()
    with pytest.raises(DomainError) as not_offered:
        campaign_extras.reserve_extras(db.session, booking, {foreign.id: 1})
    db.session.rollback()
    regular = make.booking(slot.unit, at(date(2019, 7, 24), 540), at(date(2019, 7, 24), 1080))
    with pytest.raises(DomainError) as no_slot:
        campaign_extras.reserve_extras(db.session, regular, {wifi.id: 1})
    assert too_many.value.code == "extra_too_many"
    assert not_offered.value.code == "extra_not_offered"
    assert no_slot.value.code == "extra_not_offered"
    # Setting 0 removes the line.
    db.session.rollback()
    campaign_extras.reserve_extras(db.session, booking, {wifi.id: 1})
    campaign_extras.reserve_extras(db.session, booking, {wifi.id: 0})
    db.session.commit()
    assert campaign_extras.booking_extras(db.session, booking) == []


# ------------------------------------------------------------------------------- management


def _municipality(make, **kw):
    org = make.organisation(OrgKind.MUNICIPALITY, **kw)
    return org, make.user(organisation=org)


def test_slot_on_an_operators_space_waits_for_its_consent(app, make):
    city, clerk = _municipality(make)
    operator = make.organisation(OrgKind.OPERATOR)
    operator_user = make.user(organisation=operator)
    unit = make.unit(make.space(operator), members_only=True)
    campaign = make.campaign(city)
    data = campaign_management.SlotData(
        unit_id=unit.id, start_date=date(2027, 7, 23), end_date=date(2027, 7, 26),
        daily_start_min=540, daily_end_min=1080, seats=3, price_amount=0, subsidy_cap=None,
        max_seats_per_company_per_day=None, max_bookings_per_company=None,
        eligibility=Eligibility.ANY_COMPANY)
    slot = campaign_management.save_slot(db.session, clerk, campaign, data)
    db.session.commit()
    day = date(2027, 7, 23)
    assert slot.operator_consent is False
    assert campaign_management.offered_slots(db.session, campaign) == []
    assert timeline(db.session, unit, at(day, 540), at(day, 1080)).min_free(
        at(day, 540), at(day, 1080), slot.id) == 0
    assert [s.id for s in campaign_management.pending_consents(db.session, operator_user)] == [slot.id]
    with pytest.raises(DomainError):
        campaign_management.set_consent(db.session, clerk, slot, True)  # not the operator
    campaign_management.set_consent(db.session, operator_user, slot, True)
    db.session.commit()
    assert [s.id for s in campaign_management.offered_slots(db.session, campaign)] == [slot.id]
    assert timeline(db.session, unit, at(day, 540), at(day, 1080)).min_free(
        at(day, 540), at(day, 1080), slot.id) == 3
    # New terms need a new consent.
    data.seats = 5
    campaign_management.save_slot(db.session, clerk, campaign, data, slot)
    db.session.commit()
    assert slot.operator_consent is False


def test_slot_rules_of_management(app, make):
    city, clerk = _municipality(make)
    other_city, _ = _municipality(make)
    own_unit = make.unit(make.space(city))
    foreign_unit = make.unit(make.space(other_city))
    campaign = make.campaign(city)

    def data(**kw):
        values = {"unit_id": own_unit.id, "start_date": date(2027, 7, 23),
                  "end_date": date(2027, 7, 26), "daily_start_min": 540, "daily_end_min": 1080,
                  "seats": 3, "price_amount": 0, "subsidy_cap": None,
                  "max_seats_per_company_per_day": None, "max_bookings_per_company": None,
                  "eligibility": Eligibility.ANY_COMPANY, **kw}
        return campaign_management.SlotData(**values)

    codes = []
    for bad in (data(unit_id=foreign_unit.id), data(end_date=date(2027, 9, 30)),
                data(daily_start_min=1080, daily_end_min=540)):
        with pytest.raises(DomainError) as refused:
            campaign_management.save_slot(db.session, clerk, campaign, bad)
        db.session.rollback()
        codes.append(refused.value.code)
    assert codes == ["slot_unit_not_allowed", "slot_outside_campaign", "bad_range"]
    slot = campaign_management.save_slot(db.session, clerk, campaign, data())
    db.session.commit()
    assert slot.operator_consent is True  # its own space: no consent needed
    make.booking(own_unit, at(date(2027, 7, 24), 540), at(date(2027, 7, 24), 1080), seats=3,
                 campaign_slot_id=slot.id, company=make.company())
    with pytest.raises(DomainError) as shrink:
        campaign_management.save_slot(db.session, clerk, campaign, data(seats=2), slot)
    db.session.rollback()
    with pytest.raises(DomainError) as delete:
        campaign_management.delete_slot(db.session, clerk, slot)
    db.session.rollback()
    assert shrink.value.code == delete.value.code == "slot_has_bookings"
    campaign_management.save_slot(db.session, clerk, campaign, data(seats=6), slot)  # growing is fine
    db.session.commit()
    assert slot.seats == 6


def test_municipality_creates_campaign_slot_and_extra_through_the_pages(app, make, client, login):
    city, clerk = _municipality(make, name="吉川市テスト")
    unit = make.unit(make.space(city, name="おあしすテスト"))
    login(clerk)
    bad = client.post("/municipality/campaigns/new", data={
        "organisation_id": city.id, "name": "テスト", "slug": "test-days", "starts_on": "2027-07-22",
        "ends_on": "2027-07-01", "core_days": "2027-07-24"})
    assert bad.status_code == 422
    assert "終了は開始より後にしてください" in bad.get_data(as_text=True)
    response = client.post("/municipality/campaigns/new", data={
        "organisation_id": city.id, "name": "テレワーク・デイズ2027", "name_en": "Telework Days 2027",
        "slug": "test-days", "starts_on": "2027-07-22", "ends_on": "2027-09-06",
        "core_days": "2027-07-24", "published": "y"})
    assert response.status_code == 302
    campaign = db.session.scalar(sa.select(Campaign).where(Campaign.slug == "test-days"))
    assert campaign.core_days == ["2027-07-24"] and campaign.published
    response = client.post(f"/municipality/campaigns/{campaign.id}/slots/new", data={
        "unit_id": unit.id, "start_date": "2027-07-23", "end_date": "2027-07-26",
        "daily_start": "09:00", "daily_end": "18:00", "seats": "20", "price_mode": "free",
        "max_seats_per_company_per_day": "5", "eligibility": "any"})
    assert response.status_code == 302, response.get_data(as_text=True)
    slot = db.session.scalar(sa.select(CampaignSlot).where(CampaignSlot.campaign_id == campaign.id))
    assert (slot.price_amount, slot.daily_start_min, slot.daily_end_min, slot.seats) == (0, 540, 1080, 20)
    response = client.post(f"/municipality/campaigns/{campaign.id}/extras/new", data={
        "name": "ポケットWi-Fi", "quantity": "5", "max_per_booking": "1"})
    assert response.status_code == 302
    page = client.get(f"/municipality/campaigns/{campaign.id}").get_data(as_text=True)
    assert "おあしすテスト" in page and "ポケットWi-Fi" in page and "1社1日5席まで" in page
    public = client.get("/campaigns/test-days").get_data(as_text=True)
    assert "おあしすテスト" in public and "ポケットWi-Fi" in public


# ------------------------------------------------------------------------------- public


def test_public_campaign_page_in_japanese_and_english_with_a_map(seeded, client):
    ja = client.get("/campaigns/telework-days-2019-yoshikawa")
    assert ja.status_code == 200
    html = ja.get_data(as_text=True)
    assert "テレワーク・デイズ2019(吉川市)" in html and "市民交流センターおあしす" in html
    assert 'id="campaign-map"' in html and "35.8787" in html
    assert "2019年7月24日(水)" in html  # the core day
    en = client.get("/campaigns/telework-days-2019-yoshikawa?lang=en").get_data(as_text=True)
    assert "Telework Days 2019 (Yoshikawa)" in en and "Citizens&#39; Exchange Center Oasis" in en
    assert '<html lang="en">' in en


def test_unpublished_campaign_has_no_public_page(seeded, client):
    campaign = _slot("telework-days-2019-komagane").campaign
    campaign.published = False
    db.session.commit()
    assert client.get("/campaigns/telework-days-2019-komagane").status_code == 404
    assert client.get("/campaigns/no-such-thing").status_code == 404
    listing = client.get("/campaigns/").get_data(as_text=True)
    assert "駒ヶ根市" not in listing and "吉川市" in listing


def test_company_registers_its_participation(app, make, client, login):
    company = make.company()
    login(make.user(organisation=company))
    response = client.post("/campaigns/participation",
                           data={"telework_category": "special", "core_day_staff": "120"})
    assert response.status_code == 302
    db.session.refresh(company)
    assert company.telework_category == TeleworkCategory.SPECIAL and company.core_day_staff == 120
    bad = client.post("/campaigns/participation",
                      data={"telework_category": "special", "core_day_staff": "-3"})
    assert bad.status_code == 422


# ------------------------------------------------------------------------------- through the API


def _api_headers(user: User, key: str) -> dict:
    from booking.services import tokens

    token, _ = tokens.issue(db.session, user, 1)
    db.session.commit()
    return {"Authorization": f"Bearer {token}", "Idempotency-Key": key}


def test_api_books_oasis_with_the_campaign_slug_at_price_0_and_names_the_rule(seeded, client, make):
    slot = _slot("telework-days-2019-yoshikawa")
    slot.max_bookings_per_company = 1  # the per-company rule of this acceptance
    db.session.commit()
    body = {"unit_id": slot.unit_id, "date": "2019-07-23", "seats": 2,
            "campaign": "telework-days-2019-yoshikawa"}
    demo_user = _user("company@example.jp")
    with time_machine.travel(BEFORE_2019, tick=False):
        first = client.post("/api/v1/bookings", json=body, headers=_api_headers(demo_user, "a1"))
        again = client.post("/api/v1/bookings", json=dict(body, date="2019-07-24"),
                            headers=_api_headers(demo_user, "a2"))
        other = client.post("/api/v1/bookings", json=body,
                            headers=_api_headers(_company_user(make), "b1"))
    assert first.status_code == 201, first.json
    assert first.json["price"] == {"amount": 0, "currency": "JPY", "subsidy": 0}
    assert first.json["campaign"] == "telework-days-2019-yoshikawa"
    assert first.json["start"] == "2019-07-23T09:00:00+09:00"
    assert first.json["end"] == "2019-07-23T18:00:00+09:00"
    assert again.status_code == 403
    assert again.mimetype == "application/problem+json"
    assert again.json["code"] == "campaign_bookings_per_company" and again.json["limit"] == 1
    assert "1社あたりの予約は1回まで" in again.json["detail"]  # the limit, stated
    assert other.status_code == 201 and other.json["price"]["amount"] == 0


def test_api_refuses_a_company_of_the_prefecture_on_an_outside_prefecture_slot(seeded, client, make):
    slot = _slot("shizuoka-trial-2019")
    local = _company_user(make, prefecture_code=22)
    with time_machine.travel(BEFORE_2019, tick=False):
        refused = client.post("/api/v1/bookings", headers=_api_headers(local, "s1"), json={
            "unit_id": slot.unit_id, "date": "2019-07-24", "campaign": "shizuoka-trial-2019"})
    assert refused.status_code == 403
    assert refused.json["code"] == "campaign_outside_prefecture"
    assert "県外の企業のみ" in refused.json["detail"]


def test_subsidised_booking_receipt_shows_what_company_and_municipality_pay(seeded, client, login):
    slot = _slot("shizuoka-trial-2019")
    demo_user = _user("company@example.jp")
    with time_machine.travel(BEFORE_2019, tick=False):
        made = client.post("/api/v1/bookings", headers=_api_headers(demo_user, "r1"), json={
            "unit_id": slot.unit_id, "date": "2019-07-24", "seats": 3,
            "campaign": "shizuoka-trial-2019"})
    assert made.status_code == 201, made.json
    assert made.json["price"] == {"amount": 2000, "currency": "JPY", "subsidy": 1000}
    receipt = client.get(f"/api/v1/bookings/{made.json['reference']}",
                         headers=_api_headers(demo_user, "r2"))
    assert receipt.json["price"] == {"amount": 2000, "currency": "JPY", "subsidy": 1000}


def test_subsidised_booking_html_receipt_shows_both_shares(seeded, client, login):
    slot = _slot("shizuoka-trial-2019")
    demo_user = _user("company@example.jp")
    with time_machine.travel(BEFORE_2019, tick=False):
        [made] = reservations.book(db.session, slot.unit, demo_user,
                                   [reservations.day_period(slot.unit, date(2019, 7, 24), slot)], 3,
                                   slot=slot)
    login(demo_user, demo.DEMO_PASSWORD)
    receipt = client.get(f"/bookings/{made.reference}").get_data(as_text=True)
    assert "¥2,000" in receipt and "自治体の負担: ¥1,000" in receipt


def test_extras_are_booked_with_the_seats_in_the_same_transaction(trial, make):
    slot, wifi = trial
    demo_user = _user("company@example.jp")
    others = [_company_user(make) for _ in range(2)]
    unit, day = slot.unit, date(2019, 7, 24)
    with time_machine.travel(BEFORE_2019, tick=False):
        [first] = reservations.book(db.session, unit, demo_user,
                                    [reservations.day_period(unit, day, slot)], 1, slot=slot,
                                    extras={wifi.id: 2})
        with pytest.raises(DomainError) as sold_out:
            reservations.book(db.session, unit, others[0],
                              [reservations.day_period(unit, day, slot)], 1, slot=slot,
                              extras={wifi.id: 1})
        [second] = reservations.book(db.session, unit, others[1],
                                     [reservations.day_period(unit, date(2019, 7, 25), slot)], 1,
                                     slot=slot, extras={wifi.id: 1})
        # Moving the second booking onto a day whose routers are all lent is refused.
        with pytest.raises(DomainError) as moved:
            reservations.change(db.session, second, others[1],
                                 period=reservations.day_period(unit, day, slot))
    assert sold_out.value.code == moved.value.code == "extra_sold_out"
    # The refused booking left nothing: no booking and no extras line.
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Booking)
                             .where(Booking.company_id == others[0].company.id)) == 0
    lines = campaign_extras.booking_extras(db.session, first)
    assert [(x.extra_id, x.quantity) for x in lines] == [(wifi.id, 2)]


# ------------------------------------------------------------------------------- a real race

RACERS = 12


@pytest.fixture
def app_config(backend):
    # One connection per racer (the race test below), so that each one reaches the database.
    return {"SQLALCHEMY_ENGINE_OPTIONS": {"pool_size": RACERS + 2, "max_overflow": 5,
                                          "pool_timeout": 60}}


@pytest.mark.xdist_group("many_connections")  # see pyproject: never two at once
def test_racing_bookings_on_two_units_never_lend_more_extras_than_exist(app, make):
    """The units' row locks do not serialise bookings of different units; the extras' own
    lock must. Twelve racers on two units want 1 of 3 routers each."""
    import threading
    from collections import Counter

    from booking.models import BookingExtra, Unit

    city = make.organisation(OrgKind.MUNICIPALITY)
    space = make.space(city)
    units = [make.unit(space, capacity=20), make.unit(space, capacity=20)]
    day = future_day(7)
    campaign = make.campaign(city, starts_on=day, ends_on=day)
    slots = [make.slot(campaign, u, seats=20, daily_start_min=0, daily_end_min=1440) for u in units]
    extra = CampaignExtra(campaign_id=campaign.id, name="ポケットWi-Fi", quantity=3)
    db.session.add(extra)
    db.session.commit()
    users = [_company_user(make).id for _ in range(RACERS)]
    ids = [(u.id, s.id) for u, s in zip(units, slots, strict=True)]
    extra_id = extra.id
    barrier = threading.Barrier(RACERS)
    results: list[str] = []

    def racer(n: int) -> None:
        with app.app_context():
            try:
                unit_id, slot_id = ids[n % 2]
                unit, slot = db.session.get(Unit, unit_id), db.session.get(CampaignSlot, slot_id)
                user = db.session.get(User, users[n])
                period = reservations.day_period(unit, day, slot)
                db.session.commit()
                barrier.wait(timeout=60)
                reservations.book(db.session, unit, user, [period], 1, slot=slot,
                                  extras={extra_id: 1})
                outcome = "booked"
            except DomainError as error:
                outcome = error.code
            except Exception as error:  # anything else fails the test
                outcome = f"error: {type(error).__name__}: {error}"
            finally:
                db.session.remove()
        results.append(outcome)

    threads = [threading.Thread(target=racer, args=(n,)) for n in range(RACERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a racer hung"
    outcomes = Counter(results)
    assert outcomes["booked"] == 3, outcomes
    assert set(outcomes) <= {"booked", "extra_sold_out", "busy"}, outcomes
    db.session.expire_all()
    lent = db.session.scalar(sa.select(sa.func.coalesce(sa.func.sum(BookingExtra.quantity), 0)))
    assert lent == 3
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Booking)) == 3


def test_municipality_deletes_an_unused_slot_but_not_one_with_bookings(seeded, make, client, login):
    used = _slot("telework-days-2019-yoshikawa")
    with time_machine.travel(BEFORE_2019, tick=False):
        _book(_user("company@example.jp"), used, date(2019, 7, 23), 1)
    spare = make.slot(used.campaign, used.unit, start_date=date(2019, 8, 1),
                      end_date=date(2019, 8, 2))
    campaign_id, used_id, spare_id = used.campaign_id, used.id, spare.id
    login(_user("city@example.jp"), demo.DEMO_PASSWORD)

    # Refused on the campaign's page, with the reason at its top (an error answer: the
    # request's work is rolled back).
    refused = client.post(f"/municipality/campaigns/{campaign_id}/slots/{used_id}/delete")
    assert refused.status_code == 409
    assert db.session.get(CampaignSlot, used_id) is not None
    assert ('class="form-errors" role="alert"><p>この枠には予約が1件あり、それに影響するため'
            '変更できません。' in refused.get_data(as_text=True))

    done = client.post(f"/municipality/campaigns/{campaign_id}/slots/{spare_id}/delete",
                       follow_redirects=True)
    assert done.status_code == 200 and "提供枠を削除しました。" in done.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(CampaignSlot, spare_id) is None


# ------------------------------------------------------------------------------- days touched


def test_seats_per_day_rule_counts_a_booking_ending_at_midnight_on_its_own_day_only(app, make):
    """A booking [start, end) touches the Tokyo days availability.tokyo_days says: one that
    ends exactly at midnight holds nothing of the next day, so it does not count against
    the company's seats of that day (it did: the rule counted its end date)."""
    city = make.organisation(OrgKind.MUNICIPALITY)
    unit = make.unit(make.space(city, hours=(range(7), 0, 1440)), capacity=20)
    day, next_day = date(2027, 7, 23), date(2027, 7, 24)
    slot = make.slot(make.campaign(city), unit, daily_start_min=0, daily_end_min=1440,
                     seats=20, max_seats_per_company_per_day=4)

    def company_with(evening_end: int):
        company = make.company()
        make.booking(unit, at(day, 18 * 60), at(day, evening_end), 2, company=company,
                     campaign_slot_id=slot.id)
        make.booking(unit, at(next_day, 540), at(next_day, 600), 2, company=company,
                     campaign_slot_id=slot.id)
        return company

    # The evening ends at 00:00: 2 seats on each day, so 2 more fit across midnight.
    at_midnight = company_with(1440)
    campaign_rules.check_rules(db.session, slot, at_midnight, at(day, 23 * 60), at(next_day, 600), 2)
    with pytest.raises(DomainError) as refused:  # its own day: 2 + 3 > 4
        campaign_rules.check_rules(db.session, slot, at_midnight, at(day, 23 * 60),
                              at(next_day, 600), 3)
    assert refused.value.code == "campaign_seats_per_day"
    # One minute later and it holds seats of the next day too: 2 + 2 + 2 > 4.
    past_midnight = company_with(1441)
    with pytest.raises(DomainError) as refused:
        campaign_rules.check_rules(db.session, slot, past_midnight, at(day, 23 * 60),
                              at(next_day, 600), 2)
    assert refused.value.code == "campaign_seats_per_day"
