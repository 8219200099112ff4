"""Nobody runs another organisation's spaces: every route of the operator blueprint, tried
by an operator of organisation A on organisation B's spaces, units, bookings, closures,
overrides and photos, answers 403 or 404 and changes nothing.

The table is the application's own url_map, so a route added later is covered without
editing this file; an argument this test does not know fails the test on purpose.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from booking.extensions import db
from booking.models import (
    AuditEntry,
    Booking,
    BookingStatus,
    CapacityOverride,
    Closure,
    OrgKind,
    Photo,
    Space,
    Unit,
)
from booking.services.availability import at
from tests.worlds import future_day

# Routes with no organisation's data behind them.
NOT_ORGANISATION_DATA = {
    "operator.index",  # lists the user's own organisations only (checked separately)
    "operator.leaflet",  # the map library, the same for everyone
}
# Everything a form on the console could send; a missing check would then really act.
FORM = {
    "name": "乗っ取り", "kind": "coworking", "prefecture_code": "22", "city": "静岡市",
    "address": "静岡市葵区", "capacity": "1", "fits_people": "1", "price_amount": "1",
    "price_per": "day", "min_length": "1", "max_length": "2", "reason": "x", "published": "1",
    "closure-units": "", "closure-start": "", "closure-end": "", "override-units": "",
    "override-start": "", "override-end": "", "override-capacity": "0", "alt": "x",
    "closed_on_holidays": "y", "day0-open": "y", "day0-opens": "10:00",
    "day0-closes": "11:00",
}


@pytest.fixture
def world(make):
    day = future_day()
    org_a = make.organisation(OrgKind.OPERATOR, name="A運営")
    org_b = make.organisation(OrgKind.OPERATOR, name="B運営")
    a_owner = make.user(organisation=org_a, role="owner")
    b_owner = make.user(organisation=org_b, role="owner")
    space_a = make.space(org_a, name="Aの施設")
    space_b = make.space(org_b, name="Bの施設秘密")
    unit_a = make.unit(space_a)
    unit_b = make.unit(space_b, name="Bの区画", capacity=5)
    company = make.company(name="B社の客")
    booking_b = make.booking(unit_b, at(day, 540), at(day, 1080), 2, company=company,
                             user_id=b_owner.id)
    closure_b = Closure(unit_id=unit_b.id, start_date=day + timedelta(days=5),
                        end_date=day + timedelta(days=6))
    override_b = CapacityOverride(unit_id=unit_b.id, day=day + timedelta(days=8), capacity=3)
    photo_b = Photo(space_id=space_b.id, filename="0" * 32 + ".jpg")
    db.session.add_all([closure_b, override_b, photo_b])
    db.session.commit()
    return {
        "a": a_owner, "org_a": org_a, "org_b": org_b, "space_a": space_a, "space_b": space_b,
        "unit_a": unit_a, "unit_b": unit_b, "booking_b": booking_b, "closure_b": closure_b,
        "override_b": override_b, "photo_b": photo_b, "day": day,
    }


def _snapshot(w) -> dict:
    db.session.expire_all()
    space = db.session.get(Space, w["space_b"].id)
    unit = db.session.get(Unit, w["unit_b"].id)
    booking = db.session.get(Booking, w["booking_b"].id)
    return {
        "space": (space.name, space.published, space.calendar_secret, space.lat,
                  space.closed_on_holidays, [(h.weekday, h.opens_min, h.closes_min)
                                             for h in space.opening_hours]),
        "units": db.session.scalar(sa.select(sa.func.count(Unit.id)).where(
            Unit.space_id == space.id)),
        "unit": (unit.name, unit.capacity, unit.price_amount),
        "booking": (booking.status, booking.cancel_reason),
        "closures": db.session.scalar(sa.select(sa.func.count(Closure.id))),
        "overrides": db.session.scalars(sa.select(CapacityOverride.capacity)).all(),
        "photos": db.session.scalar(sa.select(sa.func.count(Photo.id))),
        "audit": db.session.scalar(sa.select(sa.func.count(AuditEntry.id)).where(
            AuditEntry.organisation_id == w["org_b"].id)),
    }


def _argument_sets(rule, w) -> list[dict]:
    """B's ids everywhere; and, for routes under a space, A's own space with B's objects
    (a check of the space alone must not let B's closure or photo through)."""
    values = {
        "space_id": w["space_b"].id, "unit_id": w["unit_b"].id, "booking_id": w["booking_b"].id,
        "closure_id": w["closure_b"].id, "override_id": w["override_b"].id,
        "photo_id": w["photo_b"].id, "org_id": w["org_b"].id,
    }
    unknown = set(rule.arguments) - set(values)
    assert not unknown, f"{rule.endpoint}: teach this test the argument(s) {unknown}"
    sets = [{k: values[k] for k in rule.arguments}]
    if "space_id" in rule.arguments and len(rule.arguments) > 1:
        mixed = dict(sets[0], space_id=w["space_a"].id)
        sets.append(mixed)
    return sets


def test_an_operator_cannot_touch_another_organisations_console(app, client, login, world):
    w = world
    login(w["a"])
    before = _snapshot(w)
    day = w["day"].isoformat()
    query = {"day": day, "month": day[:7], "start": day, "end": day}
    form = dict(FORM, **{"closure-units": str(w["unit_b"].id), "closure-start": day,
                         "closure-end": day, "override-units": str(w["unit_b"].id),
                         "override-start": day, "override-end": day})
    rules = [r for r in app.url_map.iter_rules() if r.endpoint.startswith("operator.")]
    tried = set()
    for rule in rules:
        if rule.endpoint in NOT_ORGANISATION_DATA:
            continue
        for args in _argument_sets(rule, w):
            with app.test_request_context():
                from flask import url_for

                url = url_for(rule.endpoint, **args)
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                if method == "GET":
                    response = client.get(url, query_string=query)
                else:
                    response = client.open(url, method=method, data=form)
                assert response.status_code in (403, 404), (
                    f"{method} {url} ({rule.endpoint}) answered {response.status_code}")
                assert "Bの施設秘密".encode() not in response.data
                tried.add(rule.endpoint)
    # The table is not empty by accident: the console's surfaces are all in it.
    for expected in ("operator.space", "operator.space_edit", "operator.space_delete",
                     "operator.hours", "operator.unit_edit", "operator.unit_delete",
                     "operator.month", "operator.day", "operator.export", "operator.cancel",
                     "operator.check_in", "operator.no_show", "operator.closure_add",
                     "operator.closure_delete", "operator.override_add",
                     "operator.override_delete", "operator.photos", "operator.photo_delete",
                     "operator.calendar_new", "operator.calendar_revoke", "operator.space_new",
                     "operator.unit_new", "operator.space_publish"):
        assert expected in tried
    assert _snapshot(w) == before

    # The index lists A's spaces only.
    page = client.get("/operator/").get_data(as_text=True)
    assert "Aの施設" in page and "Bの施設秘密" not in page


def test_the_console_is_for_members_of_supporter_organisations(client, login, make):
    assert client.get("/operator/").status_code == 302  # anonymous: to the log-in page
    company = make.company()
    login(make.user(organisation=company))
    assert client.get("/operator/").status_code == 403


def test_staff_run_bookings_but_neither_delete_spaces_nor_change_prices(client, login, make):
    org = make.organisation(OrgKind.OPERATOR)
    staff = make.user(organisation=org, role="staff")
    space = make.space(org)
    unit = make.unit(space, price_amount=1000, capacity=10)
    login(staff)
    assert client.get(f"/operator/spaces/{space.id}").status_code == 200
    assert client.post(f"/operator/spaces/{space.id}/delete").status_code == 403
    assert client.get(f"/operator/spaces/{space.id}/units/new").status_code == 403
    assert client.post(f"/operator/units/{unit.id}/delete").status_code == 403
    # A price sent anyway is not read: the unit keeps its price, the rest is saved.
    response = client.post(f"/operator/units/{unit.id}/edit", data={
        "name": "改名", "kind": "desk", "capacity": "12", "fits_people": "1",
        "price_amount": "1", "price_per": "hour", "min_length": "1", "max_length": "30",
        "lead_time_hours": "0", "cancel_deadline_hours": "24",
    })
    assert response.status_code == 302
    db.session.expire_all()
    unit = db.session.get(Unit, unit.id)
    assert (unit.name, unit.capacity, unit.price_amount, unit.price_per.value) == (
        "改名", 12, 1000, "day")
    assert db.session.get(Space, space.id) is not None

    # The service refuses a staff price change outright, whatever the view does.
    from booking.services import space_admin
    from booking.services.errors import DomainError

    with pytest.raises(DomainError) as refused:
        space_admin.update_unit(db.session, staff, unit, {"price_amount": 1})
    assert refused.value.code == "owner_only"
    db.session.rollback()


def test_a_booking_of_another_space_is_not_listed_or_cancellable(client, login, make):
    org_a = make.organisation(OrgKind.MUNICIPALITY)
    login(make.user(organisation=org_a, role="staff"))
    other = make.unit(make.space())
    day = future_day(3)
    booking = make.booking(other, at(day, 540), at(day, 600))
    assert client.post(f"/operator/bookings/{booking.id}/cancel",
                       data={"reason": "x"}).status_code == 404
    db.session.expire_all()
    assert db.session.get(Booking, booking.id).status == BookingStatus.CONFIRMED
