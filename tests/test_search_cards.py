"""Search results as cards (issue 18): a date-only search offers hourly rooms with free
hours, the cards' book links carry the search into the booking form, a past date is shown
as history, prices say 税込, and a space without a photo shows the placeholder."""

from __future__ import annotations

import html
import re
import secrets
from datetime import UTC, date, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import sqlalchemy as sa
import time_machine
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from booking import clock
from booking.extensions import db
from booking.models import Booking, CapacityOverride, Photo, PricePer, Space, UnitKind
from booking.services import availability
from booking.services.availability import at
from booking.services.search import SearchQuery, free_stretches, search
from tests import worlds
from tests.worlds import future_day

LAT, LON = 35.0, 138.0
H = 60


def _room_space(make, *, min_length: int = 1, price: int = 1500):
    """A space open 9:00–18:00 every day with one meeting room let by the hour."""
    space = make.space(lat=LAT, lon=LON, name="会議室のある施設")
    room = make.unit(space, name="会議室A", kind=UnitKind.MEETING_ROOM, capacity=1,
                     fits_people=6, price_amount=price, price_per=PricePer.HOUR,
                     min_length=min_length, max_length=8)
    return space, room


def _by_date(day: date, **kw):
    return search(db.session, SearchQuery(lat=LAT, lon=LON, date=day, **kw))


def _unit_result(result, unit):
    return next((u for r in result.results for u in r.units if u.unit.id == unit.id), None)


def _touch(make, room, day: date) -> None:
    """A capacity override (the same capacity) on the day: the room goes through the exact
    rule (availability.timelines) instead of the unit loads."""
    db.session.add(CapacityOverride(unit_id=room.id, day=day, capacity=1, reason="test"))
    db.session.commit()


# --- the date-only search of an hourly room ---------------------------------------------------


@pytest.mark.parametrize("touched", [False, True], ids=["loads", "timelines"])
def test_a_room_with_one_booked_hour_is_found_with_its_free_hours(app, make, touched):
    _space, room = _room_space(make)
    day = future_day(12)
    if touched:
        _touch(make, room, day)
    make.booking(room, at(day, 10 * H), at(day, 11 * H))
    found = _unit_result(_by_date(day), room)
    assert found is not None, "a date-only search must offer the room's free hours"
    assert found.free_hours == [(9 * H, 10 * H), (11 * H, 18 * H)]
    assert found.regular.price_amount == 1500 and found.available_seats == 1
    # Asked for the booked hour itself, it is not offered.
    assert _unit_result(_by_date(day, start_min=10 * H, end_min=11 * H), room) is None
    # Asked for an hour that is free, it is, without free hours (the request is exact).
    exact = _unit_result(_by_date(day, start_min=14 * H, end_min=16 * H), room)
    assert exact is not None and exact.free_hours == []
    # Only a start time: any stretch from then on.
    later = _unit_result(_by_date(day, start_min=10 * H + 30), room)
    assert later is not None and later.free_hours == [(11 * H, 18 * H)]


@pytest.mark.parametrize("touched", [False, True], ids=["loads", "timelines"])
def test_a_fully_booked_room_is_not_found(app, make, touched):
    _space, room = _room_space(make)
    day = future_day(12)
    if touched:
        _touch(make, room, day)
    make.booking(room, at(day, 9 * H), at(day, 18 * H))
    assert _by_date(day).total == 0


@pytest.mark.parametrize("touched", [False, True], ids=["loads", "timelines"])
def test_free_stretches_shorter_than_the_minimum_length_do_not_count(app, make, touched):
    _space, room = _room_space(make, min_length=2)
    day = future_day(12)
    if touched:
        _touch(make, room, day)
    # Free 9–10, 11–12 and 16–18: only the last is two hours long.
    make.booking(room, at(day, 10 * H), at(day, 11 * H))
    make.booking(room, at(day, 12 * H), at(day, 16 * H))
    found = _unit_result(_by_date(day), room)
    assert found is not None and found.free_hours == [(16 * H, 18 * H)]
    make.booking(room, at(day, 16 * H), at(day, 17 * H))
    assert _by_date(day).total == 0


def test_seats_asked_for_must_fit_the_room(app, make):
    _space, room = _room_space(make)  # fits 6
    day = future_day(12)
    make.booking(room, at(day, 10 * H), at(day, 11 * H))
    assert _unit_result(_by_date(day, seats=6), room) is not None
    assert _by_date(day, seats=7).total == 0


def test_an_hourly_desk_pool_offers_the_hours_with_the_seats_asked_for(app, make):
    space = make.space(lat=LAT, lon=LON)
    desks = make.unit(space, capacity=3, price_amount=300, price_per=PricePer.HOUR)
    day = future_day(12)
    make.booking(desks, at(day, 10 * H), at(day, 12 * H), 2)
    one = _unit_result(_by_date(day), desks)
    assert one.free_hours == [(9 * H, 18 * H)] and one.available_seats == 1
    two = _unit_result(_by_date(day, seats=2), desks)
    assert two.free_hours == [(9 * H, 10 * H), (12 * H, 18 * H)] and two.available_seats == 3


def test_a_date_range_offers_the_hours_free_on_every_day(app, make):
    _space, room = _room_space(make)
    day = future_day(12)
    make.booking(room, at(day, 10 * H), at(day, 11 * H))
    make.booking(room, at(day + timedelta(days=1), 15 * H), at(day + timedelta(days=1), 16 * H))
    found = _unit_result(_by_date(day, end_date=day + timedelta(days=1)), room)
    assert found.free_hours == [(9 * H, 10 * H), (11 * H, 15 * H), (16 * H, 18 * H)]


def test_a_campaign_slot_on_a_room_offers_its_free_hours_too(app, make):
    _space, room = _room_space(make)
    campaign = make.campaign(starts_on=future_day(1), ends_on=future_day(40))
    make.slot(campaign, room, seats=1, price_amount=0, daily_start_min=9 * H,
              daily_end_min=13 * H)
    day = future_day(12)
    make.booking(room, at(day, 10 * H), at(day, 11 * H))
    found = _unit_result(_by_date(day), room)
    assert found.free_hours == [(9 * H, 10 * H), (11 * H, 18 * H)]
    assert found.campaign.price_amount == 0
    assert found.campaign.free_hours == [(9 * H, 10 * H), (11 * H, 13 * H)]
    # Free only: the slot's hours, which the card shows then.
    free = _unit_result(_by_date(day, free=True), room)
    assert free.regular is None and free.free_hours == [(9 * H, 10 * H), (11 * H, 13 * H)]


def test_today_the_hours_gone_by_are_not_free(app, make):
    _space, room = _room_space(make)
    day = future_day(12)
    # 10:10 in Tokyo on that day: the hour grid's next start after the drop-in's (10:15),
    # as the booking page's grid says (tests/test_today_start.py).
    with time_machine.travel(datetime.combine(day, datetime.min.time(), clock.TOKYO)
                             + timedelta(hours=10, minutes=10), tick=False):
        found = _unit_result(_by_date(day), room)
        assert found.free_hours == [(11 * H, 18 * H)]
    with time_machine.travel(at(day, 17 * H + 31), tick=False):
        assert _by_date(day).total == 0  # less than an hour left


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(bookings=st.lists(st.tuples(st.integers(0, 35), st.integers(1, 12)), max_size=5),
       min_length=st.integers(1, 3), touched=st.booleans())
def test_free_hours_agree_with_availability(app, make, bookings, min_length, touched):
    """Whatever the bookings of a room (on a quarter-hour grid), the hours search offers
    are the stretches availability has free, at least the room's minimum length; by the
    unit loads and by the timelines alike."""
    space = db.session.scalar(sa.select(Space))
    if space is None:
        _space, room = _room_space(make)
    else:
        room = space.units[0]
    day = future_day(12)
    db.session.execute(sa.delete(Booking))
    db.session.execute(sa.delete(CapacityOverride))
    room.min_length = min_length
    db.session.commit()
    if touched:
        _touch(make, room, day)
    for start, quarters in bookings:
        starts = at(day, 9 * H + start * 15)
        db.session.add(Booking(reference=secrets.token_hex(5).upper(),
                               unit_id=room.id, starts_at=starts,
                               ends_at=starts + timedelta(minutes=15 * quarters), seats=1,
                               price_amount=0))
    db.session.commit()
    line = availability.timeline(db.session, room, at(day, 0), at(day, 1440))
    free = [q for q in range(9 * 4, 18 * 4)
            if line.min_free(at(day, q * 15), at(day, q * 15 + 15)) >= 1]
    stretches: list[tuple[int, int]] = []
    for q in free:
        if stretches and stretches[-1][1] == q * 15:
            stretches[-1] = (stretches[-1][0], q * 15 + 15)
        else:
            stretches.append((q * 15, q * 15 + 15))
    expected = [(a, b) for a, b in stretches if b - a >= min_length * H]
    found = _unit_result(search(db.session, SearchQuery(lat=LAT, lon=LON, date=day)), room)
    assert (found.free_hours if found else []) == expected


def test_free_stretches_intersect_days_and_count_the_fewest_seats():
    windows = [(540, 1080), (1440 + 540, 1440 + 1080)]
    steps = [(600, 660, 0), (700, 800, 2), (1440 + 900, 1440 + 960, 0)]
    hours, seats = free_stretches(windows, steps, 5, 1, 60)
    assert hours == [(540, 600), (660, 900), (960, 1080)] and seats == 2
    assert free_stretches(windows, steps, 5, 3, 60) == ([(540, 600), (800, 900), (960, 1080)], 5)
    assert free_stretches([(540, 600)], [], 1, 1, 120) is None


# --- the page ---------------------------------------------------------------------------------


def _links(page: str, path: str) -> list[dict[str, list[str]]]:
    hrefs = [html.unescape(h) for h in re.findall(r'href="([^"]+)"', page)]
    return [parse_qs(urlsplit(h).query) for h in hrefs if urlsplit(h).path == path]


def test_the_card_shows_the_free_hours_and_taxed_prices(client, app, make):
    _space, room = _room_space(make)
    desks = make.unit(_space, name="フリー席", capacity=10, price_amount=1000)
    day = future_day(12)
    make.booking(room, at(day, 10 * H), at(day, 11 * H))
    page = client.get(f"/search?near={LAT},{LON}&date={day.isoformat()}").get_data(as_text=True)
    assert "空き" in page and "09:00–10:00</span>, <span class=\"nowrap\">11:00–18:00" in page
    assert "¥1,500(税込) / 1時間〜" in page  # from … per kind
    assert "¥1,000(税込) / 1日〜" in page
    assert "¥1,500(税込) / 1時間" in page and "¥1,000(税込) / 1日" in page  # per unit
    assert "残り10席" in page and desks.id
    assert '<ol class="results">' in page and 'data-lat="35.0"' in page
    assert "<script>" not in page  # CSP: scripts from files only
    client.post("/language", data={"lang": "en", "next": "/"})
    english = client.get(f"/search?near={LAT},{LON}&date={day.isoformat()}").get_data(as_text=True)
    assert "from ¥1,500 (incl. tax) / hour" in english and "¥1,000 (incl. tax) / day" in english
    assert "Free 09:00–10:00" in " ".join(english.split()).replace("<span class=\"nowrap\">", "")


def test_the_book_link_carries_date_time_and_seats_into_the_form(client, app, make, login):
    w = worlds.world(make, lat=LAT, lon=LON)
    login(w["booker"])
    _space, room = _room_space(make)
    day = future_day(12)
    page = client.get(f"/search?near={LAT},{LON}&date={day.isoformat()}&start=10:00&end=12:00"
                      "&seats=2").get_data(as_text=True)
    links = _links(page, "/bookings/new")
    wanted = next(q for q in links if q["unit_id"] == [str(room.id)])
    assert wanted["date"] == [day.isoformat()] and wanted["seats"] == ["2"]
    assert wanted["start"] == ["10:00"] and wanted["end"] == ["12:00"]
    assert "slot" not in wanted
    # The booking form opens with them filled in.
    form = client.get(f"/bookings/new?unit_id={room.id}&date={day.isoformat()}"
                      "&start=10:00&end=12:00&seats=2").get_data(as_text=True)
    assert f'value="{day.isoformat()}"' in form
    assert re.search(r'name="start_time"[^>]*value="10:00"|value="10:00"[^>]*name="start_time"', form)
    # A desk pool's link: the date range and seats, no times.
    desk_page = client.get(f"/search?near={LAT},{LON}&date={day.isoformat()}"
                           f"&end_date={(day + timedelta(days=2)).isoformat()}&seats=3"
                           ).get_data(as_text=True)
    desk = next(q for q in _links(desk_page, "/bookings/new")
                if q["unit_id"] == [str(w["desks"].id)])
    assert desk["date"] == [day.isoformat()] and desk["seats"] == ["3"]
    assert desk["end_date"] == [(day + timedelta(days=2)).isoformat()]
    assert "start" not in desk and "end" not in desk


def test_a_campaign_offer_links_to_its_slot(client, app, make):
    space = make.space(lat=LAT, lon=LON)
    members = make.unit(space, name="会員席", members_only=True, capacity=8)
    campaign = make.campaign(starts_on=future_day(1), ends_on=future_day(40),
                             name="お試しテレワーク")
    slot = make.slot(campaign, members, seats=4, price_amount=0)
    day = future_day(12)
    page = client.get(f"/search?near={LAT},{LON}&date={day.isoformat()}").get_data(as_text=True)
    (link,) = _links(page, "/bookings/new")
    assert link["slot"] == [str(slot.id)] and link["unit_id"] == [str(members.id)]
    assert "無料: お試しテレワーク" in page and "残り4席" in page
    assert "無料のキャンペーン枠" in page and "会員専用(キャンペーン枠で利用可)" in page


def test_a_past_date_is_history_without_book_links(client, app, make):
    _space, room = _room_space(make)
    make.unit(_space, name="フリー席", capacity=20, price_amount=1000)
    day = clock.today() - timedelta(days=3)
    make.booking(room, at(day, 10 * H), at(day, 11 * H))
    result = _by_date(day)
    assert result.past and result.total == 1
    page = client.get(f"/search?near={LAT},{LON}&date={day.isoformat()}").get_data(as_text=True)
    assert "過去の日付です" in page and "予約できません" in page
    assert "/bookings/new" not in page
    assert "残り" not in page  # nothing said as if it could be booked
    assert "20席を提供" in page and "空いていた時間" in page
    # Today and later are not the past.
    assert not _by_date(future_day(1)).past
    future = client.get(f"/search?near={LAT},{LON}&date={future_day(1).isoformat()}")
    assert "過去の日付です" not in future.get_data(as_text=True)


def test_a_space_without_a_photo_shows_the_placeholder(client, app, make):
    bare = make.space(lat=LAT, lon=LON, name="写真なし")
    make.unit(bare)
    pictured = make.space(lat=LAT + 0.01, lon=LON, name="写真あり")
    make.unit(pictured)
    db.session.add(Photo(space_id=pictured.id, filename="0" * 32 + ".jpg", alt="明るい窓際の席"))
    db.session.commit()
    day = future_day(12)
    page = client.get(f"/search?near={LAT},{LON}&date={day.isoformat()}").get_data(as_text=True)
    assert re.search(r'<img src="/static/img/placeholder.svg[^"]*" alt="写真はまだありません"', page)
    assert f'<img src="/photos/{"0" * 32}.jpg" alt="明るい窓際の席"' in page
    assert page.count('class="result"') == 2


def test_phone_layout_puts_the_filters_behind_a_summary(client, app, make):
    make.unit(make.space(lat=LAT, lon=LON))
    page = client.get(f"/search?near={LAT},{LON}&date={future_day(12).isoformat()}"
                      ).get_data(as_text=True)
    # Folded without a script (results first); the form inside it still submits.
    assert '<details class="filters">' in page and "<summary>" in page and "絞り込み" in page
    assert page.index('<details class="filters">') < page.index('name="near"') \
        < page.index('<ol class="results">')
    assert "js/search-filters.js" in page
    # Without a search the form is the page: not folded.
    assert '<details class="filters">' not in client.get("/search").get_data(as_text=True)


def test_search_queries_stay_constant_with_hourly_rooms(app, make, count_queries):
    day = future_day(12)
    org = make.organisation()

    def add(n: int) -> None:
        for i in range(n):
            space = make.space(org, lat=LAT + i / 300, lon=LON)
            room = make.unit(space, kind=UnitKind.MEETING_ROOM, capacity=1, fits_people=4,
                             price_amount=1000, price_per=PricePer.HOUR)
            make.booking(room, at(day, 10 * H), at(day, 11 * H))
            db.session.add(Photo(space_id=space.id, filename=f"{space.id:032x}.jpg"))
            db.session.commit()

    def run() -> int:
        db.session.expire_all()
        with count_queries() as statements:
            result = search(db.session, SearchQuery(lat=LAT, lon=LON, date=day, per_page=100),
                            photos=True)
            for r in result.results:
                assert r.space.photos and r.units[0].free_hours
        return len(statements)

    add(2)
    small = run()
    add(6)
    assert run() == small


def test_utc_midnight_does_not_change_todays_clip(app, make):
    """At 00:30 Tokyo (the suite's default instant is such an hour: UTC's date is the day
    before) today's hours are not clipped by yesterday's clock."""
    _space, room = _room_space(make)
    day = date(2027, 3, 2)
    with time_machine.travel(datetime(2027, 3, 1, 15, 30, tzinfo=UTC), tick=False):
        found = _unit_result(_by_date(day), room)
    assert found.free_hours == [(9 * H, 18 * H)]


def test_the_api_adds_the_free_hours_and_documents_them(client, app, make):
    _space, room = _room_space(make)
    desks = make.unit(_space, name="フリー席", capacity=10, price_amount=1000)
    day = future_day(12)
    make.booking(room, at(day, 10 * H), at(day, 11 * H))
    body = client.get(f"/api/v1/spaces?lat={LAT}&lon={LON}&date={day.isoformat()}").json
    units = {u["id"]: u for u in body["results"][0]["units"]}
    assert units[room.id]["free_hours"] == [{"start": "09:00", "end": "10:00"},
                                            {"start": "11:00", "end": "18:00"}]
    assert units[desks.id]["free_hours"] == []  # priced by the day
    schema = client.get("/api/v1/openapi.json").json["components"]["schemas"]["SearchUnit"]
    assert "free_hours" in schema["properties"] and "free_hours" not in schema["required"]
