"""Inviting a friend, as customers do it: the card page shows the member's code and a share
link, the link fills the code in on the sign-up page, and the friend's first purchase pays
both referral bonuses."""

from __future__ import annotations

import html as html_lib
import re

import pytest
from test_enroll import _fresh_limits  # noqa: F401  (autouse: fresh rate limits per test)
from test_enroll import csrf_of
from test_enroll import error_of
from test_enroll import field_block
from test_enroll import members
from test_enroll import path_of
from test_enroll import text_of

from wallet_service import i18n


def share_link(client, member, lang="en"):
    page = client.get(path_of(member["card_url"]) + f"?lang={lang}").get_data(as_text=True)
    match = re.search(r'id="referral-link" href="([^"]+)"', page)
    assert match, "the card page shows no share link"
    return html_lib.unescape(match.group(1)), page


def sign_up_from(client, link, **fields):
    """Open the shared link and send the form as it came, with the friend's details."""
    page = client.get(path_of(link)).get_data(as_text=True)
    code = re.search(r'name="referral_code"[^>]*value="([^"]*)"|value="([^"]*)"[^>]*'
                     r'name="referral_code"', field_block(page, "referral_code"))
    form = {"csrf_token": csrf_of(page), "lang": re.search(r'<html lang="(\w+)"', page)[1],
            "referral_code": html_lib.unescape(code[1] or code[2] or ""),
            "name": "Boris", "phone": "+7 912 000-00-05", "consent": "yes", **fields}
    return client.post(path_of(link).split("?")[0], data=form), page


def test_friend_signs_up_from_the_share_link_and_both_get_their_bonus(app, api, client):
    program = api.program(bonuses={"referrer": 100, "referred": 50})
    anna = api.member(program["id"])
    link, card_page = share_link(client, anna)
    assert link == f"{program['join_url']}?ref={anna['referral_code']}"
    text = text_of(card_page)
    assert anna["referral_code"] in text and i18n.t("en", "referral_heading") in text
    assert i18n.t("en", "referral_bonus_both") in text

    r, form_page = sign_up_from(client, link)
    assert f'value="{anna["referral_code"]}"' in field_block(form_page, "referral_code")
    assert r.status_code == 303, r.get_data(as_text=True)
    boris = next(m for m in members(app) if m.name == "Boris")
    got = api.get(f"/members/{boris.id}").json
    assert got["balance"] == 0
    # The friend's first purchase pays both sides.
    r = api.post(f"/members/{boris.id}/transactions", {"type": "earn", "amount": "100"})
    assert r.status_code == 201
    assert api.get(f"/members/{boris.id}").json["balance"] == 10 + 50
    assert api.get(f"/members/{anna['id']}").json["balance"] == 100
    rules = [i["details"]["rule"] for i in
             api.get(f"/members/{anna['id']}/transactions").json["items"]]
    assert rules == ["referral"]


@pytest.mark.parametrize("code", ["NOPE2345", "AB", "x" * 16])
def test_unknown_code_is_an_error_on_its_field(app, api, client, code):
    program = api.program(bonuses={"referrer": 100, "referred": 50})
    api.member(program["id"])
    r, _ = sign_up_from(client, program["join_url"], referral_code=code)
    assert r.status_code == 422
    page = r.get_data(as_text=True)
    lang = re.search(r'<html lang="(\w+)"', page)[1]
    assert error_of(page, "referral_code") == i18n.t(lang, "error_referral")
    assert 'value="Boris"' in field_block(page, "name")  # the form keeps what was typed
    assert [m.name for m in members(app)] == ["Anna"]


def test_code_is_optional_and_case_does_not_matter(app, api, client):
    program = api.program(bonuses={"referred": 50})
    anna = api.member(program["id"])
    r, _ = sign_up_from(client, program["join_url"], referral_code="")
    assert r.status_code == 303
    r, _ = sign_up_from(client, program["join_url"], phone="+7 912 000-00-06",
                        referral_code=anna["referral_code"].lower())
    assert r.status_code == 303
    carl = next(m for m in members(app) if m.phone == "+79120000006")
    api.post(f"/members/{carl.id}/transactions", {"type": "earn", "amount": "100"})
    assert api.get(f"/members/{carl.id}").json["balance"] == 10 + 50


def test_card_page_speaks_both_languages_and_a_closed_card_invites_nobody(api, client):
    program = api.program(bonuses={"referrer": 100})
    anna = api.member(program["id"])
    _, page = share_link(client, anna, lang="ru")
    assert i18n.t("ru", "referral_heading") in text_of(page)
    assert i18n.t("ru", "referral_bonus_you") in text_of(page)
    assert i18n.t("ru", "referral_bonus_both") not in text_of(page)
    api.post(f"/members/{anna['id']}/close")
    page = client.get(path_of(anna["card_url"])).get_data(as_text=True)
    assert "referral-link" not in page and anna["referral_code"] not in page


def test_join_page_ignores_an_overlong_ref(api, client):
    program = api.program()
    page = client.get(path_of(program["join_url"]) + "?ref=" + "A" * 100).get_data(as_text=True)
    assert 'value="' + "A" * 16 + '"' in field_block(page, "referral_code")
    assert "A" * 17 not in page
