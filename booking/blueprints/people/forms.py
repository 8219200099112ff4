"""The people pages' forms: the shape of what was typed; the rules are the services'."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, HiddenField, PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, Length, Optional

from booking.forms import options
from booking.models import OrgKind, Role
from booking.services.accounts import PASSWORD_MAX, PASSWORD_MIN
from booking.services.invitations import role_label


def role_choices(kind: OrgKind) -> list:
    """The roles, named as this kind of organisation names them (staff first)."""
    return options([(r.value, role_label(kind, r)) for r in (Role.STAFF, Role.OWNER)])


class ActionForm(FlaskForm):
    """A button that changes something (its CSRF token); a refusal at the top."""


class InviteForm(FlaskForm):
    email = EmailField(_l("メールアドレス"), validators=[DataRequired(), Length(max=254)])
    role = SelectField(_l("役割"))

    def for_kind(self, kind: OrgKind) -> InviteForm:
        self.role.choices = role_choices(kind)
        return self


class RoleForm(FlaskForm):
    membership = HiddenField(validators=[DataRequired()])
    role = SelectField(_l("役割"))

    def for_kind(self, kind: OrgKind) -> RoleForm:
        self.role.choices = role_choices(kind)
        return self


class MembershipForm(FlaskForm):
    membership = HiddenField(validators=[DataRequired()])


class RevokeForm(FlaskForm):
    invitation = HiddenField(validators=[DataRequired()])


class JoinForm(FlaskForm):
    """Signing up from an invitation: the address is the invitation's."""

    name = StringField(_l("お名前"), validators=[DataRequired(), Length(max=100)])
    password = PasswordField(
        _l("パスワード"), description=_l("%(n)d文字以上。よく使われるパスワードは使えません。",
                                      n=PASSWORD_MIN),
        validators=[DataRequired(), Length(min=PASSWORD_MIN, max=PASSWORD_MAX)])


class SpaceMemberForm(FlaskForm):
    email = EmailField(_l("メールアドレス"), validators=[DataRequired(), Length(max=254)])
    whole_company = BooleanField(_l("この方の会社全体を会員にする(登録済みの会社の方のみ)"))
    note = StringField(_l("メモ"), validators=[Optional(), Length(max=200)],
                       description=_l("会員番号など(利用者には表示されません)"))


class SpaceMemberRemoveForm(FlaskForm):
    member = HiddenField(validators=[DataRequired()])


def int_of(value: object) -> int:
    """A hidden id field's number (0, which matches nothing, when it is not one)."""
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return 0
