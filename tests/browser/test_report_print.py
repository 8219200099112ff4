"""The campaign report's printable page in the browser (issue 20): the municipality's clerk
opens it from the report page, sees the controls on screen, and in print media (A4) the
site's header, menus and footer are gone while the charts stay; the 和暦 option writes the
dates in Japanese eras. The downloads are linked beside it. Japanese and English, axe-clean;
another municipality gets a 404."""

from __future__ import annotations

import re

import pytest

from tests.browser.helpers import LANGS, SCREENSHOTS, T, log_in, set_language


def _open_report(page, lang: str) -> str:
    log_in(page, lang, "city@example.jp")
    page.goto("/municipality/")
    href = page.locator("main a[href$='/report']").first.get_attribute("href")
    assert href, "the municipality's index links a report"
    page.goto(href)
    return href


@pytest.mark.parametrize("lang", LANGS)
def test_the_clerk_prints_the_report_on_a4(new_context, audit, lang):
    page = new_context(width=1280).new_page()
    set_language(page, lang)
    report = _open_report(page, lang)
    main = page.locator("main")
    for name in ("Excel形式でダウンロード(表ごとのシート)",
                 "表ごとのCSVをまとめてダウンロード(圧縮ファイル)"):
        assert main.get_by_role("link", name=T(lang, name)).count() == 1, name
    main.get_by_role("link", name=T(lang, "印刷用ページ(A4)"), exact=True).click()
    page.wait_for_url(re.compile(r"/report/print$"))
    assert page.url.endswith(report + "/print")
    charts = page.locator("svg.chart")
    assert charts.count() >= 1
    audit(page, "print-screen", full_page=True)

    page.emulate_media(media="print")
    assert not page.locator("header.site-header").is_visible()
    assert not page.locator("footer.site-footer").is_visible()
    assert not page.locator("nav.print-only-screen").is_visible()
    assert charts.first.is_visible()
    shot = SCREENSHOTS / "report-print" / f"print-media.{lang}.png"
    shot.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shot), full_page=True)
    pdf = page.pdf(format="A4")  # Chromium lays it out on A4 without an error
    assert pdf.startswith(b"%PDF") and len(pdf) > 1000
    page.emulate_media(media="screen")

    page.get_by_role("link", name=T(lang, "和暦で表示")).click()
    page.wait_for_url(re.compile(r"era=wareki"))
    text = page.locator("main").inner_text()
    assert ("令和" in text) if lang == "ja" else ("Reiwa" in text), text[:400]
    audit(page, "print-wareki", full_page=True)


def test_another_municipality_gets_a_404(new_context):
    page = new_context(width=1280).new_page()
    set_language(page, "ja")
    report = _open_report(page, "ja")
    page.get_by_role("button", name=T("ja", "ログアウト")).click()
    page.wait_for_load_state("load")
    log_in(page, "ja", "komagane@example.jp")
    response = page.goto(report + "/print")
    assert response is not None and response.status == 404
