"""The request's unit of work: one place commits or rolls back, and it is the edge.

Services change objects and flush; they never commit. What a request did is committed
once, after its view has answered, when the answer is a success (below 400); an error
answer or an exception rolls everything back, so a refused request leaves nothing
half-written. The CLI and the mail worker are edges of their own and commit themselves.

A commit that fails (the database went away) is raised from inside the dispatch, so the
usual error handlers answer it (503 for an unreachable database), never a bare 500.
"""

from __future__ import annotations

import contextlib

from flask import Flask
from sqlalchemy.orm import Session

from booking.extensions import db
from booking.routing import LazyBuilderRule


def session() -> Session:
    """The request's session, to hand to services (views run no queries of their own)."""
    return db.session


def finish(status: int) -> None:
    """Commit the request's work when it succeeded, otherwise roll it back."""
    if status < 400:
        db.session.commit()
    else:
        db.session.rollback()


def abandon() -> None:
    """Roll back after an exception (a failed rollback must not hide the error itself)."""
    with contextlib.suppress(Exception):
        db.session.rollback()


class App(Flask):
    """Flask, with every view's work committed or rolled back by `finish`, and URL builders
    compiled on first use (booking/routing.py)."""

    url_rule_class = LazyBuilderRule

    def dispatch_request(self):  # type: ignore[override]
        try:
            response = self.make_response(super().dispatch_request())
        except BaseException:
            abandon()
            raise
        finish(response.status_code)
        return response
