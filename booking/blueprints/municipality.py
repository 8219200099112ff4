"""The municipality's pages: its campaigns, their slots and extras, reports and factors.

Only members of the municipality that runs a campaign see or change anything of it: any
other signed-in user gets 403 (not a municipality member) or 404 (another municipality's
campaign, so that its existence is not revealed); anonymous users go to the login page.
"""

from __future__ import annotations

import re
from datetime import date

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    FloatField,
    IntegerField,
    SelectField,
    StringField,
    TextAreaField,
    TimeField,
)
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional, Regexp

from booking import dates
from booking.extensions import db
from booking.forms import DateField, form_status, options
from booking.models import Campaign, CampaignExtra, CampaignSlot, Eligibility, Space
from booking.services import campaigns as service
from booking.services import reports
from booking.services.errors import DomainError
from booking.web import current_locale

bp = Blueprint("municipality", __name__, url_prefix="/municipality")

# Paths of the public campaigns blueprint that a slug must not shadow.
RESERVED_SLUGS = {"participation", "consents", "new"}


@bp.before_request
@login_required
def _municipality_members_only():
    if not service.municipalities_of(current_user):
        abort(403)


def _campaign(campaign_id: int) -> Campaign:
    """Load or 404; a campaign of another municipality is a 404 too."""
    campaign = db.session.get(Campaign, campaign_id)
    if campaign is None or not service.can_manage(current_user, campaign):
        abort(404)
    return campaign


def _organisation_choices() -> list:
    """The user's municipalities; one not approved yet says so (it cannot run campaigns)."""
    return options((o.id, o.display_name(current_locale())
                    + ("" if o.approved_at is not None else f" ({_l('承認待ち')})"))
                   for o in service.municipalities_of(current_user))


def _apply_error(form: FlaskForm, error: DomainError, default_field: str) -> None:
    name = error.field or default_field
    target = getattr(form, name, None) or getattr(form, default_field)
    target.errors = [*target.errors, error.message]


# ------------------------------------------------------------------------------- forms


class CampaignForm(FlaskForm):
    organisation_id = SelectField(_l("実施する自治体"), coerce=int)
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

    def validate_slug(self, field) -> None:
        from wtforms import ValidationError

        if field.data in RESERVED_SLUGS:
            raise ValidationError(_l("このURL名は使えません。"))

    def validate_core_days(self, field) -> None:
        from wtforms import ValidationError

        try:
            self.core_day_list = _parse_days(field.data or "")
        except ValueError:
            raise ValidationError(_l("日付は YYYY-MM-DD 形式で入力してください。")) from None


def _parse_days(text: str) -> list[date]:
    return [dates.check(date.fromisoformat(p.strip()))
            for p in re.split(r"[,、\s]+", text) if p.strip()]


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

    def validate_price_amount(self, field) -> None:
        from wtforms import ValidationError

        if self.price_mode.data == "price" and field.data is None:
            raise ValidationError(_l("割引料金を入力してください。"))


class ExtraForm(FlaskForm):
    name = StringField(_l("貸出品の名前"), validators=[DataRequired(), Length(max=200)])
    name_en = StringField(_l("貸出品の名前(英語)"), validators=[Optional(), Length(max=200)])
    description = StringField(_l("説明"), validators=[Optional(), Length(max=500)])
    description_en = StringField(_l("説明(英語)"), validators=[Optional(), Length(max=500)])
    quantity = IntegerField(_l("用意する数"), validators=[InputRequired(), NumberRange(min=0, max=100000)])
    max_per_booking = IntegerField(_l("1予約あたりの上限"), default=1,
                                   validators=[InputRequired(), NumberRange(min=1, max=1000)])


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


class ButtonForm(FlaskForm):
    """Only the CSRF token: for delete / publish buttons."""


# ------------------------------------------------------------------------------- campaigns


@bp.get("/")
def index():
    orgs = service.municipalities_of(current_user)
    return render_template("municipality/index.html", organisations=orgs,
                           campaigns=service.campaigns_of(db.session, orgs))


def _campaign_data(form: CampaignForm) -> service.CampaignData:
    return service.CampaignData(
        slug=form.slug.data, name=form.name.data, name_en=form.name_en.data or "",
        description=form.description.data or "", description_en=form.description_en.data or "",
        starts_on=form.starts_on.data, ends_on=form.ends_on.data,
        core_days=getattr(form, "core_day_list", []), published=form.published.data,
    )


@bp.route("/campaigns/new", methods=["GET", "POST"])
def new_campaign():
    form = CampaignForm()
    form.organisation_id.choices = _organisation_choices()
    if form.validate_on_submit():
        org = next(o for o in service.municipalities_of(current_user)
                   if o.id == form.organisation_id.data)
        try:
            campaign = service.save_campaign(db.session, current_user, org, _campaign_data(form))
        except DomainError as error:
            db.session.rollback()
            _apply_error(form, error, "slug")
        else:
            db.session.commit()
            flash(_l("キャンペーンを作成しました。"), "success")
            return redirect(url_for(".campaign", campaign_id=campaign.id))
    return render_template("municipality/campaign_form.html", form=form, campaign=None), \
        form_status(form)


@bp.get("/campaigns/<int:campaign_id>")
def campaign(campaign_id: int):
    found = _campaign(campaign_id)
    extras = db.session.scalars(db.select(CampaignExtra)
                                .where(CampaignExtra.campaign_id == found.id)
                                .order_by(CampaignExtra.id)).all()
    return render_template("municipality/campaign.html", campaign=found, extras=extras,
                           button=ButtonForm(),
                           core_days=[date.fromisoformat(d) for d in found.core_days])


@bp.route("/campaigns/<int:campaign_id>/edit", methods=["GET", "POST"])
def edit_campaign(campaign_id: int):
    found = _campaign(campaign_id)
    form = CampaignForm(obj=found)
    form.organisation_id.choices = options([(found.organisation_id,
                                             found.organisation.display_name(current_locale()))])
    if request.method == "GET":
        form.core_days.data = ", ".join(found.core_days)
    form.organisation_id.data = found.organisation_id
    if form.validate_on_submit():
        try:
            service.save_campaign(db.session, current_user, found.organisation,
                                  _campaign_data(form), found)
        except DomainError as error:
            db.session.rollback()
            _apply_error(form, error, "slug")
        else:
            db.session.commit()
            flash(_l("キャンペーンを保存しました。"), "success")
            return redirect(url_for(".campaign", campaign_id=found.id))
    return render_template("municipality/campaign_form.html", form=form, campaign=found), \
        form_status(form)


@bp.post("/campaigns/<int:campaign_id>/publish")
def publish(campaign_id: int):
    found = _campaign(campaign_id)
    if ButtonForm().validate_on_submit():
        publish_it = request.form.get("published") == "1"
        service.set_published(db.session, current_user, found, publish_it)
        db.session.commit()
        flash(_l("公開しました。") if publish_it else _l("非公開にしました。"), "success")
    return redirect(url_for(".campaign", campaign_id=found.id))


# ------------------------------------------------------------------------------- slots


def _slot(campaign: Campaign, slot_id: int) -> CampaignSlot:
    slot = db.session.get(CampaignSlot, slot_id)
    if slot is None or slot.campaign_id != campaign.id:
        abort(404)
    return slot


def _unit_choices(campaign: Campaign) -> list:
    loc = current_locale()
    units = service.eligible_units(db.session, campaign.organisation)
    return options((u.id, f"{u.space.display_name(loc)} — {u.display_name(loc)}"
                          + ("" if u.space.organisation_id == campaign.organisation_id
                             else f" ({u.space.organisation.display_name(loc)})"))
                   for u in units)


def _slot_data(form: SlotForm) -> service.SlotData:
    mode = form.price_mode.data
    price = 0 if mode == "free" else (form.price_amount.data if mode == "price" else None)
    t0, t1 = form.daily_start.data, form.daily_end.data
    return service.SlotData(
        unit_id=form.unit_id.data, start_date=form.start_date.data, end_date=form.end_date.data,
        daily_start_min=t0.hour * 60 + t0.minute,
        daily_end_min=(t1.hour * 60 + t1.minute) or 1440,
        seats=form.seats.data, price_amount=price, subsidy_cap=form.subsidy_cap.data,
        max_seats_per_company_per_day=form.max_seats_per_company_per_day.data,
        max_bookings_per_company=form.max_bookings_per_company.data,
        eligibility=Eligibility(form.eligibility.data),
    )


def _slot_form(campaign: Campaign, slot: CampaignSlot | None) -> SlotForm:
    from datetime import time

    form = SlotForm(obj=slot)
    form.unit_id.choices = _unit_choices(campaign)
    if request.method == "GET":
        if slot is None:
            form.start_date.data, form.end_date.data = campaign.starts_on, campaign.ends_on
            form.daily_start.data, form.daily_end.data = time(9), time(18)
            form.price_mode.data = "free"
        else:
            form.daily_start.data = time(slot.daily_start_min // 60, slot.daily_start_min % 60)
            end = slot.daily_end_min % 1440
            form.daily_end.data = time(end // 60, end % 60)
            form.price_mode.data = ("unit" if slot.price_amount is None
                                    else "free" if slot.price_amount == 0 else "price")
            form.eligibility.data = slot.eligibility.value
    return form


def _commit_or_flash(action, done_message) -> None:
    """Run one service action: commit and say so, or roll back and show why not."""
    try:
        action()
    except DomainError as error:
        db.session.rollback()
        flash(error.message, "error")
    else:
        db.session.commit()
        flash(done_message, "success")


def _save_slot(campaign: Campaign, slot: CampaignSlot | None):
    form = _slot_form(campaign, slot)
    if form.validate_on_submit():
        try:
            service.save_slot(db.session, current_user, campaign, _slot_data(form), slot)
        except DomainError as error:
            db.session.rollback()
            _apply_error(form, error, "unit_id")
        else:
            db.session.commit()
            flash(_l("提供枠を保存しました。"), "success")
            return redirect(url_for(".campaign", campaign_id=campaign.id))
    return render_template("municipality/slot_form.html", form=form, campaign=campaign,
                           slot=slot), form_status(form)


@bp.route("/campaigns/<int:campaign_id>/slots/new", methods=["GET", "POST"])
def new_slot(campaign_id: int):
    return _save_slot(_campaign(campaign_id), None)


@bp.route("/campaigns/<int:campaign_id>/slots/<int:slot_id>/edit", methods=["GET", "POST"])
def edit_slot(campaign_id: int, slot_id: int):
    found = _campaign(campaign_id)
    return _save_slot(found, _slot(found, slot_id))


@bp.post("/campaigns/<int:campaign_id>/slots/<int:slot_id>/delete")
def delete_slot(campaign_id: int, slot_id: int):
    found = _campaign(campaign_id)
    slot = _slot(found, slot_id)
    if ButtonForm().validate_on_submit():
        _commit_or_flash(lambda: service.delete_slot(db.session, current_user, slot),
                         _l("提供枠を削除しました。"))
    return redirect(url_for(".campaign", campaign_id=found.id))


# ------------------------------------------------------------------------------- extras


def _extra(campaign: Campaign, extra_id: int) -> CampaignExtra:
    extra = db.session.get(CampaignExtra, extra_id)
    if extra is None or extra.campaign_id != campaign.id:
        abort(404)
    return extra


def _save_extra(campaign: Campaign, extra: CampaignExtra | None):
    form = ExtraForm(obj=extra)
    if form.validate_on_submit():
        data = service.ExtraData(
            name=form.name.data, name_en=form.name_en.data or "",
            description=form.description.data or "", description_en=form.description_en.data or "",
            quantity=form.quantity.data, max_per_booking=form.max_per_booking.data)
        try:
            service.save_extra(db.session, current_user, campaign, data, extra)
        except DomainError as error:
            db.session.rollback()
            _apply_error(form, error, "name")
        else:
            db.session.commit()
            flash(_l("貸出品を保存しました。"), "success")
            return redirect(url_for(".campaign", campaign_id=campaign.id))
    return render_template("municipality/extra_form.html", form=form, campaign=campaign,
                           extra=extra), form_status(form)


@bp.route("/campaigns/<int:campaign_id>/extras/new", methods=["GET", "POST"])
def new_extra(campaign_id: int):
    return _save_extra(_campaign(campaign_id), None)


@bp.route("/campaigns/<int:campaign_id>/extras/<int:extra_id>/edit", methods=["GET", "POST"])
def edit_extra(campaign_id: int, extra_id: int):
    found = _campaign(campaign_id)
    return _save_extra(found, _extra(found, extra_id))


@bp.post("/campaigns/<int:campaign_id>/extras/<int:extra_id>/delete")
def delete_extra(campaign_id: int, extra_id: int):
    found = _campaign(campaign_id)
    extra = _extra(found, extra_id)
    if ButtonForm().validate_on_submit():
        _commit_or_flash(lambda: service.delete_extra(db.session, current_user, extra),
                         _l("貸出品を削除しました。"))
    return redirect(url_for(".campaign", campaign_id=found.id))


# ------------------------------------------------------------------------------- reports


def _report_space(campaign: Campaign) -> Space | None:
    space_id = request.args.get("space", type=int)
    if space_id is None:
        return None
    space = next((s for s in reports.campaign_spaces(db.session, campaign) if s.id == space_id), None)
    if space is None:
        abort(404)
    return space


@bp.get("/campaigns/<int:campaign_id>/report")
def report(campaign_id: int):
    found = _campaign(campaign_id)
    space = _report_space(found)
    result = reports.build(db.session, found, space)
    return render_template("municipality/report.html", campaign=found, report=result,
                           spaces=reports.campaign_spaces(db.session, found),
                           summary=reports.summary_rows(result), reports=reports)


@bp.get("/campaigns/<int:campaign_id>/report.csv")
def report_csv(campaign_id: int):
    found = _campaign(campaign_id)
    space = _report_space(found)
    body = reports.to_csv(reports.build(db.session, found, space), current_locale())
    name = f"report-{found.slug}" + (f"-{space.slug}" if space else "") + ".csv"
    return Response(body, mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="{name}"',
        "Cache-Control": "private, no-store",
    })


# ------------------------------------------------------------------------------- factors


@bp.route("/factors", methods=["GET", "POST"])
def factors():
    orgs = service.municipalities_of(current_user)
    org_id = request.args.get("org", type=int) or orgs[0].id
    org = next((o for o in orgs if o.id == org_id), None)
    if org is None:
        abort(404)
    current = reports.factors_for(db.session, org.id)
    form = FactorsForm(obj=current)
    if form.validate_on_submit():
        try:
            reports.save_factors(db.session, current_user, org.id,
                                 {name: getattr(form, name).data for name in reports.DEFAULT_FACTORS})
        except DomainError as error:
            db.session.rollback()
            _apply_error(form, error, "detour_factor")
        else:
            db.session.commit()
            flash(_l("係数を保存しました。"), "success")
            return redirect(url_for(".factors", org=org.id))
    return render_template("municipality/factors.html", form=form, organisation=org,
                           organisations=orgs, defaults=reports.DEFAULT_FACTORS,
                           labels=reports.FACTOR_LABELS), form_status(form)
