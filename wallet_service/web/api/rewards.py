"""The rewards catalog and coupons: create, change, retire, claim and use."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from ... import schemas as s
from ...permissions import Permission
from ...services import rewards
from .. import get_session
from ._blueprint import bp
from ._blueprint import current_actor
from ._blueprint import current_merchant
from ._blueprint import idempotency_header
from ._blueprint import post_once
from .campaigns import segment
from .serializers import coupon_out
from .serializers import member_coupon_out
from .serializers import reward_out
from .serializers import transaction_result


@bp.operation("/programs/<int:program_id>/rewards", "POST", summary="Add a catalog reward",
              body=s.RewardCreate, response=s.RewardOut, status=HTTPStatus.CREATED,
              errors=(404,), tags=("rewards",), permission=Permission.SETTINGS)
def create_reward(program_id: int, body: s.RewardCreate) -> s.RewardOut:
    session = get_session()
    reward = rewards.create_reward(session, current_merchant(), program_id,
                                   rewards.NewReward(**body.model_dump()))
    session.commit()
    return reward_out(reward)


@bp.operation("/programs/<int:program_id>/rewards", "GET", summary="The rewards catalog",
              query=s.RewardQuery, response=s.RewardList, errors=(404,), tags=("rewards",),
              permission=Permission.READ)
def list_rewards(program_id: int, query: s.RewardQuery) -> s.RewardList:
    """Rewards members can claim; retired ones too with `include_retired=true`."""
    found = rewards.list_rewards(get_session(), current_merchant(), program_id,
                                 include_retired=query.include_retired)
    return s.RewardList(items=[reward_out(r) for r in found])


@bp.operation("/programs/<int:program_id>/rewards/<int:reward_id>", "PATCH",
              summary="Change a catalog reward", body=s.RewardUpdate, merge_patch=True,
              response=s.RewardOut, errors=(404,), tags=("rewards",),
              permission=Permission.SETTINGS)
def update_reward(program_id: int, reward_id: int, body: dict[str, Any]) -> s.RewardOut:
    """`name`, `description`, `cost_points`, `cost_stamps`; the merged reward is checked as
    a new one is (exactly one cost). Claims already made keep their entries."""
    session = get_session()
    reward = rewards.update_reward(session, current_merchant(), program_id, reward_id, body)
    session.commit()
    return reward_out(reward)


@bp.operation("/programs/<int:program_id>/rewards/<int:reward_id>/retire", "POST",
              summary="Retire a catalog reward", response=s.RewardOut, errors=(404,),
              tags=("rewards",), permission=Permission.SETTINGS)
def retire_reward(program_id: int, reward_id: int) -> s.RewardOut:
    """The reward leaves the catalog (`active` turns false) and can no longer be claimed:
    claiming it gives 404, as for a reward that does not exist. Claims already made stay in
    the members' histories. Retiring twice is harmless."""
    session = get_session()
    reward = rewards.retire_reward(session, current_merchant(), program_id, reward_id)
    session.commit()
    return reward_out(reward)


@bp.operation("/members/<int:member_id>/rewards/<int:reward_id>/redeem", "POST",
              summary="Claim a catalog reward", response=s.TransactionResult,
              status=HTTPStatus.CREATED, errors=(400, 404, 409, 422), tags=("rewards",),
              headers=idempotency_header("reward.redeem"),
              permission=Permission.TRANSACTIONS_WRITE)
def redeem_reward(member_id: int, reward_id: int) -> Any:
    """Takes the reward's cost in points or stamps, checked under the card's lock (409 when
    the balance is short). A key that claimed one reward for one member claims nothing else:
    another reward, another member or another operation with it is 422."""
    return transaction_result(post_once(lambda key: rewards.redeem_reward(
        get_session(), current_merchant(), member_id, reward_id, idempotency_key=key,
        actor=current_actor())))


@bp.operation("/programs/<int:program_id>/coupons", "POST",
              summary="Give a coupon to a member or a segment", body=s.CouponCreate,
              response=s.CouponOut, status=HTTPStatus.CREATED, errors=(404,), tags=("rewards",),
              permission=Permission.SETTINGS)
def create_coupon(program_id: int, body: s.CouponCreate) -> s.CouponOut:
    """The segment (`member_ids`, `tier`, `inactive_days`, `birthday_month`) is resolved
    now; every card in it shows the coupon while it is valid and unused. An `evergreen`
    coupon also reaches members who enter the segment later: the daily job gives it to them,
    once per member, until `valid_until`. A `segment.tier` the program does not have is
    422."""
    session = get_session()
    coupon, _ = rewards.create_coupon(session, current_merchant(), program_id, rewards.NewCoupon(
        title=body.title, description=body.description, segment=segment(body.segment),
        valid_from=body.valid_from, valid_until=body.valid_until, evergreen=body.evergreen))
    session.commit()
    return coupon_out(coupon, *rewards.coupon_counts(session, coupon.id))


@bp.operation("/programs/<int:program_id>/coupons/<int:coupon_id>", "PATCH",
              summary="Change a coupon", body=s.CouponUpdate, merge_patch=True,
              response=s.CouponOut, errors=(404,), tags=("rewards",),
              permission=Permission.SETTINGS)
def update_coupon(program_id: int, coupon_id: int, body: dict[str, Any]) -> s.CouponOut:
    """`title`, `description`, `valid_until`; the merged coupon is checked as a new one is.
    Every card that shows the coupon is updated on the customer's phone."""
    session = get_session()
    coupon = rewards.update_coupon(session, current_merchant(), program_id, coupon_id, body)
    session.commit()
    return coupon_out(coupon, *rewards.coupon_counts(session, coupon.id))


@bp.operation("/programs/<int:program_id>/coupons/<int:coupon_id>/retire", "POST",
              summary="Retire a coupon", response=s.CouponOut, errors=(404,),
              tags=("rewards",), permission=Permission.SETTINGS)
def retire_coupon(program_id: int, coupon_id: int) -> s.CouponOut:
    """The coupon leaves every card that shows it and can no longer be used (404); a member
    who used it keeps it in their coupons and history. Retiring twice is harmless."""
    session = get_session()
    coupon = rewards.retire_coupon(session, current_merchant(), program_id, coupon_id)
    session.commit()
    return coupon_out(coupon, *rewards.coupon_counts(session, coupon.id))


@bp.operation("/members/<int:member_id>/coupons", "GET", summary="A member's coupons",
              response=s.MemberCouponList, errors=(404,), tags=("rewards",),
              permission=Permission.READ)
def list_member_coupons(member_id: int) -> s.MemberCouponList:
    items = rewards.list_member_coupons(get_session(), current_merchant(), member_id)
    return s.MemberCouponList(items=[member_coupon_out(i) for i in items])


@bp.operation("/members/<int:member_id>/coupons/<int:coupon_id>/redeem", "POST",
              summary="Use a member's coupon", response=s.TransactionResult,
              status=HTTPStatus.CREATED, errors=(400, 404, 409, 422), tags=("rewards",),
              headers=idempotency_header("coupon.redeem"),
              permission=Permission.TRANSACTIONS_WRITE)
def redeem_coupon(member_id: int, coupon_id: int) -> Any:
    """Once: a second use, even a concurrent one, gets 409; so does a coupon outside its
    validity. A retry with the first use's `Idempotency-Key` answers with that use
    instead."""
    return transaction_result(post_once(lambda key: rewards.redeem_coupon(
        get_session(), current_merchant(), member_id, coupon_id, idempotency_key=key,
        actor=current_actor())))


