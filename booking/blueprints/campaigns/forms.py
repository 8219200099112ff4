"""Forms of the campaigns pages: a company's participation, an operator's consent."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, IntegerField, SelectField, TextAreaField
from wtforms.validators import NumberRange, Optional

from booking.forms import options
from booking.models import Organisation, TeleworkCategory

CATEGORY_CHOICES = (
    ("", _l("登録しない")),
    (TeleworkCategory.IMPLEMENTING.value, _l("実施団体(人数・日数を問わず実施)")),
    (TeleworkCategory.SPECIAL.value, _l("特別協力団体(5日以上・コア日に100名以上・効果測定に協力)")),
)


class NamedCategory(Protocol):
    code: str

    def display_name(self, locale: str = "ja") -> str: ...


class ParticipationForm(FlaskForm):
    company_id = HiddenField()
    telework_category = SelectField(_l("テレワーク・デイズへの参加区分"), choices=options(CATEGORY_CHOICES))
    core_day_staff = IntegerField(_l("コア日にテレワークする人数"),
                                  validators=[Optional(), NumberRange(min=0, max=1_000_000)])

    def fill(self, company: Organisation) -> None:
        """A GET: the company's category as the select's value ('' for none)."""
        self.telework_category.data = (company.telework_category.value
                                       if company.telework_category else "")

    def label_categories(self, categories: Sequence[NamedCategory], locale: str) -> None:
        """The choices named as the national campaign's categories (those a company can
        register as: TeleworkCategory's codes); without any, the text above stays."""
        names = {c.code: c.display_name(locale) for c in categories}
        self.telework_category.choices = options(
            (value, names.get(value, label)) for value, label in CATEGORY_CHOICES)

    def category(self) -> TeleworkCategory | None:
        return TeleworkCategory(self.telework_category.data) if self.telework_category.data else None


class ConsentForm(FlaskForm):
    """One slot's answer: the button pressed (consent "1" agrees, "0" declines or
    withdraws) and the reason, which the service requires for "0". The page has one form
    per slot: `for_slot` gives each its own ids (the error beside its own field)."""

    consent = HiddenField()  # sent by the submit buttons (name=consent), not rendered
    reason = TextAreaField(_l("お断りする理由"), description=_l("自治体に伝わります。"))

    def given(self) -> bool:
        return self.consent.data == "1"

    def for_slot(self, slot_id: int) -> ConsentForm:
        self.reason.id = self.reason.label.field_id = f"reason-{slot_id}"
        return self
