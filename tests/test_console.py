"""The merchant console through the Flask test client, as a person uses it: signing in and
out, roles, one merchant never seeing another's data, CSRF, rate limits and the lock, one-time
links, members (search, adjust, edit, close, erase), keys, users, audit log, health, words,
the command line and the demo."""

from __future__ import annotations

import datetime as dt
import re
import socket
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from console_support import PASSWORD
from console_support import Console
from console_support import make_user
from sqlalchemy import select
from sqlalchemy import update

from wallet_service.cli import main
from wallet_service.models import AuditEntry
from wallet_service.models import ConsoleToken
from wallet_service.models import ConsoleUser
from wallet_service.ratelimit import RateLimiter
from wallet_service.services import accounts
from wallet_service.web.console import words

ROOT = Path(__file__).resolve().parents[1]


def text(response: Any) -> str:
    return str(response.get_data(as_text=True))


@pytest.fixture
def shop(api: Any) -> dict[str, Any]:
    program = api.program()
    anna = api.member(program["id"], name="Anna Petrova", phone="+7 912 345-67-89")
    boris = api.member(program["id"], name="Борис", phone="+7 912 000-11-22")
    return {"program": program, "anna": anna, "boris": boris}


def audit_actions(app: Any, merchant_id: int) -> list[str]:
    with app.extensions["wallet"].sessions() as s:
        return list(s.scalars(select(AuditEntry.action).where(
            AuditEntry.merchant_id == merchant_id).order_by(AuditEntry.id)))


def balance(api: Any, member_id: int) -> int:
    return int(api.get(f"/members/{member_id}").json["balance"])


# --- signing in -------------------------------------------------------------------------


def test_signed_out_pages_send_to_the_sign_in_and_back(app, client, api):
    r = client.get("/console/members?q=anna")
    assert r.status_code == 303
    assert r.headers["Location"].startswith("/console/sign-in?next=")
    _, email = make_user(app, api.merchant_id, "manager")
    c = Console(client, api.merchant_id)
    r = c.post("/console/sign-in", {"email": email.upper(), "password": PASSWORD,
                                    "next": "/console/members?q=anna"})
    assert r.status_code == 303 and r.headers["Location"] == "/console/members?q=anna"
    assert client.get("/console/members").status_code == 200
    # An outside address is never a target.
    c.post("/console/sign-out")
    r = c.post("/console/sign-in", {"email": email, "password": PASSWORD,
                                    "next": "https://evil.test/x"})
    assert r.headers["Location"] == "/console/"


def test_htmx_requests_signed_out_get_a_redirect_header(client):
    r = client.get("/console/members", headers={"HX-Request": "true"})
    assert r.status_code == 204 and r.headers["HX-Redirect"].startswith("/console/sign-in")


def test_session_cookie_is_http_only_lax_and_secure_behind_https(app, client, api):
    _, email = make_user(app, api.merchant_id)
    r = Console(client, api.merchant_id).sign_in(email)
    cookie = next(c for c in r.headers.getlist("Set-Cookie") if c.startswith("session="))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" in cookie


def test_wrong_password_is_refused_and_logged(app, client, api):
    _, email = make_user(app, api.merchant_id)
    c = Console(client, api.merchant_id)
    r = c.sign_in(email, "wrong password!")
    assert r.status_code == 401 and 'id="sign-in-error"' in text(r)
    assert c.get("/console/").status_code == 303
    r = c.sign_in("nobody@example.test", "whatever12345")
    assert r.status_code == 401
    assert audit_actions(app, api.merchant_id)[-1] == "user.sign_in_failed"


def test_repeated_failures_lock_the_user_even_for_the_right_password(app, client, api):
    user_id, email = make_user(app, api.merchant_id)
    c = Console(client, api.merchant_id)
    for _ in range(accounts.MAX_FAILED_SIGN_INS):
        r = c.sign_in(email, "wrong password!")
    assert "locked" in text(r)
    r = c.sign_in(email)
    assert r.status_code == 401 and "locked" in text(r)
    assert "user.lock" in audit_actions(app, api.merchant_id)
    # After the lock ends the right password works again.
    with app.extensions["wallet"].sessions() as s:
        s.execute(update(ConsoleUser).where(ConsoleUser.id == user_id).values(
            locked_until=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)))
        s.commit()
    assert c.sign_in(email).status_code == 303


def test_sign_in_is_rate_limited_per_client(app, client, api):
    state = app.extensions["wallet"]
    saved = state.limiters.sign_in
    state.limiters.sign_in = RateLimiter(3)
    try:
        _, email = make_user(app, api.merchant_id)
        c = Console(client, api.merchant_id)
        codes = [c.sign_in(email, "wrong password!").status_code for _ in range(4)]
        assert codes == [401, 401, 401, 429]
        r = c.sign_in(email)
        assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
    finally:
        state.limiters.sign_in = saved


def test_sign_out_everywhere_ends_every_session(app, api, console):
    other = Console(app.test_client(), api.merchant_id)
    other.sign_in(console.email)
    assert other.get("/console/").status_code == 200
    r = console.post("/console/account/sign-out-everywhere")
    assert r.status_code == 303
    assert console.get("/console/").status_code == 303
    assert other.get("/console/").status_code == 303
    assert "user.sign_out_everywhere" in audit_actions(app, api.merchant_id)


def test_password_change_keeps_this_session_and_ends_the_others(app, api, console):
    other = Console(app.test_client(), api.merchant_id)
    other.sign_in(console.email)
    r = console.post("/console/account/password", {"current": "wrong one!!", "new": "x" * 12})
    assert r.status_code == 422
    r = console.post("/console/account/password", {"current": PASSWORD, "new": "short"})
    assert r.status_code == 422
    r = console.post("/console/account/password",
                     {"current": PASSWORD, "new": "a brand new passphrase"})
    assert r.status_code == 200 and "Password changed" in text(r)
    assert console.get("/console/").status_code == 200
    assert other.get("/console/").status_code == 303
    fresh = Console(app.test_client(), api.merchant_id)
    assert fresh.sign_in(console.email).status_code == 401
    assert fresh.sign_in(console.email, "a brand new passphrase").status_code == 303


def test_passwords_are_stored_as_argon2id_hashes(app, console):
    with app.extensions["wallet"].sessions() as s:
        stored = s.scalar(select(ConsoleUser.password_hash).where(
            ConsoleUser.id == console.user_id))
    assert stored.startswith("$argon2id$") and PASSWORD not in stored


# --- CSRF ---------------------------------------------------------------------------------


def test_forms_without_the_csrf_token_are_refused(app, api, console, shop):
    anna = shop["anna"]
    r = console.post(f"/console/members/{anna['id']}/adjust",
                     {"points": "50", "reason": "gift"}, csrf=False)
    assert r.status_code == 400
    assert balance(api, anna["id"]) == 0
    r = console.post(f"/console/members/{anna['id']}/adjust",
                     {"points": "50", "reason": "gift", "csrf_token": "forged"}, csrf=False)
    assert r.status_code == 400
    assert console.post("/console/settings/keys", {"name": "x", "scope": "admin"},
                        csrf=False).status_code == 400
    fresh = Console(app.test_client(), api.merchant_id)
    assert fresh.post("/console/sign-in", {"email": console.email, "password": PASSWORD},
                      csrf=False).status_code == 400
    # The header htmx sends is as good as the field.
    r = console.client.post(f"/console/members/{anna['id']}/adjust",
                            data={"points": "5", "reason": "htmx"},
                            headers={"X-CSRF-Token": console.token()})
    assert r.status_code == 303 and balance(api, anna["id"]) == 5


# --- roles --------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/console/settings", "/console/settings/keys",
                                  "/console/settings/audit", "/console/settings/users",
                                  "/console/settings/health"])
def test_staff_is_refused_settings_keys_and_the_audit_log(console_as, path):
    staff = console_as("staff")
    r = staff.get(path)
    assert r.status_code == 403
    assert "Not allowed" in text(r) and "<nav" in text(r)


def test_staff_navigation_hides_what_the_role_cannot_use(console_as):
    page = text(console_as("staff").get("/console/"))
    assert "/console/members" in page and "/console/settings" not in page
    owner_page = text(console_as("owner").get("/console/"))
    assert "/console/settings" in owner_page


def test_staff_can_look_members_up_but_not_close_or_erase(console_as, shop, api):
    staff = console_as("staff")
    anna = shop["anna"]
    assert staff.get(f"/console/members/{anna['id']}").status_code == 200
    assert staff.post(f"/console/members/{anna['id']}/close").status_code == 403
    assert staff.post(f"/console/members/{anna['id']}/erase",
                      {"confirm": "yes"}).status_code == 403
    assert api.get(f"/members/{anna['id']}").json["status"] == "active"


def test_manager_can_adjust_but_not_manage_keys_users_or_read_the_audit_log(
        app, console_as, shop, api):
    manager = console_as("manager")
    anna = shop["anna"]
    r = manager.post(f"/console/members/{anna['id']}/adjust",
                     {"points": "50", "reason": "birthday gift"})
    assert r.status_code == 303
    assert balance(api, anna["id"]) == 50
    assert manager.get("/console/settings").status_code == 200
    assert manager.get("/console/settings/health").status_code == 200
    assert manager.get("/console/settings/keys").status_code == 403
    assert manager.post("/console/settings/keys", {"name": "x", "scope": "read"}).status_code == 403
    assert manager.get("/console/settings/audit").status_code == 403
    assert manager.get("/console/settings/users").status_code == 403
    settings_page = text(manager.get("/console/settings"))
    assert "/console/settings/keys" not in settings_page
    assert "/console/settings/health" in settings_page


def test_an_owner_sees_nothing_of_another_merchant(app, api, other_api, console, shop):
    theirs = other_api.program()
    their_member = other_api.member(theirs["id"], name="Anna Secret", phone="+7 999 111-22-33")
    their_key = other_api.get("/api-keys").json["items"][0]["id"]
    # Search finds only this merchant's members, whatever is typed.
    for q in ("Anna", "999", "+7 999 111-22-33", "Secret", ""):
        found = text(console.get(f"/console/members?q={q}",
                                 headers={"HX-Request": "true", "HX-Target": "results"}))
        assert "Anna Secret" not in found and "+79991112233" not in found, q
    # Guessing ids: every page and action answers 404 and changes nothing.
    mid = their_member["id"]
    assert console.get(f"/console/members/{mid}").status_code == 404
    for action, data in (("adjust", {"points": "50", "reason": "x"}),
                         ("edit", {"name": "Hacked"}), ("close", {}),
                         ("erase", {"confirm": "yes"})):
        assert console.post(f"/console/members/{mid}/{action}", data).status_code == 404, action
    after = other_api.get(f"/members/{mid}").json
    assert after["balance"] == 0 and after["name"] == "Anna Secret"
    assert after["status"] == "active"
    assert console.post(f"/console/settings/keys/{their_key}/revoke").status_code == 404
    assert other_api.get("/api-keys").status_code == 200
    # Their users and audit entries do not show either.
    make_user(app, other_api.merchant_id, "owner", email="boss@bakery.test")
    assert "boss@bakery.test" not in text(console.get("/console/settings/users"))
    with app.extensions["wallet"].sessions() as s:
        their_user = s.scalar(select(ConsoleUser.id).where(
            ConsoleUser.email == "boss@bakery.test"))
    for action in ("reset", "disable"):
        assert console.post(f"/console/settings/users/{their_user}/{action}"
                            ).status_code == 404
    assert console.post(f"/console/settings/users/{their_user}/role",
                        {"role": "staff"}).status_code == 404
    assert "boss@bakery.test" not in text(console.get("/console/settings/audit"))


# --- invitations and resets -------------------------------------------------------------


def _link(page: str) -> str:
    match = re.search(r'id="user-link">https://wallet\.example\.test(/console/welcome/[^<]+)<',
                      page)
    assert match, page
    return match.group(1)


def test_an_invite_link_works_once(app, api, console):
    r = console.post("/console/settings/users", {"email": "Barista@Zerno.test", "role": "staff"})
    assert r.status_code == 201
    page = text(r)
    assert "<svg" in page  # the QR code to hand over
    link = _link(page)
    invited = Console(app.test_client(), api.merchant_id)
    assert invited.get(link).status_code == 200
    r = invited.post(link, {"password": "my own password", "repeat": "my own password"})
    assert r.status_code == 303
    assert invited.get("/console/members").status_code == 200
    assert invited.get("/console/settings").status_code == 403  # staff
    # The link is spent.
    again = Console(app.test_client(), api.merchant_id)
    assert again.get(link).status_code == 404
    assert again.post(link, {"password": "another password",
                             "repeat": "another password"}).status_code == 404
    assert again.sign_in("barista@zerno.test", "my own password").status_code == 303
    actions = audit_actions(app, api.merchant_id)
    assert "user.invite" in actions and "user.invite_accepted" in actions


def test_an_invite_link_expires(app, api, console):
    link = _link(text(console.post("/console/settings/users",
                                   {"email": "late@zerno.test", "role": "manager"})))
    with app.extensions["wallet"].sessions() as s:
        s.execute(update(ConsoleToken).values(
            expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)))
        s.commit()
    invited = Console(app.test_client(), api.merchant_id)
    assert invited.get(link).status_code == 404
    assert invited.post(link, {"password": "my own password",
                               "repeat": "my own password"}).status_code == 404


def test_a_reset_link_replaces_the_password_and_ends_sessions(app, api, console):
    user_id, email = make_user(app, api.merchant_id, "manager")
    manager = Console(app.test_client(), api.merchant_id)
    manager.sign_in(email)
    r = console.post(f"/console/settings/users/{user_id}/reset")
    link = _link(text(r))
    assert manager.get("/console/").status_code == 200  # the old password still works
    fresh = Console(app.test_client(), api.merchant_id)
    r = fresh.post(link, {"password": "reset password 1", "repeat": "reset password 2"})
    assert r.status_code == 422
    r = fresh.post(link, {"password": "reset password 1", "repeat": "reset password 1"})
    assert r.status_code == 303
    assert manager.get("/console/").status_code == 303
    assert Console(app.test_client(), api.merchant_id).sign_in(email).status_code == 401


def test_roles_change_and_users_are_disabled_but_an_owner_remains(app, api, console):
    user_id, email = make_user(app, api.merchant_id, "staff")
    staff = Console(app.test_client(), api.merchant_id)
    staff.sign_in(email)
    assert console.post(f"/console/settings/users/{user_id}/role",
                        {"role": "manager"}).status_code == 303
    # New permissions at once: the session was tied to the old role.
    assert staff.get("/console/").status_code == 303
    staff.sign_in(email)
    assert staff.get("/console/settings").status_code == 200
    assert console.post(f"/console/settings/users/{user_id}/disable").status_code == 303
    assert staff.get("/console/").status_code == 303
    assert staff.sign_in(email).status_code == 401
    # The last owner can neither be demoted nor disabled.
    with app.extensions["wallet"].sessions() as s:
        with pytest.raises(Exception, match="owner"):
            accounts.change_role(s, api.merchant_id, console.user_id, "staff",
                                 actor=accounts.audit.SYSTEM)


# --- members ------------------------------------------------------------------------------


def test_search_as_you_type_by_name_phone_and_card_number(console, shop, api):
    anna, boris = shop["anna"], shop["boris"]
    page = text(console.get("/console/members"))
    assert 'hx-get="/console/members"' in page and "Anna Petrova" in page
    partial = {"HX-Request": "true", "HX-Target": "results"}
    for q, found, missing in (("anna", "Anna Petrova", "Борис"), ("БОРИС", "Борис", "Anna"),
                              ("борис", "Борис", "Anna"), ("345-67", "Anna", "Борис"),
                              ("8 912 000", "Борис", "Anna"),
                              (anna["card_number"] if "card_number" in anna else
                               anna["serial_number"], "Anna", "Борис")):
        r = console.get(f"/console/members?q={q}", headers=partial)
        body = text(r)
        assert "<html" not in body
        assert found in body and missing not in body, q
    assert "Nobody found" in text(console.get("/console/members?q=zzzz", headers=partial))
    assert boris["id"]


def test_filters_by_balance_and_last_visit(console, shop, api):
    anna = shop["anna"]
    api.post(f"/members/{anna['id']}/transactions", {"type": "earn", "points": 120})
    body = text(console.get("/console/members?balance_min=100"))
    assert "Anna" in body and "Борис" not in body
    body = text(console.get("/console/members?visited=never"))
    assert "Борис" in body
    body = text(console.get("/console/members?balance_max=-5x"))  # ignored, not a 500
    assert "Anna" in body


def test_the_member_page_shows_the_card_history_and_link(app, console, shop, api):
    anna = shop["anna"]
    api.post(f"/members/{anna['id']}/transactions",
             {"type": "adjust", "points": 7, "reason": "welcome back"})
    page = text(console.get(f"/console/members/{anna['id']}"))
    assert 'id="balance">7<' in page  # the card face as the card page renders it
    assert "welcome back" in page
    card_page = text(console.client.get(re.search(r'id="card-link" href="https://wallet'
                                                  r'\.example\.test([^"]+)"', page).group(1)))
    assert 'id="balance">7<' in card_page
    assert 'class="qr"' in page  # the card link as a QR code to show the customer


def test_adjust_needs_a_reason_and_posts_once(app, console, shop, api):
    anna = shop["anna"]
    url = f"/console/members/{anna['id']}/adjust"
    r = console.post(url, {"points": "50", "reason": "  "})
    assert r.status_code == 422 and "Give a reason" in text(r)
    assert console.post(url, {"points": "abc", "reason": "x"}).status_code == 422
    assert console.post(url, {"points": "0", "reason": "x"}).status_code == 422
    form = {"points": "+50", "reason": "lost receipt", "idempotency_key": "console-abc123"}
    assert console.post(url, form).status_code == 303
    assert console.post(url, form).status_code == 303  # a double click
    assert balance(api, anna["id"]) == 50
    r = console.post(url, {"points": "-80", "reason": "too much"})
    assert r.status_code == 409
    assert balance(api, anna["id"]) == 50
    history = api.get(f"/members/{anna['id']}/transactions").json["items"]
    assert [(e["type"], e["points"], e["reason"]) for e in history] == [
        ("adjust", 50, "lost receipt")]
    assert audit_actions(app, api.merchant_id).count("member.adjust") == 1


def test_editing_contact_data_is_checked_and_audited_masked(app, console, shop, api):
    anna, boris = shop["anna"], shop["boris"]
    url = f"/console/members/{anna['id']}/edit"
    r = console.post(url, {"name": "Anna Petrova", "phone": "+7 912 000-11-22"})
    assert r.status_code == 409 and "Another member has this phone" in text(r)
    r = console.post(url, {"name": "Anna Petrova", "phone": "not a phone"})
    assert r.status_code == 422
    r = console.post(url, {"name": "Anna Petrova", "phone": "8 912 345-67-00",
                           "email": "anna@example.test", "birthday": ""})
    assert r.status_code == 303
    member = api.get(f"/members/{anna['id']}").json
    assert member["phone"] == "+79123456700" and member["email"] == "anna@example.test"
    with app.extensions["wallet"].sessions() as s:
        entry = s.scalars(select(AuditEntry).where(AuditEntry.action == "member.edit")).one()
    assert entry.changes["phone"] == ["+7912*****89", "+7912*****00"]
    assert entry.changes["email"] == [None, "a***@example.test"]
    assert boris["id"]


def test_close_and_erase(app, console, shop, api):
    anna = shop["anna"]
    assert console.post(f"/console/members/{anna['id']}/erase").status_code == 422
    assert api.get(f"/members/{anna['id']}").json["name"] == "Anna Petrova"
    assert console.post(f"/console/members/{anna['id']}/close").status_code == 303
    assert api.get(f"/members/{anna['id']}").json["status"] == "closed"
    r = console.post(f"/console/members/{anna['id']}/erase", {"confirm": "yes"})
    assert r.status_code == 303
    assert api.get(f"/members/{anna['id']}").json["erased_at"]
    assert "Anna" not in text(console.get("/console/members?q=anna"))
    actions = audit_actions(app, api.merchant_id)
    assert "member.close" in actions and "member.erase" in actions


# --- keys, audit log, overview, health ----------------------------------------------------


def test_keys_are_created_once_shown_and_revoked(app, console, api):
    r = console.post("/console/settings/keys", {"name": "Till 2", "scope": "till"})
    assert r.status_code == 201
    secret = re.search(r'id="key-secret">([^<]+)<', text(r)).group(1)
    headers = {"Authorization": f"Bearer {secret}"}
    assert console.client.get("/api/v1/programs", headers=headers).status_code == 200
    assert console.client.get("/api/v1/api-keys", headers=headers).status_code == 403  # till
    page = text(console.get("/console/settings/keys"))
    assert "Till 2" in page and secret not in page
    key_id = next(k["id"] for k in api.get("/api-keys").json["items"] if k["name"] == "Till 2")
    assert console.post(f"/console/settings/keys/{key_id}/revoke").status_code == 303
    assert console.client.get("/api/v1/programs", headers=headers).status_code == 401
    assert console.post("/console/settings/keys", {"name": "x", "scope": "root"}
                        ).status_code == 422
    actions = audit_actions(app, api.merchant_id)
    assert "key.create" in actions and "key.revoke" in actions


def test_the_audit_log_filters_by_action_and_actor(app, console, console_as, shop):
    manager = console_as("manager")
    manager.post(f"/console/members/{shop['anna']['id']}/adjust",
                 {"points": "3", "reason": "by the manager"})
    console.post(f"/console/members/{shop['anna']['id']}/adjust",
                 {"points": "4", "reason": "by the owner"})
    page = text(console.get("/console/settings/audit?action=member.adjust"))
    assert page.count('data-action="member.adjust"') == 2
    assert 'data-action="user.sign_in"' not in page
    page = text(console.get(f"/console/settings/audit?action=member.adjust&actor={manager.email}"))
    assert "by the manager" in page and "by the owner" not in page


def test_overview_counts_today_and_the_last_30_days(console, shop, api):
    anna = shop["anna"]
    api.post(f"/members/{anna['id']}/transactions", {"type": "earn", "points": 40})
    api.post(f"/members/{anna['id']}/transactions", {"type": "redeem", "points": 15})
    page = text(console.get("/console/"))
    for key in ("today", "last_30_days"):
        assert f'id="{key}-members">2<' in page
        assert f'id="{key}-new-members">2<' in page
        assert f'id="{key}-purchases">1<' in page
        assert f'id="{key}-earned">40<' in page
        assert f'id="{key}-spent">15<' in page


def test_overview_alerts_on_failed_deliveries_of_this_merchant_only(app, console, shop,
                                                                    other_api):
    from wallet_service.models import DeliveryJob
    from wallet_service.models import LoyaltyCard

    theirs = other_api.member(other_api.program()["id"])
    assert "All is well" in text(console.get("/console/"))
    with app.extensions["wallet"].sessions() as s:
        their_card = s.scalar(select(LoyaltyCard.id).where(LoyaltyCard.member_id == theirs["id"]))
        s.add(DeliveryJob(channel="google", target_id=their_card, status="failed"))
        s.commit()
    assert "All is well" in text(console.get("/console/"))
    with app.extensions["wallet"].sessions() as s:
        my_card = s.scalar(select(LoyaltyCard.id).where(
            LoyaltyCard.member_id == shop["anna"]["id"]))
        s.add(DeliveryJob(channel="google", target_id=my_card, status="failed"))
        s.commit()
    page = text(console.get("/console/"))
    assert 'id="alert-push-failed"' in page and "could not be delivered: 1" in page
    health = text(console.get("/console/settings/health"))
    assert 'id="failed">1<' in health


def test_health_shows_the_certificate_checks_and_queue(console):
    page = text(console.get("/console/settings/health"))
    assert 'id="checks"' in page and 'id="queued">' in page


def test_health_shows_device_logs_of_this_merchant_or_of_no_card(app, console, shop,
                                                                  other_api):
    from wallet_service.models import DeviceLog
    from wallet_service.models import LoyaltyCard

    theirs = other_api.member(other_api.program()["id"])
    with app.extensions["wallet"].sessions() as s:
        serial = {m: s.scalar(select(LoyaltyCard.serial_number).where(
            LoyaltyCard.member_id == m)) for m in (shop["anna"]["id"], theirs["id"])}
        s.add_all([
            DeviceLog(message=f"mine: could not fetch {serial[shop['anna']['id']]}"),
            DeviceLog(message=f"theirs: could not fetch {serial[theirs['id']]}"),
            DeviceLog(message="general: web service URL unreachable")])
        s.commit()
    page = text(console.get("/console/settings/health"))
    assert "mine: could not fetch" in page and "general:" in page
    assert "theirs:" not in page


# --- words, language, static files ------------------------------------------------------


def test_every_console_word_has_both_languages():
    for key, texts in words.all_words().items():
        assert set(texts) == set(words.LANGUAGES), key
        for lang in words.LANGUAGES:
            value = texts[lang]
            if isinstance(value, dict):
                assert "other" in value, key
            else:
                assert value.strip(), key


def test_a_word_defined_by_two_areas_is_refused():
    with pytest.raises(ValueError, match="sign_in"):
        words.register("another_area", {"sign_in": {"ru": "x", "en": "x"}})


def test_plurals_and_numbers_follow_the_language():
    assert words.plural("ru", "members_found", 3) == "Найдено 3 участника"
    assert words.plural("ru", "members_found", 5) == "Найдено 5 участников"
    assert words.plural("en", "members_found", 1) == "1 member found"
    assert words.format_number("en", 1234) == "1,234"


def test_the_language_is_remembered_for_the_user_and_the_browser(app, api, console):
    assert '<html lang="en">' in text(console.get("/console/"))
    r = console.post("/console/language", {"lang": "ru", "next": "/console/members"})
    assert r.status_code == 303 and r.headers["Location"] == "/console/members"
    assert "console_lang=ru" in r.headers["Set-Cookie"]
    assert '<html lang="ru">' in text(console.get("/console/"))
    again = Console(app.test_client(), api.merchant_id)
    again.sign_in(console.email)
    assert '<html lang="ru">' in text(again.get("/console/"))
    # Before sign-in: the cookie, then the browser's languages.
    fresh = app.test_client()
    assert '<html lang="en">' in text(fresh.get("/console/sign-in",
                                                headers={"Accept-Language": "en-US"}))
    fresh.set_cookie("console_lang", "ru")
    assert '<html lang="ru">' in text(fresh.get("/console/sign-in",
                                                headers={"Accept-Language": "en-US"}))


def test_console_pages_allow_only_own_scripts_and_are_not_cached(console):
    r = console.get("/console/")
    policy = r.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-eval" not in policy
    assert r.headers["Cache-Control"] == "no-store"
    assert '/static/vendor/htmx/htmx.min.js' in text(r)


def test_htmx_is_vendored_with_its_licence_and_served(client):
    folder = ROOT / "wallet_service" / "static" / "vendor" / "htmx"
    assert (folder / "LICENSE").read_text().startswith("Zero-Clause BSD")
    assert "2.0.11" in (folder / "VERSION").read_text()
    r = client.get("/static/vendor/htmx/htmx.min.js")
    assert r.status_code == 200 and b"htmx" in r.data
    r.close()


# --- the command line and the demo ------------------------------------------------------


def test_create_user_reads_the_password_or_prints_one(app, api, app_config, monkeypatch):
    for name, value in app_config.items():
        monkeypatch.setenv(f"WALLET_{name}", value)
    runner = CliRunner()
    r = runner.invoke(main, ["create-user", "Owner@Zerno.test", "--merchant-id",
                             str(api.merchant_id), "--role", "owner"],
                      input="typed password 1\n")
    assert r.exit_code == 0, r.output
    assert "password" not in r.output.replace("owner@zerno.test", "")
    assert Console(app.test_client(), api.merchant_id).sign_in(
        "owner@zerno.test", "typed password 1").status_code == 303
    r = runner.invoke(main, ["create-user", "staff@zerno.test", "--merchant-id",
                             str(api.merchant_id), "--role", "staff"], input="")
    assert r.exit_code == 0, r.output
    generated = r.output.rsplit("password (shown once): ", 1)[1].strip()
    assert Console(app.test_client(), api.merchant_id).sign_in(
        "staff@zerno.test", generated).status_code == 303
    r = runner.invoke(main, ["create-user", "staff@zerno.test", "--merchant-id",
                             str(api.merchant_id)], input="another password\n")
    assert r.exit_code != 0 and "exists" in r.output
    r = runner.invoke(main, ["create-user", "x@zerno.test", "--merchant-id", "999999"],
                      input="another password\n")
    assert r.exit_code != 0 and "not found" in r.output


def test_the_demo_prints_a_console_sign_in(tmp_path):
    from wallet_service import create_app
    from wallet_service.demo import prepare_demo

    app = create_app({"INSTANCE_PATH": str(tmp_path)})
    lines = list(prepare_demo(app.extensions["wallet"], "http://127.0.0.1:8000"))
    line = next(line for line in lines if line.startswith("Console:"))
    assert "http://127.0.0.1:8000/console/" in line
    email, password = re.search(r"e-mail (\S+) +password \(shown once\) (\S+)", line).groups()
    lines = list(prepare_demo(app.extensions["wallet"], "http://127.0.0.1:8000"))
    again = next(line for line in lines if line.startswith("Console:")).rsplit(" ", 1)[1]
    assert again != password
    client = app.test_client()
    c = Console(client, 0)
    assert c.sign_in(email, password).status_code == 401  # replaced by the second run
    assert c.sign_in(email, again).status_code == 303
    assert client.get("/console/").status_code == 200
    app.extensions["wallet"].engine.dispose()


# --- e-mail -------------------------------------------------------------------------------


@pytest.fixture
def smtp_sink() -> Any:
    """A local SMTP server (aiosmtpd) that keeps what it receives."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Message

    received: list[Any] = []

    class Keep(Message):
        def handle_message(self, message: Any) -> None:
            received.append(message)

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    controller = Controller(Keep(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, received
    finally:
        controller.stop()


def test_invitations_and_card_links_go_by_e_mail_when_smtp_is_set(app, app_config, api,
                                                                   smtp_sink):
    from wallet_service import create_app

    port, received = smtp_sink
    mail_app = create_app({**app_config, "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(port),
                           "SMTP_SECURITY": "none", "SMTP_FROM": "console@zerno.test"})
    try:
        c = Console(mail_app.test_client(), api.merchant_id).sign_in_as(mail_app, "owner")
        r = c.post("/console/settings/users",
                   {"email": "new@zerno.test", "role": "staff", "send": "yes", "locale": "en"})
        assert r.status_code == 201 and "was sent to new@zerno.test" in text(r)
        program = api.program()
        member = api.member(program["id"], email="anna@zerno.test")
        r = c.post(f"/console/members/{member['id']}/send-link")
        assert r.status_code == 303
        for _ in range(50):
            if len(received) >= 2:
                break
            time.sleep(0.05)
        invite, card = received
        assert invite["To"] == "new@zerno.test" and invite["From"] == "console@zerno.test"
        assert "/console/welcome/" in invite.get_payload()
        assert card["To"] == "anna@zerno.test" and "/c/" in card.get_payload()
    finally:
        mail_app.extensions["wallet"].engine.dispose()


def test_without_smtp_the_card_link_is_not_sent(console, api):
    program = api.program()
    member = api.member(program["id"], email="anna@zerno.test")
    assert "send-link" not in text(console.get(f"/console/members/{member['id']}"))
    assert console.post(f"/console/members/{member['id']}/send-link").status_code == 409
