"""Every page of every role at the width of a phone (390 px): nothing scrolls sideways.

The pages come from the application's own url_map, so a page added tomorrow is in the
crawl the day it lands: every GET route, with the ids of the demo data (the visitor's own
space, booking, campaign, ...), plus a few query strings that show the fullest lists (a
search with results, the day list and month of the busiest day, a space's report).

A plan is made first without a browser (Flask's test client, each role logged in): which
of those URLs answer the role with an HTML page. Then Chromium, at 390 px as a phone,
visits each such page as each role (anonymous, company, operator, municipality, admin)
in Japanese and in English, and checks that the document is no wider than the screen
and that no box on it scrolls sideways on its own (a table in an overflow-x box is
still a table the thumb must drag). A page that fails is screenshotted into
test-artifacts/screenshots/phone-width/ (every page with SCREENSHOTS=all, to look at).
A page shown with its form's errors (422) counts as a page; an error page (403, 404) is
visited once per status and role. A separate test fails when a route answers no role
with 200 or 422, or needs a URL value this module lacks.

The server runs in this process (werkzeug, a thread) on its own SQLite database with
the demo data, so that the few rows added here (a booking for the company when the demo
has none, an extra of the municipality's campaign) do not reach other tests.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from booking import clock
from tests.browser.helpers import (
    ALL_SCREENSHOTS,
    LANGS,
    SCREENSHOTS,
    axe_violations,
    log_in,
    served_in_thread,
    set_language,
    slug,
)

SHOTS = SCREENSHOTS / "phone-width"
WIDTH = 390
TOKYO = ZoneInfo("Asia/Tokyo")
# Pages proper: 200, and 422 (a form shown with its errors: the CSV export's page is
# only ever seen so). Other statuses are error pages, visited once per status and role.
SHOWN = (200, 422)

# The demo accounts of each role (booking/seeds/demo.py); None: not logged in.
ROLES = {
    "anonymous": None,
    "company": "company@example.jp",
    "operator": "operator@example.jp",
    "municipality": "city@example.jp",
    "admin": "admin@example.jp",
}
OPERATOR_SPACE = "enishia-shizuoka"  # エニシア静岡's
MUNICIPALITY = "吉川市"
MUNICIPALITY_SPACE = "oasis-yoshikawa"

# Routes that are files or data, never pages: the JSON API, the static files and the
# map library. Everything else is asked; a CSV, an .ics or JSON answer is not a page
# and is left out of the browser's part by its content type.
NOT_PAGES = ("api.", "static", "search.leaflet", "operator.leaflet")

pytestmark = [
    # The server runs in this process for the whole module, and its login sessions are
    # signed with its clock: the clock runs on from where the fixture left it.
    pytest.mark.continuous_clock,
    # werkzeug's development server can leave a static file's handle to the garbage
    # collector when Chromium drops a stylesheet request as it leaves the page (see
    # tests/browser/test_console_pages.py); only that report is ignored.
    pytest.mark.filterwarnings(
        "ignore:Exception ignored in. <_io.FileIO name=.*/static/:"
        "pytest.PytestUnraisableExceptionWarning"),
]


@dataclass
class Page:
    endpoint: str
    url: str
    status: int
    html: bool


@dataclass
class Plan:
    base: str
    pages: dict[str, list[Page]] = field(default_factory=dict)  # role -> what it gets
    missing: list[str] = field(default_factory=list)  # URL parameters without a value


def _demo_values(session) -> dict[str, dict[str, object]]:
    """For each role, a value for every URL parameter: the role's own objects where it
    has some (its space, booking, campaign), the operator's otherwise (a 403 or 404
    page is a page too)."""
    from booking.models import (
        Booking,
        BookingStatus,
        Campaign,
        CampaignExtra,
        CampaignSlot,
        Organisation,
        Space,
        Unit,
        User,
        WaitlistEntry,
    )
    from booking.services import accounts

    def one(model, **where):
        return session.scalars(sa.select(model).filter_by(**where)).first()

    space = one(Space, slug=OPERATOR_SPACE)
    city = one(Organisation, name=MUNICIPALITY)
    city_space = one(Space, slug=MUNICIPALITY_SPACE)
    company_user = one(User, email=ROLES["company"])
    company = company_user.company
    # The company's booking: an upcoming confirmed one (cancel and change pages show
    # their forms), else its latest.
    mine = sa.select(Booking).where(Booking.company_id == company.id)
    booking = session.scalars(
        mine.where(Booking.status == BookingStatus.CONFIRMED, Booking.starts_at > clock.now())
        .order_by(Booking.starts_at)).first() or session.scalars(
        mine.order_by(Booking.starts_at.desc())).first()
    at_space = sa.select(Booking).join(Unit).where(Unit.space_id == space.id)
    space_booking = session.scalars(
        at_space.where(Booking.status == BookingStatus.CONFIRMED)
        .order_by(Booking.starts_at.desc())).first()
    # The municipality's campaign with the most behind it: the oldest (2019's report).
    campaign = session.scalars(sa.select(Campaign).where(Campaign.organisation_id == city.id)
                               .order_by(Campaign.starts_on)).first()
    extra = session.scalars(sa.select(CampaignExtra).join(Campaign).where(
        Campaign.organisation_id == city.id)).first()
    slot = session.scalars(sa.select(CampaignSlot).where(
        CampaignSlot.campaign_id == campaign.id)).first()
    operator_org = space.organisation
    # The company's weekly series (_ensure_rows makes one).
    from booking.models import BookingSeries
    weekly = session.scalars(sa.select(BookingSeries).where(
        BookingSeries.company_id == company.id).order_by(BookingSeries.id)).first()

    common = {
        "space_id": space.id, "unit_id": space.units[0].id, "org_id": operator_org.id,
        "booking_id": space_booking.id, "campaign_id": campaign.id, "slot_id": slot.id,
        "extra_id": extra.id, "closure_id": 0, "override_id": 0, "photo_id": 0,
        "token_id": 0, "reference": booking.reference, "owner": "user", "action": "renew",
        "secret": "0" * 32, "token": accounts.verification_token(company_user),
        "slug": space.slug, "campaign_slug": campaign.slug, "filename": "missing.jpg",
        # Its national campaign (Telework Days of the campaign's year).
        "national_id": campaign.national_campaign_id,
        "national_slug": campaign.national_campaign.slug,
        "series_id": weekly.id if weekly is not None else 0,
        "code": "221007",  # 静岡市: its open data (エニシア静岡 is in it)
        # The company's waitlist entry (_ensure_rows makes one, offered seats).
        "entry_id": session.scalar(sa.select(sa.func.min(WaitlistEntry.id)).where(
            WaitlistEntry.company_id == company.id)) or 0,
    }
    values = {role: dict(common) for role in ROLES}
    values["company"]["org_id"] = company.id  # its own audit log
    values["municipality"].update(space_id=city_space.id, unit_id=city_space.units[0].id,
                                  org_id=city.id)
    return values


def _variants(session, values: dict[str, object]) -> dict[str, list[dict[str, str]]]:
    """Query strings that fill a page with its longest lists, per endpoint."""
    from booking.models import Booking, Campaign, CampaignSlot, Unit

    # The busiest day at the visitor's space: the day list and the month view of it.
    starts = session.scalars(sa.select(Booking.starts_at).join(Unit).where(
        Unit.space_id == values["space_id"])).all()
    days = Counter(s.astimezone(TOKYO).date() for s in starts)
    day = days.most_common(1)[0][0] if days else clock.today()
    campaign = session.get(Campaign, values["campaign_id"])
    report_space = session.scalars(sa.select(Unit.space_id).join(CampaignSlot).where(
        CampaignSlot.campaign_id == campaign.id)).first()
    units = session.scalars(sa.select(Unit).where(Unit.space_id == values["space_id"])).all()
    soon = clock.today() + timedelta(days=7)
    return {
        "search.search": [{"near": "静岡駅", "date": soon.isoformat(), "seats": "2"},
                          {"date": soon.isoformat()}],
        "operator.day": [{"day": day.isoformat()}],
        "operator.month": [{"month": day.strftime("%Y-%m")}],
        "municipality.report": [{"space": str(report_space)}] if report_space else [],
        # The booking form of each kind of unit (desk, room, house) the space has.
        "bookings.new": [{"unit_id": str(u.id), "date": soon.isoformat()}
                         for u in {u.kind: u for u in units}.values()],
        # The weekly series form of each kind of unit (a house's answers 404).
        "series.new": [{"unit_id": str(u.id), "date": soon.isoformat()}
                       for u in {u.kind: u for u in units}.values()],
    }


def _ensure_rows(session) -> None:
    """What the crawl needs beyond the demo: a booking of the company (confirmed,
    upcoming) and an extra of the municipality's campaign, when the demo has none; an API
    token of the company user and an audit entry with a long detail (their lists are
    empty in the demo)."""
    from booking.models import Booking, BookingStatus, Campaign, CampaignExtra, Organisation, Space, User
    from booking.services import audit, tokens
    from booking.services.availability import at

    company_user = session.scalars(sa.select(User).filter_by(email=ROLES["company"])).one()
    upcoming = session.scalar(sa.select(sa.func.count()).select_from(Booking).where(
        Booking.company_id == company_user.company.id, Booking.starts_at > clock.now(),
        Booking.status == BookingStatus.CONFIRMED))
    if not upcoming:
        desks = session.scalars(sa.select(Space).filter_by(slug=OPERATOR_SPACE)).one().units[0]
        day = clock.today() + timedelta(days=14)
        session.add(Booking(reference="PHONE0001A", unit_id=desks.id, starts_at=at(day, 600),
                            ends_at=at(day, 1020), seats=2, price_amount=2000,
                            company_id=company_user.company.id, user_id=company_user.id))
    city = session.scalars(sa.select(Organisation).filter_by(name=MUNICIPALITY)).one()
    has_extra = session.scalar(sa.select(sa.func.count()).select_from(CampaignExtra).join(Campaign)
                               .where(Campaign.organisation_id == city.id))
    if not has_extra:
        campaign = session.scalars(sa.select(Campaign).where(Campaign.organisation_id == city.id)
                                   .order_by(Campaign.starts_on)).first()
        session.add(CampaignExtra(campaign_id=campaign.id, name="モバイルモニター",
                                  name_en="Portable monitor", quantity=4))
    # A weekly series of the company: its next confirmed booking as its one occurrence.
    from booking.models import BookingSeries
    session.flush()
    mine = session.scalars(sa.select(Booking).where(
        Booking.company_id == company_user.company.id, Booking.starts_at > clock.now(),
        Booking.status == BookingStatus.CONFIRMED).order_by(Booking.starts_at)).first()
    day = mine.starts_at.astimezone(TOKYO).date()
    weekly = BookingSeries(uid="series-phone@booking.telework", unit_id=mine.unit_id,
                           company_id=mine.company_id, user_id=company_user.id,
                           weekdays=[day.weekday()], first_date=day, last_date=day,
                           seats=mine.seats)
    session.add(weekly)
    session.flush()
    mine.series_id = weekly.id
    # The company's place on a waitlist, offered seats (the offer page: price, deadline).
    from booking.models import WaitlistEntry, WaitlistStatus
    offer_day = clock.today() + timedelta(days=15)
    offer = Booking(reference="PHONEOFFER1", unit_id=mine.unit_id, starts_at=at(offer_day, 600),
                    ends_at=at(offer_day, 1020), seats=1, price_amount=1000,
                    status=BookingStatus.OFFERED, company_id=company_user.company.id,
                    user_id=company_user.id)
    session.add(offer)
    session.flush()
    session.add(WaitlistEntry(unit_id=offer.unit_id, company_id=offer.company_id,
                              user_id=company_user.id, starts_at=offer.starts_at,
                              ends_at=offer.ends_at, status=WaitlistStatus.OFFERED,
                              offer_booking_id=offer.id, offered_at=clock.now(),
                              offer_expires_at=clock.now() + timedelta(hours=2)))
    tokens.issue(session, company_user, 24)
    space = session.scalars(sa.select(Space).filter_by(slug=OPERATOR_SPACE)).one()
    audit.record(session, company_user, "space.update_with_a_long_action_name", space,
                 space.organisation_id, description="説明を長く書き換えた" * 8,
                 contact="reservations-desk@enishia-shizuoka.example.jp")
    session.commit()


def _plan(app, base: str) -> Plan:
    """Which URL each role gets as an HTML page (and with which status)."""
    from flask import url_for

    from booking.extensions import db
    from booking.models import User
    from tests.security_world import as_role

    plan = Plan(base=base)
    with app.app_context():
        values = _demo_values(db.session)
        users = {role: (db.session.scalars(sa.select(User).filter_by(email=email)).one()
                        if email else None) for role, email in ROLES.items()}
        rules = sorted(app.url_map.iter_rules(), key=lambda r: (r.rule, r.endpoint))
        for role, user in users.items():
            client = app.test_client()
            as_role(client, user)
            variants = _variants(db.session, values[role])
            got: list[Page] = []
            for rule in rules:
                if "GET" not in rule.methods or rule.endpoint.startswith(NOT_PAGES):
                    continue
                unknown = [a for a in rule.arguments if a not in values[role]]
                if unknown:
                    plan.missing.append(f"{rule.endpoint}: no value for {unknown}")
                    continue
                given = dict(values[role])
                if rule.endpoint.startswith("campaigns."):
                    given["slug"] = given["national_slug" if rule.endpoint == "campaigns.national"
                                          else "campaign_slug"]
                with app.test_request_context():
                    path = url_for(rule.endpoint, **{a: given[a] for a in rule.arguments})
                for query in [{}, *variants.get(rule.endpoint, [])]:
                    url = path + ("?" + urlencode(query) if query else "")
                    if any(p.url == url for p in got):
                        continue
                    response = client.get(url)
                    got.append(Page(rule.endpoint, url, response.status_code,
                                    response.mimetype == "text/html"))
                    response.close()
            plan.pages[role] = got
    return plan


@pytest.fixture(scope="module")
def phone_server(tmp_path_factory):
    from booking import create_app
    from booking.extensions import db
    from booking.seeds import demo

    workdir = tmp_path_factory.mktemp("phone")
    app = create_app({
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{workdir / 'phone.sqlite3'}",
        "SECRET_KEY": "phone-width-browser-test", "RATELIMIT_ENABLED": False,
        "UPLOAD_DIR": str(workdir / "uploads"), "MAIL_DIR": str(workdir / "mail"),
        # Tiles that 404, as on a machine without network: the maps must still draw.
        "MAP_TILE_URL": "/static/tiles/{z}/{x}/{y}.png",
    })
    with app.app_context():
        db.create_all()
        demo.load(db.session)
        db.session.commit()
        _ensure_rows(db.session)
        db.session.remove()
    with served_in_thread(app) as base:
        yield _plan(app, base)


def test_every_page_is_in_the_crawl(phone_server):
    """Each page answers some role with 200 or 422 (else nobody looks at it at 390 px)."""
    plan = phone_server
    assert not plan.missing, "URL parameters without a demo value (add them to " \
        "_demo_values):\n" + "\n".join(plan.missing)
    opened = {p.endpoint for pages in plan.pages.values() for p in pages
              if p.status in SHOWN}
    asked = {p.endpoint for pages in plan.pages.values() for p in pages}
    # No demo visitor opens these with 200 by a GET: a photo whose file is not on disk
    # and a calendar feed need secrets or files the crawl does not make (both are files,
    # not pages, when they answer).
    # An invitation's page opens with the secret of a mailed link: test_members.py opens
    # one at 390 px.
    never = {"public.photo", "bookings.feed", "people.invitation"}
    unopened = sorted(asked - opened - never)
    assert not unopened, f"pages no role opens (give them a demo value): {unopened}"


# What scrolls sideways: the document, or a box inside it (overflow-x auto/scroll with
# wider content). When something does, the elements that stick out past the right edge
# are named too (outside Leaflet's panes and the visually hidden texts): where to look.
SIDEWAYS = """(limit) => {
  const name = (el) => {
    const cls = typeof el.className === 'string' ? el.className.trim() : '';
    return el.tagName.toLowerCase() + (cls ? '.' + cls.split(/ +/).join('.') : '');
  };
  const out = [];
  const root = document.documentElement;
  if (root.scrollWidth > limit) out.push('document ' + root.scrollWidth + 'px');
  const all = document.body.querySelectorAll('*');
  for (const el of all) {
    if (!['auto', 'scroll'].includes(getComputedStyle(el).overflowX)) continue;
    if (['TEXTAREA', 'INPUT', 'SELECT'].includes(el.tagName)) continue;
    if (el.scrollWidth > el.clientWidth + 1) {
      out.push(name(el) + ' scrolls ' + el.scrollWidth + '>' + el.clientWidth + 'px');
    }
  }
  if (!out.length) return out;
  for (const el of all) {
    const r = el.getBoundingClientRect();
    if (r.width && r.right > limit + 1 && !el.closest('.leaflet-container, .visually-hidden')) {
      out.push('sticks out: ' + name(el) + ' right=' + Math.round(r.right));
      if (out.length > 8) break;
    }
  }
  return out;
}"""


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("role", list(ROLES))
def test_no_page_scrolls_sideways_at_390px(phone_server, browser, axe_source, role, lang):
    """... and, in Japanese (the structure is the same in English; the journeys audit
    English pages), axe-core finds nothing serious or critical on any page at 390 px."""
    plan = phone_server
    context = browser.new_context(base_url=plan.base, locale="ja-JP", timezone_id="Asia/Tokyo",
                                  viewport={"width": WIDTH, "height": 844}, is_mobile=True,
                                  has_touch=True)
    context.set_default_timeout(20_000)
    if lang == "ja":
        context.add_init_script(axe_source)
    # Only this server: tiles and anything else outside are refused, as offline.
    context.route("**/*", lambda route: route.continue_()
                  if route.request.url.startswith(plan.base) else route.abort())
    page = context.new_page()
    try:
        set_language(page, lang)
        if ROLES[role]:
            log_in(page, lang, ROLES[role])
        errors_seen: set[int] = set()
        wide: list[str] = []
        inaccessible: list[str] = []
        visited = 0
        for p in plan.pages[role]:
            if not p.html or p.status in (301, 302, 303):
                continue
            if p.status not in SHOWN:
                if p.status in errors_seen:
                    continue  # one error page of each kind is enough
                errors_seen.add(p.status)
            response = page.goto(p.url)
            page.wait_for_load_state("load")
            assert response is not None and response.status == p.status, \
                f"{p.url} as {role}: {response and response.status}, planned {p.status}"
            query = p.url.partition("?")[2]
            shot = SHOTS / role / f"{slug(p.endpoint + ('-' + query if query else ''))}.{lang}.png"
            problems = page.evaluate(SIDEWAYS, WIDTH)
            if problems:
                wide.append(f"{p.url} ({p.endpoint}, {p.status}): {problems}  [{shot.name}]")
            if lang == "ja":
                found = [f"{p.url}: axe {v['impact']} {v['id']}: {v['help']}"
                         for v in axe_violations(page)]
                inaccessible += found
                problems = problems or found
            if problems or ALL_SCREENSHOTS:
                shot.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(shot), full_page=True)
            visited += 1
        assert visited, f"{role} saw no page"
        assert not wide, f"pages wider than {WIDTH} px as {role} [{lang}]:\n" + "\n".join(wide)
        assert not inaccessible, f"axe-core as {role}:\n" + "\n".join(inaccessible)
    finally:
        context.close()
