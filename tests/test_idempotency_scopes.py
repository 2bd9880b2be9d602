"""Idempotency keys with a scope: a key belongs to one operation on one member with one body,
on every idempotent route; the service's own keys (expiry, bonuses) live apart from clients'."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from alembic import command
from sqlalchemy import JSON
from sqlalchemy import MetaData
from sqlalchemy import create_engine
from sqlalchemy import select
from sqlalchemy import text

from wallet_service.migrate import alembic_config
from wallet_service.migrate import upgrade
from wallet_service.models import LedgerTransaction
from wallet_service.models import LoyaltyCard
from wallet_service.models import PointLot

OPERATIONS = ("transaction", "stamps", "action", "reward.redeem", "coupon.redeem")
PHONES = iter(f"+7 912 100-{n // 100:02d}-{n % 100:02d}" for n in range(10_000))


class Till:
    """A program set up for one idempotent ``operation``, and that operation sent as a till
    sends it. ``variant`` picks another body for the same operation."""

    def __init__(self, api, operation: str) -> None:
        self.api, self.operation = api, operation
        fields: dict = {"kind": "stamps" if operation == "stamps" else "points"}
        if operation == "stamps":
            fields["stamps"] = {"goal": 10, "max_per_window": None}
        if operation == "action":
            fields["bonuses"] = {"actions": {"review": 25}}
        self.program = api.program(**fields)
        self.rewards = [api.post(f"/programs/{self.program['id']}/rewards",
                                 {"name": name, "cost_points": cost}).json["id"]
                        for name, cost in (("Croissant", 10), ("Cake", 20))]
        self.coupons: list[int] = []

    def member(self) -> dict:
        m = self.api.member(self.program["id"], phone=next(PHONES))
        if self.operation == "reward.redeem":
            assert txn(self.api, m, type="earn", points=100).status_code == 201
        return m

    def send(self, member: dict, key: str, variant: int = 0):
        path = f"/members/{member['id']}"
        headers = {"Idempotency-Key": key}
        if self.operation == "transaction":
            return self.api.post(f"{path}/transactions", {"type": "earn", "points": 40 + variant},
                                 headers=headers)
        if self.operation == "stamps":
            return self.api.post(f"{path}/stamps", {"count": 1 + variant}, headers=headers)
        if self.operation == "action":
            return self.api.post(f"{path}/actions", {"action": "review",
                                                      "reference": f"r-{variant}"},
                                 headers=headers)
        if self.operation == "reward.redeem":
            return self.api.post(f"{path}/rewards/{self.rewards[variant]}/redeem",
                                 headers=headers)
        if not self.coupons:  # every member of the program has both, once they exist
            self.coupons = [self.api.post(f"/programs/{self.program['id']}/coupons",
                                          {"title": title}).json["id"]
                            for title in ("−20%", "Free coffee")]
        return self.api.post(f"{path}/coupons/{self.coupons[variant]}/redeem", headers=headers)


def txn(api, member, key=None, **body):
    headers = {"Idempotency-Key": key} if key else None
    return api.post(f"/members/{member['id']}/transactions", body, headers=headers)


def snapshot(api, member) -> tuple:
    """Everything the API shows of a member's card: to see that a request changed nothing."""
    return (api.get(f"/members/{member['id']}").json,
            api.get(f"/members/{member['id']}/transactions").json,
            api.get(f"/members/{member['id']}/coupons").json)


def assert_refused(r, operation: str, member_id: int) -> None:
    """422 naming ``Idempotency-Key``, saying the operation and member the key was used for
    and nothing of that entry."""
    assert r.status_code == 422, r.json
    assert r.json["errors"][0]["field"] == "Idempotency-Key"
    assert r.json["used_for"] == {"operation": operation, "member_id": member_id}
    assert operation in r.json["detail"]
    assert not {"transaction", "balance", "tier", "follow_ups"} & set(r.json)


def card_id(session, member) -> int:
    found = session.scalar(select(LoyaltyCard.id).where(LoyaltyCard.member_id == member["id"]))
    session.rollback()  # end the read: SQLite writers would wait for it
    return found


# --- the scope: operation, member, body ----------------------------------------------------


def test_a_reward_key_sent_for_another_member_claims_nothing(api):
    program = api.program()
    reward = api.post(f"/programs/{program['id']}/rewards",
                      {"name": "Croissant", "cost_points": 80}).json
    m = api.member(program["id"])
    m3 = api.member(program["id"], phone="+7 912 000-00-03")
    txn(api, m, type="earn", points=100)
    txn(api, m3, type="earn", points=130)
    key = {"Idempotency-Key": "claim-7"}
    first = api.post(f"/members/{m['id']}/rewards/{reward['id']}/redeem", headers=key)
    assert first.status_code == 201 and first.json["balance"] == 20
    before = snapshot(api, m3)

    r = api.post(f"/members/{m3['id']}/rewards/{reward['id']}/redeem", headers=key)
    assert_refused(r, "reward.redeem", m["id"])
    assert f"member {m['id']}" in r.json["detail"]
    assert "Idempotent-Replayed" not in r.headers
    assert snapshot(api, m3) == before
    assert api.get(f"/members/{m3['id']}").json["balance"] == 130
    assert api.get(f"/members/{m['id']}").json["balance"] == 20


@pytest.mark.parametrize("operation", OPERATIONS)
def test_the_same_request_again_replays_the_first_answer(api, operation):
    till = Till(api, operation)
    m = till.member()
    first = till.send(m, "till-1-receipt-9")
    assert first.status_code == 201, first.json
    before = snapshot(api, m)
    again = till.send(m, "till-1-receipt-9")
    assert again.status_code == 201, again.json
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json == first.json
    assert snapshot(api, m) == before


@pytest.mark.parametrize("operation", OPERATIONS)
def test_the_same_key_with_another_body_is_refused(api, operation):
    till = Till(api, operation)
    m = till.member()
    assert till.send(m, "till-1-receipt-10").status_code == 201
    before = snapshot(api, m)
    r = till.send(m, "till-1-receipt-10", variant=1)
    assert_refused(r, operation, m["id"])
    assert "different" in r.json["detail"]
    assert snapshot(api, m) == before


@pytest.mark.parametrize("operation", OPERATIONS)
def test_a_key_never_answers_for_another_member(api, operation):
    till = Till(api, operation)
    m, m3 = till.member(), till.member()
    assert till.send(m, "till-1-receipt-11").status_code == 201
    before = snapshot(api, m3)
    r = till.send(m3, "till-1-receipt-11")
    assert_refused(r, operation, m["id"])
    assert snapshot(api, m3) == before
    # With a key of its own, the same request goes through.
    assert till.send(m3, "till-1-receipt-12").status_code == 201


def test_a_key_belongs_to_one_operation(api):
    program = api.program()
    reward = api.post(f"/programs/{program['id']}/rewards",
                      {"name": "Croissant", "cost_points": 10}).json
    m = api.member(program["id"])
    txn(api, m, type="earn", points=100)
    redeem = f"/members/{m['id']}/rewards/{reward['id']}/redeem"

    assert txn(api, m, "K-1", type="earn", points=5).status_code == 201
    r = api.post(redeem, headers={"Idempotency-Key": "K-1"})
    assert_refused(r, "transaction", m["id"])
    assert "this member" in r.json["detail"]
    assert api.get(f"/members/{m['id']}").json["balance"] == 105

    assert api.post(redeem, headers={"Idempotency-Key": "K-2"}).status_code == 201
    assert_refused(txn(api, m, "K-2", type="earn", points=5), "reward.redeem", m["id"])
    assert api.get(f"/members/{m['id']}").json["balance"] == 95


def test_stamps_and_a_transaction_of_stamps_are_two_operations(api):
    program = api.program(kind="stamps", stamps={"goal": 10, "max_per_window": None})
    m = api.member(program["id"])
    key = {"Idempotency-Key": "stamp-3"}
    assert api.post(f"/members/{m['id']}/stamps", {"count": 2}, headers=key).status_code == 201
    r = api.post(f"/members/{m['id']}/transactions", {"type": "earn", "stamps": 2}, headers=key)
    assert_refused(r, "stamps", m["id"])
    assert api.get(f"/members/{m['id']}").json["stamps"] == 2


def test_an_action_with_a_key_still_earns_once_per_reference(api):
    program = api.program(bonuses={"actions": {"review": 25}})
    m = api.member(program["id"])
    path = f"/members/{m['id']}/actions"
    body = {"action": "review", "reference": "r-1"}
    first = api.post(path, body, headers={"Idempotency-Key": "A"})
    assert first.status_code == 201 and first.json["balance"] == 25
    # Another key is another request: the reference earned already.
    assert api.post(path, body, headers={"Idempotency-Key": "B"}).status_code == 409
    assert api.post(path, body).status_code == 409
    again = api.post(path, body, headers={"Idempotency-Key": "A"})
    assert again.status_code == 201 and again.json == first.json
    assert again.headers["Idempotent-Replayed"] == "true"
    assert api.get(f"/members/{m['id']}").json["balance"] == 25


def test_a_coupon_used_without_a_key_is_still_409(api):
    program = api.program()
    m = api.member(program["id"])
    coupon = api.post(f"/programs/{program['id']}/coupons", {"title": "−20%"}).json
    path = f"/members/{m['id']}/coupons/{coupon['id']}/redeem"
    assert api.post(path).status_code == 201
    assert api.post(path).status_code == 409
    assert api.post(path, headers={"Idempotency-Key": "late"}).status_code == 409


def test_one_key_raced_on_different_members_claims_once(app, api):
    program = api.program()
    reward = api.post(f"/programs/{program['id']}/rewards",
                      {"name": "Croissant", "cost_points": 10}).json
    members = [api.member(program["id"], phone=next(PHONES)) for _ in range(4)]
    for m in members:
        txn(api, m, type="earn", points=10)
    headers = {"Authorization": f"Bearer {api.key}", "Idempotency-Key": "shared-claim"}
    start = threading.Barrier(len(members))

    def claim(m: dict) -> int:
        client = app.test_client()
        start.wait()
        return client.post(f"/api/v1/members/{m['id']}/rewards/{reward['id']}/redeem",
                           headers=headers).status_code

    with ThreadPoolExecutor(len(members)) as pool:
        codes = list(pool.map(claim, members))
    assert sorted(codes) == [201, 422, 422, 422]
    balances = sorted(api.get(f"/members/{m['id']}").json["balance"] for m in members)
    assert balances == [0, 10, 10, 10]


# --- the service's own keys -----------------------------------------------------------------


def test_a_client_key_like_the_job_s_never_stops_expiry(api, session):
    program = api.program(points_validity_days=30)
    m = api.member(program["id"])
    n = api.member(api.program()["id"], phone="+7 912 000-00-04")
    earned = txn(api, m, type="earn", points=100).json["transaction"]["id"]
    lot = session.execute(select(PointLot.id, PointLot.expires_on)
                          .where(PointLot.transaction_id == earned)).one()
    session.rollback()

    key = f"expire:{lot.id}"
    taken = txn(api, n, key, type="earn", points=5)
    assert taken.status_code == 201, taken.json
    assert api.run_daily(lot.expires_on)["expired"] == 1
    assert api.get(f"/members/{m['id']}").json["balance"] == 0
    entry = api.get(f"/members/{m['id']}/transactions").json["items"][0]
    assert entry["type"] == "expire" and entry["points"] == -100
    assert api.run_daily(lot.expires_on)["expired"] == 0
    # The client's key is still the client's.
    again = txn(api, n, key, type="earn", points=5)
    assert again.headers["Idempotent-Replayed"] == "true" and again.json == taken.json
    assert api.get(f"/members/{n['id']}").json["balance"] == 5


def test_the_key_of_an_expired_lot_is_free_for_a_client(api, session):
    program = api.program(points_validity_days=30)
    m = api.member(program["id"])
    earned = txn(api, m, type="earn", points=100).json["transaction"]["id"]
    lot = session.execute(select(PointLot.id, PointLot.expires_on)
                          .where(PointLot.transaction_id == earned)).one()
    session.rollback()
    assert api.run_daily(lot.expires_on)["expired"] == 1
    r = txn(api, m, f"expire:{lot.id}", type="earn", points=5)
    assert r.status_code == 201 and r.json["balance"] == 5
    assert "Idempotent-Replayed" not in r.headers


def test_referral_and_birthday_bonuses_pay_once_whatever_keys_clients_send(api, session):
    program = api.program(bonuses={"referrer": 100, "referred": 50, "birthday": 200})
    anna = api.member(program["id"])
    bob = api.member(program["id"], phone="+7 912 000-00-05", birthday="1990-07-14",
                     referral_code=anna["referral_code"])
    bob_card, anna_card = card_id(session, bob), card_id(session, anna)
    day = dt.date(2031, 7, 14)
    # A client posts with keys that look like the service's own, before the service needs them.
    for key in (f"referral:{bob_card}:referrer", f"referral:{bob_card}:referred",
                f"birthday:{bob_card}:{day.year}", f"welcome:{anna_card}"):
        assert txn(api, anna, key, type="adjust", points=1, reason="till").status_code == 201

    first = txn(api, bob, "bob-first", type="earn", amount="100")
    assert first.status_code == 201
    assert first.json["balance"] == 10 + 50 == api.get(f"/members/{bob['id']}").json["balance"]
    assert api.get(f"/members/{anna['id']}").json["balance"] == 4 + 100
    replay = txn(api, bob, "bob-first", type="earn", amount="100")
    assert replay.json == first.json and replay.headers["Idempotent-Replayed"] == "true"
    txn(api, bob, type="earn", amount="100")  # a second purchase pays no referral
    assert api.get(f"/members/{bob['id']}").json["balance"] == 70
    assert api.get(f"/members/{anna['id']}").json["balance"] == 104

    assert api.run_daily(day)["birthdays"] == 1
    assert api.run_daily(day)["birthdays"] == 0
    assert api.get(f"/members/{bob['id']}").json["balance"] == 270
    rules = [e["details"]["rule"] for e in
             api.get(f"/members/{bob['id']}/transactions").json["items"]
             if e["type"] == "bonus"]
    assert sorted(rules) == ["birthday", "referral"]


def test_every_idempotent_operation_documents_its_key(api):
    doc = api.client.get("/api/v1/openapi.json").json
    routes = {
        "transaction": ("/members/{member_id}/transactions", "post"),
        "stamps": ("/members/{member_id}/stamps", "post"),
        "action": ("/members/{member_id}/actions", "post"),
        "reward.redeem": ("/members/{member_id}/rewards/{reward_id}/redeem", "post"),
        "coupon.redeem": ("/members/{member_id}/coupons/{coupon_id}/redeem", "post"),
    }
    for operation, (path, method) in routes.items():
        op = doc["paths"][path][method]
        header = [p for p in op["parameters"] if p["name"] == "Idempotency-Key"]
        assert len(header) == 1 and header[0]["in"] == "header", operation
        described = header[0]["description"]
        assert f"`{operation}` here" in described and "member" in described, operation
        assert "422" in op["responses"], operation


# --- the revision that separated the keys ----------------------------------------------------


@pytest.fixture
def old_schema(engine, tmp_path):
    """An engine on an empty database of its own: on PostgreSQL a schema of its own in the
    test database, on SQLite a file of its own."""
    if engine.dialect.name != "postgresql":
        own = create_engine(f"sqlite:///{tmp_path / 'old.db'}")
        yield own
        own.dispose()
        return
    schema = f"scopes_{uuid.uuid4().hex[:8]}"
    with engine.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    own = create_engine(engine.url, connect_args={"options": f"-csearch_path={schema}"})
    try:
        yield own
    finally:
        own.dispose()
        with engine.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))


def _row(table, **given):
    """A row for ``table`` with ``given`` values and a plain value in every other required
    column (ids of referenced rows are 1)."""
    values = dict(given)
    for column in table.columns:
        if column.name in values or column.nullable or column.server_default is not None:
            continue
        if column.primary_key and not column.foreign_keys:
            continue
        python = column.type.python_type
        if isinstance(column.type, JSON):
            values[column.name] = {}
        elif column.foreign_keys or python is int:
            values[column.name] = 1
        elif python is str:
            values[column.name] = f"{table.name}-{column.name}"[:column.type.length or 200]
        elif python is bool:
            values[column.name] = False
        elif python is dt.datetime:
            values[column.name] = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
        elif python is dt.date:
            values[column.name] = dt.date(2026, 11, 1)
        else:
            values[column.name] = b""
    return values


def test_the_revision_moves_the_service_s_keys_to_their_own_column(old_schema):
    upgrade(old_schema, "0010")
    meta = MetaData()
    meta.reflect(old_schema)
    entries = [
        ("expire", "expire:1"), ("bonus", "birthday:1:2026"), ("bonus", "referral:1:referrer"),
        ("bonus", "action:1:review:r-1"), ("bonus", "welcome:1"),
        ("bonus", "winback:1:2026-01-01"),
        ("earn", "till-1"), ("earn", "expire:99"), ("refund", "till-2"), ("reward", "claim-1"),
        ("adjust", None), ("bonus", None),
    ]
    with old_schema.begin() as conn:
        for name in ("merchants", "loyalty_programs", "members", "loyalty_cards"):
            conn.execute(meta.tables[name].insert(), _row(meta.tables[name], id=1))
        txns = meta.tables["ledger_transactions"]
        conn.execute(txns.insert(), [_row(txns, type=type_, idempotency_key=key, points=0)
                                     for type_, key in entries])

    upgrade(old_schema, "0011")
    with old_schema.connect() as conn:
        rows = conn.execute(text("SELECT idempotency_key, natural_key, idempotency_operation "
                                 "FROM ledger_transactions ORDER BY id")).all()
    assert [tuple(r) for r in rows] == [
        ("expire:1", "expire:1", None),
        ("birthday:1:2026", "birthday:1:2026", None),
        ("referral:1:referrer", "referral:1:referrer", None),
        ("action:1:review:r-1", "action:1:review:r-1", None),
        ("welcome:1", "welcome:1", None),
        ("winback:1:2026-01-01", "winback:1:2026-01-01", None),
        ("till-1", None, "transaction"),
        ("expire:99", None, "transaction"),  # a client's key on a purchase stays the client's
        ("till-2", None, "transaction"),
        ("claim-1", None, "reward.redeem"),
        (None, None, None),
        (None, None, None),
    ]

    # Back down: a natural key written since goes back where the release before looks for
    # it, unless a client's key took that string meanwhile.
    with old_schema.begin() as conn:
        conn.execute(text("UPDATE ledger_transactions SET natural_key = 'expire:7' "
                          "WHERE idempotency_key IS NULL AND type = 'adjust'"))
        conn.execute(text("UPDATE ledger_transactions SET natural_key = 'expire:99' "
                          "WHERE idempotency_key IS NULL AND type = 'bonus'"))
    cfg = alembic_config(old_schema.url.render_as_string(hide_password=False))
    with old_schema.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0010")
    with old_schema.connect() as conn:
        keys = [r[0] for r in conn.execute(text(
            "SELECT idempotency_key FROM ledger_transactions ORDER BY id"))]
    assert keys[:10] == [key for _, key in entries[:10]]
    assert keys[10:] == ["expire:7", None]


def test_entries_keep_each_kind_of_key_in_its_column(api, session):
    program = api.program(bonuses={"actions": {"review": 25}})
    m = api.member(program["id"])
    api.post(f"/members/{m['id']}/actions", {"action": "review", "reference": "r-1"},
             headers={"Idempotency-Key": "A"})
    row = session.execute(select(LedgerTransaction.idempotency_key,
                                 LedgerTransaction.idempotency_operation,
                                 LedgerTransaction.natural_key)).one()
    session.rollback()
    assert tuple(row) == ("A", "action", f"action:{card_id(session, m)}:review:r-1")


def test_erasure_hashes_both_kinds_of_key(api, session):
    program = api.program(bonuses={"actions": {"review": 25}})
    m = api.member(program["id"])
    email = "anna.erased@example.test"
    assert api.post(f"/members/{m['id']}/actions", {"action": "review", "reference": email},
                    headers={"Idempotency-Key": f"crm-{email}"}).status_code == 201
    assert api.post(f"/members/{m['id']}/erase").status_code == 200
    keys = session.execute(select(LedgerTransaction.idempotency_key,
                                  LedgerTransaction.natural_key)).one()
    session.rollback()
    assert all(k.startswith("erased:") and email not in k for k in keys), keys
