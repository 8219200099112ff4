"""The cancellation policy before commitment and after the deadline: the booking form
states the deadline and what follows it; a booking already past it (same-day or late) is
made only once the user ticked that they know; after the deadline the booking, change and
cancel pages give the reason and the operator's contact instead of a button that would be
refused. And the migration that gave spaces their contact."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import sqlalchemy as sa
import time_machine
from flask_migrate import downgrade, upgrade

from booking.extensions import db
from booking.formatting import local_date
from booking.models import Booking, BookingStatus, Space
from booking.services import cancellation
from booking.services.errors import DomainError
from tests import worlds
from tests.conftest import make_app
from tests.edge import reservations as r
from tests.worlds import future_day

LATE_WARNING = "このご予約は取消期限を過ぎているため、予約後のキャンセルはできません。"
PAST_DEADLINE = "を過ぎたため、このサイトからはキャンセル・変更できません。"


def weekday(days: int = 10):
    day = future_day(days)
    while day.weekday() != 2:
        day += timedelta(days=1)
    return day


@pytest.fixture
def world(make, login):
    w = worlds.world(make, price=1100)
    login(w["booker"])
    return w


def _late(unit) -> None:
    """Every booking of the coming weeks is past this unit's deadline already (the same as
    a same-day booking of a unit with a 24-hour deadline, at any test clock)."""
    unit.cancel_deadline_hours = 24 * 60
    db.session.commit()


def _token(page: str) -> str:
    return re.search(r'name="submission" type="hidden" value="([^"]+)"', page).group(1)


def count() -> int:
    db.session.expire_all()
    return db.session.scalar(sa.select(sa.func.count()).select_from(Booking))


# --------------------------------------------------------------------------- the form


def test_the_form_states_the_deadline_and_what_follows(client, world):
    unit, day = world["desks"], weekday()
    page = client.get(f"/bookings/new?unit_id={unit.id}&date={day}").get_data(as_text=True)
    assert "開始の24時間前まで" in page and "期限後はこのサイトからキャンセル・変更できません" in page
    # The chosen day's own deadline: the day before, at the opening time (09:00).
    deadline = local_date(day - timedelta(days=1), "ja")
    assert f"キャンセル・変更の期限: {deadline} 09:00" in page
    assert LATE_WARNING not in page and 'name="accept_late"' not in page


def test_a_late_booking_is_warned_and_made_only_once_the_box_is_ticked(client, world):
    unit, day = world["desks"], weekday()
    _late(unit)
    url = f"/bookings/new?unit_id={unit.id}"
    page = client.get(f"{url}&date={day}").get_data(as_text=True)
    # The warning, and the box beside the button, before anything is booked.
    assert LATE_WARNING in page and 'name="accept_late"' in page
    assert page.index(LATE_WARNING) < page.index("予約を確定する")
    data = {"first_date": day.isoformat(), "seats": "1", "submission": _token(page)}
    refused = client.post(url, data=data)
    assert refused.status_code == 422 and count() == 0
    shown = refused.get_data(as_text=True)
    assert 'id="accept_late-error"' in shown and "確認のチェックを入れてから" in shown
    booked = client.post(url, data=dict(data, accept_late="y"))
    assert booked.status_code == 302 and count() == 1


def test_a_booking_before_its_deadline_needs_no_box(client, world):
    unit, day = world["desks"], weekday()
    url = f"/bookings/new?unit_id={unit.id}"
    page = client.get(url).get_data(as_text=True)
    res = client.post(url, data={"first_date": day.isoformat(), "seats": "1",
                                 "submission": _token(page)})
    assert res.status_code == 302 and count() == 1


def test_the_warning_in_english(client, world):
    unit, day = world["desks"], weekday()
    _late(unit)
    page = client.get(f"/bookings/new?unit_id={unit.id}&date={day}&lang=en").get_data(
        as_text=True)
    assert "past its cancellation deadline already" in page
    assert "I understand that this booking cannot be cancelled once made" in page


# --------------------------------------------------------------------------- after the deadline


def _booked(world) -> Booking:
    unit = world["desks"]
    return r.book(db.session, unit, world["booker"], [r.day_period(unit, weekday())], 1)[0]


def test_after_the_deadline_the_pages_give_the_reason_and_the_contact(client, world):
    space = world["space"]
    space.contact_phone, space.contact_email = "054-123-4567", "info@enishia.example.jp"
    _late(world["desks"])
    booking = _booked(world)
    ref = booking.reference
    page = client.get(f"/bookings/{ref}").get_data(as_text=True)
    assert PAST_DEADLINE in page and "施設へ直接ご連絡ください" in page
    assert 'href="tel:0541234567"' in page and "054-123-4567" in page
    assert 'href="mailto:info@enishia.example.jp"' in page
    assert f"/bookings/{ref}/cancel" not in page and f"/bookings/{ref}/change" not in page
    # The cancel and change pages offer no button that would then be refused.
    cancel_page = client.get(f"/bookings/{ref}/cancel").get_data(as_text=True)
    assert PAST_DEADLINE in cancel_page and "054-123-4567" in cancel_page
    assert "キャンセルを確定する" not in cancel_page
    assert f'action="/bookings/{ref}/cancel"' not in cancel_page
    change_page = client.get(f"/bookings/{ref}/change").get_data(as_text=True)
    assert PAST_DEADLINE in change_page and f'action="/bookings/{ref}/change"' not in change_page
    # And a POST all the same is refused by the service, as before.
    assert client.post(f"/bookings/{ref}/cancel", data={}).status_code == 409
    db.session.expire_all()
    assert db.session.get(Booking, booking.id).status == BookingStatus.CONFIRMED


def test_without_a_contact_the_operator_and_the_address_are_shown(client, world):
    _late(world["desks"])
    ref = _booked(world).reference
    page = client.get(f"/bookings/{ref}").get_data(as_text=True)
    assert PAST_DEADLINE in page
    assert "エニシア静岡" in page and "静岡市葵区御幸町" in page
    assert "tel:" not in page and "mailto:" not in page
    english = client.get(f"/bookings/{ref}?lang=en").get_data(as_text=True)
    assert "can no longer be cancelled or changed on this site" in english


def test_before_the_deadline_the_cancel_button_is_there(client, world):
    ref = _booked(world).reference
    page = client.get(f"/bookings/{ref}").get_data(as_text=True)
    assert f"/bookings/{ref}/cancel" in page and PAST_DEADLINE not in page
    assert "キャンセル・変更はこのページから" in page
    cancel_page = client.get(f"/bookings/{ref}/cancel").get_data(as_text=True)
    assert "キャンセルを確定する" in cancel_page
    assert client.post(f"/bookings/{ref}/cancel", data={}).status_code == 302


def test_the_policy_follows_the_service(world, make):
    """policy_of says "may cancel" exactly when reservations.cancel would let this user."""
    booking = _booked(world)
    policy = cancellation.policy_of(booking, world["booker"])
    assert policy.may_cancel and policy.ongoing and not policy.passed
    assert policy.deadline == booking.starts_at - timedelta(hours=24)
    _late(world["desks"])
    db.session.expire_all()
    late = cancellation.policy_of(db.session.get(Booking, booking.id), world["booker"])
    assert late.passed and late.ongoing and not late.may_cancel
    # The space's operator may still cancel on the customer's behalf.
    owner = make.user(organisation=world["org"], role="owner")
    assert cancellation.policy_of(db.session.get(Booking, booking.id), owner).may_cancel


def test_the_operator_may_cancel_a_checked_in_booking_until_its_end_but_not_move_it(world, make):
    """As the day list offers it (reservations.may_cancel_on_behalf): the operator cancels
    a booking checked in and not over; changes are for confirmed bookings only."""
    booking = _booked(world)
    owner = make.user(organisation=world["org"], role="owner")
    with time_machine.travel(booking.starts_at + timedelta(minutes=5), tick=False):
        r.check_in(db.session, booking, owner)
        booking = db.session.get(Booking, booking.id)
        policy = cancellation.policy_of(booking, owner)
        assert policy.may_cancel and not policy.may_change
        company = cancellation.policy_of(booking, world["booker"])
        assert not company.may_cancel and not company.may_change
        assert r.cancel(db.session, booking, owner).status == BookingStatus.CANCELLED
    db.session.expire_all()
    assert not cancellation.policy_of(db.session.get(Booking, booking.id), owner).may_cancel


def test_the_deadline_instant_is_the_same_for_the_page_and_the_service(world):
    """One deadline rule (cancellation.deadline_of): at the deadline itself both the page's
    policy and reservations.cancel still let the company cancel; a second later neither."""
    booker = world["booker"]
    booking = _booked(world)
    deadline = cancellation.deadline_of(booking.unit, booking.starts_at)
    with time_machine.travel(deadline + timedelta(seconds=1), tick=False):
        assert not cancellation.policy_of(booking, booker).may_cancel
        with pytest.raises(DomainError) as refused:
            r.cancel(db.session, booking, booker)
        assert refused.value.code == "cancel_deadline"
    db.session.expire_all()
    booking = db.session.get(Booking, booking.id)
    with time_machine.travel(deadline, tick=False):
        assert cancellation.policy_of(booking, booker).may_cancel
        assert r.cancel(db.session, booking, booker).status == BookingStatus.CANCELLED


# --------------------------------------------------------------------------- the space's contact


def test_the_operator_edits_the_contact_in_the_space_form(client, make, login):
    w = worlds.world(make, owner=True)
    login(w["owner"])
    space = w["space"]
    url = f"/operator/spaces/{space.id}/edit"
    form = client.get(url).get_data(as_text=True)
    assert 'name="contact_phone"' in form and 'name="contact_email"' in form
    data = {"name": space.name, "kind": space.kind.value, "prefecture_code": "22",
            "city": space.city, "address": space.address, "lat": str(space.lat),
            "lon": str(space.lon), "published": "y"}
    bad = client.post(url, data=dict(data, contact_phone="call me", contact_email="nope"))
    assert bad.status_code == 422
    shown = bad.get_data(as_text=True)
    assert 'id="contact_phone-error"' in shown and 'id="contact_email-error"' in shown
    ok = client.post(url, data=dict(data, contact_phone="054-123-4567",
                                    contact_email="Info@Enishia.example.jp"))
    assert ok.status_code == 302
    db.session.expire_all()
    saved = db.session.get(Space, space.id)
    assert (saved.contact_phone, saved.contact_email) == ("054-123-4567",
                                                         "info@enishia.example.jp")
    # Emptied again (a browser sends the empty fields): optional.
    assert client.post(url, data=dict(data, contact_phone="", contact_email="")).status_code == 302
    db.session.expire_all()
    assert db.session.get(Space, space.id).contact_phone == ""


def test_the_contact_migration_goes_up_and_down(empty_database_url):
    app = make_app(empty_database_url)

    def columns() -> set[str]:
        with db.engine.connect() as conn:
            return {c["name"] for c in sa.inspect(conn).get_columns("spaces")}

    with app.app_context():
        upgrade(revision="5e1f0c9a7d22")
        with db.engine.begin() as conn:  # a space from before: it gets empty contacts
            conn.execute(sa.text(
                "INSERT INTO organisations (kind, name, name_en, address, created_at) "
                "VALUES ('operator', 'O', '', '', CURRENT_TIMESTAMP)"))
            conn.execute(sa.text(
                "INSERT INTO spaces (organisation_id, slug, kind, name, name_en, description,"
                " description_en, prefecture_code, city, address, coordinates_approximate,"
                " nearest_station, access, access_en, amenities, closed_on_holidays,"
                " published, created_at) SELECT id, 'before', 'coworking', 'S', '', '', '',"
                " 22, 'C', 'A', false, '', '', '', '[]', true, true, CURRENT_TIMESTAMP"
                " FROM organisations"))
        assert "contact_phone" not in columns()
        upgrade()
        assert {"contact_phone", "contact_email"} <= columns()
        with db.engine.connect() as conn:
            assert conn.execute(sa.text(
                "SELECT contact_phone, contact_email FROM spaces")).one() == ("", "")
        downgrade(revision="5e1f0c9a7d22")
        assert "contact_phone" not in columns() and "contact_email" not in columns()
        upgrade()
        assert {"contact_phone", "contact_email"} <= columns()
        db.engine.dispose()
