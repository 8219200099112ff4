"""Search (service and page) against the demo data and made-up spaces: issue 3's acceptance."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa
import time_machine
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import booking.seeds.demo
from booking.extensions import db
from booking.models import (
    Booking,
    BookingStatus,
    OpeningHours,
    PricePer,
    Space,
    Unit,
    UnitKind,
    map_area,
)
from booking.services import availability, catalogue, geocoding
from booking.services.availability import at
from booking.services.errors import DomainError
from booking.services.search import SearchQuery, search

# The real 静岡駅 (public maps), for "within 0.5 km of geodesic truth".
SHIZUOKA_STATION = (34.97161, 138.38907)


@pytest.fixture
def demo(app):
    booking.seeds.demo.load(db.session, today=date(2019, 7, 1))
    db.session.commit()
    return {s.slug: s for s in db.session.scalars(sa.select(Space))}


def names(result) -> list[str]:
    return [r.space.slug for r in result.results]


def unit_named(space: Space, name: str) -> Unit:
    return next(u for u in space.units if u.name == name)


def test_shizuoka_station_nearest_first_with_geodesic_distances(demo):
    result = search(db.session, SearchQuery(near="静岡駅", date=date(2019, 7, 24), seats=2))
    slugs = names(result)
    assert slugs[0] == "enishia-shizuoka"
    for slug in ("coterrace-shichikencho", "ichiboshi-hr-studio", "nihon-iro-mochimune"):
        assert slug in slugs
    distances = [r.distance_km for r in result.results]
    assert distances == sorted(distances)
    for r in result.results:
        truth = geocoding.distance_km(*SHIZUOKA_STATION, r.space.lat, r.space.lon)
        assert abs(r.distance_km - truth) < 0.5, r.space.slug
    assert result.total == len(slugs)
    # A private room for one person does not take 2 people.
    coterrace = next(r for r in result.results if r.space.slug == "coterrace-shichikencho")
    assert "個室" not in [u.unit.name for u in coterrace.units]


def test_yoshikawa_free_on_the_core_day_not_on_saturday(demo):
    result = search(db.session, SearchQuery(near="吉川市", date=date(2019, 7, 24), free=True))
    assert names(result) == ["oasis-yoshikawa"]
    (unit,) = result.results[0].units
    offer = unit.campaign
    assert offer.price_amount == 0 and unit.lowest_price == 0
    assert (offer.slot.daily_start_min, offer.slot.daily_end_min) == (9 * 60, 18 * 60)
    assert "テレワーク・デイズ2019" in offer.slot.campaign.name
    assert search(db.session, SearchQuery(near="吉川市", date=date(2019, 7, 27), free=True)).total == 0
    # Without a slot the meeting room is members only: not offered at all on 7/27.
    assert search(db.session, SearchQuery(near="吉川市", date=date(2019, 7, 27))).total == 0


def test_komagane_finds_koto_on_its_open_days(demo):
    friday = search(db.session, SearchQuery(near="駒ヶ根", date=date(2019, 8, 9)))
    assert names(friday) == ["koto-komagane"]
    offered = {u.unit.name: u for u in friday.results[0].units}
    assert offered["会員デスク"].campaign.price_amount == 0  # members-only, opened by the campaign
    assert offered["ワーケーション利用デスク(有償)"].regular.price_amount == 1000
    # The acceptance check of issue 3: 2019-08-10, a Saturday, Koto's workation day.
    saturday = search(db.session, SearchQuery(near="駒ヶ根", date=date(2019, 8, 10)))
    assert names(saturday) == ["koto-komagane"]
    sunday = search(db.session, SearchQuery(near="駒ヶ根", date=date(2019, 8, 11)))
    assert names(sunday) == []
    # After the campaign only the paid desk is bookable.
    october = search(db.session, SearchQuery(near="Komagane", date=date(2019, 10, 1)))
    assert [u.unit.name for u in october.results[0].units] == ["ワーケーション利用デスク(有償)"]


def test_sunday_or_holiday_closure_excludes_a_space(demo):
    ichiboshi = "ichiboshi-hr-studio"  # weekdays only, closed on holidays
    assert ichiboshi in names(search(db.session, SearchQuery(near="静岡駅", date=date(2019, 7, 16))))
    assert ichiboshi not in names(search(db.session, SearchQuery(near="静岡駅", date=date(2019, 7, 15))))
    assert ichiboshi not in names(search(db.session, SearchQuery(near="静岡駅", date=date(2019, 7, 21))))
    # エニシア opens every day, holidays too.
    assert "enishia-shizuoka" in names(search(db.session, SearchQuery(near="静岡駅", date=date(2019, 7, 15))))


def test_unknown_place_is_an_error(demo):
    with pytest.raises(DomainError) as info:
        search(db.session, SearchQuery(near="xyzzy", date=date(2019, 7, 24)))
    assert info.value.code == "unknown_place"


def test_seats_and_filling_bookings(app, make):
    space = make.space(lat=35.0, lon=138.0)
    unit = make.unit(space, capacity=3)
    day = date(2027, 7, 26)
    q = {"lat": 35.0, "lon": 138.0, "date": day}
    assert search(db.session, SearchQuery(**q, seats=3)).total == 1
    assert search(db.session, SearchQuery(**q, seats=4)).total == 0
    # Two seats booked 10:00–12:00: a day request (opening hours 9–18) has 1 seat left.
    make.booking(unit, at(day, 600), at(day, 720), 2)
    result = search(db.session, SearchQuery(**q, seats=1))
    assert result.results[0].units[0].available_seats == 1
    assert search(db.session, SearchQuery(**q, seats=2)).total == 0
    # The afternoon and the next day are untouched.
    afternoon = search(db.session, SearchQuery(**q, seats=3, start_min=13 * 60, end_min=17 * 60))
    assert afternoon.results[0].units[0].available_seats == 3
    next_day = SearchQuery(lat=35.0, lon=138.0, date=day + timedelta(days=1), seats=3)
    assert search(db.session, next_day).total == 1
    # A cancelled booking frees its seats.
    other = make.booking(unit, at(day, 540), at(day, 1080), 1, status=BookingStatus.CANCELLED)
    assert other.id and search(db.session, SearchQuery(**q, seats=1)).total == 1
    make.booking(unit, at(day, 540), at(day, 1080), 1)
    assert search(db.session, SearchQuery(**q, seats=1)).total == 0


def test_a_space_listed_by_its_rooms_when_its_desks_are_full(app, make):
    """Either sort: a space whose desks are full is listed still when a room is free, with
    the free seats of what can take the request, and drops out when every unit is taken."""
    space = make.space(lat=35.0, lon=138.0)
    desks = make.unit(space, capacity=2, price_amount=500, price_per=PricePer.DAY)
    room = make.unit(space, kind=UnitKind.MEETING_ROOM, capacity=1, fits_people=4,
                     price_amount=300, price_per=PricePer.HOUR)
    day = date(2027, 7, 26)
    q = {"lat": 35.0, "lon": 138.0, "date": day}

    def shown(sort: str) -> dict | None:
        result = search(db.session, SearchQuery(**q, sort=sort))
        assert result.total == len(result.results) <= 1
        return ({r.unit.id: r.available_seats for r in result.results[0].units}
                if result.results else None)

    # The desks decide, the room is taken all day (with one free hour left, a date-only
    # search would offer it: tests/test_search_cards.py).
    make.booking(room, at(day, 540), at(day, 1080), 1)
    assert shown("distance") == shown("price") == {desks.id: 2}
    make.booking(desks, at(day, 540), at(day, 1080), 2)  # both taken
    assert shown("distance") is shown("price") is None
    db.session.execute(sa.delete(Booking).where(Booking.unit_id == room.id))
    db.session.commit()  # the desks full, the room free: listed by the second read
    assert shown("distance") == shown("price") == {room.id: 1}


def test_date_range_needs_every_open_day(app, make):
    space = make.space(lat=35.0, lon=138.0, hours=(range(5), 540, 1080))  # weekdays
    unit = make.unit(space, capacity=2)
    friday, monday = date(2027, 7, 23), date(2027, 7, 26)
    q = {"lat": 35.0, "lon": 138.0, "date": friday, "end_date": monday, "seats": 2}
    assert search(db.session, SearchQuery(**q)).total == 1  # the weekend is skipped
    assert search(db.session, SearchQuery(lat=35.0, lon=138.0, date=date(2027, 7, 24),
                                          end_date=date(2027, 7, 25))).total == 0  # nothing open
    make.booking(unit, at(monday, 600), at(monday, 660), 1)
    assert search(db.session, SearchQuery(**q)).total == 0


def test_whole_houses_by_the_night(demo):
    houses = list(demo["nihon-iro-mochimune"].units)
    q = SearchQuery(near="用宗駅", date=date(2019, 8, 5), end_date=date(2019, 8, 7), kind="whole_house",
                    seats=6)
    result = search(db.session, q)
    assert names(result) == ["nihon-iro-mochimune"]
    assert len(result.results[0].units) == 6
    assert search(db.session, SearchQuery(near="用宗駅", date=date(2019, 8, 5), kind="whole_house",
                                          seats=7)).total == 0  # fits 6
    # Book every house for the night of 8/6 (check-in 15:00, check-out 10:00 next day).
    for house in houses:
        db.session.add(_booking(house, at(date(2019, 8, 6), 900), at(date(2019, 8, 7), 600)))
    db.session.commit()
    assert search(db.session, q).total == 0
    # A stay checking out the morning the others check in still fits.
    for night in (date(2019, 8, 5), date(2019, 8, 7)):
        assert search(db.session, SearchQuery(near="用宗駅", date=night, kind="whole_house")).total == 1


def _booking(unit: Unit, start: datetime, end: datetime, seats: int = 1):
    import secrets


    return Booking(reference=secrets.token_hex(5).upper(), unit_id=unit.id, starts_at=start,
                   ends_at=end, seats=seats, price_amount=0)


def test_filters_kind_amenities_price_campaign(demo):
    base = {"near": "静岡駅", "date": date(2019, 7, 24)}
    rooms = search(db.session, SearchQuery(**base, kind="meeting_room", seats=7))
    assert names(rooms) == ["enishia-shizuoka"]  # コテラス's room fits 6
    assert {u.unit.kind for r in rooms.results for u in r.units} == {UnitKind.MEETING_ROOM}
    nursery = search(db.session, SearchQuery(**base, amenities=("nursery",)))
    assert names(nursery) == ["ichiboshi-hr-studio"]
    cheap = search(db.session, SearchQuery(**base, max_price=800))
    assert set(names(cheap)) == {"coterrace-shichikencho", "ichiboshi-hr-studio"}
    by_price = search(db.session, SearchQuery(**base, sort="price"))
    prices = [r.lowest_price for r in by_price.results]
    assert prices == sorted(prices) and names(by_price)[0] == "ichiboshi-hr-studio"
    trial = search(db.session, SearchQuery(**base, campaign="shizuoka-trial-2019"))
    assert names(trial) == ["enishia-shizuoka"]
    assert all(u.campaign is not None for u in trial.results[0].units)
    # Prefecture search: everything in 埼玉, distance from the prefectural office.
    saitama = search(db.session, SearchQuery(near="埼玉県", date=date(2019, 7, 24)))
    assert names(saitama) == ["oasis-yoshikawa"] and saitama.prefecture.code == 11


def test_constant_number_of_queries(app, make, count_queries):
    day = date(2027, 7, 26)

    def run() -> int:
        db.session.expire_all()
        with count_queries() as statements:
            search(db.session, SearchQuery(lat=35.0, lon=138.0, date=day, per_page=100))
        return len(statements)

    org = make.organisation()
    campaign = make.campaign()

    def add(n: int) -> None:
        for i in range(n):
            space = make.space(org, lat=35.0 + i / 200, lon=138.0)
            for _ in range(3):
                unit = make.unit(space, capacity=2)
                make.booking(unit, at(day, 600), at(day, 660), 1 + i % 2)
            make.slot(campaign, unit)

    add(2)
    small = run()
    add(12)
    assert run() == small
    assert small <= 20


def test_a_page_beyond_the_guess_reads_its_loads_and_shows_the_same(app, make):
    """PostgreSQL reads the whole loads of the units the page will likely show (the
    nearest spaces) with the pieces that decide; when the nearest are full the page lies
    beyond that guess and its units' loads are read after: the page shows what a page
    holding every space shows (on both databases)."""
    day = date(2027, 7, 26)
    org = make.organisation()
    units = []
    for i in range(9):
        space = make.space(org, lat=35.0 + i / 200, lon=138.0)
        units.append(unit := make.unit(space, capacity=3))
        make.booking(unit, at(day, 540), at(day, 1080), 3 if i < 7 else 1 + i % 2)

    def page(**kw) -> list[tuple[int, int]]:
        found = search(db.session, SearchQuery(lat=35.0, lon=138.0, date=day, **kw))
        assert found.total == 2
        return [(r.space.id, r.units[0].available_seats) for r in found.results]

    everything = page(per_page=100)
    assert everything == [(units[7].space_id, 1), (units[8].space_id, 2)]
    assert page(per_page=1) == everything[:1]
    assert page(per_page=1, page=2) == everything[1:]
    assert page(per_page=1, sort="price") == everything[:1]


def test_an_api_search_reads_in_one_statement(app, client, make, backend, count_queries):
    """PostgreSQL: the catalogue's look at its change log, the loads that decide and the
    page's loads come in one statement;
    SQLite: the look, the deciding loads, the page's loads."""
    day = date(2027, 7, 26)
    org = make.organisation()
    for i in range(3):
        make.booking(make.unit(make.space(org, lat=35.0 + i / 200, lon=138.0), capacity=3),
                     at(day, 540), at(day, 600))
    url = "/api/v1/spaces?lat=35.0&lon=138.0&date=2027-07-26"
    assert client.get(url).json["total"] == 3  # (the first search loads the catalogue)
    with count_queries() as statements:
        body = client.get(url).json
    assert body["total"] == 3 and [u["available_seats"] for r in body["results"]
                                   for u in r["units"]] == [2, 2, 2]
    assert len(statements) == (1 if backend == "postgresql" else 3)


def test_spaces_in_reach_follow_a_moved_space(app, make):
    """The spaces in reach of a place are remembered per catalogue: a space moved away
    (an edit refreshes the catalogue) leaves the next search from the same place, one
    moved in joins it."""
    day = date(2027, 7, 26)
    near, far = make.space(lat=35.0, lon=138.0), make.space(lat=36.0, lon=138.0)
    make.unit(near)
    make.unit(far)

    def found() -> set[int]:
        query = SearchQuery(lat=35.0, lon=138.0, radius_km=10, date=day)
        return {r.space.id for r in search(db.session, query).results}

    assert found() == {near.id} and found() == {near.id}
    near.lat, far.lat = 36.0, 35.01
    db.session.commit()
    assert found() == {far.id}


def test_places_searched_are_remembered_by_their_size(app, make):
    """Search remembers the spaces in reach of each place searched within a budget of
    bytes, not of places: 300 places with a few spaces in reach all stay (a bound of 256
    places forgot each before a day's mix of searches came back to it)."""
    day = date(2027, 7, 26)
    make.unit(make.space(lat=35.0, lon=138.0))
    db.session.commit()
    places = [(35.0 + i / 10_000, 138.0) for i in range(300)]
    for lat, lon in places:
        assert search(db.session, SearchQuery(lat=lat, lon=lon, radius_km=10, date=day)).total == 1
    memo = catalogue.current(db.session).reach
    assert all(("circle", lat, lon) in memo for lat, lon in places)


def test_an_edit_keeps_what_search_remembers_of_places_it_cannot_reach(app, make):
    """A refreshed catalogue keeps the memo of places that no changed space was or is
    near: an edit in Hokkaido leaves a search near Shizuoka remembered; one near it, or a
    space moved there, forgets it (the search then finds what changed)."""
    day = date(2027, 7, 26)
    near, far = make.space(lat=35.0, lon=138.0), make.space(lat=43.0, lon=141.3)
    make.unit(near)
    make.unit(far)
    db.session.commit()
    query = SearchQuery(lat=35.0, lon=138.0, radius_km=10, date=day)
    key = ("circle", 35.0, 138.0)
    assert search(db.session, query).total == 1
    before = catalogue.current(db.session)
    assert key in before.reach
    far.name = "札幌の別館"
    db.session.commit()
    after = catalogue.current(db.session)
    assert after is not before and key in after.reach
    far.lat, far.lon = 35.02, 138.0  # moved into the circle
    db.session.commit()
    assert key not in catalogue.current(db.session).reach
    assert search(db.session, query).total == 2
    near.name = "静岡の別館"
    db.session.commit()
    assert key not in catalogue.current(db.session).reach


def test_the_memo_forgets_the_least_recently_used_beyond_its_bytes():
    """Over its budget the memo forgets the value used longest ago (a value read counts
    as used); a value larger than the whole budget is not kept and forgets nothing."""
    memo, everywhere = catalogue.Memo(budget=1000), ("everywhere",)
    memo.put(("a",), (b"x" * 400,), everywhere)
    memo.put(("b",), (b"x" * 400,), everywhere)
    assert memo.get(("a",)) == (b"x" * 400,)
    memo.put(("c",), (b"x" * 400,), everywhere)
    assert ("a",) in memo and ("b",) not in memo and ("c",) in memo
    memo.put(("d",), (b"x" * 2000,), everywhere)
    assert ("d",) not in memo and len(memo) == 2 and memo.get(("d",)) is None


def test_campaign_slots_order_and_filter_by_their_price(app, make):
    """Sorting by price, a slot cheaper than every regular offer moves its space up; a
    dearer one leaves it where its regular price puts it; free=1 and max_price keep only
    the offers they allow."""
    day = date(2027, 7, 26)
    org, campaign = make.organisation(), make.campaign()
    near, middle, far = (make.space(org, lat=35.0 + i / 100, lon=138.0) for i in range(3))
    make.unit(near, price_amount=2000)
    make.slot(campaign, make.unit(near, price_amount=2500), price_amount=3000)
    make.unit(middle, price_amount=1000)
    make.unit(far, price_amount=2000)
    make.slot(campaign, make.unit(far, price_amount=5000), price_amount=0)

    def found(**kw) -> list[int]:
        result = search(db.session, SearchQuery(lat=35.0, lon=138.0, date=day, **kw))
        return [r.space.id for r in result.results]

    assert found(sort="price") == [far.id, middle.id, near.id]
    assert found(free=True) == [far.id]
    assert found(max_price=1500, sort="price") == [far.id, middle.id]
    assert found() == [near.id, middle.id, far.id]
    # The page shows the near space's slot too (a badge), though it decided nothing.
    [first] = search(db.session, SearchQuery(lat=35.0, lon=138.0, date=day, per_page=1)).results
    assert first.space.id == near.id and any(u.campaign for u in first.units)


def test_a_price_filter_leaves_out_priced_out_spaces_and_not_their_loads(app, make):
    """Free offers, a price cap or a campaign asked for leave out the spaces that have no
    unit at an allowed price and no slot; a later search at the same place without one
    still reads those spaces' loads (a full one is not counted), including a space beyond
    those the page will likely show (whose loads are read whole anyway)."""
    day = date(2027, 7, 26)
    org, campaign = make.organisation(), make.campaign()
    slotted = make.space(org, lat=35.0, lon=138.0)
    make.slot(campaign, make.unit(slotted, price_amount=5000), price_amount=0)
    free = [make.space(org, lat=35.001 + i / 1000, lon=138.0) for i in range(6)]
    for space in free:
        make.unit(space, price_amount=0)
    full = make.space(org, lat=35.1, lon=138.0)
    full_desk = make.unit(full, capacity=1, price_amount=2000)
    make.booking(full_desk, at(day, 0), at(day + timedelta(days=1), 0), 1)

    def total(**kw) -> int:
        return search(db.session, SearchQuery(lat=35.0, lon=138.0, per_page=1,
                                              **{"date": day, **kw})).total

    assert total(free=True) == total(max_price=1000) == 7  # the slot's and the free desks
    assert total(campaign=campaign.slug) == 1
    # Without a price filter, at the same place: the full space's booking is read.
    assert total() == total(max_price=3000) == 7
    assert total(date=day + timedelta(days=1)) == 8


def test_pagination(app, make):
    org = make.organisation()
    for i in range(25):
        make.unit(make.space(org, lat=35.0 + i / 1000, lon=138.0))
    first = search(db.session, SearchQuery(lat=35.0, lon=138.0, date=date(2027, 7, 26)))
    second = search(db.session, SearchQuery(lat=35.0, lon=138.0, date=date(2027, 7, 26), page=2))
    assert (first.total, len(first.results), len(second.results), first.pages) == (25, 20, 5, 2)
    assert not set(names(first)) & set(names(second))
    assert first.results[-1].distance_km <= second.results[0].distance_km


def test_default_date_is_today_in_tokyo(app, make):
    make.unit(make.space(lat=35.0, lon=138.0))
    # 2027-07-25 23:30 UTC is 7/26 08:30 in Tokyo.
    with time_machine.travel(datetime(2027, 7, 25, 23, 30, tzinfo=UTC), tick=False):
        result = search(db.session, SearchQuery(lat=35.0, lon=138.0))
    assert result.first_day == date(2027, 7, 26)


# --- the page --------------------------------------------------------------------------------


def test_page_lists_results_without_javascript(client, demo):
    response = client.get("/search?near=静岡駅&date=2019-07-24&seats=2")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert html.index("エニシア静岡") < html.index("コテラス七間町")
    assert '<ol class="results">' in html
    assert "km" in html and "¥1,000" in html
    assert "/search/leaflet/leaflet.js" in html and "js/map.js" in html
    assert "<script>" not in html  # no inline script (CSP)
    for name in ("leaflet.js", "leaflet.css"):
        with client.get(f"/search/leaflet/{name}") as asset:
            assert asset.status_code == 200
    assert client.get("/search/leaflet/../../etc/passwd").status_code == 404


def test_page_campaign_badge(client, demo):
    html = client.get("/search?near=吉川市&date=2019-07-24&free=y").get_data(as_text=True)
    assert "無料: テレワーク・デイズ2019" in html
    assert "9:00–18:00" in html


def test_page_form_errors_and_unknown_place(client, demo):
    response = client.get("/search?near=xyzzy&date=2019-07-24")
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "場所が見つかりません" in html and 'aria-invalid="true"' in html
    response = client.get("/search?near=静岡駅&seats=0&start=10:00&end=09:00")
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert 'id="seats-error"' in html and 'id="end-error"' in html
    response = client.get("/search?near=府中&date=2019-07-24")
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "府中(東京都)" in html and "府中町(広島県)" in html


def test_page_empty_results_explained(client, demo):
    html = client.get("/search?near=吉川市&date=2019-07-27&free=y").get_data(as_text=True)
    assert "見つかりませんでした" in html and "無料の枠だけ" in html


def test_page_pagination_links(client, app, make):
    org = make.organisation()
    for i in range(23):
        make.unit(make.space(org, lat=35.0 + i / 1000, lon=138.0))
    html = client.get("/search?near=35.0,138.0&date=2027-07-26").get_data(as_text=True)
    assert 'rel="next"' in html and "page=2" in html
    html = client.get("/search?near=35.0,138.0&date=2027-07-26&page=2").get_data(as_text=True)
    assert 'rel="prev"' in html and html.count('class="result"') == 3


def test_page_without_query_shows_the_form(client, app):
    response = client.get("/search")
    assert response.status_code == 200
    assert 'name="near"' in response.get_data(as_text=True)


# --- the unit loads agree with availability ------------------------------------------------

_DAY = date(2027, 7, 26)
_grid = st.integers(0, 96).map(lambda n: at(_DAY, n * 15))


@settings(max_examples=200, deadline=None)
@given(capacity=st.integers(0, 6),
       bookings=st.lists(st.tuples(_grid, st.integers(1, 48), st.integers(1, 3)), max_size=8),
       window=st.tuples(st.integers(0, 95), st.integers(1, 96)))
def test_unit_loads_give_availabilitys_free_seats(capacity, bookings, window):
    """For a unit only bookings touch, capacity minus the most the loads hold at once in a
    window (search's count) equals availability's free seats, on both days touched."""
    from booking.services import loads

    rows = [(s, s + timedelta(minutes=15 * n), seats) for s, n, seats in bookings]
    a_min = 15 * min(window[0], window[1] - 1)
    b_min = 15 * max(window[1], window[0] + 1)
    space = Space(id=1, closed_on_holidays=False, opening_hours=[
        OpeningHours(weekday=d.weekday(), opens_min=0, closes_min=1440)
        for d in (_DAY, _DAY + timedelta(days=1))])
    unit = Unit(id=1, space=space, capacity=capacity, members_only=False, kind=UnitKind.DESK,
                price_per=PricePer.DAY, price_amount=0)
    data = availability.UnitData(bookings=[
        Booking(unit_id=1, starts_at=s, ends_at=e, seats=n, campaign_slot_id=None) for s, e, n in rows])
    line = availability.timeline_of(unit, data, at(_DAY, 0), at(_DAY, 1440 * 2))
    for day in (_DAY, _DAY + timedelta(days=1)):
        held = max((n for s, e, n in loads.pieces(rows, day) if s < b_min and e > a_min), default=0)
        assert max(capacity - held, 0) == line.min_free(at(day, a_min), at(day, b_min))


def test_prefecture_search_lists_spaces_without_coordinates_last(app, make):
    org = make.organisation()
    unplaced = make.space(org, lat=None, lon=None, prefecture_code=22)
    placed = make.space(org, prefecture_code=22)
    make.unit(unplaced)
    make.unit(placed)
    result = search(db.session, SearchQuery(prefecture="静岡県", date=date(2027, 7, 26)))
    assert [r.space.id for r in result.results] == [placed.id, unplaced.id]
    assert result.results[1].distance_km is None
    # A radius search cannot place it at all.
    assert search(db.session, SearchQuery(near="静岡駅", date=date(2027, 7, 26))).total == 1


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(bookings=st.lists(st.tuples(st.integers(0, 2 * 96 - 1), st.integers(1, 60),
                                   st.integers(1, 3)), max_size=6),
       two_days=st.booleans(), hours=st.one_of(st.none(), st.tuples(st.integers(9, 16),
                                                                      st.integers(1, 3))),
       seats=st.integers(1, 4))
def test_search_agrees_with_availability(app, make, bookings, two_days, hours, seats):
    """Whatever the bookings, over one day or two and any time of day, search lists a desk
    pool exactly when availability has the seats all the time, with its free seats."""
    space = db.session.scalar(sa.select(Space)) or make.space(lat=35.0, lon=138.0)
    unit = space.units[0] if space.units else make.unit(space, capacity=4)
    db.session.execute(sa.delete(Booking))
    for start, quarters, n in bookings:
        starts = at(_DAY, 540 + start * 5)
        db.session.add(_booking(unit, starts, starts + timedelta(minutes=15 * quarters), n))
    db.session.commit()
    query = SearchQuery(lat=35.0, lon=138.0, date=_DAY, seats=seats,
                        end_date=_DAY + timedelta(days=1) if two_days else None,
                        start_min=hours and hours[0] * 60,
                        end_min=hours and (hours[0] + hours[1]) * 60)
    days = [_DAY, _DAY + timedelta(days=1)] if two_days else [_DAY]
    line = availability.timeline(db.session, unit, at(_DAY, 0), at(days[-1], 1440))
    # Open 9:00–18:00 every day; a time asked for is cut to that.
    a, b = (hours[0] * 60, min((hours[0] + hours[1]) * 60, 1080)) if hours else (540, 1080)
    free = min(line.min_free(at(d, a), at(d, b)) for d in days)
    result = search(db.session, query)
    assert result.total == (1 if free >= seats else 0)
    if result.total:
        assert result.results[0].units[0].available_seats == free


@pytest.mark.parametrize("sort", ["distance", "price"])
def test_pages_are_slices_of_the_whole_list(app, make, sort):
    """Touched units are decided only for the spaces that could make the page; every page
    must still be the same slice, with the same offers, as the whole list."""
    day = date(2027, 7, 26)
    org, campaign = make.organisation(), make.campaign()
    for i in range(9):
        space = make.space(org, lat=35.0 + i / 200, lon=138.0)
        if i % 3 != 2:
            make.unit(space, price_amount=1000 + 300 * ((i * 5) % 7))
        if i % 2 == 0:
            slotted = make.unit(space, price_amount=3000, members_only=i % 4 == 0)
            make.slot(campaign, slotted, price_amount=(i * 200) % 900)

    def listing(**kw) -> list[tuple]:
        result = search(db.session, SearchQuery(lat=35.0, lon=138.0, date=day, sort=sort, **kw))
        return [(r.space.id, sorted((u.unit.id, u.available_seats, u.lowest_price,
                                     u.campaign is not None) for u in r.units))
                for r in result.results]

    # Nearest, and free at best: a slot after closing time, so it is not listed after all.
    closed = make.space(org, lat=34.999, lon=138.0)
    make.slot(campaign, make.unit(closed, members_only=True), price_amount=0,
              daily_start_min=1100, daily_end_min=1200)

    whole = listing(per_page=100)
    assert len(whole) == 8  # neither that one nor the space without units
    pages = [listing(per_page=2, page=n) for n in range(1, 6)]
    assert [row for page in pages for row in page] == whole


def test_loads_read_by_unit_or_by_day_give_the_same_page(demo, monkeypatch):
    """PostgreSQL reads the candidates' loads by unit (the primary key) when they are few
    and from the days' pieces in their units' map squares when they are many, and night
    units' check-out day likewise: every way gives the same pages (SQLite reads one way).
    A space moved to another square keeps its units' (their loads are filed there)."""
    from booking.services import search as search_module

    moved = db.session.scalars(sa.select(Space).filter_by(slug="enishia-shizuoka")).one()
    made_in = {u.area for u in moved.units}
    moved.lat, moved.lon = 43.0687, 141.3508  # to Sapporo, alone there
    db.session.commit()
    units = db.session.scalars(sa.select(Unit).order_by(Unit.id)).all()
    assert {u.area for u in moved.units} == made_in != {map_area(moved.lat, moved.lon)}
    first = date(2019, 7, 23)
    for n, unit in enumerate(units):
        for day in range(4):
            if (n + day) % 3:  # most units hold pieces, some all day, some full
                start = at(first + timedelta(days=day), 480 + 60 * ((n * 7 + day) % 9))
                seats = min(unit.capacity, 1 + (n + day) % 4)
                db.session.add(_booking(unit, start, start + timedelta(hours=1 + n % 5), seats))
        if unit.price_per == PricePer.NIGHT:  # the first night's check-out morning
            morning = at(first + timedelta(days=1), 480)
            db.session.add(_booking(unit, morning, morning + timedelta(hours=1)))
    for unit in moved.units:  # full all day: listed only if its loads go unread
        db.session.add(_booking(unit, at(first, 0), at(first + timedelta(days=4), 0),
                                unit.capacity))
    db.session.commit()
    # (The units of the spaces a page likely shows are read whole: the second page of one
    # space a page leaves the first to the pieces that decide.)
    queries = [SearchQuery(**place, date=first + timedelta(days=d), end_date=end,
                           seats=seats, kind=kind, sort=sort, page=page, per_page=per_page)
               for place in ({"near": "静岡駅"}, {"near": "用宗駅"}, {"lat": 43.07, "lon": 141.35})
               for d, end in ((0, None), (1, None), (0, first + timedelta(days=2)))
               for seats, kind, sort in ((1, None, "distance"), (2, None, "price"),
                                         (1, "whole_house", "distance"))
               for page, per_page in ((1, 2), (2, 1))]

    def pages() -> list:
        return [[(r.space.id, [(u.unit.id, u.available_seats, u.lowest_price, u.free_hours)
                               for u in r.units]) for r in result.results] + [result.total]
                for result in (search(db.session, q) for q in queries)]

    kept = []  # what search keeps per place: a map of the units (many) or their ids (few)
    put = search_module.catalogue.Memo.put
    monkeypatch.setattr(search_module.catalogue.Memo, "put", lambda memo, key, value, where: (
        kept.append(value[0] is None if key[0] == "marks" else None),
        put(memo, key, value, where)))
    monkeypatch.setattr(search_module, "MOST_UNIT_LOOKUPS", 10_000)
    by_unit = pages()
    for most_units, most_nights, guess in ((0, 10_000, True), (0, 0, True), (0, 0, False)):
        monkeypatch.setattr(search_module, "MOST_UNIT_LOOKUPS", most_units)
        monkeypatch.setattr(search_module, "MOST_NIGHT_LOOKUPS", most_nights)
        if not guess:  # every unit decided by the days' pieces (none read whole first)
            monkeypatch.setattr(search_module, "_likely_shown", lambda *_args: [])
        search_module.catalogue.current(db.session).reach.clear()  # the units kept per place
        assert pages() == by_unit
    assert any(total for *_, total in by_unit)
    if db.session.get_bind().dialect.name == "postgresql":
        assert True in kept and False in kept
