"""A member's Apple pass, as a merchant and a customer get it through the service."""

from __future__ import annotations

import io
import json
import subprocess
import zipfile
from pathlib import Path

import pytest
from PIL import Image


def open_pass(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return {n: z.read(n) for n in z.namelist()}


def download(api, member):
    url = member["apple_pass_url"]
    assert url.startswith("https://wallet.example.test/passes/")
    return api.client.get(url.removeprefix("https://wallet.example.test"))


def test_member_gets_a_signed_pass_with_balance_and_web_service(app, api, tmp_path):
    program = api.program(tiers=[{"name": "Bronze", "threshold": 0}])
    member = api.member(program["id"], name="Анна Петрова")
    api.post(f"/members/{member['id']}/transactions", {"type": "earn", "points": 120})
    r = download(api, member)
    assert r.status_code == 200
    assert r.mimetype == "application/vnd.apple.pkpass"
    assert "no-store" in r.headers["Cache-Control"]
    assert r.headers["Content-Disposition"].startswith("attachment; filename=")
    assert ".pkpass" in r.headers["Content-Disposition"]
    files = open_pass(r.data)
    pj = json.loads(files["pass.json"])
    assert pj["serialNumber"] == member["serial_number"]
    assert pj["passTypeIdentifier"] == app.extensions["wallet"].settings.apple_pass_type_id
    assert pj["webServiceURL"] == "https://wallet.example.test/apple"
    assert len(pj["authenticationToken"]) >= 16
    assert pj["barcodes"][0]["message"] == member["card_number"]
    fields = {f["key"]: f for area in pj["storeCard"].values() for f in area}
    assert any(f.get("value") == 120 for f in fields.values())
    from wallet_service.apple import decode_strings

    strings = decode_strings(files["en.lproj/pass.strings"])
    ru = decode_strings(files["ru.lproj/pass.strings"])
    changes = [f["changeMessage"] for f in fields.values() if "changeMessage" in f]
    assert changes and all("%@" in strings[c] and "%@" in ru[c] for c in changes)
    assert "ru.lproj/pass.strings" in files and "en.lproj/pass.strings" in files

    # The signature verifies against the development WWDR stand-in the service generated.
    certs = Path(app.extensions["wallet"].settings.instance_path) / "certs"
    for name in ("manifest.json", "signature"):
        (tmp_path / name).write_bytes(files[name])
    verify = subprocess.run(
        ["openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in", str(tmp_path / "signature"),
         "-content", str(tmp_path / "manifest.json"), "-CAfile", str(certs / "wwdr.pem"),
         "-purpose", "any", "-out", "/dev/null"], capture_output=True, text=True)
    assert verify.returncode == 0, verify.stderr


def test_pass_link_is_not_guessable(api):
    member = api.member(api.program()["id"])
    token = member["apple_pass_url"].rsplit("/", 1)[1]
    assert len(token) >= 24
    assert str(member["id"]) != token and member["serial_number"] not in token
    assert api.client.get(f"/passes/{member['serial_number']}").status_code == 404
    assert api.client.get(f"/passes/{member['id']}").status_code == 404
    assert api.client.get("/passes/" + "A" * 32).status_code == 404


def test_pass_follows_the_balance(api):
    member = api.member(api.program()["id"])
    first = json.loads(open_pass(download(api, member).data)["pass.json"])
    api.post(f"/members/{member['id']}/transactions", {"type": "earn", "points": 75})
    second = json.loads(open_pass(download(api, member).data)["pass.json"])
    values = lambda pj: [f.get("value") for a in pj["storeCard"].values() for f in a]  # noqa: E731
    assert 0 in values(first) and 75 in values(second)


def test_unchanged_pass_is_signed_once(app, api):
    member = api.member(api.program()["id"])
    passes = app.extensions["wallet"].passes
    before = passes.signed
    a = download(api, member).data
    b = download(api, member).data
    assert a == b
    assert passes.signed == before + 1
    api.post(f"/members/{member['id']}/transactions", {"type": "earn", "points": 1})
    download(api, member)
    assert passes.signed == before + 2


def png(size, colour=(200, 30, 30, 255), fmt="PNG"):
    buf = io.BytesIO()
    Image.new("RGBA" if fmt == "PNG" else "RGB", size, colour[: 4 if fmt == "PNG" else 3]).save(
        buf, fmt)
    return buf.getvalue()


def test_uploaded_logo_replaces_the_template_logo(api):
    program = api.program()
    member = api.member(program["id"])
    before = open_pass(download(api, member).data)
    r = api.client.put(f"/api/v1/programs/{program['id']}/images/logo", data=png((1200, 300)),
                       headers={"Authorization": f"Bearer {api.key}", "Content-Type": "image/png"})
    assert r.status_code == 200, r.json
    assert set(r.json["files"]) == {"logo.png", "logo@2x.png", "logo@3x.png"}
    after = open_pass(download(api, member).data)
    assert after["logo@2x.png"] != before["logo@2x.png"]
    w, h = Image.open(io.BytesIO(after["logo@2x.png"])).size
    assert w <= 320 and h <= 100
    assert api.get(f"/members/{member['id']}").json["version"] == member["version"] + 1
    # Back to the template's logo.
    assert api.delete(f"/programs/{program['id']}/images/logo").status_code == 200
    assert open_pass(download(api, member).data)["logo@2x.png"] == before["logo@2x.png"]


def test_jpeg_strip_through_a_form_upload(api):
    program = api.program()
    r = api.client.put(
        f"/api/v1/programs/{program['id']}/images/strip",
        data={"file": (io.BytesIO(png((2000, 800), fmt="JPEG")), "strip.jpg")},
        headers={"Authorization": f"Bearer {api.key}"}, content_type="multipart/form-data")
    assert r.status_code == 200, r.json
    assert "strip@3x.png" in r.json["files"]


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"", "body"),
        (b"this is not an image", "image"),
        (png((10, 10))[:40], ""),
    ],
)
def test_bad_upload_is_400_and_changes_nothing(api, data, words):
    program = api.program()
    member = api.member(program["id"])
    r = api.client.put(f"/api/v1/programs/{program['id']}/images/icon", data=data,
                       headers={"Authorization": f"Bearer {api.key}", "Content-Type": "image/png"})
    assert r.status_code == 400
    assert r.json["errors"][0]["field"] == "icon"
    assert words in r.json["detail"]
    assert api.get(f"/members/{member['id']}").json["version"] == member["version"]


def test_upload_to_unknown_kind_or_other_merchant_is_404(api, other_api):
    theirs = other_api.program()
    headers = {"Authorization": f"Bearer {api.key}", "Content-Type": "image/png"}
    assert api.client.put(f"/api/v1/programs/{theirs['id']}/images/logo", data=png((100, 100)),
                          headers=headers).status_code == 404
    mine = api.program()
    assert api.client.put(f"/api/v1/programs/{mine['id']}/images/banner", data=png((100, 100)),
                          headers=headers).status_code == 404


def test_design_change_reaches_every_card(api):
    program = api.program()
    members = [api.member(program["id"], phone=f"+7912000000{i}") for i in range(3)]
    api.patch(f"/programs/{program['id']}", {"design": {"background_color": "#102030"}})
    for m in members:
        fresh = api.get(f"/members/{m['id']}").json
        assert fresh["version"] == m["version"] + 1
        pj = json.loads(open_pass(download(api, fresh).data)["pass.json"])
        assert pj["backgroundColor"] == "rgb(16, 32, 48)"
    # A PATCH that changes nothing does not touch the cards.
    api.patch(f"/programs/{program['id']}", {"design": {"background_color": "#102030"}})
    assert api.get(f"/members/{members[0]['id']}").json["version"] == members[0]["version"] + 1


def test_closed_card_is_void_and_takes_no_transactions(api):
    member = api.member(api.program()["id"])
    api.post(f"/members/{member['id']}/transactions", {"type": "earn", "points": 5})
    r = api.post(f"/members/{member['id']}/close")
    assert r.status_code == 200 and r.json["status"] == "closed"
    version = r.json["version"]
    assert api.post(f"/members/{member['id']}/close").json["version"] == version  # idempotent
    pj = json.loads(open_pass(download(api, member).data)["pass.json"])
    assert pj["voided"] is True
    r = api.post(f"/members/{member['id']}/transactions", {"type": "earn", "points": 5})
    assert r.status_code == 409
    assert api.get(f"/members/{member['id']}").json["balance"] == 5


def test_closing_another_merchants_card_is_404(api, other_api):
    theirs = other_api.member(other_api.program()["id"])
    assert api.post(f"/members/{theirs['id']}/close").status_code == 404
    assert other_api.get(f"/members/{theirs['id']}").json["status"] == "active"
