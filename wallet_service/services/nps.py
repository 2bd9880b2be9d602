"""The NPS survey: "How likely are you to recommend us?" 0–10 and a comment, answered on a
page linked from the back of the card and from the card page.

A program's survey settings (``LoyaltyProgram.survey``) say whether it asks, the period
(``period_days``, 90 by default) and the action bonus for an answer (``bonus``, 0: none).
A member gives one answer per period: the period starts with the answer, and answering
again within it changes that answer (the customer corrects a slip; the score counts once)
instead of adding a second one; after it, the next answer is a new one. The bonus is an
action bonus (``services.bonuses``, rule ``action``, action ``nps``) keyed by the answer, so
it is credited once per period however often the answer is changed or the form re-sent.

The score (docs/nps-and-campaign-effect.md): promoters answer 9–10, passives 7–8, detractors 0–6;
NPS = % promoters − % detractors of the answers, from −100 to 100. Answers count in the
month of the merchant's local calendar they were first given in.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..db import utcnow
from ..errors import ResourceNotFound
from ..errors import ValidationFailed
from ..local_time import zone
from ..models import LoyaltyCard
from ..models import LoyaltyProgram
from ..models import Merchant
from ..models import NpsAnswer
from . import bonuses
from . import ledger
from .outbox import publish_program_change
from .programs import get_program

DEFAULT_PERIOD_DAYS = 90
MAX_COMMENT = 1000
CARDS = LoyaltyCard.__table__


@dataclass(frozen=True)
class SurveySettings:
    enabled: bool = False
    period_days: int = DEFAULT_PERIOD_DAYS
    bonus: int = 0

    @classmethod
    def of(cls, program: LoyaltyProgram) -> SurveySettings:
        data = program.survey or {}
        return cls(enabled=bool(data.get("enabled", False)),
                   period_days=int(data.get("period_days") or DEFAULT_PERIOD_DAYS),
                   bonus=int(data.get("bonus") or 0))


def category(score: int) -> str:
    """``promoter`` (9–10), ``passive`` (7–8) or ``detractor`` (0–6)."""
    return "promoter" if score >= 9 else "passive" if score >= 7 else "detractor"


def net_promoter_score(promoters: int, passives: int, detractors: int) -> Decimal | None:
    """% promoters − % detractors, to two decimals (half up); None without answers."""
    total = promoters + passives + detractors
    if total == 0:
        return None
    score = Decimal(100 * (promoters - detractors)) / Decimal(total)
    return score.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


# --- settings ---------------------------------------------------------------------------


def get_settings(session: Session, merchant_id: int, program_id: int) -> SurveySettings:
    """:raises ResourceNotFound: the program is missing or another merchant's."""
    return SurveySettings.of(get_program(session, merchant_id, program_id))


def update_settings(session: Session, merchant_id: int, program_id: int,
                    settings: SurveySettings) -> SurveySettings:
    """Store the program's survey settings. Turning the survey on or off changes every card
    (the link on the back of the pass comes or goes), so the cards get a new version.

    :raises ResourceNotFound: the program is missing or another merchant's.
    """
    program = get_program(session, merchant_id, program_id)
    before = SurveySettings.of(program)
    program.survey = {"enabled": settings.enabled, "period_days": settings.period_days,
                      "bonus": settings.bonus}
    if before.enabled != settings.enabled:
        now = utcnow()
        program.updated_at = now
        session.flush()
        publish_program_change(session, program.id, now)
    session.flush()
    return settings


# --- answering --------------------------------------------------------------------------


@dataclass(frozen=True)
class Answered:
    answer: NpsAnswer
    changed: bool  # an answer of the period was changed rather than a new one given
    bonus: int  # what this answer credited now (0 when none, or credited before)


def period_answer(session: Session, card_id: int, settings: SurveySettings,
                  now: dt.datetime) -> NpsAnswer | None:
    """The card's answer of the period running at ``now``, if it gave one."""
    since = now - dt.timedelta(days=settings.period_days)
    answer: NpsAnswer | None = session.scalar(
        select(NpsAnswer).where(NpsAnswer.card_id == card_id, NpsAnswer.answered_at > since)
        .order_by(NpsAnswer.answered_at.desc()).limit(1))
    return answer


def answer_survey(session: Session, card_id: int, score: int, comment: str | None,
                  language: str, now: dt.datetime | None = None) -> Answered:
    """Record the card's member's answer: a new one, or a change of the period's answer;
    credit the survey's bonus once per answer (the natural key names the answer).

    :raises ResourceNotFound: the card is missing, closed, or its program does not ask.
    :raises ValidationFailed: ``score`` is not 0–10 or ``comment`` is too long; the field
        is named.
    """
    if isinstance(score, bool) or not isinstance(score, int) or not 0 <= score <= 10:
        raise ValidationFailed("score: a whole number from 0 to 10", field="score")
    comment = (comment or "").strip() or None
    if comment is not None and len(comment) > MAX_COMMENT:
        raise ValidationFailed(f"comment: at most {MAX_COMMENT} characters", field="comment")
    now = now or utcnow()
    card = ledger.lock_card(session, card_id)  # one answer per period, even when racing
    program = session.get_one(LoyaltyProgram, card.program_id)
    settings = SurveySettings.of(program)
    if card.status != "active" or not settings.enabled:
        raise ResourceNotFound("the survey is not open for this card", field="card")
    answer = period_answer(session, card_id, settings, now)
    changed = answer is not None
    if answer is None:
        answer = NpsAnswer(merchant_id=program.merchant_id, program_id=program.id,
                           card_id=card_id, score=score, comment=comment, language=language,
                           answered_at=now, updated_at=now)
        session.add(answer)
    else:
        answer.score, answer.comment, answer.language = score, comment, language
        answer.updated_at = now
    session.flush()
    credited = 0
    if settings.bonus > 0:
        entry = bonuses.grant_bonus(
            session, program.merchant_id, card_id, settings.bonus, "action",
            key=f"action:{card_id}:nps:{answer.id}", reason="nps bonus", now=now,
            reference_id=answer.id, details={"action": "nps", "reference": str(answer.id)})
        credited = settings.bonus if entry is not None else 0
    return Answered(answer, changed, credited)


def next_answer_from(answer: NpsAnswer, settings: SurveySettings) -> dt.datetime:
    """When the period of ``answer`` ends and a new answer may be given."""
    return answer.answered_at + dt.timedelta(days=settings.period_days)


# --- results ----------------------------------------------------------------------------


@dataclass(frozen=True)
class MonthScore:
    month: str  # YYYY-MM in the merchant's calendar
    answers: int
    promoters: int
    passives: int
    detractors: int
    nps: Decimal | None


def _month(value: str, field: str) -> tuple[int, int]:
    try:
        year, month = (int(part) for part in value.split("-"))
        dt.date(year, month, 1)
    except ValueError:
        raise ValidationFailed(f"{field}: a month as YYYY-MM", field=field) from None
    if not 1970 <= year <= 2999:
        raise ValidationFailed(f"{field}: a month from 1970-01 to 2999-12", field=field)
    return year, month


def _months(first: tuple[int, int], last: tuple[int, int]) -> list[tuple[int, int]]:
    out = []
    year, month = first
    while (year, month) <= last:
        out.append((year, month))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


def scores_by_month(session: Session, merchant_id: int, *, program_id: int | None,
                    since: str | None, until: str | None,
                    now: dt.datetime | None = None) -> tuple[list[MonthScore], MonthScore]:
    """NPS per month of the merchant's calendar from ``since`` to ``until`` (``YYYY-MM``,
    both included; by default the 12 months up to the current one), months without answers
    included with a null score, and the whole range's score (``month`` ``since..until``).

    :raises ResourceNotFound: ``program_id`` is missing or another merchant's.
    :raises ValidationFailed: a month is malformed, ``until`` is before ``since`` or the
        range is longer than 120 months; the field is named.
    """
    now = now or utcnow()
    merchant = session.get_one(Merchant, merchant_id)
    tz = zone(merchant.time_zone)
    today = now.astimezone(tz).date()
    last = _month(until, "until") if until else (today.year, today.month)
    if since:
        first = _month(since, "since")
    else:
        first = (last[0] - 1, last[1] + 1) if last[1] < 12 else (last[0], 1)
    if first > last:
        raise ValidationFailed("until: must not be before since", field="until")
    months = _months(first, last)
    if len(months) > 120:
        raise ValidationFailed("since: at most 120 months at once", field="since")
    if program_id is not None:
        get_program(session, merchant_id, program_id)
    start = dt.datetime(*first, 1, tzinfo=tz).astimezone(dt.UTC)
    end_year, end_month = (last[0] + 1, 1) if last[1] == 12 else (last[0], last[1] + 1)
    end = dt.datetime(end_year, end_month, 1, tzinfo=tz).astimezone(dt.UTC)
    query = (select(NpsAnswer.answered_at, NpsAnswer.score)
             .where(NpsAnswer.merchant_id == merchant_id, NpsAnswer.answered_at >= start,
                    NpsAnswer.answered_at < end))
    if program_id is not None:
        query = query.where(NpsAnswer.program_id == program_id)
    counts: dict[tuple[int, int], list[int]] = {m: [0, 0, 0] for m in months}
    for answered_at, score in session.execute(query):
        local = answered_at.astimezone(tz)
        slot = counts.get((local.year, local.month))
        if slot is not None:
            slot[("promoter", "passive", "detractor").index(category(score))] += 1
    rows = [_score(f"{y:04d}-{m:02d}", *counts[(y, m)]) for y, m in months]
    total = [sum(c[i] for c in counts.values()) for i in range(3)]
    label = f"{months[0][0]:04d}-{months[0][1]:02d}..{months[-1][0]:04d}-{months[-1][1]:02d}"
    return rows, _score(label, *total)


def _score(month: str, promoters: int, passives: int, detractors: int) -> MonthScore:
    return MonthScore(month, promoters + passives + detractors, promoters, passives,
                      detractors, net_promoter_score(promoters, passives, detractors))


def list_answers(session: Session, merchant_id: int, *, program_id: int | None,
                 with_comment: bool, limit: int, before_id: int | None,
                 ) -> Sequence[tuple[NpsAnswer, int]]:
    """The merchant's answers, newest first, with their member's id: all, or only those with
    a comment; a page of ``limit`` before ``before_id``.

    :raises ResourceNotFound: ``program_id`` is missing or another merchant's.
    """
    if program_id is not None:
        get_program(session, merchant_id, program_id)
    query = (select(NpsAnswer, CARDS.c.member_id)
             .join(CARDS, CARDS.c.id == NpsAnswer.card_id)
             .where(NpsAnswer.merchant_id == merchant_id)
             .order_by(NpsAnswer.id.desc()).limit(limit))
    if program_id is not None:
        query = query.where(NpsAnswer.program_id == program_id)
    if with_comment:
        query = query.where(NpsAnswer.comment.is_not(None))
    if before_id is not None:
        query = query.where(NpsAnswer.id < before_id)
    return [(row[0], row[1]) for row in session.execute(query)]


def forget_comments(session: Session, card_id: int) -> None:
    """Erasure: a comment is the member's own words; the scores stay, anonymous."""
    for answer in session.scalars(select(NpsAnswer).where(NpsAnswer.card_id == card_id)):
        answer.comment = None
