"""The integrity races of issue 17 through two app servers (findings 2 and 3).

    .venv/bin/python -m bench.scale_out_races [--rounds 20]

Starts two gunicorn servers (the production booking/gunicorn_conf.py) on one fresh database of
its own on the machine's PostgreSQL and the machine's Redis (key prefix of its own), sets
up the world in process (accounts, organisations and tokens through the services; space,
units, campaign and slots as bench/scenario.py does), then for `--rounds` rounds:

- campaign: a campaign with one slot on each of 4 units, one booking per company, the
  municipality paying at most 500 yen of a booking. A new company per round with two
  members sends 8 bookings at once (every unit, both members, API Bearer tokens), split
  between the servers: exactly one must be answered 201, the 7 others 403;
- check-in vs cancel: a fresh unit with 4 bookings of today (from a few minutes ahead to
  midnight, cancellable until their start). For each booking, the operator's check-in
  (the console's HTML form, logged-in session and CSRF token) and the company's cancel
  (DELETE /api/v1/bookings/<ref>) race, on different servers, with two new API bookings
  on the same unit and day in flight: exactly one of the two wins, the cancel that loses
  answers 409, the check-in that loses says why on the day page.

Afterwards the database is checked: holding bookings per company per campaign <= the cap,
subsidy per company <= cap x 500 yen, every booking's status agrees with its timestamps
(and its cancellation mail), what each request was answered agrees with the table,
unit_loads equals a recount (services/loads.py, rebuilt in a transaction rolled back), and
no request was answered 5xx (or not at all). The rate limits are off (one client would
only measure the 429 path); the company limits too (bench/stack.py NO_COMPANY_LIMITS).

Prints a table and writes JSON into bench/results/ (run(): nothing written; the test
suite calls run() in tests/test_scale_out.py).
"""

from __future__ import annotations

import argparse
import re
import secrets
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import requests
import sqlalchemy as sa

from bench import scenario as scenario_mod
from bench.stack import (
    AppServer,
    RedisNamespace,
    app_environment,
    machine,
    print_table,
    shared_database,
    write_results,
)
from booking import clock

PASSWORD = scenario_mod.BOOKER_PASSWORD
SUBSIDY_CAP = 500
PER_COMPANY = 1
TIMEOUT = 60


@dataclass
class Answer:
    round: int
    race: str  # "campaign", "check_in", "cancel", "book"
    server: str
    status: int  # 0: no HTTP answer
    code: str = ""  # the problem's code, or the outcome read from the page
    booking_id: int | None = None


# --------------------------------------------------------------------------- set-up


def _world(app) -> dict:
    """Operator (with its space open all day, every day), municipality and campaign with
    one slot on each of 4 units, and the company that books for the check-in race."""
    from booking.extensions import db
    from booking.models import (
        Campaign,
        CampaignSlot,
        OpeningHours,
        OrgKind,
        PricePer,
        Space,
        SpaceKind,
        Unit,
        UnitKind,
    )
    from booking.services import accounts, tokens

    tag = secrets.token_hex(3)
    with app.app_context():
        s = db.session
        owner = accounts.create_user(s, email=f"operator-{tag}@races.example.jp",
                                     password=PASSWORD, name="競合運営者", verified=True)
        operator = accounts.create_organisation(s, owner=owner, kind=OrgKind.OPERATOR,
                                                name=f"競合施設運営{tag}", prefecture_code=13)
        operator.approved_at = clock.now()
        space = Space(organisation_id=operator.id, slug=f"races-{tag}", kind=SpaceKind.COWORKING,
                      name=f"競合コワーキング{tag}", prefecture_code=13, city="千代田区",
                      address="東京都千代田区丸の内1-1", lat=35.681, lon=139.767,
                      closed_on_holidays=False, amenities=["wifi"])
        s.add(space)
        s.flush()
        for weekday in range(7):  # all day: the check-in race books from now to midnight
            s.add(OpeningHours(space_id=space.id, weekday=weekday, opens_min=0, closes_min=1440))
        units = [Unit(space_id=space.id, name=f"キャンペーン席{i + 1}", kind=UnitKind.DESK,
                      capacity=5, price_amount=1000, price_per=PricePer.DAY) for i in range(4)]
        s.add_all(units)
        mayor = accounts.create_user(s, email=f"city-{tag}@races.example.jp", password=PASSWORD,
                                     name="競合市役所", verified=True)
        city = accounts.create_organisation(s, owner=mayor, kind=OrgKind.MUNICIPALITY,
                                            name=f"競合市{tag}", prefecture_code=22)
        city.approved_at = clock.now()
        today = clock.today()
        campaign = Campaign(organisation_id=city.id, slug=f"races-{tag}", name="競合キャンペーン",
                            starts_on=today, ends_on=today + timedelta(days=90), published=True)
        s.add(campaign)
        s.flush()
        s.add_all([CampaignSlot(campaign_id=campaign.id, unit_id=u.id, start_date=today,
                                end_date=today + timedelta(days=90), daily_start_min=540,
                                daily_end_min=1080, seats=5, price_amount=None,
                                subsidy_cap=SUBSIDY_CAP, max_bookings_per_company=PER_COMPANY)
                   for u in units])
        booker = accounts.create_user(s, email=f"booker-{tag}@races.example.jp",
                                      password=PASSWORD, name="競合予約者", verified=True)
        company = accounts.create_organisation(s, owner=booker, kind=OrgKind.COMPANY,
                                               name=f"競合商事{tag}", prefecture_code=13)
        token, _ = tokens.issue(s, booker, 24)
        s.commit()
        return {"tag": tag, "operator_email": owner.email, "space_id": space.id,
                "campaign_id": campaign.id, "campaign_slug": campaign.slug,
                "campaign_units": [u.id for u in units], "booker_id": booker.id,
                "booker_company": company.id, "booker_token": token}


def _campaign_company(app, world: dict, n: int) -> list[str]:
    """A new company with two members; their API tokens."""
    from booking.extensions import db
    from booking.models import Membership, OrgKind, Role
    from booking.services import accounts, tokens

    with app.app_context():
        s = db.session
        first, second = (accounts.create_user(
            s, email=f"c{n}-{i}-{world['tag']}@races.example.jp", password=PASSWORD,
            name=f"キャンペーン利用者{n}-{i}", verified=True) for i in range(2))
        company = accounts.create_organisation(s, owner=first, kind=OrgKind.COMPANY,
                                               name=f"競合{n}商事", prefecture_code=13)
        s.add(Membership(user_id=second.id, organisation_id=company.id, role=Role.STAFF))
        made = [tokens.issue(s, u, 24)[0] for u in (first, second)]
        s.commit()
        return made


def _today_window() -> tuple[datetime, datetime]:
    """From a few minutes ahead to Tokyo's midnight: check-in is open (it is the booking's
    day) and the company may still cancel (before the start). In the last minutes of a
    Tokyo day, waits for the next one."""
    from booking.services.availability import at

    now = clock.tokyo_now()
    if now.hour == 23 and now.minute >= 50:
        time.sleep((at(clock.today() + timedelta(days=1), 0) - clock.now()).total_seconds() + 1)
    start = clock.now().replace(second=0, microsecond=0) + timedelta(minutes=4)
    return start, at(clock.today() + timedelta(days=1), 0)


def _checkin_unit(app, world: dict) -> tuple[int, list[tuple[int, str]], tuple[datetime, datetime]]:
    """A fresh unit (cancellable until its start) with four bookings of today, booked
    through the reservations service by the company's booker."""
    from booking.extensions import db
    from booking.models import PricePer, Unit, UnitKind, User
    from booking.services import reservations

    period = _today_window()
    with app.app_context():
        s = db.session
        unit = Unit(space_id=world["space_id"], name=f"当日席{secrets.token_hex(2)}",
                    kind=UnitKind.DESK, capacity=10, price_amount=500, price_per=PricePer.HOUR,
                    cancel_deadline_hours=0, lead_time_hours=0, max_length=24)
        s.add(unit)
        s.commit()
        booker = s.get(User, world["booker_id"])
        booked = []
        for _ in range(4):
            [made] = reservations.book(s, s.get(Unit, unit.id), booker, [period], 1)
            s.commit()  # the edge commits (book() flushes)
            booked.append((made.id, made.reference))
        return unit.id, booked, period


# --------------------------------------------------------------------------- HTTP


def _code(response: requests.Response) -> str:
    try:
        return str(response.json().get("code", ""))
    except ValueError:
        return ""


class Operator:
    """The operator's browser: logged in once; every request starts from that cookie."""

    def __init__(self, server: str, email: str, space_id: int) -> None:
        self.space_id = space_id
        web = requests.Session()
        form = web.get(f"{server}/account/login", timeout=TIMEOUT)
        done = web.post(f"{server}/account/login", timeout=TIMEOUT, allow_redirects=False,
                        data={"csrf_token": _csrf(form.text), "email": email,
                              "password": PASSWORD})
        if done.status_code != 302:
            raise RuntimeError(f"operator login failed: {done.status_code}")
        page = web.get(f"{server}/operator/spaces/{space_id}/day", timeout=TIMEOUT)
        page.raise_for_status()
        self.csrf = _csrf(page.text)
        self.cookie = web.cookies["session"]

    def check_in(self, server: str, booking_id: int, reference: str) -> tuple[int, str]:
        """POST the form; a check-in is a redirect to the day page, which says so; a
        refusal is a 409 page that says why."""
        cookie = {"Cookie": f"session={self.cookie}"}
        posted = requests.post(f"{server}/operator/bookings/{booking_id}/check-in",
                               data={"csrf_token": self.csrf}, headers=cookie, timeout=TIMEOUT,
                               allow_redirects=False)
        refusals = (("already_cancelled", "この予約はキャンセル済みです。"),
                    ("bad_status", "この予約の状態では操作できません。"))
        if posted.status_code == 409:
            return 409, next((code for code, text in refusals if text in posted.text),
                             "no message")
        if posted.status_code != 302:
            return posted.status_code, "no redirect"
        # The flash message is in the session the redirect set.
        after = {"Cookie": f"session={posted.cookies.get('session', self.cookie)}"}
        page = requests.get(requests.compat.urljoin(server, posted.headers["Location"]),
                            headers=after, timeout=TIMEOUT, allow_redirects=False)
        if page.status_code >= 500:
            return page.status_code, "day page failed"
        if f"{reference} をチェックインにしました" in page.text:
            return posted.status_code, "ok"
        return posted.status_code, "no message"


def _csrf(page: str) -> str:
    found = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page) or \
        re.search(r'value="([^"]+)"[^>]*name="csrf_token"', page)
    if not found:
        raise RuntimeError("no CSRF token on the page")
    return found.group(1)


def _fire(jobs: list) -> list[Answer]:
    """Every job in its own thread, released at once; a failed connection is status 0."""
    barrier = threading.Barrier(len(jobs))
    answers: list[Answer | None] = [None] * len(jobs)

    def one(i: int, job) -> None:
        barrier.wait(timeout=TIMEOUT)
        answer = job[1]
        try:
            answer.status, answer.code = job[0]()
        except requests.RequestException as error:
            answer.status, answer.code = 0, type(error).__name__
        answers[i] = answer

    threads = [threading.Thread(target=one, args=(i, job)) for i, job in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=TIMEOUT * 2)
    return [a for a in answers if a is not None]


def _api(method: str, url: str, token: str, body: dict | None = None):
    def go() -> tuple[int, str]:
        response = requests.request(method, url, json=body, timeout=TIMEOUT, headers={
            "Authorization": f"Bearer {token}", "Idempotency-Key": secrets.token_hex(8)})
        return response.status_code, _code(response) or ("ok" if response.ok else "")
    return go


# --------------------------------------------------------------------------- rounds


def _campaign_round(app, world: dict, urls: list[str], n: int) -> tuple[list[Answer], list[str]]:
    tokens = _campaign_company(app, world, n)
    day = (clock.today() + timedelta(days=10 + n)).isoformat()  # a day of its own
    jobs = []
    for i, unit_id in enumerate(world["campaign_units"]):
        for j, token in enumerate(tokens):
            server = urls[(i * 2 + j) % len(urls)]
            body = {"unit_id": unit_id, "date": day, "seats": 1,
                    "campaign": world["campaign_slug"]}
            jobs.append((_api("POST", f"{server}/api/v1/bookings", token, body),
                         Answer(n, "campaign", server, 0)))
    answers = _fire(jobs)
    got = Counter((a.status, a.code) for a in answers)
    want = Counter({(201, "ok"): 1, (403, "campaign_bookings_per_company"): 7})
    return answers, ([] if got == want else [f"campaign round {n}: {dict(got)}"])


def _checkin_round(app, world: dict, operator: Operator, urls: list[str],
                   n: int) -> tuple[list[Answer], list[str]]:
    unit_id, booked, (start, end) = _checkin_unit(app, world)
    token = world["booker_token"]
    jobs = []
    for i, (booking_id, reference) in enumerate(booked):
        here, there = urls[i % len(urls)], urls[(i + 1) % len(urls)]
        jobs.append(((lambda s=here, b=booking_id, r=reference: operator.check_in(s, b, r)),
                     Answer(n, "check_in", here, 0, booking_id=booking_id)))
        jobs.append((_api("DELETE", f"{there}/api/v1/bookings/{reference}", token,
                          {"reason": "予定変更"}),
                     Answer(n, "cancel", there, 0, booking_id=booking_id)))
    for server in urls:  # bookings in flight on the same unit and day
        body = {"unit_id": unit_id, "start": start.isoformat(), "end": end.isoformat(),
                "seats": 1}
        jobs.append((_api("POST", f"{server}/api/v1/bookings", token, body),
                     Answer(n, "book", server, 0)))
    answers = _fire(jobs)
    problems = []
    for booking_id, _reference in booked:
        mine = {a.race: a for a in answers if a.booking_id == booking_id}
        winners = [race for race, a in mine.items() if a.code == "ok"]
        if len(winners) != 1:
            problems.append(f"round {n} booking {booking_id}: winners {winners}")
            continue
        loser = mine["cancel" if winners == ["check_in"] else "check_in"]
        if loser.code not in ("already_cancelled", "bad_status") or loser.status != 409:
            problems.append(f"round {n} booking {booking_id}: loser {loser}")
    booked_in_flight = [a for a in answers if a.race == "book"]
    if [a.status for a in booked_in_flight] != [201] * len(urls):
        problems.append(f"round {n}: bookings in flight {booked_in_flight}")
    return answers, problems


# --------------------------------------------------------------------------- the database


def _check_database(app, world: dict, answers: list[Answer]) -> list[str]:
    from booking.extensions import db
    from booking.models import (
        HOLDING_STATUSES,
        Booking,
        BookingStatus,
        CampaignSlot,
        OutboxMessage,
        UnitLoad,
    )
    from booking.services import loads

    problems: list[str] = []
    with app.app_context():
        s = db.session
        per_company = s.execute(
            sa.select(Booking.company_id, sa.func.count(),
                      sa.func.coalesce(sa.func.sum(Booking.subsidy_amount), 0))
            .join(CampaignSlot, CampaignSlot.id == Booking.campaign_slot_id)
            .where(CampaignSlot.campaign_id == world["campaign_id"],
                   Booking.status.in_(HOLDING_STATUSES))
            .group_by(Booking.company_id)).all()
        rounds = len({a.round for a in answers if a.race == "campaign"})
        if len(per_company) != rounds:
            problems.append(f"{len(per_company)} companies hold campaign bookings, {rounds} rounds")
        for company_id, count, subsidy in per_company:
            if count > PER_COMPANY or subsidy > SUBSIDY_CAP * PER_COMPANY:
                problems.append(f"company {company_id}: {count} bookings, subsidy {subsidy}")

        mails = dict(s.execute(sa.select(OutboxMessage.booking_id, sa.func.count())
                               .where(OutboxMessage.kind == "cancellation")
                               .group_by(OutboxMessage.booking_id)).all())
        for b in s.scalars(sa.select(Booking)):
            cancelled, checked = b.cancelled_at is not None, b.checked_in_at is not None
            agrees = {BookingStatus.CANCELLED: cancelled and not checked,
                      BookingStatus.CHECKED_IN: checked and not cancelled,
                      BookingStatus.CONFIRMED: not cancelled and not checked}.get(b.status, False)
            if not agrees or mails.get(b.id, 0) != int(b.status == BookingStatus.CANCELLED):
                problems.append(f"booking {b.id}: {b.status} cancelled_at={b.cancelled_at} "
                                f"checked_in_at={b.checked_in_at} mails={mails.get(b.id, 0)}")
        status = dict(s.execute(sa.select(Booking.id, Booking.status)).all())
        for a in answers:
            if a.booking_id is not None and a.code == "ok":
                expected = (BookingStatus.CHECKED_IN if a.race == "check_in"
                            else BookingStatus.CANCELLED)
                if status.get(a.booking_id) != expected:
                    problems.append(f"{a.race} of {a.booking_id} answered ok, "
                                    f"table says {status.get(a.booking_id)}")

        columns = (UnitLoad.unit_id, UnitLoad.day, UnitLoad.start_min, UnitLoad.end_min,
                   UnitLoad.seats, UnitLoad.seats_free)
        kept = set(s.execute(sa.select(*columns)).all())
        with db.engine.connect() as conn, conn.begin() as transaction:
            loads.rebuild(conn)
            rebuilt = set(conn.execute(sa.select(*columns)).all())
            transaction.rollback()
        if not kept or kept != rebuilt:
            problems.append(f"unit_loads differ from a recount: {sorted(kept ^ rebuilt)[:10]}")
        # The session's connection back first: one still checked out when its pool is
        # disposed goes back to that old pool later and stays open until the GC finds it.
        db.session.remove()
        for engine in db.engines.values():
            engine.dispose()
    return problems


# --------------------------------------------------------------------------- the drill


def run(*, rounds: int = 20, workers: int = 2, app_threads: int = 4) -> dict:
    report: dict = {"machine": machine(), "settings": {
        "rounds": rounds, "workers": workers, "app_threads": app_threads}}
    with tempfile.TemporaryDirectory(prefix="scale-out-races-") as tmp, \
            shared_database("races") as database_url, RedisNamespace() as redis_ns:
        app = scenario_mod.app_for(database_url)
        scenario_mod.create_schema(app)
        world = _world(app)
        env = app_environment(database_url, REDIS_URL=redis_ns.url,
                              RATELIMIT_KEY_PREFIX=redis_ns.prefix, RATELIMIT_ENABLED="false",
                              MAIL_DIR=str(Path(tmp) / "mail"), BOOKING_INSTANCE_DIR=tmp,
                              LOG_REQUESTS="false")
        servers = [AppServer(env, workers=workers, threads=app_threads, name=name,
                             log_path=Path(tmp) / f"{name}.log") for name in ("a", "b")]
        answers: list[Answer] = []
        problems: list[str] = []
        try:
            for server in servers:
                server.start()
            urls = [s.url for s in servers]
            operator = Operator(urls[0], world["operator_email"], world["space_id"])
            for n in range(rounds):
                for race in (_campaign_round, _checkin_round):
                    args = (app, world, operator, urls, n) if race is _checkin_round \
                        else (app, world, urls, n)
                    got, wrong = race(*args)
                    answers += got
                    problems += wrong
        finally:
            for server in servers:
                server.stop()
        problems += _check_database(app, world, answers)

    by_race = {race: dict(sorted(Counter(f"{a.status} {a.code}".strip() for a in answers
                                         if a.race == race).items()))
               for race in ("campaign", "check_in", "cancel", "book")}
    statuses = Counter(str(a.status) for a in answers)
    failed = sum(n for s, n in statuses.items() if s.startswith("5") or s == "0")
    per_server = {url: dict(Counter(str(a.status) for a in answers if a.server == url))
                  for url in {a.server for a in answers}}
    report.update({
        "rounds": rounds, "requests": len(answers),
        "answers": dict(sorted(statuses.items())), "answers_by_race": by_race,
        "per_server": per_server, "answered_5xx_or_not_at_all": failed,
        "violations": len(problems), "problems": problems[:50],
    })
    report["passed"] = not problems and failed == 0 and len(per_server) == 2
    return report


def show(report: dict) -> None:
    rows = [{"what": race, "answers": counts} for race, counts in report["answers_by_race"].items()]
    rows += [{"what": f"  via {url}", "answers": c} for url, c in report["per_server"].items()]
    print_table(f"Integrity races through two app servers: {report['rounds']} rounds", rows,
                [("what", "requests"), ("answers", "answers (status code)")])
    print(f"  violations: {report['violations']}, 5xx or no answer: "
          f"{report['answered_5xx_or_not_at_all']}")
    for problem in report["problems"]:
        print(f"  FAIL  {problem}")
    print(f"  {'PASS' if report['passed'] else 'FAIL'}")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description="Issue 17's races through two app servers.")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--app-threads", type=int, default=4)
    args = parser.parse_args(argv)
    report = run(rounds=args.rounds, workers=args.workers, app_threads=args.app_threads)
    show(report)
    print(f"\nJSON: {write_results('scale-out-races', report)}")
    if not report["passed"]:
        raise SystemExit(1)
    return report


if __name__ == "__main__":
    main()
