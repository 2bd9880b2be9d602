"""The .pkpass archive: layout, manifest, signature and pass.json rules (spec §1, §2, §6)."""

from __future__ import annotations

import codecs
import hashlib
import json
import re
import shutil
import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs7
from pass_helpers import TEMPLATE_NAMES
from pass_helpers import make_content
from pass_helpers import make_design
from PIL import Image

from wallet_service.apple import CardContent
from wallet_service.apple import Design
from wallet_service.apple import SignerCredentials
from wallet_service.apple import assets as apple_assets
from wallet_service.apple import build_pkpass
from wallet_service.apple import decode_strings
from wallet_service.apple import prepare_image
from wallet_service.apple import sign_manifest
from wallet_service.errors import ConfigurationError

W3C_DATE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:\d\d)$")
RGB = re.compile(r"^rgb\((\d{1,3}), (\d{1,3}), (\d{1,3})\)$")
AREAS = ("headerFields", "primaryFields", "secondaryFields", "auxiliaryFields", "backFields")
IMAGE_POINTS = {"icon": (29, 29), "strip": (375, 123)}
OpenPkpass = Callable[[bytes], dict[str, bytes]]


def assert_valid_pass_json(raw: bytes) -> dict[str, Any]:
    """The §6.2 checklist for pass.json; returns the parsed document."""
    assert not raw.startswith(codecs.BOM_UTF8), "pass.json must not start with a BOM (§2.13)"
    doc = json.loads(raw.decode("utf-8"))
    assert doc["formatVersion"] == 1 and type(doc["formatVersion"]) is int
    for key in (
        "passTypeIdentifier",
        "serialNumber",
        "teamIdentifier",
        "organizationName",
        "description",
    ):
        assert isinstance(doc[key], str) and doc[key], key
    styles = {"boardingPass", "coupon", "eventTicket", "generic", "storeCard"} & set(doc)
    assert styles == {"storeCard"}
    card = doc["storeCard"]
    assert set(card) <= set(AREAS)
    assert len(card.get("headerFields", [])) <= 3
    assert len(card.get("primaryFields", [])) <= 1
    assert len(card.get("secondaryFields", [])) + len(card.get("auxiliaryFields", [])) <= 4
    keys = [f["key"] for area in AREAS for f in card.get(area, [])]
    assert len(keys) == len(set(keys)), f"duplicate field keys: {keys}"
    for area in AREAS:
        for field in card.get(area, []):
            assert isinstance(field["key"], str) and "value" in field
            if "changeMessage" in field:
                assert "%@" in field["changeMessage"] or "." in field["changeMessage"]
            if "currencyCode" in field or "numberStyle" in field:
                assert isinstance(field["value"], int | float)
            for date_key in ("value",):
                if "dateStyle" in field:
                    assert W3C_DATE.match(field[date_key])
    for colour_key in ("backgroundColor", "foregroundColor", "labelColor"):
        match = RGB.match(doc[colour_key])
        assert match and all(0 <= int(p) <= 255 for p in match.groups()), colour_key
    for date_key in ("expirationDate", "relevantDate"):
        if date_key in doc:
            assert W3C_DATE.match(doc[date_key]), date_key
    assert isinstance(doc["barcodes"], list) and doc["barcodes"]
    for code in doc["barcodes"] + [doc["barcode"]]:
        assert code["format"] in {
            "PKBarcodeFormatQR",
            "PKBarcodeFormatPDF417",
            "PKBarcodeFormatAztec",
            "PKBarcodeFormatCode128",
        }
        assert code["messageEncoding"] == "iso-8859-1"
    assert doc["barcode"]["format"] != "PKBarcodeFormatCode128"
    assert len(doc.get("locations", [])) <= 10
    for location in doc.get("locations", []):
        assert isinstance(location["latitude"], float) and isinstance(location["longitude"], float)
    assert ("webServiceURL" in doc) == ("authenticationToken" in doc)
    if "authenticationToken" in doc:
        assert len(doc["authenticationToken"]) >= 16
    return doc


def assert_valid_archive(files: dict[str, bytes]) -> None:
    """Files only, at the root or in .lproj folders, nothing hidden, hashes right (§1.1, §1.2)."""
    for name in files:
        assert not name.endswith("/"), f"directory entry {name}"
        assert (
            not name.startswith(("/", "__MACOSX")) and "/." not in name and not name.startswith(".")
        )
        assert "\\" not in name
        parts = name.split("/")
        assert len(parts) == 1 or (len(parts) == 2 and parts[0].endswith(".lproj")), name
    manifest = json.loads(files["manifest.json"])
    assert set(manifest) == set(files) - {"manifest.json", "signature"}
    for name, digest in manifest.items():
        assert digest == hashlib.sha1(files[name]).hexdigest(), name
        assert re.fullmatch(r"[0-9a-f]{40}", digest)
    assert {"pass.json", "icon.png", "icon@2x.png", "icon@3x.png"} <= set(files)


def openssl_verify(
    tmp_path: Path, files: dict[str, bytes], ca_file: Path
) -> subprocess.CompletedProcess[str]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl CLI not installed")
    (tmp_path / "manifest.json").write_bytes(files["manifest.json"])
    (tmp_path / "signature").write_bytes(files["signature"])
    return subprocess.run(
        [
            "openssl",
            "cms",
            "-verify",
            "-binary",
            "-inform",
            "DER",
            "-in",
            str(tmp_path / "signature"),
            "-content",
            str(tmp_path / "manifest.json"),
            "-CAfile",
            str(ca_file),
            "-purpose",
            "any",
            "-out",
            str(tmp_path / "verified"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.parametrize("name", TEMPLATE_NAMES)
def test_every_template_makes_a_valid_signed_pass(
    name: str,
    signer: SignerCredentials,
    dev_certs: apple_assets.DevCertPaths,
    open_pkpass: OpenPkpass,
    tmp_path: Path,
) -> None:
    data = build_pkpass(apple_assets.load_template(name), make_design(), make_content(), signer)
    files = open_pkpass(data)
    assert_valid_archive(files)
    assert_valid_pass_json(files["pass.json"])
    result = openssl_verify(tmp_path, files, dev_certs.wwdr_certificate)
    assert result.returncode == 0, result.stderr
    assert "Verification successful" in result.stderr
    assert (tmp_path / "verified").read_bytes() == files["manifest.json"]


def test_signature_fails_for_a_changed_manifest(
    signer: SignerCredentials,
    dev_certs: apple_assets.DevCertPaths,
    open_pkpass: OpenPkpass,
    tmp_path: Path,
) -> None:
    files = open_pkpass(
        build_pkpass(apple_assets.load_template("points"), make_design(), make_content(), signer)
    )
    files["manifest.json"] = files["manifest.json"].replace(b'"pass.json":"', b'"pass.json":"0', 1)
    assert openssl_verify(tmp_path, files, dev_certs.wwdr_certificate).returncode != 0


def test_signature_holds_signer_and_wwdr_and_signing_time(
    signer: SignerCredentials, open_pkpass: OpenPkpass
) -> None:
    files = open_pkpass(
        build_pkpass(apple_assets.load_template("points"), make_design(), make_content(), signer)
    )
    certificates = pkcs7.load_der_pkcs7_certificates(files["signature"])
    assert len(certificates) == 2
    assert {c.subject for c in certificates} == {
        signer.certificate.subject,
        signer.wwdr_certificate.subject,
    }
    wwdr = next(c for c in certificates if c.subject == signer.wwdr_certificate.subject)
    assert wwdr.subject == signer.certificate.issuer
    signature = files["signature"]
    signing_time = x509.ObjectIdentifier("1.2.840.113549.1.9.5").dotted_string
    for oid in (
        signing_time,
        "1.2.840.113549.1.9.3",
        "1.2.840.113549.1.9.4",
        "2.16.840.1.101.3.4.2.1",
    ):
        assert _der_oid(oid) in signature, f"missing {oid}"
    # Detached: the manifest bytes are not inside the signature.
    assert files["manifest.json"] not in signature


def test_signature_verifies_a_manifest_with_newlines(
    signer: SignerCredentials, dev_certs: apple_assets.DevCertPaths, tmp_path: Path
) -> None:
    manifest = b'{\n  "pass.json": "00"\n}\n'
    files = {"manifest.json": manifest, "signature": sign_manifest(manifest, signer)}
    assert openssl_verify(tmp_path, files, dev_certs.wwdr_certificate).returncode == 0


def _der_oid(dotted: str) -> bytes:
    numbers = [int(n) for n in dotted.split(".")]
    body = bytearray([numbers[0] * 40 + numbers[1]])
    for number in numbers[2:]:
        chunk = [number & 0x7F]
        number >>= 7
        while number:
            chunk.insert(0, 0x80 | (number & 0x7F))
            number >>= 7
        body.extend(chunk)
    return bytes([0x06, len(body)]) + bytes(body)


def test_localization_files_are_utf16_with_identical_keys(
    signer: SignerCredentials, open_pkpass: OpenPkpass
) -> None:
    files = open_pkpass(
        build_pkpass(apple_assets.load_template("points"), make_design(), make_content(), signer)
    )
    lproj = {n: d for n, d in files.items() if n.endswith(".lproj/pass.strings")}
    assert set(lproj) == {"en.lproj/pass.strings", "ru.lproj/pass.strings"}
    decoded = {}
    for name, data in lproj.items():
        assert data.startswith(codecs.BOM_UTF16_LE)
        decoded[name] = decode_strings(data)
        assert data[2:].decode("utf-16-le")  # really UTF-16
    assert decoded["en.lproj/pass.strings"].keys() == decoded["ru.lproj/pass.strings"].keys()
    assert decoded["ru.lproj/pass.strings"]["points.label"] == "Баллы"
    doc = json.loads(files["pass.json"])
    labels = {f["label"] for area in AREAS for f in doc["storeCard"].get(area, [])}
    changes = {
        f["changeMessage"]
        for area in AREAS
        for f in doc["storeCard"].get(area, [])
        if "changeMessage" in f
    }
    for strings in decoded.values():
        assert labels | changes <= strings.keys()
        assert all("%@" in strings[key] for key in changes)


def test_only_chosen_languages_are_shipped(
    signer: SignerCredentials, open_pkpass: OpenPkpass
) -> None:
    files = open_pkpass(
        build_pkpass(
            apple_assets.load_template("points"),
            make_design(languages=("ru",)),
            make_content(),
            signer,
        )
    )
    assert [n for n in files if n.endswith("pass.strings")] == ["ru.lproj/pass.strings"]


def test_template_images_have_exact_sizes(
    signer: SignerCredentials, open_pkpass: OpenPkpass
) -> None:
    import io

    files = open_pkpass(
        build_pkpass(apple_assets.load_template("stamps"), make_design(), make_content(), signer)
    )
    for kind, (width, height) in IMAGE_POINTS.items():
        for scale, suffix in ((1, ""), (2, "@2x"), (3, "@3x")):
            with Image.open(io.BytesIO(files[f"{kind}{suffix}.png"])) as picture:
                assert picture.format == "PNG"
                assert picture.size == (width * scale, height * scale)
    with Image.open(io.BytesIO(files["logo.png"])) as logo:
        assert logo.width <= 160 and logo.height <= 50


def test_design_images_replace_the_template_kind(
    signer: SignerCredentials, open_pkpass: OpenPkpass
) -> None:
    import io

    upload = io.BytesIO()
    Image.new("RGBA", (400, 100), (200, 30, 30, 255)).save(upload, "PNG")
    logo_files = prepare_image("logo", upload.getvalue())
    template = apple_assets.load_template("points")
    files = open_pkpass(
        build_pkpass(template, make_design(images=logo_files), make_content(), signer)
    )
    for name, data in logo_files.items():
        assert files[name] == data
    assert files["strip.png"] == template.images["strip.png"].data
    assert files["logo.png"] != template.images["logo.png"].data


def test_passes_differ_only_in_member_content(
    signer: SignerCredentials, open_pkpass: OpenPkpass
) -> None:
    template = apple_assets.load_template("points")
    design = make_design()
    first = open_pkpass(build_pkpass(template, design, make_content(), signer))
    second = open_pkpass(
        build_pkpass(
            template, design, make_content(serial_number="another-serial-0001", balance=9), signer
        )
    )
    changed = {name for name in first if first[name] != second[name]}
    assert changed == {"pass.json", "manifest.json", "signature"}


def test_concurrent_builds_do_not_share_state(
    signer: SignerCredentials, open_pkpass: OpenPkpass
) -> None:
    template = apple_assets.load_template("points")
    design = make_design()
    contents = [
        make_content(serial_number=f"serial-{i:016d}", balance=i, member_name=f"M{i}")
        for i in range(40)
    ]
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda c: build_pkpass(template, design, c, signer), contents))
    for content, data in zip(contents, results, strict=True):
        doc = json.loads(open_pkpass(data)["pass.json"])
        assert doc["serialNumber"] == content.serial_number
        assert doc["storeCard"]["primaryFields"][0]["value"] == content.balance
        assert doc["storeCard"]["secondaryFields"][0]["value"] == content.member_name


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"pass_type_identifier": "pass.com.example.other"}, "pass_type_identifier"),
        ({"team_identifier": "ZZZZZ99999"}, "team_identifier"),
    ],
)
def test_identifiers_must_match_the_certificate(
    signer: SignerCredentials, change: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        build_pkpass(
            apple_assets.load_template("points"), make_design(), make_content(**change), signer
        )


def test_closed_card_is_voided_with_w3c_expiry(
    signer: SignerCredentials, open_pkpass: OpenPkpass
) -> None:
    import datetime as dt

    moscow = dt.timezone(dt.timedelta(hours=3))
    content = make_content(
        voided=True, expiration_date=dt.datetime(2025, 3, 1, 12, 30, tzinfo=moscow)
    )
    doc = assert_valid_pass_json(
        open_pkpass(
            build_pkpass(apple_assets.load_template("stamps"), make_design(), content, signer)
        )["pass.json"]
    )
    assert doc["voided"] is True
    assert doc["expirationDate"] == "2025-03-01T09:30:00Z"
    assert doc["storeCard"]["auxiliaryFields"][0]["value"] == "2025-03-01T09:30:00Z"


def test_design_and_content_are_frozen(design: Design, content: CardContent) -> None:
    with pytest.raises(AttributeError):
        design.organization_name = "x"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        content.balance = 1  # type: ignore[misc]
    assert hash(design) == hash(replace(design))
