"""One permission model: every merchant API operation needs one permission, API keys hold
a scope (a bundle of permissions), and console roles are bundles of the same permissions.
The daily job runs no day to come through the API."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pytest
from api_support import Api
from click.testing import CliRunner
from sqlalchemy import text

from wallet_service.errors import PermissionDenied
from wallet_service.local_time import local_date
from wallet_service.permissions import DEFAULT_SCOPE
from wallet_service.permissions import DESCRIPTIONS
from wallet_service.permissions import EVERYTHING
from wallet_service.permissions import ROLES
from wallet_service.permissions import SCOPES
from wallet_service.permissions import Permission
from wallet_service.permissions import Role
from wallet_service.permissions import Scope
from wallet_service.permissions import permissions_table
from wallet_service.permissions import scope_permissions
from wallet_service.web.api import bp
from wallet_service.web.routing import ApiBlueprint

README = Path(__file__).resolve().parent.parent / "README.md"


def key_of(api: Api, scope: str) -> Api:
    """Another key of ``api``'s merchant, of ``scope``, created by ``api`` (an admin key)."""
    r = api.post("/api-keys", {"name": scope, "scope": scope})
    assert r.status_code == 201, r.json
    assert r.json["scope"] == scope
    return Api(api.client, r.json["api_key"], api.merchant_id)


def refused(r, permission: str) -> bool:
    return (r.status_code == 403 and r.mimetype == "application/problem+json"
            and r.json["permission"] == permission and permission in r.json["detail"])


@pytest.fixture
def shop(api):
    """A program with a member, a reward, a coupon, a location, and the admin key's id."""
    program = api.program(points_validity_days=30)
    member = api.member(program["id"])
    reward = api.post(f"/programs/{program['id']}/rewards",
                      {"name": "Coffee", "cost_points": 10}).json
    coupon = api.post(f"/programs/{program['id']}/coupons", {"title": "Croissant"}).json
    location = api.post("/locations", {"name": "Main street", "address": "Tverskaya 1",
                                       "latitude": 55.75, "longitude": 37.61}).json
    [admin_key] = api.get("/api-keys").json["items"]
    webhook = api.post("/webhooks", {"url": "https://crm.example.com/hooks",
                                     "events": ["member.created"]}).json
    return {"program_id": program["id"], "member_id": member["id"], "reward_id": reward["id"],
            "webhook_id": webhook["id"], "delivery_id": 1,
            "coupon_id": coupon["id"], "location_id": location["id"],
            "key_id": admin_key["id"], "kind": "logo", "campaign_id": 1}


def call(who: Api, op, ids: dict):
    """``op`` through the HTTP API with ``ids`` in its path and an empty body: the permission
    is checked before the body, so any body shows whether the key may call it."""
    path = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: str(ids[m.group(1)]), op.rule)
    body = {} if op.method in ("POST", "PUT", "PATCH") else None
    return who.client.open("/api/v1" + path, method=op.method, json=body,
                           headers={"Authorization": f"Bearer {who.key}"})


# --- the model ------------------------------------------------------------------------


def test_scopes_and_roles_are_the_bundles_they_promise():
    assert SCOPES[Scope.ADMIN] == EVERYTHING == frozenset(Permission)
    assert SCOPES[Scope.READ] == {Permission.READ}
    assert SCOPES[Scope.TILL] == {Permission.READ, Permission.MEMBERS_WRITE,
                                  Permission.TRANSACTIONS_WRITE}
    assert SCOPES[Scope.READ] < SCOPES[Scope.TILL] < SCOPES[Scope.ADMIN]
    # Console roles: the owner is the admin, staff the till, the manager all but keys.
    assert ROLES[Role.OWNER] == SCOPES[Scope.ADMIN]
    assert ROLES[Role.STAFF] == SCOPES[Scope.TILL]
    assert ROLES[Role.STAFF] < ROLES[Role.MANAGER] < ROLES[Role.OWNER]
    assert ROLES[Role.OWNER] - ROLES[Role.MANAGER] == {Permission.KEYS, Permission.WEBHOOKS}
    # What a till must not do, whatever else changes.
    assert not SCOPES[Scope.TILL] & {Permission.SETTINGS, Permission.KEYS,
                                     Permission.AUTOMATIONS, Permission.MEMBERS_ERASE,
                                     Permission.EXPORT}
    assert set(DESCRIPTIONS) == set(Permission)
    assert DEFAULT_SCOPE == Scope.TILL


def test_an_unknown_stored_scope_holds_nothing():
    assert scope_permissions("root") == frozenset()
    assert scope_permissions("till") == SCOPES[Scope.TILL]


def test_every_operation_needs_a_permission_and_every_permission_guards_one(client):
    doc = client.get("/api/v1/openapi.json").json
    documented = [(path, item) for path, items in doc["paths"].items()
                  for item in items.values()]
    assert len(documented) == len(bp.operations)
    for op in bp.operations:
        assert isinstance(op.permission, Permission), op.endpoint
    for path, item in documented:
        permission = item["x-permission"]
        assert permission in set(Permission), path
        assert "403" in item["responses"], path
        assert f"Needs the `{permission}` permission" in item["description"], path
    assert {item["x-permission"] for _, item in documented} == set(Permission)
    assert "`till` keys hold `read`, `members:write`" in doc["info"]["description"]
    create = doc["paths"]["/api-keys"]["post"]["requestBody"]["content"]["application/json"]
    schema = doc["components"]["schemas"][create["schema"]["$ref"].rsplit("/", 1)[1]]
    assert schema["properties"]["scope"]["default"] == "till"


def test_the_permissions_of_key_routes_and_of_reads():
    by_name = {op.endpoint: op.permission for op in bp.operations}
    assert {by_name[n] for n in ("create_api_key", "list_api_keys", "revoke_api_key")} == {
        Permission.KEYS}
    assert by_name["run_daily"] == Permission.AUTOMATIONS
    assert by_name["export_member"] == Permission.EXPORT
    assert by_name["export_members"] == by_name["export_transactions"] == Permission.EXPORT
    assert by_name["import_members"] == Permission.MEMBERS_IMPORT
    assert by_name["erase_member"] == by_name["close_card"] == Permission.MEMBERS_ERASE
    assert by_name["enroll_member"] == Permission.MEMBERS_WRITE
    assert by_name["redeem_reward"] == by_name["redeem_coupon"] == Permission.TRANSACTIONS_WRITE
    assert by_name["create_campaign"] == by_name["update_program"] == Permission.SETTINGS
    for op in bp.operations:
        if op.method == "GET" and op.endpoint not in ("export_member", "list_api_keys",
                                                      "export_members",
                                                      "export_transactions") \
                and not op.rule.startswith("/webhooks"):
            assert op.permission == Permission.READ, op.endpoint
        if op.method != "GET":
            assert op.permission != Permission.READ, op.endpoint


def test_an_operation_without_a_permission_fails_when_declared():
    declare = ApiBlueprint("declared", __name__).operation
    with pytest.raises(TypeError, match="permission"):
        declare("/x", "GET", summary="x")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="needs a permission"):
        declare("/x", "GET", summary="x", permission=None)
    with pytest.raises(ValueError):
        declare("/x", "GET", summary="x", permission="everything")


def test_readme_lists_the_permissions():
    readme = README.read_text()
    block = readme.split("<!-- permissions:start -->\n", 1)[1].split(
        "\n<!-- permissions:end -->", 1)[0]
    assert block == permissions_table(), (
        "README permissions table is stale; paste the output of python -c 'from "
        "wallet_service.permissions import permissions_table; print(permissions_table())'")
    security = readme.split("\n## Security\n", 1)[1].split("\n## ", 1)[0]
    assert "### Permissions" in security and "<!-- permissions:start -->" in security


# --- keys of each scope through the API -------------------------------------------------


def test_a_till_key_works_the_till_and_nothing_else(api, shop):
    till = key_of(api, "till")
    program_id, member_id = shop["program_id"], shop["member_id"]
    before = api.get(f"/programs/{program_id}").json

    r = till.patch(f"/programs/{program_id}", {"name": "Renamed"})
    assert refused(r, "settings") and r.json["scope"] == "till"
    r = till.post(f"/programs/{program_id}/campaigns", {"text": "Sale!"})
    assert refused(r, "settings")
    assert refused(till.post("/api-keys", {"name": "mine"}), "keys")
    assert refused(till.delete(f"/api-keys/{shop['key_id']}"), "keys")
    assert refused(till.post("/automations/daily", {}), "automations")
    assert refused(till.post(f"/members/{member_id}/erase"), "members:erase")
    assert refused(till.get(f"/members/{member_id}/export"), "export")
    # Nothing happened: the program, its campaigns, the keys.
    assert api.get(f"/programs/{program_id}").json == before
    assert api.get(f"/programs/{program_id}/campaigns").json["items"] == []
    assert [k["revoked_at"] for k in api.get("/api-keys").json["items"]] == [None, None]
    assert api.get("/programs").status_code == 200

    # The till's own work.
    earned = till.post(f"/members/{member_id}/transactions", {"type": "earn", "points": 40})
    assert earned.status_code == 201, earned.json
    assert till.post(f"/members/{member_id}/rewards/{shop['reward_id']}/redeem").status_code == 201
    enrolled = till.post(f"/programs/{program_id}/members",
                         {"name": "Boris", "phone": "+7 912 345-67-02"})
    assert enrolled.status_code == 201
    found = till.get("/members", query_string={"barcode": enrolled.json["card_number"]})
    assert found.status_code == 200 and [m["id"] for m in found.json["items"]] == [
        enrolled.json["id"]]
    assert till.get(f"/members/{member_id}").json["balance"] == 30


def test_the_till_scope_matches_every_operation(api, shop):
    till = key_of(api, "till")
    for op in bp.operations:
        r = call(till, op, shop)
        if op.permission in SCOPES[Scope.TILL]:
            assert r.status_code != 403, (op.method, op.rule, r.json)
        else:
            assert refused(r, op.permission), (op.method, op.rule, r.status_code)


def test_a_read_key_is_refused_every_write(api, shop):
    reader = key_of(api, "read")
    writes = [op for op in bp.operations if op.method != "GET"]
    assert len(writes) > 30
    for op in writes:
        r = call(reader, op, shop)
        assert refused(r, op.permission), (op.method, op.rule, r.status_code)
    for op in bp.operations:
        if op.method == "GET" and op.permission == Permission.READ:
            assert call(reader, op, shop).status_code not in (401, 403), op.rule
    assert reader.get(f"/members/{shop['member_id']}").status_code == 200
    member = api.get(f"/members/{shop['member_id']}").json
    assert member["balance"] == 0 and member["status"] == "active" and not member["erased_at"]
    assert [k["revoked_at"] for k in api.get("/api-keys").json["items"]] == [None, None]


def test_an_admin_key_can_do_everything(api, shop):
    missing = dict.fromkeys(shop, 999_999) | {"kind": "logo"}
    for op in bp.operations:
        r = call(api, op, missing)
        assert r.status_code not in (401, 403), (op.method, op.rule, r.json)
    program_id, member_id = shop["program_id"], shop["member_id"]
    assert api.patch(f"/programs/{program_id}", {"name": "Renamed"}).status_code == 200
    assert api.post(f"/programs/{program_id}/campaigns", {"text": "Sale!"}).status_code == 201
    assert api.post("/automations/daily", {}).status_code == 200
    assert api.get(f"/members/{member_id}/export").status_code == 200
    assert api.post(f"/members/{member_id}/erase").status_code == 200
    minted = key_of(api, "admin")
    assert minted.delete(f"/api-keys/{shop['key_id']}").status_code == 200
    assert api.get("/programs").status_code == 401


def test_a_new_key_is_a_till_key_unless_asked_and_the_list_shows_scopes(api):
    r = api.post("/api-keys", {"name": "counter 2"})
    assert r.status_code == 201 and r.json["scope"] == "till"
    till = Api(api.client, r.json["api_key"], api.merchant_id)
    assert refused(till.post("/programs", {"name": "Mine", "kind": "points"}), "settings")
    key_of(api, "read")
    listed = {k["name"]: k["scope"] for k in api.get("/api-keys").json["items"]}
    assert listed == {"default": "admin", "counter 2": "till", "read": "read"}
    r = api.post("/api-keys", {"name": "x", "scope": "root"})
    assert r.status_code == 422 and r.json["errors"][0]["field"] == "scope"


def test_a_till_key_cannot_mint_or_revoke_an_admin_key(api):
    till = key_of(api, "till")
    r = till.post("/api-keys", {"name": "escalate", "scope": "admin"})
    assert refused(r, "keys")
    assert refused(till.post("/api-keys", {"name": "another till", "scope": "till"}), "keys")
    assert [k["scope"] for k in api.get("/api-keys").json["items"]] == ["admin", "till"]


def test_a_key_creates_and_revokes_only_keys_its_scope_covers(app, api, session):
    """A holder of ``keys`` without everything (a console manager given keys, say) can issue
    till and read keys, never an admin key, and cannot revoke one."""
    from wallet_service.services import merchants

    holder = ROLES[Role.MANAGER] - {Permission.SETTINGS} | {Permission.KEYS}
    key, _raw = merchants.create_api_key(session, api.merchant_id, "counter", scope=Scope.TILL,
                                         creator=holder)
    assert key.scope == "till"
    with pytest.raises(PermissionDenied) as refusal:
        merchants.create_api_key(session, api.merchant_id, "boss", scope=Scope.ADMIN,
                                 creator=holder)
    assert refusal.value.field == "scope" and "settings" in refusal.value.message
    [admin_key] = [k for k in merchants.list_api_keys(session, api.merchant_id)
                   if k.scope == "admin"]
    with pytest.raises(PermissionDenied):
        merchants.revoke_api_key(session, api.merchant_id, admin_key.id, revoker=holder)
    assert merchants.revoke_api_key(session, api.merchant_id, key.id,
                                    revoker=holder).revoked_at is not None
    session.rollback()


def test_the_first_key_of_a_merchant_is_admin_and_the_command_line_takes_a_scope(
        tmp_path, monkeypatch):
    from wallet_service import create_app
    from wallet_service.cli import main

    monkeypatch.setenv("WALLET_INSTANCE_PATH", str(tmp_path))
    monkeypatch.delenv("WALLET_DATABASE_URL", raising=False)
    runner = CliRunner()
    assert runner.invoke(main, ["db", "upgrade"]).exit_code == 0
    first = json.loads(runner.invoke(main, ["create-merchant", "Bakery", "--json"]).output)
    assert first["scope"] == "admin"
    merchant = ["--merchant-id", str(first["merchant_id"])]
    default = json.loads(runner.invoke(main, ["create-api-key", *merchant, "--json"]).output)
    reader = json.loads(runner.invoke(
        main, ["create-api-key", *merchant, "--scope", "read", "--json"]).output)
    assert (default["scope"], reader["scope"]) == ("till", "read")
    r = runner.invoke(main, ["create-api-key", *merchant, "--scope", "root"])
    assert r.exit_code != 0 and "root" in r.output

    app = create_app({"INSTANCE_PATH": str(tmp_path)})
    client = app.test_client()
    for key, status in ((first, 201), (default, 403), (reader, 403)):
        r = client.post("/api/v1/programs", json={"name": "Club", "kind": "points"},
                        headers={"Authorization": f"Bearer {key['api_key']}"})
        assert r.status_code == status, (key["scope"], r.json)
    app.extensions["wallet"].engine.dispose()


def test_keys_from_before_scopes_become_admin_keys(tmp_path):
    from alembic import command

    from wallet_service.db import make_engine
    from wallet_service.migrate import alembic_config
    from wallet_service.migrate import upgrade

    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    upgrade(engine, "0011")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO merchants (id, name, time_zone, created_at) "
                          "VALUES (1, 'Old', 'UTC', CURRENT_TIMESTAMP)"))
        conn.execute(text("INSERT INTO api_keys (merchant_id, name, prefix, key_hash, "
                          "created_at) VALUES (1, 'old', 'wsk_old', 'h', CURRENT_TIMESTAMP)"))
    upgrade(engine, "0012")
    with engine.begin() as conn:
        assert conn.execute(text("SELECT scope FROM api_keys")).scalar_one() == "admin"
        # The release before, still serving, creates keys without a scope: admin, as before.
        conn.execute(text("INSERT INTO api_keys (merchant_id, name, prefix, key_hash, "
                          "created_at) VALUES (1, 'older', 'wsk_o2', 'h2', CURRENT_TIMESTAMP)"))
        assert conn.execute(text("SELECT scope FROM api_keys WHERE name = 'older'")
                            ).scalar_one() == "admin"
    cfg = alembic_config(str(engine.url))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0011")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM api_keys")).scalar_one() == 2
    engine.dispose()


# --- no time travel through the API -----------------------------------------------------


def test_the_daily_run_for_a_day_to_come_is_refused_and_changes_nothing(api):
    """The finding: `{"day": "2099-01-01"}` expired a member's points for good."""
    program = api.program(points_validity_days=30)
    member = api.member(program["id"])
    api.post(f"/members/{member['id']}/transactions", {"type": "earn", "points": 100})
    before = api.get(f"/members/{member['id']}").json
    history = api.get(f"/members/{member['id']}/transactions").json["items"]
    today = dt.date.fromisoformat(api.post("/automations/daily", {}).json["day"])

    for day in ("2099-01-01", (today + dt.timedelta(days=1)).isoformat()):
        r = api.post("/automations/daily", {"day": day})
        assert r.status_code == 422, r.json
        assert r.json["errors"][0]["field"] == "day" and day in r.json["detail"]
    assert api.get(f"/members/{member['id']}").json == before
    assert api.get(f"/members/{member['id']}/transactions").json["items"] == history
    assert before["balance"] == 100


def test_the_daily_run_defaults_to_local_today_and_reruns_a_recent_day(app, api):
    from wallet_service.services.automations import RERUN_DAYS

    zone = api.get("/merchant").json["time_zone"]
    moment = dt.datetime.now(dt.UTC)
    r = api.post("/automations/daily", {})
    assert r.status_code == 200
    today = dt.date.fromisoformat(r.json["day"])
    assert today in {local_date(moment, zone), local_date(dt.datetime.now(dt.UTC), zone)}
    oldest = today - dt.timedelta(days=RERUN_DAYS)
    for day in (today, today - dt.timedelta(days=1), oldest):
        r = api.post("/automations/daily", {"day": day.isoformat()})
        assert r.status_code == 200 and r.json["day"] == day.isoformat()
    too_old = (oldest - dt.timedelta(days=1)).isoformat()
    r = api.post("/automations/daily", {"day": too_old})
    assert r.status_code == 422 and r.json["errors"][0]["field"] == "day"
    from wallet_service.schemas import DailyRun

    assert f"{RERUN_DAYS} days" in DailyRun.model_fields["day"].description


def test_the_scenario_moves_time_with_an_injected_clock(app):
    from wallet_service.demo import play_scenario

    state = app.extensions["wallet"]
    moment = dt.datetime(2031, 5, 31, 22, 30, tzinfo=dt.UTC)
    lines = list(play_scenario(state, "coffee-shop", clock=lambda: moment))
    start = local_date(moment, state.settings.default_time_zone)
    assert lines[0].endswith(f"the week starts on {start.isoformat()}")
    assert any("tier Silver" in line for line in lines)
