"""API keys: bearer authentication, creation, revocation."""

from __future__ import annotations

import logging

import pytest


@pytest.mark.parametrize(
    "header",
    [None, "", "Bearer", "Bearer ", "Basic abc", "Bearer wsk_wrong", "bearer wsk_" + "x" * 43],
)
def test_missing_or_wrong_key_is_401(client, api, header):
    headers = {} if header is None else {"Authorization": header}
    r = client.get("/api/v1/programs", headers=headers)
    assert r.status_code == 401
    assert r.mimetype == "application/problem+json"
    assert r.headers["WWW-Authenticate"].startswith("Bearer")


def test_scheme_is_case_insensitive(client, api):
    r = client.get("/api/v1/programs", headers={"Authorization": f"bearer {api.key}"})
    assert r.status_code == 200


def test_key_is_stored_only_as_a_hash(api, session):
    from sqlalchemy import select

    from wallet_service.models import ApiKey

    stored = session.scalars(select(ApiKey)).all()
    assert stored and all(api.key not in (k.key_hash, k.prefix) for k in stored)


def test_create_list_and_revoke_keys(api, client):
    created = api.post("/api-keys", {"name": "till 2"})
    assert created.status_code == 201
    new_key = created.json["api_key"]
    assert new_key.startswith("wsk_") and len(new_key) > 40
    listed = api.get("/api-keys").json["items"]
    assert {k["name"] for k in listed} == {"default", "till 2"}
    assert all("api_key" not in k for k in listed)

    other = {"Authorization": f"Bearer {new_key}"}
    assert client.get("/api/v1/programs", headers=other).status_code == 200
    revoked = api.delete(f"/api-keys/{created.json['id']}")
    assert revoked.status_code == 200 and revoked.json["revoked_at"]
    r = client.get("/api/v1/programs", headers=other)
    assert r.status_code == 401 and "revoked" in r.json["detail"]
    assert api.get("/programs").status_code == 200


def test_cannot_revoke_another_merchants_key(api, other_api):
    theirs = other_api.get("/api-keys").json["items"][0]
    assert api.delete(f"/api-keys/{theirs['id']}").status_code == 404
    assert other_api.get("/programs").status_code == 200


def test_keys_never_reach_the_logs(api, caplog):
    caplog.set_level(logging.DEBUG)
    api.get("/programs")
    api.post("/api-keys", {"name": "x"})
    api.client.get("/api/v1/programs", headers={"Authorization": "Bearer wsk_secret_guess"})
    assert api.key not in caplog.text
    assert "wsk_secret_guess" not in caplog.text
