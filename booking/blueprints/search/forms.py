"""The search form: a GET form, so that results can be linked to."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, HiddenField, IntegerField, SelectField, StringField
from wtforms.validators import NumberRange, Optional, ValidationError

from booking.formatting import parse_hhmm
from booking.forms import DateField, options
from booking.labels import UNIT_KINDS
from booking.models import AMENITIES
from booking.services import search as search_service

RADII = (5, 10, 30, 50, 100, 300)
PER_PAGE = 20


def _time_of_day(_form: FlaskForm, field: StringField) -> None:
    try:
        parse_hhmm(field.data)
    except ValueError:
        raise ValidationError(_l("時刻は 09:00 の形で入力してください。")) from None


def amenities(values: list[str]) -> list[str]:
    """The known amenities checked (a comma list in the API's style, or repeated boxes)."""
    names = [a.strip() for raw in values for a in raw.split(",") if a.strip()]
    return [a for a in names if a in AMENITIES]


class SearchForm(FlaskForm):
    # A GET form: searching changes nothing, and results must be linkable.
    class Meta:
        csrf = False

    near = StringField(_l("場所"), validators=[Optional()],
                       description=_l("駅名・市町村・都道府県(例: 静岡駅、駒ヶ根、吉川市、Shizuoka)"))
    radius_km = SelectField(_l("範囲"), default="30",
                            choices=options([(str(r), f"{r} km") for r in RADII]))
    date = DateField(_l("日付"), validators=[Optional()])
    end_date = DateField(_l("最終日"), validators=[Optional()],
                         description=_l("複数日のときだけ。一棟貸しは最後に泊まる夜の日付。"))
    start = StringField(_l("開始時刻"), validators=[Optional(), _time_of_day])
    end = StringField(_l("終了時刻"), validators=[Optional(), _time_of_day])
    seats = IntegerField(_l("人数"), default=1,
                         validators=[Optional(), NumberRange(min=1, max=search_service.MAX_SEATS,
                                                             message=_l("1から200の間で入力してください。"))])
    kind = SelectField(_l("種類"), default="",
                       choices=options([("", _l("すべて")), *UNIT_KINDS.items()]))
    max_price = IntegerField(_l("上限料金(円)"), validators=[
        Optional(), NumberRange(min=0, message=_l("0以上で入力してください。"))])
    free = BooleanField(_l("無料の枠だけ"))
    campaign = HiddenField()
    sort = SelectField(_l("並び順"), default="distance",
                       choices=options([("distance", _l("近い順")), ("price", _l("安い順"))]))

    def validate_end_date(self, field) -> None:
        if field.data and not self.date.data:
            raise ValidationError(_l("最終日を入れるときは日付も入れてください。"))
        if field.data and self.date.data and field.data < self.date.data:
            raise ValidationError(_l("最終日は日付より後にしてください。"))
        if field.data and self.date.data and (field.data - self.date.data).days >= search_service.MAX_DAYS:
            raise ValidationError(_l("検索できる期間は最長31日です。"))

    def validate_end(self, field) -> None:
        if (field.data and self.start.data and not self.start.errors
                and parse_hhmm(field.data) <= parse_hhmm(self.start.data)):
            raise ValidationError(_l("終了時刻は開始時刻より後にしてください。"))

    def query(self, checked: list[str], page: int) -> search_service.SearchQuery:
        """The search the (validated) form asks for."""
        return search_service.SearchQuery(
            near=self.near.data or None, radius_km=float(self.radius_km.data or 30),
            date=self.date.data, end_date=self.end_date.data,
            start_min=parse_hhmm(self.start.data), end_min=parse_hhmm(self.end.data),
            seats=self.seats.data or 1, kind=self.kind.data or None, amenities=tuple(checked),
            max_price=self.max_price.data, free=bool(self.free.data),
            campaign=self.campaign.data or None, sort=self.sort.data or "distance",
            page=page, per_page=PER_PAGE,
        )
