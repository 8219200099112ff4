"""The public pages in a real browser, in Japanese and English: home, space pages, sign-up,
log-in, and the language switch."""

from __future__ import annotations

import uuid

import pytest

from tests.browser.helpers import LANGS, T, log_in, set_language

# One space page of each shape: desks and rooms, whole houses by the night, members-only
# with a campaign slot. (tests/test_i18n.py renders every space page in both languages.)
SPACE_SLUGS = ["enishia-shizuoka", "nihon-iro-mochimune", "oasis-yoshikawa"]


@pytest.mark.parametrize("lang", LANGS)
def test_public_pages(page, audit, lang):
    set_language(page, lang)
    audit(page, "home")
    assert page.get_by_role("link", name=T(lang, "本文へ移動")).count() == 1
    page.get_by_role("heading", level=1).wait_for()

    for slug in SPACE_SLUGS:
        page.goto(f"/spaces/{slug}")
        audit(page, f"space-{slug}")
    page.goto("/spaces/no-such-space")
    audit(page, "not-found")

    page.goto("/account/signup/supporter")
    audit(page, "signup-supporter")


@pytest.mark.parametrize("lang", LANGS)
def test_company_signs_up_and_logs_in(page, audit, lang):
    set_language(page, lang)
    page.get_by_role("navigation").get_by_role("link", name=T(lang, "企業の登録")).click()
    audit(page, "signup")

    # Sent empty first: the errors are tied to their fields.
    page.locator("main").get_by_role("button", name=T(lang, "登録する")).click()
    audit(page, "signup-errors")
    name = page.get_by_label(T(lang, "お名前"))
    assert name.get_attribute("aria-invalid") == "true"
    error_id = name.get_attribute("aria-describedby")
    assert error_id and page.locator(f"#{error_id.split()[-1]}").inner_text().strip()

    email = f"signup-{uuid.uuid4().hex[:8]}@example.com"
    company = "テスト工業株式会社" if lang == "ja" else "Test Industries Ltd."
    audit.extra_names = (company,)
    name.fill("試験 太郎" if lang == "ja" else "Taro Test")
    page.get_by_label(T(lang, "メールアドレス")).fill(email)
    page.get_by_label(T(lang, "パスワード")).fill("correct horse battery")
    page.get_by_label(T(lang, "会社名")).fill(company)
    page.get_by_label(T(lang, "本社の都道府県")).select_option("13")
    page.locator("main").get_by_role("button", name=T(lang, "登録する")).click()
    page.get_by_text(T(lang, "登録しました。メールアドレスの確認用リンクをお送りしました。")).wait_for()
    audit(page, "signed-up")

    # Log out, then back in through the form; a wrong password is reported at the field.
    page.get_by_role("button", name=T(lang, "ログアウト")).click()
    page.goto("/account/login")
    page.get_by_label(T(lang, "メールアドレス")).fill(email)
    page.get_by_label(T(lang, "パスワード")).fill("wrong password!")
    page.locator("main").get_by_role("button", name=T(lang, "ログイン")).click()
    page.get_by_text(T(lang, "メールアドレスまたはパスワードが正しくありません。")).wait_for()
    audit(page, "login-error")
    log_in(page, lang, email, "correct horse battery")
    assert page.get_by_role("button", name=T(lang, "ログアウト")).is_visible()


def test_language_switch_keeps_the_page(page, audit):
    page.goto("/spaces/enishia-shizuoka?tab=units")
    assert page.get_by_role("heading", level=1).inner_text() == "エニシア静岡"
    page.get_by_role("button", name="English").click()
    page.wait_for_function("() => document.documentElement?.lang === 'en'")
    assert page.url.endswith("/spaces/enishia-shizuoka?tab=units")
    assert page.get_by_role("heading", level=1).inner_text() == "Enishia Shizuoka"
    # The choice stays for the next pages of the session.
    page.goto("/account/login")
    assert page.evaluate("() => document.documentElement.lang") == "en"
    page.goto("/spaces/koto-komagane")
    page.get_by_role("button", name="日本語").click()
    page.wait_for_function("() => document.documentElement?.lang === 'ja'")
    assert page.url.endswith("/spaces/koto-komagane")
    assert page.get_by_role("heading", level=1).inner_text() == "テレワークオフィス「Koto」"
