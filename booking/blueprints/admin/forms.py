"""The site admin's forms."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    FieldList,
    Form,
    FormField,
    IntegerField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Length, Optional, Regexp
from wtforms.widgets import HiddenInput

from booking.blueprints.municipality.forms import CampaignTermsForm
from booking.models import NationalCampaign
from booking.services import national_campaigns

CATEGORY_ROWS = 4  # Telework Days' three and one empty row to add another
MAX_CATEGORIES = 8


class ApprovalForm(FlaskForm):
    """Approve or revoke: the CSRF token only."""


class RetryForm(FlaskForm):
    """A parked message to send again (its id in a hidden field; the CSRF token)."""

    message_id = IntegerField(widget=HiddenInput(), validators=[DataRequired()])


class CategoryForm(Form):
    """One participation category of a national campaign (a row of the admin's form)."""

    code = StringField(_l("コード"), validators=[Optional(), Length(max=40), Regexp(
        r"^[a-z0-9_-]*$", message=_l("半角英小文字・数字・ハイフンで入力してください。"))])
    name = StringField(_l("区分の名前"), validators=[Optional(), Length(max=100)])
    name_en = StringField(_l("区分の名前(英語)"), validators=[Optional(), Length(max=100)])
    conditions = TextAreaField(_l("参加の条件"), validators=[Optional(), Length(max=1000)])
    conditions_en = TextAreaField(_l("参加の条件(英語)"), validators=[Optional(), Length(max=1000)])


class NationalCampaignForm(CampaignTermsForm):
    """A national campaign (the site admin's): its period, core days and categories."""

    name = StringField(_l("全国キャンペーン名"), validators=[DataRequired(), Length(max=200)])
    name_en = StringField(_l("全国キャンペーン名(英語)"), validators=[Optional(), Length(max=200)])
    slug = StringField(
        _l("URL名"), validators=[DataRequired(), Length(min=3, max=80), Regexp(
            r"^[a-z0-9][a-z0-9-]*$", message=_l("半角英小文字・数字・ハイフンで入力してください。"))],
        description=_l("公開ページのURLに使います(例: telework-days-2019)。"))
    categories = FieldList(FormField(CategoryForm), min_entries=CATEGORY_ROWS,
                           max_entries=MAX_CATEGORIES)

    def fill(self, national: NationalCampaign | None) -> None:
        """A GET: the core days as text and the categories as rows (a new campaign starts
        with Telework Days' three), with an empty row to add one."""
        stored = (national.categories if national is not None
                  else national_campaigns.TELEWORK_DAYS_CATEGORIES)
        if national is not None:
            self.core_days.data = ", ".join(national.core_days)
        else:
            self.published.data = True
        while len(self.categories):
            self.categories.pop_entry()
        # Objects, not dicts: a FormField fills its fields from attributes.
        for category in [*stored, {}][:MAX_CATEGORIES]:
            self.categories.append_entry(national_campaigns.Category.of(category))
        while len(self.categories) < CATEGORY_ROWS:
            self.categories.append_entry(national_campaigns.Category.of({}))

    def to_data(self) -> national_campaigns.NationalData:
        return national_campaigns.NationalData(
            **self.terms(),
            categories=[{k: entry.form[k].data or "" for k in national_campaigns.CATEGORY_FIELDS}
                        for entry in self.categories])
