"""Accounts: sign-up, log-in, log-out (here and everywhere), the user's own page with
password, API tokens, personal data (export, delete) and audit logs."""

from __future__ import annotations

import json

import sqlalchemy as sa
from flask import Blueprint, Response, abort, flash, redirect, render_template, request, session, url_for
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, Length, Optional, ValidationError

from booking import clock, throttles
from booking.extensions import db
from booking.forms import form_status, options
from booking.models import ApiToken, AuditEntry, Organisation, OrgKind, User
from booking.prefectures import choices as prefecture_choices
from booking.services import access, accounts, addresses, privacy, tokens
from booking.services.errors import DomainError
from booking.web import local_path

bp = Blueprint("account", __name__, url_prefix="/account")

PASSWORD_MIN = accounts.PASSWORD_MIN
AUDIT_PAGE = 100


def _password_rules(form, field) -> None:
    """Length and zxcvbn (common/breached passwords, the user's own e-mail and name)."""
    inputs = [getattr(form, name).data or "" for name in ("email", "name") if hasattr(form, name)]
    if current_user.is_authenticated:
        inputs += [current_user.email, current_user.name]
    problem = accounts.password_problem(field.data or "", inputs)
    if problem is not None and len(field.data or "") >= PASSWORD_MIN:
        raise ValidationError(problem)


def _prefecture_field(label, required: bool = True) -> SelectField:
    return SelectField(label, coerce=int, choices=[],
                       validators=[DataRequired()] if required else [])


class _AccountFields(FlaskForm):
    email = EmailField(_l("メールアドレス"), validators=[DataRequired(), Length(max=254)])
    password = PasswordField(
        _l("パスワード"),
        validators=[DataRequired(), Length(min=PASSWORD_MIN, max=200), _password_rules],
        description=_l("%(n)d文字以上。よく使われるパスワードは使えません。", n=PASSWORD_MIN),
    )
    name = StringField(_l("お名前"), validators=[DataRequired(), Length(max=100)])

    def validate_email(self, field) -> None:
        try:  # the one address rule (booking.services.addresses); keeps its ASCII form
            field.data = addresses.normalise(field.data or "")
        except addresses.AddressError as error:
            raise ValidationError(error.message) from None
        if accounts.email_taken(db.session, field.data):
            raise ValidationError(_l("このメールアドレスは既に登録されています。"))


class CompanySignupForm(_AccountFields):
    company_name = StringField(_l("会社名"), validators=[DataRequired(), Length(max=200)])
    prefecture = _prefecture_field(_l("本社の都道府県"))
    address = StringField(_l("本社の住所"), validators=[Optional(), Length(max=300)])


class SupporterSignupForm(_AccountFields):
    kind = SelectField(_l("団体の種類"), choices=options([
        (OrgKind.MUNICIPALITY.value, _l("自治体")),
        (OrgKind.OPERATOR.value, _l("施設運営者")),
    ]))
    organisation_name = StringField(_l("団体名"), validators=[DataRequired(), Length(max=200)])
    organisation_name_en = StringField(_l("団体名(英語)"), validators=[Optional(), Length(max=200)])
    prefecture = _prefecture_field(_l("都道府県"))
    address = StringField(_l("住所"), validators=[Optional(), Length(max=300)])


class LoginForm(FlaskForm):
    email = EmailField(_l("メールアドレス"), validators=[DataRequired(), Length(max=254)])
    password = PasswordField(_l("パスワード"), validators=[DataRequired(), Length(max=200)])


class LogoutForm(FlaskForm):
    pass


class PasswordForm(FlaskForm):
    current = PasswordField(_l("現在のパスワード"), validators=[DataRequired(), Length(max=200)])
    password = PasswordField(
        _l("新しいパスワード"),
        validators=[DataRequired(), Length(min=PASSWORD_MIN, max=200), _password_rules],
        description=_l("%(n)d文字以上。よく使われるパスワードは使えません。", n=PASSWORD_MIN),
    )


class DeleteForm(FlaskForm):
    password = PasswordField(_l("パスワード(確認のため)"),
                             validators=[DataRequired(), Length(max=200)])


class ActionForm(FlaskForm):
    """A button that changes something: CSRF token only."""


def _with_prefectures(form):
    from booking.web import current_locale

    form.prefecture.choices = options([(0, "—"), *prefecture_choices(current_locale())])
    return form


def _start_session(user: User) -> None:
    """A new session at log-in (no state carried over from before, except the language)."""
    lang = session.get("lang")
    session.clear()
    if lang:
        session["lang"] = lang
    login_user(user)


# Sign-ups from one address (HTML and API together): every attempt counts, 20 an hour,
# and 10 accounts made an hour (booking.throttles).
@bp.route("/signup", methods=["GET", "POST"])
@throttles.signup
def signup():
    form = _with_prefectures(CompanySignupForm())
    if form.validate_on_submit():
        user = accounts.create_user(
            db.session, email=form.email.data, password=form.password.data, name=form.name.data
        )
        accounts.create_organisation(
            db.session, owner=user, kind=OrgKind.COMPANY, name=form.company_name.data,
            prefecture_code=form.prefecture.data or None, address=form.address.data or "",
        )
        db.session.commit()
        _start_session(user)
        flash(_l("登録しました。メールアドレスの確認用リンクをお送りしました。"), "success")
        return redirect(url_for("public.home"))
    return render_template("account/signup.html", form=form, supporter=False), form_status(form)


@bp.route("/signup/supporter", methods=["GET", "POST"])
@throttles.signup
def signup_supporter():
    form = _with_prefectures(SupporterSignupForm())
    if form.validate_on_submit():
        user = accounts.create_user(
            db.session, email=form.email.data, password=form.password.data, name=form.name.data
        )
        accounts.create_organisation(
            db.session, owner=user, kind=OrgKind(form.kind.data),
            name=form.organisation_name.data, name_en=form.organisation_name_en.data or "",
            prefecture_code=form.prefecture.data or None, address=form.address.data or "",
        )
        db.session.commit()
        _start_session(user)
        flash(_l("登録しました。サイト管理者の承認後に公開されます。メールアドレスの確認用リンクをお送りしました。"),
              "success")
        return redirect(url_for("public.home"))
    return render_template("account/signup.html", form=form, supporter=True), form_status(form)


# One budget for guessing a password, shared with the API's tokens and the account pages
# (booking.throttles): per account, the 6th wrong password within a minute is refused
# (429) from anywhere; per address, 20 failures a minute whatever accounts they try.
@bp.route("/login", methods=["GET", "POST"])
@throttles.password_guess
def login():
    form = LoginForm()
    if form.validate_on_submit():
        user = accounts.authenticate(db.session, form.email.data, form.password.data)
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
        db.session.commit()
        logout_user()
    return redirect(url_for("public.home"))


@bp.post("/logout-everywhere")
@login_required
def logout_everywhere():
    if LogoutForm().validate_on_submit():
        accounts.logout_everywhere(db.session, current_user)
        db.session.commit()
        logout_user()
        flash(_l("すべての端末からログアウトしました。"), "success")
    return redirect(url_for("public.home"))


@bp.get("/")
@login_required
def index():
    owned = [m.organisation for m in current_user.memberships
             if access.allowed(current_user, "audit", m.organisation_id)]
    return render_template("account/index.html", owned=owned, form=ActionForm(),
                           logout=LogoutForm())


@bp.route("/password", methods=["GET", "POST"])
@login_required
@throttles.own_password_guess
def password():
    form = PasswordForm()
    if form.validate_on_submit():
        if accounts.change_password(db.session, current_user, form.current.data,
                                    form.password.data):
            db.session.commit()
            # The session token changed: this session stays, every other one ends.
            login_user(current_user._get_current_object())
            flash(_l("パスワードを変更しました。他の端末はログアウトされました。"), "success")
            return redirect(url_for("account.index"))
        form.current.errors.append(_l("現在のパスワードが正しくありません。"))
    return render_template("account/password.html", form=form), form_status(form)


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
    db.session.commit()
    return render_template("account/verify.html", error=None, form=ActionForm())


@bp.post("/verify/resend")
@login_required
def resend_verification():
    if ActionForm().validate_on_submit():
        try:
            sent = accounts.send_verification(db.session, current_user)
        except DomainError as error:
            flash(error.message, "error")
        else:
            db.session.commit()
            if sent is not None:
                flash(_l("確認用リンクを%(email)sにお送りしました。", email=current_user.email),
                      "success")
    return redirect(url_for("account.index"))


@bp.get("/tokens")
@login_required
def api_tokens():
    rows = db.session.scalars(
        sa.select(ApiToken).where(ApiToken.user_id == current_user.id)
        .order_by(ApiToken.created_at.desc())
    ).all()
    return render_template("account/tokens.html", tokens=rows, now=clock.now(), form=ActionForm())


@bp.post("/tokens/<int:token_id>/revoke")
@login_required
def revoke_api_token(token_id: int):
    row = db.session.get(ApiToken, token_id)
    if row is None or row.user_id != current_user.id:
        abort(404)
    if ActionForm().validate_on_submit():
        tokens.revoke_id(db.session, row)
        db.session.commit()
        flash(_l("トークンを無効にしました。"), "success")
    return redirect(url_for("account.api_tokens"))


@bp.get("/data")
@login_required
def data():
    return render_template("account/data.html", form=DeleteForm(),
                           blocking=privacy.blocking_organisations(db.session, current_user))


@bp.get("/data.json")
@login_required
def data_json():
    body = json.dumps(privacy.export(db.session, current_user), ensure_ascii=False, indent=2)
    return Response(body, mimetype="application/json", headers={
        "Content-Disposition": 'attachment; filename="my-data.json"',
        "Cache-Control": "no-store",
    })


@bp.post("/delete")
@login_required
@throttles.own_password_guess
def delete():
    form = DeleteForm()
    blocking = privacy.blocking_organisations(db.session, current_user)
    if form.validate_on_submit():
        if accounts.authenticate(db.session, current_user.email, form.password.data) is None:
            form.password.errors.append(_l("パスワードが正しくありません。"))
        elif blocking:
            form.password.errors.append(
                _l("他のメンバーがいる団体のオーナーは、先にオーナーを引き継いでください。"))
        else:
            privacy.delete_account(db.session, current_user._get_current_object())
            db.session.commit()
            logout_user()
            session.clear()
            flash(_l("アカウントを削除しました。"), "success")
            return redirect(url_for("public.home"))
    return render_template("account/data.html", form=form, blocking=blocking), 422


@bp.get("/organisations/<int:org_id>/audit")
@login_required
def audit(org_id: int):
    org = db.get_or_404(Organisation, org_id)
    if not access.allowed(current_user, "audit", org.id):
        abort(403)
    return _audit_page(org)


def _audit_page(org: Organisation | None):
    """One page of the audit log (of one organisation, or of the whole site)."""
    page = max(request.args.get("page", 1, type=int) or 1, 1)
    query = sa.select(AuditEntry).order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
    if org is not None:
        query = query.where(AuditEntry.organisation_id == org.id)
    entries = db.session.scalars(query.offset((page - 1) * AUDIT_PAGE).limit(AUDIT_PAGE + 1)).all()
    users = {u.id: u for u in db.session.scalars(
        sa.select(User).where(User.id.in_({e.user_id for e in entries if e.user_id}))
    )}
    orgs = {o.id: o for o in db.session.scalars(
        sa.select(Organisation).where(Organisation.id.in_(
            {e.organisation_id for e in entries if e.organisation_id})))}
    return render_template("account/audit.html", org=org, entries=entries[:AUDIT_PAGE],
                           users=users, orgs=orgs, page=page,
                           has_next=len(entries) > AUDIT_PAGE)


@bp.app_context_processor
def _logout_form():
    return {"logout_form": lambda: LogoutForm(formdata=None)}


