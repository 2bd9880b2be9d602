"""The Settings page: links to the settings areas the user may open (users, API keys, audit
log, health, and whatever other areas add with ``frame.settings_link``)."""

from __future__ import annotations

from flask import Response

from ...permissions import Permission
from .frame import SETTINGS_LINKS
from .frame import bp
from .frame import console_page
from .frame import current_user
from .frame import render
from .frame import settings_link
from .frame import visible

settings_link("users", "console.users", "nav_users", Permission.KEYS)
settings_link("keys", "console.keys", "nav_keys", Permission.KEYS)
settings_link("audit", "console.audit_log", "nav_audit", Permission.KEYS)
settings_link("health", "console.health", "nav_health", Permission.SETTINGS)


@bp.get("/settings")
@console_page(Permission.SETTINGS)
def settings() -> Response:
    """The settings areas this user may open."""
    return render("console/settings.html", title="settings_title",
                  links=visible(SETTINGS_LINKS, current_user()))
