"""Every answer of the JSON API, checked against /api/v1/openapi.json as it is served.

tests/conftest.py hooks this onto Flask's request_finished signal for every test: each
answer under /api/v1 must have a status code its operation documents, the documented
content type, and a body valid against the documented schema, read strictly: every object
schema that lists properties gets `additionalProperties: false` here (the document itself
leaves objects open, since the contract may add fields), so a field that a view sends and
its model does not document fails the test that made the request.
"""

from __future__ import annotations

import copy
import json
import re
from functools import cache

from flask import Flask, Request, Response
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

PREFIX = "/api/v1"
_RULE_PARAM = re.compile(r"<(?:\w+(?:\([^)]*\))?:)?(\w+)>")


def strict(schema):
    """The schema with `additionalProperties: false` on every object that lists its
    properties and says nothing of others."""
    if isinstance(schema, dict):
        out = {k: strict(v) for k, v in schema.items()}
        if "properties" in out and "additionalProperties" not in out \
                and "patternProperties" not in out:
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [strict(v) for v in schema]
    return schema


class Contract:
    def __init__(self, document: dict) -> None:
        self.document = document
        components = strict(copy.deepcopy(document["components"]))
        root = {"$schema": "https://json-schema.org/draft/2020-12/schema",
                "components": components}
        self.registry = Registry().with_resource("urn:openapi", Resource(root, DRAFT202012))
        self._validators: dict[str, Draft202012Validator] = {}

    def validator(self, schema: dict) -> Draft202012Validator:
        key = json.dumps(schema, sort_keys=True)
        if key not in self._validators:
            rebased = json.loads(key.replace('"#/components/', '"urn:openapi#/components/'))
            self._validators[key] = Draft202012Validator(
                strict(rebased), registry=self.registry, format_checker=FormatChecker())
        return self._validators[key]

    def operation(self, rule: str | None, method: str) -> tuple[str, dict | None]:
        if rule is None:
            return "(no route)", None
        path = _RULE_PARAM.sub(r"{\1}", rule.removeprefix(PREFIX))
        return f"{method} {path}", self.document["paths"].get(path, {}).get(method.lower())

    def check(self, rule: str | None, method: str, response: Response) -> list[str]:
        """What is wrong with one answer (nothing: [])."""
        label, op = self.operation(rule, method)
        status = response.status_code
        if method == "HEAD" or method == "OPTIONS":
            return []
        if op is None:
            # No route (the router's 404 or 405), or a route a test added: not an operation
            # of the document (build_document refuses an API view without one), but what
            # goes wrong there is still a problem document.
            if status < 400:
                return []
            declared = {"content": {"application/problem+json": {
                "schema": {"$ref": "#/components/schemas/Problem"}}}}
        else:
            declared = op["responses"].get(str(status))
            if declared is None:
                return [f"{label}: {status} is not documented"]
        content = declared.get("content")
        body = response.get_data()
        if not content:
            problems = []
            if body:
                problems.append(f"{label} {status}: a body where none is documented")
            if response.headers.get("Content-Type"):
                problems.append(f"{label} {status}: Content-Type "
                                f"{response.headers['Content-Type']} without a body")
            return problems
        if response.mimetype not in content:
            return [f"{label} {status}: {response.mimetype}, documented {sorted(content)}"]
        schema = content[response.mimetype].get("schema")
        if schema is None:
            return []
        try:
            data = json.loads(body)
        except ValueError as error:
            return [f"{label} {status}: not JSON ({error})"]
        return [f"{label} {status}: {'/'.join(map(str, e.absolute_path)) or '(body)'}: {e.message}"
                for e in self.validator(schema).iter_errors(data)][:5]


@cache
def _contract(document_json: str) -> Contract:
    return Contract(json.loads(document_json))


def contract_of(app: Flask) -> Contract:
    """The app's document as a Contract (one per distinct document, kept on the app)."""
    from booking.blueprints.api.openapi import document

    found = app.extensions.get("tests.api_contract")
    if found is None:
        with app.app_context():
            found = _contract(json.dumps(document(), sort_keys=True))
        app.extensions["tests.api_contract"] = found
    return found


def checked(app: Flask, request: Request, response: Response) -> list[str]:
    if not request.path.startswith(PREFIX + "/"):
        return []
    if response.is_streamed:
        return []
    rule = request.url_rule.rule if request.url_rule is not None else None
    return contract_of(app).check(rule, request.method, response)
