"""Health: the signing certificates (the doctor's checks and their expiry), the push queue's
depth and age, recent APNs failures by reason, Apple's device logs and the Google sync
state of the merchant's cards."""

from __future__ import annotations

from flask import Response

from ...apple.assets import doctor as apple_doctor
from ...permissions import Permission
from ...services import console_overview
from .. import get_session
from .. import wallet
from .frame import bp
from .frame import console_page
from .frame import current_user
from .frame import render
from .frame import section
from .overview import certificate_expires

DEVICE_LOGS = 20


def certificate_checks() -> list[tuple[str, str, str]]:
    """The doctor's checks of the Apple signing certificates: (level, check, message)."""
    settings = wallet().settings
    if settings.apple_dev_certs:
        return [("warning", "apple", "no Apple certificate configured: the development set "
                 "signs passes, which do not install on an iPhone (certs.example/README.md)")]
    return [(f.level, f.check, f.message) for f in apple_doctor(
        pass_type_identifier=settings.apple_pass_type_id,
        team_identifier=settings.apple_team_id, wwdr_cert=settings.apple_wwdr_cert,
        p12=settings.apple_p12, cert=settings.apple_cert, key=settings.apple_key,
        password=settings.apple_key_password)]


@bp.get("/settings/health")
@console_page(Permission.SETTINGS)
def health() -> Response:
    """How cards reach phones, for this merchant (device logs are the service's: Apple
    does not say which merchant's pass a message is about; only their times and texts are
    shown, without the device's address)."""
    user = current_user()
    section("settings")
    session = get_session()
    logs = console_overview.device_logs(session, user.merchant_id, limit=DEVICE_LOGS)
    return render(
        "console/health.html", title="health_title", checks=certificate_checks(),
        expires=certificate_expires(),
        delivery=console_overview.delivery(session, user.merchant_id), logs=logs,
        google_enabled=wallet().settings.google_enabled)
