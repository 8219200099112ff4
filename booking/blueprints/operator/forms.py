"""The operator console's forms: what each page accepts, parsed into the values the
services take (space_admin, closures, front_desk, exports, photos)."""

from __future__ import annotations

from datetime import date

from flask import request
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import (
    BooleanField,
    EmailField,
    FloatField,
    Form,
    FormField,
    IntegerField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.validators import (
    DataRequired,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    Regexp,
    ValidationError,
)
from wtforms.widgets import CheckboxInput, ListWidget

from booking.formatting import current_locale, hhmm, parse_hhmm
from booking.forms import DateField, PostalCodeForm, coerce_prefecture, options, prefecture_options
from booking.labels import AMENITY_LABELS, PER, SPACE_KINDS, UNIT_KINDS, weekday_name
from booking.models import AMENITIES, PricePer, Space, SpaceKind, Unit, UnitKind
from booking.services import addresses


class MultiCheckboxField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


def _time_field(label, default: str, example=None) -> StringField:
    return StringField(label, default=default, validators=[Optional(), Length(max=5)],
                       description=example or _l("例: 09:00"))


class ActionForm(FlaskForm):
    """A button that changes something: its CSRF token (checked for every POST by
    CSRFProtect) and, when refused, the refusal at the top of the page."""


class SpaceForm(PostalCodeForm, FlaskForm):
    name = StringField(_l("施設名"), validators=[DataRequired(), Length(max=200)])
    name_en = StringField(_l("施設名(英語)"), validators=[Optional(), Length(max=200)])
    kind = SelectField(_l("施設の種類"), choices=options(SPACE_KINDS.items()))
    slug = StringField(
        _l("URL名"), validators=[Optional(), Length(min=3, max=80),
                                Regexp(r"^[a-z0-9][a-z0-9-]*[a-z0-9]$",
                                       message=_l("半角英小文字・数字・ハイフンで入力してください。"))],
        description=_l("公開ページのアドレスに使います。空欄なら自動で決めます。"),
    )
    description = TextAreaField(_l("説明"), validators=[Optional(), Length(max=4000)])
    description_en = TextAreaField(_l("説明(英語)"), validators=[Optional(), Length(max=4000)])
    prefecture_code = SelectField(_l("都道府県"), coerce=coerce_prefecture, choices=[],
                                  validators=[DataRequired(_l("都道府県を選んでください。"))])
    city = StringField(_l("市区町村"), validators=[DataRequired(), Length(max=100)])
    address = StringField(_l("住所(都道府県より後)"), validators=[DataRequired(), Length(max=300)])
    lat = FloatField(_l("緯度"), validators=[Optional(), NumberRange(20, 46)],
                     description=_l("空欄なら住所から求めます。地図でも直せます。"))
    lon = FloatField(_l("経度"), validators=[Optional(), NumberRange(122, 154)])
    regeocode = BooleanField(_l("住所から座標を求め直す"))
    nearest_station = StringField(_l("最寄り駅"), validators=[Optional(), Length(max=100)])
    access = StringField(_l("アクセス"), validators=[Optional(), Length(max=300)])
    access_en = StringField(_l("アクセス(英語)"), validators=[Optional(), Length(max=300)])
    contact_phone = StringField(
        _l("問い合わせ電話番号"),
        validators=[Optional(), Length(max=30), Regexp(
            r"^\+?[0-9][0-9 ()-]*[0-9]$",
            message=_l("数字とハイフンで入力してください(例: 054-123-4567)。"))],
        description=_l("キャンセル期限を過ぎた予約の利用者に、連絡先として表示します。"))
    contact_email = EmailField(_l("問い合わせメールアドレス"),
                               validators=[Optional(), Length(max=254)])
    amenities = MultiCheckboxField(_l("設備"), choices=options(
        (a, AMENITY_LABELS[a]) for a in AMENITIES))
    published = BooleanField(_l("公開する"), default=True)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.prefecture_code.choices = prefecture_options(current_locale())

    def values(self) -> dict:
        return {
            "name": self.name.data.strip(), "name_en": (self.name_en.data or "").strip(),
            "kind": SpaceKind(self.kind.data), "slug": (self.slug.data or "").strip(),
            "description": self.description.data or "",
            "description_en": self.description_en.data or "",
            "postal_code": self.postal_code_value(),
            "prefecture_code": self.prefecture_code.data, "city": self.city.data.strip(),
            "address": self.address.data.strip(), "lat": self.lat.data, "lon": self.lon.data,
            "nearest_station": (self.nearest_station.data or "").strip(),
            "access": (self.access.data or "").strip(),
            "access_en": (self.access_en.data or "").strip(),
            "contact_phone": (self.contact_phone.data or "").strip(),
            "contact_email": (self.contact_email.data or "").strip(),
            "amenities": [a for a in AMENITIES if a in (self.amenities.data or [])],
            "published": bool(self.published.data),
        }

    def validate_contact_email(self, field) -> None:
        if not (field.data or "").strip():
            return
        try:  # the one address rule (booking.services.addresses)
            field.data = addresses.normalise(field.data)
        except addresses.AddressError as error:
            raise ValidationError(error.message) from None

    def validate_lon(self, field) -> None:
        if (field.data is None) != (self.lat.data is None):
            raise ValidationError(_l("緯度と経度は両方入力するか、両方空欄にしてください。"))


class DayHoursForm(Form):
    open = BooleanField(_l("営業する"))
    opens = _time_field(_l("開始"), "09:00")
    closes = _time_field(_l("終了"), "18:00", _l("例: 18:00"))

    def validate_closes(self, field) -> None:
        if not self.open.data:
            return
        try:
            opens, closes = parse_hhmm(self.opens.data), parse_hhmm(field.data)
        except ValueError:
            opens = closes = None
        if opens is None or closes is None:
            raise ValidationError(_l("時刻は 09:00 の形で入力してください(終了は 24:00 まで)。"))
        if opens >= closes:
            raise ValidationError(_l("終了は開始より後にしてください。"))


class HoursForm(FlaskForm):
    # One named sub-form per weekday (day0 = Monday … day6), not a FieldList: a FieldList
    # renumbers what it receives, so a weekday left out would shift the others.
    closed_on_holidays = BooleanField(_l("祝日は休業する"))

    @property
    def days(self) -> list:
        return [getattr(self, f"day{weekday}") for weekday in range(7)]

    def show(self, space: Space) -> HoursForm:
        """The space's hours in a form that was not sent; the weekdays' names always."""
        if not self.is_submitted():
            self.closed_on_holidays.data = space.closed_on_holidays
            for weekday, entry in enumerate(self.days):
                row = space.hours_on(weekday)
                entry.open.data = row is not None
                if row is not None:
                    entry.opens.data = hhmm(row.opens_min)
                    entry.closes.data = hhmm(row.closes_min)
        for weekday, entry in enumerate(self.days):
            entry.label.text = weekday_name(weekday)
        return self

    def hours(self) -> dict[int, tuple[int, int]]:
        return {
            weekday: (parse_hhmm(entry.opens.data), parse_hhmm(entry.closes.data))
            for weekday, entry in enumerate(self.days)
            if entry.open.data
        }


for _weekday in range(7):
    setattr(HoursForm, f"day{_weekday}", FormField(DayHoursForm))


class UnitForm(FlaskForm):
    name = StringField(_l("区画名"), validators=[DataRequired(), Length(max=200)])
    name_en = StringField(_l("区画名(英語)"), validators=[Optional(), Length(max=200)])
    kind = SelectField(_l("種類"), choices=options(UNIT_KINDS.items()))
    capacity = IntegerField(
        _l("席数"), default=1, validators=[DataRequired(_l("席数を入力してください。")),
                                          NumberRange(1, 10000)],
        description=_l("同時に予約できる席の数。会議室・個室・一棟貸しは1(まるごと貸し)です。"))
    fits_people = IntegerField(_l("定員(人)"), default=1,
                               validators=[DataRequired(), NumberRange(1, 1000)])
    price_amount = IntegerField(_l("料金(円)"), default=0,
                                validators=[Optional(), NumberRange(0, 10_000_000)],
                                description=_l("0 は無料。料金の変更はオーナーだけができます。"))
    price_per = SelectField(_l("料金の単位"), choices=options(PER.items()))
    min_length = IntegerField(_l("最短(単位の数)"), default=1,
                              validators=[DataRequired(), NumberRange(1, 365)])
    max_length = IntegerField(_l("最長(単位の数)"), default=30,
                              validators=[DataRequired(), NumberRange(1, 365)])
    lead_time_hours = IntegerField(_l("受付期限(開始の何時間前まで)"), default=0,
                                   validators=[Optional(), NumberRange(0, 24 * 90)])
    cancel_deadline_hours = IntegerField(_l("キャンセル期限(開始の何時間前まで)"), default=24,
                                         validators=[Optional(), NumberRange(0, 24 * 90)])
    max_days_ahead = IntegerField(_l("予約の受付期間(何日先まで)"), default=365,
                                  validators=[DataRequired(), NumberRange(1, 1830)],
                                  description=_l("今日から何日先までの予約を受け付けるか(1〜1830日)。"))
    members_only = BooleanField(_l("会員専用(一般はキャンペーン枠からのみ予約できる)"))
    checkin = _time_field(_l("チェックイン(一棟貸し)"), "15:00", _l("例: 15:00"))
    checkout = _time_field(_l("チェックアウト(一棟貸し)"), "10:00", _l("例: 10:00"))
    # services/no_shows.py: None (empty) is off, the default.
    no_show_release_minutes = IntegerField(
        _l("未チェックインの席の解放(分)"),
        validators=[Optional(),
                    NumberRange(1, 1440, _l("1〜1440分の数字を入力するか、空欄にしてください。"))],
        description=_l("開始から N 分以内にチェックインがない席を解放する(N は1〜1440)。"
                       "解放した席はすぐに検索と空き待ちに戻り、予約者にメールで知らせます。"
                       "空欄なら解放しません。一棟貸しには使えません。"))

    def show(self, unit: Unit, owner: bool) -> UnitForm:
        """The unit's times in a form that was not sent. Staff see the price but cannot
        change it: the fields are disabled and never read (values(with_price=False))."""
        if not self.is_submitted():
            self.checkin.data = hhmm(unit.checkin_min)
            self.checkout.data = hhmm(unit.checkout_min)
        if not owner:
            self.price_amount.render_kw = {"disabled": True}
            self.price_per.render_kw = {"disabled": True}
            self.price_amount.data, self.price_per.data = unit.price_amount, unit.price_per.value
        return self

    def validate_capacity(self, field) -> None:
        if self.kind.data != UnitKind.DESK.value and field.data not in (None, 1):
            raise ValidationError(_l("会議室・個室・一棟貸しの席数は1です(定員は別に入力します)。"))

    def validate_max_length(self, field) -> None:
        if field.data and self.min_length.data and field.data < self.min_length.data:
            raise ValidationError(_l("最長は最短以上にしてください。"))

    def validate_checkin(self, field) -> None:
        try:
            parse_hhmm(field.data)
        except ValueError:
            raise ValidationError(_l("時刻は 15:00 の形で入力してください。")) from None

    validate_checkout = validate_checkin

    def validate_no_show_release_minutes(self, field) -> None:
        if field.data is not None and self.kind.data == UnitKind.WHOLE_HOUSE.value:
            raise ValidationError(_l("一棟貸しの席は解放できません。空欄にしてください。"))

    def values(self, with_price: bool) -> dict:
        values = {
            "name": self.name.data.strip(), "name_en": (self.name_en.data or "").strip(),
            "kind": UnitKind(self.kind.data), "capacity": self.capacity.data,
            "fits_people": self.fits_people.data, "min_length": self.min_length.data,
            "max_length": self.max_length.data, "lead_time_hours": self.lead_time_hours.data or 0,
            "cancel_deadline_hours": self.cancel_deadline_hours.data or 0,
            "max_days_ahead": self.max_days_ahead.data,
            "members_only": bool(self.members_only.data),
            "checkin_min": parse_hhmm(self.checkin.data or "15:00"),
            "checkout_min": parse_hhmm(self.checkout.data or "10:00"),
            "no_show_release_minutes": self.no_show_release_minutes.data,
        }
        if with_price:
            values["price_amount"] = self.price_amount.data or 0
            values["price_per"] = PricePer(self.price_per.data)
        return values


class _UnitsDatesForm(FlaskForm):
    units = MultiCheckboxField(_l("区画"), coerce=int, choices=[],
                               validators=[DataRequired(_l("区画を選んでください。"))])
    start = DateField(_l("開始日"), validators=[DataRequired(_l("日付を入力してください。"))])
    end = DateField(_l("終了日"), validators=[DataRequired(_l("日付を入力してください。"))])
    reason = StringField(_l("理由(任意)"), validators=[Optional(), Length(max=200)])

    def validate_end(self, field) -> None:
        if field.data and self.start.data and field.data < self.start.data:
            raise ValidationError(_l("終了日は開始日以降にしてください。"))
        if field.data and self.start.data and (field.data - self.start.data).days > 366:
            raise ValidationError(_l("一度に指定できるのは1年までです。"))

    def with_units(self, space: Space, fresh: bool = False) -> _UnitsDatesForm:
        """Choices from the space's units; all ticked on a form that was not sent
        (`fresh`: one built empty beside the form that was)."""
        self.units.choices = options((u.id, u.display_name(current_locale()))
                                     for u in space.units)
        if fresh or not self.is_submitted():
            self.units.data = [u.id for u in space.units]
        return self


class ClosureForm(_UnitsDatesForm):
    pass


class OverrideForm(_UnitsDatesForm):
    # 0 is a valid answer (no seat that day), so InputRequired rather than DataRequired.
    capacity = IntegerField(_l("その日の席数"), validators=[
        InputRequired(_l("席数を入力してください。")), NumberRange(0, 10000)],
        description=_l("例: 85席のうち10席を会員用に残すなら 75"))


class CancelForm(FlaskForm):
    reason = TextAreaField(_l("キャンセルの理由(お客様に伝わります)"),
                           validators=[DataRequired(_l("理由を入力してください。")),
                                       Length(max=500)])


class PhotoForm(FlaskForm):
    file = FileField(_l("写真(JPEG・PNG・WebP、4MBまで)"),
                     validators=[FileRequired(_l("ファイルを選んでください。"))])
    alt = StringField(_l("写真の説明(画面読み上げ用)"), validators=[Optional(), Length(max=200)])


class _GetForm(FlaskForm):
    """A form sent by GET: read from the query string, no CSRF token."""

    class Meta:
        csrf = False

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("formdata", request.args)
        super().__init__(**kwargs)


class DayForm(_GetForm):
    day = DateField(_l("日付"), validators=[Optional()])


class MonthForm(_GetForm):
    month = StringField(_l("月"), validators=[Optional(), Regexp(r"^\d{4}-\d{2}$")],
                        description=_l("例: 2026-08"))

    def first_day(self, default: date) -> date:
        """The first day of the month asked for, else `default`'s month."""
        if self.validate() and self.month.data:
            year, month = (int(x) for x in self.month.data.split("-"))
            if 2000 <= year <= 2100 and 1 <= month <= 12:
                return date(year, month, 1)
        return default.replace(day=1)


class ExportForm(_GetForm):
    start = DateField(_l("開始日"), validators=[DataRequired(_l("日付を入力してください。"))])
    end = DateField(_l("終了日"), validators=[DataRequired(_l("日付を入力してください。"))])

    def validate_end(self, field) -> None:
        if field.data and self.start.data and field.data < self.start.data:
            raise ValidationError(_l("終了日は開始日以降にしてください。"))
