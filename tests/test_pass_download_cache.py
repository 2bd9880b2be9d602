"""Pass downloads at scale: each process keeps the stored passes it served in memory, keyed
by everything that makes a pass current, and answers conditional requests (``ETag`` /
``If-None-Match``, ``Last-Modified`` / ``If-Modified-Since``, apple-wallet spec §3.3) without
sending the pass again. A worker signs a batch of cards ahead of their push in a few
statements, and a design change or campaign bumps every card set-based."""

from __future__ import annotations

import io
import json
import zipfile

from apple_device import balance_of
from push_support import PASS_TYPE
from push_support import tokens_of
from sqlalchemy import event
from sqlalchemy import select
from sqlalchemy import update

from wallet_service.models import CardChange
from wallet_service.models import Device
from wallet_service.models import LoyaltyCard
from wallet_service.models import SignedPass
from wallet_service.services import apple as apple_cards
from wallet_service.services.apple import sign_ahead

BASE = "https://wallet.example.test"


def pass_json(data):
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return json.loads(archive.read("pass.json"))


def tamper_stored(app, member, data):
    """Overwrite the member's stored pass in the database behind the service's back."""
    with app.extensions["wallet"].sessions() as s:
        card_id = s.scalar(select(LoyaltyCard.id).where(LoyaltyCard.member_id == member["id"]))
        s.execute(update(SignedPass).where(SignedPass.card_id == card_id).values(data=data))
        s.commit()


def test_a_stored_pass_is_served_from_memory_the_second_time(app, api, client):
    member = api.member(api.program()["id"])
    path = member["apple_pass_url"].removeprefix(BASE)
    first = client.get(path)
    assert first.status_code == 200
    # The first download signed and stored it; the second reads the stored row: from then
    # on the process's cache has it, and the database's bytes are not read again.
    tamper_stored(app, member, b"stored, first read")
    assert client.get(path).data == b"stored, first read"
    tamper_stored(app, member, b"stored, never read")
    assert client.get(path).data == b"stored, first read"


def test_a_stored_pass_not_in_memory_comes_in_the_lookups_one_query(app, api, client,
                                                                   monkeypatch):
    """A storm of distinct cards after a design change: each download is one query, the
    pass's bytes coming with the card; the same card again moves no bytes from the
    database."""
    program = api.program()
    members = [api.member(program["id"], phone=f"+7 912 345-67-8{i}") for i in range(3)]
    paths = [m["apple_pass_url"].removeprefix(BASE) for m in members]
    state = app.extensions["wallet"]
    with state.sessions() as s:  # signed and stored as the worker does before a push
        for card in s.scalars(select(LoyaltyCard).where(
                LoyaltyCard.member_id.in_([m["id"] for m in members]))):
            state.passes.pass_bytes(s, card)
        s.commit()
    lookups: list[bool] = []  # each look-up: did it bring the pass's bytes?
    others: list[str] = []  # any other statement
    inside: list[int] = []
    real = apple_cards._first_row

    def looked_up(session, statement, params):
        lookups.append("signed_passes.data" in str(statement))
        inside.append(1)
        try:
            return real(session, statement, params)
        finally:
            inside.pop()

    def seen(conn, cursor, statement, parameters, context, executemany):
        if not inside and not statement.startswith("BEGIN"):  # SQLite's BEGIN IMMEDIATE
            others.append(statement)

    monkeypatch.setattr(apple_cards, "_first_row", looked_up)
    event.listen(state.engine, "before_cursor_execute", seen)
    try:
        for path in paths:
            assert client.get(path).status_code == 200
        assert lookups == [True, True, True] and others == []
        lookups.clear()
        assert client.get(paths[0]).status_code == 200
        assert lookups == [False] and others == []
    finally:
        event.remove(state.engine, "before_cursor_execute", seen)


def test_the_cache_never_serves_a_version_that_is_no_longer_current(app, api, client):
    program = api.program()
    member = api.member(program["id"])
    path = member["apple_pass_url"].removeprefix(BASE)
    client.get(path)
    client.get(path)  # now in the cache
    api.post(f"/members/{member['id']}/transactions", {"type": "earn", "points": 5})
    assert balance_of(pass_json(client.get(path).data)) == 5
    assert api.patch(f"/programs/{program['id']}",
                     {"design": {"background_color": "#102030"}}).status_code == 200
    after = pass_json(client.get(path).data)
    assert after["backgroundColor"] == "rgb(16, 32, 48)"
    assert balance_of(after) == 5


def test_etag_and_if_none_match_on_both_download_routes(app, api, client):
    member = api.member(api.program()["id"])
    token = tokens_of(app)[member["serial_number"]]
    apple = f"/apple/v1/passes/{PASS_TYPE}/{member['serial_number']}"
    auth = {"Authorization": f"ApplePass {token}"}
    link = member["apple_pass_url"].removeprefix(BASE)
    first = client.get(apple, headers=auth)
    etag = first.headers["ETag"]
    assert first.status_code == 200 and etag.startswith('"') and first.data
    assert client.get(link).headers["ETag"] == etag  # one version, one tag
    for path, headers in ((apple, auth), (link, {})):
        same = client.get(path, headers={**headers, "If-None-Match": etag})
        assert same.status_code == 304 and same.data == b""
        assert same.headers["ETag"] == etag
        listed = client.get(path, headers={**headers, "If-None-Match": f'"other", {etag}'})
        assert listed.status_code == 304
        other = client.get(path, headers={**headers, "If-None-Match": '"other"'})
        assert other.status_code == 200 and other.data == first.data
    # If-None-Match wins over If-Modified-Since (RFC 9110 §13.2.2).
    stale = client.get(apple, headers={**auth, "If-None-Match": '"other"',
                                       "If-Modified-Since": first.headers["Last-Modified"]})
    assert stale.status_code == 200
    # The link answers If-Modified-Since as the web service does.
    since = client.get(link, headers={"If-Modified-Since": first.headers["Last-Modified"]})
    assert since.status_code == 304
    api.post(f"/members/{member['id']}/transactions", {"type": "earn", "points": 3})
    changed = client.get(apple, headers={**auth, "If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag
    assert balance_of(pass_json(changed.data)) == 3
    # A wrong token is refused before any condition is looked at.
    wrong = client.get(apple, headers={"Authorization": "ApplePass wrong", "If-None-Match": etag})
    assert wrong.status_code == 401


def test_signing_ahead_stores_each_card_once_and_drops_what_it_supersedes(app, api, client):
    program = api.program()
    members = [api.member(program["id"], phone=f"+7 916 000-00-0{i}") for i in range(3)]
    api.post(f"/programs/{program['id']}/coupons",
             {"title": "Coffee", "segment": {"member_ids": [members[0]["id"]]}})
    for m in members:  # every card has a stored pass of its current version
        client.get(m["apple_pass_url"].removeprefix(BASE))
    assert api.patch(f"/programs/{program['id']}",
                     {"design": {"background_color": "#203040"}}).status_code == 200
    tokens = tokens_of(app)
    for i, m in enumerate(members):  # registered through the web service, as phones do
        assert client.post(f"/apple/v1/devices/dev-{i}/registrations/{PASS_TYPE}/"
                           f"{m['serial_number']}", json={"pushToken": f"{i:064x}"},
                           headers={"Authorization": f"ApplePass {tokens[m['serial_number']]}"}
                           ).status_code == 201
    state = app.extensions["wallet"]
    with state.sessions() as s:
        device_ids = s.scalars(select(Device.id)).all()
        assert sign_ahead(s, state.passes, device_ids) == 3
        s.commit()
        assert sign_ahead(s, state.passes, device_ids) == 0  # all signed now
        rows = s.execute(select(SignedPass.card_id, SignedPass.data)).all()
        s.commit()
    assert len(rows) == 3 and len({card for card, _ in rows}) == 3  # older ones dropped
    for m in members:
        data = client.get(m["apple_pass_url"].removeprefix(BASE)).data
        assert pass_json(data)["backgroundColor"] == "rgb(32, 48, 64)"
        assert data in {d for _, d in rows}  # served what the batch stored
    coupon = pass_json(client.get(members[0]["apple_pass_url"].removeprefix(BASE)).data)
    assert "Coffee" in json.dumps(coupon, ensure_ascii=False)


def cards_of(app, program_id):
    with app.extensions["wallet"].sessions() as s:
        return {c.id: (c.version, c.last_modified) for c in s.scalars(
            select(LoyaltyCard).where(LoyaltyCard.program_id == program_id))}


def test_a_design_change_bumps_every_card_once_with_its_own_last_modified(app, api):
    program = api.program()
    members = [api.member(program["id"], phone=f"+7 916 000-00-1{i}") for i in range(4)]
    # One card changed just now: its next Last-Modified must come after this second.
    api.post(f"/members/{members[0]['id']}/transactions", {"type": "earn", "points": 1})
    before = cards_of(app, program["id"])
    with app.extensions["wallet"].sessions() as s:
        s.execute(CardChange.__table__.delete())
        s.commit()
    assert api.patch(f"/programs/{program['id']}",
                     {"design": {"background_color": "#304050"}}).status_code == 200
    after = cards_of(app, program["id"])
    for card_id, (version, modified) in before.items():
        assert after[card_id][0] == version + 1
        assert after[card_id][1] > modified
        assert after[card_id][1].microsecond == 0
    with app.extensions["wallet"].sessions() as s:
        changes = s.execute(select(CardChange.card_id, CardChange.version)).all()
    assert sorted(changes) == sorted((cid, v) for cid, (v, _) in after.items())
