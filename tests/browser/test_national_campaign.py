"""Telework Days as one national campaign in the browser (issue 19): a visitor finds the
coming summer's national campaign first on the campaigns page, reads its period, core day
and categories and the municipalities' programmes, and opens one (which names its
national campaign); the site admin opens the 2019 roll-up (per programme and the total,
the CSV), and is told beside the field that a core day outside the period is refused.
Japanese and English, 1280 and 390 px, axe-clean."""

from __future__ import annotations

import csv
import io

import pytest

from booking import clock
from booking.seeds.demo import coming_summer
from tests.browser.helpers import LANGS, T, log_in, set_language

YEAR = coming_summer(clock.today())
WIDTHS = (1280, 390)


def _name(lang: str, year: int) -> str:
    return f"テレワーク・デイズ{year}" if lang == "ja" else f"Telework Days {year}"


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("lang", LANGS)
def test_a_visitor_reads_the_national_campaign_and_its_programmes(new_context, audit, lang,
                                                                  width):
    page = new_context(width=width).new_page()
    set_language(page, lang)
    page.goto("/campaigns/")
    # The national campaigns come first, the coming summer's before 2019's.
    headings = page.locator("main section.national h2").all_inner_texts()
    assert headings[0].startswith(_name(lang, YEAR)), headings
    audit(page, f"campaigns-index-{width}", full_page=True)
    page.get_by_role("link", name=_name(lang, YEAR), exact=True).click()
    page.get_by_role("heading", level=1, name=_name(lang, YEAR)).wait_for()
    text = page.locator("main").inner_text()
    names = (("実施団体", "特別協力団体", "応援団体") if lang == "ja" else
             ("Implementing organisation", "Special cooperating organisation",
              "Supporter organisation"))
    assert all(name in text for name in names), text
    programmes = page.locator("table.list-table tbody tr")
    assert programmes.count() == 4, programmes.all_inner_texts()
    audit(page, f"national-{width}", full_page=True)
    yoshikawa = "吉川市" if lang == "ja" else "Yoshikawa"
    page.locator("table.list-table tbody tr", has_text=yoshikawa).get_by_role("link").click()
    page.locator("p.national-link").wait_for()
    assert _name(lang, YEAR) in page.locator("p.national-link").inner_text()
    audit(page, f"programme-{width}")


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("lang", LANGS)
def test_the_admin_reads_the_roll_up_and_is_refused_a_core_day_outside(new_context, audit,
                                                                       lang, width):
    page = new_context(width=width).new_page()
    set_language(page, lang)
    log_in(page, lang, "admin@example.jp")
    page.goto("/admin/organisations")
    page.get_by_role("link", name=T(lang, "全国キャンペーン"), exact=True).click()
    page.get_by_role("heading", level=1, name=T(lang, "全国キャンペーン")).wait_for()
    audit(page, f"admin-nationals-{width}")
    page.locator("tbody tr", has_text=_name(lang, 2019)).get_by_role(
        "link", name=T(lang, "集計")).click()
    page.locator("table.rollup tfoot").wait_for()
    total = page.locator("table.rollup tfoot tr").inner_text()
    assert T(lang, "合計") in total
    assert page.locator("table.rollup tbody tr").count() == 4
    audit(page, f"admin-roll-up-{width}", full_page=True)

    with page.expect_download() as download:
        page.get_by_role("link", name=T(lang, "CSVをダウンロード")).click()
    rows = list(csv.reader(io.StringIO(
        download.value.path().read_bytes().decode("utf-8-sig"))))
    assert rows[0][0] == T(lang, "自治体") and rows[-1][0] == T(lang, "合計")
    assert len(rows) == 6  # the header, four programmes, the total
    bookings = [int(r[3]) for r in rows[1:]]
    assert sum(bookings[:-1]) == bookings[-1] > 0  # the demo's history has 2019 bookings

    page.goto("/admin/national")
    page.locator("tbody tr", has_text=_name(lang, YEAR)).get_by_role(
        "link", name=T(lang, "編集")).click()
    page.get_by_label(T(lang, "コア日"), exact=True).fill(f"{YEAR}-10-01")
    page.locator("main form").get_by_role("button", name=T(lang, "保存")).click()
    error = page.locator("#core_days-error")
    error.wait_for()
    assert T(lang, "コア日は実施期間内の日付にしてください。") in error.inner_text()
    error.scroll_into_view_if_needed()
    audit(page, f"admin-refused-{width}")
