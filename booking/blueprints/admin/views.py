"""The site admin's views (behind admin_only, booking.blueprints.admin)."""

from __future__ import annotations

from collections.abc import Callable

from flask import abort, flash, redirect, render_template, url_for
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from booking import unit_of_work
from booking.blueprints.account.views import render_audit
from booking.blueprints.admin import bp
from booking.blueprints.admin.forms import ApprovalForm, RetryForm
from booking.models import Organisation
from booking.services import accounts, mail
from booking.services.errors import DomainError


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
