"""The registration number form: the shape of what was typed; the check digit is the
service's rule (services/receipts.py), shown beside the field."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import Length


class RegistrationForm(FlaskForm):
    registration_number = StringField(
        _l("適格請求書発行事業者の登録番号"), validators=[Length(max=40)],
        description=_l("「T」に続く13桁の数字(例: T7000012050002)。空欄にすると登録なしになり、"
                       "領収書は適格請求書ではない旨を記載して発行されます。"))
