"""The operator console: spaces, units, availability and the day's bookings.

Thin views: load (404 for what is not the user's), parse a form, call one service in
booking/services/console.py or photos.py, commit, redirect. Access rules live there.
"""

from __future__ import annotations

import re
from datetime import date

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import (
    BooleanField,
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

from booking import clock
from booking.extensions import db
from booking.forms import DateField, form_status, options
from booking.labels import AMENITY_LABELS, PER, SPACE_KINDS, UNIT_KINDS, weekday_name
from booking.models import (
    AMENITIES,
    BookingStatus,
    CapacityOverride,
    Closure,
    Photo,
    PricePer,
    SpaceKind,
    UnitKind,
)
from booking.prefectures import choices as prefecture_choices
from booking.services import console
from booking.services import photos as photo_service
from booking.services.availability import TOKYO, at
from booking.services.errors import DomainError

bp = Blueprint("operator", __name__, url_prefix="/operator")

STATUS_LABELS = {
    "confirmed": _l("予約済み"),
    "checked_in": _l("チェックイン済み"),
    "no_show": _l("来場なし"),
    "cancelled": _l("キャンセル"),
}
DAY_STATES = {
    "closed": _l("休業"),
    "full": _l("満席"),
    "few": _l("残りわずか"),
    "free": _l("空きあり"),
}


@bp.app_template_global()
def console_status_label(status) -> str:
    return str(STATUS_LABELS.get(getattr(status, "value", status), status))


@bp.before_request
@login_required
def _supporters_only():
    """Only members of a municipality or facility operator enter the console."""
    try:
        console.require_console(current_user)
    except DomainError as error:
        abort(error.status)


def _or_abort(fn, *args, **kwargs):
    """Run a loader; what the user may not see is a 404 (or a 403 for a role)."""
    try:
        return fn(db.session, current_user, *args, **kwargs)
    except DomainError as error:
        abort(error.status)


def _space(space_id: int):
    return _or_abort(console.get_space, space_id)


def _refuse(error: DomainError):
    """Roll back a refused change; only role and access errors end the request."""
    db.session.rollback()
    if error.code in ("not_found", "owner_only", "not_supporter"):
        abort(error.status)


# --------------------------------------------------------------------------------------
# Forms


class MultiCheckboxField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


_TIME = re.compile(r"^([01]?\d|2[0-4]):([0-5]\d)$")


def parse_minutes(text: str) -> int | None:
    match = _TIME.match((text or "").strip())
    if not match:
        return None
    minutes = int(match.group(1)) * 60 + int(match.group(2))
    return minutes if minutes <= 1440 else None


def _time_field(label, default: str, example=None) -> StringField:
    return StringField(label, default=default, validators=[Optional(), Length(max=5)],
                       description=example or _l("例: 09:00"))


class ActionForm(FlaskForm):
    """A button that changes something: CSRF only."""


class SpaceForm(FlaskForm):
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
    prefecture_code = SelectField(_l("都道府県"), coerce=int, choices=[],
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
    amenities = MultiCheckboxField(_l("設備"), choices=options(
        (a, AMENITY_LABELS[a]) for a in AMENITIES))
    published = BooleanField(_l("公開する"), default=True)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        from booking.web import current_locale

        self.prefecture_code.choices = options([(0, "—"), *prefecture_choices(current_locale())])

    def values(self) -> dict:
        return {
            "name": self.name.data.strip(), "name_en": (self.name_en.data or "").strip(),
            "kind": SpaceKind(self.kind.data), "slug": (self.slug.data or "").strip(),
            "description": self.description.data or "",
            "description_en": self.description_en.data or "",
            "prefecture_code": self.prefecture_code.data, "city": self.city.data.strip(),
            "address": self.address.data.strip(), "lat": self.lat.data, "lon": self.lon.data,
            "nearest_station": (self.nearest_station.data or "").strip(),
            "access": (self.access.data or "").strip(),
            "access_en": (self.access_en.data or "").strip(),
            "amenities": [a for a in AMENITIES if a in (self.amenities.data or [])],
            "published": bool(self.published.data),
        }

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
        opens, closes = parse_minutes(self.opens.data), parse_minutes(field.data)
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

    def hours(self) -> dict[int, tuple[int, int]]:
        return {
            weekday: (parse_minutes(entry.opens.data), parse_minutes(entry.closes.data))
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

    def validate_capacity(self, field) -> None:
        if self.kind.data != UnitKind.DESK.value and field.data not in (None, 1):
            raise ValidationError(_l("会議室・個室・一棟貸しの席数は1です(定員は別に入力します)。"))

    def validate_max_length(self, field) -> None:
        if field.data and self.min_length.data and field.data < self.min_length.data:
            raise ValidationError(_l("最長は最短以上にしてください。"))

    def validate_checkin(self, field) -> None:
        if field.data and parse_minutes(field.data) is None:
            raise ValidationError(_l("時刻は 15:00 の形で入力してください。"))

    validate_checkout = validate_checkin

    def values(self, with_price: bool) -> dict:
        values = {
            "name": self.name.data.strip(), "name_en": (self.name_en.data or "").strip(),
            "kind": UnitKind(self.kind.data), "capacity": self.capacity.data,
            "fits_people": self.fits_people.data, "min_length": self.min_length.data,
            "max_length": self.max_length.data, "lead_time_hours": self.lead_time_hours.data or 0,
            "cancel_deadline_hours": self.cancel_deadline_hours.data or 0,
            "max_days_ahead": self.max_days_ahead.data,
            "members_only": bool(self.members_only.data),
            "checkin_min": parse_minutes(self.checkin.data or "15:00"),
            "checkout_min": parse_minutes(self.checkout.data or "10:00"),
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

    def with_units(self, space, fresh: bool = False):
        """Choices from the space's units; all ticked on a form that was not sent."""
        from booking.web import current_locale

        self.units.choices = options((u.id, u.display_name(current_locale())) for u in space.units)
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
    class Meta:
        csrf = False

    def __init__(self, **kwargs):
        kwargs.setdefault("formdata", request.args)
        super().__init__(**kwargs)


class DayForm(_GetForm):
    day = DateField(_l("日付"), validators=[Optional()])


class MonthForm(_GetForm):
    month = StringField(_l("月"), validators=[Optional(), Regexp(r"^\d{4}-\d{2}$")],
                        description=_l("例: 2026-08"))


class ExportForm(_GetForm):
    start = DateField(_l("開始日"), validators=[DataRequired(_l("日付を入力してください。"))])
    end = DateField(_l("終了日"), validators=[DataRequired(_l("日付を入力してください。"))])

    def validate_end(self, field) -> None:
        if field.data and self.start.data and field.data < self.start.data:
            raise ValidationError(_l("終了日は開始日以降にしてください。"))


def today() -> date:
    return clock.now().astimezone(TOKYO).date()


# --------------------------------------------------------------------------------------
# Spaces


@bp.get("/")
def index():
    orgs = console.console_organisations(current_user)
    spaces = console.spaces_of(db.session, orgs)
    return render_template("operator/index.html", organisations=orgs, spaces=spaces,
                           today=today())


def _geocoder():
    """The online geocoder when configured (GEOCODER=nominatim), else None: offline."""
    from booking.services import geocoding

    return geocoding.geocoder_from_config(current_app.config)


def _space_form_page(form, space=None, organisation=None, status=200):
    return render_template("operator/space_form.html", form=form, space=space,
                           organisation=organisation,
                           tile_url=current_app.config["MAP_TILE_URL"],
                           tile_attribution=current_app.config["MAP_TILE_ATTRIBUTION"]), status


@bp.route("/organisations/<int:org_id>/spaces/new", methods=["GET", "POST"])
def space_new(org_id: int):
    org = next((o for o in console.console_organisations(current_user) if o.id == org_id), None)
    if org is None:
        abort(404)
    form = SpaceForm()
    if not form.is_submitted():
        form.prefecture_code.data = org.prefecture_code or 0
    if form.validate_on_submit():
        try:
            space = console.create_space(
                db.session, current_user, org.id, form.values(),
                hours={d: (540, 1080) for d in range(5)},  # a start; edited on the hours page
                geocoder=_geocoder(),
            )
        except DomainError as error:
            _refuse(error)
            form.slug.errors.append(error.message)
        else:
            db.session.commit()
            flash(_l("施設を登録しました。営業時間と区画を設定してください。"), "success")
            return redirect(url_for("operator.space", space_id=space.id))
    return _space_form_page(form, organisation=org, status=422 if form.errors else 200)


@bp.get("/spaces/<int:space_id>")
def space(space_id: int):
    found = _space(space_id)
    from booking.services import calendars

    feed = webcal = None
    if found.calendar_secret:
        feed = calendars.feed_url(found.calendar_secret)
        webcal = calendars.webcal_url(found.calendar_secret)
    return render_template(
        "operator/space.html", space=found, action=ActionForm(), today=today(),
        is_owner=console.is_owner(current_user, found.organisation_id), feed=feed, webcal=webcal,
        export=ExportForm(formdata=None, start=today().replace(day=1), end=today()),
    )


@bp.route("/spaces/<int:space_id>/edit", methods=["GET", "POST"])
def space_edit(space_id: int):
    found = _space(space_id)
    form = SpaceForm(obj=found)
    if form.validate_on_submit():
        try:
            console.update_space(db.session, current_user, found, form.values(),
                                 regeocode=bool(form.regeocode.data), geocoder=_geocoder())
        except DomainError as error:
            _refuse(error)
            form.slug.errors.append(error.message)
        else:
            db.session.commit()
            flash(_l("施設の情報を保存しました。"), "success")
            return redirect(url_for("operator.space", space_id=found.id))
    return _space_form_page(form, space=found, organisation=found.organisation,
                            status=422 if form.errors else 200)


@bp.post("/spaces/<int:space_id>/publish")
def space_publish(space_id: int):
    found = _space(space_id)
    if ActionForm().validate_on_submit():
        publish = request.form.get("published") == "1"
        console.set_published(db.session, current_user, found, publish)
        db.session.commit()
        flash(_l("公開しました。") if publish else _l("非公開にしました。"), "success")
    return redirect(url_for("operator.space", space_id=found.id))


@bp.post("/spaces/<int:space_id>/delete")
def space_delete(space_id: int):
    found = _space(space_id)
    if ActionForm().validate_on_submit():
        try:
            console.delete_space(db.session, current_user, found)
        except DomainError as error:
            _refuse(error)
            flash(error.message, "error")
            return redirect(url_for("operator.space", space_id=space_id))
        db.session.commit()
        flash(_l("施設を削除しました。"), "success")
    return redirect(url_for("operator.index"))


def _conflict_page(template: str, error: DomainError, **context):
    """The change was refused: list the bookings it would leave without a seat."""
    return render_template(template, affected=error.extra.get("affected", []),
                           conflict=error.message, **context), 409


@bp.route("/spaces/<int:space_id>/hours", methods=["GET", "POST"])
def hours(space_id: int):
    found = _space(space_id)
    form = HoursForm()
    if not form.is_submitted():
        form.closed_on_holidays.data = found.closed_on_holidays
        for weekday, entry in enumerate(form.days):
            row = found.hours_on(weekday)
            entry.open.data = row is not None
            if row is not None:
                entry.opens.data = row.fmt(row.opens_min)
                entry.closes.data = row.fmt(row.closes_min)
    for weekday, entry in enumerate(form.days):
        entry.label.text = weekday_name(weekday)
    if form.validate_on_submit():
        try:
            console.set_hours(db.session, current_user, found, form.hours(),
                              bool(form.closed_on_holidays.data))
        except DomainError as error:
            _refuse(error)
            return _conflict_page("operator/hours.html", error, space=_space(space_id), form=form)
        db.session.commit()
        flash(_l("営業時間を保存しました。"), "success")
        return redirect(url_for("operator.space", space_id=found.id))
    return render_template("operator/hours.html", space=found, form=form), form_status(form)


# --------------------------------------------------------------------------------------
# Units


def _unit_form_page(form, space, unit=None, status=200, **extra):
    return render_template("operator/unit_form.html", form=form, space=space, unit=unit,
                           is_owner=console.is_owner(current_user, space.organisation_id),
                           **extra), status


@bp.route("/spaces/<int:space_id>/units/new", methods=["GET", "POST"])
def unit_new(space_id: int):
    found = _space(space_id)
    if not console.is_owner(current_user, found.organisation_id):
        abort(403)
    form = UnitForm()
    if form.validate_on_submit():
        try:
            unit = console.create_unit(db.session, current_user, found, form.values(True))
        except DomainError as error:
            _refuse(error)  # only "owner only" can happen here, and it ends the request
            raise
        db.session.commit()
        flash(_l("区画を追加しました。"), "success")
        return redirect(url_for("operator.month", unit_id=unit.id))
    return _unit_form_page(form, found, status=form_status(form))


@bp.route("/units/<int:unit_id>/edit", methods=["GET", "POST"])
def unit_edit(unit_id: int):
    unit = _or_abort(console.get_unit, unit_id)
    found = unit.space
    owner = console.is_owner(current_user, found.organisation_id)
    form = UnitForm(obj=unit)
    if not form.is_submitted():
        form.checkin.data = f"{unit.checkin_min // 60:02d}:{unit.checkin_min % 60:02d}"
        form.checkout.data = f"{unit.checkout_min // 60:02d}:{unit.checkout_min % 60:02d}"
    if not owner:
        # Staff see the price but cannot change it: the fields are not even read.
        form.price_amount.render_kw = {"disabled": True}
        form.price_per.render_kw = {"disabled": True}
        form.price_amount.data, form.price_per.data = unit.price_amount, unit.price_per.value
    if form.validate_on_submit():
        try:
            console.update_unit(db.session, current_user, unit, form.values(with_price=owner))
        except DomainError as error:
            _refuse(error)
            if error.code == "capacity_conflict":
                return _unit_form_page(form, _space(found.id), unit=unit, status=409,
                                       affected=error.extra["affected"], conflict=error.message)
            raise
        db.session.commit()
        flash(_l("区画を保存しました。"), "success")
        return redirect(url_for("operator.space", space_id=found.id))
    return _unit_form_page(form, found, unit=unit, status=form_status(form))


@bp.post("/units/<int:unit_id>/delete")
def unit_delete(unit_id: int):
    unit = _or_abort(console.get_unit, unit_id)
    space_id = unit.space_id
    if ActionForm().validate_on_submit():
        try:
            console.delete_unit(db.session, current_user, unit)
        except DomainError as error:
            _refuse(error)
            flash(error.message, "error")
            return redirect(url_for("operator.space", space_id=space_id))
        db.session.commit()
        flash(_l("区画を削除しました。"), "success")
    return redirect(url_for("operator.space", space_id=space_id))


@bp.get("/units/<int:unit_id>/month")
def month(unit_id: int):
    unit = _or_abort(console.get_unit, unit_id)
    form = MonthForm()
    first = today().replace(day=1)
    if form.validate() and form.month.data:
        year, mon = (int(x) for x in form.month.data.split("-"))
        if 2000 <= year <= 2100 and 1 <= mon <= 12:
            first = date(year, mon, 1)
    cells = console.month_view(db.session, unit, first.year, first.month)
    prev_month = date(first.year - (first.month == 1), (first.month - 2) % 12 + 1, 1)
    next_month = date(first.year + (first.month == 12), first.month % 12 + 1, 1)
    weeks: list[list] = [[None] * cells[0].day.weekday()]
    for cell in cells:
        if len(weeks[-1]) == 7:
            weeks.append([])
        weeks[-1].append(cell)
    weeks[-1].extend([None] * (7 - len(weeks[-1])))
    return render_template("operator/month.html", unit=unit, space=unit.space, first=first,
                           weeks=weeks, cells=cells, states=DAY_STATES, form=form,
                           prev_month=prev_month, next_month=next_month, today=today()), \
        form_status(form) if not form.errors else 422


# --------------------------------------------------------------------------------------
# Closures and capacity overrides


def _availability_page(found, closure_form, override_form, status=200, **extra):
    closures = [c for u in found.units for c in u.closures]
    closures.sort(key=lambda c: (c.start_date, c.unit_id))
    overrides = [o for u in found.units for o in u.capacity_overrides if o.day >= today()]
    overrides.sort(key=lambda o: (o.day, o.unit_id))
    return render_template("operator/availability.html", space=found, closures=closures,
                           overrides=overrides, closure_form=closure_form,
                           override_form=override_form, action=ActionForm(),
                           **extra), status


def _chosen_units(found, ids):
    units = [u for u in found.units if u.id in set(ids)]
    if len(units) != len(set(ids)):
        abort(404)
    return units


@bp.get("/spaces/<int:space_id>/availability")
def availability(space_id: int):
    found = _space(space_id)
    return _availability_page(
        found, ClosureForm(formdata=None, prefix="closure").with_units(found, fresh=True),
        OverrideForm(formdata=None, prefix="override").with_units(found, fresh=True))


@bp.post("/spaces/<int:space_id>/closures")
def closure_add(space_id: int):
    found = _space(space_id)
    form = ClosureForm(prefix="closure").with_units(found)
    other = OverrideForm(formdata=None, prefix="override").with_units(found, fresh=True)
    if form.validate_on_submit():
        units = _chosen_units(found, form.units.data)
        try:
            console.add_closure(db.session, current_user, units, form.start.data, form.end.data,
                                form.reason.data or "")
        except DomainError as error:
            _refuse(error)
            found = _space(space_id)
            form.with_units(found)
            other.with_units(found, fresh=True)
            return _availability_page(found, form, other, status=409,
                                      affected=error.extra.get("affected", []),
                                      conflict=error.message)
        db.session.commit()
        flash(_l("休業日を登録しました。"), "success")
        return redirect(url_for("operator.availability", space_id=space_id))
    return _availability_page(found, form, other, status=422)


@bp.post("/spaces/<int:space_id>/closures/<int:closure_id>/delete")
def closure_delete(space_id: int, closure_id: int):
    found = _space(space_id)
    closure = _or_abort(console.get_owned, Closure, closure_id, found)
    if ActionForm().validate_on_submit():
        console.delete_closure(db.session, current_user, closure)
        db.session.commit()
        flash(_l("休業日を取り消しました。"), "success")
    return redirect(url_for("operator.availability", space_id=space_id))


@bp.post("/spaces/<int:space_id>/overrides")
def override_add(space_id: int):
    found = _space(space_id)
    form = OverrideForm(prefix="override").with_units(found)
    other = ClosureForm(formdata=None, prefix="closure").with_units(found, fresh=True)
    if form.validate_on_submit():
        units = _chosen_units(found, form.units.data)
        try:
            console.set_override(db.session, current_user, units, form.start.data,
                                 form.end.data, form.capacity.data, form.reason.data or "")
        except DomainError as error:
            _refuse(error)
            found = _space(space_id)
            form.with_units(found)
            other.with_units(found, fresh=True)
            if error.field == "capacity":  # e.g. above 1 on a room: said beside it
                form.capacity.errors = [*form.capacity.errors, error.message]
                return _availability_page(found, other, form, status=error.status)
            return _availability_page(found, other, form, status=409,
                                      affected=error.extra.get("affected", []),
                                      conflict=error.message)
        db.session.commit()
        flash(_l("席数の変更を登録しました。"), "success")
        return redirect(url_for("operator.availability", space_id=space_id))
    return _availability_page(found, other, form, status=422)


@bp.post("/spaces/<int:space_id>/overrides/<int:override_id>/delete")
def override_delete(space_id: int, override_id: int):
    found = _space(space_id)
    override = _or_abort(console.get_owned, CapacityOverride, override_id, found)
    if ActionForm().validate_on_submit():
        try:
            console.delete_override(db.session, current_user, override)
        except DomainError as error:
            _refuse(error)
            found = _space(space_id)
            return _availability_page(
                found, ClosureForm(formdata=None, prefix="closure").with_units(found, fresh=True),
                OverrideForm(formdata=None, prefix="override").with_units(found, fresh=True), status=409,
                affected=error.extra.get("affected", []), conflict=error.message)
        db.session.commit()
        flash(_l("席数の変更を取り消しました。"), "success")
    return redirect(url_for("operator.availability", space_id=space_id))


# --------------------------------------------------------------------------------------
# Bookings: the day's list, check-in, no-show, cancel, CSV, calendar feed


@bp.get("/spaces/<int:space_id>/day")
def day(space_id: int):
    found = _space(space_id)
    form = DayForm()
    chosen = form.day.data if form.validate() and form.day.data else today()
    if not form.errors:
        form.day.data = chosen  # the date input shows the day listed
    bookings = console.day_list(db.session, found, chosen)
    now = clock.now()
    # Buttons only when the reservations service would accept them: check-in from the
    # start of the booking's day until its end, no-show once it has begun.
    allowed = {
        b.id: (at(b.starts_at.astimezone(TOKYO).date(), 0) <= now < b.ends_at, now >= b.starts_at)
        for b in bookings
    }
    return render_template("operator/day.html", space=found, day=chosen, bookings=bookings,
                           form=form, action=ActionForm(), allowed=allowed,
                           counts=console.bookings_status_counts(
                               b for b in bookings if b.status != BookingStatus.CANCELLED)), \
        422 if form.errors else 200


def _back_to_day(booking):
    return redirect(url_for("operator.day", space_id=booking.unit.space_id,
                            day=booking.starts_at.astimezone(TOKYO).date().isoformat()))


@bp.post("/bookings/<int:booking_id>/check-in")
def check_in(booking_id: int):
    booking = _or_abort(console.get_booking, booking_id)
    if ActionForm().validate_on_submit():
        try:
            console.check_in(db.session, current_user, booking)
        except DomainError as error:
            _refuse(error)
            flash(error.message, "error")
        else:
            db.session.commit()
            flash(_l("%(ref)s をチェックインにしました。", ref=booking.reference), "success")
    return _back_to_day(booking)


@bp.post("/bookings/<int:booking_id>/no-show")
def no_show(booking_id: int):
    booking = _or_abort(console.get_booking, booking_id)
    if ActionForm().validate_on_submit():
        try:
            console.mark_no_show(db.session, current_user, booking)
        except DomainError as error:
            _refuse(error)
            flash(error.message, "error")
        else:
            db.session.commit()
            flash(_l("%(ref)s を来場なしにしました。", ref=booking.reference), "success")
    return _back_to_day(booking)


@bp.route("/bookings/<int:booking_id>/cancel", methods=["GET", "POST"])
def cancel(booking_id: int):
    booking = _or_abort(console.get_booking, booking_id)
    form = CancelForm()
    if form.validate_on_submit():
        try:
            console.cancel_booking(db.session, current_user, booking, form.reason.data.strip())
        except DomainError as error:
            _refuse(error)
            form.reason.errors.append(error.message)
        else:
            db.session.commit()
            flash(_l("%(ref)s をキャンセルし、お客様に連絡しました。", ref=booking.reference),
                  "success")
            return _back_to_day(booking)
    back = url_for("operator.day", space_id=booking.unit.space_id,
                   day=booking.starts_at.astimezone(TOKYO).date().isoformat())
    return render_template("operator/cancel.html", booking=booking, space=booking.unit.space,
                           form=form, back=back), 422 if form.errors else 200


@bp.get("/spaces/<int:space_id>/export.csv")
def export(space_id: int):
    found = _space(space_id)
    form = ExportForm()
    if not form.validate():
        return render_template("operator/export.html", space=found, form=form), 422
    text = console.export_csv(db.session, found, form.start.data, form.end.data,
                              status_label=console_status_label)
    name = f"bookings-{found.id}-{form.start.data:%Y%m%d}-{form.end.data:%Y%m%d}.csv"
    return Response(text.encode("utf-8"), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"',
                             "Cache-Control": "no-store"})


@bp.post("/spaces/<int:space_id>/calendar")
def calendar_new(space_id: int):
    found = _space(space_id)
    if ActionForm().validate_on_submit():
        console.new_calendar_secret(db.session, current_user, found)
        db.session.commit()
        flash(_l("カレンダーの購読URLを発行しました。以前のURLは使えなくなります。"), "success")
    return redirect(url_for("operator.space", space_id=space_id, _anchor="calendar"))


@bp.post("/spaces/<int:space_id>/calendar/revoke")
def calendar_revoke(space_id: int):
    found = _space(space_id)
    if ActionForm().validate_on_submit():
        console.revoke_calendar_secret(db.session, current_user, found)
        db.session.commit()
        flash(_l("カレンダーの購読URLを無効にしました。"), "success")
    return redirect(url_for("operator.space", space_id=space_id, _anchor="calendar"))


# --------------------------------------------------------------------------------------
# Photos


@bp.route("/spaces/<int:space_id>/photos", methods=["GET", "POST"])
def photos(space_id: int):
    found = _space(space_id)
    form = PhotoForm()
    if form.validate_on_submit():
        upload = form.file.data
        try:
            photo_service.add_photo(db.session, current_user, found,
                                    current_app.config["UPLOAD_DIR"], upload.filename,
                                    upload.read(photo_service.MAX_BYTES + 1), form.alt.data or "")
        except DomainError as error:
            _refuse(error)
            form.file.errors.append(error.message)
            found = _space(space_id)
        else:
            db.session.commit()
            flash(_l("写真を追加しました。"), "success")
            return redirect(url_for("operator.photos", space_id=space_id))
    return render_template("operator/photos.html", space=found, form=form,
                           action=ActionForm()), 422 if form.errors else 200


@bp.errorhandler(413)
def _too_large(error):
    """An upload over MAX_CONTENT_LENGTH. The request body cannot be read, and the site's
    layout reads it (its header forms), so this page is a plain one."""
    back = request.path if request.path.endswith("/photos") else url_for("operator.index")
    return render_template("operator/too_large.html", back=back), 413


@bp.post("/spaces/<int:space_id>/photos/<int:photo_id>/delete")
def photo_delete(space_id: int, photo_id: int):
    found = _space(space_id)
    photo = _or_abort(console.get_owned, Photo, photo_id, found)
    if ActionForm().validate_on_submit():
        photo_service.delete_photo(db.session, current_user, photo,
                                   current_app.config["UPLOAD_DIR"])
        db.session.commit()
        flash(_l("写真を削除しました。"), "success")
    return redirect(url_for("operator.photos", space_id=space_id))


# --------------------------------------------------------------------------------------
# Leaflet for the map: served by the search blueprint from the xstatic-leaflet package (never
# from a CDN: the CSP allows only this site's scripts). Without it the map is left out and
# the coordinates are typed.


@bp.context_processor
def _leaflet_asset():
    def leaflet_asset(filename: str) -> str | None:
        if "search.leaflet" not in current_app.view_functions:
            return None
        return url_for("search.leaflet", filename=filename)

    return {"leaflet_asset": leaflet_asset}
