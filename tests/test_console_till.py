"""The console's till section: the owner and managers set PINs and limits that the till
then enforces, revoke devices and read the unusual-activity feed; staff may not; one
merchant never reaches another's staff; every change is audited. And the till says its
refusals in its own language."""

from __future__ import annotations

from typing import Any

import pytest
from api_support import Api
from console_support import Console
from console_support import make_user
from sqlalchemy import select
from till_support import PIN
from till_support import Till

from wallet_service.models import AuditEntry
from wallet_service.models import StaffPin


def audit_rows(app: Any, merchant_id: int) -> list[AuditEntry]:
    with app.extensions["wallet"].sessions() as s:
        return list(s.scalars(select(AuditEntry).where(
            AuditEntry.merchant_id == merchant_id, AuditEntry.action.like("till.%"))
            .order_by(AuditEntry.id)))


def member_of(api: Api) -> int:
    program = api.program()
    return int(api.member(program["id"])["id"])


def test_owner_sets_a_pin_and_a_limit_that_the_till_enforces(app, api: Api, console) -> None:
    t = Till(app, api)
    staff_id, staff_email = make_user(app, api.merchant_id, "staff",
                                      email="cashier@example.test")
    # No PIN yet: the till cannot sign them in.
    assert t.sign_in(staff_id, "2580").status_code == 401

    r = console.post(f"/console/till/staff/{staff_id}/pin", {"pin": "2580"})
    assert r.status_code == 303
    r = console.post(f"/console/till/staff/{staff_id}/limits",
                     {"points_per_transaction": "30", "points_per_customer_day": ""})
    assert r.status_code == 303

    page = console.get("/console/till?done=till_done_limits").get_data(as_text=True)
    assert staff_email in page and "The limits are saved." in page
    assert "2580" not in page  # the PIN is never shown back
    assert 'value="30"' in page

    assert t.sign_in(staff_id, "2580").status_code == 200
    t.client.set_cookie("wallet_till_lang", "en")
    member_id = member_of(api)
    refused = t.act(member_id, kind="purchase", amount="500")  # 50 points
    assert refused.status_code == 409 and refused.json["limit"] == "points_per_transaction"
    assert refused.json["message"].startswith("Limit: at most 30 points")
    assert t.act(member_id, kind="purchase", amount="200").status_code == 201

    # Back to the default limits (none): the same purchase goes through.
    assert console.post(f"/console/till/staff/{staff_id}/limits",
                        {"clear": "yes"}).status_code == 303
    assert t.act(member_id, kind="purchase", amount="500").status_code == 201

    actions = [(a.action, a.target, a.changes, a.actor_label) for a in audit_rows(
        app, api.merchant_id)]
    assert actions == [
        ("till.pin_set", f"user:{staff_id}", {"pin": "[changed]"}, console.email),
        ("till.limits_set", f"user:{staff_id}", {"points_per_transaction": [None, 30]},
         console.email),
        ("till.limits_cleared", f"user:{staff_id}", {"points_per_transaction": [30, None]},
         console.email),
    ]
    with app.extensions["wallet"].sessions() as s:
        assert "2580" not in s.get(StaffPin, staff_id).pin_hash


def test_default_limits_hold_for_staff_without_their_own(app, api: Api, console) -> None:
    t = Till(app, api)
    staff_id = t.staff()
    r = console.post("/console/till/limits", {"points_per_transaction": "10"})
    assert r.status_code == 303
    assert t.sign_in(staff_id).status_code == 200
    refused = t.act(member_of(api), kind="purchase", amount="200")
    assert refused.status_code == 409 and refused.json["cap"] == 10
    [entry] = audit_rows(app, api.merchant_id)
    assert (entry.action, entry.target) == ("till.limits_set", "till_limits:default")


def test_resetting_a_pin_replaces_the_old_one_and_clears_a_lock(app, api: Api,
                                                               console) -> None:
    t = Till(app, api)
    staff_id = t.staff()
    for _ in range(5):
        t.sign_in(staff_id, "0000")
    assert t.sign_in(staff_id, PIN).json.get("locked_until")
    assert console.post(f"/console/till/staff/{staff_id}/pin",
                        {"pin": "97531"}).status_code == 303
    assert t.sign_in(staff_id, PIN).status_code == 401
    assert t.sign_in(staff_id, "97531").status_code == 200
    assert [a.action for a in audit_rows(app, api.merchant_id)] == ["till.pin_reset"]


@pytest.mark.parametrize(("path", "form", "field_id"), [
    ("pin", {"pin": "12"}, "pin-{uid}-pin"),
    ("pin", {"pin": "1111"}, "pin-{uid}-pin"),
    ("pin", {"pin": "12ab"}, "pin-{uid}-pin"),
    ("limits", {"points_per_transaction": "-5"}, "limits-{uid}-points_per_transaction"),
    ("limits", {"stamps_per_staff_day": "many"}, "limits-{uid}-stamps_per_staff_day"),
])
def test_bad_input_is_shown_next_to_its_field(app, api: Api, console, path: str,
                                               form: dict[str, str], field_id: str) -> None:
    staff_id, _ = make_user(app, api.merchant_id, "staff", email="s@example.test")
    r = console.post(f"/console/till/staff/{staff_id}/{path}", form)
    assert r.status_code == 422
    page = r.get_data(as_text=True)
    field = field_id.format(uid=staff_id)
    assert f'aria-describedby="{field}-error"' in page and f'id="{field}-error"' in page
    if path == "limits":  # what was typed stays in the field
        assert f'value="{next(iter(form.values()))}"' in page
    assert audit_rows(app, api.merchant_id) == []


def test_manager_opens_the_page_and_staff_cannot(app, api: Api, console_as) -> None:
    manager = console_as("manager")
    r = manager.get("/console/till")
    assert r.status_code == 200
    assert 'href="/console/till"' in r.get_data(as_text=True)  # in the navigation
    staff = console_as("staff")
    assert staff.get("/console/till").status_code == 403
    assert 'href="/console/till"' not in staff.get("/console").get_data(as_text=True)
    assert staff.post(f"/console/till/staff/{staff.user_id}/pin",
                      {"pin": "2580"}).status_code == 403
    assert staff.post("/console/till/limits",
                      {"points_per_transaction": "1"}).status_code == 403
    assert audit_rows(app, api.merchant_id) == []


def test_another_merchants_staff_and_devices_are_not_found(app, api: Api, other_api: Api,
                                                          console) -> None:
    stranger, _ = make_user(app, other_api.merchant_id, "staff", email="x@other.test")
    assert console.post(f"/console/till/staff/{stranger}/pin",
                        {"pin": "2580"}).status_code == 404
    assert console.post(f"/console/till/staff/{stranger}/limits",
                        {"points_per_transaction": "5"}).status_code == 404
    assert console.post(f"/console/till/staff/{stranger}/limits",
                        {"clear": "yes"}).status_code == 404
    theirs = Till(app, other_api)
    device_id = theirs.client.get("/till/api/state").json["device"]["id"]
    assert console.post(f"/console/till/devices/{device_id}/revoke").status_code == 404
    assert theirs.client.get("/till/api/state").json["device"] is not None
    with app.extensions["wallet"].sessions() as s:
        assert s.scalar(select(StaffPin).where(StaffPin.user_id == stranger)) is None
    assert audit_rows(app, api.merchant_id) == []


def test_revoking_a_device_ends_its_till(app, api: Api, console) -> None:
    t = Till(app, api)
    state = t.client.get("/till/api/state").json["device"]
    page = console.get("/console/till").get_data(as_text=True)
    assert state["name"] in page and "Tverskaya" in page
    assert console.post(f"/console/till/devices/{state['id']}/revoke").status_code == 303
    assert t.client.get("/till/api/state").json["device"] is None
    assert state["name"] not in console.get("/console/till").get_data(as_text=True)
    [entry] = audit_rows(app, api.merchant_id)
    assert (entry.action, entry.target) == ("till.device_revoked", f"till_device:{state['id']}")


def test_the_activity_feed_shows_a_limit_hit(app, api: Api, console) -> None:
    t = Till(app, api)
    staff_id = t.staff(email="fast.hands@example.test")
    console.post(f"/console/till/staff/{staff_id}/limits", {"points_per_transaction": "5"})
    assert t.sign_in(staff_id).status_code == 200
    member_id = member_of(api)
    assert t.act(member_id, kind="purchase", amount="30").status_code == 201
    assert t.act(member_id, kind="purchase", amount="900").status_code == 409

    page = console.get("/console/till?period=day").get_data(as_text=True)
    activity = page.split('id="till-activity"')[1].split("</table>")[0]
    row = activity.split("<tbody>")[1]
    assert "fast.hands@example.test" in row and "Tverskaya" in row
    assert 'class="unusual"' in row and "Unusual" in row
    events = page.split('id="till-events"')[1].split("</table>")[0]
    assert "Limit: Points per transaction" in events
    # Unknown periods fall back to the week; nothing breaks.
    assert console.get("/console/till?period=century").status_code == 200
    assert console.get("/console/till?done=nonsense").status_code == 200


def test_the_page_in_russian(app, api: Api) -> None:
    owner = Console(app.test_client(), api.merchant_id).sign_in_as(
        app, "owner", email="ru@example.test", locale="ru")
    r = owner.get("/console/till")
    assert r.status_code == 200
    page = r.get_data(as_text=True)
    assert "Лимиты по умолчанию" in page and "Необычная активность" in page


# --- the till's refusals in its language --------------------------------------------------


def test_the_till_says_limits_and_a_closed_card_in_russian(app, api: Api, console) -> None:
    t = Till(app, api)
    t.client.set_cookie("wallet_till_lang", "ru")
    staff_id = t.staff()
    console.post(f"/console/till/staff/{staff_id}/limits", {"points_per_transaction": "5"})
    assert t.sign_in(staff_id).status_code == 200
    member_id = member_of(api)
    refused = t.act(member_id, kind="purchase", amount="900")
    assert refused.status_code == 409
    assert refused.json["message"] == ("Лимит: не больше 5 баллов за одну операцию "
                                       "(здесь 90)")
    assert refused.json["detail"].startswith("points: the limit is 5")  # the API's text stays

    too_much = t.act(member_id, kind="spend", points=1000)
    assert too_much.status_code == 409 and too_much.json["message"] == (
        "Недостаточно баллов на карте")

    assert console.post(f"/console/members/{member_id}/close").status_code == 303
    closed = t.act(member_id, kind="purchase", amount="10")
    assert closed.status_code == 409 and closed.json["message"] == "Карта закрыта"

    missing = t.lookup("0000000000")
    assert missing.status_code == 404 and missing.json["message"] == "Карта не найдена"

    t.client.set_cookie("wallet_till_lang", "en")
    closed = t.act(member_id, kind="purchase", amount="10")
    assert closed.json["message"] == "The card is closed"
