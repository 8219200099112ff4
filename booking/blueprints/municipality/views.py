"""The municipality's pages: its campaigns, their slots and extras, reports and factors.

The package's guard lets only municipality members in (others: 403, anonymous: the log-in
page); whether the campaign in the URL is theirs is the services' question (access
policies): another municipality's campaign is a 404, so that its existence is not revealed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from flask import Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from booking import clock
from booking.blueprints.municipality import bp, charts
from booking.blueprints.municipality.forms import (
    ButtonForm,
    CampaignForm,
    ExtraForm,
    FactorsForm,
    SlotForm,
)
from booking.forms import form_status, options, show_error, submit
from booking.models import Campaign, CampaignExtra, CampaignSlot
from booking.services import campaign_extras, national_campaigns, reports, workbooks
from booking.services import campaign_management as management
from booking.services.errors import DomainError
from booking.unit_of_work import session
from booking.web import current_locale, local_date

T = TypeVar("T")


def _found(load: Callable[[], T]) -> T:
    """What a service loads for the URL, or its refusal as the answer (404: not ours)."""
    try:
        return load()
    except DomainError as error:
        abort(error.status)


def _campaign(campaign_id: int) -> Campaign:
    return _found(lambda: management.get_campaign(session(), current_user, campaign_id))


def _organisation_choices() -> list:
    """The user's municipalities; one not approved yet says so (it cannot run campaigns)."""
    return options((o.id, o.display_name(current_locale())
                    + ("" if o.is_approved else f" ({_l('承認待ち')})"))
                   for o in management.municipalities_of(current_user))


def _campaign_page(found: Campaign, button: ButtonForm | None = None, status: int = 200):
    """The campaign's page; after a refused button, with the refusal at its top."""
    return render_template("municipality/campaign.html", campaign=found,
                           extras=campaign_extras.campaign_extras(session(), found),
                           button=button or ButtonForm(),
                           # Without core days of its own, a programme shows the national ones.
                           core_days=national_campaigns.programme_core_days(found)[0]), status


def _button(found: Campaign, action: Callable[[], object], done: str):
    """Run a button's service action: say so and go back to the campaign, or show why not
    on the campaign's page (an error answer: the request's work is rolled back)."""
    button = ButtonForm()
    if button.validate_on_submit():
        try:
            action()
        except DomainError as error:
            return _campaign_page(found, button, show_error(button, error))
        flash(done, "success")
    return redirect(url_for(".campaign", campaign_id=found.id))


# ------------------------------------------------------------------------------- campaigns


@bp.get("/")
def index():
    return render_template("municipality/index.html",
                           organisations=management.municipalities_of(current_user),
                           campaigns=management.campaigns_of(session(), current_user),
                           answers=management.consent_answers(session(), current_user))


def _campaign_form(form: CampaignForm, found: Campaign | None):
    status = None
    if form.validate_on_submit():
        organisation = found.organisation if found else next(
            o for o in management.municipalities_of(current_user) if o.id == form.organisation_id.data)
        try:
            saved = management.save_campaign(session(), current_user, organisation,
                                          form.to_data(), found)
        except DomainError as error:
            status = show_error(form, error)
        else:
            flash(_l("キャンペーンを保存しました。") if found else _l("キャンペーンを作成しました。"),
                  "success")
            return redirect(url_for(".campaign", campaign_id=saved.id))
    return render_template("municipality/campaign_form.html", form=form, campaign=found), \
        status or form_status(form)


def _national_choices(found: Campaign | None) -> list:
    """No national campaign (a campaign of its own), or one of those it may join."""
    loc = current_locale()
    return options([("", _l("なし(独自のキャンペーン)"))] + [
        (n.id, f"{n.display_name(loc)} ({local_date(n.starts_on)} – {local_date(n.ends_on)})")
        for n in national_campaigns.choices_for(session(), found)])


@bp.route("/campaigns/new", methods=["GET", "POST"])
def new_campaign():
    form = CampaignForm()
    form.organisation_id.choices = _organisation_choices()
    form.national_campaign_id.choices = _national_choices(None)
    return _campaign_form(form, None)


@bp.get("/campaigns/<int:campaign_id>")
def campaign(campaign_id: int):
    return _campaign_page(_campaign(campaign_id))


@bp.route("/campaigns/<int:campaign_id>/edit", methods=["GET", "POST"])
def edit_campaign(campaign_id: int):
    found = _campaign(campaign_id)
    form = CampaignForm(obj=found)
    # A campaign stays with its municipality: the only choice, whatever was posted.
    form.organisation_id.choices = options([(found.organisation_id,
                                             found.organisation.display_name(current_locale()))])
    form.organisation_id.data = found.organisation_id
    form.national_campaign_id.choices = _national_choices(found)
    if request.method == "GET":
        form.fill(found)
    return _campaign_form(form, found)


@bp.post("/campaigns/<int:campaign_id>/publish")
def publish(campaign_id: int):
    found = _campaign(campaign_id)
    publish_it = request.form.get("published") == "1"
    return _button(found, lambda: management.set_published(session(), current_user, found, publish_it),
                   _l("公開しました。") if publish_it else _l("非公開にしました。"))


# ------------------------------------------------------------------------------- slots


def _slot(campaign: Campaign, slot_id: int) -> CampaignSlot:
    return _found(lambda: management.get_part(session(), current_user, campaign, CampaignSlot,
                                               slot_id))


def _unit_choices(campaign: Campaign) -> list:
    loc = current_locale()
    units = management.eligible_units(session(), current_user, campaign.organisation)
    return options((u.id, f"{u.space.display_name(loc)} — {u.display_name(loc)}"
                          + ("" if u.space.organisation_id == campaign.organisation_id
                             else f" ({u.space.organisation.display_name(loc)})"))
                   for u in units)


def _save_slot(campaign: Campaign, slot: CampaignSlot | None):
    form = SlotForm(obj=slot)
    form.unit_id.choices = _unit_choices(campaign)
    if request.method == "GET":
        form.fill(campaign, slot)
    result = submit(form, lambda: management.save_slot(session(), current_user, campaign,
                                                       form.to_data(), slot))
    if result.done:
        flash(_l("提供枠を保存しました。"), "success")
        return redirect(url_for(".campaign", campaign_id=campaign.id))
    return render_template("municipality/slot_form.html", form=form, campaign=campaign,
                           slot=slot), result.status


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
    return _button(found, lambda: management.delete_slot(session(), current_user, slot),
                   _l("提供枠を削除しました。"))


# ------------------------------------------------------------------------------- extras


def _extra(campaign: Campaign, extra_id: int) -> CampaignExtra:
    return _found(lambda: management.get_part(session(), current_user, campaign, CampaignExtra,
                                               extra_id))


def _save_extra(campaign: Campaign, extra: CampaignExtra | None):
    form = ExtraForm(obj=extra)
    result = submit(form, lambda: campaign_extras.save_extra(session(), current_user, campaign,
                                                             form.to_data(), extra))
    if result.done:
        flash(_l("貸出品を保存しました。"), "success")
        return redirect(url_for(".campaign", campaign_id=campaign.id))
    return render_template("municipality/extra_form.html", form=form, campaign=campaign,
                           extra=extra), result.status


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
    return _button(found, lambda: campaign_extras.delete_extra(session(), current_user, extra),
                   _l("貸出品を削除しました。"))


# ------------------------------------------------------------------------------- reports


def _report(campaign_id: int) -> reports.Report:
    """The report of the campaign, or of the space in ?space= (one of the campaign's)."""
    found = _campaign(campaign_id)
    space_id = request.args.get("space", type=int)
    return _found(lambda: reports.build(session(), current_user, found, space_id))


@bp.get("/campaigns/<int:campaign_id>/report")
def report(campaign_id: int):
    result = _report(campaign_id)
    return render_template("municipality/report.html", campaign=result.campaign, report=result,
                           spaces=result.campaign_spaces, summary=reports.summary_rows(result),
                           reports=reports, charts=charts)


@bp.get("/campaigns/<int:campaign_id>/report.csv")
def report_csv(campaign_id: int):
    result = _report(campaign_id)
    name = (f"report-{result.campaign.slug}"
            + (f"-{result.space.slug}" if result.space else "") + ".csv")
    return Response(reports.to_csv(result, current_locale()), mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="{name}"',
        "Cache-Control": "private, no-store",
    })


def _download(result: reports.Report, suffix: str, body: bytes, mimetype: str) -> Response:
    name = (f"report-{result.campaign.slug}"
            + (f"-{result.space.slug}" if result.space else "") + suffix)
    return Response(body, mimetype=mimetype, headers={
        "Content-Disposition": f'attachment; filename="{name}"',
        "Cache-Control": "private, no-store",
    })


@bp.get("/campaigns/<int:campaign_id>/report.xlsx")
def report_xlsx(campaign_id: int):
    """The report as a workbook: one sheet per table, typed cells (services/workbooks.py);
    ?era=wareki shows its dates in 和暦 (the cells stay dates)."""
    result = _report(campaign_id)
    era = request.args.get("era") == "wareki"
    return _download(result, ".xlsx", workbooks.to_xlsx(result, current_locale(), era=era),
                     workbooks.XLSX_MIMETYPE)


@bp.get("/campaigns/<int:campaign_id>/report-csv.zip")
def report_zip(campaign_id: int):
    """The same tables as plain CSV files, one table per file, zipped."""
    result = _report(campaign_id)
    return _download(result, "-csv.zip", workbooks.to_zip(result, current_locale()),
                     "application/zip")


@bp.get("/campaigns/<int:campaign_id>/report/print")
def report_print(campaign_id: int):
    """The report laid out for A4 paper, with its charts, to attach to a publication;
    ?era=wareki writes its dates in 和暦."""
    result = _report(campaign_id)
    return render_template("municipality/report_print.html", campaign=result.campaign,
                           report=result, summary=reports.summary_rows(result), charts=charts,
                           wareki=request.args.get("era") == "wareki", generated=clock.now(),
                           reports=reports)


# ------------------------------------------------------------------------------- factors


@bp.route("/factors", methods=["GET", "POST"])
def factors():
    organisations = management.municipalities_of(current_user)
    org_id = request.args.get("org", type=int) or organisations[0].id
    current = _found(lambda: reports.factors_of(session(), current_user, org_id))
    form = FactorsForm(obj=current)
    status = None
    if form.validate_on_submit():
        try:
            reports.save_factors(session(), current_user, org_id, form.to_data())
        except DomainError as error:
            status = show_error(form, error)
        else:
            flash(_l("係数を保存しました。"), "success")
            return redirect(url_for(".factors", org=org_id))
    return render_template("municipality/factors.html", form=form,
                           organisation=next(o for o in organisations if o.id == org_id),
                           organisations=organisations, defaults=reports.DEFAULT_FACTORS,
                           labels=reports.FACTOR_LABELS), status or form_status(form)
