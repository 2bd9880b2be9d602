"""The join link as a QR code (SVG, PNG) and the printable posters."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET

import pytest
import segno
from markupsafe import escape
from PIL import Image

from wallet_service import i18n

SVG = "{http://www.w3.org/2000/svg}"


def module_matrix(png: bytes, scale: int, border: int = 4) -> list[list[bool]]:
    """The dark/light modules read back from the pixels of a rendered QR code."""
    image = Image.open(io.BytesIO(png)).convert("L")
    size = image.width // scale - 2 * border
    return [[image.getpixel(((border + x) * scale + scale // 2, (border + y) * scale + scale // 2))
             < 128 for x in range(size)] for y in range(size)]


def zbar_decode(png: bytes, tmp_path) -> str | None:
    if shutil.which("zbarimg") is None:
        return None
    path = tmp_path / "qr.png"
    path.write_bytes(png)
    out = subprocess.run(["zbarimg", "--raw", "-q", str(path)], capture_output=True, text=True,
                         check=True)
    return out.stdout.strip()


def test_qr_png_encodes_the_join_link(api, tmp_path):
    program = api.program()
    r = api.get(f"/programs/{program['id']}/qr.png")
    assert r.status_code == 200 and r.mimetype == "image/png"
    expected = segno.make(program["join_url"], error="q", micro=False)
    assert module_matrix(r.data, 10) == [[bool(v) for v in row] for row in expected.matrix]
    decoded = zbar_decode(r.data, tmp_path)
    assert decoded in (None, program["join_url"])
    big = api.get(f"/programs/{program['id']}/qr.png?scale=20")
    assert Image.open(io.BytesIO(big.data)).width == 2 * Image.open(io.BytesIO(r.data)).width
    assert api.get(f"/programs/{program['id']}/qr.png?scale=0").status_code == 422


def test_qr_png_is_readable_by_a_scanner(api, tmp_path):
    if shutil.which("zbarimg") is None:
        pytest.skip("zbarimg not installed (apt-get install zbar-tools)")
    program = api.program()
    png = api.get(f"/programs/{program['id']}/qr.png").data
    assert zbar_decode(png, tmp_path) == program["join_url"]


def test_qr_svg_encodes_the_join_link(api, tmp_path):
    program = api.program()
    r = api.get(f"/programs/{program['id']}/qr.svg")
    assert r.status_code == 200 and r.mimetype == "image/svg+xml"
    root = ET.fromstring(r.data)
    assert root.tag == f"{SVG}svg"
    assert root.find(f"{SVG}title").text == program["join_url"]
    expected = segno.make(program["join_url"], error="q", micro=False)
    side = (expected.symbol_size(scale=10, border=4))[0]
    assert root.get("width") == str(side) and root.get("height") == str(side)
    # Draw the SVG's dark lines back onto a grid and compare with the code of the join link.
    [line] = [p for p in root.iter(f"{SVG}path") if p.get("class") == "qrline"]
    modules = side // 10
    grid = [[False] * modules for _ in range(modules)]
    x = y = 0.0
    for cmd, a, b in re.findall(r"([Mmh])(-?[\d.]+)(?: (-?[\d.]+))?", line.get("d")):
        if cmd == "M":
            x, y = float(a), float(b)
        elif cmd == "m":
            x, y = x + float(a), y + float(b)
        else:
            for i in range(int(x), int(x + float(a))):
                grid[int(y)][i] = True
            x += float(a)
    inner = [row[4:-4] for row in grid[4:-4]]
    assert inner == [[bool(v) for v in row] for row in expected.matrix]


@pytest.mark.parametrize(("size", "page"), [("a6", "A6"), ("a4", "A4")])
def test_poster_is_branded_and_printable(api, size, page):
    program = api.program(name="Bean There", languages=["en", "ru"],
                          design={"background_color": "#104e8b", "logo_text": "Bean"})
    r = api.get(f"/programs/{program['id']}/poster?size={size}")
    assert r.status_code == 200 and r.mimetype == "text/html"
    html = r.get_data(as_text=True)
    assert f"size: {page} portrait" in html and "@media print" in html
    assert '<html lang="en">' in html
    assert "--bg: #104e8b" in html and "Bean" in html
    assert i18n.t("en", "poster_heading") in html
    assert str(escape(i18n.t("en", "poster_step_scan"))) in html
    assert i18n.t("ru", "poster_heading") in html  # the second language, smaller
    assert "<svg" in html and program["join_url"].split("://")[1] in html
    assert not re.search(r'(src|href)="https?://', html)  # self-contained, prints offline
    ru = api.get(f"/programs/{program['id']}/poster?size={size}&lang=ru").get_data(as_text=True)
    assert '<html lang="ru">' in ru and i18n.t("ru", "poster_step_add") in ru


def test_poster_in_the_programs_first_language_and_bad_sizes(api):
    program = api.program()
    html = api.get(f"/programs/{program['id']}/poster").get_data(as_text=True)
    assert '<html lang="ru">' in html and "size: A4" in html
    assert api.get(f"/programs/{program['id']}/poster?size=a3").status_code == 422


def test_public_poster_by_join_token(api, client):
    program = api.program(name="Public Beans")
    path = program["join_url"].removeprefix("https://wallet.example.test") + "/poster"
    r = client.get(path + "?size=a6")
    assert r.status_code == 200 and "Public Beans" in r.get_data(as_text=True)
    assert "size: A6" in r.get_data(as_text=True)
    assert "size: A4" in client.get(path + "?size=huge").get_data(as_text=True)
    assert client.get("/join/unknown/poster").status_code == 404


def test_posters_are_the_merchants_own(api, other_api, client):
    program = api.program()
    for tail in ("qr.svg", "qr.png", "poster"):
        path = f"/programs/{program['id']}/{tail}"
        assert other_api.get(path).status_code == 404
        assert client.get("/api/v1" + path).status_code == 401
        assert api.get(f"/programs/999999/{tail}").status_code == 404


def test_qr_operations_are_documented(client):
    paths = client.get("/api/v1/openapi.json").json["paths"]
    for tail in ("qr.svg", "qr.png", "poster"):
        assert "get" in paths[f"/programs/{{program_id}}/{tail}"]
