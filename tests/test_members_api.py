"""Enrolling and finding members."""

from __future__ import annotations

import pytest


def test_enroll_member_returns_card_and_links(api):
    program = api.program(tiers=[{"name": "Bronze", "threshold": 0}])
    r = api.post(f"/programs/{program['id']}/members",
                 {"name": "Anna Petrova", "phone": "8 (912) 345-67-89",
                  "email": "anna@example.com", "birthday": "1990-05-17",
                  "external_id": "crm-42", "consent_text": "I agree to the program terms."})
    assert r.status_code == 201
    m = r.json
    assert isinstance(m["id"], int)
    assert m["phone"] == "+79123456789"
    assert m["balance"] == 0 and m["tier"] == "Bronze"
    assert m["serial_number"].isdigit() and len(m["serial_number"]) == 13
    assert m["card_number"] == m["serial_number"]
    assert m["consent"]["text"] == "I agree to the program terms."
    assert m["consent"]["accepted_at"]
    for link in ("apple_pass_url", "google_save_url", "card_url"):
        assert link in m
    assert m["google_save_url"] is None  # Google is not configured in tests
    assert api.get(f"/members/{m['id']}").json == m


def test_card_numbers_pass_the_luhn_check(api):
    from wallet_service.services.members import luhn_digit

    program = api.program()
    for i in range(5):
        m = api.member(program["id"], phone=f"+7912345670{i}")
        assert luhn_digit(m["card_number"][:-1]) == m["card_number"][-1]


def test_card_token_is_long_and_unguessable(api, session):
    from wallet_service.models import LoyaltyCard

    program = api.program()
    a = api.member(program["id"], phone="+79120000001")
    b = api.member(program["id"], phone="+79120000002")
    cards = {c.member_id: c for c in session.query(LoyaltyCard).all()}
    ta, tb = cards[a["id"]].authentication_token, cards[b["id"]].authentication_token
    assert len(ta) >= 16 and ta != tb
    assert ta not in str(a)  # never in API responses


def test_duplicate_phone_or_external_id_is_409(api):
    program = api.program()
    api.member(program["id"], phone="+79123456789", external_id="x1")
    r = api.post(f"/programs/{program['id']}/members", {"name": "B", "phone": "89123456789"})
    assert r.status_code == 409 and r.json["errors"][0]["field"] == "phone"
    r = api.post(f"/programs/{program['id']}/members",
                 {"name": "B", "phone": "+79120000000", "external_id": "x1"})
    assert r.status_code == 409 and r.json["errors"][0]["field"] == "external_id"


def test_same_phone_in_two_programs_is_fine(api):
    p1, p2 = api.program(name="A"), api.program(name="B")
    api.member(p1["id"])
    api.member(p2["id"])


@pytest.mark.parametrize(
    ("body", "field", "status"),
    [
        ({"phone": "+79123456789"}, "name", 422),
        ({"name": "A"}, "phone", 422),
        ({"name": "A", "phone": "hello"}, "phone", 400),
        ({"name": "A", "phone": "+7 123"}, "phone", 400),
        ({"name": "A", "phone": "+79123456789", "email": "nope"}, "email", 422),
        ({"name": "A", "phone": "+79123456789", "birthday": "2999-01-01"}, "birthday", 422),
        ({"name": "A", "phone": "+79123456789", "birthday": "17.05.1990"}, "birthday", 422),
        ({"name": "A", "phone": "+79123456789", "balance": 100}, "balance", 422),
    ],
)
def test_bad_member_is_refused_naming_the_field(api, body, field, status):
    program = api.program()
    r = api.post(f"/programs/{program['id']}/members", body)
    assert r.status_code == status, r.json
    assert field in [e["field"] for e in r.json["errors"]]
    assert api.get(f"/programs/{program['id']}/members").json["items"] == []


def test_find_member_by_barcode_and_phone(api):
    program = api.program()
    anna = api.member(program["id"], name="Anna", phone="+79123456789")
    api.member(program["id"], name="Boris", phone="+79120000000")
    r = api.get("/members", query_string={"barcode": anna["card_number"]})
    assert [m["id"] for m in r.json["items"]] == [anna["id"]]
    spaced = " ".join([anna["card_number"][:4], anna["card_number"][4:]])
    assert api.get("/members", query_string={"barcode": spaced}).json["items"][0]["id"] == anna["id"]
    r = api.get("/members", query_string={"phone": "8 912 345 67 89"})
    assert [m["id"] for m in r.json["items"]] == [anna["id"]]
    assert api.get("/members", query_string={"barcode": "0000000000000"}).json["items"] == []


def test_list_members_paginates(api):
    program = api.program()
    ids = [api.member(program["id"], phone=f"+7912000000{i}")["id"] for i in range(5)]
    page1 = api.get(f"/programs/{program['id']}/members", query_string={"limit": 2}).json
    page2 = api.get(f"/programs/{program['id']}/members",
                    query_string={"limit": 2, "cursor": page1["next_cursor"]}).json
    page3 = api.get(f"/programs/{program['id']}/members",
                    query_string={"limit": 2, "cursor": page2["next_cursor"]}).json
    seen = [m["id"] for p in (page1, page2, page3) for m in p["items"]]
    assert seen == ids
    assert page3["next_cursor"] is None
    r = api.get(f"/programs/{program['id']}/members", query_string={"limit": 0})
    assert r.status_code == 422 and r.json["errors"][0]["field"] == "limit"


def test_members_are_isolated_between_merchants(api, other_api):
    theirs = other_api.member(other_api.program()["id"])
    assert api.get(f"/members/{theirs['id']}").status_code == 404
    assert api.get("/members", query_string={"barcode": theirs["card_number"]}).json["items"] == []
    assert api.get("/members", query_string={"phone": theirs["phone"]}).json["items"] == []
    assert api.post(f"/members/{theirs['id']}/transactions",
                    {"type": "earn", "points": 5}).status_code == 404
    assert api.get(f"/members/{theirs['id']}/transactions").status_code == 404
    assert other_api.get(f"/members/{theirs['id']}").json["balance"] == 0


QUESTIONS = [
    {"key": "drink", "type": "choice", "label": {"ru": "Любимый напиток", "en": "Favourite drink"},
     "options": ["espresso", "latte"], "required": True},
    {"key": "first_visit", "type": "date", "label": {"en": "First visit"}},
    {"key": "news", "type": "yesno", "label": {"en": "Send me news"}},
    {"key": "note", "type": "text", "label": {"en": "Anything else?"}},
]


def test_program_questionnaire_and_member_answers(api):
    program = api.program(enrollment={"questions": QUESTIONS})
    assert program["enrollment"]["questions"][0]["key"] == "drink"
    assert program["enrollment"]["consent_text"]["ru"]
    assert program["join_url"].startswith("https://wallet.example.test/join/")
    join_id = program["join_url"].rsplit("/", 1)[1]
    assert join_id != str(program["id"]) and len(join_id) >= 16
    m = api.member(program["id"], answers={"drink": "latte", "first_visit": "2026-01-05",
                                          "news": True, "note": "  oat milk  "})
    assert m["answers"] == {"drink": "latte", "first_visit": "2026-01-05", "news": True,
                            "note": "oat milk"}
    assert m["source"] == "api"


@pytest.mark.parametrize(("answers", "field"), [
    ({}, "answers.drink"),
    ({"drink": "tea"}, "answers.drink"),
    ({"drink": "latte", "first_visit": "05.01.2026"}, "answers.first_visit"),
    ({"drink": "latte", "news": "yes"}, "answers.news"),
    ({"drink": "latte", "shoe_size": "42"}, "answers.shoe_size"),
])
def test_bad_answers_are_refused(api, answers, field):
    program = api.program(enrollment={"questions": QUESTIONS})
    r = api.post(f"/programs/{program['id']}/members",
                 {"name": "A", "phone": "+79123456789", "answers": answers})
    assert r.status_code == 422, r.json
    assert r.json["errors"][0]["field"] == field


@pytest.mark.parametrize(("question", "field"), [
    ({"key": "x", "type": "choice", "label": {"en": "X"}, "options": ["one"]}, "options"),
    ({"key": "x", "type": "text", "label": {"en": "X"}, "options": ["a", "b"]}, "options"),
    ({"key": "X!", "type": "text", "label": {"en": "X"}}, "key"),
    ({"key": "x", "type": "text", "label": {}}, "label"),
])
def test_bad_questions_are_refused(api, question, field):
    r = api.post("/programs", {"name": "P", "kind": "points",
                               "enrollment": {"questions": [question]}})
    assert r.status_code == 422
    assert any(field in e["field"] for e in r.json["errors"]), r.json
