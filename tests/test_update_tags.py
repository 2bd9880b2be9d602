"""Update tags never lose an update: writers, sequencers and a polling device all at once.

On PostgreSQL (CI) the writers' and sequencers' transactions really interleave and commit
out of order; the device must still end with every card's final version, and must never
be sent a card that did not change.
"""

from __future__ import annotations

import datetime as dt
import random
import threading
import time

from apple_device import Device
from apple_device import balance_of
from sqlalchemy import select
from sqlalchemy import text

from wallet_service.models import LoyaltyCard
from wallet_service.services import outbox

CARDS = 12
WRITTEN = 8  # the last cards never change: the device must never be sent them
WRITERS = 4
EARNS = 40


def test_polling_device_ends_with_every_final_version(app, api, client, session):
    program = api.program()
    members = [api.member(program["id"], phone=f"+791200000{i:02d}") for i in range(CARDS)]
    tokens = dict(session.execute(select(LoyaltyCard.serial_number,
                                         LoyaltyCard.authentication_token)).all())
    session.commit()
    phone = Device(app.test_client(), "lib-storm", "ab" * 32)
    for m in members:
        assert phone.register(m["serial_number"], tokens[m["serial_number"]]).status_code == 201
    phone.sync(tokens)
    untouched = {m["serial_number"] for m in members[WRITTEN:]}

    sessions = app.extensions["wallet"].sessions
    stop = threading.Event()
    errors: list[BaseException] = []
    fetched_versions: dict[str, list[int]] = {}

    def guard(fn):
        def run(*args):
            try:
                fn(*args)
            except BaseException as exc:  # surfaced in the main thread
                errors.append(exc)
                stop.set()
        return run

    @guard
    def writer(seed: int) -> None:
        rng = random.Random(seed)
        c = app.test_client()
        headers = {"Authorization": f"Bearer {api.key}"}
        for _ in range(EARNS):
            m = rng.choice(members[:WRITTEN])
            r = c.post(f"/api/v1/members/{m['id']}/transactions",
                       json={"type": "earn", "points": rng.randint(1, 9)}, headers=headers)
            assert r.status_code == 201, r.json

    @guard
    def sequencer() -> None:
        while not stop.is_set():
            with sessions() as s:
                outbox.sequence_changes(s, now=dt.datetime.now(dt.UTC), debounce=dt.timedelta(0),
                                        limit=random.randint(1, 5))
                s.commit()

    @guard
    def poller() -> None:
        while not stop.is_set():
            for serial in phone.sync(tokens):
                assert serial not in untouched, serial  # never sent a card that did not change
                fetched_versions.setdefault(serial, []).append(balance_of(phone.passes[serial]))

    writers = [threading.Thread(target=writer, args=(i,)) for i in range(WRITERS)]
    helpers = [threading.Thread(target=sequencer), threading.Thread(target=sequencer),
               threading.Thread(target=poller)]
    for t in helpers + writers:
        t.start()
    for t in writers:
        t.join()
    # Let the sequencers drain, then stop everything and take a last look as Wallet would.
    deadline = time.monotonic() + 20  # not the wall clock, which can be stepped meanwhile
    while time.monotonic() < deadline and not errors:
        with sessions() as s:
            if not s.scalar(select(outbox.CHANGES.c.id).limit(1)):
                break
    stop.set()
    for t in helpers:
        t.join()
    assert not errors, errors[0]
    phone.sync(tokens)

    final = {m["serial_number"]: api.get(f"/members/{m['id']}").json["balance"] for m in members}
    assert {s: balance_of(p) for s, p in phone.passes.items()} == final
    # Balances a device saw for a card only ever grew (no stale version served after a newer).
    for serial, seen in fetched_versions.items():
        assert seen == sorted(seen), serial


def test_a_tag_the_previous_release_wrote_on_the_card_still_counts(app, api, session):
    """While the release before ``card_update_tags`` still serves beside this one, its
    sequencer writes tags on the card itself: a device must see those changes too, and its
    tag must never go back."""
    from sqlalchemy import update

    from wallet_service.models import CardUpdateTag

    program = api.program()
    first, second = (api.member(program["id"], phone=f"+7912000001{i}") for i in range(2))
    tokens = dict(session.execute(select(LoyaltyCard.serial_number,
                                         LoyaltyCard.authentication_token)).all())
    ids = dict(session.execute(select(LoyaltyCard.serial_number, LoyaltyCard.id)).all())
    first["card_id"], second["card_id"] = ids[first["serial_number"]], ids[second["serial_number"]]
    session.commit()
    phone = Device(app.test_client(), "lib-rolling", "cd" * 32)
    for m in (first, second):
        assert phone.register(m["serial_number"], tokens[m["serial_number"]]).status_code == 201
    assert sorted(phone.sync(tokens)) == sorted([first["serial_number"], second["serial_number"]])
    tag = int(phone.tag)

    # The previous release sequences a change of the first card: on the card.
    session.execute(update(LoyaltyCard).where(LoyaltyCard.id == first["card_id"])
                    .values(update_seq=tag + 5))
    session.commit()
    r = phone.changed(str(tag))
    assert r.status_code == 200
    assert r.json == {"serialNumbers": [first["serial_number"]], "lastUpdated": str(tag + 5)}
    # This release sequences a later change of the second card: in the table.
    session.add(CardUpdateTag(card_id=second["card_id"], update_seq=tag + 7))
    session.commit()
    r = phone.changed(str(tag + 5))
    assert r.json == {"serialNumbers": [second["serial_number"]], "lastUpdated": str(tag + 7)}
    assert phone.changed(str(tag + 7)).status_code == 204


def test_the_sequencer_never_waits_for_a_request_holding_the_card(app, api, session):
    """The tags live apart from the cards: a request that holds a card's row lock (a long
    batch, say) does not hold up the sequencing of that card's earlier change."""
    def is_postgres() -> bool:
        return bool(app.extensions["wallet"].engine.dialect.name == "postgresql")

    program = api.program()
    member = api.member(program["id"])
    member["card_id"] = session.scalar(select(LoyaltyCard.id).where(
        LoyaltyCard.serial_number == member["serial_number"]))
    session.commit()
    assert api.post(f"/members/{member['id']}/transactions",
                    {"type": "earn", "points": 5}).status_code == 201
    sessions = app.extensions["wallet"].sessions
    with sessions() as holder:
        holder.execute(select(LoyaltyCard.id).where(LoyaltyCard.id == member["card_id"])
                       .with_for_update())
        done = threading.Event()

        def sequence() -> None:
            with sessions() as s:
                if is_postgres():
                    s.execute(text("SET LOCAL lock_timeout = '3s'"))
                outbox.sequence_changes(s, now=dt.datetime.now(dt.UTC),
                                        debounce=dt.timedelta(0))
                s.commit()
            done.set()

        if is_postgres():
            worker = threading.Thread(target=sequence)
            worker.start()
            assert done.wait(10), "the sequencer waited for the card's row lock"
            worker.join()
        holder.rollback()
    if not is_postgres():  # SQLite has no row locks: the same, one after the other
        sequence()
    from wallet_service.models import CardUpdateTag
    assert session.get(CardUpdateTag, member["card_id"]).update_seq > 0
