"""GET /api/v1/openapi.json: the contract of shared/API.md as OpenAPI 3.1.

Each API module adds its paths to PATHS and its schemas to SCHEMAS at import time.
"""

from __future__ import annotations

from flask import jsonify

from booking.blueprints.api import bp

PATHS: dict[str, dict] = {}
SCHEMAS: dict[str, dict] = {
    "Problem": {
        "type": "object",
        "required": ["type", "title", "status"],
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
            "errors": {"type": "object", "additionalProperties": {
                "type": "array", "items": {"type": "string"}}},
        },
    },
}


def problem_responses(*codes: int) -> dict:
    return {
        str(code): {
            "description": "Problem",
            "content": {"application/problem+json": {
                "schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for code in codes
    }


def json_response(description: str, schema: dict) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


# Every request may be refused before any view reads it (booking.web): NUL bytes anywhere,
# or a JSON body nested too deep.
BAD_REQUEST = {"400": {
    "description": "Bad request: NUL bytes in the path, query, headers or body, or a JSON "
                   "body nested more than 32 levels deep",
    "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
}}


def _with_bad_request(item: dict) -> dict:
    return {method: (dict(op, responses={**BAD_REQUEST, **op.get("responses", {})})
                     if isinstance(op, dict) and "responses" in op else op)
            for method, op in item.items()}


@bp.get("/openapi.json")
def openapi():
    return jsonify({
        "openapi": "3.1.0",
        "info": {"title": "Telework workspace booking API", "version": "1"},
        "servers": [{"url": "/api/v1"}],
        "paths": {path: _with_bad_request(item) for path, item in sorted(PATHS.items())},
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    })
