"""The OpenAPI document is generated from the request models, and the API keeps to it under generated input."""
from __future__ import annotations

import json

import schemathesis
from pydantic import TypeAdapter
from hypothesis import HealthCheck, given, settings, strategies as st
from schemathesis.checks import (
    content_type_conformance, not_a_server_error, response_schema_conformance, status_code_conformance,
)
from schemathesis.generation import GenerationMode

from api.schemas import ClientIn, ReadingIn
from tests.api_helpers import bearer, make_client, make_key, make_unit_type, reading

EXAMPLES = 6  # per operation and mode
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def test_the_document_is_public_and_built_from_the_request_models(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    doc = response.json
    assert doc["openapi"].startswith("3.1")
    schemas = doc["components"]["schemas"]
    assert schemas["ReadingIn"]["required"] == TypeAdapter(ReadingIn).json_schema()["required"] == [
        "asset_id", "source", "unit_type", "value", "timestamp"]
    assert schemas["ClientIn"]["properties"]["name"]["maxLength"] == \
        ClientIn.model_json_schema()["properties"]["name"]["maxLength"]
    post = doc["paths"]["/api/v1/readings"]["post"]
    assert set(post["responses"]) >= {"200", "400", "401", "403", "413", "429"}
    for path in ("/api/v1/clients", "/api/v1/unit-types", "/api/v1/buckets", "/api/v1/assets",
                 "/api/v1/suppressions", "/api/v1/billing", "/api/v1/projections", "/api/v1/jobs/{run_id}",
                 "/api/v1/billing/run", "/api/v1/projections/run"):
        assert path in doc["paths"], path


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=30,
)
ITEM_FIELDS = st.fixed_dictionaries({}, optional={
    "asset_id": JSON_VALUES | st.sampled_from(["vm-1", "vm-2", "", " "]),
    "source": JSON_VALUES | st.just("vmware"),
    "unit_type": JSON_VALUES | st.sampled_from(["cpu_hours", "nope"]),
    "value": JSON_VALUES | st.sampled_from(["1.5", "-0", "1e400", "Infinity", 1e308, -1, 10**30]),
    "timestamp": JSON_VALUES | st.sampled_from(["2026-11-01T10:00:00Z", "2026-11-01T10:00:00", "0001-01-01T00:00:00+14:00",
                                                "9999-12-31T23:59:59-14:00", "2026-02-30T00:00:00Z"]),
    "name": JSON_VALUES, "description": JSON_VALUES,
})
BODIES = (JSON_VALUES | st.lists(ITEM_FIELDS | JSON_VALUES, max_size=8)
          | st.fixed_dictionaries({"readings": st.lists(ITEM_FIELDS, max_size=8)}))


def test_arbitrary_json_never_gets_a_server_error(app):
    make_unit_type(app, "cpu_hours")
    key = bearer(make_key(app, "ingest"))
    client = app.test_client()

    @settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
    @given(BODIES)
    def post_anything(body):
        response = client.post("/api/v1/readings", data=json.dumps(body), headers={
            **key, "Content-Type": "application/json"})
        assert response.status_code < 500, response.get_data(as_text=True)
        assert response.is_json
        if response.status_code == 200:
            result = response.json
            items = body if isinstance(body, list) else body["readings"]
            assert result["accepted"] + result["duplicates"] + result["suppressed"] + len(result["rejected"]) == \
                len(items)

    post_anything()


def test_the_api_keeps_to_its_own_openapi_document(app):
    """Schemathesis, in-process on the WSGI app with an admin key: no 5xx, no undocumented status or body."""
    make_unit_type(app, "cpu_hours")
    make_client(app, "Acme")
    headers = bearer(make_key(app, "admin"))
    client = app.test_client()
    client.post("/api/v1/readings", json=[reading("vm-1"), reading("vm-2")], headers=headers)
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 30
    calls: list[tuple[str, GenerationMode]] = []
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            # the same examples on every machine and every run: derandomized, a fixed number, no time budget
            @settings(max_examples=EXAMPLES, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck),
                      database=None)
            @given(operation.as_strategy(generation_mode=mode))
            def check(case):
                case.call_and_validate(headers=headers, checks=CHECKS)
                calls.append((operation.label, mode))

            check()
    assert {label for label, _ in calls} == {operation.label for operation in operations}
    assert len(calls) >= 2 * len(operations) * 3


def test_arbitrary_json_to_every_write_endpoint_never_gets_a_server_error(app):
    make_unit_type(app, "cpu_hours")
    client_id = make_client(app, "Acme")
    key = bearer(make_key(app, "admin"))
    client = app.test_client()
    client.post("/api/v1/readings", json=[reading("vm-1")], headers=key)
    targets = [("POST", f"/api/v1/{name}") for name in ("clients", "unit-types", "buckets", "assets", "suppressions")]
    targets += [("PATCH", f"/api/v1/{name}/1") for name in ("clients", "unit-types", "assets")]
    targets += [("POST", "/api/v1/billing/run")]
    fields = st.fixed_dictionaries({}, optional={
        name: JSON_VALUES | st.sampled_from([client_id, 1, "1", "", "x" * 300, "vm-[", "(", None, [1], [999]])
        for name in ("name", "client_id", "unit_type_id", "source_type", "commit", "base_price", "aggregation",
                     "asset_ids", "pattern", "type", "external_id", "disregarded", "period", "finalize",
                     "filter_pattern")})

    @settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.sampled_from(targets), fields | JSON_VALUES)
    def send(target, body):
        method, url = target
        response = client.open(url, method=method, data=json.dumps(body),
                               headers={**key, "Content-Type": "application/json"})
        assert response.status_code < 500, response.get_data(as_text=True)
        assert response.is_json or response.status_code == 204

    send()
