"""Issue 19's consent flow in the browser: a municipality proposes a slot on an
operator's unit; the operator finds it on the console home (「対応が必要なこと」), is told
beside the field that declining needs a reason, declines with one, then accepts; the
municipality sees the answer on its console home. axe-clean at every step."""

from __future__ import annotations

import pytest

from booking import clock
from booking.seeds.demo import coming_summer
from tests.browser.helpers import LANGS, T, log_in, set_language

YEAR = coming_summer(clock.today())
ENISHIA = {"ja": "エニシア静岡", "en": "Enishia Shizuoka"}


@pytest.mark.parametrize("lang", LANGS)
def test_operator_answers_a_consent_from_the_console_home(new_context, audit, lang):
    first = f"{YEAR}-08-0{3 if lang == 'ja' else 4}"
    reason = "8月は改装工事のため" if lang == "ja" else "Closed for renovation in August"
    city = new_context().new_page()
    set_language(city, lang)
    log_in(city, lang, "city@example.jp")
    city.goto("/municipality/")
    campaign_name = (f"テレワーク・デイズ{YEAR}(吉川市)" if lang == "ja"
                     else f"Telework Days {YEAR} (Yoshikawa)")
    city.get_by_role("link", name=campaign_name, exact=True).first.click()
    city.get_by_role("link", name=T(lang, "提供枠を追加")).click()
    unit = city.get_by_label(T(lang, "区画"), exact=True)
    unit.wait_for()  # all_inner_texts() does not wait for the new page
    enishia = [o for o in unit.locator("option").all_inner_texts() if ENISHIA[lang] in o]
    assert enishia, unit.locator("option").all_inner_texts()
    unit.select_option(label=enishia[0])
    city.get_by_label(T(lang, "提供の初日"), exact=True).fill(first)
    city.get_by_label(T(lang, "提供の最終日"), exact=True).fill(first)
    city.get_by_label(T(lang, "毎日の開始時刻"), exact=True).fill("09:00")
    city.get_by_label(T(lang, "毎日の終了時刻"), exact=True).fill("18:00")
    city.get_by_label(T(lang, "提供する席数"), exact=True).fill("3")
    city.get_by_label(T(lang, "料金"), exact=True).select_option("free")
    city.locator("main form").get_by_role("button", name=T(lang, "保存")).click()
    city.get_by_text(T(lang, "提供枠を保存しました。")).wait_for()

    operator = new_context().new_page()
    set_language(operator, lang)
    log_in(operator, lang, "operator@example.jp")
    operator.goto("/operator/")
    operator.get_by_role("heading", name=T(lang, "対応が必要なこと")).wait_for()
    audit(operator, "console-home-consent", full_page=True)
    operator.locator(".console-todo li a").first.click()
    operator.get_by_role("heading", level=1, name=T(lang, "キャンペーンへの施設の提供")).wait_for()
    row = operator.locator(f"tr:has-text('{first[:4]}')").filter(
        has=operator.get_by_role("button", name=T(lang, "お断りする"))).first
    row_id = row.get_attribute("id")
    row.get_by_role("button", name=T(lang, "お断りする")).click()
    row = operator.locator(f"#{row_id}")
    row.get_by_text(T(lang, "お断りする理由を入力してください。")).wait_for()
    audit(operator, "consent-reason-missing", full_page=True)
    row.get_by_label(T(lang, "お断りする理由")).fill(reason)
    row.get_by_role("button", name=T(lang, "お断りする")).click()
    operator.get_by_text(T(lang, "お断りしました。")).wait_for()
    row = operator.locator(f"#{row_id}")
    assert T(lang, "お断り済み") in row.inner_text()

    city.goto("/municipality/")
    answers = city.locator("section[aria-labelledby=answers]")
    assert reason in answers.inner_text()
    audit(city, "municipality-answers", full_page=True)

    row.get_by_role("button", name=T(lang, "同意する")).click()
    operator.get_by_text(T(lang, "同意しました。")).wait_for()
    assert T(lang, "同意済み") in operator.locator(f"#{row_id}").inner_text()
    audit(operator, "consent-accepted", full_page=True)
