"""The site admin's views (behind admin_only, booking.blueprints.admin)."""

from __future__ import annotations

from collections.abc import Callable

from flask import Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from booking import unit_of_work
from booking.blueprints.account.views import render_audit
from booking.blueprints.admin import bp
from booking.blueprints.admin.forms import ApprovalForm, NationalCampaignForm, RetryForm
from booking.forms import submit
from booking.models import NationalCampaign, Organisation
from booking.services import accounts, mail, national_campaigns
from booking.services.errors import DomainError
from booking.web import current_locale


@bp.get("/organisations")
def organisations():
    return render_template("admin/organisations.html", form=ApprovalForm(),
                           organisations=accounts.supporter_organisations(unit_of_work.session()))


@bp.post("/organisations/<int:org_id>/approve")
def approve(org_id: int):
    return _approval(accounts.approve, org_id,
                     lambda org: _l("%(name)sを承認しました。", name=org.name))


@bp.post("/organisations/<int:org_id>/revoke")
def revoke(org_id: int):
    return _approval(accounts.revoke_approval, org_id,
                     lambda org: _l("%(name)sの承認を取り消しました。", name=org.name))


def _approval(decide: Callable[..., Organisation], org_id: int,
              done: Callable[[Organisation], str]):
    if ApprovalForm().validate_on_submit():
        try:
            org = decide(unit_of_work.session(), org_id, current_user)
        except DomainError as error:
            abort(error.status)
        flash(done(org), "success")
    return redirect(url_for("admin.organisations"))


@bp.get("/audit")
def audit():
    return render_audit(None)


@bp.get("/outbox")
def outbox():
    session = unit_of_work.session()
    return render_template("admin/outbox.html", counts=mail.counts_by_state(session),
                           rows=mail.parked(session), form=RetryForm())


@bp.post("/outbox/retry")
def outbox_retry():
    form = RetryForm()
    if form.validate_on_submit():
        try:
            mail.retry_parked(unit_of_work.session(), form.message_id.data, current_user)
        except DomainError as error:
            abort(error.status)  # not a parked message (sent, retried already, or gone)
        flash(_l("メール #%(id)d をもう一度送ります。", id=form.message_id.data), "success")
    return redirect(url_for("admin.outbox"))


# ------------------------------------------------------------------------------- national campaigns


def _national(national_id: int) -> NationalCampaign:
    try:
        return national_campaigns.get_national(unit_of_work.session(), current_user, national_id)
    except DomainError as error:
        abort(error.status)


@bp.get("/national")
def nationals():
    return render_template("admin/nationals.html", nationals=national_campaigns.all_nationals(
        unit_of_work.session(), current_user))


def _save_national(found: NationalCampaign | None):
    form = NationalCampaignForm(obj=found)
    if request.method == "GET":
        form.fill(found)
    result = submit(form, lambda: national_campaigns.save_national(
        unit_of_work.session(), current_user, form.to_data(), found))
    if result.done:
        flash(_l("全国キャンペーンを保存しました。"), "success")
        return redirect(url_for("admin.nationals"))
    return render_template("admin/national_form.html", form=form, national=found), result.status


@bp.route("/national/new", methods=["GET", "POST"])
def new_national():
    return _save_national(None)


@bp.route("/national/<int:national_id>/edit", methods=["GET", "POST"])
def edit_national(national_id: int):
    return _save_national(_national(national_id))


def _roll_up(national_id: int) -> national_campaigns.RollUp:
    return national_campaigns.roll_up(unit_of_work.session(), current_user, _national(national_id))


@bp.get("/national/<int:national_id>/report")
def national_report(national_id: int):
    return render_template("admin/national_report.html", rollup=_roll_up(national_id),
                           columns=national_campaigns.roll_up_columns())


@bp.get("/national/<int:national_id>/report.csv")
def national_report_csv(national_id: int):
    rollup = _roll_up(national_id)
    return Response(national_campaigns.roll_up_csv(rollup, current_locale()),
                    mimetype="text/csv", headers={
                        "Content-Disposition":
                            f'attachment; filename="national-{rollup.national.slug}.csv"',
                        "Cache-Control": "private, no-store"})
