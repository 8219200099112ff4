"""The account pages' forms. They check the shape of what was typed; the rules (a free
address, a strong password) are the services' (booking.services.accounts)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, Length, Optional, ValidationError

from booking.forms import PostalCodeForm, coerce_prefecture, options, prefecture_options
from booking.models import OrgKind
from booking.services import addresses
from booking.services.accounts import NOTIFY_SWITCHES, PASSWORD_MAX, PASSWORD_MIN

_NEW_PASSWORD_HELP = _l("%(n)d文字以上。よく使われるパスワードは使えません。", n=PASSWORD_MIN)


def _new_password(label) -> PasswordField:
    return PasswordField(label, description=_NEW_PASSWORD_HELP, validators=[
        DataRequired(), Length(min=PASSWORD_MIN, max=PASSWORD_MAX)])


def _prefecture_field(label) -> SelectField:
    return SelectField(label, coerce=coerce_prefecture, choices=[], validators=[DataRequired()])


class _AccountFields(FlaskForm):
    email = EmailField(_l("メールアドレス"), validators=[DataRequired(), Length(max=254)])
    password = _new_password(_l("パスワード"))
    name = StringField(_l("お名前"), validators=[DataRequired(), Length(max=100)])

    def validate_email(self, field) -> None:
        try:  # the one address rule (booking.services.addresses); keeps its ASCII form
            field.data = addresses.normalise(field.data or "")
        except addresses.AddressError as error:
            raise ValidationError(error.message) from None

    def with_prefectures(self, locale: str):
        """The prefecture choices, named in the page's language."""
        self.prefecture.choices = prefecture_options(locale)
        return self


class CompanySignupForm(PostalCodeForm, _AccountFields):
    postal_fields = ("prefecture", None, "address")
    company_name = StringField(_l("会社名"), validators=[DataRequired(), Length(max=200)])
    prefecture = _prefecture_field(_l("本社の都道府県"))
    address = StringField(_l("本社の住所"), validators=[Optional(), Length(max=300)])

    def organisation(self) -> tuple[OrgKind, str, str]:
        """The organisation signed up for: (kind, name, English name)."""
        return OrgKind.COMPANY, self.company_name.data, ""


class SupporterSignupForm(PostalCodeForm, _AccountFields):
    postal_fields = ("prefecture", None, "address")
    kind = SelectField(_l("団体の種類"), choices=options([
        (OrgKind.MUNICIPALITY.value, _l("自治体")),
        (OrgKind.OPERATOR.value, _l("施設運営者")),
    ]))
    organisation_name = StringField(_l("団体名"), validators=[DataRequired(), Length(max=200)])
    organisation_name_en = StringField(_l("団体名(英語)"), validators=[Optional(), Length(max=200)])
    prefecture = _prefecture_field(_l("都道府県"))
    address = StringField(_l("住所"), validators=[Optional(), Length(max=300)])

    def organisation(self) -> tuple[OrgKind, str, str]:
        return (OrgKind(self.kind.data), self.organisation_name.data,
                self.organisation_name_en.data or "")


class LoginForm(FlaskForm):
    email = EmailField(_l("メールアドレス"), validators=[DataRequired(), Length(max=254)])
    password = PasswordField(_l("パスワード"), validators=[DataRequired(), Length(max=200)])


class LogoutForm(FlaskForm):
    pass


class PasswordForm(FlaskForm):
    current = PasswordField(_l("現在のパスワード"), validators=[DataRequired(), Length(max=200)])
    password = _new_password(_l("新しいパスワード"))


class DeleteForm(FlaskForm):
    password = PasswordField(_l("パスワード(確認のため)"),
                             validators=[DataRequired(), Length(max=200)])


class ActionForm(FlaskForm):
    """A button that changes something: CSRF token only."""


class NotificationsForm(FlaskForm):
    """The mail switches; the page keeps only those that apply to the person
    (services.accounts.notification_switches)."""

    notify_bookings = BooleanField(_l("自分の団体の施設の予約(新規・変更・キャンセル)をメールで受け取る"))
    notify_digest = BooleanField(_l("毎朝、その日の来訪予定をまとめたメールを受け取る"))
    notify_consents = BooleanField(_l("キャンペーン枠の同意依頼・回答をメールで受け取る"))

    def keep_only(self, names: list[str]) -> NotificationsForm:
        for name in [n for n in NOTIFY_SWITCHES if n not in names]:
            del self[name]
        return self

    def choices(self) -> dict[str, bool]:
        return {name: bool(self[name].data) for name in NOTIFY_SWITCHES if name in self}
