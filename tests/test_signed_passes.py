"""A card version's pass is signed once for every process and kept in the database: the
worker signs new versions before their push goes out, and downloads serve the stored file
(through the Apple web service and the download link) instead of signing it again."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
from apns_standin import ApnsStandIn
from apple_device import balance_of
from push_support import PASS_TYPE
from push_support import WorkerFactory
from push_support import register
from sqlalchemy import func
from sqlalchemy import select

from wallet_service.models import LoyaltyCard
from wallet_service.models import LoyaltyProgram
from wallet_service.models import SignedPass
from wallet_service.services.apple import PassFactory
from wallet_service.signing import SigningProcesses


@pytest.fixture
def apns(apns_certs):
    with ApnsStandIn(certs=apns_certs, topic=PASS_TYPE) as standin:
        yield standin


@pytest.fixture
def worker_with_signer(app, apns):
    """A worker with a pass factory of its own, as in its own process."""
    factory = WorkerFactory(app, apns)

    def make():
        worker = factory()
        worker.pass_factory = PassFactory(worker.settings)
        return worker

    yield make
    factory.close()


def stored(app, member):
    with app.extensions["wallet"].sessions() as s:
        return s.execute(
            select(SignedPass.version, SignedPass.data)
            .join(LoyaltyCard, LoyaltyCard.id == SignedPass.card_id)
            .where(LoyaltyCard.member_id == member["id"])
        ).all()


def card_of(session, member):
    return session.scalar(select(LoyaltyCard).where(LoyaltyCard.member_id == member["id"]))


def pass_json(data):
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return json.loads(archive.read("pass.json"))


def test_a_pass_the_worker_signed_is_downloaded_without_signing_again(app, api, client,
                                                                       worker_with_signer):
    member = api.member(api.program()["id"])
    (phone,), tokens = register(app, client, [member])
    api.post(f"/members/{member['id']}/transactions", {"type": "earn", "points": 42})
    web = app.extensions["wallet"].passes
    before = web.signed
    worker = worker_with_signer()
    assert worker.run_once() > 0
    assert worker.pass_factory.signed == 1
    [(version, data)] = stored(app, member)
    assert phone.sync(tokens) == [member["serial_number"]]
    assert balance_of(phone.passes[member["serial_number"]]) == 42
    link = client.get(member["apple_pass_url"].removeprefix("https://wallet.example.test"))
    assert link.status_code == 200 and link.data == data
    assert web.signed == before  # both downloads served the worker's file
    # A conditional request for the version the phone has is still answered 304.
    again = phone.fetch(member["serial_number"], tokens[member["serial_number"]])
    assert again.status_code == 304


def test_two_processes_sign_a_version_once(app, api, session):
    member = api.member(api.program()["id"])
    settings = app.extensions["wallet"].settings
    one, two = PassFactory(settings), PassFactory(settings)
    card = card_of(session, member)
    first = one.pass_bytes(session, card)
    session.commit()
    card = card_of(session, member)
    assert two.pass_bytes(session, card) == first
    found = two.current(session, LoyaltyCard.id == card.id)
    assert found is not None and found[1] == first
    assert (one.signed, two.signed) == (1, 0)
    # A process that signed the same version meanwhile stores nothing over the first.
    two._store(session, card, session.get_one(LoyaltyProgram, card.program_id).updated_at,
               b"signed meanwhile")
    session.commit()
    assert [d for _, d in stored(app, member)] == [first]


def test_a_new_version_supersedes_the_stored_pass(app, api, client):
    member = api.member(api.program()["id"])
    path = member["apple_pass_url"].removeprefix("https://wallet.example.test")
    old = client.get(path).data
    [(v1, data)] = stored(app, member)
    assert data == old
    api.post(f"/members/{member['id']}/transactions", {"type": "earn", "points": 7})
    new = client.get(path).data
    assert balance_of(pass_json(new)) == 7
    [(v2, data)] = stored(app, member)
    assert v2 == v1 + 1 and data == new


def test_erasure_deletes_the_stored_passes_holding_the_name(app, api, client):
    member = api.member(api.program()["id"], name="Zinaida Storedname")
    path = member["apple_pass_url"].removeprefix("https://wallet.example.test")
    assert "Zinaida Storedname" in json.dumps(pass_json(client.get(path).data),
                                              ensure_ascii=False)
    assert len(stored(app, member)) == 1
    assert api.post(f"/members/{member['id']}/erase").status_code == 200
    assert stored(app, member) == []
    void = json.dumps(pass_json(client.get(path).data), ensure_ascii=False)
    assert "Zinaida Storedname" not in void
    assert all(b"Storedname" not in d for _, d in stored(app, member))


def test_a_design_change_is_signed_once_per_card_before_the_push(app, api, client,
                                                                 worker_with_signer):
    program = api.program()
    members = [api.member(program["id"], phone=f"+7 916 000-00-0{i}") for i in range(3)]
    (phone,), tokens = register(app, client, members)
    web = app.extensions["wallet"].passes
    before = web.signed
    assert api.patch(f"/programs/{program['id']}",
                     {"design": {"background_color": "#102030"}}).status_code == 200
    worker = worker_with_signer()
    assert worker.run_once() > 0
    assert worker.pass_factory.signed == 3
    assert sorted(phone.sync(tokens)) == sorted(m["serial_number"] for m in members)
    assert {phone.passes[m["serial_number"]]["backgroundColor"] for m in members} == {
        "rgb(16, 32, 48)"}
    assert web.signed == before
    assert worker.run_once() == 0 and worker.pass_factory.signed == 3
    with app.extensions["wallet"].sessions() as s:
        assert s.scalar(select(func.count()).select_from(SignedPass)) == 3


def test_a_signing_process_signs_a_large_batch_beside_its_pushes(app, api, client,
                                                                 worker_with_signer):
    """A batch larger than ``SIGN_BEFORE_PUSH`` goes out at once; a process of its own
    signs and stores its passes, not the worker's, and downloads serve them."""
    program = api.program()
    members = [api.member(program["id"], phone=f"+7 916 000-00-1{i}") for i in range(2)]
    phones, tokens = register(app, client, members, n_devices=3)
    web = app.extensions["wallet"].passes
    before = web.signed
    assert api.patch(f"/programs/{program['id']}",
                     {"design": {"background_color": "#102030"}}).status_code == 200
    worker = worker_with_signer()
    worker.SIGN_BEFORE_PUSH = 2
    worker.signing = SigningProcesses(worker.settings, 1)
    try:
        assert worker.deliver() == 3
        assert worker.signing.wait(120)
        assert worker.signing.signed == 2
    finally:
        worker.signing.close()
    assert worker.pass_factory.signed == 0
    for phone in phones:
        assert sorted(phone.sync(tokens)) == sorted(m["serial_number"] for m in members)
        assert {phone.passes[m["serial_number"]]["backgroundColor"] for m in members} == {
            "rgb(16, 32, 48)"}
    assert web.signed == before
