"""History is history: a campaign slot whose days are past (CampaignSlot.ended) is shown as
what was offered — its dates and 「終了」 — never as bookable; one partly past is bookable
from its first remaining day; the booking page opened for an ended slot says so once,
and the API names the same refusal.
"""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
import sqlalchemy as sa
import time_machine

from booking import clock
from booking.extensions import db
from booking.formatting import local_date
from booking.models import Booking, CampaignSlot, OrgKind
from booking.services import booking_requests, tokens
from booking.services.availability import at
from tests import worlds

BOOK_ACTION = "この枠で予約する"


@pytest.fixture
def world(make):
    w = worlds.world(make, capacity=10, hours=(range(7), 540, 1080))
    secret, _ = tokens.issue(db.session, w["booker"], 24 * 30)
    db.session.commit()
    city = make.organisation(OrgKind.MUNICIPALITY, name="吉川市")
    past = make.campaign(city, slug="telework-days-2019-test", name="テレワーク・デイズ2019",
                         starts_on=date(2019, 7, 22), ends_on=date(2019, 9, 6))
    old = make.slot(past, w["desks"], start_date=date(2019, 7, 23), end_date=date(2019, 7, 26),
                    seats=20, price_amount=0)
    today = clock.today()
    running = make.campaign(city, slug="running-test", name="開催中のキャンペーン",
                            starts_on=today - timedelta(days=10),
                            ends_on=today + timedelta(days=20))
    partly = make.slot(running, w["desks"], start_date=today - timedelta(days=5),
                       end_date=today + timedelta(days=5), seats=4, price_amount=0)
    return dict(w, headers={"Authorization": f"Bearer {secret}"}, past=past, old=old,
                running=running, partly=partly)


def rows(page: str) -> list[str]:
    return re.findall(r"<tr[ >].*?</tr>", page, flags=re.S)[1:]  # after the header row


def test_the_rule_in_python_and_in_sql(world):
    today = clock.today()
    old, partly = world["old"], world["partly"]
    assert old.ended(today) and old.bookable_from(today) is None
    assert not partly.ended(today) and partly.bookable_from(today) == today
    assert not partly.ended(partly.end_date) and partly.ended(partly.end_date + timedelta(days=1))
    assert world["past"].ended(today) and not world["running"].ended(today)
    current = db.session.scalars(sa.select(CampaignSlot.id).where(~CampaignSlot.ended(today)))
    assert list(current) == [partly.id]


def test_a_2019_campaign_page_shows_what_was_offered_with_no_book_action(client, world):
    page = client.get("/campaigns/telework-days-2019-test").get_data(as_text=True)
    assert BOOK_ACTION not in page and "/bookings/new" not in page
    assert "このキャンペーンは終了しました" in page
    [row] = rows(page)
    assert "終了" in row and "2019" in row and "20席" in row
    assert "このキャンペーンの空き枠を探す" not in page  # no search of the past
    listing = client.get("/campaigns/").get_data(as_text=True)
    card = listing[listing.index("テレワーク・デイズ2019"):]
    assert "終了" in card[:card.index("</li>")]


def test_a_slot_partly_past_is_bookable_from_today(client, world):
    today, partly = clock.today(), world["partly"]
    page = client.get("/campaigns/running-test").get_data(as_text=True)
    assert "このキャンペーンは終了しました" not in page
    [row] = rows(page)
    assert BOOK_ACTION in row and "予約できます" in row
    link = re.search(r'href="(/bookings/new\?[^"]+)"', row).group(1).replace("&amp;", "&")
    assert f"slot={partly.id}" in link and f"date={today.isoformat()}" in link
    assert f"date={partly.start_date.isoformat()}" not in link


def test_the_booking_form_for_an_ended_slot_says_it_has_ended(client, world, login):
    login(world["booker"])
    unit, old = world["desks"], world["old"]
    res = client.get(f"/bookings/new?unit_id={unit.id}&slot={old.id}&date=2019-07-23")
    page = res.get_data(as_text=True)
    assert res.status_code == 410
    assert page.count("この枠の提供は終了しました") >= 1
    assert "予約を確定する" not in page and 'name="first_date"' not in page
    assert "2019" in page and "/campaigns/telework-days-2019-test" in page
    # A form sent to it anyway books nothing and says the same.
    sent = client.post(f"/bookings/new?unit_id={unit.id}&slot={old.id}",
                       data={"first_date": "2019-07-23", "seats": "1"})
    assert sent.status_code == 410 and "この枠の提供は終了しました" in sent.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Booking)) == 0


def test_the_api_names_an_ended_campaign(client, world):
    res = client.post("/api/v1/bookings", headers=world["headers"], json={
        "unit_id": world["desks"].id, "date": "2019-07-23", "campaign": "telework-days-2019-test"})
    assert res.status_code == 422 and res.json["code"] == "campaign_closed"
    assert res.json["detail"] == "このキャンペーン枠の提供は終了しました。"
    # A running campaign asked for a day it does not offer: the plain wording.
    far = clock.today() + timedelta(days=15)
    res = client.post("/api/v1/bookings", headers=world["headers"], json={
        "unit_id": world["desks"].id, "date": far.isoformat(), "campaign": "running-test"})
    assert res.status_code == 422
    assert res.json["detail"] == "このキャンペーン枠はその日時に提供されていません。"


def test_an_ended_slot_is_no_offer_on_the_booking_page(world):
    unit = booking_requests.bookable_unit(db.session, world["desks"].id)
    offers = booking_requests.offers(db.session, unit, world["booker"])
    assert world["old"].id not in [o.id for o in offers]


def test_the_day_a_slot_ends_it_is_still_offered_and_the_next_day_it_is_history(
        client, world, login):
    partly = world["partly"]
    last = partly.end_date
    with time_machine.travel(at(last, 12 * 60), tick=True):
        page = client.get("/campaigns/running-test").get_data(as_text=True)
        assert BOOK_ACTION in page
    with time_machine.travel(at(last + timedelta(days=1), 9 * 60), tick=True):
        page = client.get("/campaigns/running-test").get_data(as_text=True)
        assert BOOK_ACTION not in page and "終了" in rows(page)[0]
        login(world["booker"])
        res = client.get(f"/bookings/new?unit_id={world['desks'].id}&slot={partly.id}")
        assert res.status_code == 410


def _section(page: str, heading: str) -> str:
    """The list under an h2 of the space page ("" when the page has no such heading)."""
    if f"<h2>{heading}</h2>" not in page:
        return ""
    rest = page[page.index(f"<h2>{heading}</h2>"):]
    return rest[:rest.index("</ul>")]


def test_the_space_page_and_the_api_end_a_slot_on_the_same_day(client, world):
    """CampaignSlot.ended is the one rule: on its last day the slot is still a current
    offer of the space page and the API; the next day both call it history."""
    space, partly = world["space"], world["partly"]
    last = partly.end_date
    for day, ended in ((last, False), (last + timedelta(days=1), True)):
        with time_machine.travel(at(day, 12 * 60), tick=True):
            api = client.get(f"/api/v1/spaces/{space.id}").json
            named = [(c["slug"], c["start_date"]) for c in api["campaigns"]]
            assert (("running-test", partly.start_date.isoformat()) in named) is not ended
            assert all(c["slug"] != "telework-days-2019-test" for c in api["campaigns"])
            page = client.get(f"/spaces/{space.slug}").get_data(as_text=True)
            current, past = _section(page, "参加しているキャンペーン"), _section(page, "過去のキャンペーン")
            assert "テレワーク・デイズ2019" in past and "テレワーク・デイズ2019" not in current
            assert ("開催中のキャンペーン" in past) is ended
            assert ("開催中のキャンペーン" in current) is not ended


def test_a_members_only_unit_names_its_next_slot_not_an_ended_one(client, world, make):
    members = make.unit(world["space"], name="会員席", members_only=True)
    make.slot(world["past"], members, start_date=date(2019, 7, 23),
              end_date=date(2019, 7, 26), seats=5, price_amount=0)
    first = (clock.today() + timedelta(days=70)).replace(day=1)  # a month not shown first
    later = make.campaign(world["past"].organisation, slug="later-test", name="来期のキャンペーン",
                          starts_on=first, ends_on=first + timedelta(days=5))
    make.slot(later, members, start_date=first + timedelta(days=1),
              end_date=first + timedelta(days=3), seats=5, price_amount=0)
    db.session.commit()
    page = client.get(f"/spaces/{world['space'].slug}").get_data(as_text=True)
    said = page[page.index("会員専用です。"):]
    said = said[:said.index("</p>")]
    assert "来期のキャンペーン" in said and "テレワーク・デイズ2019" not in said
    assert local_date(first + timedelta(days=1), "ja") in said
