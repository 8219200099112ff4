"""The search catalogue held in memory follows every committed change of spaces, units,
opening hours and organisations, in this process and in others, and stays held through
bookings (on SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from booking.extensions import db
from booking.models import CapacityOverride, Closure, OpeningHours, Space, Unit
from booking.services import catalogue
from booking.services.search import SearchQuery, search
from tests.edge import reservations as r
from tests.worlds import future_day

DAY = future_day(10)


def found(**kw) -> set[int]:
    query = SearchQuery(lat=34.9738, lon=138.3866, radius_km=5, date=DAY, **kw)
    return {result.space.id for result in search(db.session, query).results}


def version() -> int:
    return catalogue.version(db.session.connection())


@pytest.fixture
def space(make):
    space = make.space()
    make.unit(space, capacity=3)
    return space


def test_committed_changes_reach_the_held_catalogue(make, space):
    assert found(seats=3) == {space.id}
    held = catalogue.current(db.session)
    assert catalogue.current(db.session) is held  # held, not read again

    other = make.space(lat=34.98, lon=138.39, amenities=["wifi"])
    make.unit(other, capacity=10)
    assert found() == {space.id, other.id}
    assert found(amenities=["wifi"]) == {other.id}

    unit = space.units[0]
    unit.capacity = 2
    db.session.commit()
    assert found(seats=3) == {other.id}

    db.session.execute(sa.delete(OpeningHours).where(OpeningHours.space_id == other.id,
                                                     OpeningHours.weekday == DAY.weekday()))
    db.session.commit()
    assert found() == {space.id}

    space.published = False
    db.session.commit()
    assert found() == set()

    space.published = True
    db.session.commit()
    assert found() == {space.id}
    space.organisation.approved_at = None
    db.session.commit()
    assert found() == set()


def test_closures_overrides_and_campaign_slots_reach_it(make, space):
    unit = space.units[0]
    assert found(seats=3) == {space.id}
    db.session.add(CapacityOverride(unit_id=unit.id, day=DAY, capacity=2))
    db.session.commit()
    assert found(seats=3) == set()
    db.session.add(Closure(unit_id=unit.id, start_date=DAY, end_date=DAY))
    db.session.commit()
    assert found() == set()
    assert found(free=True) == set()
    campaign = make.campaign(starts_on=DAY, ends_on=DAY)
    make.slot(campaign, make.unit(space, capacity=5, price_amount=800), price_amount=0)
    assert found(free=True) == {space.id}
    campaign.published = False
    db.session.commit()
    assert found(free=True) == set()


def test_bookings_leave_the_catalogue_held(make, space):
    booker = make.user("booker@example.jp", organisation=make.company())
    unit = space.units[0]
    held, before = catalogue.current(db.session), version()
    [booking] = r.book(db.session, unit, booker, [r.day_period(unit, DAY)], 2)
    assert found(seats=2) == set()  # the booking shows, through the loads
    r.cancel(db.session, booking, booker)
    assert found(seats=2) == {space.id}
    assert version() == before
    assert catalogue.current(db.session) is held


def test_another_process_sees_the_change(space):
    assert found() == {space.id}
    # Another process: its own engine and session, the same database.
    engine = sa.create_engine(db.engine.url)
    try:
        with Session(engine) as other:
            other.get(Space, space.id).published = False
            other.commit()
    finally:
        engine.dispose()
    db.session.rollback()  # end this session's transaction, as a new request would
    assert found() == set()


def test_bulk_statements_change_it(space):
    assert found() == {space.id}
    db.session.execute(sa.update(Unit).where(Unit.space_id == space.id).values(capacity=1))
    db.session.commit()
    assert found(seats=2) == set()


def test_uncommitted_changes_stay_in_their_transaction(space):
    assert found() == {space.id}
    held, before = catalogue.current(db.session), version()
    space.published = False
    db.session.flush()
    assert found() == set()  # this transaction sees its own change...
    db.session.rollback()
    assert found() == {space.id}  # ...which never reached the held catalogue
    assert version() == before
    assert catalogue.current(db.session) is held


def test_sql_that_bypasses_the_session_needs_the_rebuild_command(space, runner):
    assert found() == {space.id}
    db.session.connection().execute(sa.update(Space.__table__).values(published=False))
    db.session.commit()
    assert found() == {space.id}  # the documented limit: no hook saw that statement
    result = runner.invoke(args=["rebuild-loads"])
    assert result.exit_code == 0, result.output
    db.session.rollback()
    assert found() == set()


# --- the change log: a change refreshes only its spaces ---------------------------------------


@pytest.fixture
def other(make):
    other = make.space(lat=34.98, lon=138.39)
    make.unit(other, capacity=10)
    return other


def test_an_edit_refreshes_only_its_space_without_a_full_reload(space, other):
    assert found(seats=3) == {space.id, other.id}
    held, before = catalogue.current(db.session), dict(catalogue.counts)
    space.units[0].capacity = 2
    db.session.commit()
    assert found(seats=3) == {other.id}  # the next search sees it...
    assert catalogue.counts["full"] == before["full"]  # ...without reading everything
    assert catalogue.counts["refreshes"] == before["refreshes"] + 1
    assert catalogue.counts["spaces_refreshed"] == before["spaces_refreshed"] + 1
    now = catalogue.current(db.session)
    assert now is not held
    assert now.by_id[other.id] is held.by_id[other.id]  # the others are shared, not read
    assert now.by_id[space.id].units[0].capacity == 2
    assert held.by_id[space.id].units[0].capacity == 3  # searches running on it: unchanged
    # Hours, a closure: the same.
    db.session.add(Closure(unit_id=space.units[0].id, start_date=DAY, end_date=DAY))
    db.session.commit()
    assert found() == {other.id}
    assert catalogue.counts["full"] == before["full"]
    assert catalogue.counts["spaces_refreshed"] == before["spaces_refreshed"] + 2


def test_an_edit_in_another_process_reaches_this_one_without_a_full_reload(space, other):
    assert found() == {space.id, other.id}
    before = dict(catalogue.counts)
    engine = sa.create_engine(db.engine.url)  # another process: its own engine and session
    try:
        with Session(engine) as elsewhere:
            elsewhere.get(Space, other.id).name = "名前を変えた"
            elsewhere.commit()
    finally:
        engine.dispose()
    db.session.rollback()  # a new request
    result = search(db.session, SearchQuery(lat=34.9738, lon=138.3866, radius_km=5, date=DAY))
    assert {r.space.id: r.space.name for r in result.results}[other.id] == "名前を変えた"
    assert catalogue.counts["full"] == before["full"]
    assert catalogue.counts["spaces_refreshed"] == before["spaces_refreshed"] + 1


def test_an_approval_refreshes_the_organisations_spaces(make, space, other):
    assert found() == {space.id, other.id}
    before = dict(catalogue.counts)
    space.organisation.approved_at = None
    db.session.commit()
    hidden = {s.id for s in (space, other) if s.organisation_id == space.organisation_id}
    assert found() == {space.id, other.id} - hidden
    assert catalogue.counts["full"] == before["full"]


def test_edits_of_different_spaces_do_not_wait_for_each_other(space, other, backend):
    """PostgreSQL: the first edit's change-log row is written and its transaction stays
    open; the second, of another space, commits meanwhile (one shared row would have held
    it until the first ended: a lock timeout here). The first commits last, under the
    lower id: the reader still sees it."""
    if backend != "postgresql":
        pytest.skip("SQLite runs one writer at a time")
    assert found() == {space.id, other.id}
    before = dict(catalogue.counts)
    engine = sa.create_engine(db.engine.url)  # two operators' requests elsewhere
    try:
        with Session(engine) as first, Session(engine) as second:
            logged = sa.text("SELECT count(*) FROM catalogue_changes")
            rows = first.execute(logged).scalar()
            first.get(Space, space.id).published = False
            first.flush()
            catalogue._before_commit(first)  # what its commit does first: the log row...
            assert first.execute(logged).scalar() == rows + 1
            second.execute(sa.text("SET LOCAL lock_timeout = '5s'"))
            second.get(Space, other.id).published = False
            second.commit()  # ...and it has not committed: this one did not wait
            db.session.rollback()
            assert found() == {space.id}  # the second is seen, the first is not there yet
            first.commit()
            db.session.rollback()
            assert found() == set()  # committed after a later change: not missed
    finally:
        engine.dispose()
    assert catalogue.counts["full"] == before["full"]
    assert catalogue.counts["spaces_refreshed"] == before["spaces_refreshed"] + 2


def test_campaign_slots_kept_with_it_follow_their_edits(make, space):
    # Search keeps the campaign slots its exact rule read with the held catalogue
    # (detached, read only); a change of a slot or its campaign makes a new catalogue.
    campaign = make.campaign(starts_on=DAY, ends_on=DAY, name="夏")
    slot = make.slot(campaign, make.unit(space, capacity=5, price_amount=800),
                     price_amount=0, seats=4)

    def badge() -> tuple[int, int, str] | None:
        query = SearchQuery(lat=34.9738, lon=138.3866, radius_km=5, date=DAY)
        [result] = search(db.session, query).results
        offers = [u.campaign for u in result.units if u.campaign is not None]
        db.session.rollback()  # the request ends: its session's objects expire
        if not offers:
            return None
        [offer] = offers
        assert offer.slot is not None
        return offer.price_amount, offer.seats_left, offer.slot.campaign.name

    assert badge() == (0, 4, "夏")
    held = catalogue.current(db.session)
    assert slot.id in held.slots
    assert badge() == (0, 4, "夏")  # from what the catalogue keeps
    assert catalogue.current(db.session) is held
    slot.price_amount, slot.seats = 300, 3
    db.session.commit()
    assert badge() == (300, 3, "夏")
    campaign.name = "秋"
    db.session.commit()
    assert badge() == (300, 3, "秋")
    slot.operator_consent = False
    db.session.commit()
    assert badge() is None
