"""Stamp cards through the merchant API: wrapping over the reward, limits, the card."""

from __future__ import annotations

import io
import json
import zipfile

import pytest

from wallet_service.apple import decode_strings


def pass_files(api, member):
    r = api.client.get(member["apple_pass_url"].removeprefix("https://wallet.example.test"))
    assert r.status_code == 200
    with zipfile.ZipFile(io.BytesIO(r.data)) as z:
        return {n: z.read(n) for n in z.namelist()}


def fields(files, lang="en"):
    """Every field of the pass by key, its texts as a phone in ``lang`` shows them (through
    that language's pass.strings; the pass's only language when it has one)."""
    pj = json.loads(files["pass.json"])
    lproj = [n for n in files if n.endswith(".lproj/pass.strings")]
    name = f"{lang}.lproj/pass.strings"
    strings = decode_strings(files[name if name in lproj else lproj[0]]) if lproj else {}

    def shown(field):
        return {k: strings.get(v, v) if k in ("label", "value") and isinstance(v, str) else v
                for k, v in field.items()}

    return {f["key"]: shown(f) for area in pj["storeCard"].values() for f in area}


@pytest.fixture
def program(api):
    return api.program(kind="stamps", stamps={"goal": 6, "reward": "a free coffee",
                                              "max_per_window": None})


def test_stamp_program_defaults_to_the_stamps_template(api, program):
    assert program["template"] == "stamps"
    assert program["stamps"]["goal"] == 6


def test_stamps_wrap_over_the_reward(api, program):
    m = api.member(program["id"])
    r = api.post(f"/members/{m['id']}/stamps", {"count": 5})
    assert r.status_code == 201 and r.json["balance"] == 0
    r = api.post(f"/members/{m['id']}/stamps", {"count": 2})
    assert r.status_code == 201
    t = r.json["transaction"]
    assert t["stamps"] == 2 and t["points"] == 1 and t["details"]["rewards"] == 1
    got = api.get(f"/members/{m['id']}").json
    assert got["stamps"] == 1 and got["balance"] == 1
    # Twelve more stamps: two more rewards, the count stays 1.
    api.post(f"/members/{m['id']}/stamps", {"count": 12})
    got = api.get(f"/members/{m['id']}").json
    assert got["stamps"] == 1 and got["balance"] == 3
    # Claiming a reward takes one; a fourth is not there.
    r = api.post(f"/members/{m['id']}/transactions", {"type": "redeem", "points": 3})
    assert r.status_code == 201 and r.json["balance"] == 0
    r = api.post(f"/members/{m['id']}/transactions", {"type": "redeem", "points": 1})
    assert r.status_code == 409


def test_stamp_limit_per_window(api):
    program = api.program(kind="stamps", stamps={"goal": 6, "max_per_window": 1,
                                                 "window_minutes": 60})
    m = api.member(program["id"])
    r = api.post(f"/members/{m['id']}/transactions", {"type": "earn", "amount": "250"})
    assert r.json["transaction"]["stamps"] == 1
    # A second purchase within the hour is recorded but earns no stamp.
    r = api.post(f"/members/{m['id']}/transactions", {"type": "earn", "amount": "250"})
    assert r.status_code == 201
    assert r.json["transaction"]["stamps"] == 0
    assert r.json["transaction"]["details"]["stamp_limit"] == 1
    r = api.post(f"/members/{m['id']}/stamps", {"count": 1})
    assert r.status_code == 409 and r.json["errors"][0]["field"] == "stamps"
    got = api.get(f"/members/{m['id']}").json
    assert got["stamps"] == 1 and got["visits"] == 2


def test_points_verbs_do_not_fit_a_stamp_program(api, program):
    m = api.member(program["id"])
    r = api.post(f"/members/{m['id']}/transactions", {"type": "earn", "points": 5})
    assert r.status_code == 422 and r.json["errors"][0]["field"] == "points"
    points = api.member(api.program()["id"], phone="+7 912 000-00-01")
    r = api.post(f"/members/{points['id']}/stamps", {"count": 1})
    assert r.status_code == 422 and r.json["errors"][0]["field"] == "stamps"


def test_the_card_shows_stamps_and_a_strip_shared_per_count(api, program):
    a = api.member(program["id"])
    b = api.member(program["id"], phone="+7 912 000-00-02")
    c = api.member(program["id"], phone="+7 912 000-00-03")
    for m in (a, b):
        api.post(f"/members/{m['id']}/stamps", {"count": 4})
    api.post(f"/members/{c['id']}/stamps", {"count": 1})
    fa, fb, fc = pass_files(api, a), pass_files(api, b), pass_files(api, c)
    f = fields(fa)
    assert f["stamps"]["value"] == "4 / 6"
    assert f["reward_in"]["value"] == "2"
    assert "2" in f["progress"]["value"]
    assert "free coffee" in f["progress"]["value"] or "кофе" in f["progress"]["value"]
    assert fa["strip@2x.png"] == fb["strip@2x.png"]
    assert fa["strip@2x.png"] != fc["strip@2x.png"]
    from PIL import Image

    assert Image.open(io.BytesIO(fa["strip@3x.png"])).size == (1125, 369)


def test_stamp_refund_takes_back_the_reward_it_completed(api, program):
    m = api.member(program["id"])
    api.post(f"/members/{m['id']}/stamps", {"count": 5})
    sale = api.post(f"/members/{m['id']}/transactions", {"type": "earn", "amount": "300"}).json
    assert sale["transaction"]["points"] == 1  # the 6th stamp made a reward
    r = api.post(f"/members/{m['id']}/transactions",
                 {"type": "refund", "original_id": sale["transaction"]["id"]})
    assert r.status_code == 201
    assert r.json["transaction"]["details"]["rewards"] == -1
    got = api.get(f"/members/{m['id']}").json
    assert got["stamps"] == 5 and got["balance"] == 0 and got["stamp_debt"] == 0
