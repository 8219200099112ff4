"""Booking with the keyboard alone, and the search, space and booking pages at 390 px."""

from __future__ import annotations

import pytest

from booking import clock
from booking.seeds.demo import coming_summer
from tests.browser.helpers import LANGS, T, log_in, set_language

YEAR = coming_summer(clock.today())

# Whether the element that has the focus shows it: an outline or a box shadow.
FOCUS_SHOWN = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const s = getComputedStyle(el);
  const outline = s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0;
  const name = el.tagName.toLowerCase() + (el.id ? '#' + el.id : '');
  return {shown: outline || s.boxShadow !== 'none',
          what: name + ' ' + (el.textContent || '').trim().slice(0, 30)};
}"""


class Keyboard:
    """Moves through a page with Tab only, checking that every stop shows its focus."""

    def __init__(self, page) -> None:
        self.page = page
        self.hidden_focus: list[str] = []

    def tab_to(self, selector: str, limit: int = 80) -> None:
        for _ in range(limit):
            self.page.keyboard.press("Tab")
            focus = self.page.evaluate(FOCUS_SHOWN)
            if focus and not focus["shown"]:
                self.hidden_focus.append(focus["what"])
            if self.page.evaluate("(sel) => !!document.activeElement?.matches(sel)", selector):
                return
        raise AssertionError(f"{selector} cannot be reached with Tab on {self.page.url}")


def test_booking_with_the_keyboard_alone(page, audit):
    keys = Keyboard(page)
    page.goto("/account/login")
    # The first Tab reaches the skip link, which takes the focus to the content.
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.classList.contains('skip-link')")
    page.keyboard.press("Enter")
    assert page.evaluate("() => document.activeElement.id") == "main"

    keys.tab_to("#email")
    page.keyboard.type("company@example.jp")
    keys.tab_to("#password")
    page.keyboard.type("telework-demo-2019")
    page.keyboard.press("Enter")
    page.wait_for_url(lambda url: "/account/login" not in url)

    page.goto("/spaces/enishia-shizuoka")
    keys.tab_to('table.units a[href*="/bookings/new"]')  # the first: コワーキング席
    page.keyboard.press("Enter")
    page.get_by_role("heading", level=1, name=T("ja", "予約する")).wait_for()

    keys.tab_to("#first_date")
    # The date's fields as a person types them; headless Chromium on Debian shows the
    # date input as mm/dd/yyyy whatever the locale.
    page.keyboard.type(f"0728{YEAR}")
    assert page.locator("#first_date").input_value() == f"{YEAR}-07-28", "date typed in another order?"
    keys.tab_to("#seats")
    page.keyboard.press("Control+A")
    page.keyboard.type("2")
    keys.tab_to("#attendees")
    page.keyboard.type("kb-colleague@example.jp")
    # Past 「料金を確認する」 (which shows the estimate and books nothing) to the booking button.
    keys.tab_to("form button.primary")
    audit(page, "keyboard-booking-form")
    page.keyboard.press("Enter")
    page.get_by_role("heading", level=1, name=T("ja", "予約の確認")).wait_for()
    audit(page, "keyboard-booking-confirmed", full_page=True)
    facts = page.locator(".booking-facts").inner_text()
    assert "kb-colleague@example.jp" in facts and "¥2,000" in facts, facts
    assert not keys.hidden_focus, f"focus not visible on: {keys.hidden_focus}"


def _fits(page, shot) -> None:
    """Nothing wider than the screen: no sideways scrolling at 390 px."""
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 390, f"{page.url} is {width}px wide at 390px (see {shot})"


@pytest.mark.parametrize("lang", LANGS)
def test_search_space_and_booking_pages_at_390px(new_context, audit, lang):
    page = new_context(width=390, height=844, is_mobile=True, has_touch=True).new_page()
    set_language(page, lang)
    page.goto(f"/search?near=静岡駅&date={YEAR}-07-24&seats=2")
    page.locator("ol.results > li").first.wait_for()
    _fits(page, audit(page, "search-390px", full_page=True))
    page.goto("/spaces/enishia-shizuoka")
    _fits(page, audit(page, "space-390px", full_page=True))
    log_in(page, lang, "company@example.jp")
    page.goto("/spaces/enishia-shizuoka")
    page.locator('table.units a[href*="/bookings/new"]').first.click()
    page.locator("#first_date").wait_for()
    _fits(page, audit(page, "booking-390px", full_page=True))
