"""The booking funnel of issue 18 as a person walks it, in Japanese and English, on a
desktop (1280 px) and a phone (390 px): a search result's card books with the searched
date and seats carried into the form, the price is shown tax-included with its breakdown
before and after booking, a desk is booked for the rest of today (drop-in), and the past
is shown as history with nothing to book. Every page is audited (axe-core, language,
screenshot under test-artifacts/screenshots/) and must not scroll sideways on the phone.
(A room's hours chosen on the time grid: tests/browser/test_free_time.py.)
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import jpholiday
import pytest

from booking.clock import TOKYO
from tests import clock as test_clock
from tests.browser.conftest import _wait_ready, start_server
from tests.browser.helpers import LANGS, T, log_in, set_language
from tests.browser.test_journeys import named

ENISHIA = {"ja": "エニシア静岡", "en": "Enishia Shizuoka"}
DESKS = {"ja": "コワーキング席", "en": "Coworking desks"}
SIZES = {"desktop": {"width": 1280, "height": 900},
         "phone": {"width": 390, "height": 844, "is_mobile": True, "has_touch": True}}


def _tokyo_today() -> datetime:
    return (test_clock.instant() or datetime.now(UTC)).astimezone(TOKYO)


def _fits(page, size: str) -> None:
    if size == "phone":
        page.wait_for_load_state("load")
        width = page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= 390, f"{page.url} is {width}px wide at 390px"


def _weekday_after(days: int) -> str:
    """A working day (Mon–Fri, not a holiday) at least `days` after the suite's today."""
    day = _tokyo_today().date() + timedelta(days=days)
    while day.weekday() >= 5 or jpholiday.is_holiday(day):
        day += timedelta(days=1)
    return day.isoformat()


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("lang", LANGS)
def test_a_card_books_with_the_searched_date_and_seats(new_context, audit, lang, size):
    page = new_context(**SIZES[size]).new_page()
    set_language(page, lang)
    log_in(page, lang, "company@example.jp")
    # A day of its own for each run (desks have seats enough, but the figures stay clear).
    when = _weekday_after(20 + 7 * (LANGS.index(lang) * 2 + list(SIZES).index(size)))
    page.goto(f"/search?near=静岡駅&date={when}&seats=2")
    page.get_by_role("heading", name=T(lang, "検索結果")).wait_for()
    results = page.locator("ol.results")
    if size == "phone":  # the filters wait behind their button: a result on the first screen
        assert page.locator("details.filters").get_attribute("open") is None
        assert results.locator("> li").first.bounding_box()["y"] < 844
    card = results.locator("> li", has=page.get_by_role("heading", name=ENISHIA[lang]))
    assert T(lang, "%(amount)s(税込)", amount="¥1,000") in card.inner_text()
    audit(page, f"funnel-results-{size}", full_page=True)
    _fits(page, size)

    card.get_by_role("link", name=named(T(lang, "予約する"), ":",
                                        f"{DESKS[lang]}({ENISHIA[lang]})")).click()
    page.locator("#first_date").wait_for()
    assert page.locator("#first_date").input_value() == when
    assert page.locator("#seats").input_value() == "2"
    # Opened with a date: the estimate is there before anything is sent, tax-included.
    estimate = page.locator(".estimate table.breakdown")
    text = estimate.inner_text()
    assert T(lang, "基本料金") in text and T(lang, "お支払い額") in text, text
    assert T(lang, "うち消費税(%(rate)d%%)", rate=10) in text, text
    assert "¥2,000" in text and "¥181" in text, text  # 2 seats × ¥1,000; 10/110 of it
    assert page.locator(".estimate .deadline").inner_text().strip()  # the deadline, stated
    audit(page, f"funnel-form-{size}", full_page=True)
    _fits(page, size)

    page.get_by_role("button", name=T(lang, "予約を確定する")).click()
    page.get_by_role("heading", level=1, name=T(lang, "予約の確認")).wait_for()
    shown = page.locator("table.breakdown").inner_text()
    assert "¥2,000" in shown and "¥181" in shown, shown
    audit(page, f"funnel-booked-{size}", full_page=True)
    _fits(page, size)


@pytest.mark.parametrize("lang", LANGS)
def test_the_past_is_history(new_context, audit, lang):
    page = new_context(**SIZES["phone"]).new_page()
    set_language(page, lang)
    log_in(page, lang, "company@example.jp")
    page.goto("/campaigns/telework-days-2019-yoshikawa")
    main = page.locator("main")
    assert T(lang, "終了") in main.inner_text()
    assert main.get_by_role("link", name=T(lang, "この枠で予約する")).count() == 0
    audit(page, "funnel-campaign-2019", full_page=True)
    _fits(page, "phone")

    page.goto("/search?near=吉川駅&date=2019-07-24")
    page.locator(".past-notice").wait_for()
    assert T(lang, "過去の日付です。") in page.locator(".past-notice").inner_text()
    assert page.locator("ol.results > li").count() > 0  # what was offered is shown...
    assert page.locator("ol.results a.button").count() == 0  # ...with nothing to book
    audit(page, "funnel-search-2019", full_page=True)
    _fits(page, "phone")


@pytest.fixture(scope="module")
def daytime_server(tmp_path_factory):
    """A second server whose clock stands at 11:00 Tokyo on the next working day, when
    エニシア静岡 is open: a desk can be dropped into for the rest of that day."""
    day = datetime.fromisoformat(_weekday_after(1)).date()
    moment = datetime.combine(day, time(11), TOKYO).astimezone(UTC)
    servers = start_server(tmp_path_factory.mktemp("daytime"),
                           clock=moment.isoformat().replace("+00:00", "Z"))
    proc, base, log = next(servers)
    try:
        _wait_ready(base, proc, log)
        yield base, day
    finally:
        servers.close()


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("lang", LANGS)
def test_a_desk_booked_for_the_rest_of_today(new_context, audit, daytime_server, lang, size):
    base, today = daytime_server
    page = new_context(server=base, **SIZES[size]).new_page()
    set_language(page, lang)
    log_in(page, lang, "company@example.jp")
    page.goto("/spaces/enishia-shizuoka")
    page.locator("table.units").get_by_role("link", name=named(T(lang, "予約する"), ":",
                                                               DESKS[lang])).click()
    page.locator("#first_date").fill(today.isoformat())
    page.get_by_role("button", name=T(lang, "料金を確認する")).click()
    drop_in = page.locator(".estimate .drop-in")
    drop_in.wait_for()
    said = drop_in.inner_text()
    # 11:00 and a moment: the booking holds from the next five minutes to closing (21:00).
    assert "21:00" in said and ("11:05" in said or "11:10" in said), said
    assert "¥1,000" in page.locator(".estimate table.breakdown").inner_text()
    audit(page, f"funnel-drop-in-{size}", full_page=True)
    _fits(page, size)
    # Booked today: past its deadline already, so the box says it cannot be cancelled.
    page.get_by_label(T(lang, "予約後はキャンセルできないことを確認しました")).check()
    page.get_by_role("button", name=T(lang, "予約を確定する")).click()
    page.get_by_role("heading", level=1, name=T(lang, "予約の確認")).wait_for()
    summary = page.locator("main").inner_text()
    assert "21:00" in summary, summary
    audit(page, f"funnel-drop-in-booked-{size}", full_page=True)
    _fits(page, size)
