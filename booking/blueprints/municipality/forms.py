"""The municipality's forms: campaigns, slots, extras and the report's factors. Each form
that feeds a service turns its fields into that service's data (`data()`)."""

from __future__ import annotations

import re
from datetime import date, time

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    Field,
    FloatField,
    IntegerField,
    SelectField,
    StringField,
    TextAreaField,
    TimeField,
    ValidationError,
)
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional, Regexp

from booking import dates
from booking.formatting import minutes_of, time_of
from booking.forms import DateField, options
from booking.models import Campaign, CampaignSlot, Eligibility
from booking.services import campaign_extras, reports
from booking.services import campaign_management as management

# Paths of the public campaigns blueprint that a slug must not shadow.
RESERVED_SLUGS = {"participation", "consents", "new"}


def parse_days(text: str) -> list[date]:
    """'2019-07-24, 2019-07-25' (commas, 、 or spaces between) → the dates."""
    return [dates.check(date.fromisoformat(p.strip()))
            for p in re.split(r"[,、\s]+", text) if p.strip()]


class CampaignTermsForm(FlaskForm):
    """What a municipality's campaign and a national campaign both have: names, a slug,
    descriptions, the period and its core days (subclasses relabel and add fields)."""

    name = StringField(_l("キャンペーン名"), validators=[DataRequired(), Length(max=200)])
    name_en = StringField(_l("キャンペーン名(英語)"), validators=[Optional(), Length(max=200)])
    slug = StringField(
        _l("URL名"), validators=[DataRequired(), Length(min=3, max=80),
                               Regexp(r"^[a-z0-9][a-z0-9-]*$",
                                      message=_l("半角英小文字・数字・ハイフンで入力してください。"))],
        description=_l("公開ページのURLと、予約APIの campaign に使います"
                       "(例: telework-days-2019-yoshikawa)。"))
    description = TextAreaField(_l("説明"), validators=[Optional(), Length(max=4000)])
    description_en = TextAreaField(_l("説明(英語)"), validators=[Optional(), Length(max=4000)])
    starts_on = DateField(_l("実施期間の初日"), validators=[InputRequired()])
    ends_on = DateField(_l("実施期間の最終日"), validators=[InputRequired()])
    core_days = StringField(
        _l("コア日"), validators=[Optional(), Length(max=400)],
        description=_l("YYYY-MM-DD 形式。複数あるときはカンマで区切ります(例: 2019-07-24)。"))
    published = BooleanField(_l("公開する"))

    core_day_list: list[date]

    def validate_core_days(self, field: Field) -> None:
        try:
            self.core_day_list = parse_days(field.data or "")
        except ValueError:
            raise ValidationError(_l("日付は YYYY-MM-DD 形式で入力してください。")) from None

    def terms(self) -> dict:
        """The shared fields as the services' data take them."""
        return {"slug": self.slug.data, "name": self.name.data,
                "name_en": self.name_en.data or "", "description": self.description.data or "",
                "description_en": self.description_en.data or "",
                "starts_on": self.starts_on.data, "ends_on": self.ends_on.data,
                "core_days": getattr(self, "core_day_list", []),
                "published": self.published.data}


class CampaignForm(CampaignTermsForm):
    organisation_id = SelectField(_l("実施する自治体"), coerce=int)
    national_campaign_id = SelectField(
        _l("全国キャンペーン"), coerce=lambda v: int(v) if v not in (None, "", "None") else None,
        description=_l("全国キャンペーンの地域プログラムにすると、実施期間はその期間内に限られます。"
                       "コア日を入力しなければ、全国キャンペーンのコア日を表示します。"))

    def fill(self, campaign: Campaign) -> None:
        """A GET of the edit form: the core days as the text field shows them."""
        self.core_days.data = ", ".join(campaign.core_days)

    def validate_slug(self, field: Field) -> None:
        if field.data in RESERVED_SLUGS:
            raise ValidationError(_l("このURL名は使えません。"))

    def to_data(self) -> management.CampaignData:
        return management.CampaignData(**self.terms(),
                                       national_campaign_id=self.national_campaign_id.data)


PRICE_MODES = (("free", _l("無料")), ("price", _l("割引料金")), ("unit", _l("区画の通常料金")))


class SlotForm(FlaskForm):
    unit_id = SelectField(_l("区画"), coerce=int,
                          description=_l("施設運営者の施設の区画は、その運営者の同意後に公開されます。"))
    start_date = DateField(_l("提供の初日"), validators=[InputRequired()])
    end_date = DateField(_l("提供の最終日"), validators=[InputRequired()])
    daily_start = TimeField(_l("毎日の開始時刻"), validators=[InputRequired()])
    daily_end = TimeField(_l("毎日の終了時刻"), validators=[InputRequired()])
    seats = IntegerField(_l("提供する席数"), validators=[InputRequired(), NumberRange(min=0, max=10000)])
    price_mode = SelectField(_l("料金"), choices=options(PRICE_MODES))
    price_amount = IntegerField(_l("割引料金(円、区画の料金単位あたり)"),
                                validators=[Optional(), NumberRange(min=0, max=10_000_000)])
    subsidy_cap = IntegerField(
        _l("自治体の負担上限(円、1予約あたり)"), validators=[Optional(), NumberRange(min=0, max=10_000_000)],
        description=_l("企業の支払額のうち、この額まで自治体が負担します。空欄なら負担なし。"))
    max_seats_per_company_per_day = IntegerField(
        _l("1社1日あたりの席数の上限"), validators=[Optional(), NumberRange(min=1, max=10000)])
    max_bookings_per_company = IntegerField(
        _l("1社あたりの予約回数の上限(キャンペーン全体)"),
        validators=[Optional(), NumberRange(min=1, max=10000)])
    eligibility = SelectField(_l("予約できる企業"), choices=options([
        (Eligibility.ANY_COMPANY.value, _l("すべての企業")),
        (Eligibility.OUTSIDE_PREFECTURE.value, _l("県外に本社がある企業のみ")),
    ]))

    def fill(self, campaign: Campaign, slot: CampaignSlot | None) -> None:
        """A GET: a new slot offers the campaign's dates, 9:00–18:00, free; an existing one
        shows its times and price mode (fields a model attribute does not fill)."""
        if slot is None:
            self.start_date.data, self.end_date.data = campaign.starts_on, campaign.ends_on
            self.daily_start.data, self.daily_end.data = time(9), time(18)
            self.price_mode.data = "free"
            return
        self.daily_start.data = time_of(slot.daily_start_min)
        self.daily_end.data = time_of(slot.daily_end_min)
        self.price_mode.data = ("unit" if slot.price_amount is None
                                else "free" if slot.price_amount == 0 else "price")
        self.eligibility.data = slot.eligibility.value

    def validate_price_amount(self, field: Field) -> None:
        if self.price_mode.data == "price" and field.data is None:
            raise ValidationError(_l("割引料金を入力してください。"))

    def to_data(self) -> management.SlotData:
        mode = self.price_mode.data
        price = 0 if mode == "free" else (self.price_amount.data if mode == "price" else None)
        return management.SlotData(
            unit_id=self.unit_id.data, start_date=self.start_date.data,
            end_date=self.end_date.data,
            daily_start_min=minutes_of(self.daily_start.data),
            # 00:00 as an end is the end of the day.
            daily_end_min=minutes_of(self.daily_end.data) or 1440,
            seats=self.seats.data, price_amount=price, subsidy_cap=self.subsidy_cap.data,
            max_seats_per_company_per_day=self.max_seats_per_company_per_day.data,
            max_bookings_per_company=self.max_bookings_per_company.data,
            eligibility=Eligibility(self.eligibility.data),
        )


class ExtraForm(FlaskForm):
    name = StringField(_l("貸出品の名前"), validators=[DataRequired(), Length(max=200)])
    name_en = StringField(_l("貸出品の名前(英語)"), validators=[Optional(), Length(max=200)])
    description = StringField(_l("説明"), validators=[Optional(), Length(max=500)])
    description_en = StringField(_l("説明(英語)"), validators=[Optional(), Length(max=500)])
    quantity = IntegerField(_l("用意する数"), validators=[InputRequired(), NumberRange(min=0, max=100000)])
    max_per_booking = IntegerField(_l("1予約あたりの上限"), default=1,
                                   validators=[InputRequired(), NumberRange(min=1, max=1000)])

    def to_data(self) -> campaign_extras.ExtraData:
        return campaign_extras.ExtraData(
            name=self.name.data, name_en=self.name_en.data or "",
            description=self.description.data or "",
            description_en=self.description_en.data or "",
            quantity=self.quantity.data, max_per_booking=self.max_per_booking.data)


class FactorsForm(FlaskForm):
    detour_factor = FloatField(reports.FACTOR_LABELS["detour_factor"],
                               validators=[InputRequired(), NumberRange(min=1, max=5)])
    speed_kmh = FloatField(reports.FACTOR_LABELS["speed_kmh"],
                           validators=[InputRequired(), NumberRange(min=1, max=300)])
    rail_share_pct = FloatField(reports.FACTOR_LABELS["rail_share_pct"],
                                validators=[InputRequired(), NumberRange(min=0, max=100)])
    rail_g_per_pkm = FloatField(reports.FACTOR_LABELS["rail_g_per_pkm"],
                                validators=[InputRequired(), NumberRange(min=0, max=10000)])
    car_g_per_pkm = FloatField(reports.FACTOR_LABELS["car_g_per_pkm"],
                               validators=[InputRequired(), NumberRange(min=0, max=10000)])
    max_one_way_km = FloatField(reports.FACTOR_LABELS["max_one_way_km"],
                                validators=[InputRequired(), NumberRange(min=1, max=2000)])

    def to_data(self) -> dict[str, float]:
        return {name: self[name].data for name in reports.DEFAULT_FACTORS}


class ButtonForm(FlaskForm):
    """Only the CSRF token: for delete / publish buttons."""
