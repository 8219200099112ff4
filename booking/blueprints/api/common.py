"""What every API module shares: auth by bearer token, problems, validation errors."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from functools import wraps
from typing import Annotated, TypeVar

from flask import g, request
from pydantic import AfterValidator, AwareDatetime, BaseModel, ValidationError
from werkzeug.exceptions import HTTPException

from booking import dates, unit_of_work
from booking.blueprints.api import bp
from booking.services import tokens
from booking.services.errors import DomainError
from booking.web import problem

M = TypeVar("M", bound=BaseModel)

__all__ = ["ApiDate", "ApiDatetime", "bp", "domain_problem", "parse_body", "problem",
           "token_required", "token_required_before_a_decision"]

# Dates and times a request may bring: in the range of booking.dates (2000-01-01 to about
# five years ahead); 9999-12-31 is a 422 naming the field, not an OverflowError later.
ApiDate = Annotated[date, AfterValidator(dates.check)]
ApiDatetime = Annotated[AwareDatetime, AfterValidator(dates.check_datetime)]


def _bearer_user(before_a_decision: bool = False):
    """The user of the request's bearer token, or None (no token, or not a valid one)."""
    scheme, _sep, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    read = tokens.user_before_a_decision if before_a_decision else tokens.user_for
    return read(unit_of_work.session(), token.strip())


def _unauthorized():
    return problem(401, "unauthorized", "A valid bearer token is required.")


def token_required(view: Callable, before_a_decision: bool = False) -> Callable:
    @wraps(view)
    def wrapper(*args, **kwargs):
        user = _bearer_user(before_a_decision)
        if user is None:
            return _unauthorized()
        g.api_user = user
        return view(*args, **kwargs)

    return wrapper


def token_required_before_a_decision(view: Callable) -> Callable:
    """token_required for a view whose writes are all decided in a transaction of their
    own (a new booking: tokens.user_before_a_decision)."""
    return token_required(view, before_a_decision=True)


def token_optional(view: Callable) -> Callable:
    """A public view that knows the caller when a token comes (g.api_user, else None); a
    token that is sent but not valid is refused (401), never silently ignored."""
    @wraps(view)
    def wrapper(*args, **kwargs):
        user = _bearer_user()
        if user is None and "Authorization" in request.headers:
            return _unauthorized()
        g.api_user = user
        return view(*args, **kwargs)

    return wrapper


class InvalidInput(Exception):
    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("invalid input")
        self.errors = errors


def parse_body(model: type[M]) -> M:
    """The JSON body validated by a pydantic model; InvalidInput lists the fields.
    (A body nested too deep never gets here: booking.web refuses it with a 400.)"""
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise InvalidInput({"body": ["must be a JSON object"]})
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise InvalidInput(validation_errors(error)) from None


def validation_errors(error: ValidationError) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    for item in error.errors():
        field = ".".join(str(p) for p in item["loc"]) or "body"
        errors.setdefault(field, []).append(item["msg"])
    return errors


def domain_problem(error: DomainError):
    return problem(error.status, error.code, error.message, **error.extra)


@bp.errorhandler(InvalidInput)
def _invalid(error: InvalidInput):
    return problem(422, "invalid_input", "The request has invalid fields.", errors=error.errors)


@bp.errorhandler(DomainError)
def _domain(error: DomainError):
    # Nothing to undo here: the request's edge has rolled the work back already.
    return domain_problem(error)


@bp.errorhandler(HTTPException)
def _http(error: HTTPException):
    return problem(error.code or 500, detail=error.description or "")
