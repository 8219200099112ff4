"""Both languages complete.

1. Every message of the code and templates (Japanese, the source language) is in the
   English catalogue, translated, not fuzzy, with the same placeholders, and the English
   text holds no Japanese.
2. Every HTML page the demo accounts can reach (walked from the URL map, so new pages are
   covered the day they land), rendered in Japanese and in English: an English page
   shows no Japanese outside elements marked lang="ja" and proper names from the data
   (space, unit and organisation names, addresses, stations); a Japanese page shows no
   English words outside lang="en", proper names and a short list of product names
   (Wi-Fi, CSV, Google …). The browser journeys apply the same check to what Chromium shows.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.pofile import read_po

from booking import clock
from booking.extensions import db
from tests.browser.helpers import CJK, html_texts, leftovers
from tests.conftest import make_app
from tests.html_validity import PageSet, assert_valid

ROOT = Path(__file__).resolve().parent.parent
PO = ROOT / "booking" / "translations" / "en" / "LC_MESSAGES" / "messages.po"
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]|%[sd]")


# --------------------------------------------------------------------------- catalogue


def _extracted() -> dict[str, str]:
    """msgid → where it is used, as `make extract` finds them (babel.cfg: .py and templates)."""
    method_map = [("**/templates/**.html", "jinja2"), ("**.py", "python")]
    keywords = {**DEFAULT_KEYWORDS, "_l": None}
    found: dict[str, str] = {}
    for folder in ("booking",):
        for filename, lineno, message, _comments, _context in extract_from_dir(
            ROOT / folder, method_map, keywords=keywords,
            options_map={"**/templates/**.html": {"extensions": "jinja2.ext.do"}},
        ):
            msgid = message if isinstance(message, str) else message[0]
            if msgid:
                found.setdefault(msgid, f"{folder}/{filename}:{lineno}")
    return found


def _lone_percents(text: str) -> int:
    return PLACEHOLDER.sub("", text.replace("%%", "")).count("%")


def _percent_problem(msgid: str, text: str, where: str) -> str:
    """Templates %-format every message (newstyle gettext), so a literal % is %% there;
    Python's _() formats only when given values, so there a % stays as the msgid has it."""
    if where.split(":")[0].endswith(".html"):
        return "a lone % in a template message (write %%)" if _lone_percents(text) else ""
    if _lone_percents(text) != _lone_percents(msgid) or text.count("%%") != msgid.count("%%"):
        return "% signs differ from the msgid"
    return ""


@pytest.fixture(scope="module")
def catalogue():
    with PO.open("rb") as f:
        return read_po(f)


def test_every_message_is_translated(catalogue):
    extracted = _extracted()
    assert len(extracted) > 100, "the extraction found almost nothing: is babel.cfg right?"
    problems = []
    for msgid, where in sorted(extracted.items(), key=lambda kv: kv[1]):
        message = catalogue.get(msgid)
        if message is None:
            problems.append(f"{where}: not in the catalogue (run `make extract`): {msgid!r}")
            continue
        text = message.string if isinstance(message.string, str) else message.string[0]
        if message.fuzzy:
            problems.append(f"{where}: fuzzy translation {text!r} of {msgid!r}")
        elif not text:
            problems.append(f"{where}: untranslated: {msgid!r}")
        elif sorted(PLACEHOLDER.findall(text)) != sorted(PLACEHOLDER.findall(msgid)):
            problems.append(f"{where}: placeholders differ: {msgid!r} → {text!r}")
        elif _percent_problem(msgid, text, where):
            problems.append(f"{where}: {_percent_problem(msgid, text, where)}: {text!r}")
        elif CJK.search(text):
            problems.append(f"{where}: Japanese in the English text {text!r}")
    assert not problems, f"{len(problems)} catalogue problems:\n" + "\n".join(problems)


def test_catalogue_compiles_without_errors(catalogue):
    errors = [f"{m.id!r}: {e}" for m, errors in catalogue.check() for e in errors]
    assert not errors, errors


# --------------------------------------------------------------------------- rendered pages

DEMO_PASSWORD = "telework-demo-2019"
# Role → demo account (booking/seeds/demo.py).
ACCOUNTS = {
    "anonymous": None,
    "company": "company@example.jp",
    "operator": "operator@example.jp",
    "municipality": "city@example.jp",
    "admin": "admin@example.jp",
}
# GET pages that are not HTML for people (or not pages at all).
NOT_PAGES = {"static", "public.healthz", "public.readyz", "public.robots", "public.favicon",
             "public.photo",
             "operator.leaflet", "search.leaflet", "bookings.feed", "bookings.ics", "series.ics",
             "municipality.report_xlsx", "municipality.report_zip",
             "receipts.booking_document"}
NOT_PAGES.add("statements.pdf")  # the monthly statement as a PDF file
EVERYONE = frozenset(ACCOUNTS)
SIGNED_IN = EVERYONE - {"anonymous"}
# Every HTML page → the roles it is for: each of them must get it (200, text/html) in both
# languages. The other roles are walked too (a 302 to the log-in page, a 403 or a 404 is
# checked like any page; never a 500). A page missing here fails the walk: whoever adds a
# page says who it is for.
PAGES: dict[str, frozenset[str]] = {
    "public.home": EVERYONE,
    "public.space": EVERYONE,
    "search.search": EVERYONE,
    "campaigns.index": EVERYONE,
    "opendata.index": EVERYONE,
    "campaigns.show": EVERYONE,
    "account.login": EVERYONE,
    "account.signup": EVERYONE,
    "account.signup_supporter": EVERYONE,
    "account.index": SIGNED_IN,
    "account.data": SIGNED_IN,
    "account.password": SIGNED_IN,
    "account.api_tokens": SIGNED_IN,
    "account.notifications": SIGNED_IN,
    "account.verify_email": SIGNED_IN,  # each role's own link (token below)
    "bookings.mine": SIGNED_IN,
    # Each role's own organisation (org_id below); the site admin sees every one.
    "account.audit": SIGNED_IN,
    "admin.audit": frozenset({"admin"}),
    "admin.organisations": frozenset({"admin"}),
    "admin.outbox": frozenset({"admin"}),
    "admin.nationals": frozenset({"admin"}),
    "admin.new_national": frozenset({"admin"}),
    "admin.edit_national": frozenset({"admin"}),
    "admin.national_report": frozenset({"admin"}),
    "campaigns.national": EVERYONE,
    "bookings.new": frozenset({"company"}),
    "bookings.show": frozenset({"company"}),
    "bookings.cancel": frozenset({"company"}),
    "bookings.change": frozenset({"company"}),
    "series.new": frozenset({"company"}),
    "series.show": frozenset({"company"}),
    "series.cancel_all": frozenset({"company"}),
    "waitlist.index": SIGNED_IN,  # each role's companies' entries (none but the company's)
    "waitlist.show": frozenset({"company"}),  # its offer, with price and deadline
    "campaigns.participation": frozenset({"company"}),
    "campaigns.consents": frozenset({"operator"}),
    # Each role's own organisation's people (the admin's org_id is an operator's: not theirs).
    "people.people": frozenset({"company", "operator", "municipality"}),
    "people.space_members_page": frozenset({"operator"}),
    # Each supporter's own organisation's invoice registration number (its owners).
    "receipts.registration": frozenset({"operator", "municipality"}),
    "people.invitation": frozenset(),  # the verification token opens no invitation: 404
    "operator.index": frozenset({"operator", "municipality"}),  # municipalities own spaces too
    "operator.space_new": frozenset({"operator", "municipality"}),
    "operator.space": frozenset({"operator"}),
    "operator.space_edit": frozenset({"operator"}),
    "operator.hours": frozenset({"operator"}),
    "operator.photos": frozenset({"operator"}),
    "operator.unit_new": frozenset({"operator"}),
    "operator.unit_edit": frozenset({"operator"}),
    "operator.month": frozenset({"operator"}),
    "operator.availability": frozenset({"operator"}),
    "operator.day": frozenset({"operator"}),
    "operator.cancel": frozenset({"operator"}),
    "statements.month": frozenset({"operator"}),  # its own space's monthly statement
    "municipality.index": frozenset({"municipality"}),
    "municipality.factors": frozenset({"municipality"}),
    "municipality.new_campaign": frozenset({"municipality"}),
    "municipality.campaign": frozenset({"municipality"}),
    "municipality.edit_campaign": frozenset({"municipality"}),
    "municipality.report": frozenset({"municipality"}),
    "municipality.report_print": frozenset({"municipality"}),
    "municipality.new_slot": frozenset({"municipality"}),
    "municipality.edit_slot": frozenset({"municipality"}),
    "municipality.new_extra": frozenset({"municipality"}),
    "municipality.edit_extra": frozenset({"municipality"}),
}
# Query arguments a page needs besides its URL parameters.
QUERY = {"bookings.new": ("unit_id",), "series.new": ("unit_id",)}


@pytest.fixture(scope="module")
def demo_app(tmp_path_factory):
    """The application on a fresh SQLite file with the demo data, one booking and one
    campaign extra of the demo municipality."""
    from booking.models import Campaign, CampaignExtra, Organisation, Space, User
    from booking.seeds import demo
    from tests.factories import Factory

    path = tmp_path_factory.mktemp("i18n") / "demo.sqlite3"
    app = make_app(f"sqlite:///{path}", MAIL_DIR=str(path.parent / "mail"),
                   UPLOAD_DIR=str(path.parent / "uploads"))
    with app.app_context():
        db.create_all()
        demo.load(db.session)
        db.session.commit()
        s = db.session
        space = s.scalar(sa.select(Space).where(Space.slug == "enishia-shizuoka"))
        desk = space.units[0]
        company = s.scalar(sa.select(Organisation).where(Organisation.name == "デモ商事株式会社"))
        user = s.scalar(sa.select(User).where(User.email == "company@example.jp"))
        year = demo.coming_summer(clock.today())
        start = datetime(year, 7, 24, 0, 0, tzinfo=UTC)  # 09:00 in Tokyo
        booking = Factory(s).booking(desk, start, start + timedelta(hours=12), seats=2,
                                     company=company, user_id=user.id)
        city = s.scalar(sa.select(Organisation).where(Organisation.name == "吉川市"))
        campaign = s.scalar(sa.select(Campaign).where(Campaign.slug == f"telework-days-{year}-yoshikawa"))
        extra = CampaignExtra(campaign_id=campaign.id, name="貸出用モニター", name_en="Loan monitor",
                              quantity=2)
        s.add(extra)
        # The booking is one occurrence of a weekly series (the series pages).
        from booking.models import BookingSeries
        weekly = BookingSeries(uid="series-demo@booking.telework", unit_id=desk.id,
                               company_id=company.id, user_id=user.id,
                               weekdays=[(start + timedelta(hours=9)).weekday()],
                               first_date=(start + timedelta(hours=9)).date(),
                               last_date=(start + timedelta(hours=9)).date(), seats=2)
        s.add(weekly)
        s.flush()
        booking.series_id = weekly.id
        # The company's waitlist entry, offered seats (the offer page: price, deadline).
        from booking.models import BookingStatus, WaitlistEntry, WaitlistStatus
        offer = Factory(s).booking(desk, start + timedelta(days=1), start + timedelta(days=1, hours=12),
                                   company=company, user_id=user.id, price_amount=1000,
                                   status=BookingStatus.OFFERED)
        entry = WaitlistEntry(unit_id=desk.id, company_id=company.id, user_id=user.id,
                              starts_at=offer.starts_at, ends_at=offer.ends_at, seats=1,
                              status=WaitlistStatus.OFFERED, offer_booking_id=offer.id,
                              offered_at=clock.now(), offer_expires_at=clock.now() + timedelta(hours=2))
        s.add(entry)
        s.commit()
        operator = space.organisation
        # The values of every URL parameter (the same for every role but org_id: each
        # role's own organisation), so that every page can be built for every role.
        shared = {"slug": "enishia-shizuoka", "campaign_slug": campaign.slug,
                  "reference": booking.reference, "space_id": space.id, "unit_id": desk.id,
                  "booking_id": booking.id, "campaign_id": campaign.id, "series_id": weekly.id,
                  "entry_id": entry.id,
                  "slot_id": campaign.slots[0].id, "extra_id": extra.id,
                  "national_id": campaign.national_campaign_id,
                  "national_slug": campaign.national_campaign.slug}
        orgs = {"company": company.id, "operator": operator.id, "municipality": city.id,
                "admin": operator.id, "anonymous": operator.id}
        values = {role: {**shared, "org_id": org_id} for role, org_id in orgs.items()}
        # The e-mail verification link of each role's own account (the company's for
        # the anonymous visitor).
        from booking.services import accounts

        for role, address in ACCOUNTS.items():
            who = s.scalar(sa.select(User).where(User.email == (address or "company@example.jp")))
            values[role]["token"] = accounts.verification_token(who)
        db.session.remove()
    yield app, values
    with app.app_context():
        for engine in db.engines.values():
            engine.dispose()


def _urls(app, values: dict) -> tuple[list[tuple[str, str]], list[str]]:
    """(endpoint, URL) of every HTML page, and the problems met building them."""
    from flask import url_for

    urls, problems = [], []
    with app.test_request_context():
        for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
            if "GET" not in rule.methods or rule.endpoint in NOT_PAGES:
                continue
            if rule.rule.startswith("/api/") or rule.rule.endswith((".csv", ".json", ".ics")):
                continue
            if rule.endpoint not in PAGES:
                problems.append(f"{rule.endpoint}: not in PAGES (say who the page is for)")
            args = dict(values)
            if "campaign" in rule.endpoint and "slug" in rule.arguments:
                args["slug"] = values["national_slug" if rule.endpoint == "campaigns.national"
                                      else "campaign_slug"]
            wanted = [*rule.arguments, *QUERY.get(rule.endpoint, ())]
            missing = [a for a in wanted if a not in args]
            if missing:
                problems.append(f"{rule.endpoint}: no value for {missing} (add it to demo_app)")
                continue
            urls.append((rule.endpoint, url_for(rule.endpoint, **{a: args[a] for a in wanted})))
    return urls, problems


@pytest.mark.parametrize("role", list(ACCOUNTS))
def test_pages_show_one_language(demo_app, role, monkeypatch):
    """Every page in Japanese and in English shows that language only, and is valid HTML
    (the Nu HTML Checker; the demo data fills pages with many forms: members, day lists)."""
    app, values = demo_app
    client = app.test_client()
    pages = PageSet()
    with app.app_context():
        if ACCOUNTS[role]:
            response = client.post("/account/login",
                                   data={"email": ACCOUNTS[role], "password": DEMO_PASSWORD})
            assert response.status_code == 302, response.text[:500]
        # GETs from here on: the pages' forms carry their CSRF token, as in production.
        monkeypatch.setitem(app.config, "WTF_CSRF_ENABLED", True)
        urls, problems = _urls(app, values[role])
        checked = []
        for endpoint, url in urls:
            mine = role in PAGES.get(endpoint, ())
            for lang in ("ja", "en"):
                sep = "&" if "?" in url else "?"
                response = client.get(f"{url}{sep}lang={lang}")
                status, mimetype = response.status_code, response.mimetype
                if mine and (status != 200 or mimetype != "text/html"):
                    problems.append(f"{url} [{lang}]: {status} {mimetype} for {role}, "
                                    "whose page it is")
                    continue
                if status >= 500:
                    problems.append(f"{url} [{lang}]: {status} for {role}")
                    continue
                if status in (301, 302, 303):
                    continue  # to the log-in page; walked as that page
                if mimetype != "text/html":
                    problems.append(f"{url} [{lang}]: {status} {mimetype} is not a page")
                    continue
                html = response.get_data(as_text=True)  # the page, or the 403/404 page
                pages.add(f"{url} as {role} [{lang}] {status}", html)
                if f'<html lang="{lang}"' not in html:
                    problems.append(f"{url} [{lang}]: wrong <html lang>")
                left = leftovers(html_texts(html), lang)
                checked.append(f"{endpoint} [{lang}]")
                if left:
                    other = "Japanese" if lang == "en" else "English"
                    problems.append(f"{url} [{lang}] {status} {other} left over: {left[:10]}")
        db.session.remove()
    assert checked, f"no page rendered for {role}"
    assert not problems, f"{len(problems)} problems walking the pages as {role}:\n" + \
        "\n".join(problems)
    assert_valid(pages)


# --------------------------------------------------------------------------- plurals

# An English count whose noun is not chosen by the number reads "1 seats".
FIXED_PLURAL = re.compile(r"%\(\w+\)d (?:\w+ )?(?:seats|people|bookings|results|nights|hours|"
                          r"days|items)\b|\w\(s\)")


def test_english_counts_use_plural_forms(catalogue):
    """Counted nouns go through ngettext (msgstr[0] "%(num)d seat", msgstr[1] "… seats")."""
    fixed = [f"{m.id!r} → {m.string!r}" for m in catalogue
             if m.id and not m.pluralizable and FIXED_PLURAL.search(m.string or "")]
    assert not fixed, "use ngettext for these counts:\n" + "\n".join(fixed)


def test_ngettext_reads_one_seat_two_seats_in_english_and_the_same_in_japanese(demo_app):
    from flask_babel import force_locale

    app, _values = demo_app
    template = app.jinja_env.from_string(
        '{{ ngettext("%(num)d席", "%(num)d席", n) }} · {{ ngettext("%(num)d名", "%(num)d名", n) }}')
    with app.test_request_context():
        with force_locale("en"):
            assert template.render(n=1) == "1 seat · 1 person"
            assert template.render(n=2) == "2 seats · 2 people"
        with force_locale("ja"):
            assert template.render(n=1) == "1席 · 1名"
            assert template.render(n=2) == "2席 · 2名"


def test_console_day_list_says_cancel_not_cancelled(demo_app):
    """The day list's cancel link is an action ("Cancel booking" / キャンセルする), not the
    status "Cancelled"; the counts above it read in the singular or plural."""
    from booking.seeds import demo

    app, values = demo_app
    day = date(demo.coming_summer(clock.today()), 7, 24)
    client = app.test_client()
    with app.app_context():
        client.post("/account/login", data={"email": ACCOUNTS["operator"], "password": DEMO_PASSWORD})
        url = f"/operator/spaces/{values['operator']['space_id']}/day?day={day.isoformat()}"
        english = client.get(f"{url}&lang=en").get_data(as_text=True)
        japanese = client.get(f"{url}&lang=ja").get_data(as_text=True)
        db.session.remove()
    link = re.compile(r'<a href="/operator/bookings/\d+/cancel">([^<]*)<')
    assert link.findall(english) == ["Cancel booking"]
    assert link.findall(japanese) == ["キャンセルする"]
    assert "Booked 2 seats · checked in 0 seats · no-show 0 seats" in english
    assert "予約済み 2席 · チェックイン済み 0席 · 来場なし 0席" in japanese
