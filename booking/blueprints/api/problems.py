"""GET /api/v1/problems and /api/v1/problems/<code>: what a problem's `type` URI names."""

from __future__ import annotations

from booking.blueprints.api import bp
from booking.blueprints.api.openapi import operation
from booking.blueprints.api.schemas import ProblemType, ProblemTypes
from booking.services.errors import problem_codes, problem_title
from booking.web import problem, problem_type


def _described(code: str, status: int) -> dict:
    return {"type": problem_type(code), "code": code, "title": problem_title(code),
            "status": status}


@bp.get("/problems")
@operation(operation_id="listProblemTypes", tag="problems",
           summary="Every kind of problem the API answers with", responses={200: ProblemTypes})
def problem_types():
    return {"results": [_described(code, status) for code, status in problem_codes().items()]}


@bp.get("/problems/<code>")
@operation(operation_id="getProblemType", tag="problems",
           summary="One kind of problem: its fixed title and HTTP status",
           responses={200: ProblemType}, problems=(404,))
def problem_type_of(code: str):
    status = problem_codes().get(code)
    if status is None:
        return problem(404, "not_found", "No such problem type.")
    return _described(code, status)
