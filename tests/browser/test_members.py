"""Issue 19's members and staff in the browser.

- Koto's member (大手町コンサルティング, a member company of テレワークオフィス「Koto」in the
  demo: booking/seeds/members.py) logs in and books the members' desk 会員デスク directly, with no
  campaign slot; a company that is no member is told the desk is for members. Japanese
  and English, 1280 and 390 px.
- An owner (デモ商事's admin) invites a colleague by e-mail; the colleague opens the
  mailed link (read from the server's outbox, as the worker would send it), signs up
  and is a member; the owner sees them on the people page. A second use of the link is
  refused.
axe-clean at every step."""

from __future__ import annotations

import re
import sqlite3
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.policy import default as default_policy

import jpholiday
import pytest

from booking.services.availability import TOKYO
from tests import clock as test_clock
from tests.browser.helpers import LANGS, T, log_in, set_language
from tests.browser.test_journeys import named

KOTO = "/spaces/koto-komagane"
DESK = {"ja": "会員デスク", "en": "Member desks"}
MEMBER = "hayashi@otemachi-consulting.example.jp"
SIZES = {"desktop": {"width": 1280, "height": 900},
         "phone": {"width": 390, "height": 844, "is_mobile": True, "has_touch": True}}


def _fits(page, size: str) -> None:
    if size == "phone":
        page.wait_for_load_state("load")
        width = page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= 390, f"{page.url} is {width}px wide at 390px"


def _open_day(days: int) -> str:
    """A day Koto is open (Monday to Saturday, not a holiday) `days` or more ahead."""
    day = (test_clock.instant() or datetime.now(UTC)).astimezone(TOKYO).date()
    day += timedelta(days=days)
    while day.weekday() == 6 or jpholiday.is_holiday(day):
        day += timedelta(days=1)
    return day.isoformat()


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("lang", LANGS)
def test_kotos_member_books_the_members_desk_directly(new_context, audit, lang, size):
    page = new_context(**SIZES[size]).new_page()
    set_language(page, lang)
    log_in(page, lang, MEMBER)
    page.goto(KOTO)
    book = page.get_by_role("link", name=named(T(lang, "予約する"), ":", DESK[lang]))
    assert book.count() == 1  # a member: the members' desk is bookable here
    assert T(lang, "会員専用です。") not in page.locator("main").inner_text()
    audit(page, f"koto-space-member-{size}", full_page=True)
    _fits(page, size)

    book.click()
    page.locator("#first_date").wait_for()
    when = _open_day(12 + 7 * (LANGS.index(lang) * 2 + list(SIZES).index(size)))
    page.locator("#first_date").fill(when)
    page.locator("#seats").fill("1")
    audit(page, f"koto-form-member-{size}", full_page=True)
    _fits(page, size)
    page.get_by_role("button", name=T(lang, "予約を確定する")).click()
    page.get_by_role("heading", level=1, name=T(lang, "予約の確認")).wait_for()
    assert DESK[lang] in page.locator("main").inner_text()
    audit(page, f"koto-booked-member-{size}", full_page=True)
    _fits(page, size)


@pytest.mark.parametrize("lang", LANGS)
def test_a_company_that_is_no_member_is_told(new_context, audit, live_db, lang):
    page = new_context(**SIZES["phone"]).new_page()
    set_language(page, lang)
    log_in(page, lang, "company@example.jp")  # デモ商事: no member of Koto
    page.goto(KOTO)
    assert page.get_by_role("link", name=named(T(lang, "予約する"), ":", DESK[lang])).count() == 0
    assert T(lang, "会員専用です。") in page.locator("main").inner_text()
    # Straight to the form anyway: told beside the form, nothing booked.
    with sqlite3.connect(live_db) as conn:
        (unit_id,) = conn.execute("SELECT id FROM units WHERE name = '会員デスク'").fetchone()
    page.goto(f"/bookings/new?unit_id={unit_id}")
    page.locator("#first_date").fill(_open_day(40))
    page.get_by_role("button", name=T(lang, "予約を確定する")).click()
    page.get_by_text(T(lang, "この区画は会員専用です。")).first.wait_for()
    audit(page, "koto-form-non-member", full_page=True)
    _fits(page, "phone")


def _outbox_link(live_db: str, recipient: str) -> str:
    """The invitation link of the newest mail to `recipient` in the server's outbox."""
    with sqlite3.connect(live_db) as conn:
        row = conn.execute("SELECT message FROM outbox WHERE recipient = ? AND kind = "
                           "'invitation' ORDER BY id DESC LIMIT 1", (recipient,)).fetchone()
    assert row is not None, f"no invitation mail to {recipient}"
    message = message_from_bytes(row[0], policy=default_policy)
    text = message.get_body(preferencelist=("plain",)).get_content()
    found = re.search(r"https?://\S+/invitations/[A-Za-z0-9_-]+", text)
    assert found, text
    return found.group(0)


@pytest.fixture
def live_db(_server) -> str:
    _proc, _base, log = _server
    return str(log.parent / "browser.sqlite3")


@pytest.mark.parametrize("lang", LANGS)
def test_an_owner_invites_a_colleague_who_joins(new_context, audit, live_db, lang):
    colleague = f"invited-{lang}@demo-shoji.example.jp"
    # The other language's run joined the same company: its member's name is a name.
    audit.extra_names = ("招待 花子", "Hanako Invited")
    owner = new_context().new_page()
    set_language(owner, lang)
    log_in(owner, lang, "company@example.jp")
    owner.goto("/account/")
    owner.get_by_role("link", name=re.compile("^" + re.escape(T(lang, "メンバーと招待")))).click()
    owner.get_by_role("heading", level=1).wait_for()
    # A refusal beside the field first: an address that is no address.
    owner.get_by_label(T(lang, "メールアドレス"), exact=True).fill("not-an-address")
    owner.get_by_role("button", name=T(lang, "招待メールを送る")).click()
    owner.locator(".field.has-error").first.wait_for()
    audit(owner, "people-bad-address", full_page=True)
    owner.get_by_label(T(lang, "メールアドレス"), exact=True).fill(colleague)
    owner.get_by_label(T(lang, "役割"), exact=True).select_option("staff")
    owner.get_by_role("button", name=T(lang, "招待メールを送る")).click()
    owner.get_by_text(T(lang, "%(email)sに招待を送りました。", email=colleague)).wait_for()
    assert colleague in owner.locator("main").inner_text()
    audit(owner, "people-invited", full_page=True)

    link = _outbox_link(live_db, colleague)
    path = "/" + link.split("/", 3)[3]
    newcomer = new_context(**SIZES["phone"]).new_page()
    set_language(newcomer, lang)
    newcomer.goto(path)
    newcomer.get_by_role("heading", level=1).wait_for()
    audit(newcomer, "invitation-signup", full_page=True)
    _fits(newcomer, "phone")
    name = "招待 花子" if lang == "ja" else "Hanako Invited"
    newcomer.get_by_label(T(lang, "お名前")).fill(name)
    newcomer.get_by_label(T(lang, "パスワード")).fill("a-long-unguessable-phrase-19")
    newcomer.get_by_role("button", name=T(lang, "登録して参加する")).click()
    newcomer.get_by_text(T(lang, "%(organisation)sに参加しました。",
                           organisation="デモ商事株式会社" if lang == "ja" else
                           "Demo Trading Co., Ltd.")).first.wait_for()
    main = newcomer.locator("main").inner_text()
    assert name in main and T(lang, "メンバー") in main
    audit(newcomer, "invitation-joined", full_page=True)
    _fits(newcomer, "phone")

    owner.reload()
    assert name in owner.locator("main").inner_text()
    audit(owner, "people-with-new-member", full_page=True)

    # The link again, logged out: used once.
    other = new_context().new_page()
    set_language(other, lang)
    other.goto(path)
    assert T(lang, "この招待は既に使われました。") in other.locator("main").inner_text()
    audit(other, "invitation-used")


@pytest.mark.parametrize("lang", LANGS)
def test_kotos_operator_keeps_the_member_list(new_context, audit, live_db, lang):
    """駒ヶ根市 (komagane@example.jp) opens Koto's member list from its console page: the
    demo's members are there; a whole company asked for an address nobody of a company
    has is refused beside the field; a person is added and removed again."""
    with sqlite3.connect(live_db) as conn:
        (space_id,) = conn.execute(
            "SELECT id FROM spaces WHERE slug = 'koto-komagane'").fetchone()
    page = new_context(**SIZES["phone"]).new_page()
    set_language(page, lang)
    log_in(page, lang, "komagane@example.jp")
    page.goto(f"/operator/spaces/{space_id}")
    page.get_by_role("link", name=T(
        lang, "会員の一覧(会員専用の区画を直接予約できる会社・個人)")).click()
    main = page.locator("main")
    main.get_by_role("heading", level=1).wait_for()
    text = main.inner_text()
    assert "ishikawa@minato-digital.example.jp" in text
    assert ("大手町コンサルティング株式会社" if lang == "ja"
            else "Otemachi Consulting Co., Ltd.") in text
    audit(page, "koto-members", full_page=True)
    _fits(page, "phone")

    newcomer = f"walk-in-{lang}@example.jp"
    page.get_by_label(T(lang, "メールアドレス"), exact=True).fill(newcomer)
    page.get_by_label(T(lang, "この方の会社全体を会員にする(登録済みの会社の方のみ)")).check()
    page.get_by_role("button", name=T(lang, "追加する")).click()
    page.locator(".field.has-error").first.wait_for()
    assert T(lang, "このアドレスの方は登録済みの会社に所属していません。"
                   "会社ごとではなく個人として追加してください。") in main.inner_text()
    audit(page, "koto-members-refused", full_page=True)
    _fits(page, "phone")

    page.get_by_label(T(lang, "この方の会社全体を会員にする(登録済みの会社の方のみ)")).uncheck()
    page.get_by_role("button", name=T(lang, "追加する")).click()
    page.get_by_text(T(lang, "会員を追加しました。")).wait_for()
    assert newcomer in main.inner_text()
    page.get_by_role("button", name=named(T(lang, "会員から外す"), ":", newcomer)).click()
    page.get_by_text(T(lang, "会員から外しました。")).wait_for()
    assert newcomer not in main.inner_text()
    audit(page, "koto-members-after", full_page=True)
