"""Whole houses let by the night take only whole stays (issue 17, finding 6).

Before: `{"unit_id": <house>, "dates": [d, d+2]}` made two 00:00–24:00 bookings that held
the house from d to d+3 (four nights' worth of check-ins blocked) and billed two nights;
`start`/`end` spanning three nights from 00:00 billed one; PATCH with `date` turned a stay
into the opening hours of one day.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from booking.extensions import db
from booking.models import Booking, PricePer, UnitKind
from booking.services.availability import at
from booking.services.errors import DomainError
from tests import worlds
from tests.edge import reservations
from tests.worlds import future_day


@pytest.fixture
def stay(make):
    w = worlds.world(make, token=True)
    # A house is open round the clock (check-in 15:00, check-out 10:00 the next day).
    house_space = make.space(w["org"], name="古民家の宿", hours=(range(7), 0, 1440))
    w["house"] = make.unit(house_space, name="古民家", kind=UnitKind.WHOLE_HOUSE, capacity=1,
                           fits_people=4, price_amount=20000, price_per=PricePer.NIGHT)
    return w


def _post(client, w, body):
    return client.post("/api/v1/bookings", json=body, headers=w["headers"])


def _bookings() -> list[Booking]:
    db.session.commit()
    return list(db.session.scalars(sa.select(Booking).order_by(Booking.starts_at)))


def test_a_stay_by_date_and_nights_is_booked_from_check_in_to_check_out(client, stay):
    day = future_day()
    res = _post(client, stay, {"unit_id": stay["house"].id, "date": day.isoformat(),
                               "nights": 2})
    assert res.status_code == 201, res.json
    assert res.json["start"] == at(day, 15 * 60).isoformat()
    assert res.json["end"] == at(day + timedelta(days=2), 10 * 60).isoformat()
    assert res.json["price"]["amount"] == 40000
    # The same stay given as start and end at the unit's times is the same booking shape.
    later = day + timedelta(days=5)
    res = _post(client, stay, {"unit_id": stay["house"].id,
                               "start": at(later, 15 * 60).isoformat(),
                               "end": at(later + timedelta(days=3), 10 * 60).isoformat()})
    assert res.status_code == 201, res.json
    assert res.json["price"]["amount"] == 60000


@pytest.mark.parametrize("shape", ["dates", "midnight_span", "day_hours", "same_day"])
def test_any_other_shape_on_a_night_unit_is_a_422_that_says_so(client, stay, shape):
    day = future_day()
    house = stay["house"].id
    body = {
        # Two 00:00–24:00 "days": four nights' check-ins blocked, two nights billed.
        "dates": {"unit_id": house, "dates": [day.isoformat(),
                                             (day + timedelta(days=2)).isoformat()]},
        # Three nights from midnight to midnight, billed as one (length counted by dates).
        "midnight_span": {"unit_id": house, "start": at(day, 0).isoformat(),
                          "end": at(day + timedelta(days=1), 1439).isoformat()},
        "day_hours": {"unit_id": house, "start": at(day, 9 * 60).isoformat(),
                      "end": at(day, 18 * 60).isoformat()},
        "same_day": {"unit_id": house, "start": at(day, 15 * 60).isoformat(),
                     "end": at(day, 22 * 60).isoformat()},
    }[shape]
    res = _post(client, stay, body)
    assert res.status_code == 422, res.json
    assert res.mimetype == "application/problem+json"
    assert res.json["code"] == "whole_stays"
    assert res.json["checkin"] == "15:00" and res.json["checkout"] == "10:00"
    assert "泊" in res.json["detail"]
    assert _bookings() == []


def test_patch_with_a_date_moves_the_stay_and_keeps_its_nights(client, stay):
    day = future_day()
    made = _post(client, stay, {"unit_id": stay["house"].id, "date": day.isoformat(),
                                "nights": 2})
    assert made.status_code == 201, made.json
    ref = made.json["reference"]
    moved_to = day + timedelta(days=7)
    res = client.patch(f"/api/v1/bookings/{ref}", json={"date": moved_to.isoformat()},
                       headers=stay["headers"])
    assert res.status_code == 200, res.json
    assert res.json["start"] == at(moved_to, 15 * 60).isoformat()
    assert res.json["end"] == at(moved_to + timedelta(days=2), 10 * 60).isoformat()
    assert res.json["price"]["amount"] == 40000
    # Times that are not a stay are refused, and change nothing.
    res = client.patch(f"/api/v1/bookings/{ref}", headers=stay["headers"], json={
        "start": at(moved_to, 0).isoformat(), "end": at(moved_to + timedelta(days=3), 0)
        .isoformat()})
    assert res.status_code == 422 and res.json["code"] == "whole_stays"
    [booking] = _bookings()
    assert booking.starts_at == at(moved_to, 15 * 60)


def test_the_service_refuses_a_non_stay_whatever_builds_it(app, stay):
    """The rule lives in reservations (the HTML form and the API both call it)."""
    house, user = stay["house"], stay["booker"]
    day = future_day()
    with pytest.raises(DomainError) as err:
        reservations.book(db.session, house, user, [reservations.day_period(house, day)], 1)
    assert err.value.code == "whole_stays"
    [made] = reservations.book(db.session, house, user,
                               [reservations.nights_period(house, day, 1)], 1)
    with pytest.raises(DomainError) as err:
        reservations.change(db.session, made, user,
                            period=(at(day, 15 * 60), at(day + timedelta(days=1), 11 * 60)))
    assert err.value.code == "whole_stays"


def test_the_html_form_books_a_stay_and_desks_still_book_by_day(client, stay, login):
    login(stay["booker"])
    day = future_day()
    res = client.post(f"/bookings/new?unit_id={stay['house'].id}",
                      data={"first_date": day.isoformat(), "nights": "3", "seats": "1"})
    assert res.status_code == 302, res.get_data(as_text=True)
    [booking] = _bookings()
    assert (booking.starts_at, booking.ends_at) == reservations.nights_period(
        stay["house"], day, 3)
    assert booking.price_amount == 60000
