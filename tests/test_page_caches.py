"""The space page and the calendar feed keep in memory what does not change per request
(services/spaces.page and kept_body, calendars' feed and event caches), and every change
is on the very next request — of this app server and of another one on the same database
(two apps, each with its own memory, as two gunicorn workers or hosts are)."""

from __future__ import annotations

import re
import threading
from datetime import date, timedelta

import icalendar
import pytest
import sqlalchemy as sa

from booking import clock
from booking.extensions import db
from booking.models import Closure, FeedChange, Photo
from booking.services import calendars, jobs
from tests import worlds
from tests.conftest import make_app
from tests.edge import reservations as r


def _day() -> date:
    """A day well ahead, inside every lead time and the default horizon, on a weekday."""
    day = (clock.today() + timedelta(days=45)).replace(day=10)
    while day.weekday() > 3:
        day += timedelta(days=1)
    return day


@pytest.fixture
def w(make):
    return worlds.world(make, capacity=10)


@pytest.fixture
def servers(app):
    """This app's client and a second app's on the same database."""
    other = make_app(app.config["SQLALCHEMY_DATABASE_URI"])
    return [app.test_client(), other.test_client()]


def _states(client, space, unit, day: date) -> tuple[str, str]:
    """What the space page says of `day` and of the next day in the unit's month."""
    res = client.get(f"/spaces/{space.slug}?month={day:%Y-%m}")
    assert res.status_code == 200
    html = res.get_data(as_text=True)
    month = html.split(f'id="free-{unit.id}"', 1)[1].split("</table>", 1)[0]
    states = re.findall(r'<span class="state">(.*?)</span>', month)
    return states[day.day - 1], states[day.day]


def test_space_page_shows_each_change_on_the_next_request_on_every_server(app, w, servers):
    space, desks, booker = w["space"], w["desks"], w["booker"]
    day = _day()

    def seen() -> list[tuple[str, str]]:
        return [_states(client, space, desks, day) for client in servers]

    assert seen() == [("残り10席", "残り10席")] * 2
    assert seen() == [("残り10席", "残り10席")] * 2  # from memory: the same
    [booking] = r.book(db.session, desks, booker, [r.day_period(desks, day)], 3)
    assert seen() == [("残り7席", "残り10席")] * 2
    r.cancel(db.session, booking, booker)
    assert seen() == [("残り10席", "残り10席")] * 2
    db.session.add(Closure(unit_id=desks.id, start_date=day, end_date=day))
    db.session.commit()
    assert seen() == [("休業", "残り10席")] * 2
    # The opening hours: the next day's weekday closed.
    db.session.delete(next(h for h in space.opening_hours
                           if h.weekday == (day.weekday() + 1) % 7))
    db.session.commit()
    assert seen() == [("休業", "休業")] * 2


def test_space_page_shows_edits_of_what_it_keeps_on_every_server(app, w, servers, make):
    space, desks = w["space"], w["desks"]
    for client in servers:
        assert "フリーデスク" in client.get(f"/spaces/{space.slug}").get_data(as_text=True)
    desks.name = "窓際デスク"
    space.name = "テレワーク静岡 本館"
    db.session.commit()
    for client in servers:
        html = client.get(f"/spaces/{space.slug}").get_data(as_text=True)
        assert "窓際デスク" in html and "フリーデスク" not in html
        assert "テレワーク静岡 本館" in html
    db.session.add(Photo(space_id=space.id, filename=f"{'a' * 32}.jpg", alt="窓からの景色"))
    db.session.commit()
    for client in servers:
        assert "窓からの景色" in client.get(f"/spaces/{space.slug}").get_data(as_text=True)
    space.published = False
    db.session.commit()
    for client in servers:
        assert client.get(f"/spaces/{space.slug}").status_code == 404


def test_a_kept_space_page_reads_the_change_log_and_the_bookings_only(app, w, client,
                                                                     count_queries):
    space = w["space"]
    url = f"/spaces/{space.slug}?month={_day():%Y-%m}"
    assert client.get(url).status_code == 200
    with count_queries() as statements:
        assert client.get(url).status_code == 200
    assert len(statements) == 2, statements  # the change log's rows since; the bookings


def _events(data: bytes) -> dict[str, icalendar.Event]:
    return {str(e["UID"]): e for e in icalendar.Calendar.from_ical(data).walk("VEVENT")}


def test_feed_shows_each_change_on_the_next_request_on_every_server(app, w, servers):
    desks, booker, company = w["desks"], w["booker"], w["company"]
    [first] = r.book(db.session, desks, booker, [r.day_period(desks, _day())], 1)
    secret = calendars.renew_secret(company)
    db.session.commit()
    url = f"/calendar/{secret}.ics"

    def feeds() -> list[dict[str, icalendar.Event]]:
        answers = [client.get(url) for client in servers]
        assert {a.status_code for a in answers} == {200}
        # What is kept is what would be built now, byte for byte.
        assert answers[0].data == answers[1].data == calendars.feed_ics(
            calendars.feed_bookings(db.session, company), calendars.feed_name(company))
        return [_events(a.data) for a in answers]

    assert [list(e) for e in feeds()] == [[calendars.uid_of(first)]] * 2
    etags = [client.get(url).headers["ETag"] for client in servers]
    assert etags[0] == etags[1]
    assert servers[1].get(url, headers={"If-None-Match": etags[0]}).status_code == 304
    [second] = r.book(db.session, desks, booker, [r.day_period(desks, _day() + timedelta(days=1))], 2)
    for events in feeds():
        assert set(events) == {calendars.uid_of(first), calendars.uid_of(second)}
    # The client's copy is not current any more: the whole feed, on either server.
    assert {c.get(url, headers={"If-None-Match": etags[0]}).status_code for c in servers} == {200}
    r.change(db.session, second, booker, seats=3)
    for events in feeds():
        assert events[calendars.uid_of(second)]["SEQUENCE"] == 1
    r.cancel(db.session, first, booker)
    for events in feeds():
        assert set(events) == {calendars.uid_of(second)}
    desks.name = "窓際デスク"  # a place's text, no booking touched
    db.session.commit()
    for events in feeds():
        assert "窓際デスク" in str(events[calendars.uid_of(second)]["DESCRIPTION"])
    calendars.revoke_secret(company)
    db.session.commit()
    assert {client.get(url).status_code for client in servers} == {404}


def test_a_kept_feed_is_one_query_on_postgresql(app, w, client, count_queries):
    desks, booker, company = w["desks"], w["booker"], w["company"]
    r.book(db.session, desks, booker, [r.day_period(desks, _day())], 1)
    secret = calendars.renew_secret(company)
    db.session.commit()
    assert client.get(f"/calendar/{secret}.ics").status_code == 200
    with count_queries() as statements:
        assert client.get(f"/calendar/{secret}.ics").status_code == 200
    # PostgreSQL: owner and row versions in one; SQLite: the owner (user, company), the rows.
    assert len(statements) == (1 if db.engine.dialect.name == "postgresql" else 3), statements


def test_feed_event_memory_is_bounded(app, w, client, monkeypatch, count_queries):
    """An event kept in memory is dropped beyond EVENT_CACHE_BYTES, and the feed is the
    same with or without it."""
    desks, booker, company = w["desks"], w["booker"], w["company"]
    for n in range(3):
        r.book(db.session, desks, booker, [r.day_period(desks, _day() + timedelta(days=n))], 1)
    secret = calendars.renew_secret(company)
    db.session.commit()
    whole = client.get(f"/calendar/{secret}.ics").data
    # The feed built again (another ETag, the same events): every event from memory,
    # none of the bookings loaded as model objects.
    calendars._feed_cache.clear()
    with count_queries() as statements:
        assert client.get(f"/calendar/{secret}.ics").data == whole
    assert not any(re.search(r"bookings\.id IN \((?!SELECT)", s) for s in statements), statements
    monkeypatch.setattr(calendars, "EVENT_CACHE_BYTES", 1)
    calendars._feed_cache.clear()
    calendars._event_cache.clear()
    calendars._event_cache_size[0] = 0
    assert client.get(f"/calendar/{secret}.ics").data == whole
    assert len(calendars._event_cache) == 1


def _needs_postgresql() -> None:
    if db.engine.dialect.name != "postgresql":
        pytest.skip("the feeds' change log is PostgreSQL's (SQLite's feeds hash their rows)")


def _company_feed(w) -> tuple:
    """PostgreSQL (else skipped): a booking of the company's, and its feed's URL."""
    _needs_postgresql()
    desks = w["desks"]
    [booking] = r.book(db.session, desks, w["booker"], [r.day_period(desks, _day())], 1)
    secret = calendars.renew_secret(w["company"])
    db.session.commit()
    return booking, f"/calendar/{secret}.ics"


def test_a_booking_written_by_plain_sql_changes_the_feed(app, w, client):
    """The log is the database's: a write that bypasses the application is in it too."""
    booking, url = _company_feed(w)
    first = client.get(url)
    db.session.execute(sa.text("UPDATE bookings SET seats = 4, sequence = sequence + 1 "
                               "WHERE id = :id"), {"id": booking.id})
    db.session.commit()
    assert client.get(url, headers={"If-None-Match": first.headers["ETag"]}).status_code == 200
    assert _events(client.get(url).data)[calendars.uid_of(booking)]["SEQUENCE"] == 1
    db.session.execute(sa.text("DELETE FROM bookings WHERE id = :id"), {"id": booking.id})
    db.session.commit()
    assert _events(client.get(url).data) == {}


def _log(company) -> list[tuple[int, int]]:
    return db.session.execute(sa.select(FeedChange.unit_id, FeedChange.weight).where(
        FeedChange.owner_kind == "Organisation", FeedChange.owner_id == company.id)
        .order_by(FeedChange.unit_id, FeedChange.id)).all()


def test_an_owners_log_is_compacted_and_its_validator_stays(app, w, client, make):
    _needs_postgresql()
    desks, booker, company = w["desks"], w["booker"], w["company"]
    room = make.unit(w["space"], name="会議室", capacity=4, price_amount=3000)
    [booking] = r.book(db.session, desks, booker, [r.day_period(desks, _day())], 1)
    r.book(db.session, room, booker, [r.day_period(room, _day())], 1)
    secret = calendars.renew_secret(company)
    db.session.commit()
    url = f"/calendar/{secret}.ics"
    for n in range(calendars.COMPACT_AFTER):
        booking.note = f"変更 {n}"
        db.session.commit()
    written = _log(company)
    assert len(written) == calendars.COMPACT_AFTER + 2  # not yet past the threshold
    etag = client.get(url).headers["ETag"]
    assert _log(company) == written  # read, not compacted
    booking.note = "もう一度"
    db.session.commit()
    etag = client.get(url).headers["ETag"]  # this read compacts
    assert _log(company) == [(desks.id, calendars.COMPACT_AFTER + 2), (room.id, 1)]
    assert client.get(url, headers={"If-None-Match": etag}).status_code == 304
    booking.note = "さらに"
    db.session.commit()
    assert client.get(url, headers={"If-None-Match": etag}).status_code == 200


def test_a_unit_moved_to_another_space_moves_between_their_feeds(app, w, client, make):
    _needs_postgresql()
    desks, booker = w["desks"], w["booker"]
    other = make.space(w["org"], name="テレワーク浜松")
    [booking] = r.book(db.session, desks, booker, [r.day_period(desks, _day())], 1)
    urls = [f"/calendar/{calendars.renew_secret(space)}.ics" for space in (w["space"], other)]
    db.session.commit()
    uid = calendars.uid_of(booking)
    assert [uid in _events(client.get(url).data) for url in urls] == [True, False]
    desks.space_id = other.id
    db.session.commit()
    assert [uid in _events(client.get(url).data) for url in urls] == [False, True]


def _weights(session) -> dict[tuple[str, int, int], int]:
    rows = session.execute(sa.select(FeedChange.owner_kind, FeedChange.owner_id,
                                     FeedChange.unit_id, sa.func.sum(FeedChange.weight))
                           .group_by(FeedChange.owner_kind, FeedChange.owner_id,
                                     FeedChange.unit_id)).all()
    return {(kind, owner, unit): total for kind, owner, unit, total in rows}


def test_the_daily_job_compacts_every_owners_log_once(app, w, client):
    booking, url = _company_feed(w)
    desks, company = w["desks"], w["company"]
    for n in range(3):
        booking.note = f"変更 {n}"
        db.session.commit()
    etag = client.get(url).headers["ETag"]
    weights = _weights(db.session)
    assert weights[("Organisation", company.id, desks.id)] == 4
    assert db.session.scalar(sa.select(sa.func.count()).select_from(FeedChange)) == 12
    assert jobs.run_due(db.session, "feed_changes") == {"feed_changes": ("ok", 9)}
    assert _weights(db.session) == weights  # the same sums, one row each (user, company, space)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(FeedChange)) == 3
    assert client.get(url, headers={"If-None-Match": etag}).status_code == 304
    booking.note = "また"
    db.session.commit()
    assert jobs.run_due(db.session, "feed_changes") == {"feed_changes": ("ok", 0)}  # done today
    assert client.get(url, headers={"If-None-Match": etag}).status_code == 200


def test_compactions_at_once_keep_every_weight(app, w):
    """Two compactions racing, and a change written meanwhile: no weight lost or doubled."""
    _needs_postgresql()
    desks, booker, company = w["desks"], w["booker"], w["company"]
    [booking] = r.book(db.session, desks, booker, [r.day_period(desks, _day())], 1)
    for n in range(5):
        booking.note = f"変更 {n}"
        db.session.commit()
    owner = {"kind": "Organisation", "owner_id": company.id}
    with db.engine.connect() as first, db.engine.connect() as second:
        first.execute(calendars._COMPACT_PG, owner)  # its transaction still open
        db.session.execute(sa.text("UPDATE bookings SET note = 'その間に' WHERE id = :id"),
                           {"id": booking.id})
        db.session.commit()
        waiting = threading.Thread(target=lambda: (second.execute(calendars._COMPACT_PG, owner),
                                                   second.commit()))
        waiting.start()
        waiting.join(0.5)
        assert waiting.is_alive()  # waits for the first one's rows
        first.commit()
        waiting.join(10)
    assert not waiting.is_alive()
    # The booking, its five notes and the one meanwhile: the first compaction summed six,
    # the second found those gone and summed the one it saw.
    assert sorted(_log(company)) == [(desks.id, 1), (desks.id, 6)]
