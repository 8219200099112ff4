"""Issue 19's acceptance in the browser: a weekly series is created and one occurrence
cancelled, in Japanese and English, on a desktop (1280 px) and a phone (390 px).

The company opens Enishia's desks from the space page, follows 「毎週の予約」 from the
booking form, is told beside the field that a day of the week is needed, checks the
availability of every Wednesday of a month (one preview, nothing booked), books the
dates that are free, and on the series page cancels one of them: its row says
キャンセル, the others stay booked. Every page is audited (axe-core, language, a
screenshot under test-artifacts/screenshots/) and must not scroll sideways on the phone.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from booking.clock import TOKYO
from tests import clock as test_clock
from tests.browser.helpers import LANGS, T, log_in, set_language
from tests.browser.test_funnel import DESKS, SIZES, _fits
from tests.browser.test_journeys import named


def _first_wednesday(after_days: int):
    day = (test_clock.instant() or datetime.now(UTC)).astimezone(TOKYO).date()
    day += timedelta(days=after_days)
    while day.weekday() != 2:
        day += timedelta(days=1)
    return day


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("lang", LANGS)
def test_a_weekly_series_is_created_and_one_occurrence_cancelled(new_context, audit, lang,
                                                                  size):
    page = new_context(**SIZES[size]).new_page()
    set_language(page, lang)
    log_in(page, lang, "company@example.jp")
    # Weeks of their own for each run (the desks have seats enough; the list stays clear).
    first = _first_wednesday(40 + 35 * (LANGS.index(lang) * 2 + list(SIZES).index(size)))
    last = first + timedelta(days=21)
    page.goto("/spaces/enishia-shizuoka")
    page.locator("table.units").get_by_role("link", name=named(T(lang, "予約する"), ":",
                                                               DESKS[lang])).click()
    page.locator("#first_date").wait_for()
    page.locator("main").get_by_role("link", name=T(lang, "毎週の予約")).click()
    page.get_by_role("heading", level=1, name=T(lang, "毎週の予約")).wait_for()

    # No day of the week chosen: said beside the field, nothing booked.
    page.locator("#first_date").fill(first.isoformat())
    page.locator("#last_date").fill(last.isoformat())
    page.get_by_role("button", name=T(lang, "空き状況を確認する")).click()
    error = page.locator("#weekdays-error")
    error.wait_for()
    assert T(lang, "曜日を1つ以上選んでください。") in error.inner_text()
    audit(page, f"series-no-weekday-{size}", full_page=True)
    _fits(page, size)

    page.get_by_label(T(lang, "水曜日"), exact=True).check()
    page.get_by_role("button", name=T(lang, "空き状況を確認する")).click()
    table = page.locator("table.series-dates")
    table.wait_for()
    rows = table.locator("tbody tr")
    assert rows.count() == 4
    free = table.locator("tbody tr.state-free").count()
    assert free >= 1
    assert T(lang, "予約できます") in table.inner_text()
    audit(page, f"series-preview-{size}", full_page=True)
    _fits(page, size)

    book = page.get_by_role("button", name=T(lang, "%(num)d日分を予約する", num=free)
                            if lang == "ja" else (f"Book {free} date" + ("s" if free != 1 else "")))
    book.click()
    page.get_by_role("heading", level=1, name=T(lang, "毎週の予約")).wait_for()
    occurrences = page.locator("table.series-occurrences tbody tr")
    assert occurrences.count() == free
    assert T(lang, "定期予約が確定しました。確認メールを1通お送りします。") in \
        page.locator(".flashes").inner_text()
    audit(page, f"series-booked-{size}", full_page=True)
    _fits(page, size)

    # Cancel the second date alone.
    second = occurrences.nth(1)
    second.get_by_role("button", name=T(lang, "この日をキャンセル")).click()
    page.locator(".flashes").wait_for()
    occurrences = page.locator("table.series-occurrences tbody tr")
    assert "status-cancelled" in (occurrences.nth(1).get_attribute("class") or "")
    cancelled = page.locator("table.series-occurrences tbody tr.status-cancelled").count()
    assert cancelled == 1
    assert page.locator("table.series-occurrences tbody tr.status-confirmed").count() == free - 1
    audit(page, f"series-one-cancelled-{size}", full_page=True)
    _fits(page, size)

    # The occurrence's own page links back to its series.
    occurrences.nth(0).get_by_role("link").first.click()
    page.get_by_role("link", name=T(lang, "毎週の予約を見る")).wait_for()
    audit(page, f"series-occurrence-{size}")
