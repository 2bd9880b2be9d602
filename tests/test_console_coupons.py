"""A programme's coupons page in the console through the Flask test client: issuing a coupon
that the API then shows on a member's card, the API's validation errors next to their field,
changing and ending a coupon, audit entries, and who may see the page."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from wallet_service.models import AuditEntry


def text(response: Any) -> str:
    return str(response.get_data(as_text=True))


def programme(console: Any, kind: str = "points") -> int:
    r = console.post("/console/programme/new", {"name": "Пекарня", "kind": kind})
    assert r.status_code == 303, text(r)
    return int(re.search(r"/console/programme/(\d+)", r.headers["Location"]).group(1))


def enroll(console: Any, program_id: int) -> int:
    r = console.post(f"/console/programme/{program_id}/enroll",
                     {"member_name": "Вера", "member_phone": "+7 912 555-44-33"})
    assert r.status_code == 303, text(r)
    return int(r.headers["Location"].rsplit("/", 1)[1])


def audit_of(app: Any, merchant_id: int) -> list[AuditEntry]:
    with app.extensions["wallet"].sessions() as s:
        return list(s.scalars(select(AuditEntry).where(
            AuditEntry.merchant_id == merchant_id, AuditEntry.action.like("programme.coupon%"))
            .order_by(AuditEntry.id)))


def issue(console: Any, program_id: int, **values: str) -> Any:
    form = {"title_en": "20% off pastries", "title_ru": "−20 % на выпечку",
            "description": "Twenty percent off any pastry", **values}
    return console.post(f"/console/programme/{program_id}/coupons", form)


def test_the_owner_issues_a_coupon_the_api_shows_on_the_card(app, console, api):
    program_id = programme(console)
    member_id = enroll(console, program_id)
    assert "No coupons yet." in text(console.get(f"/console/programme/{program_id}/coupons"))
    r = issue(console, program_id, valid_until="2099-12-31T18:00")
    assert r.status_code == 303, text(r)
    held = api.get(f"/members/{member_id}/coupons").json["items"]
    assert len(held) == 1
    assert held[0]["title"] == {"en": "20% off pastries", "ru": "−20 % на выпечку"}
    assert held[0]["description"] == "Twenty percent off any pastry"
    # typed in the merchant's time zone
    zone = ZoneInfo(api.get("/merchant").json["time_zone"])
    assert dt.datetime.fromisoformat(held[0]["valid_until"]) == dt.datetime(
        2099, 12, 31, 18, 0, tzinfo=zone)
    page = text(console.get(r.headers["Location"]))
    assert "20% off pastries" in page and "The coupon is issued." in page
    assert re.search(r'href="/console/programme/\d+/coupons"\s+aria-current="page"', page)
    # the programme's other pages link to it
    assert f'href="/console/programme/{program_id}/coupons"' in text(
        console.get(f"/console/programme/{program_id}/rewards"))
    [entry] = audit_of(app, api.merchant_id)
    assert entry.action == "programme.coupon" and entry.actor_kind == "user"
    assert entry.changes["granted"] == 1 and entry.changes["title"]["en"] == "20% off pastries"


def test_a_validation_error_names_the_field(console, api):
    program_id = programme(console)
    r = issue(console, program_id, valid_from="2030-01-02T10:00",
              valid_until="2030-01-01T10:00")
    assert r.status_code == 422
    page = text(r)
    assert 'id="coupon-valid_until-error"' in page and "must be after valid_from" in page
    assert 'aria-invalid="true" aria-describedby="coupon-valid_until-error"' in page
    r = issue(console, program_id, title_en="x" * 101)
    assert r.status_code == 422 and 'id="coupon-title_en-error"' in text(r)
    r = issue(console, program_id, title_en="", title_ru="")
    assert r.status_code == 422 and 'id="coupon-title_en-error"' in text(r)
    r = issue(console, program_id, valid_from="tomorrow")
    assert r.status_code == 422 and 'id="coupon-valid_from-error"' in text(r)
    r = issue(console, program_id, tier="Gold")
    assert r.status_code == 422 and 'id="coupon-tier-error"' in text(r)
    assert "No coupons yet." in text(console.get(f"/console/programme/{program_id}/coupons"))


def test_change_and_end_a_coupon_with_audit_entries(app, console, api):
    program_id = programme(console)
    member_id = enroll(console, program_id)
    assert issue(console, program_id).status_code == 303
    [coupon] = api.get(f"/members/{member_id}/coupons").json["items"]
    path = f"/console/programme/{program_id}/coupons/{coupon['coupon_id']}"
    page = text(console.get(path))
    assert 'value="20% off pastries"' in page and "Given to 1, used 0." in page
    r = console.post(path, {"title_en": "25% off pastries", "title_ru": "−25 % на выпечку",
                            "description": "", "valid_until": "2099-01-01T09:30"})
    assert r.status_code == 303, text(r)
    [held] = api.get(f"/members/{member_id}/coupons").json["items"]
    assert held["title"]["en"] == "25% off pastries" and held["description"] is None
    r = console.post(path, {"title_en": "", "title_ru": ""})
    assert r.status_code == 422 and 'id="coupon-title_en-error"' in text(r)
    assert console.post(path + "/end", {}).status_code == 303
    assert api.get(f"/members/{member_id}/coupons").json["items"] == []
    assert "ended" in text(console.get(f"/console/programme/{program_id}/coupons"))
    entries = audit_of(app, api.merchant_id)
    assert [e.action for e in entries] == ["programme.coupon", "programme.coupon_change",
                                           "programme.coupon_end"]
    assert entries[1].changes["title"][1] == {"en": "25% off pastries",
                                              "ru": "−25 % на выпечку"}
    assert entries[1].target == f"coupon:{coupon['coupon_id']}"


def test_staff_gets_403(console, console_as, api):
    program_id = programme(console)
    member_id = enroll(console, program_id)
    assert issue(console, program_id).status_code == 303
    [coupon] = api.get(f"/members/{member_id}/coupons").json["items"]
    staff = console_as("staff")
    base = f"/console/programme/{program_id}/coupons"
    one = f"{base}/{coupon['coupon_id']}"
    assert staff.get(base).status_code == 403
    assert staff.get(one).status_code == 403
    for path in (base, one, one + "/end"):
        assert staff.post(path, {"title_en": "Mine"}).status_code == 403, path
    assert api.get(f"/members/{member_id}/coupons").json["items"][0]["retired_at"] is None


def test_another_merchant_gets_404(console, console_as, other_api, api):
    program_id = programme(console)
    member_id = enroll(console, program_id)
    assert issue(console, program_id).status_code == 303
    [coupon] = api.get(f"/members/{member_id}/coupons").json["items"]
    other = console_as("owner", other_api)
    base = f"/console/programme/{program_id}/coupons"
    one = f"{base}/{coupon['coupon_id']}"
    assert other.get(base).status_code == 404
    assert other.get(one).status_code == 404
    for path in (base, one, one + "/end"):
        assert other.post(path, {"title_en": "Mine"}).status_code == 404, path
    [held] = api.get(f"/members/{member_id}/coupons").json["items"]
    assert held["title"]["en"] == "20% off pastries"
    # the merchant's own coupon page of another programme id is not found either
    own = programme(other)
    assert other.get(f"/console/programme/{own}/coupons/{coupon['coupon_id']}"
                     ).status_code == 404
