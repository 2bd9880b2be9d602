"""Members' personal-data rights (152-FZ, GDPR) through the API: erasure leaves no personal
value anywhere in the database while the merchant's totals still add up and the card turns
void on the phone; export; withdrawing the consent to processing; the separate marketing
consent, which campaigns respect."""

# The Google-enabled app's fixtures come from test_google_cards; pytest hands them to the
# tests by name, which ruff takes for unused imports and redefinitions.
# ruff: noqa: F401, F811

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from apple_device import Device
from sqlalchemy import Engine
from sqlalchemy import MetaData
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import text
from test_google_cards import account
from test_google_cards import gapi
from test_google_cards import gapp
from test_google_cards import google
from test_google_cards import keys
from test_google_cards import saved
from test_google_cards import worker

from wallet_service import i18n
from wallet_service.google import object_id
from wallet_service.models import CardChange
from wallet_service.models import DeliveryJob
from wallet_service.models import DeviceLog
from wallet_service.models import LoyaltyCard
from wallet_service.services import outbox

ISSUER = "3388000000022345678"  # test_google_cards' issuer

NAME = "Zinaida Quetzalcoatl-Pryanikova"
PHONE_TYPED = "+7 916 123-45-67"
PHONE_DIGITS = "9161234567"  # in "+79161234567" and in anything built from the number
EMAIL = "zina.erase@example.org"
EXTERNAL_ID = "crm-erase-7781"
ANSWER = "Raspberry cheesecake with thyme"
BIRTHDAY = "1987-03-14"
PERSONAL = (NAME, PHONE_DIGITS, EMAIL, EXTERNAL_ID, ANSWER, BIRTHDAY)
QUESTION = {"key": "dessert", "type": "text", "label": {"ru": "Десерт", "en": "Dessert"}}


def where_stored(engine: Engine, needles: tuple[str, ...]) -> set[tuple[str, str, str]]:
    """(table, column, needle) for every stored value that contains a needle: every table
    of the database as it is (reflected, not the models), every row, every column."""
    meta = MetaData()
    meta.reflect(engine)
    folded = [n.casefold() for n in needles]
    found = set()
    with engine.connect() as conn:
        for table in meta.sorted_tables:
            for row in conn.execute(select(table)):
                for column, value in row._mapping.items():
                    if value is None or isinstance(value, bytes | memoryview):
                        continue
                    as_text = (json.dumps(value, ensure_ascii=False, default=str)
                               if isinstance(value, dict | list) else str(value)).casefold()
                    found.update((table.name, column, needle)
                                 for needle, f in zip(needles, folded, strict=True)
                                 if f in as_text)
    return found


def totals(engine: Engine, merchant_id: int) -> dict[str, Any]:
    """The merchant's figures that an erasure must not change."""
    with engine.connect() as conn:
        cards = conn.execute(text(
            "SELECT count(*), sum(balance), sum(lifetime_points), sum(lifetime_spend_minor), "
            "sum(stamps), sum(visits) FROM loyalty_cards WHERE merchant_id = :m"),
            {"m": merchant_id}).one()
        ledger = conn.execute(text(
            "SELECT type, count(*), sum(points), sum(coalesce(amount_minor, 0)), sum(stamps) "
            "FROM ledger_transactions WHERE merchant_id = :m GROUP BY type ORDER BY type"),
            {"m": merchant_id}).all()
    return {"cards": tuple(cards), "ledger": [tuple(r) for r in ledger]}


def card_token(app: Any, serial: str) -> str:
    with app.extensions["wallet"].sessions() as s:
        return s.scalar(select(LoyaltyCard.authentication_token)
                        .where(LoyaltyCard.serial_number == serial))


def sequence(app: Any) -> None:
    with app.extensions["wallet"].sessions() as s:
        outbox.sequence_changes(s, now=dt.datetime.now(dt.UTC), debounce=dt.timedelta(0))
        s.commit()


def count(app: Any, model: Any, *where: Any) -> int:
    with app.extensions["wallet"].sessions() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))


def enroll_distinctive(api: Any, **program_fields: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    program = api.program(bonuses={"welcome": 10, "actions": {"review": 50}},
                          enrollment={"questions": [QUESTION]}, **program_fields)
    member = api.member(program["id"], name=NAME, phone=PHONE_TYPED, email=EMAIL,
                        birthday=BIRTHDAY, external_id=EXTERNAL_ID, answers={"dessert": ANSWER},
                        consent_text="I agree to the processing of my data.",
                        marketing_consent=True)
    return program, member


# --- erasure ------------------------------------------------------------------------------


def test_erasure_leaves_no_personal_data_anywhere_and_keeps_the_totals(gapi, gapp, google,
                                                                        worker):
    program, member = enroll_distinctive(gapi)
    mid, serial = member["id"], member["serial_number"]
    saved(gapi, member)  # the customer adds the card to Google Wallet
    other = gapi.member(program["id"], name="Boris Keeper", phone="+7 916 000-00-01")
    # Purchases and the free text a till and a CRM put next to them.
    assert gapi.post(f"/members/{mid}/transactions", {"type": "earn", "amount": "500"},
                     headers={"Idempotency-Key": f"till-{PHONE_DIGITS}-1"}).status_code == 201
    assert gapi.post(f"/members/{mid}/transactions", {
        "type": "adjust", "points": 5, "reason": f"Goodwill for {NAME}"}).status_code == 201
    assert gapi.post(f"/members/{mid}/actions",
                     {"action": "review", "reference": EMAIL}).status_code == 201
    assert gapi.post(f"/members/{mid}/transactions", {
        "type": "redeem", "points": 20, "reason": f"Paid by {NAME}"}).status_code == 201
    assert gapi.post(f"/programs/{program['id']}/coupons",
                     {"title": "Free cookie", "segment": {"member_ids": [mid]}}).status_code == 201
    assert gapi.post(f"/programs/{program['id']}/campaigns",
                     {"text": "Double points on Saturday"}).json["reached"] == 1
    assert gapi.post(f"/members/{other['id']}/transactions",
                     {"type": "earn", "amount": "300"}).status_code == 201
    # The card on a phone, and what Wallet logged about it.
    client = gapi.client
    tokens = {serial: card_token(gapp, serial)}
    phone = Device(client, "lib-erase", "ab" * 32)
    assert phone.register(serial, tokens[serial]).status_code == 201
    sequence(gapp)
    phone.sync(tokens)
    client.post("/apple/v1/log", json={"logs": [f"Get pass task for {serial} failed",
                                                "Unrelated message"]})
    engine = gapp.extensions["wallet"].engine
    worker.run_once()

    before = where_stored(engine, PERSONAL)
    # The scan finds what is there: the member row, the ledger's free text and keys, and
    # what Google was last sent.
    assert {(t, n) for t, _, n in before} >= {
        ("members", NAME), ("members", PHONE_DIGITS), ("members", EMAIL),
        ("members", EXTERNAL_ID), ("members", ANSWER), ("members", BIRTHDAY),
        ("ledger_transactions", NAME), ("ledger_transactions", EMAIL),
        ("ledger_transactions", PHONE_DIGITS), ("google_objects", NAME)}
    figures = totals(engine, gapi.merchant_id)
    oid = object_id(ISSUER, serial)
    messages = list(google.objects[oid]["messages"])
    assert [m["body"] for m in messages] == ["Double points on Saturday"]

    r = gapi.post(f"/members/{mid}/erase")
    assert r.status_code == 200, r.json
    erased = r.json
    assert where_stored(engine, PERSONAL) == set()
    assert totals(engine, gapi.merchant_id) == figures
    assert erased["erased_at"] is not None and erased["status"] == "closed"
    assert erased["version"] > member["version"]
    assert (erased["name"], erased["phone"], erased["email"], erased["birthday"],
            erased["external_id"], erased["answers"]) == ("—", None, None, None, None, {})
    # Proof of consent stays; marketing is over.
    assert erased["consent"]["text"] == "I agree to the processing of my data."
    assert erased["marketing_consent"]["given"] is False
    assert erased["marketing_consent"]["text"] == i18n.t("ru", "marketing_consent")
    assert erased["marketing_consent"]["withdrawn_at"] is not None
    # The ledger still explains the balance, without its free text.
    history = gapi.get(f"/members/{mid}/transactions").json["items"]
    assert sum(e["points"] for e in history) == erased["balance"]
    assert all(e["reason"] is None for e in history)
    # The phone is pushed and shows the card void, with no name on it.
    assert count(gapp, DeliveryJob, DeliveryJob.channel == "apns") == 0
    sequence(gapp)
    assert count(gapp, DeliveryJob, DeliveryJob.channel == "apns") == 1
    assert phone.sync(tokens) == [serial]
    assert phone.passes[serial]["voided"] is True
    assert NAME not in json.dumps(phone.passes[serial], ensure_ascii=False)
    # Google shows the dash and an inactive card after the next sync.
    worker.run_once()
    shown = google.objects[oid]
    assert shown["accountName"] == "—" and shown["state"] == "INACTIVE"
    assert shown["messages"] == messages  # no message sent again
    # Wallet's log about this card is gone, the rest stays; the other member is untouched.
    with gapp.extensions["wallet"].sessions() as s:
        assert s.scalars(select(DeviceLog.message)).all() == ["Unrelated message"]
    kept = gapi.get(f"/members/{other['id']}").json
    assert kept["name"] == "Boris Keeper" and kept["status"] == "active"
    assert where_stored(engine, ("Boris Keeper",))


def test_erasing_twice_is_harmless_and_other_merchants_get_404(api, other_api, app):
    _, member = enroll_distinctive(api)
    first = api.post(f"/members/{member['id']}/erase")
    assert first.status_code == 200
    published = count(app, CardChange)
    again = api.post(f"/members/{member['id']}/erase")
    assert again.status_code == 200
    assert again.json["version"] == first.json["version"]
    assert again.json["erased_at"] == first.json["erased_at"]
    assert count(app, CardChange) == published  # no second change to push
    mine = api.member(api.program()["id"])
    for path in (f"/members/{mine['id']}/erase", f"/members/{mine['id']}/consent/withdraw"):
        r = other_api.post(path)
        assert r.status_code == 404 and r.json["errors"][0]["field"] == "member_id"
    assert other_api.get(f"/members/{mine['id']}/export").status_code == 404
    assert api.post("/members/999999/erase").status_code == 404
    assert api.get(f"/members/{mine['id']}").json["erased_at"] is None


def test_an_erased_member_takes_no_transactions_and_frees_the_phone(api):
    program, member = enroll_distinctive(api)
    api.post(f"/members/{member['id']}/erase")
    r = api.post(f"/members/{member['id']}/transactions", {"type": "earn", "points": 5})
    assert r.status_code == 409
    assert api.get("/members", query_string={"phone": PHONE_TYPED}).json["items"] == []
    again = api.member(program["id"], phone=PHONE_TYPED)  # the customer may join again
    assert again["id"] != member["id"] and again["phone"] == "+79161234567"


# --- export -------------------------------------------------------------------------------


def test_export_is_a_download_of_everything_about_the_member(api, other_api, client, app):
    program, member = enroll_distinctive(api)
    mid, serial = member["id"], member["serial_number"]
    api.post(f"/members/{mid}/transactions", {"type": "earn", "amount": "500"})
    api.post(f"/members/{mid}/transactions", {"type": "redeem", "points": 20})
    api.post(f"/programs/{program['id']}/coupons",
             {"title": "Free cookie", "segment": {"member_ids": [mid]}})
    Device(client, "lib-export", "cd" * 32).register(serial, card_token(app, serial))
    other = api.member(program["id"], phone="+7 916 000-00-02")
    api.post(f"/members/{other['id']}/transactions", {"type": "earn", "points": 7})

    r = api.get(f"/members/{mid}/export")
    assert r.status_code == 200
    assert r.headers["Content-Disposition"] == f'attachment; filename="member-{mid}.json"'
    data = r.json
    assert data["member"] == {
        "id": mid, "program_id": program["id"], "name": NAME, "phone": "+79161234567",
        "email": EMAIL, "birthday": BIRTHDAY, "external_id": EXTERNAL_ID,
        "answers": {"dessert": ANSWER}, "source": "api", "created_at": member["created_at"],
        "erased_at": None}
    assert data["consents"]["data_processing"]["text"] == "I agree to the processing of my data."
    assert data["consents"]["data_processing"]["withdrawn_at"] is None
    assert data["consents"]["marketing"]["given"] is True
    history = api.get(f"/members/{mid}/transactions").json["items"]
    assert data["transactions"] == list(reversed(history))  # the whole ledger, oldest first
    assert [e["type"] for e in data["transactions"]] == ["bonus", "earn", "redeem"]
    assert data["card"]["serial_number"] == serial
    assert data["card"]["balance"] == sum(e["points"] for e in data["transactions"])
    assert [c["title"] for c in data["coupons"]] == ["Free cookie"]
    assert data["registrations"] == 1
    assert [(e["wallet"], e["event"]) for e in data["wallet_events"]] == [("apple", "installed")]
    assert {e["member_id"] for e in data["wallet_events"]} == {mid}
    assert other_api.get(f"/members/{mid}/export").status_code == 404
    # After erasure the export shows the anonymous record and the proof of consent.
    api.post(f"/members/{mid}/erase")
    erased = api.get(f"/members/{mid}/export").json
    assert erased["member"]["name"] == "—" and erased["member"]["phone"] is None
    assert erased["member"]["erased_at"] is not None
    assert erased["consents"]["data_processing"]["text"] is not None
    assert len(erased["transactions"]) == 3


# --- consents -----------------------------------------------------------------------------


def test_withdrawing_the_consent_to_processing_erases_the_member(api, app):
    _, member = enroll_distinctive(api)
    r = api.post(f"/members/{member['id']}/consent/withdraw")
    assert r.status_code == 200, r.json
    got = r.json
    assert got["consent"]["withdrawn_at"] is not None
    assert got["erased_at"] is not None and got["status"] == "closed"
    assert got["name"] == "—" and got["phone"] is None and got["answers"] == {}
    assert where_stored(app.extensions["wallet"].engine, PERSONAL) == set()
    again = api.post(f"/members/{member['id']}/consent/withdraw").json
    assert again["consent"]["withdrawn_at"] == got["consent"]["withdrawn_at"]
    assert again["version"] == got["version"]


def test_marketing_consent_on_enrollment_is_separate_and_optional(api):
    program = api.program(languages=["en", "ru"], enrollment={
        "marketing_consent_text": {"en": "Send me offers.", "ru": "Присылайте предложения."}})
    plain = api.member(program["id"])
    assert plain["marketing_consent"] == {"given": False, "text": None, "accepted_at": None,
                                          "withdrawn_at": None}
    default = api.member(program["id"], phone="+7 916 000-00-03", marketing_consent=True)
    assert default["marketing_consent"]["given"] is True
    assert default["marketing_consent"]["text"] == "Send me offers."  # the first language
    assert default["marketing_consent"]["accepted_at"] is not None
    exact = api.member(program["id"], phone="+7 916 000-00-04", marketing_consent=True,
                       marketing_consent_text="Присылайте предложения.")
    assert exact["marketing_consent"]["text"] == "Присылайте предложения."
    r = api.post(f"/programs/{program['id']}/members",
                 {"name": "Ann", "phone": "+7 916 000-00-05",
                  "marketing_consent_text": "Send me offers."})
    assert r.status_code == 422 and r.json["errors"][0]["field"] == "marketing_consent_text"
    assert api.get(f"/programs/{program['id']}/members").json["items"][-1]["id"] == exact["id"]
    r = api.post("/programs", {"name": "X", "kind": "points",
                               "enrollment": {"marketing_consent_text": {"en": ""}}})
    assert r.status_code == 422
    assert r.json["errors"][0]["field"].startswith("enrollment.marketing_consent_text")


def test_marketing_consent_can_be_withdrawn_and_given_again(api, other_api):
    program = api.program()
    member = api.member(program["id"], marketing_consent=True)
    url = f"/members/{member['id']}/marketing-consent"
    withdrawn = api.post(url, {"consent": False})
    assert withdrawn.status_code == 200
    consent = withdrawn.json["marketing_consent"]
    assert consent["given"] is False and consent["withdrawn_at"] is not None
    assert consent["text"] == i18n.t("ru", "marketing_consent")  # kept as proof
    assert api.post(url, {"consent": False}).json["marketing_consent"] == consent
    given = api.post(url, {"consent": True, "text": "Yes, send me news."}).json
    assert given["marketing_consent"]["given"] is True
    assert given["marketing_consent"]["text"] == "Yes, send me news."
    assert (dt.datetime.fromisoformat(given["marketing_consent"]["accepted_at"])
            >= dt.datetime.fromisoformat(consent["withdrawn_at"]))
    same = api.post(url, {"consent": True, "text": "Yes, send me news."}).json
    assert same["marketing_consent"] == given["marketing_consent"]
    for body, field in (({"consent": False, "text": "x"}, "text"), ({}, "consent"),
                        ({"consent": "maybe"}, "consent"), ({"consent": True, "x": 1}, "x")):
        r = api.post(url, body)
        assert r.status_code == 422 and r.json["errors"][0]["field"] == field, (body, r.json)
    assert api.post(url, None).status_code == 400
    assert other_api.post(url, {"consent": False}).status_code == 404
    api.post(f"/members/{member['id']}/erase")
    r = api.post(url, {"consent": True})
    assert r.status_code == 409 and r.json["errors"][0]["field"] == "member_id"


def test_campaigns_reach_only_members_who_consent_to_marketing(api):
    program = api.program()
    yes = api.member(program["id"], phone="+7 916 000-00-11", marketing_consent=True)
    never = api.member(program["id"], phone="+7 916 000-00-12")
    withdrew = api.member(program["id"], phone="+7 916 000-00-13", marketing_consent=True)
    api.post(f"/members/{withdrew['id']}/marketing-consent", {"consent": False})
    r = api.post(f"/programs/{program['id']}/campaigns", {"text": "Autumn menu"})
    assert r.status_code == 201 and r.json["reached"] == 1
    assert api.get(f"/members/{yes['id']}").json["message"] == "Autumn menu"
    for m in (never, withdrew):
        assert api.get(f"/members/{m['id']}").json["message"] is None
    targeted = api.post(f"/programs/{program['id']}/campaigns",
                        {"text": "Just for you", "segment": {"member_ids": [never["id"]]}})
    assert targeted.json["reached"] == 0


def test_the_campaign_route_says_it_reaches_consenting_members_only(client):
    doc = client.get("/api/v1/openapi.json").json
    description = doc["paths"]["/programs/{program_id}/campaigns"]["post"]["description"]
    assert "marketing" in description and "consent" in description
