"""The people pages. Each loads through a service (whose refusal of access ends the
request with its status: `_refused`), parses a form, calls one service and redirects; a
refused change is shown on its page beside its field. The request's edge commits."""

from __future__ import annotations

from flask import abort, current_app, flash, redirect, render_template, url_for
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required, login_user
from werkzeug.exceptions import default_exceptions

from booking import clock, unit_of_work
from booking.blueprints.people import bp
from booking.blueprints.people.forms import (
    ActionForm,
    InviteForm,
    JoinForm,
    MembershipForm,
    RevokeForm,
    RoleForm,
    SpaceMemberForm,
    SpaceMemberRemoveForm,
    int_of,
)
from booking.forms import submit
from booking.models import Role
from booking.services import invitations, space_members
from booking.services.errors import DomainError
from booking.web import current_locale


@bp.errorhandler(DomainError)
def _refused(error: DomainError):
    """A loader's refusal (not found, owners only): the HTTP error page with its status."""
    return current_app.handle_http_exception(default_exceptions[error.status]())


@bp.app_template_global()
def role_label(kind, role) -> str:
    """管理者/メンバー for a company, オーナー/スタッフ otherwise (services/invitations)."""
    return invitations.role_label(kind, role)


def session():
    return unit_of_work.session()


# --------------------------------------------------------------------------- people


def _people_page(org_id: int, invite: InviteForm | None = None, *, status: int = 200,
                 role_form: RoleForm | None = None, action: ActionForm | None = None):
    found = invitations.people(session(), current_user, org_id)
    invite = invite or InviteForm(formdata=None, role=Role.STAFF.value)
    invite.for_kind(found.organisation.kind)
    return render_template(
        "people/people.html", people=found, invite=invite, now=clock.now(),
        valid_days=invitations.VALID_DAYS,
        role_form=role_form or RoleForm(formdata=None).for_kind(found.organisation.kind),
        action=action or ActionForm(formdata=None)), status


@bp.get("/organisations/<int:org_id>/people")
@login_required
def people(org_id: int):
    return _people_page(org_id)


@bp.post("/organisations/<int:org_id>/people")
@login_required
def invite(org_id: int):
    found = invitations.people(session(), current_user, org_id)  # members only
    form = InviteForm().for_kind(found.organisation.kind)
    result = submit(form, lambda: invitations.invite(
        session(), current_user, org_id, form.email.data, Role(form.role.data),
        locale=current_locale()))
    if result.done:
        flash(_l("%(email)sに招待を送りました。", email=result.value[0].email), "success")
        return redirect(url_for("people.people", org_id=org_id))
    return _people_page(org_id, form, status=result.status)


@bp.post("/organisations/<int:org_id>/people/role")
@login_required
def change_role(org_id: int):
    found = invitations.people(session(), current_user, org_id)
    form = RoleForm().for_kind(found.organisation.kind)
    result = submit(form, lambda: invitations.change_role(
        session(), current_user, _membership_of(found, form.membership.data),
        Role(form.role.data)))
    if result.done:
        flash(_l("%(name)sさんの役割を変更しました。", name=result.value.user.name), "success")
        return redirect(url_for("people.people", org_id=org_id))
    return _people_page(org_id, status=result.status, role_form=form)


@bp.post("/organisations/<int:org_id>/people/remove")
@login_required
def remove(org_id: int):
    found = invitations.people(session(), current_user, org_id)
    form = MembershipForm()
    result = submit(form, lambda: invitations.remove(
        session(), current_user, _membership_of(found, form.membership.data)))
    if result.done:
        flash(_l("メンバーを外しました。"), "success")
        if not current_user.role_in(org_id):  # they removed themselves
            return redirect(url_for("account.index"))
        return redirect(url_for("people.people", org_id=org_id))
    action = ActionForm(formdata=None)
    action.form_errors.extend(form.form_errors)
    return _people_page(org_id, status=result.status, action=action)


@bp.post("/organisations/<int:org_id>/people/revoke")
@login_required
def revoke(org_id: int):
    found = invitations.people(session(), current_user, org_id)
    form = RevokeForm()
    invitation_id = int_of(form.invitation.data)
    if invitation_id not in {i.id for i in found.invitations}:
        invitation_id = 0  # not this organisation's open invitation: "not found"
    result = submit(form, lambda: invitations.revoke(session(), current_user, invitation_id))
    if result.done:
        flash(_l("%(email)s宛ての招待を取り消しました。", email=result.value.email), "success")
        return redirect(url_for("people.people", org_id=org_id))
    action = ActionForm(formdata=None)
    action.form_errors.extend(form.form_errors)
    return _people_page(org_id, status=result.status, action=action)


def _membership_of(found: invitations.People, raw: object) -> int:
    """The id of one of this organisation's memberships (0, "not found", otherwise)."""
    wanted = int_of(raw)
    return wanted if any(m.id == wanted for m in found.members) else 0


# --------------------------------------------------------------------------- the link


@bp.route(invitations.PATH + "<token>", methods=["GET", "POST"])
def invitation(token: str):
    """The mailed link: logged in, a button to join; otherwise sign up here (or log in)."""
    try:
        found = invitations.find(session(), token)
    except DomainError:
        abort(404)
    state = invitations.state_of(found)
    logged_in = current_user.is_authenticated
    form = ActionForm() if logged_in else JoinForm()
    status = 200
    if state == "pending":
        if logged_in:
            result = submit(form, lambda: invitations.accept(session(), current_user, token))
        else:
            result = submit(form, lambda: invitations.sign_up(
                session(), token, name=form.name.data, password=form.password.data,
                locale=current_locale()))
        if result.done:
            if not logged_in:
                login_user(result.value)
            flash(_l("%(organisation)sに参加しました。",
                     organisation=found.organisation.display_name(current_locale())),
                  "success")
            return redirect(url_for("people.people", org_id=found.organisation_id))
        status = result.status
    else:
        status = 410
    wrong_account = logged_in and current_user.email != found.email
    return render_template("people/invitation.html", invitation=found, state=state, form=form,
                           wrong_account=wrong_account, token=token), status


# --------------------------------------------------------------------------- space members


def _members_page(space_id: int, form: SpaceMemberForm | None = None, *, status: int = 200,
                  remove_form: SpaceMemberRemoveForm | None = None):
    space, rows = space_members.listed(session(), current_user, space_id)
    return render_template("people/space_members.html", space=space, members=rows,
                           form=form or SpaceMemberForm(formdata=None),
                           remove_form=remove_form or SpaceMemberRemoveForm(formdata=None)
                           ), status


@bp.get("/operator/spaces/<int:space_id>/members")
@login_required
def space_members_page(space_id: int):
    return _members_page(space_id)


@bp.post("/operator/spaces/<int:space_id>/members")
@login_required
def space_member_add(space_id: int):
    space_members.listed(session(), current_user, space_id)  # the space's people only
    form = SpaceMemberForm()
    result = submit(form, lambda: space_members.add(
        session(), current_user, space_id, form.email.data,
        whole_company=bool(form.whole_company.data), note=form.note.data or ""))
    if result.done:
        flash(_l("会員を追加しました。"), "success")
        return redirect(url_for("people.space_members_page", space_id=space_id))
    return _members_page(space_id, form, status=result.status)


@bp.post("/operator/spaces/<int:space_id>/members/remove")
@login_required
def space_member_remove(space_id: int):
    space_members.listed(session(), current_user, space_id)
    form = SpaceMemberRemoveForm()
    result = submit(form, lambda: space_members.remove(
        session(), current_user, space_id, int_of(form.member.data)))
    if result.done:
        flash(_l("会員から外しました。"), "success")
        return redirect(url_for("people.space_members_page", space_id=space_id))
    return _members_page(space_id, status=result.status, remove_form=form)
