"""How the merchant API shows what the services return: one function per resource, from
models and service dataclasses to the response models of :mod:`wallet_service.schemas`.
Services never build response models; views call these."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from sqlalchemy.orm import Session

from ... import rules
from ... import schemas as s
from ... import urls
from ...config import Settings
from ...models import ApiKey
from ...models import Campaign
from ...models import Coupon
from ...models import LoyaltyCard
from ...models import LoyaltyProgram
from ...models import Member
from ...models import Reward
from ...services import ledger
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
    """The member and their card. Giving the Google save link may record a first insert
    of the card's Google object in ``session``: the view commits it."""
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
            s.Consent(text=member.consent_text, accepted_at=member.consent_at)
            if member.consent_text and member.consent_at else None
        ),
        answers=member.answers or {},
        source=member.source,
        serial_number=card.serial_number,
        card_number=card.serial_number,
        status=card.status,
        balance=card.balance,
        tier=card.tier,
        lifetime_points=card.lifetime_points,
        lifetime_spend=rules.from_minor(program.currency, card.lifetime_spend_minor),
        stamps=card.stamps,
        visits=card.visits,
        referral_code=card.referral_code,
        message=card.message,
        version=card.version,
        tier_progress=tier_progress_out(program, card),
        created_at=member.created_at,
        **member_links(settings, card, session),
    )


def tier_progress_out(program: LoyaltyProgram, card: LoyaltyCard) -> s.TierProgressOut | None:
    progress = rules.tier_progress(
        program.rules, program.currency, card.tier,
        rules.Totals(card.lifetime_points, card.lifetime_spend_minor, card.visits))
    if progress is None:
        return None
    return s.TierProgressOut(next_tier=progress.next_tier, basis=progress.basis,
                             left=progress.left, percent=progress.percent)


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
                       granted=granted, used=used)


def member_coupon_out(c: MemberCoupon) -> s.MemberCoupon:
    return s.MemberCoupon(grant_id=c.grant_id, coupon_id=c.coupon_id, title=c.title,
                          description=c.description,
                          valid_from=c.valid_from, valid_until=c.valid_until,
                          used_at=c.used_at)


def campaign_out(campaign: Campaign) -> s.CampaignOut:
    return s.CampaignOut(id=campaign.id, program_id=campaign.program_id, text=campaign.text,
                         segment=s.Segment(**campaign.segment), reached=campaign.reached,
                         created_at=campaign.created_at)


def api_key_out(key: ApiKey) -> s.ApiKeyOut:
    return s.ApiKeyOut(id=key.id, name=key.name, prefix=key.prefix,
                       created_at=key.created_at, revoked_at=key.revoked_at)


def transaction_result(posted: ledger.Posted) -> Any:
    """The answer to a posted operation: 201 with the entry and the new balance; a replay
    says so in ``Idempotent-Replayed``."""
    txn = posted.entry
    result = s.TransactionResult(transaction=transaction_out(txn, posted.currency),
                                 balance=txn.balance_after, tier=txn.tier_after)
    headers = {"Idempotent-Replayed": "true"} if posted.replayed else {}
    return result, HTTPStatus.CREATED, headers
