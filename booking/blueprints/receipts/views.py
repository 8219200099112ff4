"""The receipts' views: each loads and issues through booking.services.receipts (one
call), and answers the PDF or the form; a refusal is a 404 (nothing about what exists)
or an error beside the field; booking.unit_of_work commits the issued document."""

from __future__ import annotations

from flask import Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from booking.blueprints.receipts import bp
from booking.blueprints.receipts.forms import RegistrationForm
from booking.forms import submit
from booking.models import Booking
from booking.services import receipts
from booking.services.errors import DomainError
from booking.unit_of_work import session


@bp.app_template_global()
def receipt_available(booking: Booking) -> bool:
    """Whether the booking page and mail offer the document link."""
    return receipts.available(session(), booking)


@bp.get("/bookings/<reference>/receipt")
@login_required
def booking_document(reference: str):
    """The booking's current document (issued at the first download), or with ?doc= one
    of the documents already issued for it (the original after a credit note);
    ?era=wareki prints the dates in 和暦."""
    try:
        doc = request.args.get("doc", "")
        if doc:
            if not doc.isdigit():
                abort(404)
            receipt = receipts.find(session(), current_user, int(doc), reference)
        else:
            receipt = receipts.issue(session(), current_user, reference)
    except DomainError:
        abort(404)
    pdf = receipts.render(receipt, era=request.args.get("era") == "wareki")
    return Response(pdf.body, mimetype="application/pdf", headers={
        "Content-Disposition": f'inline; filename="{pdf.filename}"',
        "Cache-Control": "private, no-store",
    })


@bp.route("/organisations/<int:org_id>/invoice-registration", methods=["GET", "POST"])
@login_required
def registration(org_id: int):
    """An operator's or municipality's owners set its invoice registration number."""
    try:
        organisation = receipts.registration_of(session(), current_user, org_id)
    except DomainError as error:
        abort(error.status)  # 404 outside the organisation, 403 for its staff
    form = RegistrationForm(
        data={"registration_number": organisation.invoice_registration_number or ""})
    result = submit(form, lambda: receipts.set_registration_number(
        session(), current_user, org_id, form.registration_number.data))
    if result.done:
        flash(_("登録番号を保存しました。"), "success")
        return redirect(url_for("receipts.registration", org_id=org_id))
    return render_template("receipts/registration.html", organisation=organisation,
                           form=form), result.status
