"""Helpers the booking tests share: a day ahead in Tokyo, the small world they book in, and
room for racers on PostgreSQL."""

from __future__ import annotations

import time
from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from booking import clock
from booking.extensions import db
from booking.models import OrgKind
from booking.services import tokens
from tests.factories import Factory


def future_day(days: int = 10) -> date:
    """Tokyo's date `days` from today: by default far enough ahead for any lead time."""
    return clock.today() + timedelta(days=days)


def world(make: Factory, *, capacity: int = 10, price: int = 1000, owner: bool = False,
          token: bool = False, **space) -> dict:
    """A company with its booker, and an operator's space with one desk unit (per day).

    Keys: company, booker, org (the operator), space, desks; with owner=True also owner
    (the operator's owner), with token=True also headers (the booker's API bearer token).
    Other keywords go to make.space (hours=..., name=...).
    """
    company = make.company(name="デモ商事")
    booker = make.user("booker@example.jp", organisation=company, name="予約 太郎")
    org = make.organisation(OrgKind.OPERATOR, name="エニシア静岡")
    space = make.space(org, **{"name": "テレワーク静岡", **space})
    desks = make.unit(space, name="フリーデスク", capacity=capacity, price_amount=price)
    out = {"company": company, "booker": booker, "org": org, "space": space, "desks": desks}
    if owner:
        out["owner"] = make.user(organisation=org, role="owner", name="運営 太郎")
    if token:
        secret, _ = tokens.issue(db.session, booker, 1)
        db.session.commit()
        out["headers"] = {"Authorization": f"Bearer {secret}"}
    return out


def wait_for_connections(racers: int) -> None:
    """PostgreSQL: wait (30 s at most) until `racers` more connections fit in its 100. The
    last racing test closed theirs just before, but their server processes can take a
    moment to end, and until then they count ("too many clients" in a busy CI run). When
    they never free up, the test fails here, saying who holds them, rather than racing
    into "too many clients"."""
    if db.engine.dialect.name != "postgresql":
        return
    limit = 97 - racers  # 100 less superuser_reserved_connections
    for _ in range(300):
        busy = db.session.scalar(sa.text(
            "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'"))
        db.session.rollback()
        if busy <= limit:
            return
        time.sleep(0.1)
    holders = db.session.execute(sa.text(
        "SELECT coalesce(datname, '?'), coalesce(application_name, ''), state, count(*) "
        "FROM pg_stat_activity WHERE backend_type = 'client backend' "
        "GROUP BY 1, 2, 3 ORDER BY 4 DESC")).all()
    db.session.rollback()
    pytest.fail(f"PostgreSQL still had {busy} client connections after 30 s; {racers} "
                f"racers need at most {limit} open before they start, or they would meet "
                f"'too many clients' instead of each other. Who holds them "
                f"(database, application, state, count): {holders}")


def next_weekday(wanted: int, days: int = 7) -> date:
    """The first `wanted` weekday (Monday = 0) at least `days` days from today."""
    day = clock.today() + timedelta(days=days)
    while day.weekday() != wanted:
        day += timedelta(days=1)
    return day
