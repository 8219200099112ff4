"""Small helpers shared by the forms of every blueprint."""

from __future__ import annotations

from collections.abc import Iterable

from flask import request
from flask_wtf import FlaskForm
from wtforms.fields.choices import SelectChoice


def options(pairs: Iterable[tuple[object, object]]) -> list[SelectChoice]:
    """Select options from (value, label) pairs."""
    return [SelectChoice(value, label) for value, label in pairs]


def form_status(form: FlaskForm) -> int:
    """422 when a submitted form has errors, so tests and clients can tell."""
    return 422 if request.method == "POST" and form.errors else 200
