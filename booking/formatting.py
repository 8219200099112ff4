"""How numbers, times and dates are written for people: one function for each, used by the
templates (booking.web registers them as Jinja filters), mail, calendars and reports.

Pure functions: no request is needed. The few words they write ("無料", "km") are
translated in the current locale (a request's, or force_locale's around mail and
calendars); the dates take the locale as an argument, the current one when not given.

- times of day: minutes after Tokyo midnight ↔ "HH:MM", always zero-padded ("09:00");
  1440 is "24:00", the end of a day; ↔ a form's time value (datetime.time);
- numbers: "1,234"; yen: "¥1,234"; a price of 0 is "無料" (free), a sum of 0 in a table
  is "¥0";
- distances: "12.3 km";
- dates: "2019年7月24日(水)" in Japanese, "Wed 24 Jul 2019" in English; a booking's time
  range adds its times, and its end date only when it ends on another day; files and
  logs write an instant as "2019-07-24 09:00" (Tokyo).
"""

from __future__ import annotations

import re
from datetime import date, datetime, time

from babel.dates import format_date
from flask_babel import get_locale
from flask_babel import gettext as _

from booking.clock import TOKYO

_HHMM = re.compile(r"^([01]?\d|2[0-4]):([0-5]\d)$")
_WEEKDAYS_JA = "月火水木金土日"


def current_locale() -> str:
    """The locale of the request or of force_locale; "ja" outside of both."""
    try:
        return str(get_locale() or "ja")
    except RuntimeError:  # an app context without a request: the selector reads one
        return "ja"


# ------------------------------------------------------------------ times of day


def parse_hhmm(text: str | None) -> int | None:
    """'09:30' (or '9:30') → 570 minutes after midnight; '24:00' → 1440, the end of the
    day. None when the text is empty; ValueError when it is not a time of day."""
    if text is None or not text.strip():
        return None
    match = _HHMM.match(text.strip())
    minutes = int(match.group(1)) * 60 + int(match.group(2)) if match else None
    if minutes is None or minutes > 1440:
        raise ValueError("must be HH:MM")
    return minutes


def hhmm(minutes: int) -> str:
    """570 → '09:30'; 1440 → '24:00'."""
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def minutes_of(value: time) -> int:
    """A form's time of day (datetime.time) as minutes after midnight: 09:30 → 570."""
    return value.hour * 60 + value.minute


def time_of(minutes: int) -> time:
    """Minutes after midnight as a form's time of day; the end of the day (1440) is 00:00."""
    minutes %= 1440
    return time(minutes // 60, minutes % 60)


def local_time(value: datetime) -> str:
    """The time of day in Tokyo of an aware instant: '09:30'."""
    return hhmm(minutes_of(value.astimezone(TOKYO)))


# ------------------------------------------------------------------ money and distance


def yen(amount: int | None) -> str:
    """A price: '¥1,234', '無料' for 0, '' for none."""
    if amount is None:
        return ""
    if amount == 0:
        return _("無料")
    return yen_amount(amount)


def yen_amount(amount: int) -> str:
    """An amount of money in a table or total: '¥1,234', also '¥0'."""
    return "¥" + thousands(amount)


def yen_taxed(amount: int | None) -> str:
    """A price with its tax stated (総額表示): '¥1,100(税込)', '無料' for 0, '' for none."""
    if amount is None:
        return ""
    if amount == 0:
        return _("無料")
    return _("%(amount)s(税込)", amount=yen_amount(amount))


def thousands(number: float) -> str:
    """A number with its thousands grouped: 1234567 → '1,234,567'."""
    return format(number, ",")


def distance(km: float | None) -> str:
    """'12.3 km'; '' when unknown."""
    if km is None:
        return ""
    return _("%(km)s km", km=format(km, ".1f"))


# ------------------------------------------------------------------ dates


def local_date(value: date | datetime, locale: str | None = None) -> str:
    """A date (an aware instant: its Tokyo date) with its weekday: '2019年7月24日(水)',
    'Wed 24 Jul 2019'."""
    if isinstance(value, datetime):
        value = value.astimezone(TOKYO).date()
    if (locale or current_locale()) == "ja":
        return f"{value.year}年{value.month}月{value.day}日({_WEEKDAYS_JA[value.weekday()]})"
    return format_date(value, "EEE d MMM y", locale="en")


def local_period(start: datetime, end: datetime, locale: str | None = None) -> str:
    """A booking's [start, end) in Tokyo: '2019年7月24日(水) 09:00–18:00' on one day,
    '2019年7月24日(水) 15:00 – 2019年7月25日(木) 10:00' over several."""
    locale = locale or current_locale()
    first = local_date(start, locale)
    last = local_date(end, locale)
    if first == last:
        return f"{first} {local_time(start)}–{local_time(end)}"
    return f"{first} {local_time(start)} – {last} {local_time(end)}"


def local_stamp(value: datetime) -> str:
    """An instant in Tokyo for files and logs (CSV exports, the outbox's status):
    '2019-07-24 09:00'."""
    return value.astimezone(TOKYO).strftime("%Y-%m-%d ") + local_time(value)


# The Jinja filters (booking.web registers them under these names).
def wareki_date(value: date | datetime) -> str:
    """The date in the Japanese era (令和9年7月24日), for documents of the public sector
    (booking/wareki.py); in English, the era with the Western year."""
    from booking.wareki import wareki

    return wareki(value, current_locale())


FILTERS = {
    "yen": yen,
    "yen_amount": yen_amount,
    "yen_taxed": yen_taxed,
    "thousands": thousands,
    "distance": distance,
    "hhmm": hhmm,
    "local_date": local_date,
    "local_time": local_time,
    "local_period": local_period,
    "wareki": wareki_date,
}
