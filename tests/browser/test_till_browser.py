"""The till in Debian's Chromium with a fake camera showing a real card's QR code: a manager
registers the phone as a till, the staff signs in with a PIN, the camera finds the card
(Chromium on Linux has no BarcodeDetector, so the vendored WebAssembly reader does), the
staff posts a purchase, and the pass and the push queue follow."""

from __future__ import annotations

import datetime as dt
import io
import json
import shutil
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import browser_support
import pytest
import segno
from api_support import Api
from api_support import make_merchant
from apple_device import Device
from apple_device import balance_of
from browser_support import CHROMIUM
from browser_support import CHROMIUM_ARGS
from browser_support import axe_violations
from console_support import PASSWORD
from console_support import make_user
from sqlalchemy import select
from till_support import PIN
from till_support import set_pin

from wallet_service.models import DeliveryJob
from wallet_service.services.outbox import sequence_changes

# The fixtures of ``browser_support`` (not a conftest.py: ``conftest`` is the suite's own).
browser = browser_support.browser
live = browser_support.live

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def qr_video(text: str, folder: Path) -> Path:
    """A few seconds of Y4M video of the card's QR code, as a phone camera would see it held
    up (Debian's ffmpeg)."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        pytest.skip("no ffmpeg (apt-get install -y ffmpeg)")
    image = folder / "card.png"
    segno.make(text, error="m").save(str(image), scale=8, border=4)
    video = folder / "card.y4m"
    subprocess.run(
        [ffmpeg, "-loglevel", "error", "-y", "-loop", "1", "-i", str(image), "-t", "2",
         "-r", "10", "-vf", "scale=480:480,pad=640:480:80:0:white,format=yuv420p",
         str(video)], check=True)
    return video


def pass_of(client: Any, url: str) -> dict[str, Any]:
    r = client.get(url.split("://", 1)[1].split("/", 1)[1].join(("/", "")))
    assert r.status_code == 200, r.status_code
    with zipfile.ZipFile(io.BytesIO(r.data)) as archive:
        return json.loads(archive.read("pass.json"))  # type: ignore[no-any-return]


@pytest.fixture
def camera_browser(browser: Any) -> Any:
    """Launches a Chromium whose camera shows a video file, on the session's Playwright."""

    def launch(video: Path) -> Any:
        return browser.browser_type.launch(executable_path=CHROMIUM, headless=True, args=[
            *CHROMIUM_ARGS, "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream", f"--use-file-for-fake-video-capture={video}"])

    return launch


def test_staff_scans_a_card_and_posts_a_purchase(live, camera_browser, tmp_path) -> None:
    app = live.app
    client = app.test_client()
    merchant_id, key = make_merchant(app, "Coffee Shop")
    api = Api(client, key, merchant_id)
    program = api.program()
    member = api.member(program["id"], name="Anna Petrova")
    location = api.post("/locations", {"name": "Tverskaya", "address": "Tverskaya 1",
                                       "latitude": 55.75, "longitude": 37.61}).json["id"]
    _, manager = make_user(app, merchant_id, "manager", email="manager@till.test")
    staff, _ = make_user(app, merchant_id, "staff", email="barista@till.test")
    set_pin(app, merchant_id, staff)

    # The customer's iPhone holds the pass and registered for its updates.
    before = pass_of(client, member["apple_pass_url"])
    phone = Device(client, "till-phone-1", "ab" * 32, before["passTypeIdentifier"])
    assert phone.register(before["serialNumber"], before["authenticationToken"]).status_code == 201
    with app.extensions["wallet"].sessions() as s:
        sequence_changes(s, now=dt.datetime.now(dt.UTC), debounce=dt.timedelta(0))
        s.query(DeliveryJob).delete()
        s.commit()

    browser = camera_browser(qr_video(member["card_number"], tmp_path))
    page = browser.new_page(viewport={"width": 375, "height": 812}, device_scale_factor=2)
    page.goto(f"{live.url}/till?lang=en")

    # The manager registers this phone as a till of the store, once.
    page.fill("input[name=email]", manager)
    page.fill("input[name=password]", PASSWORD)
    page.fill("input[name=location_id]", str(location))
    page.fill("input[name=name]", "Counter 1")
    page.click("#register-form button[type=submit]")

    # The barista signs in with a PIN typed on the keypad.
    page.wait_for_selector("#screen-pin:not([hidden])")
    page.click("#staff button:has-text('barista')")
    for digit in PIN:
        page.click(f".keypad[data-for=pin] button:text-is('{digit}')")
    page.click("#pin-form button[type=submit]")

    # The camera finds the card.
    page.wait_for_selector("#screen-scan:not([hidden])")
    for _ in range(50):  # the camera's first frames (the page's CSP forbids eval'd waits)
        if page.evaluate("() => document.getElementById('video').readyState") >= 2:
            break
        page.wait_for_timeout(50)
    page.screenshot(path=str(SCREENSHOTS / "till-scan-en.png"))
    page.wait_for_selector("#screen-member:not([hidden])", timeout=20000)
    assert page.text_content("#member-name") == "Anna Petrova"
    assert page.text_content("#balance-value") == "0"

    for digit in "250":
        page.click(f".keypad[data-for=amount] button:text-is('{digit}')")
    page.wait_for_selector("#purchase:not([disabled])")
    assert "25" in page.text_content("#quote")
    page.screenshot(path=str(SCREENSHOTS / "till-member-en.png"))
    assert axe_violations(page) == []
    page.click("#purchase")

    page.wait_for_selector("#result-h.done")
    assert page.text_content("#result-balance").startswith("25")
    page.screenshot(path=str(SCREENSHOTS / "till-done-en.png"))
    browser.close()

    # The pass shows the new balance, and a push waits for the customer's iPhone.
    after = pass_of(client, member["apple_pass_url"])
    assert (balance_of(before), balance_of(after)) == (0, 25)
    with app.extensions["wallet"].sessions() as s:
        sequence_changes(s, now=dt.datetime.now(dt.UTC), debounce=dt.timedelta(0))
        s.commit()
        jobs = s.scalars(select(DeliveryJob).where(DeliveryJob.channel == "apns")).all()
    assert len(jobs) == 1


def test_a_not_sent_action_is_retried_with_its_key(live, camera_browser, tmp_path) -> None:
    """The network drops the first answer: the page says "not sent — retry", and the retry
    (same key) credits once."""
    app = live.app
    client = app.test_client()
    merchant_id, key = make_merchant(app, "Bakery")
    api = Api(client, key, merchant_id)
    member = api.member(api.program()["id"], name="Boris")
    location = api.post("/locations", {"name": "Arbat", "address": "Arbat 1",
                                       "latitude": 55.75, "longitude": 37.59}).json["id"]
    _, manager = make_user(app, merchant_id, "manager", email="manager@bakery.test")
    staff, _ = make_user(app, merchant_id, "staff", email="cashier@bakery.test")
    set_pin(app, merchant_id, staff)

    browser = camera_browser(qr_video(member["card_number"], tmp_path))
    page = browser.new_page(viewport={"width": 375, "height": 812})
    page.goto(f"{live.url}/till?lang=ru")
    page.fill("input[name=email]", manager)
    page.fill("input[name=password]", PASSWORD)
    page.fill("input[name=location_id]", str(location))
    page.fill("input[name=name]", "Касса 1")
    page.click("#register-form button[type=submit]")
    page.wait_for_selector("#screen-pin:not([hidden])")
    page.fill("#pin", PIN)
    page.click("#pin-form button[type=submit]")
    page.wait_for_selector("#screen-member:not([hidden])", timeout=20000)
    page.fill("#amount", "100")
    page.dispatch_event("#amount", "input")
    page.wait_for_selector("#purchase:not([disabled])")

    # The request reaches the service, but its answer is lost on the way back.
    sent: list[str] = []

    def lose_answer(route: Any) -> None:
        sent.append(route.request.headers["idempotency-key"])
        route.fetch()  # the service posts it
        route.abort("connectionreset")

    page.route("**/till/api/members/*/actions", lose_answer)
    page.click("#purchase")
    page.wait_for_selector("#result-h.failed")
    assert page.text_content("#result-h") == "Не отправлено — повторите"
    page.unroute("**/till/api/members/*/actions")
    page.route("**/till/api/members/*/actions",
               lambda route: (sent.append(route.request.headers["idempotency-key"]),
                              route.continue_()))
    page.click("#retry")
    page.wait_for_selector("#result-h.done")
    browser.close()

    assert len(sent) == 2 and sent[0] == sent[1]
    card = api.get(f"/members/{member['id']}").json
    assert card["balance"] == 10
    assert len(api.get(f"/members/{member['id']}/transactions").json["items"]) == 1
