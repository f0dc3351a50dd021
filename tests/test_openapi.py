"""The OpenAPI document at /api/openapi.json, fuzzed against the real app with schemathesis (in-process WSGI).

Schemathesis' lazy `from_fixture` loader reads `request.node._nodeid`, which the pinned pytest no longer has,
so the schemas are built at import from `tracker.openapi.spec()` (it needs no app) and every request goes to
the `app` fixture's app: a fresh database per operation, seeded with a token, the `story` fixture's story
and one entry.
"""
import re

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig

from tracker import services
from tracker.extensions import db
from tracker.models import Story
from tracker.openapi import spec

# Examples per operation and phase: enough to reach every documented status, few enough to run fast.
MAX_EXAMPLES = 25
SLUG = "flood-warning-on-the-river"  # the `story` fixture's story
ENTRY_ID = 1  # the first entry of a fresh database
# A well-formed id or cursor that names nothing is refused by state, not by shape: positive data may meet it.
# So is a time that JSON Schema cannot call past (publish_at), a state a step does not apply to (publishing a
# published entry: 409), and a combination of fields (status "scheduled" without publish_at: 422).
STATE_STATUSES = {  # by operationId: a method and a path filter would each match on their own
    "listEntries": ["2xx", "400", "404"],  # `before` not an entry of this story
    "appendEntry": ["2xx", "404", "409", "422"],
    "updateEntry": ["2xx", "404", "409", "410", "412", "422"],  # the seeded entry deleted by an earlier call
    "publishEntry": ["2xx", "404", "409", "410", "412"],  # If-Match names another version
}


def _schema(parameters: dict):
    config = SchemathesisConfig.from_dict({
        "generation": {"mode": "all", "max-examples": MAX_EXAMPLES, "deterministic": True, "database": "none"},
        "phases": {"stateful": {"enabled": False}},
        "parameters": parameters,
        "checks": {
            # A field over its limit is a 413. Limits count characters after trimming and dropping control
            # characters, which JSON Schema cannot say: a random run may send e.g. 201 characters ending in a
            # space and see them accepted. The generation is deterministic so this run never does.
            "negative_data_rejection": {"expected-statuses": ["400", "401", "404", "405", "409", "413", "422"]},
        },
        "operations": [
            {"include-operation-id": operation,
             "checks": {"positive_data_acceptance": {"expected-statuses": statuses}}}
            for operation, statuses in STATE_STATUSES.items()
        ],
    })
    return schemathesis.openapi.from_dict(spec(), config=config)


# Path parameters pointing at the seeded story and entry (else nearly every path is a 404), and generated ones.
existing = _schema({"slug": SLUG, "entry_id": ENTRY_ID})
generated = _schema({})


@pytest.fixture
def auth(app, story):
    """A valid bearer token's header, with the story and one entry in place."""
    with app.test_request_context():
        token = services.create_token("fuzzer")[1]
        entry, _ = services.append_entry(db.session.query(Story).filter_by(slug=story).one(), "First update")
    assert (story, entry.id) == (SLUG, ENTRY_ID)
    return {"Authorization": f"Bearer {token}"}


FUZZ_SETTINGS = settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def call_and_validate(case, app, auth):
    # The schema was loaded without an app; checks that send requests of their own (ignored_auth) take it here.
    case.operation.app = case.operation.schema.app = app
    case.call_and_validate(headers=auth)


@existing.parametrize()
@FUZZ_SETTINGS
def test_api_on_existing_resources_matches_the_document(case, app, auth):
    call_and_validate(case, app, auth)


@generated.parametrize()
@FUZZ_SETTINGS
def test_api_on_generated_paths_matches_the_document(case, app, auth):
    call_and_validate(case, app, auth)


def test_the_document_is_served_and_valid(client):
    response = client.get("/api/openapi.json")
    assert response.status_code == 200 and response.get_json() == spec()
    existing.validate()  # against the OpenAPI 3.1 meta-schema


def test_every_api_route_is_documented(app):
    documented = {(path, method.upper()) for path, item in spec()["paths"].items()
                  for method in item if method != "parameters"}
    routes = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/"):
            continue
        paths = [rule.rule]
        if choice := re.search(r"<any\(([^)]*)\):\w+>", rule.rule):
            paths = [rule.rule.replace(choice.group(0), option.strip()) for option in choice.group(1).split(",")]
        for path in paths:
            path = re.sub(r"<(?:[^:>]+:)?(\w+)>", r"{\1}", path)
            routes |= {(path, method) for method in rule.methods - {"HEAD", "OPTIONS"}}
    assert routes and routes <= documented, sorted(routes - documented)
    assert documented <= routes, sorted(documented - routes)
