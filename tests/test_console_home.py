"""The operator console's home (issue 19): beside the consents, today's arrivals per
space (with check-in) and the no-shows to mark (来場なし), for the operator's own spaces
only; empty states in words."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
import time_machine

from booking.extensions import db
from booking.models import Booking, BookingStatus, OrgKind, PricePer, UnitKind
from booking.services import console_home
from booking.services.availability import at
from tests import worlds
from tests.edge import reservations as r
from tests.worlds import future_day


def clock_at(day, minutes: int):
    return time_machine.travel(at(day, minutes), tick=False)


@pytest.fixture
def w(make):
    """Desks released after 30 minutes, a room without a rule; another operator's space;
    bookings on `day` made the day before."""
    out = worlds.world(make, owner=True, capacity=10)
    out["desks"].no_show_release_minutes = 30
    out["room"] = make.unit(out["space"], name="会議室", kind=UnitKind.MEETING_ROOM, capacity=1,
                            fits_people=6, price_amount=1500, price_per=PricePer.HOUR,
                            max_length=8)
    other = make.organisation(OrgKind.OPERATOR, name="よその運営")
    out["other_owner"] = make.user("other-op@example.jp", organisation=other)
    out["other_desks"] = make.unit(make.space(other, name="よそのスペース"), capacity=5)
    out["day"] = day = future_day(3)
    db.session.commit()
    with clock_at(day - timedelta(days=1), 12 * 60):
        book = r.book
        [out["desk"]] = book(db.session, out["desks"], out["booker"],
                             [r.day_period(out["desks"], day)], 2, note="窓際の席を希望")
        [out["room_booking"]] = book(db.session, out["room"], out["booker"],
                                     [r.hours_period(day, 9 * 60, 11 * 60)], 1)
        [out["later"]] = book(db.session, out["room"], out["booker"],
                              [r.hours_period(day, 14 * 60, 15 * 60)], 1)
        [out["elsewhere"]] = book(db.session, out["other_desks"], out["booker"],
                                  [r.day_period(out["other_desks"], day)], 1)
    return out


def test_the_service_lists_own_arrivals_and_due_no_shows(w):
    with clock_at(w["day"], 9 * 60 + 45):
        home = console_home.today_for(db.session, w["owner"])
        [group] = home.arrivals
        assert group.space.id == w["space"].id and group.seats == 4
        assert [b.id for b in group.bookings] == [w["desk"].id, w["room_booking"].id,
                                                  w["later"].id]
        # The desk (rule: 30 minutes) is due; the room (no rule: an hour) not yet.
        assert [b.id for b in home.no_shows] == [w["desk"].id]
        assert home.actions[w["desk"].id].check_in and home.actions[w["desk"].id].no_show
    with clock_at(w["day"], 10 * 60):
        home = console_home.today_for(db.session, w["owner"])
        assert [b.id for b in home.no_shows] == [w["desk"].id, w["room_booking"].id]
    other = console_home.today_for(db.session, w["other_owner"])
    assert [b.id for g in other.arrivals for b in g.bookings] == []  # another day now
    with clock_at(w["day"], 9 * 60):
        other = console_home.today_for(db.session, w["other_owner"])
        assert [b.id for g in other.arrivals for b in g.bookings] == [w["elsewhere"].id]


def test_the_page_lists_them_and_checks_in_from_home(w, client, login):
    with clock_at(w["day"], 9 * 60 + 45):
        login(w["owner"])
        page = client.get("/operator/").get_data(as_text=True)
        assert "今日の来場予定" in page and "来場なしの確認" in page
        for booking in (w["desk"], w["room_booking"], w["later"]):
            assert booking.reference in page
        assert w["elsewhere"].reference not in page and "よそのスペース" not in page
        assert "窓際の席を希望" in page and "デモ商事" in page
        assert f'/operator/bookings/{w["desk"].id}/no-show' in page
        response = client.post(f"/operator/bookings/{w['desk'].id}/check-in",
                               data={"back": "home"})
        assert response.status_code == 302 and response.location.endswith("/operator/")
        db.session.expire_all()
        assert db.session.get(Booking, w["desk"].id).status == BookingStatus.CHECKED_IN
        page = client.get("/operator/").get_data(as_text=True)
        assert "確認が必要な未チェックインの予約はありません。" in page
        # From the day list, the button goes back to the day list as before.
        response = client.post(f"/operator/bookings/{w['room_booking'].id}/check-in")
        assert f"/operator/spaces/{w['space'].id}/day" in response.location


def test_other_operator_and_empty_states(w, client, login):
    with clock_at(w["day"], 9 * 60):
        login(w["other_owner"])
        page = client.get("/operator/").get_data(as_text=True)
        assert w["elsewhere"].reference in page and w["desk"].reference not in page
    with clock_at(w["day"] + timedelta(days=1), 9 * 60):
        login(w["other_owner"])
        page = client.get("/operator/").get_data(as_text=True)
        assert "今日の来場予定はありません。" in page
        assert "確認が必要な未チェックインの予約はありません。" in page
        assert w["elsewhere"].reference not in page


def test_english(w, client, login, make):
    staff = make.user("staff-en@example.jp", organisation=w["org"], role="staff", locale="en")
    with clock_at(w["day"], 10 * 60 + 5):
        login(staff)
        page = client.get("/operator/?lang=en").get_data(as_text=True)
    assert "Today&#39;s arrivals" in page or "Today's arrivals" in page
    assert "No-shows to mark" in page and w["desk"].reference in page
    assert db.session.scalar(sa.select(sa.func.count(Booking.id))) == 4
