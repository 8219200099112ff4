"""Receipts and statements as people reach them (issue 20): a company downloads the
qualified invoice of a paid booking from its booking page; an operator mistypes its
registration number (refused beside the field, nothing saved) and opens a month that is
not one on its statement (refused beside the chooser, this month shown). Japanese and
English, 1280 and 390 px, axe-clean."""

from __future__ import annotations

import subprocess

import pytest

from tests.browser.helpers import T, log_in, set_language

CASES = [(lang, width) for lang in ("ja", "en") for width in (1280, 390)]
HISTORY_BOOKER = "hayashi@otemachi-consulting.example.jp"  # books エニシア静岡 in the history


def _pdf_text(page, href: str, tmp_path) -> str:
    response = page.request.get(href)
    assert response.status == 200 and response.headers["content-type"] == "application/pdf"
    path = tmp_path / "document.pdf"
    path.write_bytes(response.body())
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True,
                          text=True, check=True).stdout


@pytest.mark.parametrize(("lang", "width"), CASES)
def test_company_downloads_the_qualified_invoice(new_context, audit, lang, width, tmp_path):
    page = new_context(width=width).new_page()
    set_language(page, lang)
    log_in(page, lang, HISTORY_BOOKER)
    page.goto("/bookings")
    references = page.locator("main a[href^='/bookings/']").evaluate_all(
        "links => links.map(a => a.getAttribute('href'))")
    receipt = None
    for href in references:
        page.goto(href)
        link = page.get_by_role("link", name=T(lang, "領収書・適格請求書(PDF)"))
        if link.count():
            receipt = link.first
            break
    assert receipt is not None, "no paid booking with a receipt in the demo history"
    audit(page, f"booking-receipt-link-{width}", full_page=True)
    text = _pdf_text(page, receipt.get_attribute("href"), tmp_path)
    # The operator of the demo has a registration number: a qualified invoice, in Japanese
    # whatever the page's language (a tax document).
    assert "適格請求書" in text and "T7123456789012" in text
    assert "大手町コンサルティング株式会社" in text and "10%" in text


@pytest.mark.parametrize(("lang", "width"), CASES)
def test_operator_refusals_on_registration_and_statement(new_context, audit, lang, width):
    page = new_context(width=width).new_page()
    set_language(page, lang)
    log_in(page, lang, "operator@example.jp")
    page.goto("/operator/")
    page.locator("main").get_by_role("link", name=T(lang, "メンバーと招待")).first.click()
    page.get_by_role("link", name=T(lang, "インボイスの登録番号")).click()
    field = page.get_by_label(T(lang, "適格請求書発行事業者の登録番号"))
    field.fill("T7123456789013")  # the check digit does not match
    page.locator("main form").get_by_role("button", name=T(lang, "保存")).click()
    page.get_by_text(T(lang, "登録番号は「T」に続く13桁の数字で入力してください"
                             "(チェックディジットが合いません)。")).wait_for()
    assert field.get_attribute("aria-invalid") == "true"
    assert "T7123456789012" in page.locator("main").inner_text()  # the saved one stays
    audit(page, f"registration-refused-{width}", full_page=True)

    page.goto("/operator/")
    space = "エニシア静岡" if lang == "ja" else "Enishia Shizuoka"
    page.locator("main").get_by_role("link", name=space, exact=True).first.click()
    page.get_by_role("link", name=T(lang, "月次明細(企業の支払額・自治体への請求)")).click()
    page.get_by_role("heading", level=1).wait_for()
    page.goto(page.url.split("?")[0] + "?month=2026-13")
    page.get_by_text(T(lang, "対象月を正しく入力してください。")).wait_for()
    assert page.get_by_role("heading", name=T(lang, "予約の一覧")).count() == 1
    audit(page, f"statement-bad-month-{width}", full_page=True)
