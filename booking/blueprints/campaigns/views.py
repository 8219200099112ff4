"""Public campaign pages, companies' participation and operators' consent to slots."""

from __future__ import annotations

from flask import abort, current_app, flash, redirect, render_template, url_for
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from booking import clock, guards
from booking.blueprints.campaigns import bp
from booking.blueprints.campaigns.forms import ConsentForm, ParticipationForm
from booking.forms import submit
from booking.models import OrgKind
from booking.services import campaign_extras, national_campaigns
from booking.services import campaign_management as management
from booking.services.errors import DomainError
from booking.unit_of_work import session
from booking.web import current_locale

_companies_only = guards.members_of(OrgKind.COMPANY)
_operators_only = guards.members_of(OrgKind.OPERATOR)


@bp.get("/")
def index():
    # National campaigns first, their public programmes beneath; then the campaigns that
    # belong to none (services/national_campaigns.campaigns_index).
    listing = national_campaigns.campaigns_index(session())
    return render_template("campaigns/index.html", today=clock.today(),
                           nationals=listing.nationals, programmes=listing.programmes,
                           campaigns=listing.others)


@bp.get("/national/<slug>")
def national(slug: str):
    found = national_campaigns.public_national(session(), slug)
    if found is None:
        abort(404)
    return render_template("campaigns/national.html", national=found, today=clock.today(),
                           core_days=national_campaigns.core_days(found),
                           categories=national_campaigns.categories(found),
                           programmes=national_campaigns.public_programmes(session(),
                                                                           [found])[found.id])


def _leaflet_urls() -> dict | None:
    """Leaflet comes from the search blueprint's static route (xstatic-leaflet), when it
    exists; without it the page shows the list of spaces only."""
    if "search.leaflet" not in current_app.view_functions:
        return None
    return {"css": url_for("search.leaflet", filename="leaflet.css"),
            "js": url_for("search.leaflet", filename="leaflet.js")}


@bp.get("/<slug>")
def show(slug: str):
    campaign = management.public_campaign(session(), slug)
    if campaign is None:
        abort(404)
    slots = management.offered_slots(session(), campaign)
    # The spaces in the order of their first slot, each once (the map and its list).
    spaces = list(dict.fromkeys(slot.unit.space for slot in slots))
    loc = current_locale()
    markers = [
        {"lat": s.lat, "lon": s.lon, "name": s.display_name(loc),
         "url": url_for("public.space", slug=s.slug)}
        for s in spaces if s.lat is not None and s.lon is not None
    ]
    return render_template("campaigns/show.html", campaign=campaign, slots=slots, spaces=spaces,
                           markers=markers, extras=campaign_extras.extras_during(session(), campaign),
                           leaflet=_leaflet_urls(),
                           # A programme without core days of its own shows its national
                           # campaign's (inherited for display).
                           core_days=national_campaigns.programme_core_days(campaign)[0],
                           national=national_campaigns.public_parent(campaign),
                           tile_url=current_app.config.get("MAP_TILE_URL", ""),
                           today=clock.today())  # past slots: what was offered (slot.ended)


# ------------------------------------------------------------------------------- participation


@bp.route("/participation", methods=["GET", "POST"])
def participation():
    _companies_only()
    company = current_user.company
    form = ParticipationForm(obj=company)
    # The categories are the current national campaign's, when there is one.
    national = national_campaigns.current_national(session())
    form.label_categories(national_campaigns.categories(national), current_locale())
    if not form.is_submitted():
        form.fill(company)
    result = submit(form, lambda: management.register_participation(
        session(), current_user, company, form.category(), form.core_day_staff.data))
    if result.done:
        flash(_l("参加登録を保存しました。"), "success")
        return redirect(url_for(".participation"))
    return render_template("campaigns/participation.html", form=form, company=company,
                           national=national, categories=national_campaigns.categories(national)), \
        result.status


# ------------------------------------------------------------------------------- consent


def _consents_page(failed: ConsentForm | None = None, failed_id: int | None = None,
                   status: int = 200):
    """The consent page: every slot proposed on the operator's units, each with its own
    form (the one refused shown again, its error beside its field)."""
    slots = management.pending_consents(session(), current_user)
    forms = {s.id: failed if s.id == failed_id and failed is not None
             else ConsentForm(formdata=None).for_slot(s.id) for s in slots}
    return render_template("campaigns/consents.html", slots=slots, forms=forms), status


@bp.get("/consents")
def consents():
    _operators_only()
    return _consents_page()


@bp.post("/consents/<int:slot_id>")
def consent(slot_id: int):
    _operators_only()
    try:
        slot = management.get_slot_to_consent(session(), current_user, slot_id)
    except DomainError as error:
        abort(error.status)
    form = ConsentForm().for_slot(slot_id)
    result = submit(form, lambda: management.set_consent(
        session(), current_user, slot, form.given(), form.reason.data or ""))
    if result.done:
        flash(_l("同意しました。") if form.given() else _l("お断りしました。"), "success")
        return redirect(url_for(".consents"))
    return _consents_page(form, slot_id, result.status)
