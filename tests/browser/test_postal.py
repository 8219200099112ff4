"""A postal code fills the address on the space form (issue 20): with the script, in place
(static/js/postal-code.js), and without it, by the form's round trip; an unknown code is
refused beside the field. Nothing is saved by either. 1280 and 390 px, axe-clean."""

from __future__ import annotations

import pytest

from tests.browser.helpers import T, log_in, set_language

WIDTHS = (1280, 390)


def _new_space_form(page, lang: str) -> None:
    page.goto("/operator/")
    page.locator("main").get_by_role("link", name=T(lang, "施設を追加")).first.click()
    page.get_by_role("heading", level=1).wait_for()


@pytest.mark.parametrize("width", WIDTHS)
def test_postal_code_fills_the_space_form(new_context, audit, width):
    lang = "ja"
    page = new_context(width=width).new_page()
    set_language(page, lang)
    log_in(page, lang, "operator@example.jp")
    _new_space_form(page, lang)
    form_url = page.url
    # Typed as people type it on a Japanese keyboard: full-width digits and dash.
    page.get_by_label(T(lang, "郵便番号")).fill("〒４２２－８０３５")  # noqa: RUF001
    page.get_by_role("button", name=T(lang, "住所を入力")).click()
    page.get_by_text(T(lang, "郵便番号から住所を入力しました。番地などを続けて入力してください。")).wait_for()
    assert page.url == form_url  # filled in place, by the script
    assert page.get_by_label(T(lang, "郵便番号")).input_value() == "422-8035"
    assert page.get_by_label(T(lang, "都道府県"), exact=True).input_value() == "22"
    assert page.get_by_label(T(lang, "市区町村"), exact=True).input_value() == "静岡市駿河区"
    assert page.get_by_label(T(lang, "住所(都道府県より後)")).input_value() == "静岡市駿河区宮竹"
    audit(page, f"space-form-postal-filled-{width}", full_page=True)

    page.get_by_label(T(lang, "郵便番号")).fill("999-9999")
    page.get_by_role("button", name=T(lang, "住所を入力")).click()
    page.get_by_text(T(lang, "この郵便番号の住所が見つかりません。")).wait_for()
    assert page.get_by_label(T(lang, "郵便番号")).get_attribute("aria-invalid") == "true"
    assert page.get_by_label(T(lang, "市区町村"), exact=True).input_value() == "静岡市駿河区"
    audit(page, f"space-form-postal-unknown-{width}", full_page=True)


def test_postal_code_fills_the_space_form_without_javascript(new_context, audit):
    lang = "ja"
    page = new_context(java_script_enabled=False).new_page()
    log_in(page, lang, "operator@example.jp")
    _new_space_form(page, lang)
    page.get_by_label(T(lang, "郵便番号")).fill("4210122")
    page.get_by_role("button", name=T(lang, "住所を入力")).click()
    page.wait_for_load_state()
    assert page.get_by_label(T(lang, "郵便番号")).input_value() == "421-0122"
    assert page.get_by_label(T(lang, "市区町村"), exact=True).input_value() == "静岡市駿河区"
    assert page.get_by_label(T(lang, "住所(都道府県より後)")).input_value() == "静岡市駿河区用宗"
    assert page.locator("#prefecture_code option:checked").inner_text() == "静岡県"
    audit(page, "space-form-postal-no-js", axe=False, full_page=True)
