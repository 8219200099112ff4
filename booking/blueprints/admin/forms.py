"""The site admin's forms."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import IntegerField
from wtforms.validators import DataRequired
from wtforms.widgets import HiddenInput


class ApprovalForm(FlaskForm):
    """Approve or revoke: the CSRF token only."""


class RetryForm(FlaskForm):
    """A parked message to send again (its id in a hidden field; the CSRF token)."""

    message_id = IntegerField(widget=HiddenInput(), validators=[DataRequired()])
