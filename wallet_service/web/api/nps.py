"""The NPS survey: its settings per program, the score by month and the answers."""

from __future__ import annotations

from pydantic import Field

from ... import schemas as s
from ...permissions import Permission
from ...services import nps
from .. import get_session
from ._blueprint import bp
from ._blueprint import current_merchant
from .serializers import nps_answer_out
from .serializers import nps_month_out
from .serializers import survey_settings_out

_MONTH = r"^\d{4}-(0[1-9]|1[0-2])$"


@bp.operation("/programs/<int:program_id>/survey", "GET", summary="The NPS survey's settings",
              response=s.SurveySettingsOut, errors=(404,), tags=("nps",),
              permission=Permission.READ)
def get_survey(program_id: int) -> s.SurveySettingsOut:
    settings = nps.get_settings(get_session(), current_merchant(), program_id)
    return survey_settings_out(program_id, settings)


@bp.operation("/programs/<int:program_id>/survey", "PUT",
              summary="Set the NPS survey's settings", body=s.SurveySettingsIn,
              response=s.SurveySettingsOut, errors=(404,), tags=("nps",),
              permission=Permission.SETTINGS)
def put_survey(program_id: int, body: s.SurveySettingsIn) -> s.SurveySettingsOut:
    """With `enabled`, the back of every card of the program and the card page link the
    survey ("How likely are you to recommend us?" 0–10 and a comment); turning it on or off
    updates the cards on the phones. A member answers once per `period_days` from their
    answer: answering again within the period changes that answer (it still counts once,
    in the month it was first given). `bonus` is credited as an action bonus (`action`
    `nps`) once per answer, so once per period."""
    session = get_session()
    settings = nps.update_settings(session, current_merchant(), program_id, nps.SurveySettings(
        enabled=body.enabled, period_days=body.period_days, bonus=body.bonus))
    session.commit()
    return survey_settings_out(program_id, settings)


class NpsQuery(s.Strict):
    program_id: s.Id | None = Field(None, description="One program's answers only")
    since: str | None = Field(None, pattern=_MONTH, description="First month, YYYY-MM "
                                                                "(default: 11 months before "
                                                                "`until`)")
    until: str | None = Field(None, pattern=_MONTH, description="Last month, YYYY-MM "
                                                                "(default: this month)")


@bp.operation("/nps", "GET", summary="NPS by month", query=NpsQuery, response=s.NpsReport,
              errors=(404,), tags=("nps",), permission=Permission.READ)
def nps_report(query: NpsQuery) -> s.NpsReport:
    """Promoters (9–10), passives (7–8) and detractors (0–6) and NPS = % promoters −
    % detractors per month of the merchant's time zone (an answer counts in the month it
    was first given), every month of the range listed, and the range's total. At most 120
    months (422 naming `since`)."""
    months, total = nps.scores_by_month(get_session(), current_merchant(),
                                        program_id=query.program_id, since=query.since,
                                        until=query.until)
    return s.NpsReport(months=[nps_month_out(m) for m in months], total=nps_month_out(total))


class NpsAnswerQuery(s.Strict):
    program_id: s.Id | None = Field(None, description="One program's answers only")
    with_comment: bool = Field(False, description="Only answers with a comment")
    limit: int = Field(50, ge=1, le=200)
    cursor: str | None = Field(None, pattern=r"^\d{1,18}$",
                               description="`next_cursor` of the previous page")


@bp.operation("/nps/answers", "GET", summary="NPS answers and comments, newest first",
              query=NpsAnswerQuery, response=s.NpsAnswerList, errors=(404,), tags=("nps",),
              permission=Permission.READ)
def nps_answers(query: NpsAnswerQuery) -> s.NpsAnswerList:
    found = nps.list_answers(get_session(), current_merchant(), program_id=query.program_id,
                             with_comment=query.with_comment, limit=query.limit,
                             before_id=int(query.cursor) if query.cursor else None)
    next_cursor = str(found[-1][0].id) if len(found) == query.limit else None
    return s.NpsAnswerList(items=[nps_answer_out(a, member_id) for a, member_id in found],
                           next_cursor=next_cursor)
