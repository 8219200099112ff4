"""Accounts: sign-up (companies and supporter organisations), log-in, log-out."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, Email, Length, Optional

from booking.extensions import db, limiter
from booking.forms import form_status, options
from booking.models import OrgKind
from booking.prefectures import choices as prefecture_choices
from booking.services import accounts

bp = Blueprint("account", __name__, url_prefix="/account")

PASSWORD_MIN = 10


def _prefecture_field(label, required: bool = True) -> SelectField:
    return SelectField(label, coerce=int, choices=[],
                       validators=[DataRequired()] if required else [])


class _AccountFields(FlaskForm):
    email = EmailField(_l("メールアドレス"), validators=[DataRequired(), Email(), Length(max=254)])
    password = PasswordField(
        _l("パスワード"),
        validators=[DataRequired(), Length(min=PASSWORD_MIN, max=200)],
        description=_l("%(n)d文字以上", n=PASSWORD_MIN),
    )
    name = StringField(_l("お名前"), validators=[DataRequired(), Length(max=100)])

    def validate_email(self, field) -> None:
        from wtforms.validators import ValidationError

        if accounts.email_taken(db.session, field.data or ""):
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


def _with_prefectures(form):
    from booking.web import current_locale

    form.prefecture.choices = options([(0, "—"), *prefecture_choices(current_locale())])
    return form


def _login_key() -> str:
    """Rate-limit key for log-in: the account asked for, whatever address asks."""
    return "login:" + accounts.normalise_email(request.form.get("email", ""))


@bp.route("/signup", methods=["GET", "POST"])
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
        login_user(user)
        flash(_l("登録しました。"), "success")
        return redirect(url_for("public.home"))
    return render_template("account/signup.html", form=form, supporter=False), form_status(form)


@bp.route("/signup/supporter", methods=["GET", "POST"])
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
        login_user(user)
        flash(_l("登録しました。サイト管理者の承認後に公開されます。"), "success")
        return redirect(url_for("public.home"))
    return render_template("account/signup.html", form=form, supporter=True), form_status(form)


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit("5 per minute", methods=["POST"], key_func=_login_key)
@limiter.limit("20 per minute", methods=["POST"])
def login():
    form = LoginForm()
    if form.validate_on_submit():
        user = accounts.authenticate(db.session, form.email.data, form.password.data)
        if user is not None:
            login_user(user)  # Flask-Login starts a fresh session id for the user
            target = request.args.get("next", "")
            if not target.startswith("/") or target.startswith("//"):
                target = url_for("public.home")
            return redirect(target)
        # Generic: does not say whether the address is registered.
        form.password.errors.append(_l("メールアドレスまたはパスワードが正しくありません。"))
    return render_template("account/login.html", form=form), form_status(form)


@bp.post("/logout")
@login_required
def logout():
    if LogoutForm().validate_on_submit():
        logout_user()
    return redirect(url_for("public.home"))


@bp.post("/logout-everywhere")
@login_required
def logout_everywhere():
    if LogoutForm().validate_on_submit():
        accounts.rotate_session_token(current_user)
        db.session.commit()
        logout_user()
    return redirect(url_for("public.home"))


@bp.app_context_processor
def _logout_form():
    return {"logout_form": LogoutForm}


