"""Property-based tests of the JSON API against its own OpenAPI document (schemathesis).

Every operation of /api/v1/openapi.json gets a bounded number of generated requests
through the WSGI app, on SQLite and PostgreSQL, with and without a bearer token. No
answer may be a 500, and every answer must match the document: a declared status code,
the declared content type, a body valid against the declared schema. (tests/conftest.py
reads each answer once more against the document with no undocumented property allowed.)

Bounded by SCHEMATHESIS_EXAMPLES (default 20 per operation).
"""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from booking.extensions import db
from tests.conftest import _empty_tables, make_app
from tests.factories import Factory

EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "20"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]


@pytest.fixture(scope="module")
def api_app(_schema, tmp_path_factory):
    directory = tmp_path_factory.mktemp("schemathesis")
    app = make_app(_schema, UPLOAD_DIR=str(directory / "u"), MAIL_DIR=str(directory / "m"))
    with app.app_context():
        _empty_tables()
        result = app.test_cli_runner().invoke(args=["seed"])
        assert result.exit_code == 0, result.output
        from booking.services import tokens

        user = Factory(db.session).user("schemathesis@example.jp",
                                        organisation=Factory(db.session).company())
        token, _ = tokens.issue(db.session, user, 24)
        db.session.commit()
        app.config["TEST_TOKEN"] = token
        yield app
        db.session.remove()
        _empty_tables()
        for engine in db.engines.values():
            engine.dispose()


def _property(operation, headers: dict):
    @given(case=operation.as_strategy())
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def run(case):
        try:
            case.call_and_validate(headers=headers, checks=CHECKS)
        finally:
            db.session.rollback()

    return run


def test_api_conforms_to_its_openapi_document(api_app):
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", api_app)
    token = api_app.config["TEST_TOKEN"]
    failures: list[str] = []
    operations: set[tuple[str, str]] = set()
    for result in schema.get_all_operations():
        operation = result.ok()
        operations.add((operation.method.lower(), operation.path))
        # Never revoke the shared token: DELETE /tokens/current is sent without it.
        authed = not (operation.method.upper() == "DELETE" and "tokens" in operation.path)
        run = _property(operation, {"Authorization": f"Bearer {token}"} if authed else {})
        try:
            run()
        except Exception as error:  # collect every operation's failure
            failures.append(f"{operation.method.upper()} {operation.path}:\n{error}")
    # Every operation of the generated document was probed.
    document = api_app.test_client().get("/api/v1/openapi.json").json
    # (schemathesis leaves out the document's own path, which it was loaded from)
    documented = {(m, p) for p, item in document["paths"].items() for m in item
                  if p != "/openapi.json"}
    assert operations == documented and len(documented) >= 13, documented ^ operations
    assert not failures, "\n\n".join(failures)


def test_openapi_document_is_valid_openapi_3_1(client):

    document = client.get("/api/v1/openapi.json").json
    assert document["openapi"].startswith("3.1")
    for path, item in document["paths"].items():
        assert path.startswith("/"), path
        for method, operation in item.items():
            if method == "parameters":
                continue
            assert operation.get("responses"), (method, path)
            for status, response in operation["responses"].items():
                if status.startswith(("4", "5")) and "content" in response:
                    assert "application/problem+json" in response["content"], (method, path)
