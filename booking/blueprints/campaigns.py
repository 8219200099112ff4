"""Public campaign pages (Japanese and English, with a map of participating spaces), the
companies' registration of participation, and operators' consent to slots on their spaces."""

from __future__ import annotations

from datetime import date

from flask import Blueprint, abort, current_app, flash, redirect, render_template, url_for
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from wtforms import HiddenField, IntegerField, SelectField
from wtforms.validators import NumberRange, Optional

from booking.extensions import db
from booking.forms import form_status, options
from booking.models import Campaign, CampaignSlot, OrgKind, TeleworkCategory
from booking.services import campaigns as service
from booking.services.errors import DomainError
from booking.web import current_locale

bp = Blueprint("campaigns", __name__, url_prefix="/campaigns")


@bp.get("/")
def index():
    found = db.session.scalars(
        service.public_campaigns().order_by(Campaign.starts_on.desc(), Campaign.id)
    ).all()
    return render_template("campaigns/index.html", campaigns=found)


def _leaflet_urls() -> dict | None:
    """Leaflet comes from the search blueprint's static route (xstatic-leaflet), when it
    exists; without it the page shows the list of spaces only."""
    for endpoint in ("search.leaflet", "search.leaflet_static", "search.vendor"):
        if endpoint in current_app.view_functions:
            return {"css": url_for(endpoint, filename="leaflet.css"),
                    "js": url_for(endpoint, filename="leaflet.js")}
    return None


@bp.get("/<slug>")
def show(slug: str):
    campaign = service.public_campaign(db.session, slug)
    if campaign is None:
        abort(404)
    slots = service.offered_slots(db.session, campaign)
    spaces = []
    for slot in slots:
        space = slot.unit.space
        if space not in spaces:
            spaces.append(space)
    loc = current_locale()
    markers = [
        {"lat": s.lat, "lon": s.lon, "name": s.display_name(loc),
         "url": url_for("public.space", slug=s.slug)}
        for s in spaces if s.lat is not None and s.lon is not None
    ]
    extras = service.extras_available(db.session, campaign, *_campaign_range(campaign))
    return render_template("campaigns/show.html", campaign=campaign, slots=slots, spaces=spaces,
                           markers=markers, extras=extras, leaflet=_leaflet_urls(),
                           core_days=[date.fromisoformat(d) for d in campaign.core_days],
                           tile_url=current_app.config.get("MAP_TILE_URL", ""))


def _campaign_range(campaign: Campaign) -> tuple:
    from booking.services.availability import at

    return at(campaign.starts_on, 0), at(campaign.ends_on, 1440)


# ------------------------------------------------------------------------------- participation


CATEGORY_CHOICES = (
    ("", _l("登録しない")),
    (TeleworkCategory.IMPLEMENTING.value, _l("実施団体(人数・日数を問わず実施)")),
    (TeleworkCategory.SPECIAL.value, _l("特別協力団体(5日以上・コア日に100名以上・効果測定に協力)")),
)


class ParticipationForm(FlaskForm):
    company_id = HiddenField()
    telework_category = SelectField(_l("テレワーク・デイズへの参加区分"), choices=options(CATEGORY_CHOICES))
    core_day_staff = IntegerField(_l("コア日にテレワークする人数"),
                                  validators=[Optional(), NumberRange(min=0, max=1_000_000)])


@bp.route("/participation", methods=["GET", "POST"])
@login_required
def participation():
    companies = current_user.organisations(OrgKind.COMPANY)
    if not companies:
        abort(403)
    company = companies[0]
    form = ParticipationForm(obj=company)
    if not form.is_submitted():
        form.telework_category.data = company.telework_category.value if company.telework_category else ""
    if form.validate_on_submit():
        category = TeleworkCategory(form.telework_category.data) if form.telework_category.data else None
        try:
            service.register_participation(db.session, current_user, company, category,
                                           form.core_day_staff.data)
        except DomainError as error:
            db.session.rollback()
            form.core_day_staff.errors = [*form.core_day_staff.errors, error.message]
        else:
            db.session.commit()
            flash(_l("参加登録を保存しました。"), "success")
            return redirect(url_for(".participation"))
    return render_template("campaigns/participation.html", form=form, company=company), \
        form_status(form)


# ------------------------------------------------------------------------------- consent


class ConsentForm(FlaskForm):
    consent = HiddenField()


@bp.get("/consents")
@login_required
def consents():
    if not current_user.organisations(OrgKind.OPERATOR):
        abort(403)
    return render_template("campaigns/consents.html",
                           slots=service.pending_consents(db.session, current_user),
                           form=ConsentForm())


@bp.post("/consents/<int:slot_id>")
@login_required
def consent(slot_id: int):
    if not current_user.organisations(OrgKind.OPERATOR):
        abort(403)
    slot = db.session.get(CampaignSlot, slot_id)
    if slot is None:
        abort(404)
    form = ConsentForm()
    if form.validate_on_submit():
        try:
            service.set_consent(db.session, current_user, slot, form.consent.data == "1")
        except DomainError:
            db.session.rollback()
            abort(404)
        db.session.commit()
        flash(_l("同意しました。") if slot.operator_consent else _l("同意を取り消しました。"),
              "success")
    return redirect(url_for(".consents"))
