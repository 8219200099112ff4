"""Issue 19's waitlist in the browser: a company finds エニシア静岡's private room taken
for the day it wants, is offered 「空き待ちに登録する」 beside the refusal and joins; the
company that holds the room cancels; the waiting company finds the offer on its
空き待ち page (the mail's link opens the same page), sees the price (tax included) and the
deadline, and confirms: the room is booked. Japanese and English, 1280 and 390 px, every
page audited (axe-core, language, screenshot) and never wider than the phone."""

from __future__ import annotations

import pytest

from tests.browser.helpers import LANGS, T, log_in, set_language
from tests.browser.test_funnel import SIZES, _fits, _weekday_after
from tests.browser.test_journeys import named

ROOM = {"ja": "個室", "en": "Private room"}
HOLDER = "mochizuki@suruga-tech.example.jp"  # 駿河テック, a demo company


def _open_room_form(page, lang: str, day: str) -> None:
    page.goto("/spaces/enishia-shizuoka")
    page.locator("table.units").get_by_role(
        "link", name=named(T(lang, "予約する"), ":", ROOM[lang])).click()
    page.locator("#first_date").fill(day)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("lang", LANGS)
def test_a_company_joins_the_waitlist_and_books_the_offered_room(new_context, audit,
                                                                 lang, size):
    # A day of its own for each run, away from the other journeys' days.
    day = _weekday_after(45 + 7 * (LANGS.index(lang) * 2 + list(SIZES).index(size)))
    holder = new_context(**SIZES[size]).new_page()
    set_language(holder, lang)
    log_in(holder, lang, HOLDER)
    _open_room_form(holder, lang, day)
    holder.get_by_role("button", name=T(lang, "予約を確定する")).click()
    holder.get_by_role("heading", level=1, name=T(lang, "予約の確認")).wait_for()
    held_url = holder.url

    company = new_context(**SIZES[size]).new_page()
    set_language(company, lang)
    log_in(company, lang, "company@example.jp")
    _open_room_form(company, lang, day)
    company.get_by_role("button", name=T(lang, "予約を確定する")).click()
    join = company.locator("#waitlist-join")
    join.wait_for()
    assert T(lang, "その日時は既に予約が入っています。別の日時を選んでください。") \
        in company.locator("main").inner_text()
    audit(company, f"waitlist-refused-{size}", full_page=True)
    _fits(company, size)
    join.get_by_role("button", name=T(lang, "空き待ちに登録する")).click()
    company.get_by_role("heading", level=1, name=T(lang, "空き待ち")).wait_for()
    assert T(lang, "空き待ちに登録しました。空きが出たらメールでお知らせします。") \
        in company.locator("main").inner_text()
    row = company.locator("table.waitlist tbody tr").filter(has_text=ROOM[lang]).first
    assert T(lang, "空き待ち中") in row.inner_text()
    audit(company, f"waitlist-joined-{size}", full_page=True)
    _fits(company, size)

    # Joining twice is refused, said plainly.
    _open_room_form(company, lang, day)
    company.get_by_role("button", name=T(lang, "予約を確定する")).click()
    company.locator("#waitlist-join").get_by_role(
        "button", name=T(lang, "空き待ちに登録する")).click()
    company.get_by_text(T(lang, "この日時の空き待ちには既に登録しています。")).wait_for()
    audit(company, f"waitlist-twice-{size}", full_page=True)
    _fits(company, size)

    # The room's holder cancels: the seat is offered to the line at once.
    holder.goto(held_url)
    holder.get_by_role("link", name=T(lang, "キャンセルする")).click()
    holder.get_by_role("button", name=T(lang, "キャンセルを確定する")).click()
    holder.get_by_text(T(lang, "予約をキャンセルしました。")).wait_for()

    company.goto("/waitlist/")
    row = company.locator("table.waitlist tbody tr").filter(has_text=ROOM[lang]).first
    assert T(lang, "ご案内中(確定待ち)") in row.inner_text()
    audit(company, f"waitlist-offered-list-{size}", full_page=True)
    _fits(company, size)
    row.get_by_role("link", name=T(lang, "確定・お断り")).click()
    company.get_by_role("heading", level=1, name=T(lang, "空きが出ました")).wait_for()
    main = company.locator("main").inner_text()
    assert T(lang, "%(amount)s(税込)", amount="¥1,500") in main, main
    assert T(lang, "確定の期限") in main
    audit(company, f"waitlist-offer-{size}", full_page=True)
    _fits(company, size)
    company.get_by_role("button", name=T(lang, "予約を確定する")).click()
    company.get_by_role("heading", level=1, name=T(lang, "予約の確認")).wait_for()
    assert ROOM[lang] in company.locator("main").inner_text()
    audit(company, f"waitlist-booked-{size}", full_page=True)
    _fits(company, size)
    company.goto("/waitlist/")
    row = company.locator("table.waitlist tbody tr").filter(has_text=ROOM[lang]).first
    assert T(lang, "予約済み") in row.inner_text()
