"""The operator console in Chromium: every page checked with axe-core (a failing one
screenshotted into test-artifacts/screenshots/console/, every one with SCREENSHOTS=all),
and driven with the keyboard only.

The server runs in this process (werkzeug, a thread) on its own SQLite database holding the
demo data plus bookings, a closure and an override inserted here, so that the month view
and the day list have something to show.
"""

from __future__ import annotations

import io
from datetime import date, timedelta

import pytest
from PIL import Image

from booking import clock
from tests.browser.helpers import (
    ALL_SCREENSHOTS,
    DEMO_PASSWORD,
    SCREENSHOTS,
    axe_violations,
    served_in_thread,
)

SHOTS = SCREENSHOTS / "console"
# The server below runs in this process for the whole module, its login session too.
pytestmark = [
    pytest.mark.continuous_clock,
    # werkzeug's development server (this module's, not the app's: production serves
    # through gunicorn) can leave a static file's handle to the garbage collector when
    # Chromium drops a stylesheet request as it leaves the page; the collector closes it
    # and Python reports that as an unraisable ResourceWarning, which failed one CI run
    # at teardown. Only that report is ignored, and only here.
    pytest.mark.filterwarnings(
        "ignore:Exception ignored in. <_io.FileIO name=.*/static/:"
        "pytest.PytestUnraisableExceptionWarning"),
]


def _next_weekday(start: date) -> date:
    from booking.services.availability import is_holiday

    day = start
    while day.weekday() >= 5 or is_holiday(day):
        day += timedelta(days=1)
    return day


@pytest.fixture(scope="module")
def console_server(tmp_path_factory):
    from booking import create_app
    from booking.extensions import db
    from booking.models import Booking, BookingStatus, CapacityOverride, Closure, Space, User
    from booking.seeds import demo
    from booking.services.availability import at

    workdir = tmp_path_factory.mktemp("console")
    app = create_app({
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{workdir / 'console.sqlite3'}",
        "SECRET_KEY": "console-browser-test", "RATELIMIT_ENABLED": False,
        "UPLOAD_DIR": str(workdir / "uploads"), "MAIL_DIR": str(workdir / "mail"),
        "MAP_TILE_URL": "/static/tiles/{z}/{x}/{y}.png",  # 404s: the page must cope
    })
    with app.app_context():
        db.create_all()
        demo.load(db.session)
        db.session.commit()
        space = db.session.query(Space).filter_by(slug="enishia-shizuoka").one()
        desks = space.units[0]
        company = db.session.query(User).filter_by(email="company@example.jp").one()
        org = company.company
        today = clock.today()
        busy = _next_weekday(today + timedelta(days=3))
        if busy.day > 20:  # keep the closure and the override below in the same month
            busy = _next_weekday((busy.replace(day=1) + timedelta(days=32)).replace(day=3))
        seats = [(busy, 60), (busy + timedelta(days=1), 12), (today, 5)]
        for n, (day, count) in enumerate(seats):
            db.session.add(Booking(reference=f"DEMO{n:04d}A", unit_id=desks.id,
                                   starts_at=at(day, 540), ends_at=at(day, 1080), seats=count,
                                   price_amount=1000 * count, company_id=org.id,
                                   user_id=company.id))
        db.session.add(Booking(reference="DEMOFULL01", unit_id=desks.id,
                               starts_at=at(busy, 600), ends_at=at(busy, 900), seats=25,
                               price_amount=25000, company_id=org.id, user_id=company.id))
        db.session.add(Booking(reference="DEMOCANC01", unit_id=desks.id,
                               starts_at=at(today, 540), ends_at=at(today, 1080), seats=2,
                               price_amount=0, company_id=org.id, user_id=company.id,
                               status=BookingStatus.CANCELLED, cancel_reason="体調不良のため"))
        closed = busy + timedelta(days=7)
        db.session.add(Closure(unit_id=desks.id, start_date=closed, end_date=closed,
                               reason="設備点検"))
        db.session.add(CapacityOverride(unit_id=desks.id, day=busy + timedelta(days=2),
                                        capacity=75, reason="会員用に10席"))
        db.session.commit()
        ids = {"space": space.id, "unit": desks.id, "busy": busy}
    with served_in_thread(app) as base:
        yield base, ids


@pytest.fixture(scope="module")
def console_page(console_server, axe_source, browser):
    base, _ids = console_server
    # The session's Chromium (tests/browser/conftest.py): one Playwright per process.
    context = browser.new_context(base_url=base, locale="ja-JP", timezone_id="Asia/Tokyo",
                                   viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    context.route("**/*", lambda route: route.continue_()
                  if route.request.url.startswith(base) else route.abort())
    context.add_init_script(axe_source)
    page = context.new_page()
    page.goto("/account/login")
    page.get_by_label("メールアドレス").fill("operator@example.jp")
    page.get_by_label("パスワード").fill(DEMO_PASSWORD)
    page.locator("main").get_by_role("button", name="ログイン").click()
    page.wait_for_url(lambda url: "/account/login" not in url)
    try:
        yield page
    finally:
        context.close()


def shoot(page, name: str) -> None:
    page.wait_for_load_state("load")
    problems = axe_violations(page)
    if problems or ALL_SCREENSHOTS:  # to look at: a failing page, or all with SCREENSHOTS=all
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
    assert not problems, f"{name}: {problems}"


def test_every_console_page(console_page, console_server):
    page = console_page
    _base, ids = console_server
    space, unit, busy = ids["space"], ids["unit"], ids["busy"]
    pages = {
        "index": "/operator/",
        "space": f"/operator/spaces/{space}",
        "space-edit": f"/operator/spaces/{space}/edit",
        "hours": f"/operator/spaces/{space}/hours",
        "availability": f"/operator/spaces/{space}/availability",
        "photos": f"/operator/spaces/{space}/photos",
        "day-today": f"/operator/spaces/{space}/day",
        "day-busy": f"/operator/spaces/{space}/day?day={busy.isoformat()}",
        "month": f"/operator/units/{unit}/month?month={busy.strftime('%Y-%m')}",
        "unit-edit": f"/operator/units/{unit}/edit",
        "unit-new": f"/operator/spaces/{space}/units/new",
        "space-new": "/operator/organisations/{org}/spaces/new",
    }
    page.goto(pages["index"])
    org_link = page.locator("a[href*='/spaces/new']").first.get_attribute("href")
    pages["space-new"] = org_link
    for name, path in pages.items():
        response = page.goto(path)
        assert response.status == 200, (name, response.status)
        shot_name = name
        shoot(page, shot_name)

    # The month view says it in words: the busy day is 満席, and the closure 休業.
    page.goto(pages["month"])
    cell = page.locator("td.day").filter(has=page.locator(f"a[href$='{busy.isoformat()}']"))
    assert "満席" in cell.inner_text() and "空き 0席" in cell.inner_text()
    assert page.locator("td.state-closed").count() >= 1

    # The map corrects the coordinates: a click puts the point into the two fields.
    page.goto(pages["space-edit"])
    lat, lon = page.locator("#lat").input_value(), page.locator("#lon").input_value()
    page.locator("#space-map").click(position={"x": 60, "y": 60})
    assert page.locator("#lat").input_value() != lat
    assert page.locator("#lon").input_value() != lon
    assert abs(float(page.locator("#lat").input_value()) - float(lat)) < 0.05

    # A refused change: a closure over the busy day lists the bookings.
    page.goto(pages["availability"])
    page.get_by_label("開始日").first.fill(busy.isoformat())
    page.get_by_label("終了日").first.fill(busy.isoformat())
    page.get_by_role("button", name="休業日を追加").click()
    page.get_by_role("alert").filter(has_text="DEMO0000A").wait_for()
    shoot(page, "availability-refused")

    # Form errors beside their fields.
    page.goto(pages["unit-edit"])
    page.get_by_label("区画名", exact=True).fill("")
    page.get_by_role("button", name="保存する").click()
    name = page.get_by_label("区画名", exact=True)
    assert name.get_attribute("aria-invalid") == "true"
    shoot(page, "unit-edit-errors")

    # The cancel page.
    page.goto(pages["day-busy"])
    page.get_by_role("link", name="キャンセル").first.click()
    shoot(page, "cancel")

    # At the width of a phone.
    page.set_viewport_size({"width": 390, "height": 844})
    for name in ("month", "day-busy", "space", "availability"):
        page.goto(pages[name])
        shoot(page, f"{name}-390")
        width = page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= 390, f"{name} scrolls sideways at 390 px ({width} px wide)"
    page.set_viewport_size({"width": 1280, "height": 900})

    # In English: the same pages, the same words-and-colours month view.
    page.goto(pages["month"])
    page.get_by_role("button", name="English").click()
    page.wait_for_function("() => document.documentElement?.lang === 'en'")
    for name in ("month", "space", "day-busy", "availability", "hours"):
        page.goto(pages[name])
        shoot(page, f"{name}.en")
    page.goto(pages["month"])
    cell = page.locator("td.day").filter(has=page.locator(f"a[href$='{busy.isoformat()}']"))
    assert "Full" in cell.inner_text() or "full" in cell.inner_text()
    page.get_by_role("button", name="日本語").click()
    page.wait_for_function("() => document.documentElement?.lang === 'ja'")


def test_the_console_works_with_the_keyboard_alone(console_page, console_server, tmp_path):
    page = console_page
    _base, ids = console_server
    space = ids["space"]

    # Tab from the top of the page reaches the console menu and follows it with Enter.
    page.goto(f"/operator/spaces/{space}")
    for _ in range(40):
        page.keyboard.press("Tab")
        if page.evaluate("() => document.activeElement.textContent.trim()") == "営業時間":
            break
    else:
        raise AssertionError("the 営業時間 tab was not reachable with Tab")
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/operator/spaces/{space}/hours")

    # Fill and send a form with the keyboard: a capacity override on a free date. Tab
    # moves from field to field in order; a date input's segments follow the browser's
    # own locale, so the dates are filled into the focused input rather than typed.
    page.goto(f"/operator/spaces/{space}/availability")
    free_day = (clock.today() + timedelta(days=200)).isoformat()

    def focused() -> str:
        return page.evaluate("() => document.activeElement.id")

    page.get_by_label("開始日").nth(1).focus()
    assert focused() == "override-start"
    page.locator("#override-start").fill(free_day)
    page.keyboard.press("Tab")
    while focused() == "override-start":  # past the date's own segments
        page.keyboard.press("Tab")
    assert focused() == "override-end"
    page.locator("#override-end").fill(free_day)
    page.keyboard.press("Tab")
    while focused() == "override-end":
        page.keyboard.press("Tab")
    assert focused() == "override-capacity"
    page.keyboard.type("70")
    page.keyboard.press("Tab")
    assert focused() == "override-reason"
    page.keyboard.type("キーボードで登録")
    page.keyboard.press("Enter")
    # Every unit is ticked, the rooms too: a room is let whole, so 70 seats is refused,
    # beside the seats field, and nothing is written.
    page.locator("#override-capacity-error").wait_for()
    assert "0か1" in page.locator("#override-capacity-error").inner_text()
    assert page.get_by_role("cell", name="キーボードで登録").count() == 0
    # Untick the rooms with the keyboard (Space on each box) and send again.
    form = page.locator("form[aria-labelledby='override-form-title']")
    boxes = form.get_by_role("checkbox")
    for i in range(boxes.count()):
        box = boxes.nth(i)
        label = form.locator(f"label[for='{box.get_attribute('id')}']").inner_text()
        if box.is_checked() and label != "コワーキング席":  # the demo space's desk pool
            box.focus()
            page.keyboard.press("Space")
    page.locator("#override-reason").focus()
    page.keyboard.press("Enter")
    page.get_by_text("席数の変更を登録しました。").wait_for()
    assert page.get_by_role("cell", name="キーボードで登録").count() == 1  # the desks only

    # A photo through the file input (the picker is the browser's; the rest is keys).
    png = tmp_path / "desk.png"
    buffer = io.BytesIO()
    Image.new("RGB", (800, 500), (30, 120, 90)).save(buffer, "PNG")
    png.write_bytes(buffer.getvalue())
    page.goto(f"/operator/spaces/{space}/photos")
    page.get_by_label("写真(JPEG・PNG・WebP、4MBまで)").set_input_files(str(png))
    page.get_by_label("写真の説明(画面読み上げ用)").fill("窓際のデスク")
    page.get_by_label("写真の説明(画面読み上げ用)").press("Enter")
    page.get_by_text("写真を追加しました。").wait_for()
    shoot(page, "photos-uploaded")
    page.goto("/spaces/enishia-shizuoka")
    image = page.get_by_role("img", name="窓際のデスク")
    assert image.evaluate("img => img.complete && img.naturalWidth") == 800
    shoot(page, "public-space-with-photo")
