"""The audit log (owners): who did what, when, from where and what changed; filtered by
action and by actor."""

from __future__ import annotations

from flask import Response
from flask import request

from ...permissions import Permission
from ...services import audit
from .. import get_session
from .frame import bp
from .frame import console_page
from .frame import current_user
from .frame import render
from .frame import section

PAGE = 100


@bp.get("/settings/audit")
@console_page(Permission.KEYS)
def audit_log() -> Response:
    """The newest entries first, ``PAGE`` at a time (``?before=<id>`` for older ones)."""
    user = current_user()
    section("settings")
    session = get_session()
    action = request.args.get("action", "")[:60] or None
    actor = request.args.get("actor", "")[:320] or None
    before = request.args.get("before", "")
    found = audit.entries(session, user.merchant_id, action=action, actor_label=actor,
                          before_id=int(before) if before.isdigit() and len(before) < 18
                          else None, limit=PAGE)
    actions, actors = audit.filter_values(session, user.merchant_id)
    return render("console/audit_log.html", title="audit_title", entries=found,
                  actions=actions, actors=actors, action=action or "", actor=actor or "",
                  older=found[-1].id if len(found) == PAGE else None)
