"""Words shown for the model's codes, in both languages (templates use these only)."""

from __future__ import annotations

from functools import lru_cache

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext

from booking.formatting import current_locale, thousands
from booking.prefectures import by_code

SPACE_KINDS = {
    "satellite_office": _l("サテライトオフィス"),
    "coworking": _l("コワーキングスペース"),
    "workation_house": _l("ワーケーションの家(一棟貸し)"),
    "public_facility": _l("公共施設"),
}
UNIT_KINDS = {
    "desk": _l("デスク(席)"),
    "meeting_room": _l("会議室"),
    "private_room": _l("個室"),
    "whole_house": _l("一棟貸し"),
}
AMENITY_LABELS = {
    "wifi": _l("Wi-Fi"),
    "printer": _l("プリンター"),
    "projector": _l("プロジェクター"),
    "whiteboard": _l("ホワイトボード"),
    "monitors": _l("モニター"),
    "private_booths": _l("個室ブース"),
    "phone_booths": _l("電話ブース"),
    "nursery": _l("保育施設"),
    "parking": _l("駐車場"),
    "shower": _l("シャワー"),
    "kitchen": _l("キッチン"),
    "equipment_lending": _l("機器の無料貸出"),
}
ORG_KINDS = {
    "municipality": _l("自治体"),
    "operator": _l("施設運営者"),
    "company": _l("企業"),
}
# One wording of a booking's status wherever it is shown (company, operator, municipality).
BOOKING_STATUSES = {
    "confirmed": _l("確定"),
    "checked_in": _l("チェックイン済み"),
    "no_show": _l("来場なし"),
    "cancelled": _l("キャンセル済み"),
    "offered": _l("空き待ちからのご案内(未確定)"),
    "expired": _l("ご案内の期限切れ"),
    "released": _l("未チェックインのため解放"),
}
PER = {"day": _l("1日"), "hour": _l("1時間"), "night": _l("1泊")}
WEEKDAYS = (_l("月曜日"), _l("火曜日"), _l("水曜日"), _l("木曜日"), _l("金曜日"),
            _l("土曜日"), _l("日曜日"))


def _value(code) -> str:
    return getattr(code, "value", code)


def space_kind_label(kind) -> str:
    return str(SPACE_KINDS.get(_value(kind), kind))


def unit_kind_label(kind) -> str:
    return str(UNIT_KINDS.get(_value(kind), kind))


def amenity_label(code: str) -> str:
    return str(AMENITY_LABELS.get(code, code))


def org_kind_label(kind) -> str:
    return str(ORG_KINDS.get(_value(kind), kind))


def booking_status_label(status) -> str:
    return str(BOOKING_STATUSES.get(_value(status), status))


def price_label(amount: int, per) -> str:
    if amount == 0:
        return _("無料")
    # Tax-included, as every price shown (総額表示).
    return _("¥%(amount)s(税込)/ %(per)s", amount=thousands(amount), per=PER[_value(per)])


def weekday_name(weekday: int) -> str:
    return str(WEEKDAYS[weekday])


def prefecture_name(code: int | None, locale: str | None = None, unknown: str = "") -> str:
    """The prefecture's name in `locale` (the request's by default); `unknown` for none."""
    pref = by_code(code)
    if pref is None:
        return unknown
    return pref.name_en if (locale or current_locale()) == "en" else pref.name


# How a company took part in a campaign (its registration with the national programme).
TELEWORK_CATEGORIES = {
    "implementing": _l("実施団体"),
    "special": _l("特別協力団体"),
    "none": _l("未登録"),
}


def telework_category_label(code: str) -> str:
    return str(TELEWORK_CATEGORIES.get(code, code))


# What each kind of outbox mail is, for the site admin's outbox page (the kinds are the
# mail families' KIND_* names).
MAIL_KINDS = {
    "confirmation": _l("予約確定"),
    "update": _l("予約変更"),
    "cancellation": _l("予約キャンセル"),
    "reminder": _l("前日のお知らせ"),
    "operator_confirmation": _l("施設への新しい予約のお知らせ"),
    "operator_update": _l("施設への予約変更のお知らせ"),
    "operator_cancellation": _l("施設への予約キャンセルのお知らせ"),
    "consent_request": _l("同意のお願い"),
    "consent_answer": _l("同意の回答"),
    "invitation": _l("招待"),
    "waitlist_offer": _l("空き待ちのご案内"),
    "no_show_released": _l("未チェックインによる解放"),
    "digest": _l("本日の来場予定"),
    "series_confirmation": _l("毎週の予約の確定"),
    "series_update": _l("毎週の予約の一部キャンセル"),
    "series_cancellation": _l("毎週の予約のキャンセル"),
    "operator_series_confirmation": _l("施設への毎週の予約のお知らせ"),
    "operator_series_cancellation": _l("施設への毎週の予約キャンセルのお知らせ"),
}


def mail_kind_label(kind: str) -> str:
    return str(MAIL_KINDS.get(kind, kind))


# What a day or an hour of free time (services/free_time.State) says of itself besides
# free and full, which free_state_text words by the seats.
FREE_STATES = {
    "past": _l("過去"),
    "closed": _l("休業"),
    "beyond": _l("受付前"),
    "members_only": _l("会員専用"),
    "not_offered": _l("対象外"),
    "too_soon": _l("受付終了"),
}


def free_state_text(state, seats: int, whole: bool) -> str:
    """A day or an hour of free time in words: free (a room or house, taken whole) or the
    seats left (a desk), taken or full, or why it cannot be booked."""
    return _free_state_text(current_locale(), _value(state), seats, whole)


# A month shows a few hundred of these per page and the words depend on these alone (and
# on the translations, fixed in a process): each worded once, not asked of gettext again.
@lru_cache(maxsize=4096)
def _free_state_text(locale: str, state: str, seats: int, whole: bool) -> str:
    if state == "free":
        return _("空き") if whole else ngettext("残り%(num)d席", "残り%(num)d席", seats)
    if state == "full":
        return _("予約済み") if whole else _("満席")
    return str(FREE_STATES.get(state, ""))


TEMPLATE_GLOBALS = {
    f.__name__: f
    for f in (space_kind_label, unit_kind_label, amenity_label, org_kind_label, price_label,
              weekday_name, prefecture_name, booking_status_label, telework_category_label,
              mail_kind_label, free_state_text)
}
