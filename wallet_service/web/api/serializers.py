"""How the merchant API shows what the services return: one function per resource, from
models and service dataclasses to the response models of :mod:`wallet_service.schemas`.
Services never build response models; views call these."""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP
from decimal import Decimal
from http import HTTPStatus
from typing import Any

from sqlalchemy.orm import Session

from ... import rules
from ... import schemas as s
from ... import urls
from ...config import Settings
from ...db import utcnow
from ...models import ApiKey
from ...models import Campaign
from ...models import Coupon
from ...models import Location
from ...models import LoyaltyCard
from ...models import LoyaltyProgram
from ...models import Member
from ...models import Merchant
from ...models import NpsAnswer
from ...models import Reward
from ...models import WebhookEndpoint
from ...services import analytics
from ...services import campaigns
from ...services import ledger
from ...services import nps
from ...services import wallet_events
from ...services import webhooks
from ...services.imports import ImportReport
from ...services.personal_data import MemberData
from ...services.programs import program_document
from ...services.rewards import MemberCoupon
from ..links import member_links


def program_out(program: LoyaltyProgram, public_url: str) -> s.ProgramOut:
    return s.ProgramOut(
        id=program.id,
        join_url=urls.join_url(public_url, program.join_token),
        created_at=program.created_at,
        updated_at=program.updated_at,
        **program_document(program).model_dump(),
    )


def member_out(session: Session, settings: Settings, member: Member) -> s.MemberOut:
    """The member and their card (never a call to Google: its save link is the service's
    own, ``web.links.google_save_url``)."""
    card = member.card
    program = session.get_one(LoyaltyProgram, member.program_id)
    return s.MemberOut(
        id=member.id,
        program_id=member.program_id,
        name=member.name,
        phone=member.phone,
        email=member.email,
        birthday=member.birthday,
        external_id=member.external_id,
        consent=(
            s.Consent(text=member.consent_text, accepted_at=member.consent_at,
                      withdrawn_at=member.consent_withdrawn_at)
            if member.consent_text and member.consent_at else None
        ),
        marketing_consent=marketing_consent_out(member),
        answers=member.answers or {},
        source=member.source,
        erased_at=member.erased_at,
        serial_number=card.serial_number,
        card_number=card.serial_number,
        status=card.status,
        balance=card.balance,
        tier=card.tier,
        manual_tier=(s.ManualTierOut(tier=card.manual_tier, until=card.manual_tier_until)
                     if card.manual_tier is not None else None),
        lifetime_points=card.lifetime_points,
        lifetime_spend=rules.from_minor(program.currency, card.lifetime_spend_minor),
        stamps=card.stamps,
        stamp_debt=card.stamp_debt,
        visits=card.visits,
        referral_code=card.referral_code,
        message=card.message,
        reminder=card.reminder,
        version=card.version,
        **standing_out(card_standing(session, program, card)),
        created_at=member.created_at,
        **member_links(settings, card),
    )


def marketing_consent_out(member: Member) -> s.MarketingConsentOut:
    return s.MarketingConsentOut(given=member.marketing_consent,
                                 text=member.marketing_consent_text,
                                 accepted_at=member.marketing_consent_at,
                                 withdrawn_at=member.marketing_consent_withdrawn_at)


def wallet_event_out(event: wallet_events.Event) -> s.WalletEventOut:
    return s.WalletEventOut(id=event.id, member_id=event.member_id, wallet=event.wallet,
                            event=event.event, cause=event.cause,
                            occurred_at=event.occurred_at)


def member_export(data: MemberData, exported_at: dt.datetime) -> s.MemberExport:
    """A member's data as the export file holds it."""
    member, card = data.member, data.member.card
    return s.MemberExport(
        exported_at=exported_at,
        member=s.ExportedMember(
            id=member.id, program_id=member.program_id, name=member.name, phone=member.phone,
            email=member.email, birthday=member.birthday, external_id=member.external_id,
            answers=member.answers or {}, source=member.source, created_at=member.created_at,
            erased_at=member.erased_at),
        consents=s.ExportedConsents(
            data_processing=s.ProcessingConsentOut(
                text=member.consent_text, accepted_at=member.consent_at,
                withdrawn_at=member.consent_withdrawn_at),
            marketing=marketing_consent_out(member)),
        card=s.ExportedCard(
            serial_number=card.serial_number, status=card.status, balance=card.balance,
            tier=card.tier, lifetime_points=card.lifetime_points,
            lifetime_spend=rules.from_minor(data.currency, card.lifetime_spend_minor),
            stamps=card.stamps, visits=card.visits, last_visit_at=card.last_visit_at,
            referral_code=card.referral_code, message=card.message, version=card.version,
            created_at=card.created_at),
        transactions=[transaction_out(e, data.currency) for e in data.transactions],
        coupons=[member_coupon_out(c) for c in data.coupons],
        registrations=data.apple_devices,
        wallet_events=[wallet_event_out(e) for e in data.wallet_events],
    )


def card_standing(session: Session, program: LoyaltyProgram,
                  card: LoyaltyCard) -> rules.Standing:
    """What the card holds for its program's kind, and the way to the next tier over the
    program's tier basis and window, as the pass and the card page show it."""
    totals = ledger.tier_totals(session, card, program.rules, utcnow().date())
    return rules.standing(program.kind, program.rules, program.currency, card, totals)


def standing_out(standing: rules.Standing) -> dict[str, Any]:
    """The member answer's fields that say what the card holds for its program's kind
    (:func:`wallet_service.rules.standing`, as the pass, the Google card and the card page
    show it)."""
    progress, upcoming = standing.tier_progress, standing.next_discount
    return {
        "tier_progress": None if progress is None else s.TierProgressOut(
            next_tier=progress.next_tier, basis=progress.basis, left=progress.left,
            percent=progress.percent),
        "kind": standing.kind,
        "stamps_goal": standing.stamps_goal,
        "rewards_ready": standing.rewards_ready,
        "reward": standing.reward,
        "cashback": (None if standing.cashback is None
                     else s.MoneyOut(amount=standing.cashback, currency=standing.currency)),
        "cashback_percent": standing.cashback_percent,
        "discount_percent": standing.discount_percent,
        "next_discount": None if upcoming is None else s.NextDiscountOut(
            tier=upcoming.tier, percent=upcoming.percent, basis=upcoming.basis,
            left=upcoming.left, spend_left=upcoming.spend_left),
    }


def transaction_out(txn: ledger.Entry, currency: str) -> s.TransactionOut:
    return s.TransactionOut(
        id=txn.id,
        member_id=txn.member_id,
        type=txn.type,
        points=txn.points,
        amount=None if txn.amount_minor is None else rules.from_minor(currency, txn.amount_minor),
        reason=txn.reason,
        balance_after=txn.balance_after,
        tier_after=txn.tier_after,
        stamps=txn.stamps,
        reference_id=txn.reference_id,
        details=txn.details,
        created_at=txn.created_at,
    )


def reward_out(reward: Reward) -> s.RewardOut:
    return s.RewardOut(id=reward.id, program_id=reward.program_id, name=reward.name,
                       description=reward.description, cost_points=reward.cost_points,
                       cost_stamps=reward.cost_stamps, active=reward.active)


def coupon_out(coupon: Coupon, granted: int, used: int) -> s.CouponOut:
    return s.CouponOut(id=coupon.id, program_id=coupon.program_id, title=coupon.title,
                       description=coupon.description, segment=s.Segment(**coupon.segment),
                       valid_from=coupon.valid_from, valid_until=coupon.valid_until,
                       granted=granted, used=used, retired_at=coupon.retired_at,
                       evergreen=coupon.evergreen)


def member_coupon_out(c: MemberCoupon) -> s.MemberCoupon:
    return s.MemberCoupon(grant_id=c.grant_id, coupon_id=c.coupon_id, title=c.title,
                          description=c.description,
                          valid_from=c.valid_from, valid_until=c.valid_until,
                          used_at=c.used_at, retired_at=c.retired_at)


def campaign_out(campaign: Campaign) -> s.CampaignOut:
    return s.CampaignOut(id=campaign.id, program_id=campaign.program_id, text=campaign.text,
                         segment=s.Segment(**campaign.segment), reached=campaign.reached,
                         holdout_percent=campaign.holdout_percent or 0,
                         held_out=campaign.held_out or 0, holdout_seed=campaign.holdout_seed,
                         created_at=campaign.created_at)


_RATE = Decimal("0.0001")


def _per(value: Decimal | int, members: int) -> Decimal | None:
    if members == 0:
        return None
    return (Decimal(value) / members).quantize(_RATE, rounding=ROUND_HALF_UP)


def _group_effect(group: campaigns.GroupEffect, currency: str) -> s.GroupEffectOut:
    revenue = Decimal(group.revenue_minor) / rules.minor_units(currency)
    return s.GroupEffectOut(
        members=group.members, purchases=group.purchases,
        purchasing_members=group.purchasing,
        revenue=s.MoneyOut(amount=revenue, currency=currency),
        purchases_per_member=_per(group.purchases, group.members),
        purchasing_rate=_per(group.purchasing, group.members),
        revenue_per_member=_per(revenue, group.members))


def campaign_effect_out(effect: campaigns.Effect) -> s.CampaignEffectOut:
    """Both groups' purchases and rates per member, and reached minus holdout."""
    reached = _group_effect(effect.reached, effect.currency)
    holdout = _group_effect(effect.holdout, effect.currency)

    def minus(name: str) -> Decimal | None:
        a, b = getattr(reached, name), getattr(holdout, name)
        return None if a is None or b is None else a - b

    return s.CampaignEffectOut(
        campaign_id=effect.campaign.id, window_start=effect.window_start,
        window_end=effect.window_end, complete=effect.complete, reached=reached,
        holdout=holdout, difference=s.EffectDifferenceOut(
            purchases_per_member=minus("purchases_per_member"),
            purchasing_rate=minus("purchasing_rate"),
            revenue_per_member=minus("revenue_per_member")))


def survey_settings_out(program_id: int, settings: nps.SurveySettings) -> s.SurveySettingsOut:
    return s.SurveySettingsOut(program_id=program_id, enabled=settings.enabled,
                               period_days=settings.period_days, bonus=settings.bonus)


def nps_month_out(row: nps.MonthScore) -> s.NpsMonthOut:
    return s.NpsMonthOut(month=row.month, answers=row.answers, promoters=row.promoters,
                         passives=row.passives, detractors=row.detractors, nps=row.nps)


def nps_answer_out(answer: NpsAnswer, member_id: int) -> s.NpsAnswerOut:
    return s.NpsAnswerOut(
        id=answer.id, program_id=answer.program_id, member_id=member_id, score=answer.score,
        category=nps.category(answer.score), comment=answer.comment,  # type: ignore[arg-type]
        language=answer.language, answered_at=answer.answered_at,
        updated_at=answer.updated_at)


def merchant_out(merchant: Merchant) -> s.MerchantOut:
    return s.MerchantOut(id=merchant.id, name=merchant.name, time_zone=merchant.time_zone)


def location_out(location: Location, merchant_time_zone: str) -> s.LocationOut:
    """The store; without a time zone of its own it is in the merchant's."""
    return s.LocationOut(
        id=location.id, name=location.name, address=location.address,
        latitude=location.latitude, longitude=location.longitude,
        time_zone=location.time_zone,
        effective_time_zone=location.time_zone or merchant_time_zone,
        relevant_text=location.relevant_text,
        created_at=location.created_at, updated_at=location.updated_at)


def api_key_out(key: ApiKey) -> s.ApiKeyOut:
    return s.ApiKeyOut(id=key.id, name=key.name, prefix=key.prefix, scope=key.scope,
                       created_at=key.created_at, revoked_at=key.revoked_at)


def transaction_result(posted: ledger.Posted) -> Any:
    """The answer to a posted operation: 201 with the entry and the card's balance and tier
    after everything the request did (a first purchase's referral bonus included; the
    entry's own ``balance_after`` stays the entry's); a replay says so in
    ``Idempotent-Replayed``."""
    headers = {"Idempotent-Replayed": "true"} if posted.replayed else {}
    return transaction_payload(posted), HTTPStatus.CREATED, headers


def transaction_payload(posted: ledger.Posted) -> s.TransactionResult:
    """The result document of a posted operation (a batch item's ``result`` too)."""
    return s.TransactionResult(transaction=transaction_out(posted.entry, posted.currency),
                               balance=posted.balance, tier=posted.tier)


def import_report_out(report: ImportReport) -> s.ImportOut:
    return s.ImportOut(
        program_id=report.program_id, dry_run=report.dry_run,
        encoding=report.encoding,  # type: ignore[arg-type]
        delimiter=report.delimiter, columns=report.columns, ignored=report.ignored,
        rows=report.rows, imported=report.imported, existing=report.existing,
        points=report.points, stamps=report.stamps,
        rejected=[s.ImportRejectedOut(row=r.row, field=r.field, reason=r.reason)
                  for r in report.rejected])


def webhook_out(endpoint: WebhookEndpoint) -> s.WebhookOut:
    return s.WebhookOut(
        id=endpoint.id, url=endpoint.url, description=endpoint.description,
        events=list(endpoint.events), enabled=endpoint.enabled,
        disabled_reason=endpoint.disabled_reason, disabled_at=endpoint.disabled_at,
        failing_since=endpoint.failing_since, created_at=endpoint.created_at,
        updated_at=endpoint.updated_at)


def webhook_delivery_out(delivery: webhooks.Delivery) -> s.WebhookDeliveryOut:
    return s.WebhookDeliveryOut.model_validate(delivery, from_attributes=True)


# --- analytics: the response models, and the same numbers as CSV tables -------------------


def analytics_period(sc: analytics.Scope) -> s.AnalyticsPeriod:
    previous_start, previous_end = sc.previous
    return s.AnalyticsPeriod(
        program_ids=list(sc.program_ids), location_id=sc.location_id, start=sc.start,
        end=sc.end, previous_start=previous_start, previous_end=previous_end,
        time_zone=sc.time_zone, currency=sc.currency, refreshed_at=sc.refreshed_at)


#: A CSV table: the header row, then the rows.
Table = tuple[list[str], list[list[Any]]]


def analytics_summary_out(result: analytics.Summary) -> s.AnalyticsSummary:
    return s.AnalyticsSummary(period=analytics_period(result.scope), metrics=[
        s.AnalyticsMetric(key=m.key, unit=m.unit,  # type: ignore[arg-type]
                          value=m.value, previous=m.previous, change=m.change,
                          change_percent=m.change_percent) for m in result.metrics])


def analytics_summary_table(out: s.AnalyticsSummary) -> Table:
    return (["metric", "unit", "value", "previous", "change", "change_percent"],
            [[m.key, m.unit, m.value, m.previous, m.change, m.change_percent]
             for m in out.metrics])


def analytics_daily_out(sc: analytics.Scope, days: list[analytics.Day]) -> s.AnalyticsDaily:
    return s.AnalyticsDaily(period=analytics_period(sc), days=[
        s.AnalyticsDayOut(day=d.day, **d.values) for d in days])  # type: ignore[arg-type]


def analytics_daily_table(out: s.AnalyticsDaily) -> Table:
    header = list(s.AnalyticsDayOut.model_fields)
    return header, [[getattr(d, h) for h in header] for d in out.days]


def analytics_cohorts_out(sc: analytics.Scope,
                          cohorts: list[analytics.Cohort]) -> s.AnalyticsCohorts:
    return s.AnalyticsCohorts(period=analytics_period(sc), cohorts=[
        s.AnalyticsCohortOut(month=c.month, members=c.members, retention=c.retention,
                             ltv_minor={str(k): v for k, v in c.ltv.items()})
        for c in cohorts])


def analytics_cohorts_table(out: s.AnalyticsCohorts) -> Table:
    width = max((len(c.retention) for c in out.cohorts), default=0)
    header = (["month", "members"] + [f"ltv_month_{k}_minor" for k in analytics.LTV_MONTHS]
              + [f"retention_month_{i}" for i in range(width)])
    rows = [[c.month, c.members] + [c.ltv_minor.get(str(k)) for k in analytics.LTV_MONTHS]
            + c.retention + [None] * (width - len(c.retention)) for c in out.cohorts]
    return header, rows


def analytics_points_out(sc: analytics.Scope,
                         programs: list[analytics.ProgramPoints]) -> s.AnalyticsPoints:
    return s.AnalyticsPoints(period=analytics_period(sc), programs=[
        s.AnalyticsProgramPoints(
            program_id=p.program_id, name=p.name, kind=p.kind, currency=p.currency,
            point_value_minor=(float(p.point_value_minor)
                               if p.point_value_minor is not None else None),
            outstanding=p.outstanding, liability_minor=p.liability_minor, issued=p.issued,
            redeemed=p.redeemed, expired=p.expired, redemption_rate=p.redemption_rate,
            breakage=p.breakage, breakage_to_date=p.breakage_to_date) for p in programs])


def analytics_points_table(out: s.AnalyticsPoints) -> Table:
    header = list(s.AnalyticsProgramPoints.model_fields)
    return header, [[getattr(p, h) for h in header] for p in out.programs]


def analytics_popularity_out(sc: analytics.Scope,
                             items: list[analytics.Item]) -> s.AnalyticsPopularity:
    return s.AnalyticsPopularity(period=analytics_period(sc), items=[
        s.AnalyticsItem(kind=i.kind, id=i.id, name=i.name, count=i.count)  # type: ignore[arg-type]
        for i in items])


def analytics_popularity_table(out: s.AnalyticsPopularity) -> Table:
    header = list(s.AnalyticsItem.model_fields)
    return header, [[getattr(i, h) for h in header] for i in out.items]


def analytics_tills_out(sc: analytics.Scope, tills: list[analytics.Till]) -> s.AnalyticsTills:
    return s.AnalyticsTills(period=analytics_period(sc), items=[
        s.AnalyticsTill(id=t.key, name=t.name, purchases=t.purchases,
                        paid_purchases=t.paid_purchases, revenue_minor=t.revenue_minor,
                        average_check_minor=t.average_check_minor,
                        points_issued=t.points_issued, rewards_redeemed=t.rewards_redeemed,
                        coupons_redeemed=t.coupons_redeemed, manual_entries=t.manual_entries)
        for t in tills])


def analytics_tills_table(out: s.AnalyticsTills) -> Table:
    header = list(s.AnalyticsTill.model_fields)
    return header, [[getattr(t, h) for h in header] for t in out.items]


def analytics_tiers_out(sc: analytics.Scope, result: analytics.Tiers) -> s.AnalyticsTiers:
    return s.AnalyticsTiers(
        period=analytics_period(sc), as_of=result.as_of,
        distribution=[s.AnalyticsTierCount(tier=t.tier, members=t.members)
                      for t in result.distribution],
        movements=[s.AnalyticsTierMove(from_tier=m.from_tier, to_tier=m.to_tier,
                                       members=m.members) for m in result.movements])


def analytics_tiers_table(out: s.AnalyticsTiers) -> Table:
    rows: list[list[Any]] = [["members", t.tier, None, t.members] for t in out.distribution]
    rows += [["move", m.from_tier, m.to_tier, m.members] for m in out.movements]
    return ["kind", "tier", "to_tier", "members"], rows
