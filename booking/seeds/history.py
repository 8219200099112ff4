"""The demo's past: companies booking across Telework Days 2019 and the weeks around today.

`flask seed` loads it after booking/seeds/demo.py, so that a newcomer's reports (効果測定), day
lists, month views and "my bookings" show real figures. Everything is made by the
services a user goes through: booking_requests.place (which decides through
reservations.book), reservations.check_in, mark_no_show and cancel. So every rule holds:
seats, opening hours, campaign windows and limits, the outside-prefecture rule, the
company limits, the cancellation deadline. Those services refuse a start in the past, so
each step runs as of the moment it happened (booking.clock.as_of): a booking made a few
days before its day, a check-in at the start of the day, a no-show marked a couple of
hours in, a cancellation before the unit's deadline. The steps run in time order, each
decided and committed on its own, as requests are.

What it holds (demo values; only the 2019 campaign comes from the documents):
- six companies besides デモ商事 (Tokyo 千代田区 and 港区, Kanagawa, Osaka, Saitama, and
  one of Shizuoka, which the city's trial does not admit), each with one or two users
  who log in with the demo password. Office positions are approximate (the reports'
  commuting estimate reads them).
- 2019: おあしす 7/23–26, Koto and テレワークセンター徳島 during the period, the Shizuoka
  trial at エニシア静岡 (subsidised, pocket Wi-Fi lent), and a few regular bookings.
- The regular offers of the demo spaces from three weeks before today to the week after
  next (regulars booking their days of the week in one request, and drop-ins): past days
  checked in, with a few no-shows and cancellations; today and later confirmed (a few
  cancelled). Check-ins and no-shows are recorded by the space's front desk where the
  demo has an account for it (operator@, city@, komagane@example.jp), else the company
  checks in itself; team bookings invite colleagues (made-up addresses).

Deterministic: random.Random(SEED), the recent weeks laid out from clock.today(), 2019 on
its fixed dates. Idempotent: each booking carries the idempotency key "demo-history:<n>"
(as a retried API request does); when any such key exists the history is there already
and is not loaded again, whatever the day.

Mail: the services queue a confirmation (and a reminder, a cancellation) for everyone
each booking invites. The addresses are made up (*.example.jp), so once the history is
loaded the outbox rows of its bookings are deleted: the seed sends no mail.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import random
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session, selectinload

from booking import clock
from booking.models import (
    Booking,
    Campaign,
    CampaignExtra,
    CampaignSlot,
    IdempotencyRecord,
    Membership,
    Organisation,
    OrgKind,
    OutboxMessage,
    Role,
    Space,
    TeleworkCategory,
    Unit,
    User,
)
from booking.seeds import demo
from booking.services import accounts, booking_requests, cancellation, reservations
from booking.services.availability import TOKYO, at, regular_window, slot_window
from booking.services.errors import DomainError

log = logging.getLogger(__name__)

SEED = 2019  # the random layout's seed: the same history every time
KEY_PREFIX = "demo-history:"
# When the companies registered (10:00 in Tokyo), before the 2019 campaign.
JOINED = datetime(2019, 5, 7, 1, 0, tzinfo=UTC)
DAYS_BEFORE = 21  # the recent weeks: from three weeks before today …
DAYS_AFTER = 9  # … to the week after next
ADMIN = "admin@example.jp"
COLLEAGUES = ("ito", "kato", "sato", "mori", "abe", "ueda", "ono", "endo")


@dataclass(frozen=True)
class Company:
    key: str
    name: str
    name_en: str
    prefecture: int
    address: str
    lat: float  # approximate: the district's position
    lon: float
    domain: str  # the users' and colleagues' made-up addresses (example.jp is reserved)
    users: tuple[tuple[str, str], ...]  # (local part, name)
    core_day_staff: int  # staff teleworking on the core day, as the company registered it
    category: TeleworkCategory = TeleworkCategory.IMPLEMENTING

    @property
    def emails(self) -> list[str]:
        return [f"{local}@{self.domain}" for local, _name in self.users]


COMPANIES = (
    Company("otemachi", "大手町コンサルティング株式会社", "Otemachi Consulting Co., Ltd.", 13,
            "東京都千代田区大手町1-6", 35.6870, 139.7640, "otemachi-consulting.example.jp",
            (("hayashi", "林 美咲"), ("kondo", "近藤 大輔")), 120, TeleworkCategory.SPECIAL),
    Company("minato", "港デジタル株式会社", "Minato Digital Inc.", 13, "東京都港区芝浦3-4",
            35.6420, 139.7480, "minato-digital.example.jp", (("ishikawa", "石川 翔"),), 25),
    Company("yokohama", "横浜みなとソフト株式会社", "Yokohama Minato Soft Co., Ltd.", 14,
            "神奈川県横浜市西区みなとみらい2-3", 35.4570, 139.6320, "yokohama-soft.example.jp",
            (("ogawa", "小川 真由"),), 12),
    Company("osaka", "なにわ設計株式会社", "Naniwa Design Co., Ltd.", 27,
            "大阪府大阪市北区梅田1-2", 34.7020, 135.4960, "naniwa-design.example.jp",
            (("fujii", "藤井 拓也"), ("nishida", "西田 彩")), 8),
    Company("saitama", "大宮ロジスティクス株式会社", "Omiya Logistics Co., Ltd.", 11,
            "埼玉県さいたま市大宮区桜木町1-7", 35.9060, 139.6240, "omiya-logistics.example.jp",
            (("kimura", "木村 恵"),), 30),
    Company("suruga", "駿河テック株式会社", "Suruga Tech Co., Ltd.", 22,
            "静岡県静岡市駿河区南町10-5", 34.9690, 138.3890, "suruga-tech.example.jp",
            (("mochizuki", "望月 悠"),), 6),
)
# The first wave's demo company books too (company@example.jp logs in and sees its past).
DEMO_COMPANY = "demo"
DEMO_BOOKER = "company@example.jp"
DEMO_COLLEAGUES = "demo-shoji.example.jp"

# (space slug, unit name) of booking/seeds/demo.py
DESKS = ("enishia-shizuoka", "コワーキング席")
MEETING = ("enishia-shizuoka", "会議室")
PRIVATE = ("enishia-shizuoka", "個室")
SEMINAR = ("enishia-shizuoka", "セミナールーム")
LOUNGE = ("coterrace-shichikencho", "コワーキングラウンジ")
COTERRACE_ROOM = ("coterrace-shichikencho", "会議室")
ICHIBOSHI = ("ichiboshi-hr-studio", "2階コワーキング")
KOTO_PAID = ("koto-komagane", "ワーケーション利用デスク(有償)")
KOTO_MEMBERS = ("koto-komagane", "会員デスク")
OASIS = ("oasis-yoshikawa", "ミーティングルーム(臨時テレワークオフィス)")
TOKUSHIMA = ("telework-center-tokushima", "研修室(コワーキング)")
HOUSES = [("nihon-iro-mochimune", f"古民家 {n}棟目") for n in range(1, 7)]

CHECK_IN, NO_SHOW, CANCEL = "check_in", "no_show", "cancel"
Outcome = tuple[str, datetime] | None


# --------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class Step:
    """One booking request of the history, and what became of each booking it made."""

    booker: str  # e-mail of the user who books
    unit: tuple[str, str]
    booked_at: datetime
    days: tuple[date, ...]  # one booking per day; a stay's or hourly booking's first day
    hours: tuple[int, int] | None = None  # an hourly room: minutes after midnight
    nights: int = 0  # a whole house: nights from days[0]
    seats: int = 1
    attendees: tuple[str, ...] = ()
    campaign: str | None = None  # booked through this campaign's slot on the unit
    wifi: int = 0  # the campaign's pocket Wi-Fi lent with it
    outcomes: tuple[Outcome, ...] = ()  # one per booking, in the order of their days

    def request_hash(self) -> str:
        """What the idempotency record keeps of the request (the key is its position)."""
        return hashlib.sha256(repr((self.booker, self.unit, self.days, self.hours, self.nights,
                                    self.seats, self.attendees, self.campaign,
                                    self.wifi)).encode()).hexdigest()


@dataclass
class World:
    """What the plan reads of the database: the units, the slots and who runs each space."""

    units: dict[tuple[str, str], Unit]
    slots: dict[tuple[str, tuple[str, str]], CampaignSlot]  # (campaign slug, unit key)
    operators: dict[str, str]  # space slug -> the e-mail of a member of its organisation
    bookers: dict[str, list[str]]  # company key -> its users' e-mails
    colleagues: dict[str, list[str]]  # company key -> made-up addresses of its staff
    today: date
    cutoff: datetime  # the start of today in Tokyo: everything that happened, happened before


@dataclass
class Planner:
    """Lays out the steps, keeping to every unit's seats so that nothing is refused."""

    world: World
    rng: random.Random
    steps: list[Step] = field(default_factory=list)
    taken: dict[tuple, int] = field(default_factory=lambda: defaultdict(int))
    hours_taken: dict[tuple, list[tuple[int, int]]] = field(
        default_factory=lambda: defaultdict(list))

    # ------------------------------------------------------------------ windows

    def window(self, unit_key: tuple[str, str], day: date,
               campaign: str | None = None) -> tuple[datetime, datetime] | None:
        """The day's booking window of the unit (through the campaign's slot), or None."""
        unit = self.world.units[unit_key]
        if campaign is not None:
            return slot_window(self.world.slots[(campaign, unit_key)], day, unit)
        if unit.members_only:
            return None
        return regular_window(unit, day)

    def booked_at(self, first_day: date, days_before: int) -> datetime:
        """A moment `days_before` days before the first day (but before today), 8:00–22:00."""
        day = min(first_day - timedelta(days=days_before), self.world.today - timedelta(days=1))
        return at(day, 8 * 60 + self.rng.randrange(14 * 60))

    def outcome(self, kind: str | None, booked: datetime, start: datetime, end: datetime,
                deadline: datetime) -> Outcome:
        """When `kind` happened to a booking of [start, end) made at `booked`; what the
        clock allows (nothing from today on, a company cancels before the deadline)."""
        cutoff = self.world.cutoff
        if kind == CANCEL:
            latest = min(deadline, cutoff - timedelta(minutes=5))
            if latest - booked >= timedelta(hours=1):
                spread = (latest - booked).total_seconds() * self.rng.uniform(0.2, 0.8)
                return CANCEL, (booked + timedelta(seconds=spread)).replace(second=0,
                                                                             microsecond=0)
            kind = CHECK_IN
        if end > cutoff:  # not over before today: nothing has happened to it yet
            return None
        if kind == CHECK_IN:
            moment = start + timedelta(minutes=self.rng.randint(-10, 40))
            opens = at(start.astimezone(TOKYO).date(), 0)
            return CHECK_IN, min(max(moment, opens), end - timedelta(minutes=1))
        if kind == NO_SHOW:
            return NO_SHOW, start + min(timedelta(hours=2, minutes=30), (end - start) / 2)
        return None

    # ------------------------------------------------------------------ steps

    def team(self, company: str, people: int) -> tuple[str, ...]:
        return tuple(self.world.colleagues[company][:max(people, 0)])

    def days(self, company: str, unit_key: tuple[str, str], days: Sequence[date], seats: int,
             kinds: Sequence[str | None], *, campaign: str | None = None,
             per_company_day: int | None = None, wifi: int = 0, days_before: int = 0,
             team: bool = True) -> None:
        """Book `seats` of a day unit on `days` (those that are open and have the seats;
        the rest are left out), each with its outcome kind. A team of three or more names
        its colleagues as attendees (unless `team` is False)."""
        unit = self.world.units[unit_key]
        slot = self.world.slots[(campaign, unit_key)] if campaign else None
        chosen: list[tuple[date, tuple[datetime, datetime], str | None]] = []
        for day, kind in zip(days, kinds, strict=True):
            window = self.window(unit_key, day, campaign)
            if window is None or self.taken[(unit_key, day)] + seats > unit.capacity:
                continue
            if slot is not None and self.taken[(slot.id, day)] + seats > slot.seats:
                continue
            if per_company_day and self.taken[(slot and slot.id, company, day)] + seats \
                    > per_company_day:
                continue
            chosen.append((day, window, kind))
        if not chosen:
            return
        booked = self.booked_at(chosen[0][0], days_before or self.rng.randint(1, 12))
        outcomes = []
        for day, (start, end), kind in chosen:
            self.taken[(unit_key, day)] += seats
            if slot is not None:
                self.taken[(slot.id, day)] += seats
                self.taken[(slot.id, company, day)] += seats
            outcomes.append(self.outcome(kind, booked, start, end, cancellation.deadline_of(unit, start)))
        self.steps.append(Step(
            booker=self.rng.choice(self.world.bookers[company]), unit=unit_key, booked_at=booked,
            days=tuple(d for d, _w, _k in chosen), seats=seats,
            attendees=self.team(company, seats - 1) if team and seats >= 3 else (),
            campaign=campaign,
            wifi=wifi, outcomes=tuple(outcomes)))

    def hours(self, company: str, unit_key: tuple[str, str], day: date, start_min: int,
              end_min: int, people: int, kind: str | None) -> None:
        """Book an hourly room whole, when it is open and free then."""
        window = self.window(unit_key, day)
        start, end = at(day, start_min), at(day, end_min)
        taken = self.hours_taken[(unit_key, day)]
        if window is None or start < window[0] or end > window[1] or any(
                s < end_min and start_min < e for s, e in taken):
            return
        taken.append((start_min, end_min))
        unit = self.world.units[unit_key]
        booked = self.booked_at(day, self.rng.randint(1, 10))
        self.steps.append(Step(
            booker=self.rng.choice(self.world.bookers[company]), unit=unit_key, booked_at=booked,
            days=(day,), hours=(start_min, end_min), attendees=self.team(company, people),
            outcomes=(self.outcome(kind, booked, start, end, cancellation.deadline_of(unit, start)),)))

    def stay(self, company: str, unit_key: tuple[str, str], first: date, nights: int,
             people: int, kind: str | None) -> None:
        """Rent a house whole for `nights`, when every night is free."""
        unit = self.world.units[unit_key]
        span = [first + timedelta(days=n) for n in range(nights)]
        if any(self.taken[(unit_key, night)] for night in span):
            return
        for night in span:
            self.taken[(unit_key, night)] = 1
        start, end = reservations.nights_period(unit, first, nights)
        booked = self.booked_at(first, self.rng.randint(4, 20))
        self.steps.append(Step(
            booker=self.rng.choice(self.world.bookers[company]), unit=unit_key, booked_at=booked,
            days=(first,), nights=nights, attendees=self.team(company, people),
            outcomes=(self.outcome(kind, booked, start, end, cancellation.deadline_of(unit, start)),)))


def _past_kind(rng: random.Random, no_shows: bool = True) -> str:
    """What became of a past booking: mostly a check-in, a few cancellations and no-shows."""
    draw = rng.random()
    if draw < 0.07:
        return CANCEL
    if draw < 0.12 and no_shows:
        return NO_SHOW
    return CHECK_IN


def _kind(rng: random.Random, day: date, today: date, no_shows: bool = True) -> str | None:
    if day < today:
        return _past_kind(rng, no_shows)
    return CANCEL if rng.random() < 0.08 else None


def plan_2019(p: Planner) -> None:
    """Telework Days 2019 on its real dates (seed-facts.md), booked in the weeks before."""
    ci, ns, cx = CHECK_IN, NO_SHOW, CANCEL
    oasis = "telework-days-2019-yoshikawa"
    d = date
    # おあしす, free, 7/23–26, at most 5 seats per company a day (the slot's rule); most
    # companies book their days in one request, 大手町 its team of five on the core day.
    oasis_days = [d(2019, 7, 23), d(2019, 7, 24), d(2019, 7, 25), d(2019, 7, 26)]
    for company, days, seats, kinds in [
        ("otemachi", [0, 2, 3], 3, [ci, ci, ci]),
        ("otemachi", [1], 5, [ci]),
        ("minato", [0, 1, 2], 2, [ci, ci, ci]),
        ("saitama", [0, 1, 2, 3], 2, [ci, ci, ns, ci]),
        (DEMO_COMPANY, [0, 1, 3], 2, [ci, ci, ci]),
        ("yokohama", [1, 2, 3], 1, [ci, ci, cx]),
    ]:
        p.days(company, OASIS, [oasis_days[i] for i in days], seats, kinds, campaign=oasis,
               per_company_day=5)

    def run(first: date, count: int) -> list[date]:
        return [first + timedelta(days=n) for n in range(count)]

    # Koto, members' desks opened to anyone during the period (workations of a few days).
    koto = "telework-days-2019-komagane"
    for company, first, count, seats, kinds in [
        (DEMO_COMPANY, d(2019, 7, 29), 2, 1, [ci, ci]),
        ("yokohama", d(2019, 8, 1), 2, 1, [ci, ns]),
        ("osaka", d(2019, 8, 20), 3, 1, [ci, ci, ci]),
        ("otemachi", d(2019, 8, 26), 2, 3, [ci, ci]),
    ]:
        p.days(company, KOTO_MEMBERS, run(first, count), seats, kinds, campaign=koto,
               days_before=p.rng.randint(7, 20))
    # テレワークセンター徳島's training room as coworking.
    tokushima = "telework-days-2019-tokushima"
    for company, first, count, seats in [
        ("osaka", d(2019, 7, 22), 3, 3), ("otemachi", d(2019, 7, 24), 1, 4),
        ("minato", d(2019, 8, 19), 2, 1),
    ]:
        p.days(company, TOKUSHIMA, run(first, count), seats, [ci] * count, campaign=tokushima,
               days_before=p.rng.randint(5, 15))
    # 静岡市's trial at エニシア静岡: companies from outside the prefecture, fees paid by
    # the city up to its cap; pocket Wi-Fi lent to some.
    trial = "shizuoka-trial-2019"
    for company, first, count, seats, kinds, wifi in [
        ("minato", d(2019, 7, 22), 1, 1, [ci], 1),
        ("yokohama", d(2019, 7, 23), 1, 2, [ci], 0),
        ("otemachi", d(2019, 7, 24), 1, 2, [ci], 1),
        (DEMO_COMPANY, d(2019, 7, 24), 1, 1, [ci], 0),
        ("saitama", d(2019, 7, 25), 1, 1, [ci], 0),
        ("minato", d(2019, 7, 29), 3, 1, [ci, ci, ci], 0),
        ("yokohama", d(2019, 8, 1), 1, 1, [ns], 0),
        (DEMO_COMPANY, d(2019, 8, 5), 1, 2, [ci], 1),
        ("saitama", d(2019, 8, 21), 1, 1, [cx], 0),
    ]:
        p.days(company, DESKS, run(first, count), seats, kinds, campaign=trial, wifi=wifi)
    # A Shizuoka company is not admitted to the trial: it books the desks at their price.
    p.days("suruga", DESKS, [d(2019, 7, 24), d(2019, 7, 25)], 2, [ci, ci])
    p.hours("otemachi", MEETING, d(2019, 7, 24), 13 * 60, 15 * 60, 4, ci)


def plan_recent(p: Planner) -> None:
    """The regular offers from DAYS_BEFORE days before today to DAYS_AFTER days after:
    regulars who book their days of the week in one request, and drop-ins."""
    rng, today = p.rng, p.world.today
    first, last = today - timedelta(days=DAYS_BEFORE), today + timedelta(days=DAYS_AFTER)

    def week(monday: date, weekdays: Iterable[int]) -> list[date]:
        return [day for w in weekdays if first <= (day := monday + timedelta(days=w)) <= last]

    def kinds(days: Sequence[date], no_shows: bool = True) -> list[str | None]:
        return [_kind(rng, day, today, no_shows) for day in days]

    anyone = [DEMO_COMPANY, "otemachi", "minato", "yokohama", "osaka", "saitama", "suruga"]
    travelling = [DEMO_COMPANY, "otemachi", "minato", "osaka", "yokohama"]
    monday = first - timedelta(days=first.weekday())
    while monday <= last:
        # エニシア静岡's regulars (its operator, operator@example.jp, keeps the front desk).
        for company, weekdays, seats in (("suruga", range(5), 3), (DEMO_COMPANY, (1, 3), 1),
                                         ("minato", (2,), 4)):
            days = week(monday, weekdays)
            p.days(company, DESKS, days, seats, kinds(days))
        # コテラス七間町 and いちぼし have no front-desk account in the demo: the companies
        # check in themselves, and nobody marks a no-show.
        days = week(monday, (0, 2))
        p.days("yokohama", LOUNGE, days, 1, kinds(days, no_shows=False))
        days = week(monday, (1, 2))
        p.days("saitama", ICHIBOSHI, days, 1, kinds(days, no_shows=False))
        # Koto's paid desks (駒ヶ根市, komagane@example.jp): a workation every other week.
        if rng.random() < 0.5:
            days = week(monday, (1, 2, 3))
            p.days(rng.choice(travelling), KOTO_PAID, days, rng.choice((1, 2)), kinds(days))
        # 日本色: a weekend retreat in a house rented whole.
        friday = monday + timedelta(days=4)
        if rng.random() < 0.6 and first <= friday <= last:
            p.stay(rng.choice(travelling), rng.choice(HOUSES), friday, 2, rng.randint(2, 4),
                   _kind(rng, friday, today, no_shows=False))
        monday += timedelta(weeks=1)
    # Drop-ins, day by day.
    for n in range(-DAYS_BEFORE, DAYS_AFTER + 1):
        day = today + timedelta(days=n)
        if day.weekday() >= 5:
            if rng.random() < 0.5:
                p.days(rng.choice(anyone), rng.choice((DESKS, LOUNGE)), [day], 1,
                       [_kind(rng, day, today, no_shows=False)])
            continue
        if rng.random() < 0.6:
            p.days(rng.choice(anyone), DESKS, [day], rng.choice((1, 1, 2, 4)),
                   [_kind(rng, day, today)])
        if rng.random() < 0.4:
            start = rng.choice((10 * 60, 13 * 60, 15 * 60))
            p.hours(rng.choice(anyone), MEETING, day, start, start + 2 * 60, rng.randint(1, 3),
                    _kind(rng, day, today))
        if rng.random() < 0.2:
            p.days(rng.choice(anyone), PRIVATE, [day], 1, [_kind(rng, day, today)], team=False)
        if day.weekday() == 3 and rng.random() < 0.5:
            p.hours(rng.choice(anyone), SEMINAR, day, 13 * 60, 17 * 60, 4,
                    _kind(rng, day, today))


def plan(world: World) -> list[Step]:
    """The whole history, in the order it was laid out (run_steps puts it in time order)."""
    planner = Planner(world, random.Random(SEED))
    if world.today > date(2019, 9, 6):  # 2019 is history only once it is over
        plan_2019(planner)
    plan_recent(planner)
    return planner.steps


# --------------------------------------------------------------------------- loading


def ensure_companies(session: Session) -> dict[str, int]:
    """The history's companies and their users (found by name and e-mail, made when
    missing), registered as of JOINED."""
    created = {"organisations": 0, "users": 0, "memberships": 0}
    with clock.as_of(JOINED):
        for spec in COMPANIES:
            org, new = demo.get_or_add(
                session, Organisation, {"name": spec.name}, name_en=spec.name_en,
                kind=OrgKind.COMPANY, prefecture_code=spec.prefecture, address=spec.address,
                lat=spec.lat, lon=spec.lon, approved_at=clock.now(),
                telework_category=spec.category, core_day_staff=spec.core_day_staff)
            created["organisations"] += new
            for n, (local, name) in enumerate(spec.users):
                email = f"{local}@{spec.domain}"
                user = session.scalar(sa.select(User).where(User.email == email))
                if user is None:
                    user = accounts.create_user(session, email=email, password=demo.DEMO_PASSWORD,
                                                name=name, verified=True)
                    created["users"] += 1
                _m, new = demo.get_or_add(session, Membership,
                                          {"user_id": user.id, "organisation_id": org.id},
                                          role=Role.OWNER if n == 0 else Role.STAFF)
                created["memberships"] += new
    return created


def accounts_listed() -> list[tuple[str, str]]:
    """(e-mail, company) of the history's users, for `flask seed` to print."""
    return [(f"{local}@{c.domain}", c.name) for c in COMPANIES for local, _name in c.users]


def world_of(session: Session) -> World:
    """The demo's units, slots and accounts as the plan reads them, on clock.today()."""
    today = clock.today()
    units = {
        (space.slug, unit.name): unit
        for space in session.scalars(sa.select(Space).options(
            selectinload(Space.units), selectinload(Space.opening_hours)))
        for unit in space.units
    }
    slots = {
        (campaign.slug, (slot.unit.space.slug, slot.unit.name)): slot
        for campaign in session.scalars(sa.select(Campaign).options(
            selectinload(Campaign.slots).selectinload(CampaignSlot.unit)
            .selectinload(Unit.space)))
        for slot in campaign.slots
    }
    operators: dict[str, str] = {}
    for slug, email in session.execute(
            sa.select(Space.slug, User.email)
            .join(Membership, Membership.organisation_id == Space.organisation_id)
            .join(User, User.id == Membership.user_id)
            .order_by(Membership.id.desc())):
        operators[slug] = email  # the first member of the organisation wins
    bookers = {c.key: c.emails for c in COMPANIES}
    bookers[DEMO_COMPANY] = [DEMO_BOOKER]
    colleagues = {c.key: [f"{x}@{c.domain}" for x in COLLEAGUES] for c in COMPANIES}
    colleagues[DEMO_COMPANY] = [f"{x}@{DEMO_COLLEAGUES}" for x in COLLEAGUES]
    return World(units=units, slots=slots, operators=operators, bookers=bookers,
                 colleagues=colleagues, today=today, cutoff=at(today, 0))


def _request(step: Step, unit: Unit, extras: dict[int, int]) -> booking_requests.BookingRequest:
    """The step as the booking page or the API would ask for it."""
    asked = booking_requests.BookingRequest(
        unit_id=unit.id, seats=step.seats, attendees=step.attendees, campaign=step.campaign,
        extras=extras)
    first = step.days[0]
    if step.hours is not None:
        return replace(asked, start=at(first, step.hours[0]), end=at(first, step.hours[1]))
    if step.nights:
        return replace(asked, first_date=first, nights=step.nights)
    if len(step.days) == 1:
        return replace(asked, first_date=first)
    return replace(asked, dates=step.days)


@dataclass
class Counts:
    bookings: int = 0
    check_ins: int = 0
    no_shows: int = 0
    cancellations: int = 0
    refused: list[str] = field(default_factory=list)  # what a service refused (none, normally)


def run_steps(session: Session, world: World, steps: Sequence[Step]) -> tuple[Counts, list[int]]:
    """Every step and outcome in time order, each as of its moment and committed on its
    own; (what was done, the ids of the bookings made)."""
    user_ids: dict[str, int] = dict(session.execute(sa.select(User.email, User.id)).all())
    wifi = {campaign.slug: extra.id for extra, campaign in session.execute(
        sa.select(CampaignExtra, Campaign).join(Campaign))}
    events: list[tuple[datetime, int, int, int]] = []
    for n, step in enumerate(steps):
        events.append((step.booked_at, 0, n, -1))
        events += [(o[1], 1, n, k) for k, o in enumerate(step.outcomes) if o is not None]
    events.sort()
    counts, made = Counts(), {}

    def user(email: str) -> User:
        found = session.get(User, user_ids[email])
        assert found is not None
        return found

    for instant, _order, n, k in events:
        step = steps[n]
        with clock.as_of(instant):
            try:
                if k < 0:
                    unit = world.units[step.unit]
                    extras = {wifi[step.campaign]: step.wifi} if step.wifi and step.campaign else {}
                    key = f"{KEY_PREFIX}{n}"
                    bookings = booking_requests.place(
                        session, user(step.booker), _request(step, unit, extras),
                        idempotency=reservations.Idempotency(
                            key, step.request_hash(),
                            lambda made: (201, {"references": [b.reference for b in made]})))
                    made[n] = [b.id for b in sorted(bookings, key=lambda b: b.starts_at)]
                    counts.bookings += len(bookings)
                elif n in made and k < len(made[n]):
                    booking = session.get(Booking, made[n][k])
                    assert booking is not None
                    kind = step.outcomes[k][0]  # type: ignore[index]  # events have outcomes
                    space = step.unit[0]
                    if kind == CHECK_IN:
                        reservations.check_in(session, booking,
                                              user(world.operators.get(space, step.booker)))
                        counts.check_ins += 1
                    elif kind == NO_SHOW:
                        reservations.mark_no_show(session, booking,
                                                  user(world.operators.get(space, ADMIN)))
                        counts.no_shows += 1
                    else:
                        reservations.cancel(session, booking, user(step.booker))
                        counts.cancellations += 1
                session.commit()
            except (DomainError, reservations.Replay) as refused:
                session.rollback()
                counts.refused.append(f"{KEY_PREFIX}{n}/{k} {step.unit[1]} "
                                      f"{step.days[0]}: {getattr(refused, 'code', 'replay')}")
    return counts, [i for ids in made.values() for i in ids]


def _unsend(session: Session, booking_ids: Iterable[int]) -> None:
    """The history's mail is not sent: its outbox rows go (made-up addresses)."""
    ids = list(booking_ids)
    for first in range(0, len(ids), 500):
        session.execute(sa.delete(OutboxMessage).where(
            OutboxMessage.booking_id.in_(ids[first:first + 500])))
    session.commit()


def loaded(session: Session) -> bool:
    """Whether the history is in the database already (its idempotency keys are)."""
    return session.scalar(sa.select(IdempotencyRecord.id).where(
        IdempotencyRecord.key.startswith(KEY_PREFIX)).limit(1)) is not None


@contextlib.contextmanager
def _commits_without_waiting(session: Session) -> Iterator[None]:
    """The history is a few hundred small transactions: while it loads, a commit does not
    wait for the disk (SQLite: synchronous OFF; PostgreSQL: synchronous_commit off).
    A crash of the machine in the middle loses the demo's history, never its
    consistency; the setting is the connection's and is put back afterwards."""
    conn = session.connection()
    if conn.dialect.name == "sqlite":
        before = conn.exec_driver_sql("PRAGMA synchronous").scalar()
        conn.exec_driver_sql("PRAGMA synchronous = OFF")
        undo = f"PRAGMA synchronous = {int(before or 2)}"
    else:
        conn.exec_driver_sql("SET synchronous_commit = off")
        undo = "RESET synchronous_commit"
    session.commit()
    try:
        yield
    finally:
        session.rollback()
        session.connection().exec_driver_sql(undo)
        session.commit()


def load(session: Session) -> dict[str, int]:
    """Loads the history (after booking/seeds/demo.py's load, committed); returns how many rows of
    each kind it made. Nothing when it is there already."""
    created = ensure_companies(session)
    session.commit()
    if loaded(session):
        return created
    with _commits_without_waiting(session):
        world = world_of(session)
        counts, booking_ids = run_steps(session, world, plan(world))
        _unsend(session, booking_ids)
    if counts.refused:  # a rule changed under the plan: say so rather than hide it
        created["refused"] = len(counts.refused)
        for line in counts.refused:
            log.warning("demo history: refused %s", line)
    return {**created, "bookings": counts.bookings, "check_ins": counts.check_ins,
            "no_shows": counts.no_shows, "cancellations": counts.cancellations}

