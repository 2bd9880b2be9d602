"""The console's NPS page and campaign effect pages: the same numbers as the API, for the
merchant's own data only."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from wallet_service.models import LoyaltyCard
from wallet_service.services import nps


def test_nps_page_shows_the_score_and_comments(api, app, console, console_as):
    program = api.program()
    r = api.client.put(f"/api/v1/programs/{program['id']}/survey", json={"enabled": True},
                       headers={"Authorization": f"Bearer {api.key}"})
    assert r.status_code == 200
    now = dt.datetime.now(dt.UTC)
    with app.extensions["wallet"].sessions() as s:
        for i, (score, comment) in enumerate([(10, None), (3, "Cold <b>coffee</b>")]):
            m = api.member(program["id"], phone=f"+7 912 333-44-{i:02d}")
            card_id = s.scalar(select(LoyaltyCard.id).where(LoyaltyCard.member_id == m["id"]))
            s.rollback()
            nps.answer_survey(s, card_id, score, comment, "en", now=now)
            s.commit()
    page = console.get("/console/nps")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    # 1 promoter, 1 detractor of 2: 50 % − 50 % = 0.
    assert '<dd id="nps-score">0.00</dd>' in html
    assert "Cold &lt;b&gt;coffee&lt;/b&gt;" in html  # the customer's words, escaped
    assert 'href="/console/nps"' in html  # in the navigation
    staff = console_as("staff").get("/console/nps")
    assert staff.status_code == 200


def test_campaign_pages_show_the_effect_and_stay_within_the_merchant(api, other_api, console,
                                                                     console_as):
    program = api.program()
    for i in range(4):
        api.member(program["id"], phone=f"+7 912 555-66-{i:02d}", marketing_consent=True)
    c = api.post(f"/programs/{program['id']}/campaigns",
                 {"text": "Two for one", "holdout_percent": 50}).json
    listed = console.get("/console/campaigns").get_data(as_text=True)
    assert "Two for one" in listed and f'href="/console/campaigns/{c["id"]}"' in listed
    page = console.get(f"/console/campaigns/{c['id']}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and c["holdout_seed"] in html
    assert 'id="campaign-running"' in html
    effect = api.get(f"/campaigns/{c['id']}/effect").json
    assert (f'<td id="difference-purchasing-rate">'
            f'{effect["difference"]["purchasing_rate"]}</td>') in html
    theirs = console_as("owner", other_api)
    assert theirs.get(f"/console/campaigns/{c['id']}").status_code == 404
    assert "Two for one" not in theirs.get("/console/campaigns").get_data(as_text=True)
