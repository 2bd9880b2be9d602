"""Every pass links the member's card page on its back (apple-wallet spec §2.5), whether the
customer downloads it or Wallet fetches it from the pass web service."""

from __future__ import annotations

import json

from apple_device import Device
from sqlalchemy import select
from sqlalchemy import update
from test_apple_web_service import card_token
from test_mechanics_stamps import pass_files

from wallet_service.models import LoyaltyCard


def back_fields(pass_json):
    return {f["key"]: f for f in pass_json["storeCard"].get("backFields", [])}


def test_downloaded_pass_links_the_card_page(api):
    m = api.member(api.program()["id"])
    back = back_fields(json.loads(pass_files(api, m)["pass.json"]))
    assert back["card_page"]["value"] == m["card_url"]
    assert back["card_page"]["dataDetectorTypes"] == ["PKDataDetectorTypeLink"]


def test_pass_from_the_web_service_links_the_card_page(app, api, client, session):
    m = api.member(api.program()["id"])
    other = api.member(api.program()["id"], name="Boris")
    phone = Device(client, "lib-1", "aa" * 32)
    for member in (m, other):
        serial = member["serial_number"]
        r = phone.fetch(serial, card_token(session, serial), conditional=False)
        assert r.status_code == 200
        assert back_fields(phone.passes[serial])["card_page"]["value"] == member["card_url"]


def test_cached_pass_follows_the_card_page_link(app, api, session):
    """A signed pass is reused only for the same link: a card whose download token changed
    is signed again rather than handed out with the old page on its back."""
    m = api.member(api.program()["id"])
    passes = app.extensions["wallet"].passes
    before = passes.signed
    first = pass_files(api, m)
    assert pass_files(api, m) == first and passes.signed == before + 1  # cached
    session.execute(update(LoyaltyCard).where(LoyaltyCard.id == select(LoyaltyCard.id).where(
        LoyaltyCard.member_id == m["id"]).scalar_subquery()).values(download_token="t" * 32))
    session.commit()
    moved = {**m, "apple_pass_url": "https://wallet.example.test/passes/" + "t" * 32}
    back = back_fields(json.loads(pass_files(api, moved)["pass.json"]))
    assert back["card_page"]["value"] == "https://wallet.example.test/c/" + "t" * 32
    assert passes.signed == before + 2
