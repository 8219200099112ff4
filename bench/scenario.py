"""What the HTTP benchmarks, the scale-out check and the fault checks book against.

On top of whatever data the generator loaded (or none), `prepare()` adds, through the
application's own services: an approved operator with a desk space in Tokyo open every day,
`units` desk pools of `capacity` seats, one hot unit of `hot_capacity` seats, a company
with a user and an API token (the booker), and a second company with `feed_bookings`
bookings and a calendar feed secret (the .ics benchmark). It returns plain data (ids,
dates, the token, the feed path) for the load generators.
"""

from __future__ import annotations

import json
import random
import secrets
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time, timedelta

import sqlalchemy as sa

from bench.stack import NO_COMPANY_LIMITS, sqlalchemy_url
from booking import clock, create_app

BOOKER_PASSWORD = "bench-password-2019"
OPEN_MIN, CLOSE_MIN = 9 * 60, 18 * 60


@dataclass
class Scenario:
    token: str
    booker_email: str
    unit_ids: list[int]
    hot_unit_id: int
    hot_capacity: int
    dates: list[str]  # YYYY-MM-DD, all open days in the future
    hot_date: str
    space_slug: str
    feed_path: str
    feed_bookings: int
    space_slugs: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Scenario:
        return cls(**json.loads(text))


def app_for(database_url: str, **config):
    """An in-process app on the benchmark's database, for setting up and checking."""
    settings = {"SQLALCHEMY_DATABASE_URI": sqlalchemy_url(database_url), "TESTING": False,
                "RATELIMIT_ENABLED": False, "RATELIMIT_STORAGE_URI": "memory://",
                "LOG_REQUESTS": False, "SECRET_KEY": "bench", **NO_COMPANY_LIMITS}
    settings.update(config)
    return create_app(settings)


def create_schema(app) -> None:
    from booking.extensions import db

    with app.app_context():
        db.create_all()


def prepare(app, *, units: int = 200, capacity: int = 20, days: int = 10, hot_capacity: int = 100,
            feed_bookings: int = 1000, seed: int = 2019) -> Scenario:
    from booking.extensions import db
    from booking.models import (
        Booking,
        BookingStatus,
        OpeningHours,
        OrgKind,
        PricePer,
        Space,
        SpaceKind,
        Unit,
        UnitKind,
    )
    from booking.services import accounts, calendars, tokens
    from booking.services.availability import TOKYO

    rnd = random.Random(seed)
    tag = secrets.token_hex(3)
    with app.app_context():
        session = db.session
        owner = accounts.create_user(session, email=f"operator-{tag}@bench.example.jp",
                                     password=BOOKER_PASSWORD, name="ベンチ運営者",
                                     verified=True)
        operator = accounts.create_organisation(session, owner=owner, kind=OrgKind.OPERATOR,
                                                name=f"ベンチ施設運営{tag}", prefecture_code=13)
        operator.approved_at = clock.now()
        # In Tokyo, but on 父島, where the search mix hardly looks: of its places (drawn by
        # population) only 小笠原 and 二見 are within 50 km, one search in some 70,000.
        # Every run leaves its space, up to 200 free units, in the database: in central
        # Tokyo they were in later searches' reach and first pages.
        space = Space(organisation_id=operator.id, slug=f"bench-{tag}", kind=SpaceKind.COWORKING,
                      name=f"ベンチ・コワーキング東京{tag}", prefecture_code=13, city="小笠原村",
                      address="東京都小笠原村父島字東町", lat=27.0945, lon=142.1915,
                      closed_on_holidays=False, amenities=["wifi"])
        session.add(space)
        session.flush()
        for weekday in range(7):
            session.add(OpeningHours(space_id=space.id, weekday=weekday, opens_min=OPEN_MIN,
                                     closes_min=CLOSE_MIN))
        made = [Unit(space_id=space.id, name=f"デスク{i + 1}", kind=UnitKind.DESK, capacity=capacity,
                     price_amount=1000, price_per=PricePer.DAY) for i in range(units)]
        hot = Unit(space_id=space.id, name="コアデイ・ホール", kind=UnitKind.DESK,
                   capacity=hot_capacity, price_amount=0, price_per=PricePer.DAY)
        session.add_all([*made, hot])

        booker = accounts.create_user(session, email=f"booker-{tag}@bench.example.jp",
                                      password=BOOKER_PASSWORD, name="ベンチ予約者",
                                      verified=True)
        accounts.create_organisation(session, owner=booker, kind=OrgKind.COMPANY,
                                     name=f"ベンチ商事{tag}", prefecture_code=13)
        token, _expires = tokens.issue(session, booker, 24 * 30)

        # The feed company: bookings spread over the units and the days, 1-3 seats each.
        feed_owner = accounts.create_user(session, email=f"feed-{tag}@bench.example.jp",
                                          password=BOOKER_PASSWORD, name="フィード利用者",
                                          verified=True)
        feed_company = accounts.create_organisation(session, owner=feed_owner, kind=OrgKind.COMPANY,
                                                    name=f"フィード商事{tag}", prefecture_code=13)
        session.flush()
        first = clock.today() + timedelta(days=14)
        day_list = [first + timedelta(days=i) for i in range(days)]
        feed_days = [first + timedelta(days=days + i) for i in range(max(1, feed_bookings // 50 + 1))]
        feed_units = made or [hot]
        rows = []
        for i in range(feed_bookings):
            day = feed_days[i % len(feed_days)]
            unit = feed_units[(i * 7) % len(feed_units)]
            start = datetime.combine(day, time(9), TOKYO)
            rows.append(Booking(reference=f"B{tag.upper()}{i:06d}"[:16], unit_id=unit.id,
                                company_id=feed_company.id, user_id=feed_owner.id,
                                starts_at=start, ends_at=start + timedelta(hours=9),
                                seats=rnd.randint(1, 3), price_amount=1000,
                                status=BookingStatus.CONFIRMED, locale="ja"))
        session.add_all(rows)
        secret = calendars.ensure_secret(feed_company)
        session.commit()
        slugs = session.scalars(sa.select(Space.slug).where(Space.published.is_(True))
                                .order_by(Space.id).limit(5000)).all()
        return Scenario(
            token=token, booker_email=booker.email, unit_ids=[u.id for u in made],
            hot_unit_id=hot.id, hot_capacity=hot_capacity, dates=[d.isoformat() for d in day_list],
            hot_date=day_list[0].isoformat(), space_slug=space.slug,
            feed_path=f"/calendar/{secret}.ics", feed_bookings=feed_bookings, space_slugs=list(slugs),
        )


def booked_seats(app, unit_id: int, day: str) -> dict:
    """Seats held on a unit on a day, and the number of bookings, straight from the table."""
    from booking.extensions import db
    from booking.models import HOLDING_STATUSES, Booking
    from booking.services.availability import TOKYO

    start = datetime.combine(date.fromisoformat(day), time(0), TOKYO)
    with app.app_context():
        seats, count = db.session.execute(
            sa.select(sa.func.coalesce(sa.func.sum(Booking.seats), 0), sa.func.count(Booking.id))
            .where(Booking.unit_id == unit_id, Booking.status.in_(HOLDING_STATUSES),
                   Booking.starts_at >= start, Booking.starts_at < start + timedelta(days=1))
        ).one()
        return {"seats": int(seats), "bookings": int(count)}


def over_capacity(app, unit_ids: list[int]) -> list[dict]:
    """Those units' days on which held seats exceed capacity (must be empty). The scenario
    books whole days, so bookings of a unit and day share their start."""
    from booking.extensions import db

    with app.app_context():
        rows = db.session.execute(sa.text(
            "SELECT b.unit_id, b.starts_at, SUM(b.seats) AS seats, u.capacity "
            "FROM bookings b JOIN units u ON u.id = b.unit_id "
            "WHERE b.status IN ('confirmed', 'checked_in', 'no_show') AND b.unit_id = ANY(:ids) "
            "GROUP BY b.unit_id, b.starts_at, u.capacity HAVING SUM(b.seats) > u.capacity"
        ), {"ids": list(unit_ids)}).all()
        return [dict(r._mapping) for r in rows]


def booker_rows(app, email: str) -> int:
    """Bookings made by the benchmark's booker (through the API) that are in the table."""
    from booking.extensions import db
    from booking.models import Booking, User

    with app.app_context():
        return int(db.session.scalar(
            sa.select(sa.func.count(Booking.id)).join(User, User.id == Booking.user_id)
            .where(User.email == email)) or 0)


def sell_out_seconds(app, unit_id: int, day: str) -> float | None:
    """From the first to the last booking of a unit on a day (created_at): how long the
    rush took to sell the seats."""
    from booking.extensions import db
    from booking.models import Booking
    from booking.services.availability import TOKYO

    start = datetime.combine(date.fromisoformat(day), time(0), TOKYO)
    with app.app_context():
        first, last = db.session.execute(
            sa.select(sa.func.min(Booking.created_at), sa.func.max(Booking.created_at))
            .where(Booking.unit_id == unit_id, Booking.starts_at >= start,
                   Booking.starts_at < start + timedelta(days=1))).one()
        return round((last - first).total_seconds(), 3) if first and last else None
