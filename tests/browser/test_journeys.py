"""The journeys of issue 8, each in Japanese and in English, in Debian's Chromium.

Every page a journey reaches is checked by `audit` (tests/browser/helpers.py): axe-core
finds no serious or critical violation, the page shows no text of the other language
outside proper names, and a screenshot is saved under test-artifacts/screenshots/.

Dates are those of the coming summer's Telework Days (the demo data's campaign); each
journey books its own days so that the journeys never depend on each other's seats.
"""

from __future__ import annotations

import re
import uuid
from datetime import date

import pytest

from booking import clock
from booking.seeds.demo import coming_summer
from tests.browser.helpers import LANGS, T, log_in, set_language

YEAR = coming_summer(clock.today())
ENISHIA = {"ja": "エニシア静岡", "en": "Enishia Shizuoka"}
DESKS = {"ja": "コワーキング席", "en": "Coworking desks"}


def named(*parts: str) -> re.Pattern:
    """An accessible name made of visible text and a visually hidden part (": 会議室"):
    the hidden span is a block, so the name has a space before the colon."""
    return re.compile(r"^\s*" + r"\s*".join(re.escape(p) for p in parts) + r"\s*$")


def day(month: int, dom: int) -> str:
    return date(YEAR, month, dom).isoformat()


def sign_up_company(page, lang: str, audit=None) -> str:
    """A new company signs up through the form; returns its e-mail."""
    email = f"co-{uuid.uuid4().hex[:8]}@example.com"
    page.goto("/account/signup")
    page.get_by_label(T(lang, "お名前"), exact=True).fill("試験 花子" if lang == "ja" else "Hanako Test")
    page.get_by_label(T(lang, "メールアドレス"), exact=True).fill(email)
    page.get_by_label(T(lang, "パスワード"), exact=True).fill("correct horse battery")
    page.get_by_label(T(lang, "会社名"), exact=True).fill("浜松テレワーク株式会社")
    page.get_by_label(T(lang, "本社の都道府県"), exact=True).select_option("13")
    if audit:
        audit(page, "signup-filled")
    page.locator("main").get_by_role("button", name=T(lang, "登録する")).click()
    signed_up = T(lang, "登録しました。メールアドレスの確認用リンクをお送りしました。")
    page.get_by_text(signed_up, exact=True).wait_for()
    return email


def search(page, lang: str, near: str, when: str, seats: int = 1) -> list[str]:
    """Searches with the search page's form; returns the names of the results in order."""
    page.goto("/search")
    page.get_by_label(T(lang, "場所"), exact=True).fill(near)
    page.get_by_label(T(lang, "日付"), exact=True).fill(when)
    page.get_by_label(T(lang, "人数"), exact=True).fill(str(seats))
    page.locator("form[role=search]").get_by_role("button", name=T(lang, "探す")).click()
    page.get_by_role("heading", name=T(lang, "検索結果")).wait_for()
    return page.locator("ol.results > li h3").all_inner_texts()


def book_from_space_page(page, lang: str, when: str, seats: int, audit, attendees=(),
                         first_try_seats: int | None = None) -> str:
    """On エニシア静岡's page: book its coworking desks; returns the booking reference.

    With `first_try_seats`, the form is first sent with that many seats (too many): the
    error must be beside the seats field and tied to it."""
    page.get_by_role("link", name=named(T(lang, "予約する"), ":", DESKS[lang])).click()
    page.get_by_label(T(lang, "日付"), exact=True).fill(when)
    seats_field = page.get_by_label(T(lang, "席数"), exact=True)
    if attendees:
        page.get_by_label(T(lang, "参加者のメールアドレス"), exact=True).fill("\n".join(attendees))
    if first_try_seats is not None:
        seats_field.fill(str(first_try_seats))
        page.get_by_role("button", name=T(lang, "予約を確定する")).click()
        seats_field.and_(page.locator("[aria-invalid=true]")).wait_for()
        described = (seats_field.get_attribute("aria-describedby") or "").split()
        errors = [page.locator(f"#{i}").inner_text() for i in described if i.endswith("-error")]
        assert errors and errors[0].strip(), f"the seats error is not tied to the field: {described}"
        audit(page, "booking-form-errors", full_page=True)
    seats_field.fill(str(seats))
    audit(page, "booking-form", full_page=True)
    # The price before booking: the estimate of what the form asks for, tax-included.
    page.get_by_role("button", name=T(lang, "料金を確認する")).click()
    estimate = page.locator(".estimate table.breakdown")
    estimate.wait_for()
    text = estimate.inner_text()
    assert T(lang, "基本料金") in text and T(lang, "お支払い額") in text, text
    # The tax inside what the company pays (nothing to pay: no tax; 無料 says so).
    taxed = T(lang, "うち消費税(%(rate)d%%)", rate=10)
    assert taxed in text or T(lang, "無料") in text, text
    audit(page, "booking-estimate", full_page=True)
    page.get_by_role("button", name=T(lang, "予約を確定する")).click()
    page.get_by_role("heading", level=1, name=T(lang, "予約の確認")).wait_for()
    # And on the booking's page: the same breakdown (below a caption of its own).
    shown = page.locator("table.breakdown").inner_text()
    assert shown.split("\n", 1)[1] == text.split("\n", 1)[1], (shown, text)
    return page.locator(".reference").inner_text().strip()


@pytest.mark.parametrize("lang", LANGS)
def test_company_signs_up_searches_books_downloads_and_cancels(new_context, audit, lang):
    page = new_context().new_page()
    set_language(page, lang)
    audit.extra_names = ("浜松テレワーク株式会社",)
    sign_up_company(page, lang, audit)

    names = search(page, lang, "静岡駅", day(7, 24), seats=2)
    audit(page, "search-results", full_page=True)
    assert names and names[0] == ENISHIA[lang], names  # the nearest first
    page.get_by_role("link", name=ENISHIA[lang], exact=True).click()
    page.get_by_role("heading", level=1, name=ENISHIA[lang]).wait_for()
    audit(page, "space", full_page=True)

    reference = book_from_space_page(page, lang, day(7, 24), 2, audit)
    audit(page, "confirmation", full_page=True)
    facts = page.locator(".booking-facts").inner_text()
    assert "¥2,000" in facts and T(lang, "確定") in facts, facts

    with page.expect_download() as download:
        page.get_by_role("link", name=T(lang, "カレンダーに追加(.ics)")).click()
    ics = download.value.path().read_bytes().decode("utf-8")
    assert ics.startswith("BEGIN:VCALENDAR\r\n"), ics[:200]
    assert f"DTSTART;TZID=Asia/Tokyo:{YEAR}0724T090000" in ics, ics
    assert reference in ics

    page.get_by_role("link", name=T(lang, "予約一覧へ")).click()
    audit(page, "my-bookings")
    assert page.get_by_role("link", name=reference).count() >= 1

    page.goto(f"/bookings/{reference}")
    page.get_by_role("link", name=T(lang, "キャンセルする")).click()
    audit(page, "cancel-confirm")
    page.get_by_role("button", name=T(lang, "キャンセルを確定する")).click()
    page.get_by_role("heading", level=1, name=T(lang, "キャンセルされた予約")).wait_for()
    audit(page, "cancelled")
    assert T(lang, "キャンセル済み") in page.locator(".booking-facts").inner_text()


@pytest.mark.parametrize("lang", LANGS)
def test_team_booking_with_three_attendees(page, audit, lang):
    set_language(page, lang)
    log_in(page, lang, "company@example.jp")
    page.goto("/spaces/enishia-shizuoka")
    team = [f"member{i}-{lang}@example.jp" for i in (1, 2, 3)]
    book_from_space_page(page, lang, day(7, 27), 3, audit, attendees=team, first_try_seats=1000)
    audit(page, "team-confirmation", full_page=True)
    facts = page.locator(".booking-facts").inner_text()
    for email in team:
        assert email in facts, facts
    assert "¥3,000" in facts


@pytest.mark.parametrize("lang", LANGS)
def test_operator_closes_a_unit_and_it_vanishes_from_search(new_context, audit, lang):
    when = day(8, 3) if lang == "ja" else day(8, 4)
    company = new_context().new_page()
    set_language(company, lang)
    assert ENISHIA[lang] in search(company, lang, "静岡駅", when)

    operator = new_context().new_page()
    set_language(operator, lang)
    audit.extra_names = ("設備点検", "Maintenance")  # the reasons typed (both journeys share a server)
    log_in(operator, lang, "operator@example.jp")
    operator.get_by_role("navigation").get_by_role("link", name=T(lang, "施設の管理")).click()
    audit(operator, "console")
    operator.locator("main").get_by_role("link", name=ENISHIA[lang], exact=True).first.click()
    audit(operator, "console-space")
    operator.get_by_role("link", name=T(lang, "休業日・席数")).first.click()
    audit(operator, "closures", full_page=True)
    form = operator.locator("form", has=operator.get_by_role("button", name=T(lang, "休業日を追加")))
    # Every unit of the space is ticked by default: the whole space closes that day.
    form.get_by_label(T(lang, "開始日"), exact=True).fill(when)
    form.get_by_label(T(lang, "終了日"), exact=True).fill(when)
    form.get_by_label(T(lang, "理由(任意)"), exact=True).fill("設備点検" if lang == "ja" else "Maintenance")
    form.get_by_role("button", name=T(lang, "休業日を追加")).click()
    operator.get_by_text(T(lang, "休業日を登録しました。")).wait_for()
    audit(operator, "closure-added")

    names = search(company, lang, "静岡駅", when)
    audit(company, "search-after-closure")
    assert ENISHIA[lang] not in names, names
    assert names, "the other Shizuoka spaces are still open that day"


@pytest.mark.parametrize("lang", LANGS)
def test_municipality_publishes_a_free_slot_and_a_company_books_it(new_context, audit, lang):
    first, last = (day(8, 2), day(8, 6)) if lang == "ja" else (day(8, 9), day(8, 13))
    city = new_context().new_page()
    set_language(city, lang)
    log_in(city, lang, "city@example.jp")
    city.get_by_role("navigation").get_by_role("link", name=T(lang, "キャンペーン管理")).click()
    audit(city, "municipality")
    campaign_name = (f"テレワーク・デイズ{YEAR}(吉川市)" if lang == "ja"
                     else f"Telework Days {YEAR} (Yoshikawa)")
    # From the list of campaigns (the home's answers from operators may name it too).
    campaigns = city.get_by_role("table", name=T(lang, "キャンペーン一覧"))
    campaigns.get_by_role("link", name=campaign_name, exact=True).click()
    audit(city, "campaign", full_page=True)
    city.get_by_role("link", name=T(lang, "提供枠を追加")).click()
    unit = city.get_by_label(T(lang, "区画"), exact=True)
    # all_inner_texts() does not wait: read the options once the new page's form is there.
    unit.wait_for()
    oasis = [o for o in unit.locator("option").all_inner_texts() if "おあしす" in o or "Oasis" in o]
    assert oasis, unit.locator("option").all_inner_texts()
    unit.select_option(label=oasis[0])
    city.get_by_label(T(lang, "提供の初日"), exact=True).fill(first)
    city.get_by_label(T(lang, "提供の最終日"), exact=True).fill(last)
    city.get_by_label(T(lang, "毎日の開始時刻"), exact=True).fill("09:00")
    city.get_by_label(T(lang, "毎日の終了時刻"), exact=True).fill("18:00")
    city.get_by_label(T(lang, "提供する席数"), exact=True).fill("10")
    city.get_by_label(T(lang, "料金"), exact=True).select_option("free")
    audit(city, "slot-form")
    city.locator("main form").get_by_role("button", name=T(lang, "保存")).click()
    city.get_by_text(T(lang, "提供枠を保存しました。")).wait_for()
    audit(city, "slot-saved")

    company = new_context().new_page()
    set_language(company, lang)
    sign_up_company(company, lang)
    audit.extra_names = ("浜松テレワーク株式会社",)
    company.goto(f"/campaigns/telework-days-{YEAR}-yoshikawa")
    audit(company, "public-campaign", full_page=True)
    links = company.get_by_role("link", name=re.compile("^" + re.escape(T(lang, "この枠で予約する"))))
    hrefs = [links.nth(i).get_attribute("href") for i in range(links.count())]
    newest = max(hrefs, key=lambda h: int(re.search(r"slot=(\d+)", h).group(1)))
    company.goto(newest)
    company.get_by_label(T(lang, "日付"), exact=True).fill(first)
    audit(company, "slot-booking-form")
    company.get_by_role("button", name=T(lang, "予約を確定する")).click()
    company.get_by_role("heading", level=1, name=T(lang, "予約の確認")).wait_for()
    audit(company, "slot-confirmation", full_page=True)
    facts = company.locator(".booking-facts").inner_text()
    assert T(lang, "無料") in facts and "09:00" in facts and "18:00" in facts, facts


@pytest.mark.parametrize("lang", LANGS)
def test_map_shows_a_marker_per_result(page, audit, lang):
    set_language(page, lang)
    names = search(page, lang, "静岡駅", day(7, 24))
    assert len(names) >= 3, names
    page.locator("#map").wait_for(state="visible")
    markers = page.locator('#map path.leaflet-interactive[stroke="#0b5cad"]')
    markers.first.wait_for()
    assert markers.count() == len(names)
    # No tile loads here (the tile URL 404s): the prefecture outlines the site ships are
    # what the markers sit on.
    outlines = page.locator("#map .leaflet-outlines-pane path")
    outlines.first.wait_for(state="attached")
    assert outlines.count() == 47  # one per prefecture (those out of view drawn empty)
    audit(page, "search-map", full_page=True)
    # A marker opens a popup that leads to the space (its close button in the page's language).
    markers.first.click(force=True)
    link = page.locator(".leaflet-popup-content a")
    link.wait_for()
    assert names[0] in link.inner_text()
    audit(page, "search-map-popup")
    link.click()
    page.get_by_role("heading", level=1, name=names[0]).wait_for()
