"""The site admin's page: approve supporter organisations."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from flask_wtf import FlaskForm

from booking.extensions import db
from booking.models import Organisation, OrgKind
from booking.services import accounts

bp = Blueprint("admin", __name__, url_prefix="/admin")


class ApprovalForm(FlaskForm):
    pass


@bp.before_request
@login_required
def _admins_only():
    if not current_user.is_admin:
        abort(403)


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
