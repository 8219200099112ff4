"""The account pages. Each parses its form, calls one service and shows a refusal beside
its field (booking.forms.show_error); the request's edge commits (booking.unit_of_work)."""

from __future__ import annotations

import json

from flask import Response, abort, flash, redirect, render_template, request, session, url_for
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required, login_user, logout_user

from booking import clock, throttles, unit_of_work
from booking.blueprints.account import bp
from booking.blueprints.account.forms import (
    ActionForm,
    CompanySignupForm,
    DeleteForm,
    LoginForm,
    LogoutForm,
    NotificationsForm,
    PasswordForm,
    SupporterSignupForm,
)
from booking.forms import form_status, show_error, submit
from booking.models import User
from booking.services import access, accounts, privacy, tokens
from booking.services import audit as audit_service
from booking.services.errors import DomainError
from booking.web import current_locale, local_path


def _start_session(user: User) -> None:
    """A new session at log-in (no state carried over from before, except the language)."""
    lang = session.get("lang")
    session.clear()
    if lang:
        session["lang"] = lang
    login_user(user)


def _sign_up(form: CompanySignupForm | SupporterSignupForm, done: str, supporter: bool):
    """Both sign-up pages: a new account owning a new organisation, logged in at once."""
    status = None
    if form.wants_address():  # 「住所を入力」: the form again, filled, nothing saved
        status = form.fill_address_from_code()
    elif form.validate_on_submit():
        kind, name, name_en = form.organisation()
        try:
            user, _organisation = accounts.sign_up(
                unit_of_work.session(), email=form.email.data, password=form.password.data,
                name=form.name.data, kind=kind, organisation_name=name,
                organisation_name_en=name_en, prefecture_code=form.prefecture.data or None,
                address=form.address.data or "", postal_code=form.postal_code_value())
        except DomainError as error:
            status = show_error(form, error)
        else:
            _start_session(user)
            flash(done, "success")
            return redirect(url_for("public.home"))
    return (render_template("account/signup.html", form=form, supporter=supporter),
            status or form_status(form))


# Sign-ups from one address (HTML and API together): every attempt counts, 20 an hour,
# and 10 accounts made an hour (booking.throttles).
@bp.route("/signup", methods=["GET", "POST"])
@throttles.signup
def signup():
    form = CompanySignupForm().with_prefectures(current_locale())
    return _sign_up(form, supporter=False,
                    done=_l("登録しました。メールアドレスの確認用リンクをお送りしました。"))


@bp.route("/signup/supporter", methods=["GET", "POST"])
@throttles.signup
def signup_supporter():
    form = SupporterSignupForm().with_prefectures(current_locale())
    return _sign_up(form, supporter=True, done=_l(
        "登録しました。サイト管理者の承認後に公開されます。メールアドレスの確認用リンクをお送りしました。"))


# One budget for guessing a password, shared with the API's tokens and the account pages
# (booking.throttles): per account, the 6th wrong password within a minute is refused
# (429) from anywhere; per address, 20 failures a minute whatever accounts they try.
@bp.route("/login", methods=["GET", "POST"])
@throttles.password_guess
def login():
    form = LoginForm()
    if form.validate_on_submit():
        user = accounts.authenticate(unit_of_work.session(), form.email.data, form.password.data)
        if user is not None:
            _start_session(user)
            return redirect(local_path(request.args.get("next"), url_for("public.home")))
        # Generic: does not say whether the address is registered.
        form.password.errors.append(_l("メールアドレスまたはパスワードが正しくありません。"))
    return render_template("account/login.html", form=form), form_status(form)


@bp.post("/logout")
@login_required
def logout():
    if LogoutForm().validate_on_submit():
        # Ended on the server: a copy of this session's cookie stops working too.
        accounts.log_out(current_user._get_current_object())
        logout_user()
    return redirect(url_for("public.home"))


@bp.post("/logout-everywhere")
@login_required
def logout_everywhere():
    if LogoutForm().validate_on_submit():
        accounts.logout_everywhere(unit_of_work.session(), current_user)
        logout_user()
        flash(_l("すべての端末からログアウトしました。"), "success")
    return redirect(url_for("public.home"))


@bp.get("/")
@login_required
def index():
    owned = [m.organisation for m in current_user.memberships
             if access.allowed(current_user, "audit", m.organisation_id)]
    return render_template("account/index.html", owned=owned, form=ActionForm(),
                           logout=LogoutForm(),
                           notification_switches=accounts.notification_switches(current_user))


@bp.route("/password", methods=["GET", "POST"])
@login_required
@throttles.own_password_guess
def password():
    form = PasswordForm()
    result = submit(form, lambda: accounts.change_password(
        unit_of_work.session(), current_user, form.current.data, form.password.data))
    if result.done:
        # The session token changed: this session stays, every other one ends.
        login_user(current_user._get_current_object())
        flash(_l("パスワードを変更しました。他の端末はログアウトされました。"), "success")
        return redirect(url_for("account.index"))
    return render_template("account/password.html", form=form), result.status


@bp.route("/notifications", methods=["GET", "POST"])
@login_required
def notifications():
    """通知設定: the person's mail switches that apply to them."""
    shown = accounts.notification_switches(current_user)
    form = NotificationsForm(obj=current_user).keep_only(shown)
    result = submit(form, lambda: accounts.set_notifications(
        unit_of_work.session(), current_user, form.choices()))
    if result.done:
        flash(_l("通知設定を保存しました。"), "success")
        return redirect(url_for("account.notifications"))
    return render_template("account/notifications.html", form=form, shown=shown), result.status


# The link mailed at sign-up (services/accounts.py): it verifies the address only for the
# account it was made for, opened while logged in to it.
@bp.get(accounts.VERIFY_PATH.removeprefix("/account") + "<token>")
@login_required
def verify_email(token: str):
    try:
        accounts.verify_email(current_user, token)
    except DomainError as error:
        return render_template("account/verify.html", error=error.message,
                               form=ActionForm()), error.status
    return render_template("account/verify.html", error=None, form=ActionForm())


@bp.post("/verify/resend")
@login_required
def resend_verification():
    if ActionForm().validate_on_submit():
        try:
            sent = accounts.send_verification(unit_of_work.session(), current_user)
        except DomainError as error:
            flash(error.message, "error")
        else:
            if sent is not None:
                flash(_l("確認用リンクを%(email)sにお送りしました。", email=current_user.email),
                      "success")
    return redirect(url_for("account.index"))


@bp.get("/tokens")
@login_required
def api_tokens():
    return render_template("account/tokens.html", now=clock.now(), form=ActionForm(),
                           tokens=tokens.of_user(unit_of_work.session(), current_user))


@bp.post("/tokens/<int:token_id>/revoke")
@login_required
def revoke_api_token(token_id: int):
    if ActionForm().validate_on_submit():
        try:
            tokens.revoke_id(unit_of_work.session(), current_user, token_id)
        except DomainError as error:
            abort(error.status)
        flash(_l("トークンを無効にしました。"), "success")
    return redirect(url_for("account.api_tokens"))


@bp.get("/data")
@login_required
def data():
    return render_template("account/data.html", form=DeleteForm(), blocking=(
        privacy.blocking_organisations(unit_of_work.session(), current_user)))


@bp.get("/data.json")
@login_required
def data_json():
    body = json.dumps(privacy.export(unit_of_work.session(), current_user),
                      ensure_ascii=False, indent=2)
    return Response(body, mimetype="application/json", headers={
        "Content-Disposition": 'attachment; filename="my-data.json"',
        "Cache-Control": "no-store",
    })


@bp.post("/delete")
@login_required
@throttles.own_password_guess
def delete():
    form = DeleteForm()
    status = None
    if form.validate_on_submit():
        try:
            accounts.confirm_password(current_user, form.password.data)
            privacy.delete_account(unit_of_work.session(), current_user._get_current_object())
        except DomainError as error:
            status = show_error(form, error)
        else:
            logout_user()
            session.clear()
            flash(_l("アカウントを削除しました。"), "success")
            return redirect(url_for("public.home"))
    return render_template("account/data.html", form=form, blocking=(
        privacy.blocking_organisations(unit_of_work.session(), current_user))), (
            status or form_status(form))


@bp.get("/organisations/<int:org_id>/audit")
@login_required
def audit(org_id: int):
    return render_audit(org_id)


def render_audit(organisation_id: int | None):
    """A page of an organisation's audit log, or of the whole site's (admin.audit)."""
    try:
        log = audit_service.page(unit_of_work.session(), current_user, organisation_id,
                         request.args.get("page", 1, type=int) or 1)
    except DomainError as error:
        abort(error.status)
    return render_template("account/audit.html", log=log)
