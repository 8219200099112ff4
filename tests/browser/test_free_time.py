"""What is free, before choosing, in a real browser (JA and EN): a room's hours on the space
page show a booked hour in words; on the booking form a range of free hours is chosen
with the keyboard alone and announced; a desk's month calendar chooses the form's date;
both pages fit 390 px."""

from __future__ import annotations

from datetime import timedelta

import pytest

from booking import clock
from tests.browser.helpers import LANGS, T, log_in, set_language

ROOM = {"ja": "会議室", "en": "Meeting room"}
DESKS = {"ja": "コワーキング席", "en": "Coworking desks"}


def _grid(page, lang):
    unit = page.locator(".free-unit", has=page.get_by_role("heading", name=ROOM[lang], exact=True))
    return unit.locator("[data-hour-grid]")


def _tab_to(page, selector: str, limit: int = 120) -> None:
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("(sel) => !!document.activeElement?.matches(sel)", selector):
            return
    raise AssertionError(f"{selector} cannot be reached with Tab on {page.url}")


@pytest.mark.parametrize("lang", LANGS)
def test_hours_of_a_room_chosen_with_the_keyboard(page, audit, lang):
    set_language(page, lang)
    log_in(page, lang, "company@example.jp")
    day = clock.today() + timedelta(days=40 if lang == "ja" else 41)  # a day of its own

    # The space page: the room's hours that day; an hour booked through its link.
    page.goto(f"/spaces/enishia-shizuoka?day={day.isoformat()}")
    grid = _grid(page, lang)
    assert grid.get_attribute("data-day") == day.isoformat()
    audit(page, "space-hours", full_page=True)
    grid.locator("a[data-start='600']").click()  # 10:00–11:00, without script on this page
    page.locator("#start_time").wait_for()
    assert page.locator("#first_date").input_value() == day.isoformat()
    assert page.locator("#start_time").input_value() == "10:00"
    assert page.locator("#end_time").input_value() == "11:00"
    page.get_by_role("button", name=T(lang, "予約を確定する")).click()
    page.get_by_role("heading", level=1, name=T(lang, "予約の確認")).wait_for()

    # The booking form of that day: the booked hour says so, in words.
    page.goto(f"/spaces/enishia-shizuoka?day={day.isoformat()}")
    grid = _grid(page, lang)
    booked = grid.locator("li", has_text="10:00–11:00")
    assert T(lang, "予約済み") in booked.inner_text()
    assert booked.locator("a").count() == 0
    page.locator("table.units a", has_text=ROOM[lang]).click()
    page.locator("#start_time").wait_for()
    page.goto(page.url + f"&date={day.isoformat()}")
    grid = page.locator("[data-hour-grid][data-in-form]")
    assert grid.get_attribute("data-day") == day.isoformat()

    # Keyboard only: 13:00 with Space, then 14:00 with Enter: 13:00–15:00.
    _tab_to(page, "[data-hour-grid] [data-start='780']")
    page.keyboard.press("Space")
    _tab_to(page, "[data-hour-grid] [data-start='840']")
    page.keyboard.press("Enter")
    live = grid.locator("[data-announce]")
    page.wait_for_function("(el) => el.textContent.includes('13:00–15:00')", arg=live.element_handle())
    assert page.locator("#start_time").input_value() == "13:00"
    assert page.locator("#end_time").input_value() == "15:00"
    assert grid.locator("li.chosen").count() == 2
    assert T(lang, "選択中") in grid.locator("li.chosen").first.inner_text()
    # A range over the booked hour is refused, and said.
    grid.locator("[data-start='540']").click()
    grid.locator("[data-start='720']").click()
    taken = T(lang, "その間に予約できない時間があります。別の時間を選んでください。")
    page.wait_for_function("([el, text]) => el.textContent === text",
                           arg=[live.element_handle(), taken])
    # 9:00 stays chosen as the first hour (its shortest booking): 9:00–10:00.
    assert page.locator("#start_time").input_value() == "09:00"
    assert page.locator("#end_time").input_value() == "10:00"
    audit(page, "form-hours-chosen", full_page=True)
    page.get_by_role("button", name=T(lang, "予約を確定する")).click()
    page.get_by_role("heading", level=1, name=T(lang, "予約の確認")).wait_for()


@pytest.mark.parametrize("lang", LANGS)
def test_a_day_chosen_on_the_month_calendar_and_both_pages_at_390px(new_context, audit, lang):
    page = new_context(width=390, height=844, is_mobile=True, has_touch=True).new_page()
    set_language(page, lang)
    page.goto("/spaces/enishia-shizuoka")
    page.wait_for_load_state("load")
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 390, f"the space page is {width}px wide at 390px"
    calendar = page.locator("table.month-calendar").first
    assert T(lang, "過去") in calendar.inner_text() or clock.today().day == 1
    audit(page, "space-390px", full_page=True)

    log_in(page, lang, "company@example.jp")
    page.goto("/spaces/enishia-shizuoka")
    page.locator("table.units a", has_text=DESKS[lang]).click()
    page.locator("#first_date").wait_for()
    page.wait_for_load_state("load")  # its stylesheets too
    width = page.evaluate("() => document.documentElement.scrollWidth")
    wide = page.evaluate("""() => [...document.querySelectorAll('body *')]
        .filter(e => e.getBoundingClientRect().right > 391).slice(0, 5)
        .map(e => e.tagName + '.' + e.className + ' ' + (e.textContent || '').trim().slice(0, 30))""")
    assert width <= 390, f"the booking form is {width}px wide at 390px: {wide}"
    _tab_to(page, "table.month-calendar a[data-date]")
    chosen = page.evaluate("() => document.activeElement.dataset.date")
    page.keyboard.press("Enter")
    assert page.locator("#first_date").input_value() == chosen
    live = page.locator("[data-free-month] [data-announce]")
    page.wait_for_function("(el) => el.textContent.length > 0", arg=live.element_handle())
    assert page.locator("table.month-calendar a[aria-current='date']").get_attribute(
        "data-date") == chosen
    audit(page, "form-day-chosen-390px", full_page=True)
