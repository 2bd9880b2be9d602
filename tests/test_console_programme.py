"""The console's programme section and messages through the Flask test client: the wizard,
the programme page (poster, enrolling), the card designer whose preview shows what the pass
shows for every kind, saving a design, the settings pages with the API's validation, the
campaign composer with its reach, campaigns scheduled for a local time, and roles."""

from __future__ import annotations

import datetime as dt
import io
import json
import re
import zipfile
from html.parser import HTMLParser
from typing import Any

import pytest
from sqlalchemy import select
from wallet_pass import AREAS
from wallet_pass import download

from wallet_service.apple import decode_strings
from wallet_service.models import AuditEntry
from wallet_service.models import Campaign
from wallet_service.models import LoyaltyCard
from wallet_service.models import LoyaltyProgram
from wallet_service.models import ScheduledCampaign
from wallet_service.push import NullPushClient
from wallet_service.worker import Worker

KINDS = ("points", "stamps", "cashback", "discount")


def text(response: Any) -> str:
    return str(response.get_data(as_text=True))


def create(console: Any, kind: str = "stamps", name: str = "Кофейня на углу") -> int:
    r = console.post("/console/programme/new", {"name": name, "kind": kind,
                                                "background_color": "#112233",
                                                "foreground_color": "#ffffff"})
    assert r.status_code == 303, text(r)
    match = re.search(r"/console/programme/(\d+)\?created=1", r.headers["Location"])
    assert match
    return int(match.group(1))


def actions(app: Any, merchant_id: int) -> list[str]:
    with app.extensions["wallet"].sessions() as s:
        return list(s.scalars(select(AuditEntry.action).where(
            AuditEntry.merchant_id == merchant_id).order_by(AuditEntry.id)))


class Fields(HTMLParser):
    """The preview's fields (``data-field``) with their label and value texts."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: dict[str, dict[str, str]] = {}
        self.attrs_of: dict[str, dict[str, str]] = {}
        self._field: str | None = None
        self._part: str | None = None
        self._depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if "data-field" in a:
            self._field = a["data-field"]
            self.fields[self._field] = {"label": "", "value": ""}
            self.attrs_of[self._field] = a
            self._depth = 0
        elif self._field is not None:
            self._depth += 1
            cls = a.get("class", "")
            if "pass-label" in cls:
                self._part = "label"
            elif "pass-value" in cls:
                self._part = "value"

    def handle_endtag(self, tag: str) -> None:
        if self._field is None:
            return
        if self._depth == 0:
            self._field = None
        else:
            self._depth -= 1
            self._part = None

    def handle_data(self, data: str) -> None:
        if self._field is not None and self._part is not None:
            self.fields[self._field][self._part] += data


def preview_fields(html: str) -> tuple[dict[str, dict[str, str]], dict[str, dict[str, str]]]:
    parser = Fields()
    parser.feed(html)
    return parser.fields, parser.attrs_of


def sample_pass(console: Any, program_id: int) -> tuple[dict[str, Any], dict[str, Any]]:
    r = console.get(f"/console/programme/{program_id}/design/sample.pkpass")
    assert r.status_code == 200
    assert r.mimetype == "application/vnd.apple.pkpass"
    with zipfile.ZipFile(io.BytesIO(r.data)) as archive:
        strings = {n.split(".lproj/")[0]: decode_strings(archive.read(n))
                   for n in archive.namelist() if n.endswith(".lproj/pass.strings")}
        return json.loads(archive.read("pass.json")), strings


# --- the wizard and the programme page ----------------------------------------------------


def test_the_wizard_creates_a_stamps_programme_and_ends_on_the_poster(app, console, api):
    r = console.get("/console/programme")
    assert r.status_code == 200
    assert 'action="/console/programme/new"' in text(r)  # no programme yet: the wizard
    program_id = create(console, "stamps")
    page = text(console.get(f"/console/programme/{program_id}?created=1"))
    assert "/join/" in page and 'id="created-notice"' in page
    program = api.get(f"/programs/{program_id}").json
    assert program["kind"] == "stamps" and program["stamps"]["goal"] == 6
    assert program["design"]["background_color"] == "#112233"
    assert program["languages"] == ["en", "ru"]  # the owner's language first
    poster = console.get(f"/console/programme/{program_id}/poster?size=a4")
    assert poster.status_code == 200
    assert "attachment" in poster.headers["Content-Disposition"]
    assert program["join_url"] in text(poster)
    assert "programme.create" in actions(app, api.merchant_id)
    # with a programme, the section lists it
    assert "Кофейня на углу" in text(console.get("/console/programme"))


def test_the_wizard_names_what_is_missing(console):
    r = console.post("/console/programme/new", {"name": " ", "kind": "lottery"})
    assert r.status_code == 422
    page = text(r)
    assert 'id="name-error"' in page and 'id="kind-error"' in page


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_starts_from_valid_defaults(console, api, kind):
    program_id = create(console, kind)
    assert api.get(f"/programs/{program_id}").json["kind"] == kind


def test_enroll_a_member_and_add_a_stamp_from_the_console(app, console, api, client):
    program_id = create(console, "stamps")
    r = console.post(f"/console/programme/{program_id}/enroll",
                     {"member_name": "Вера", "member_phone": "+7 912 555-44-33"})
    assert r.status_code == 303, text(r)
    member_id = int(r.headers["Location"].rsplit("/", 1)[1])
    page = text(console.get(f"/console/members/{member_id}"))
    assert 'id="stamp-submit"' in page
    r = console.post(f"/console/members/{member_id}/stamp", {"idempotency_key": "console-x1"})
    assert r.status_code == 303
    member = api.get(f"/members/{member_id}").json
    shown = download(client, member).fields("en")
    assert shown["stamps"]["value"] == "1 / 6"
    assert "member.enroll" in actions(app, api.merchant_id)


# --- the designer ----------------------------------------------------------------------


def form_of(console: Any, program_id: int) -> dict[str, Any]:
    """The designer's form as the page fills it."""
    page = text(console.get(f"/console/programme/{program_id}/design"))
    form: dict[str, Any] = {}
    for name, value in re.findall(r'<input id="[^"]+" name="([^"]+)" type="(?:text|tel|email|url)"'
                                  r'[^>]*value="([^"]*)"', page):
        form[name] = value
    for name, value in re.findall(r'name="([^"]+)" rows="\d+"[^>]*>([^<]*)</textarea>', page):
        form[name] = value
    form["languages"] = re.findall(r'name="languages" value="(\w+)" checked', page)
    form["first_language"] = re.search(r'name="first_language" value="(\w+)"', page).group(1)
    form["barcode_format"] = "qr"
    return form


@pytest.mark.parametrize("kind", KINDS)
def test_the_preview_shows_every_text_and_number_of_the_pass(app, console, api, client, kind):
    """The preview is rendered from the sample member's pass.json: every field of the
    signed sample pass is in the preview with the label and value a phone shows; and a
    real member's pass has the same fields with the same labels."""
    program_id = create(console, kind)
    form = form_of(console, program_id)
    form.update({"rules_text_en": "Show the card at the till.",
                 "rules_text_ru": "Покажите карту на кассе.", "contact_phone": "+7 495 123-45-67",
                 "contact_website": "https://coffee.example", "points_label": "",
                 "locations": "55.75, 37.61, Мы рядом"})
    preview = console.post(f"/console/programme/{program_id}/design/preview", form)
    assert preview.status_code == 200
    fields, attrs = preview_fields(text(preview))
    # save the same form, so the sample pass is of the same design
    assert console.post(f"/console/programme/{program_id}/design",
                        {**form, "confirm": "yes"}).status_code == 303
    pass_json, strings = sample_pass(console, program_id)
    lang = "en"
    seen = set()
    for area in AREAS:
        for field in pass_json["storeCard"].get(area, ()):
            key = field["key"]
            seen.add(key)
            assert key in fields, f"{kind}: {key} missing from the preview"
            label = strings[lang].get(field.get("label", ""), field.get("label", ""))
            assert fields[key]["label"].strip() == label, (kind, key)
            value = field["value"]
            if isinstance(value, str):
                if "dateStyle" not in field:
                    assert fields[key]["value"].strip() == strings[lang].get(value, value)
            else:
                assert attrs[key]["data-raw"] == str(value), (kind, key)
                assert fields[key]["value"].strip(), (kind, key)
    assert set(fields) == seen
    # the Google card: the class's programme name and the object's balance and holder
    page = text(preview)
    assert re.search(r'data-google="program">\s*Кофейня на углу\s*<', page)
    assert re.search(r'data-google="name">\s*Anna Smith\s*<', page)
    assert 'data-google="balance"' in page
    assert "Show the card at the till." in text(preview)
    assert pass_json["barcodes"][0]["format"] == "PKBarcodeFormatQR"
    # a real member's pass: the same fields, the same labels
    member = api.member(program_id, name="Real Member")
    real = download(client, member)
    real_fields = real.fields(lang)
    for key, field in real_fields.items():
        if key in seen:
            label = strings[lang].get(
                next(f for a in AREAS for f in pass_json["storeCard"].get(a, ())
                     if f["key"] == key).get("label", ""), "")
            assert field["label"] == label, (kind, key)
    assert {k for k in real_fields if k not in ("card_page",)} - seen <= {"tier_progress",
                                                                         "next_discount"}


def test_the_preview_follows_the_colour_and_names_a_bad_field(console):
    program_id = create(console, "points")
    form = form_of(console, program_id)
    form["background_color"] = "#aa0000"
    page = text(console.post(f"/console/programme/{program_id}/design/preview", form))
    assert 'data-bg="rgb(170, 0, 0)"' in page
    form["contact_website"] = "ftp://nope"
    page = text(console.post(f"/console/programme/{program_id}/design/preview", form))
    assert 'id="preview-errors"' in page and 'href="#contact_website"' in page


def test_saving_a_design_says_what_it_will_do_then_saves_with_an_audit_entry(app, console,
                                                                             api):
    program_id = create(console, "points")
    api.member(program_id)
    api.member(program_id, phone="+7 912 111-22-33")
    form = form_of(console, program_id)
    form["background_color"] = "#004400"
    r = console.post(f"/console/programme/{program_id}/design", form)
    assert r.status_code == 200
    page = text(r)
    assert "2 cards will update." in page and "Phones will not be notified" in page
    assert api.get(f"/programs/{program_id}").json["design"]["background_color"] == "#112233"
    r = console.post(f"/console/programme/{program_id}/design", {**form, "confirm": "yes"})
    assert r.status_code == 303
    assert api.get(f"/programs/{program_id}").json["design"]["background_color"] == "#004400"
    with app.extensions["wallet"].sessions() as s:
        entry = s.scalars(select(AuditEntry).where(AuditEntry.action == "programme.design")
                          ).one()
        assert entry.changes["design.background_color"] == ["#112233", "#004400"]


def test_a_logo_upload_and_the_sample_card_page(console, client):
    from PIL import Image
    program_id = create(console, "stamps")
    out = io.BytesIO()
    Image.new("RGBA", (320, 100), (200, 30, 30, 255)).save(out, "PNG")
    r = console.client.post(f"/console/programme/{program_id}/design/images/logo",
                            data={"csrf_token": console.token(),
                                  "file": (io.BytesIO(out.getvalue()), "logo.png")},
                            content_type="multipart/form-data")
    assert r.status_code == 303, text(r)
    page = text(console.get(f"/console/programme/{program_id}/design"))
    match = re.search(r'href="https?://[^"/]+(/console/sample/[^"]+)"', page)
    assert match
    anonymous = client.application.test_client()
    sample = anonymous.get(match.group(1))
    assert sample.status_code == 200 and 'data-field="stamps"' in text(sample)
    assert anonymous.get(match.group(1) + "x").status_code == 404
    assert anonymous.get(match.group(1) + "/pass.pkpass").status_code == 200


# --- settings pages ----------------------------------------------------------------------


def test_a_settings_page_saves_through_the_api_validation_and_names_the_field(app, console,
                                                                              api):
    program_id = create(console, "stamps")
    page = text(console.get(f"/console/programme/{program_id}/settings/stamps"))
    assert 'name="stamps.goal"' in page
    r = console.post(f"/console/programme/{program_id}/settings/stamps",
                     {"stamps.goal": "1", "stamps.per_purchase": "1", "stamps.window_minutes": "60",
                      "stamps.max_per_window": "1", "stamps.reward": '"a cake"'})
    assert r.status_code == 422
    assert 'id="stamps-goal-error"' in text(r)
    r = console.post(f"/console/programme/{program_id}/settings/stamps",
                     {"stamps.goal": "8", "stamps.per_purchase": "1", "stamps.window_minutes": "60",
                      "stamps.max_per_window": "", "stamps.reward": '"a cake"'})
    assert r.status_code == 303, text(r)
    stamps = api.get(f"/programs/{program_id}").json["stamps"]
    assert stamps["goal"] == 8 and stamps["reward"] == "a cake"
    assert stamps["max_per_window"] is None
    assert "programme.stamps" in actions(app, api.merchant_id)
    r = console.post(f"/console/programme/{program_id}/settings/tiers",
                     {"tier_basis": "visits", "tiers": "[not json"})
    assert r.status_code == 422 and 'id="tiers-error"' in text(r)


@pytest.mark.parametrize("name", ["earning", "tiers", "stamps", "cashback", "exclusions",
                                  "expiry", "bonuses", "signup"])
def test_every_settings_page_opens_and_saves_unchanged(console, name):
    program_id = create(console, "points")
    page = text(console.get(f"/console/programme/{program_id}/settings/{name}"))
    values = dict(re.findall(r'name="([a-z_.]+)" type="text"[^>]*value="([^"]*)"', page))
    values.update({k: v.replace("&#34;", '"').replace("&quot;", '"') for k, v in
                   re.findall(r'name="([a-z_.]+)" rows="5"[^>]*>([^<]*)</textarea>', page)})
    if name == "tiers":
        values["tier_basis"] = "lifetime_points"
    if name == "stamps":
        return  # a points programme has no stamp rule; the stamps page is tested above
    r = console.post(f"/console/programme/{program_id}/settings/{name}", values)
    assert r.status_code == 303, text(r)


def test_rewards_locations_and_the_time_zone(console, api):
    program_id = create(console, "stamps")
    r = console.post(f"/console/programme/{program_id}/rewards", {"name": "Пирожное",
                                                                  "cost": "3"})
    assert r.status_code == 303, text(r)
    assert "Пирожное" in text(console.get(f"/console/programme/{program_id}/rewards"))
    r = console.post(f"/console/programme/{program_id}/rewards", {"name": "", "cost": "x"})
    assert r.status_code == 422
    r = console.post("/console/programme/locations", {"name": "Центр", "address": "Тверская, 1",
                                                      "latitude": "55.76", "longitude": "37.61"})
    assert r.status_code == 303, text(r)
    r = console.post("/console/programme/locations", {"name": "Bad", "address": "x",
                                                      "latitude": "95", "longitude": "37"})
    assert r.status_code == 422 and 'id="loc-latitude-error"' in text(r)
    r = console.post("/console/programme/time-zone", {"time_zone": "Mars/Base"})
    assert r.status_code == 422 and 'id="tz-error"' in text(r)
    assert console.post("/console/programme/time-zone",
                        {"time_zone": "Asia/Yekaterinburg"}).status_code == 303
    assert api.get("/merchant").json["time_zone"] == "Asia/Yekaterinburg"


# --- messages ----------------------------------------------------------------------------


def test_the_composer_shows_reach_and_sends_to_a_segment(app, console, api):
    program_id = create(console, "stamps")
    for i in range(4):
        api.member(program_id, name=f"M{i}", phone=f"+7 912 000-00-0{i}",
                   marketing_consent=i < 3)
    r = console.post("/console/messages/reach", {"program_id": str(program_id),
                                                 "audience": "all", "holdout_percent": "0"})
    page = text(r)
    assert re.search(r'id="reach-members">4<', page)
    assert re.search(r'id="reach-consenting">3<', page)
    assert re.search(r'id="reach-notified">0<', page)  # no phone has the card yet
    assert re.search(r'id="reach-silent">3<', page)
    r = console.post("/console/messages", {"program_id": str(program_id), "audience": "segment",
                                           "inactive_days": "", "tier": "", "text_en": "Hello",
                                           "holdout_percent": "0", "when": "now"})
    assert r.status_code == 303, text(r)
    with app.extensions["wallet"].sessions() as s:
        campaign = s.scalars(select(Campaign)).one()
        assert campaign.reached == 3
    page = text(console.get("/console/messages"))
    assert "Hello" in page
    assert "campaign.send" in actions(app, api.merchant_id)


def test_the_composer_names_bad_fields(console):
    program_id = create(console, "points")
    r = console.post("/console/messages", {"program_id": str(program_id), "audience": "segment",
                                           "birthday_month": "13", "holdout_percent": "80",
                                           "when": "later", "send_at": "tomorrow"})
    assert r.status_code == 422
    page = text(r)
    for field in ("birthday_month-error", "holdout-error", "send_at-error", "text_en-error"):
        assert f'id="{field}"' in page


def test_a_scheduled_campaign_goes_out_at_its_local_time(app, console, api):
    """Scheduled for 10:00 in Yekaterinburg (UTC+5): the worker sends it at 05:00 UTC, not
    before."""
    api.patch("/merchant", {"time_zone": "Asia/Yekaterinburg"})
    program_id = create(console, "points")
    api.member(program_id, marketing_consent=True)
    tomorrow = (dt.datetime.now(dt.UTC) + dt.timedelta(days=2)).date()
    r = console.post("/console/messages", {"program_id": str(program_id), "audience": "all",
                                           "text_en": "Sale at ten", "holdout_percent": "0",
                                           "when": "later",
                                           "send_at": f"{tomorrow.isoformat()}T10:00"})
    assert r.status_code == 303, text(r)
    state = app.extensions["wallet"]
    moment = {"now": dt.datetime.combine(tomorrow, dt.time(4, 59), dt.UTC)}
    worker = Worker(sessions=state.sessions, push=NullPushClient(), settings=state.settings,
                    clock=lambda: moment["now"])
    assert worker.scheduled_campaigns() == 0
    assert "Sale at ten" in text(console.get("/console/messages"))  # still scheduled
    moment["now"] = dt.datetime.combine(tomorrow, dt.time(5, 0), dt.UTC)
    assert worker.scheduled_campaigns() == 1
    assert worker.scheduled_campaigns() == 0  # once
    with state.sessions() as s:
        row = s.scalars(select(ScheduledCampaign)).one()
        assert row.status == "sent" and row.local_time.endswith("T10:00")
        campaign = s.get(Campaign, row.campaign_id)
        assert campaign.reached == 1
        card = s.scalars(select(LoyaltyCard).where(LoyaltyCard.program_id == program_id)).one()
        assert card.message == {"en": "Sale at ten"}


def test_a_scheduled_campaign_can_be_cancelled_and_a_past_time_is_refused(app, console):
    program_id = create(console, "points")
    r = console.post("/console/messages", {"program_id": str(program_id), "audience": "all",
                                           "text_en": "x", "when": "later",
                                           "send_at": "2020-01-01T10:00"})
    assert r.status_code == 422 and 'id="send_at-error"' in text(r)
    later = (dt.datetime.now(dt.UTC) + dt.timedelta(days=3)).strftime("%Y-%m-%dT%H:%M")
    console.post("/console/messages", {"program_id": str(program_id), "audience": "all",
                                       "text_en": "x", "when": "later", "send_at": later})
    with app.extensions["wallet"].sessions() as s:
        row_id = s.scalars(select(ScheduledCampaign.id)).one()
    assert console.post(f"/console/messages/scheduled/{row_id}/cancel").status_code == 303
    assert console.post(f"/console/messages/scheduled/{row_id}/cancel").status_code == 404


# --- roles and merchants -----------------------------------------------------------------


def test_staff_gets_403_on_every_page_of_the_programme_and_messages(console, console_as):
    program_id = create(console, "stamps")
    staff = console_as("staff")
    for path in ("/console/programme", "/console/programme/new",
                 f"/console/programme/{program_id}", f"/console/programme/{program_id}/poster",
                 f"/console/programme/{program_id}/design",
                 f"/console/programme/{program_id}/design/sample.pkpass",
                 f"/console/programme/{program_id}/rewards", "/console/programme/locations",
                 *(f"/console/programme/{program_id}/settings/{n}" for n in
                   ("earning", "tiers", "stamps", "cashback", "exclusions", "expiry",
                    "bonuses", "signup")),
                 "/console/messages"):
        assert staff.get(path).status_code == 403, path
    for path in ("/console/programme/new", f"/console/programme/{program_id}/design",
                 f"/console/programme/{program_id}/design/preview",
                 f"/console/programme/{program_id}/settings/stamps", "/console/messages",
                 "/console/messages/reach", "/console/programme/time-zone"):
        assert staff.post(path, {}).status_code == 403, path


def test_another_merchants_programme_is_not_found(console, console_as, other_api):
    program_id = create(console, "stamps")
    other = console_as("owner", other_api)
    for path in (f"/console/programme/{program_id}", f"/console/programme/{program_id}/design",
                 f"/console/programme/{program_id}/settings/stamps"):
        assert other.get(path).status_code == 404, path
    assert other.post(f"/console/programme/{program_id}/enroll",
                      {"member_name": "X", "member_phone": "+7 912 000-00-01"}
                      ).status_code == 404
    with other.client.application.extensions["wallet"].sessions() as s:
        assert s.get(LoyaltyProgram, program_id).merchant_id != other.merchant_id


def test_reach_counts_iphones_and_the_google_notification_budget(app, console, api, client):
    """An iPhone announces every campaign; a Google card notifies while it has had fewer
    than 3 notifications in 24 hours, and is updated silently after that."""
    from apple_device import Device

    from wallet_service.models import GoogleNotification
    from wallet_service.models import GoogleObject

    program_id = create(console, "points")
    made = [api.member(program_id, name=f"M{i}", phone=f"+7 912 100-00-0{i}",
                       marketing_consent=True) for i in range(4)]
    state = app.extensions["wallet"]
    now = dt.datetime.now(dt.UTC)
    with state.sessions() as s:
        cards = {c.member_id: c for c in s.scalars(select(LoyaltyCard).where(
            LoyaltyCard.program_id == program_id))}
        apple_card = cards[made[0]["id"]]
        serial, token = apple_card.serial_number, apple_card.authentication_token
        for i, member in enumerate(made[1:3]):
            card_id = cards[member["id"]].id
            s.add(GoogleObject(card_id=card_id, object_id=f"obj-{card_id}", inserted=True,
                               synced_version=1))
            if i == 1:  # this one has used its 3 notifications today
                s.add_all(GoogleNotification(card_id=card_id, kind="message",
                                             sent_at=now - dt.timedelta(hours=h))
                          for h in (1, 2, 3))
        s.commit()
    assert Device(client, "lib-1", "push-1").register(serial, token).status_code == 201
    page = text(console.post("/console/messages/reach", {"program_id": str(program_id),
                                                         "audience": "all",
                                                         "holdout_percent": "25"}))
    figures = dict(re.findall(r'id="reach-([a-z-]+)">(\d+)<', page))
    assert figures == {"members": "4", "consenting": "4", "reached": "3", "held-out": "1",
                       "notified": "2", "silent": "2"}
    assert "Apple Wallet: 1 notified; Google Wallet: 1 notified, 1 silent" in page


def test_a_scheduled_campaign_that_can_no_longer_go_out_is_marked_and_the_others_go(
        app, console, api):
    program_id = create(console, "points")
    api.member(program_id, marketing_consent=True)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    for texts in ({"text_en": "Both", "text_ru": "Оба"}, {"text_en": "English only"}):
        r = console.post("/console/messages", {"program_id": str(program_id), "audience": "all",
                                               "when": "later", **texts,
                                               "send_at": later.strftime("%Y-%m-%dT%H:%M")})
        assert r.status_code == 303, text(r)
    assert api.patch(f"/programs/{program_id}", {"languages": ["en"]}).status_code == 200
    state = app.extensions["wallet"]
    worker = Worker(sessions=state.sessions, push=NullPushClient(), settings=state.settings,
                    clock=lambda: later + dt.timedelta(days=1))
    assert worker.scheduled_campaigns() == 1
    with state.sessions() as s:
        statuses = [r.status for r in s.scalars(select(ScheduledCampaign)
                                                .order_by(ScheduledCampaign.id))]
    assert statuses == ["failed", "sent"]
    assert "Not sent" in text(console.get("/console/messages"))
