"""The staff till: who posted each ledger row, PIN sign-in on a registered device, the
owner's limits, undo, and one merchant's till never reaching another's cards."""

from __future__ import annotations

import datetime as dt

import pytest
from api_support import Api
from sqlalchemy import select
from sqlalchemy import update
from till_support import PIN
from till_support import Till
from till_support import set_limits

from wallet_service.models import ApiKey
from wallet_service.models import LedgerTransaction
from wallet_service.models import TillEvent
from wallet_service.services import till as till_service

STAMPS = {"kind": "stamps", "stamps": {"goal": 3, "reward": "Coffee", "max_per_window": None}}


def rows(app, member_id: int | None = None) -> list[LedgerTransaction]:
    with app.extensions["wallet"].sessions() as s:
        return list(s.scalars(select(LedgerTransaction).order_by(LedgerTransaction.id)))


def events(app, kind: str) -> list[TillEvent]:
    with app.extensions["wallet"].sessions() as s:
        return list(s.scalars(select(TillEvent).where(TillEvent.kind == kind)))


@pytest.fixture
def counter(app, api: Api) -> tuple[Till, int]:
    """A till of the merchant's store with one staff user signed in."""
    t = Till(app, api)
    staff = t.staff()
    assert t.sign_in(staff).status_code == 200
    return t, staff


def card_of(api: Api, **program: object) -> tuple[int, str]:
    prog = api.program(**program)
    member = api.member(prog["id"])
    return member["id"], member["card_number"]


# --- attribution ------------------------------------------------------------------------


def test_api_entries_record_the_key_that_posted_them(app, api: Api) -> None:
    member_id, _ = card_of(api)
    r = api.post(f"/members/{member_id}/transactions", {"type": "earn", "amount": "100"})
    assert r.status_code == 201
    with app.extensions["wallet"].sessions() as s:
        key_id = s.scalar(select(ApiKey.id).where(ApiKey.merchant_id == api.merchant_id))
    [row] = rows(app)
    assert (row.api_key_id, row.staff_user_id, row.location_id) == (key_id, None, None)


def test_till_entries_record_the_staff_user_and_store(app, api: Api, counter) -> None:
    t, staff = counter
    member_id, number = card_of(api)
    found = t.lookup(number)
    assert found.status_code == 200 and found.json["member"]["id"] == member_id
    r = t.act(member_id, kind="purchase", amount="250")
    assert r.status_code == 201, r.json
    assert r.json["member"]["balance"]["value"] == "25"
    [row] = rows(app)
    assert (row.type, row.points, row.api_key_id) == ("earn", 25, None)
    assert (row.staff_user_id, row.location_id) == (staff, t.location_id)


# --- devices and PINs -------------------------------------------------------------------


def test_nothing_without_a_registered_device(app, api: Api) -> None:
    client = app.test_client()
    token = client.get("/till/api/state").json["csrf"]
    r = client.post("/till/api/sign-in", json={"user_id": 1, "pin": PIN},
                    headers={"X-CSRF-Token": token})
    assert r.status_code == 401 and r.json["errors"][0]["field"] == "device"


def test_staff_cannot_register_a_device(app, api: Api) -> None:
    from console_support import make_user
    with pytest.raises(AssertionError):
        Till(app, api, manager=make_user(app, api.merchant_id, "staff"))


def test_the_device_cookie_is_http_only_and_strict(app, api: Api) -> None:
    t = Till(app, api)
    cookie = t.client.get_cookie("wallet_till", path="/till")
    assert cookie is not None and cookie.http_only and cookie.same_site == "Strict"


def test_posting_needs_the_csrf_token(app, api: Api, counter) -> None:
    t, _ = counter
    member_id, _ = card_of(api)
    r = t.client.post(f"/till/api/members/{member_id}/actions", json={"kind": "stamps"},
                      headers={"Idempotency-Key": "k"})
    assert r.status_code == 403 and rows(app) == []


def test_wrong_pins_lock_the_pin(app, api: Api) -> None:
    t = Till(app, api)
    staff = t.staff()
    for left in (4, 3, 2, 1):
        r = t.sign_in(staff, "0000")
        assert r.status_code == 401 and r.json["attempts_left"] == left
    r = t.sign_in(staff, "0000")
    assert r.status_code == 401 and "locked_until" in r.json
    # Locked: even the right PIN is refused, and nothing is signed in.
    assert "locked_until" in t.sign_in(staff, PIN).json
    assert t.client.get("/till/api/state").json["user"] is None
    assert len(events(app, "pin_failed")) == 4 and len(events(app, "pin_locked")) == 1


def test_a_pin_is_hashed_and_checked(app, api: Api) -> None:
    t = Till(app, api)
    staff = t.staff()
    with app.extensions["wallet"].sessions() as s:
        stored = s.get(till_service.StaffPin, staff).pin_hash
    assert stored.startswith("$argon2id$") and PIN not in stored
    assert t.sign_in(staff).status_code == 200
    assert t.client.get("/till/api/state").json["user"]["id"] == staff


@pytest.mark.parametrize("pin", ["123", "1111", "12a4", "123456789"])
def test_weak_or_malformed_pins_are_refused(app, api: Api, pin: str) -> None:
    from console_support import make_user

    from wallet_service.errors import ValidationFailed
    user_id, _ = make_user(app, api.merchant_id, "staff")
    with app.extensions["wallet"].sessions() as s, pytest.raises(ValidationFailed):
        till_service.set_pin(s, api.merchant_id, user_id, pin)


def test_a_staff_user_of_one_merchant_never_sees_another_merchants_card(
        app, api: Api, other_api: Api, counter) -> None:
    t, _ = counter
    theirs, number = card_of(other_api)
    assert t.lookup(number).status_code == 404
    assert t.lookup(number, scanned=False).status_code == 404
    assert t.client.get(f"/till/api/members/{theirs}").status_code == 404
    r = t.act(theirs, kind="purchase", amount="100")
    assert r.status_code == 404 and rows(app) == []


def test_a_pin_works_only_on_its_merchants_devices(app, api: Api, other_api: Api) -> None:
    ours = Till(app, api)
    theirs = Till(app, other_api)
    staff = ours.staff()
    assert theirs.sign_in(staff).status_code == 401
    assert theirs.client.get("/till/api/state").json["user"] is None


# --- idempotency --------------------------------------------------------------------------


def test_a_retry_after_a_timeout_credits_once(app, api: Api, counter) -> None:
    t, _ = counter
    member_id, _ = card_of(api)
    # The first answer never reached the device (a timeout); it sends the same action again
    # with the same key.
    first = t.act(member_id, key="device-1f2e", kind="purchase", amount="100")
    again = t.act(member_id, key="device-1f2e", kind="purchase", amount="100")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json["result"]["replayed"] is True
    assert again.json["result"]["entry_id"] == first.json["result"]["entry_id"]
    assert again.json["member"]["points"] == 10
    assert len(rows(app)) == 1


# --- the owner's limits -------------------------------------------------------------------


def _refused(r, limit: str) -> None:
    assert r.status_code == 409, r.json
    assert r.json["limit"] == limit


@pytest.mark.parametrize(("limit", "program", "body"), [
    ("points_per_transaction", {}, {"kind": "purchase", "amount": "600"}),
    ("stamps_per_transaction", STAMPS, {"kind": "stamps", "count": 2}),
])
def test_per_transaction_limits(app, api: Api, counter, limit, program, body) -> None:
    t, staff = counter
    set_limits(app, api.merchant_id, staff, **{limit: 50 if "points" in limit else 1})
    member_id, _ = card_of(api, **program)
    _refused(t.act(member_id, **body), limit)
    assert rows(app) == []
    [hit] = events(app, "limit")
    assert (hit.details["limit"], hit.user_id, hit.location_id) == (limit, staff, t.location_id)
    # Within the limit it posts.
    small = {"kind": "purchase", "amount": "500"} if "points" in limit else {
        "kind": "stamps", "count": 1}
    assert t.act(member_id, **small).status_code == 201


@pytest.mark.parametrize(("limit", "program", "body"), [
    ("points_per_customer_day", {}, {"kind": "purchase", "amount": "100"}),
    ("stamps_per_customer_day", STAMPS, {"kind": "stamps", "count": 1}),
])
def test_per_customer_day_limits(app, api: Api, counter, limit, program, body) -> None:
    t, staff = counter
    set_limits(app, api.merchant_id, None, **{limit: 20 if "points" in limit else 2})
    member_id, _ = card_of(api, **program)
    other_id = api.member(api.get("/programs").json["items"][0]["id"],
                          phone="+7 912 000-00-01")["id"]
    assert t.act(member_id, **body).status_code == 201
    assert t.act(member_id, **body).status_code == 201
    _refused(t.act(member_id, **body), limit)
    # Another customer is counted apart.
    assert t.act(other_id, **body).status_code == 201
    assert len(events(app, "limit")) == 1


@pytest.mark.parametrize(("limit", "program", "body"), [
    ("points_per_staff_day", {}, {"kind": "purchase", "amount": "100"}),
    ("stamps_per_staff_day", STAMPS, {"kind": "stamps", "count": 1}),
])
def test_per_staff_day_limits(app, api: Api, counter, limit, program, body) -> None:
    t, staff = counter
    set_limits(app, api.merchant_id, staff, **{limit: 20 if "points" in limit else 2})
    member_id, _ = card_of(api, **program)
    prog_id = api.get("/programs").json["items"][0]["id"]
    others = [api.member(prog_id, phone=f"+7 912 000-00-0{i}")["id"] for i in (1, 2)]
    assert t.act(member_id, **body).status_code == 201
    assert t.act(others[0], **body).status_code == 201
    _refused(t.act(others[1], **body), limit)
    # A colleague without the limit still posts.
    colleague = t.staff(email="colleague@example.test")
    assert t.sign_in(colleague).status_code == 200
    assert t.act(others[1], **body).status_code == 201


def test_a_day_is_the_merchants_day(app, api: Api, counter) -> None:
    """Yesterday in the merchant's zone does not count, however close in UTC."""
    t, staff = counter
    api.patch("/merchant", {"time_zone": "Asia/Vladivostok"})
    set_limits(app, api.merchant_id, staff, points_per_customer_day=15)
    member_id, _ = card_of(api)
    assert t.act(member_id, kind="purchase", amount="100").status_code == 201
    today = till_service.local_date(dt.datetime.now(dt.UTC), "Asia/Vladivostok")
    midnight = till_service.start_of_day(today, "Asia/Vladivostok")
    with app.extensions["wallet"].sessions() as s:
        s.execute(update(LedgerTransaction).values(created_at=midnight - dt.timedelta(minutes=1)))
        s.commit()
    assert t.act(member_id, kind="purchase", amount="100").status_code == 201
    _refused(t.act(member_id, kind="purchase", amount="100"), "points_per_customer_day")


def test_the_programs_stamp_window_holds_at_the_till(app, api: Api, counter) -> None:
    t, _ = counter
    member_id, _ = card_of(api, kind="stamps", stamps={
        "goal": 6, "reward": "Coffee", "max_per_window": 1, "window_minutes": 60})
    assert t.act(member_id, kind="stamps", count=1).status_code == 201
    _refused(t.act(member_id, kind="stamps", count=1), "stamp_window")
    [hit] = events(app, "limit")
    assert hit.details["limit"] == "stamp_window"


def test_limits_are_the_owners_to_set(app, api: Api, other_api: Api) -> None:
    from console_support import make_user

    from wallet_service.errors import ResourceNotFound
    from wallet_service.errors import ValidationFailed
    theirs, _ = make_user(app, other_api.merchant_id, "staff")
    with app.extensions["wallet"].sessions() as s:
        with pytest.raises(ResourceNotFound):
            till_service.set_limits(s, api.merchant_id, theirs, till_service.Limits(1))
        with pytest.raises(ValidationFailed):
            till_service.set_limits(s, api.merchant_id, None, till_service.Limits(-1))


# --- undo ---------------------------------------------------------------------------------


def test_undo_reverses_a_purchase(app, api: Api, counter) -> None:
    t, _ = counter
    member_id, _ = card_of(api)
    done = t.act(member_id, kind="purchase", amount="300")
    r = t.act(member_id, kind="undo", entry_id=done.json["result"]["entry_id"])
    assert r.status_code == 201, r.json
    assert r.json["member"]["points"] == 0
    undo = rows(app)[-1]
    assert (undo.type, undo.points, undo.reference_id) == ("refund", -30, rows(app)[0].id)
    assert undo.details["undo"] == rows(app)[0].id
    # Twice is refused.
    again = t.act(member_id, kind="undo", entry_id=done.json["result"]["entry_id"])
    assert again.status_code == 409
    assert len(events(app, "undo")) == 1


def test_undo_takes_back_the_reward_the_stamps_completed(app, api: Api, counter) -> None:
    t, _ = counter
    member_id, _ = card_of(api, **STAMPS)
    t.act(member_id, kind="stamps", count=2)
    done = t.act(member_id, kind="stamps", count=1)
    assert done.json["member"]["points"] == 1  # a reward ready, 0/3 stamps
    r = t.act(member_id, kind="undo", entry_id=done.json["result"]["entry_id"])
    assert r.status_code == 201
    card = api.get(f"/members/{member_id}").json
    assert (card["balance"], card["stamps"]) == (0, 2)


def test_undo_of_a_claimed_reward_leaves_a_stamp_debt(app, api: Api, counter) -> None:
    t, _ = counter
    member_id, _ = card_of(api, **STAMPS)
    t.act(member_id, kind="stamps", count=2)
    done = t.act(member_id, kind="stamps", count=1)
    r = api.post(f"/members/{member_id}/transactions", {"type": "redeem", "points": 1})
    assert r.status_code == 201
    t.act(member_id, kind="undo", entry_id=done.json["result"]["entry_id"])
    card = api.get(f"/members/{member_id}").json
    assert card["balance"] == 0 and card["stamp_debt"] == 1


def test_undo_is_for_the_same_staff_within_minutes(app, api: Api, counter) -> None:
    t, _ = counter
    member_id, _ = card_of(api)
    entry = t.act(member_id, kind="purchase", amount="100").json["result"]["entry_id"]
    colleague = t.staff(email="colleague@example.test")
    t.sign_in(colleague)
    assert t.act(member_id, kind="undo", entry_id=entry).status_code == 409
    t2_entry = t.act(member_id, kind="purchase", amount="100").json["result"]["entry_id"]
    with app.extensions["wallet"].sessions() as s:
        s.execute(update(LedgerTransaction).where(LedgerTransaction.id == t2_entry).values(
            created_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=6)))
        s.commit()
    r = t.act(member_id, kind="undo", entry_id=t2_entry)
    assert r.status_code == 409 and "refund" in r.json["detail"]


def test_undo_gives_back_spent_points(app, api: Api, counter) -> None:
    t, _ = counter
    member_id, _ = card_of(api)
    t.act(member_id, kind="purchase", amount="500")
    spent = t.act(member_id, kind="spend", points=20)
    assert spent.json["member"]["points"] == 30
    r = t.act(member_id, kind="undo", entry_id=spent.json["result"]["entry_id"])
    assert r.status_code == 201 and r.json["member"]["points"] == 50


# --- what the till shows, and the activity feed -------------------------------------------


def test_the_member_shows_before_and_after_an_action(app, api: Api, counter) -> None:
    t, _ = counter
    prog = api.program(kind="cashback", cashback={"percent": "5"})
    member = api.member(prog["id"])
    q = t.post(f"/till/api/members/{member['id']}/quote", {"amount": "200"})
    assert q.status_code == 200 and q.json["points"] == 1000  # 10.00 in minor units
    shown = t.lookup(member["card_number"]).json["member"]
    assert shown["name"] == "Anna" and shown["kind"] == "cashback" and shown["last"] == []
    r = t.act(member["id"], kind="purchase", amount="200")
    assert r.json["member"]["last"][0]["amount_minor"] == 20000


def test_bad_input_names_the_field(app, api: Api, counter) -> None:
    t, _ = counter
    member_id, _ = card_of(api)
    r = t.act(member_id, kind="purchase")
    assert r.status_code == 400 and r.json["errors"][0]["field"] == "amount"
    r = t.act(member_id, kind="teleport")
    assert r.status_code == 422 and r.json["errors"][0]["field"] == "kind"
    r = t.post(f"/till/api/members/{member_id}/actions", {"kind": "stamps", "count": 1})
    assert r.status_code == 400 and r.json["errors"][0]["field"] == "Idempotency-Key"


def test_the_activity_feed_counts_per_staff_and_store(app, api: Api, counter) -> None:
    t, staff = counter
    set_limits(app, api.merchant_id, staff, points_per_transaction=100)
    member_id, number = card_of(api)
    t.lookup(number, scanned=False)
    t.lookup("+7 912 345-67-89", scanned=False)
    done = t.act(member_id, kind="purchase", amount="100")
    t.act(member_id, kind="undo", entry_id=done.json["result"]["entry_id"])
    t.act(member_id, kind="purchase", amount="5000")  # over the limit
    with app.extensions["wallet"].sessions() as s:
        [row] = till_service.activity(s, api.merchant_id,
                                      dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))
    assert (row.user_id, row.location_id) == (staff, t.location_id)
    assert (row.transactions, row.manual, row.undos, row.limits_hit) == (2, 2, 1, 1)
    assert row.unusual and row.undo_rate == 0.5


# --- the page -------------------------------------------------------------------------------


@pytest.mark.parametrize(("lang", "word"), [("ru", "Касса"), ("en", "Till")])
def test_the_page_in_both_languages(client, lang: str, word: str) -> None:
    r = client.get(f"/till?lang={lang}")
    assert r.status_code == 200 and f'<html lang="{lang}">' in r.get_data(as_text=True)
    assert word in r.get_data(as_text=True)
    assert "'wasm-unsafe-eval'" in r.headers["Content-Security-Policy"]


def test_installable_with_a_service_worker(client) -> None:
    m = client.get("/till/manifest.webmanifest")
    assert m.status_code == 200 and m.json["start_url"] == "/till"
    assert m.json["display"] == "standalone"
    sw = client.get("/till/sw.js")
    assert sw.status_code == 200 and sw.headers["Service-Worker-Allowed"] == "/till"
    source = sw.get_data(as_text=True)
    assert "/till/api/" in source and "sync" not in source.lower()
