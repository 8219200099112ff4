"""Issue 19, a space's member list (Koto's case): the operator adds a person by e-mail or
that person's whole company; members book the members-only unit directly (the booking
form, its free time, the space page and search say so), everyone else is told
「この区画は会員専用です。」 and still books through a campaign slot. Staff and owners of
the space's organisation edit the list; another operator cannot (it does not exist for
them). Both databases."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from booking import clock
from booking.extensions import db
from booking.models import Booking, OrgKind, SpaceMember
from booking.services import search, space_members
from booking.services.availability import at
from booking.services.search import SearchQuery


def _weekday(days: int = 10) -> date:
    day = clock.today() + timedelta(days=days)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


@pytest.fixture
def w(make):
    city = make.organisation(OrgKind.MUNICIPALITY, name="駒ヶ根市")
    space = make.space(city, slug="koto", name="Koto", prefecture_code=20, city="駒ヶ根市",
                       address="駒ヶ根市中央", lat=35.7287, lon=137.9337)
    desk = make.unit(space, name="会員デスク", members_only=True, price_amount=0, capacity=5)
    member_co = make.company(name="大手町コンサルティング")
    other_co = make.company(name="部外者商事")
    personal_co = make.company(name="港デジタル")
    return {
        "city": city, "space": space, "desk": desk,
        "clerk": make.user("clerk@komagane.example.jp", organisation=city),
        "staff": make.user("desk@komagane.example.jp", organisation=city, role="staff"),
        "member": make.user("hayashi@otemachi.example.jp", organisation=member_co),
        "colleague": make.user("kondo@otemachi.example.jp", organisation=member_co, role="staff"),
        "person": make.user("ishikawa@minato.example.jp", organisation=personal_co),
        "person_colleague": make.user("boss@minato.example.jp", organisation=personal_co),
        "outsider": make.user("x@outsider.example.jp", organisation=other_co),
        "member_co": member_co,
        "other_operator": make.user("op@elsewhere.example.jp",
                                    organisation=make.organisation(OrgKind.OPERATOR)),
    }


def _post_booking(client, unit, day: date, slot=None):
    url = f"/bookings/new?unit_id={unit.id}" + (f"&slot={slot.id}" if slot else "")
    page = client.get(url)
    assert page.status_code == 200
    token = re.search(r'name="submission" type="hidden" value="([^"]+)"',
                      page.get_data(as_text=True)).group(1)
    return client.post(url, data={"first_date": day.isoformat(), "seats": "1",
                                  "submission": token})


def _logout(client) -> None:
    client.post("/account/logout")


def _add(client, w, email: str, whole: bool = False):
    data = {"email": email, "note": "会員番号 12"}
    if whole:
        data["whole_company"] = "y"
    return client.post(f"/operator/spaces/{w['space'].id}/members", data=data)


def test_operator_keeps_the_list_and_members_book_directly(w, client, login):
    day = _weekday()
    # Before: nobody is a member.
    login(w["member"])
    refused = _post_booking(client, w["desk"], day)
    assert refused.status_code == 422 and "この区画は会員専用です。" in refused.get_data(as_text=True)
    _logout(client)

    # The front desk (staff) adds a whole company through one of its people, and one person.
    login(w["staff"])
    page = client.get(f"/operator/spaces/{w['space'].id}/members").get_data(as_text=True)
    assert "会員はまだいません。" in page
    assert _add(client, w, "Hayashi@Otemachi.example.jp", whole=True).status_code == 302
    assert _add(client, w, "ishikawa@minato.example.jp").status_code == 302
    # Refused beside the field: twice, a company of nobody registered, a bad address.
    again = _add(client, w, "kondo@otemachi.example.jp", whole=True)
    assert again.status_code == 409 and "既に会員に登録されています。" in again.get_data(as_text=True)
    nobody = _add(client, w, "stranger@nowhere.example.jp", whole=True)
    assert nobody.status_code == 422 and "登録済みの会社に所属していません" in nobody.get_data(as_text=True)
    assert _add(client, w, "not-an-address").status_code == 422
    page = client.get(f"/operator/spaces/{w['space'].id}/members").get_data(as_text=True)
    assert "大手町コンサルティング" in page and "ishikawa@minato.example.jp" in page
    assert "会員番号 12" in page
    rows = db.session.scalars(sa.select(SpaceMember)).all()
    assert {(r.company_id, r.email) for r in rows} == {
        (w["member_co"].id, None), (None, "ishikawa@minato.example.jp")}
    _logout(client)

    # Members: the company's people (both) and that one person book directly.
    for user in (w["member"], w["colleague"], w["person"]):
        login(user)
        done = _post_booking(client, w["desk"], day)
        assert done.status_code == 302, re.findall(r"class=\"error[^>]*>([^<]+)", done.get_data(as_text=True))
        _logout(client)
    # The person's colleague is no member: only that person was added.
    for user in (w["person_colleague"], w["outsider"]):
        login(user)
        refused = _post_booking(client, w["desk"], day)
        assert refused.status_code == 422
        assert "この区画は会員専用です。" in refused.get_data(as_text=True)
        _logout(client)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Booking)) == 3

    # Removed from the list: booking directly is refused again.
    login(w["clerk"])
    person_row = db.session.scalar(sa.select(SpaceMember.id).where(SpaceMember.email.is_not(None)))
    assert client.post(f"/operator/spaces/{w['space'].id}/members/remove",
                       data={"member": person_row}).status_code == 302
    _logout(client)
    login(w["person"])
    assert _post_booking(client, w["desk"], day + timedelta(days=7)).status_code == 422


def test_an_unverified_account_with_a_member_address_is_no_member(w, make, client, login):
    db.session.add(SpaceMember(space_id=w["space"].id, email="claimed@example.jp"))
    db.session.commit()
    impostor = make.user("claimed@example.jp", organisation=make.company(), verified=False)
    login(impostor)
    refused = _post_booking(client, w["desk"], _weekday())
    assert refused.status_code == 422 and "この区画は会員専用です。" in refused.get_data(as_text=True)
    assert space_members.spaces_of(db.session, impostor) == frozenset()


def test_non_members_still_book_through_a_campaign_slot(w, make, client, login):
    day = _weekday()
    campaign = make.campaign(w["city"], starts_on=day - timedelta(days=3),
                             ends_on=day + timedelta(days=3))
    slot = make.slot(campaign, w["desk"], seats=3)
    login(w["outsider"])
    assert _post_booking(client, w["desk"], day).status_code == 422
    done = _post_booking(client, w["desk"], day, slot=slot)
    assert done.status_code == 302, done.get_data(as_text=True)[:2000]
    booking = db.session.scalar(sa.select(Booking))
    assert booking.campaign_slot_id == slot.id


def test_members_see_the_unit_bookable_on_the_space_page_and_in_search(w, client, login):
    db.session.add(SpaceMember(space_id=w["space"].id, company_id=w["member_co"].id))
    db.session.commit()
    day = _weekday()
    q = SearchQuery(prefecture="長野県", date=day, seats=1)
    assert search.search(db.session, q).total == 0
    members = space_members.spaces_of(db.session, w["member"])
    assert members == frozenset({w["space"].id})
    found = search.search(db.session, q, members=members)
    assert [r.space.id for r in found.results] == [w["space"].id]
    assert found.results[0].units[0].regular is not None

    month = day.strftime("%Y-%m")
    anonymous = client.get(f"/spaces/koto?month={month}").get_data(as_text=True)
    assert "会員専用です。" in anonymous
    assert f"/bookings/new?unit_id={w['desk'].id}" not in anonymous
    login(w["member"])
    page = client.get(f"/spaces/koto?month={month}").get_data(as_text=True)
    assert "会員専用です。" not in page
    assert f"/bookings/new?unit_id={w['desk'].id}" in page
    # Search as the member (the page asks space_members once).
    listed = client.get(f"/search?near=駒ヶ根&date={day.isoformat()}&seats=1")
    assert listed.status_code == 200 and "Koto" in listed.get_data(as_text=True)
    form = client.get(f"/bookings/new?unit_id={w['desk'].id}&date={day.isoformat()}")
    assert form.status_code == 200 and "会員専用" not in form.get_data(as_text=True)
    # The booking the member makes holds the day.
    assert _post_booking(client, w["desk"], day).status_code == 302
    booking = db.session.scalar(sa.select(Booking))
    assert booking.starts_at == at(day, 540)


def test_another_operator_cannot_see_or_edit_the_list(w, client, login):
    db.session.add(SpaceMember(space_id=w["space"].id, email="keep@example.jp"))
    db.session.commit()
    row = db.session.scalar(sa.select(SpaceMember.id))
    for user in (w["other_operator"], w["member"]):
        login(user)
        base = f"/operator/spaces/{w['space'].id}/members"
        assert client.get(base).status_code == 404
        assert _add(client, w, "sneaky@example.jp").status_code == 404
        assert client.post(base + "/remove", data={"member": row}).status_code == 404
        _logout(client)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(SpaceMember)) == 1


def test_the_search_api_finds_members_only_units_for_a_members_token(w, client):
    """The API searches as the page does: with a member's bearer token the members-only
    desk is found; without one it is not; a token that is not valid is refused (401)."""
    from booking.services import tokens

    db.session.add(SpaceMember(space_id=w["space"].id, company_id=w["member_co"].id))
    secret, _ = tokens.issue(db.session, w["member"], 24)
    db.session.commit()
    url = f"/api/v1/spaces?prefecture=長野県&date={_weekday().isoformat()}"
    anonymous = client.get(url)
    assert anonymous.status_code == 200 and anonymous.get_json()["total"] == 0
    member = client.get(url, headers={"Authorization": f"Bearer {secret}"})
    assert member.status_code == 200
    assert [r["id"] for r in member.get_json()["results"]] == [w["space"].id]
    bad = client.get(url, headers={"Authorization": "Bearer not-a-token"})
    assert bad.status_code == 401 and bad.mimetype == "application/problem+json"
