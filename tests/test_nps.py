"""The NPS survey: its settings, the customer's page (one answer per period, the bonus
once), the score by month with hand-worked arithmetic, and the answers."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re

import pytest
from sqlalchemy import select
from test_mechanics_stamps import fields
from test_mechanics_stamps import pass_files

from wallet_service.models import LoyaltyCard
from wallet_service.models import NpsAnswer
from wallet_service.ratelimit import RateLimiter
from wallet_service.services import nps

BASE = "https://wallet.example.test"


@pytest.fixture(autouse=True)
def _fresh_limits(app):
    state = app.extensions["wallet"]
    saved = dataclasses.replace(state.limiters)
    state.limiters.join = RateLimiter(1000)
    state.limiters.pages = RateLimiter(1000)
    yield
    state.limiters = saved


def survey_on(api, program_id, **settings):
    r = api.client.put(f"/api/v1/programs/{program_id}/survey",
                       json={"enabled": True, **settings},
                       headers={"Authorization": f"Bearer {api.key}"})
    assert r.status_code == 200, r.json
    return r.json


def survey_path(member):
    return member["card_url"].removeprefix(BASE) + "/survey"


def csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def answer(client, member, score, comment="", lang="en"):
    page = client.get(survey_path(member) + f"?lang={lang}")
    assert page.status_code == 200
    return client.post(survey_path(member), data={
        "csrf_token": csrf(page.get_data(as_text=True)), "lang": lang,
        "score": str(score), "comment": comment})


@pytest.fixture
def shop(api):
    program = api.program(languages=["ru", "en"])
    member = api.member(program["id"])
    return program, member


def test_settings_read_and_written_with_problems_naming_fields(api, other_api, shop):
    program, member = shop
    got = api.get(f"/programs/{program['id']}/survey").json
    assert got == {"program_id": program["id"], "enabled": False, "period_days": 90, "bonus": 0}
    version = api.get(f"/members/{member['id']}").json["version"]
    assert survey_on(api, program["id"], period_days=30, bonus=25) == {
        "program_id": program["id"], "enabled": True, "period_days": 30, "bonus": 25}
    # The link comes onto the back of every card: a new version for the phones.
    assert api.get(f"/members/{member['id']}").json["version"] == version + 1
    url = BASE + survey_path(member)
    back = fields(pass_files(api, api.get(f"/members/{member['id']}").json), "en")
    assert back["survey"]["value"] == url
    assert back["survey"]["label"] == "Rate us: one question"
    ru = fields(pass_files(api, api.get(f"/members/{member['id']}").json), "ru")
    assert ru["survey"]["label"] == "Оцените нас: 1 вопрос"

    headers = {"Authorization": f"Bearer {api.key}"}
    for body, field in (({"enabled": True, "period_days": 0}, "period_days"),
                        ({"enabled": True, "bonus": -1}, "bonus"),
                        ({"enabled": "yes"}, "enabled"),
                        ({"period_days": 30}, "enabled")):
        r = api.client.put(f"/api/v1/programs/{program['id']}/survey", json=body,
                           headers=headers)
        assert r.status_code == 422, (body, r.json)
        assert field in [e["field"] for e in r.json["errors"]], r.json
    # Another merchant's program does not exist for this key.
    assert other_api.get(f"/programs/{program['id']}/survey").status_code == 404
    r = other_api.client.put(f"/api/v1/programs/{program['id']}/survey", json={"enabled": False},
                             headers={"Authorization": f"Bearer {other_api.key}"})
    assert r.status_code == 404


def test_survey_off_hides_the_link_and_the_page(api, client, shop):
    program, member = shop
    card = client.get(member["card_url"].removeprefix(BASE)).get_data(as_text=True)
    assert 'id="survey-link"' not in card
    assert client.get(survey_path(member)).status_code == 404
    assert "survey" not in fields(pass_files(api, member))
    survey_on(api, program["id"])
    card = client.get(member["card_url"].removeprefix(BASE)).get_data(as_text=True)
    assert f'href="{survey_path(member)}"' in card


def test_customer_answers_once_per_period_and_the_bonus_comes_once(api, client, app, shop):
    program, member = shop
    survey_on(api, program["id"], period_days=90, bonus=25)

    page = client.get(survey_path(member) + "?lang=ru")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and 'lang="ru"' in html
    assert "Насколько вероятно, что вы порекомендуете нас" in html
    assert html.count('type="radio" id="score-') == 11
    assert 'for="score-10"' in html and 'for="f-comment"' in html
    assert "За ответ начислим бонус: 25\xa0баллов." in html

    r = answer(client, member, 9, "Great coffee")
    assert r.status_code == 200
    done = r.get_data(as_text=True)
    assert "Thank you for answering!" in done and "Credited: 25\xa0points." in done
    assert api.get(f"/members/{member['id']}").json["balance"] == 25
    bonus = api.get(f"/members/{member['id']}/transactions").json["items"][0]
    assert bonus["type"] == "bonus" and bonus["details"]["rule"] == "action"
    assert bonus["details"]["action"] == "nps"

    # Within the period: the answer changes, nothing is credited again.
    again = client.get(survey_path(member) + "?lang=en").get_data(as_text=True)
    assert 'id="survey-answered"' in again and 'value="9" required checked' in again
    r = answer(client, member, 6, "Slow today")
    assert r.status_code == 200 and "Credited" not in r.get_data(as_text=True)
    assert api.get(f"/members/{member['id']}").json["balance"] == 25
    items = api.get("/nps/answers").json["items"]
    assert [(i["score"], i["comment"], i["category"]) for i in items] == [
        (6, "Slow today", "detractor")]
    assert items[0]["member_id"] == member["id"] and items[0]["language"] == "en"

    # 91 days later a new period: a second answer, and the bonus once more.
    with app.extensions["wallet"].sessions() as s:
        for row in s.scalars(select(NpsAnswer)):
            row.answered_at -= dt.timedelta(days=91)
        s.commit()
    r = answer(client, member, 10)
    assert r.status_code == 200 and "Credited: 25\xa0points." in r.get_data(as_text=True)
    assert api.get(f"/members/{member['id']}").json["balance"] == 50
    items = api.get("/nps/answers").json["items"]
    assert [i["score"] for i in items] == [10, 6]
    assert [i["score"] for i in api.get("/nps/answers?with_comment=true").json["items"]] == [6]


def test_the_bonus_is_credited_once_per_answer_even_when_called_again(api, app, shop):
    program, member = shop
    survey_on(api, program["id"], bonus=7)
    with app.extensions["wallet"].sessions() as s:
        card_id = s.scalar(select(LoyaltyCard.id).where(LoyaltyCard.member_id == member["id"]))
        first = nps.answer_survey(s, card_id, 8, None, "en")
        second = nps.answer_survey(s, card_id, 10, None, "en")
        s.commit()
    assert (first.bonus, first.changed) == (7, False)
    assert (second.bonus, second.changed) == (0, True)
    assert second.answer.id == first.answer.id
    assert api.get(f"/members/{member['id']}").json["balance"] == 7


def test_bad_answers_are_shown_next_to_their_field(api, client, shop):
    program, member = shop
    survey_on(api, program["id"])
    # No CSRF token (a form posted from another site): refused, nothing recorded.
    r = client.post(survey_path(member), data={"score": "9", "lang": "en"})
    assert r.status_code == 400
    for score, comment, field in (("", "", "score"), ("11", "", "score"),
                                  ("-1", "", "score"), ("5", "x" * 1001, "comment")):
        r = answer(client, member, score, comment)
        html = r.get_data(as_text=True)
        assert r.status_code == 422, (score, comment)
        assert f'id="err-{field}"' in html and 'aria-invalid="true"' in html
    assert api.get("/nps/answers").json["items"] == []
    # A closed card's survey is gone.
    api.post(f"/members/{member['id']}/close")
    assert client.get(survey_path(member)).status_code == 404


def test_nps_by_month_hand_worked(api, app, other_api):
    """Europe/Moscow (UTC+3). September: 10, 9, 8, 6, 0 → 2 promoters, 1 passive,
    2 detractors: 40 % − 40 % = 0. October: 10, 10, 7 (one given 2026-09-30 22:30 UTC,
    already 1 October in Moscow) → 2/3 − 0 = 66.67. Both: 4 P, 2 Pa, 2 D of 8:
    50 % − 25 % = 25. November: none."""
    program = api.program()
    api.patch("/merchant", {"time_zone": "Europe/Moscow"})
    survey_on(api, program["id"])
    given = [(10, "2026-09-02T10:00"), (9, "2026-09-10T10:00"), (8, "2026-09-12T10:00"),
             (6, "2026-09-20T10:00"), (0, "2026-09-30T20:00"),
             (10, "2026-09-30T22:30"), (10, "2026-10-15T10:00"), (7, "2026-10-31T20:00")]
    with app.extensions["wallet"].sessions() as s:
        for i, (score, at) in enumerate(given):
            m = api.member(program["id"], phone=f"+7 912 111-22-{i:02d}")
            card_id = s.scalar(select(LoyaltyCard.id).where(LoyaltyCard.member_id == m["id"]))
            s.rollback()
            nps.answer_survey(s, card_id, score, f"c{i}" if score < 7 else None, "ru",
                              now=dt.datetime.fromisoformat(at + "+00:00"))
            s.commit()
    r = api.get("/nps?since=2026-09&until=2026-11")
    assert r.status_code == 200, r.json
    assert r.json["months"] == [
        {"month": "2026-09", "answers": 5, "promoters": 2, "passives": 1, "detractors": 2,
         "nps": "0.00"},
        {"month": "2026-10", "answers": 3, "promoters": 2, "passives": 1, "detractors": 0,
         "nps": "66.67"},
        {"month": "2026-11", "answers": 0, "promoters": 0, "passives": 0, "detractors": 0,
         "nps": None}]
    assert r.json["total"] == {"month": "2026-09..2026-11", "answers": 8, "promoters": 4,
                               "passives": 2, "detractors": 2, "nps": "25.00"}
    only = api.get(f"/nps?since=2026-10&until=2026-10&program_id={program['id']}").json
    assert only["total"]["nps"] == "66.67"
    comments = api.get("/nps/answers?with_comment=true").json["items"]
    assert [c["comment"] for c in comments] == ["c4", "c3"]

    # Another merchant sees none of it, and not the program.
    theirs = other_api.get("/nps?since=2026-09&until=2026-11").json
    assert theirs["total"]["answers"] == 0 and other_api.get("/nps/answers").json["items"] == []
    assert other_api.get(f"/nps?program_id={program['id']}").status_code == 404
    assert other_api.get(f"/nps/answers?program_id={program['id']}").status_code == 404


@pytest.mark.parametrize("query, field", [
    ("since=2026-13", "since"), ("until=26-01", "until"), ("until=9999-12", "until"),
    ("since=2026-05&until=2026-04", "until"), ("since=2000-01&until=2026-01", "since"),
    ("program_id=0", "program_id"), ("limit=5", "limit")])
def test_bad_report_queries_name_the_field(api, query, field):
    r = api.get(f"/nps?{query}")
    assert r.status_code in (400, 422), r.json
    assert field in [e["field"] for e in r.json["errors"]] or field in r.json["detail"], r.json


def test_score_arithmetic():
    assert nps.net_promoter_score(0, 0, 0) is None
    assert str(nps.net_promoter_score(1, 0, 0)) == "100.00"
    assert str(nps.net_promoter_score(0, 3, 0)) == "0.00"
    assert str(nps.net_promoter_score(1, 1, 1)) == "0.00"
    assert str(nps.net_promoter_score(0, 2, 1)) == "-33.33"
    assert [nps.category(n) for n in range(11)] == ["detractor"] * 7 + ["passive"] * 2 + [
        "promoter"] * 2


def test_erasure_clears_comments_and_keeps_scores(api, client, shop):
    program, member = shop
    survey_on(api, program["id"])
    assert answer(client, member, 4, "Call me on +7 912 345-67-89").status_code == 200
    assert api.post(f"/members/{member['id']}/erase").status_code == 200
    items = api.get("/nps/answers").json["items"]
    assert [(i["score"], i["comment"]) for i in items] == [(4, None)]
