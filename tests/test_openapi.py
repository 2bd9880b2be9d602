"""The OpenAPI document and the browsable docs."""

from __future__ import annotations

import re


def test_openapi_lists_every_api_route(app, client):
    doc = client.get("/api/v1/openapi.json").json
    assert doc["openapi"].startswith("3.")
    documented = {(m.upper(), p) for p, item in doc["paths"].items() for m in item}
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1") or rule.endpoint.endswith(("openapi_json", "docs")):
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule.removeprefix("/api/v1"))
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert (method, path) in documented


def test_openapi_schemas_are_the_validation_models(client):
    doc = client.get("/api/v1/openapi.json").json
    op = doc["paths"]["/programs"]["post"]
    ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    schema = doc["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert set(schema["required"]) == {"name", "kind"}
    assert schema["additionalProperties"] is False
    assert "422" in op["responses"] and "401" in op["responses"]
    tx = doc["paths"]["/members/{member_id}/transactions"]["post"]
    assert any(p["name"] == "Idempotency-Key" and p["in"] == "header" for p in tx["parameters"])
    for name, schema in doc["components"]["schemas"].items():
        for ref in re.findall(r'"\$ref": "([^"]+)"', str(schema).replace("'", '"')):
            assert ref.rsplit("/", 1)[1] in doc["components"]["schemas"], (name, ref)


def test_docs_page_renders_every_operation(client):
    page = client.get("/api/v1/docs")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "/programs/{program_id}/members" in html
    assert "Earn, redeem or adjust points" in html


def test_health(client):
    r = client.get("/healthz")
    assert r.status_code == 200 and r.json["database"] == "ok"
