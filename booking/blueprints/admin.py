"""The site admin's pages: approve supporter organisations, read the whole audit log."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, flash, redirect, render_template, url_for
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm

from booking.extensions import db
from booking.models import Organisation, OrgKind
from booking.services import accounts
from booking.services.authz import admin_required

bp = Blueprint("admin", __name__, url_prefix="/admin")


class ApprovalForm(FlaskForm):
    pass


bp.before_request(admin_required())


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
