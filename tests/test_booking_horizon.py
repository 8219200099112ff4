"""No unit is booked further ahead than its horizon, and no request names a date outside
the range the service works with (issue 17, finding 11: bookings were accepted up to
9999-12-30; 9999-12-31 and 0001-01-01 overflowed into 500s).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from booking import clock
from booking.extensions import db
from booking.models import Booking
from tests import worlds
from tests.worlds import future_day


@pytest.fixture
def stay(make):
    return worlds.world(make, token=True)


def _post(client, w, body):
    return client.post("/api/v1/bookings", json=body, headers=w["headers"])


def _bookings() -> list[Booking]:
    db.session.commit()
    return list(db.session.scalars(sa.select(Booking).order_by(Booking.starts_at)))


def test_a_booking_may_start_at_most_max_days_ahead(client, stay):
    desks = stay["desks"]
    assert desks.max_days_ahead == 365  # the default
    last = clock.today() + timedelta(days=365)
    ok = _post(client, stay, {"unit_id": desks.id, "date": last.isoformat()})
    assert ok.status_code == 201, ok.json
    too_far = _post(client, stay, {"unit_id": desks.id,
                                   "date": (last + timedelta(days=1)).isoformat()})
    assert too_far.status_code == 422, too_far.json
    assert too_far.json["code"] == "too_far_ahead"
    assert too_far.json["max_days_ahead"] == 365 and too_far.json["latest"] == last.isoformat()
    # The unit's own setting.
    desks.max_days_ahead = 30
    db.session.commit()
    res = _post(client, stay, {"unit_id": desks.id,
                               "date": (clock.today() + timedelta(days=31)).isoformat()})
    assert res.status_code == 422 and res.json["code"] == "too_far_ahead"
    # A change is held to it too.
    ref = _post(client, stay, {"unit_id": desks.id, "date": future_day().isoformat()}).json[
        "reference"]
    res = client.patch(f"/api/v1/bookings/{ref}", headers=stay["headers"],
                       json={"date": (clock.today() + timedelta(days=40)).isoformat()})
    assert res.status_code == 422 and res.json["code"] == "too_far_ahead"
    assert len(_bookings()) == 2


@pytest.mark.parametrize("day", ["9999-12-30", "9999-12-31", "0001-01-01", "1999-12-31"])
def test_dates_outside_the_supported_range_are_a_field_error(client, stay, day):
    res = _post(client, stay, {"unit_id": stay["desks"].id, "date": day})
    assert res.status_code == 422 and "date" in res.json["errors"], res.json
    res = _post(client, stay, {"unit_id": stay["desks"].id, "start": f"{day}T09:00:00+09:00",
                               "end": f"{day}T18:00:00+09:00"})
    assert res.status_code == 422 and "start" in res.json["errors"], res.json
    assert _bookings() == []


def test_the_unit_form_sets_the_horizon(client, make, stay, login):
    owner = make.user(organisation=stay["org"], role="owner")
    login(owner)
    unit = stay["desks"]
    page = client.get(f"/operator/units/{unit.id}/edit")
    assert page.status_code == 200 and 'name="max_days_ahead"' in page.get_data(as_text=True)
    data = {"name": unit.name, "kind": "desk", "capacity": "10", "fits_people": "1",
            "price_amount": "1000", "price_per": "day", "min_length": "1", "max_length": "30",
            "lead_time_hours": "0", "cancel_deadline_hours": "24", "checkin": "15:00",
            "checkout": "10:00", "max_days_ahead": "90"}
    res = client.post(f"/operator/units/{unit.id}/edit", data=data)
    assert res.status_code == 302, res.get_data(as_text=True)
    db.session.refresh(unit)
    assert unit.max_days_ahead == 90
    res = client.post(f"/operator/units/{unit.id}/edit", data={**data, "max_days_ahead": "5000"})
    assert res.status_code == 422
    db.session.refresh(unit)
    assert unit.max_days_ahead == 90
