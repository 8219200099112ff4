"""The site admin's pages: approve supporter organisations, read the whole audit log,
see the mail that could not be sent (parked in the outbox) and send one again."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import IntegerField
from wtforms.validators import DataRequired
from wtforms.widgets import HiddenInput

from booking.extensions import db
from booking.guards import admin_only
from booking.models import Organisation, OrgKind
from booking.services import accounts, mail
from booking.services.errors import DomainError

bp = Blueprint("admin", __name__, url_prefix="/admin")


class ApprovalForm(FlaskForm):
    pass


class RetryForm(FlaskForm):
    """A parked message to send again (its id in a hidden field; the CSRF token)."""

    message_id = IntegerField(widget=HiddenInput(), validators=[DataRequired()])


bp.before_request(admin_only())


@bp.get("/organisations")
def organisations():
    supporters = db.session.scalars(
        sa.select(Organisation)
        .where(Organisation.kind != OrgKind.COMPANY)
        .order_by(Organisation.approved_at.is_not(None), Organisation.created_at)
    ).all()
    return render_template("admin/organisations.html", organisations=supporters,
                           form=ApprovalForm())


@bp.post("/organisations/<int:org_id>/approve")
def approve(org_id: int):
    org = db.get_or_404(Organisation, org_id)
    if ApprovalForm().validate_on_submit():
        accounts.approve(db.session, org, current_user)
        db.session.commit()
        flash(_l("%(name)sを承認しました。", name=org.name), "success")
    return redirect(url_for("admin.organisations"))


@bp.post("/organisations/<int:org_id>/revoke")
def revoke(org_id: int):
    org = db.get_or_404(Organisation, org_id)
    if ApprovalForm().validate_on_submit():
        accounts.revoke_approval(db.session, org, current_user)
        db.session.commit()
        flash(_l("%(name)sの承認を取り消しました。", name=org.name), "success")
    return redirect(url_for("admin.organisations"))


@bp.get("/audit")
def audit():
    from booking.blueprints.account import _audit_page

    return _audit_page(None)


@bp.get("/outbox")
def outbox():
    return render_template("admin/outbox.html", counts=mail.counts_by_state(db.session),
                           rows=mail.parked(db.session), form=RetryForm())


@bp.post("/outbox/retry")
def outbox_retry():
    form = RetryForm()
    if form.validate_on_submit():
        try:
            mail.retry_parked(db.session, form.message_id.data, current_user)
        except DomainError:
            abort(404)  # not a parked message (sent, retried already, or gone)
        db.session.commit()
        flash(_l("メール #%(id)d をもう一度送ります。", id=form.message_id.data), "success")
    return redirect(url_for("admin.outbox"))
