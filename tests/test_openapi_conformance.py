"""The OpenAPI document and the service agree: every status an operation answers is declared
for it, and what a schema forbids the service refuses (what the fuzzing gate,
tests/fuzz/run_fuzz.py, checks against a live server, pinned here case by case)."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from PIL import Image


@pytest.fixture()
def doc(client) -> dict[str, Any]:
    return client.get("/api/v1/openapi.json").json  # type: ignore[no-any-return]


def operations(doc: dict[str, Any]):
    for path, item in doc["paths"].items():
        for method, op in item.items():
            yield method.upper(), path, op


def resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def allows_null(doc: dict[str, Any], schema: dict[str, Any]) -> bool:
    schema = resolve(doc, schema)
    if schema.get("type") == "null":
        return True
    return any(allows_null(doc, branch) for branch in schema.get("anyOf", []))


def object_branch(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """The object schema among ``schema``'s branches."""
    schema = resolve(doc, schema)
    if schema.get("type") == "object":
        return schema
    return next(object_branch(doc, b) for b in schema["anyOf"] if resolve(doc, b).get("type")
                in ("object", None) and b.get("type") != "null")


def declared(doc: dict[str, Any], method: str, path: str) -> set[int]:
    return {int(code) for code in doc["paths"][path][method.lower()]["responses"]}


def assert_declared(doc: dict[str, Any], method: str, path: str, response: Any) -> None:
    assert response.status_code in declared(doc, method, path), (
        method, path, response.status_code, response.json)


def png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (120, 120), "#3c2a21").save(buf, "PNG")
    return buf.getvalue()


# --- statuses -------------------------------------------------------------------------------


def test_statuses_every_kind_of_operation_can_answer_are_declared(doc):
    for method, path, op in operations(doc):
        codes = {int(code) for code in op["responses"]}
        if op.get("security") != []:
            assert {401, 403} <= codes, (method, path)
        if "{" in path:
            assert 404 in codes, (method, path)
        if "requestBody" in op:
            assert {400, 413, 415, 422} <= codes, (method, path)
        if any(p["in"] == "query" for p in op["parameters"]):
            assert 422 in codes, (method, path)
        if any(p["in"] == "header" for p in op["parameters"]):
            assert {400, 422} <= codes, (method, path)  # malformed; used for another request


def test_a_malformed_idempotency_key_is_a_declared_400(api, doc):
    program = api.program(bonuses={"welcome": 100})
    member = api.member(program["id"])
    reward = api.post(f"/programs/{program['id']}/rewards",
                      {"name": "Coffee", "cost_points": 10}).json
    path = "/members/{member_id}/rewards/{reward_id}/redeem"
    r = api.post(f"/members/{member['id']}/rewards/{reward['id']}/redeem",
                 headers={"Idempotency-Key": "k" * 256})
    assert r.status_code == 400 and r.json["errors"][0]["field"] == "Idempotency-Key"
    assert_declared(doc, "POST", path, r)
    header = next(p for p in doc["paths"][path]["post"]["parameters"]
                  if p["name"] == "Idempotency-Key")
    assert header["schema"]["maxLength"] == 255 and header["schema"]["minLength"] == 1


def test_a_body_of_another_media_type_is_415_and_declared(api, doc):
    r = api.post("/programs", data='{"name": "A", "kind": "points"}',
                 headers={"Content-Type": "text/plain"})
    assert r.status_code == 415 and r.json["errors"][0]["field"] == "body"
    assert "application/json" in r.json["detail"]
    assert_declared(doc, "POST", "/programs", r)
    assert api.get("/programs").json["items"] == []
    # No body at all is malformed (400), not of another type.
    r = api.post("/programs")
    assert r.status_code == 400 and r.json["errors"][0]["field"] == "body"


def test_an_image_upload_of_another_media_type_is_415(api, doc):
    program = api.program()
    path = "/programs/{program_id}/images/{kind}"
    r = api.client.put(f"/api/v1/programs/{program['id']}/images/logo", data=png(),
                       headers={"Authorization": f"Bearer {api.key}",
                                "Content-Type": "application/json"})
    assert r.status_code == 415 and r.json["errors"][0]["field"] == "body"
    assert_declared(doc, "PUT", path, r)
    r = api.client.put(f"/api/v1/programs/{program['id']}/images/logo", data=png(),
                       headers={"Authorization": f"Bearer {api.key}",
                                "Content-Type": "image/png"})
    assert r.status_code == 200, r.json
    content = doc["paths"][path]["put"]["requestBody"]["content"]
    assert set(content) == {"image/png", "image/jpeg", "multipart/form-data"}
    assert content["multipart/form-data"]["schema"]["required"] == ["file"]
    kind = next(p for p in doc["paths"][path]["put"]["parameters"] if p["name"] == "kind")
    assert kind["schema"]["enum"] == ["icon", "logo", "strip"]


def test_non_json_answers_document_their_media_types(api, doc):
    program = api.program()
    for suffix, media in (("qr.svg", "image/svg+xml"), ("qr.png", "image/png"),
                          ("poster", "text/html")):
        r = api.get(f"/programs/{program['id']}/{suffix}")
        assert r.status_code == 200 and r.mimetype == media
        ok = doc["paths"]["/programs/{program_id}/" + suffix]["get"]["responses"]["200"]
        assert set(ok["content"]) == {media}


def test_path_ids_are_documented_as_64_bit_ids(doc):
    param = next(p for p in doc["paths"]["/members/{member_id}"]["get"]["parameters"]
                 if p["name"] == "member_id")
    assert param["schema"] == {"type": "integer", "minimum": 1, "maximum": 2**63 - 1}


# --- what a schema forbids is refused -------------------------------------------------------


def test_a_day_is_a_date_string_not_a_number(api, doc):
    zone = ZoneInfo(api.get("/merchant").json["time_zone"])
    today = dt.datetime.now(zone).date()
    assert api.post("/automations/daily", {"day": today.isoformat()}).status_code == 200
    for day in (0, int(today.strftime("%Y%m%d")), f"{today.isoformat()}T00:00:00", True):
        r = api.post("/automations/daily", {"day": day})
        assert r.status_code == 422 and r.json["errors"][0]["field"] == "day", (day, r.json)
    schema = resolve(doc, doc["paths"]["/automations/daily"]["post"]["requestBody"]
                     ["content"]["application/json"]["schema"])
    assert {"type": "string", "format": "date"} in schema["properties"]["day"]["anyOf"]


@pytest.mark.parametrize("path, body, field", [
    ("/programs/{program}/coupons", {"title": "A", "evergreen": 0}, "evergreen"),
    ("/programs/{program}/coupons", {"title": "A", "valid_until": 0}, "valid_until"),
    ("/programs/{program}/members", {"name": "A", "phone": "+79123456780",
                                     "marketing_consent": 1}, "marketing_consent"),
    ("/programs/{program}/members", {"name": "A", "phone": "+79123456780", "birthday": 0},
     "birthday"),
    ("/members/{member}/stamps", {"count": "2"}, "count"),
    ("/members/{member}/stamps", {"count": True}, "count"),
    ("/members/{member}/transactions", {"type": "earn", "points": "100"}, "points"),
    ("/locations", {"name": "A", "address": "B", "latitude": "55.7", "longitude": 37.6},
     "latitude"),
    ("/programs", {"name": "A", "kind": "points", "tiers": [
        {"name": "Gold", "threshold": 0, "multiplier": True}]}, "tiers.0.multiplier"),
])
def test_json_values_of_another_type_are_refused_not_coerced(api, path, body, field):
    program = api.program(kind="stamps")
    member = api.member(program["id"])
    url = path.format(program=program["id"], member=member["id"])
    r = api.post(url, body)
    assert r.status_code == 422, (url, body, r.json)
    assert r.json["errors"][0]["field"] == field


def test_the_same_values_of_the_right_type_are_taken(api):
    program = api.program(kind="stamps")
    member = api.member(program["id"], birthday="1990-05-17", marketing_consent=True)
    assert member["birthday"] == "1990-05-17" and member["marketing_consent"]["given"]
    assert api.post(f"/members/{member['id']}/stamps", {"count": 1}).status_code == 201
    coupon = api.post(f"/programs/{program['id']}/coupons", {
        "title": "A", "evergreen": False, "valid_until": "2030-01-01T00:00:00Z"})
    assert coupon.status_code == 201 and coupon.json["valid_until"].startswith("2030-01-01")
    tiers = [{"name": "Gold", "threshold": 0, "multiplier": "1.5", "discount_percent": 5}]
    assert api.post("/programs", {"name": "B", "kind": "points", "tiers": tiers}
                    ).json["tiers"][0]["multiplier"] == "1.5"


def test_wallet_event_times_are_rfc_3339_not_numbers(api):
    for value in ("0.5", "1700000000"):
        r = api.get(f"/wallet-events?until={value}")
        assert r.status_code == 422 and r.json["errors"][0]["field"] == "until", value
    assert api.get("/wallet-events?until=2030-01-01T00:00:00Z").status_code == 200


# --- JSON Merge Patch bodies ----------------------------------------------------------------


def test_merge_patch_schemas_allow_null_where_the_service_clears(api, doc):
    schemas = doc["components"]["schemas"]
    design = object_branch(doc, schemas["ProgramUpdate"]["properties"]["design"])
    # Nested objects are patches too: null removes a key (back to its default) ...
    assert allows_null(doc, design["properties"]["contact"])
    assert allows_null(doc, design["properties"]["barcode_format"])
    assert "required" not in design
    program = api.program(kind="cashback", design={"barcode_format": "pdf417",
                                                   "contact": {"phone": "+7 495 000-00-00"}},
                          cashback={"categories": {"coffee": 10}})
    r = api.patch(f"/programs/{program['id']}",
                  {"design": {"contact": None, "barcode_format": None}})
    assert r.status_code == 200, r.json
    assert r.json["design"]["barcode_format"] == "qr"
    assert r.json["design"]["contact"]["phone"] is None
    # ... a map's entries too ...
    cashback = object_branch(doc, schemas["ProgramUpdate"]["properties"]["cashback"])
    assert allows_null(doc, object_branch(doc, cashback["properties"]["categories"])
                       ["additionalProperties"])
    r = api.patch(f"/programs/{program['id']}", {"cashback": {"categories": {"coffee": None}}})
    assert r.status_code == 200 and r.json["cashback"]["categories"] == {}
    # ... but not what a program must have, nor what a member must have.
    assert not allows_null(doc, schemas["ProgramUpdate"]["properties"]["name"])
    assert api.patch(f"/programs/{program['id']}", {"name": None}).status_code == 422
    for required in ("name", "phone"):
        assert not allows_null(doc, schemas["MemberUpdate"]["properties"][required])
    member = api.member(program["id"])
    r = api.patch(f"/members/{member['id']}", {"name": None})
    assert r.status_code == 422 and r.json["errors"][0]["field"] == "name"


def test_an_erased_member_cannot_be_edited_back(api, doc):
    program = api.program()
    member = api.member(program["id"], email="anna@example.com")
    assert api.post(f"/members/{member['id']}/erase").status_code == 200
    for patch in ({"email": None}, {"name": "Anna", "phone": "+7 912 345-67-89"}):
        r = api.patch(f"/members/{member['id']}", patch)
        assert r.status_code == 409 and r.json["errors"][0]["field"] == "member_id", r.json
        assert_declared(doc, "PATCH", "/members/{member_id}", r)
    after = api.get(f"/members/{member['id']}").json
    assert after["phone"] is None and after["erased_at"]


def test_text_with_a_nul_character_is_refused_naming_the_field(api, doc):
    """PostgreSQL cannot store U+0000 in text: such a location name was a 500 there (and
    stored on SQLite); every text of a body or a query is refused before it gets that far."""
    r = api.post("/locations", {"name": "Store\x00", "address": "Tverskaya 1",
                                "latitude": 55.75, "longitude": 37.61})
    assert r.status_code == 422 and r.json["errors"][0]["field"] == "name", r.json
    assert_declared(doc, "POST", "/locations", r)
    assert api.get("/locations").json["items"] == []
    program = api.program()
    r = api.patch(f"/programs/{program['id']}", {"design": {"contact": {"phone": "1\x002"}}})
    assert r.status_code == 422, r.json
    assert r.json["errors"][0]["field"] == "design.contact.phone"
    member = api.member(program["id"])
    r = api.post(f"/members/{member['id']}/transactions", {
        "type": "earn", "lines": [{"amount": "10", "sku": "\x00"}]})
    assert r.status_code == 422 and r.json["errors"][0]["field"] == "lines.0.sku", r.json
    r = api.get("/members?barcode=%00")
    assert r.status_code == 422 and r.json["errors"][0]["field"] == "barcode", r.json
    assert_declared(doc, "GET", "/members", r)
