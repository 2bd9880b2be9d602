"""The merchant REST API under ``/api/v1``: JSON in and out, ``Authorization: Bearer``."""

from __future__ import annotations

import functools
import hmac
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from flask import Response
from flask import g
from flask import render_template
from flask import request
from pydantic import Field
from sqlalchemy.exc import IntegrityError
from werkzeug.exceptions import HTTPException

from .. import schemas as s
from ..db import utcnow
from ..errors import AuthenticationFailed
from ..errors import InvalidInput
from ..errors import ResourceNotFound
from ..errors import WalletError
from ..models import LoyaltyProgram
from ..models import Member
from ..passes import prepare_image
from ..services import automations
from ..services import campaigns
from ..services import ledger
from ..services import members
from ..services import merchants
from ..services import programs
from ..services import rewards
from ..services.tiers import from_minor
from . import get_session
from . import wallet
from .links import member_links
from .openapi import build_document
from .problems import from_http_exception
from .problems import from_wallet_error
from .routing import ApiBlueprint

PREFIX = "/api/v1"
bp = ApiBlueprint("merchant_api", __name__, url_prefix=PREFIX)


@bp.errorhandler(WalletError)
def _wallet_error(exc: WalletError) -> Response:
    return from_wallet_error(exc)


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException) -> Response:
    return from_http_exception(exc)


def require_api_key(view: Callable[..., Any]) -> Callable[..., Any]:
    """Authenticate ``Authorization: Bearer <key>`` and set ``g.merchant_id``."""

    @functools.wraps(view)
    def wrapper(**kwargs: Any) -> Any:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        token = token.strip()
        if not hmac.compare_digest(scheme.lower().encode(), b"bearer") or not token:
            raise AuthenticationFailed("send the API key as 'Authorization: Bearer <key>'")
        g.merchant_id, g.api_key_id = merchants.authenticate(get_session(), token)
        return view(**kwargs)

    return wrapper


bp.auth_decorator = require_api_key


def _merchant() -> int:
    merchant_id: int = g.merchant_id
    return merchant_id


# --- programs ---------------------------------------------------------------------------


@bp.operation("/programs", "POST", summary="Create a loyalty program", body=s.ProgramCreate,
              response=s.ProgramOut, status=HTTPStatus.CREATED, tags=("programs",))
def create_program(body: s.ProgramCreate) -> s.ProgramOut:
    """Only `name` and `kind` are required; everything else has defaults (10 points per
    100 RUB, Russian and English, the `points` template)."""
    session = get_session()
    program = programs.create_program(session, _merchant(), body)
    session.commit()
    return programs.program_out(program, wallet().settings.public_url)


@bp.operation("/programs", "GET", summary="List programs", response=s.ProgramList,
              tags=("programs",))
def list_programs() -> s.ProgramList:
    items = programs.list_programs(get_session(), _merchant())
    return s.ProgramList(items=[programs.program_out(p, wallet().settings.public_url) for p in items])


@bp.operation("/programs/<int:program_id>", "GET", summary="Get a program",
              response=s.ProgramOut, errors=(404,), tags=("programs",))
def get_program(program_id: int) -> s.ProgramOut:
    return programs.program_out(programs.get_program(get_session(), _merchant(), program_id),
                                wallet().settings.public_url)


@bp.operation("/programs/<int:program_id>", "PATCH", summary="Change a program",
              body=s.ProgramUpdate, merge_patch=True, response=s.ProgramOut, errors=(404,),
              tags=("programs",))
def update_program(program_id: int, body: dict[str, Any]) -> s.ProgramOut:
    """The merged program is validated as a whole; `name` and `currency` cannot be cleared."""
    session = get_session()
    program = programs.update_program(session, _merchant(), program_id, body)
    session.commit()
    return programs.program_out(program, wallet().settings.public_url)


IMAGE_KINDS = ("icon", "logo", "strip")


def _image_kind(kind: str) -> str:
    if kind not in IMAGE_KINDS:
        raise ResourceNotFound(f"kind: no image kind {kind!r}; use icon, logo or strip",
                               field="kind")
    return kind


@bp.operation("/programs/<int:program_id>/images/<kind>", "PUT",
              summary="Upload the program's icon, logo or strip image",
              response=s.ProgramImageOut, errors=(404, 413), tags=("programs",),
              media=("image/png", "image/jpeg"))
def put_program_image(program_id: int, kind: str) -> s.ProgramImageOut:
    """Send the image itself as the body (PNG or JPEG, any size; or a multipart form field
    `file`). It is converted once to the exact sizes Wallet uses at @1x, @2x and @3x; every
    card of the program is then updated on customers' phones."""
    _image_kind(kind)
    upload = request.files.get("file")
    data = upload.read() if upload is not None else request.get_data()
    if not data:
        raise InvalidInput(f"{kind}: send the image as the request body", field=kind)
    files = prepare_image(kind, data)
    session = get_session()
    programs.set_program_image(session, _merchant(), program_id, kind, files)
    session.commit()
    return s.ProgramImageOut(program_id=program_id, kind=kind, files=sorted(files))


@bp.operation("/programs/<int:program_id>/images/<kind>", "DELETE",
              summary="Go back to the template's image", response=s.ProgramOut,
              errors=(404,), tags=("programs",))
def delete_program_image(program_id: int, kind: str) -> s.ProgramOut:
    _image_kind(kind)
    session = get_session()
    program = programs.clear_program_image(session, _merchant(), program_id, kind)
    session.commit()
    return programs.program_out(program, wallet().settings.public_url)


# --- members ----------------------------------------------------------------------------


def member_out(member: Member) -> s.MemberOut:
    card = member.card
    settings = wallet().settings
    program = get_session().get_one(LoyaltyProgram, member.program_id)
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
        lifetime_spend=from_minor(program.currency, card.lifetime_spend_minor),
        stamps=card.stamps,
        visits=card.visits,
        referral_code=card.referral_code,
        message=card.message,
        version=card.version,
        created_at=member.created_at,
        **member_links(settings, card, get_session()),
    )


@bp.operation("/programs/<int:program_id>/members", "POST", summary="Enroll a member",
              body=s.MemberCreate, response=s.MemberOut, status=HTTPStatus.CREATED,
              errors=(404, 409), tags=("members",))
def enroll_member(program_id: int, body: s.MemberCreate) -> s.MemberOut:
    """Creates the member and their card. The phone is normalized to E.164; a phone or
    external id already enrolled in the program gives 409."""
    session = get_session()
    member = members.enroll_member(session, _merchant(), program_id, body,
                                   default_region=wallet().settings.default_region)
    session.commit()
    return member_out(member)


class MemberQuery(s.Strict):
    barcode: str | None = Field(None, min_length=1, max_length=64,
                                description="The card number as scanned from the barcode")
    phone: str | None = Field(None, min_length=3, max_length=40)
    program_id: int | None = Field(None, ge=1)
    limit: int = Field(50, ge=1, le=200)
    cursor: str | None = Field(None, pattern=r"^\d{1,18}$",
                               description="`next_cursor` of the previous page")


def _find(query: MemberQuery, program_id: int | None) -> s.MemberList:
    found = members.find_members(
        get_session(), _merchant(), barcode=query.barcode, phone=query.phone,
        program_id=program_id, default_region=wallet().settings.default_region,
        limit=query.limit, after_id=int(query.cursor) if query.cursor else None,
    )
    next_cursor = str(found[-1].id) if len(found) == query.limit else None
    return s.MemberList(items=[member_out(m) for m in found], next_cursor=next_cursor)


@bp.operation("/members", "GET", summary="Find members by card barcode or phone",
              query=MemberQuery, response=s.MemberList, tags=("members",))
def find_members(query: MemberQuery) -> s.MemberList:
    """Searches all of the merchant's programs unless `program_id` is given."""
    return _find(query, query.program_id)


@bp.operation("/programs/<int:program_id>/members", "GET", summary="List a program's members",
              query=MemberQuery, response=s.MemberList, errors=(404,), tags=("members",))
def list_members(program_id: int, query: MemberQuery) -> s.MemberList:
    return _find(query, program_id)


@bp.operation("/members/<int:member_id>", "GET", summary="Get a member and their card",
              response=s.MemberOut, errors=(404,), tags=("members",))
def get_member(member_id: int) -> s.MemberOut:
    return member_out(members.get_member(get_session(), _merchant(), member_id))


@bp.operation("/members/<int:member_id>/close", "POST", summary="Close a member's card",
              response=s.MemberOut, errors=(404,), tags=("members",))
def close_card(member_id: int) -> s.MemberOut:
    """The card turns void on the customer's phone and accepts no more transactions (409).
    Closing twice is harmless."""
    session = get_session()
    member = members.close_card(session, _merchant(), member_id)
    session.commit()
    return member_out(member)


# --- transactions -----------------------------------------------------------------------


def transaction_out(txn: ledger.Entry, currency: str) -> s.TransactionOut:
    return s.TransactionOut(
        id=txn.id,
        member_id=txn.member_id,
        type=txn.type,
        points=txn.points,
        amount=None if txn.amount_minor is None else from_minor(currency, txn.amount_minor),
        reason=txn.reason,
        balance_after=txn.balance_after,
        tier_after=txn.tier_after,
        stamps=txn.stamps,
        reference_id=txn.reference_id,
        details=txn.details,
        created_at=txn.created_at,
    )


def _idempotency_key() -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if not (1 <= len(key) <= 255) or not key.isascii() or not key.isprintable():
        raise InvalidInput("Idempotency-Key: 1 to 255 printable ASCII characters",
                           field="Idempotency-Key")
    return key


@bp.operation("/members/<int:member_id>/transactions", "POST",
              summary="Earn, redeem or adjust points", body=s.TransactionCreate,
              response=s.TransactionResult, status=HTTPStatus.CREATED, errors=(404, 409),
              tags=("transactions",),
              headers={"Idempotency-Key": "Makes a retry return the first result, "
                                          "with no second credit."})
def post_transaction(member_id: int, body: s.TransactionCreate) -> Any:
    """`earn` with `points`, with `stamps` (stamp programs), or with a purchase: `amount`
    and/or receipt `lines` (sku, category, amount); lines whose sku or category the program
    excludes earn nothing. Points programs convert by the earning rule and the tier
    multiplier (rounded down); cashback programs keep the purchase's share in minor units;
    stamp programs give `stamps.per_purchase` stamps within the stamp limit.

    `redeem` never takes the balance below zero (409); in a cashback program it takes the
    `amount` of money and the `purchase_amount` it pays towards. `adjust` takes signed
    `points` or `stamps` and a `reason`.

    `refund` takes the `original_id` of a purchase and the refunded `amount` (default: the
    rest). It takes back the refunded share of what the purchase earned; if those points are
    spent already, the balance goes to zero and the rest is reported as
    `details.unrecovered`."""
    return _post(member_id, body)


def _post(member_id: int, body: s.TransactionCreate) -> Any:
    session = get_session()
    key = _idempotency_key()
    try:
        posted = ledger.post_transaction(session, _merchant(), member_id, body,
                                         idempotency_key=key)
        session.commit()
    except IntegrityError:
        if key is None:
            raise
        # The same key committed concurrently for another member: the retry replays it.
        session.rollback()
        posted = ledger.post_transaction(session, _merchant(), member_id, body,
                                         idempotency_key=key)
    return _result(posted)


def _result(posted: ledger.Posted) -> Any:
    txn = posted.entry
    result = s.TransactionResult(transaction=transaction_out(txn, posted.currency),
                                 balance=txn.balance_after, tier=txn.tier_after)
    headers = {"Idempotent-Replayed": "true"} if posted.replayed else {}
    return result, HTTPStatus.CREATED, headers


@bp.operation("/members/<int:member_id>/stamps", "POST", summary="Stamp a member's card",
              body=s.StampCreate, response=s.TransactionResult, status=HTTPStatus.CREATED,
              errors=(404, 409), tags=("transactions",),
              headers={"Idempotency-Key": "Makes a retry return the first result."})
def post_stamps(member_id: int, body: s.StampCreate) -> Any:
    """Stamp programs: adds `count` stamps; every `stamps.goal` stamps become one reward
    ready to claim (the card wraps: 5/6 plus 2 is 1/6 and a reward). Over the program's stamp
    limit (`stamps.max_per_window` per `stamps.window_minutes`) the answer is 409."""
    return _post(member_id, s.TransactionCreate(type="earn", stamps=body.count,
                                                reason=body.reason))


@bp.operation("/members/<int:member_id>/actions", "POST",
              summary="Reward an action beyond purchases", body=s.ActionCreate,
              response=s.TransactionResult, status=HTTPStatus.CREATED, errors=(404, 409),
              tags=("bonuses",))
def post_action(member_id: int, body: s.ActionCreate) -> Any:
    """The bonus of `bonuses.actions[action]` (a survey, a review). With a `reference`, the
    same action earns once (409 the second time)."""
    session = get_session()
    entry = automations.record_action(session, _merchant(), member_id, body.action,
                                      body.reference)
    session.commit()
    program = get_session().get_one(LoyaltyProgram, _program_of(member_id))
    return _result(ledger.Posted(entry, program.currency, False))


def _program_of(member_id: int) -> int:
    return members.get_member(get_session(), _merchant(), member_id).program_id


# --- rewards and coupons ----------------------------------------------------------------


def reward_out(reward: Any) -> s.RewardOut:
    return s.RewardOut(id=reward.id, program_id=reward.program_id, name=reward.name,
                       description=reward.description, cost_points=reward.cost_points,
                       cost_stamps=reward.cost_stamps, active=reward.active)


@bp.operation("/programs/<int:program_id>/rewards", "POST", summary="Add a catalog reward",
              body=s.RewardCreate, response=s.RewardOut, status=HTTPStatus.CREATED,
              errors=(404,), tags=("rewards",))
def create_reward(program_id: int, body: s.RewardCreate) -> s.RewardOut:
    session = get_session()
    reward = rewards.create_reward(session, _merchant(), program_id, body)
    session.commit()
    return reward_out(reward)


@bp.operation("/programs/<int:program_id>/rewards", "GET", summary="The rewards catalog",
              response=s.RewardList, errors=(404,), tags=("rewards",))
def list_rewards(program_id: int) -> s.RewardList:
    return s.RewardList(items=[reward_out(r) for r in
                               rewards.list_rewards(get_session(), _merchant(), program_id)])


@bp.operation("/members/<int:member_id>/rewards/<int:reward_id>/redeem", "POST",
              summary="Claim a catalog reward", response=s.TransactionResult,
              status=HTTPStatus.CREATED, errors=(404, 409), tags=("rewards",),
              headers={"Idempotency-Key": "Makes a retry return the first result."})
def redeem_reward(member_id: int, reward_id: int) -> Any:
    """Takes the reward's cost in points or stamps, checked under the card's lock (409 when
    the balance is short)."""
    session = get_session()
    posted = rewards.redeem_reward(session, _merchant(), member_id, reward_id,
                                   idempotency_key=_idempotency_key())
    session.commit()
    return _result(posted)


@bp.operation("/programs/<int:program_id>/coupons", "POST",
              summary="Give a coupon to a member or a segment", body=s.CouponCreate,
              response=s.CouponOut, status=HTTPStatus.CREATED, errors=(404,), tags=("rewards",))
def create_coupon(program_id: int, body: s.CouponCreate) -> s.CouponOut:
    """The segment (`member_ids`, `tier`, `inactive_days`, `birthday_month`) is resolved
    now; every card in it shows the coupon while it is valid and unused."""
    session = get_session()
    coupon, _ = rewards.create_coupon(session, _merchant(), program_id, body)
    session.commit()
    return s.CouponOut(**rewards.coupon_out(session, coupon))


@bp.operation("/members/<int:member_id>/coupons", "GET", summary="A member's coupons",
              response=s.MemberCouponList, errors=(404,), tags=("rewards",))
def list_member_coupons(member_id: int) -> s.MemberCouponList:
    items = rewards.list_member_coupons(get_session(), _merchant(), member_id)
    return s.MemberCouponList(items=[s.MemberCoupon(**i) for i in items])


@bp.operation("/members/<int:member_id>/coupons/<int:coupon_id>/redeem", "POST",
              summary="Use a member's coupon", response=s.TransactionResult,
              status=HTTPStatus.CREATED, errors=(404, 409), tags=("rewards",))
def redeem_coupon(member_id: int, coupon_id: int) -> Any:
    """Once: a second use, even a concurrent one, gets 409; so does a coupon outside its
    validity."""
    session = get_session()
    posted = rewards.redeem_coupon(session, _merchant(), member_id, coupon_id)
    session.commit()
    return _result(posted)


# --- campaigns and automations ----------------------------------------------------------


@bp.operation("/programs/<int:program_id>/campaigns", "POST",
              summary="Send a message to members' cards", body=s.CampaignCreate,
              response=s.CampaignOut, status=HTTPStatus.CREATED, errors=(404,),
              tags=("campaigns",))
def create_campaign(program_id: int, body: s.CampaignCreate) -> s.CampaignOut:
    """The text replaces the message on the back of every card in the segment, and phones
    announce it; `reached` counts the cards."""
    session = get_session()
    campaign = campaigns.send_campaign(session, _merchant(), program_id, body.text,
                                       body.segment)
    session.commit()
    return s.CampaignOut(**campaigns.campaign_out(campaign))


@bp.operation("/programs/<int:program_id>/campaigns", "GET", summary="Campaigns sent",
              response=s.CampaignList, errors=(404,), tags=("campaigns",))
def list_campaigns(program_id: int) -> s.CampaignList:
    items = campaigns.list_campaigns(get_session(), _merchant(), program_id)
    return s.CampaignList(items=[s.CampaignOut(**campaigns.campaign_out(c)) for c in items])


@bp.operation("/automations/daily", "POST", summary="Run the daily automations now",
              body=s.DailyRun, response=s.DailyReport, tags=("bonuses",))
def run_daily(body: s.DailyRun) -> s.DailyReport:
    """Expiry, reminders, birthday and win-back bonuses and tier review for this merchant's
    programs (the worker runs them for everyone once a day). Running a day twice does
    nothing the second time."""
    session = get_session()
    report = automations.run_daily(session, body.day or utcnow().date(),
                                   merchant_id=_merchant())
    session.commit()
    return s.DailyReport(**report)


class TransactionQuery(s.Strict):
    limit: int = Field(50, ge=1, le=200)
    cursor: str | None = Field(None, pattern=r"^\d{1,18}$",
                               description="`next_cursor` of the previous page")


@bp.operation("/members/<int:member_id>/transactions", "GET",
              summary="List a member's transactions, newest first", query=TransactionQuery,
              response=s.TransactionList, errors=(404,), tags=("transactions",))
def list_transactions(member_id: int, query: TransactionQuery) -> s.TransactionList:
    items, currency = ledger.list_transactions(
        get_session(), _merchant(), member_id, limit=query.limit,
        before_id=int(query.cursor) if query.cursor else None,
    )
    next_cursor = str(items[-1].id) if len(items) == query.limit else None
    return s.TransactionList(items=[transaction_out(t, currency) for t in items],
                             next_cursor=next_cursor)


# --- api keys ---------------------------------------------------------------------------


def api_key_out(key: Any) -> s.ApiKeyOut:
    return s.ApiKeyOut(id=key.id, name=key.name, prefix=key.prefix,
                       created_at=key.created_at, revoked_at=key.revoked_at)


@bp.operation("/api-keys", "POST", summary="Create an API key", body=s.ApiKeyCreate,
              response=s.ApiKeyCreated, status=HTTPStatus.CREATED, tags=("api keys",))
def create_api_key(body: s.ApiKeyCreate) -> s.ApiKeyCreated:
    """The key is in the response only; the service keeps a hash."""
    session = get_session()
    key, raw = merchants.create_api_key(session, _merchant(), body.name)
    session.commit()
    return s.ApiKeyCreated(api_key=raw, **api_key_out(key).model_dump())


@bp.operation("/api-keys", "GET", summary="List API keys", response=s.ApiKeyList,
              tags=("api keys",))
def list_api_keys() -> s.ApiKeyList:
    return s.ApiKeyList(items=[api_key_out(k) for k in
                               merchants.list_api_keys(get_session(), _merchant())])


@bp.operation("/api-keys/<int:key_id>", "DELETE", summary="Revoke an API key",
              response=s.ApiKeyOut, errors=(404,), tags=("api keys",))
def revoke_api_key(key_id: int) -> s.ApiKeyOut:
    """Requests with a revoked key get 401 from then on."""
    session = get_session()
    key = merchants.revoke_api_key(session, _merchant(), key_id)
    session.commit()
    return api_key_out(key)


# --- documentation ----------------------------------------------------------------------


def openapi_document() -> dict[str, Any]:
    state = wallet()
    if state.openapi is None:
        state.openapi = build_document(
            bp.operations, title="wallet-service merchant API", version="1",
            server=state.settings.public_url + PREFIX, prefix="",
        )
    doc: dict[str, Any] = state.openapi
    return doc


@bp.route("/openapi.json")
def openapi_json() -> Any:
    return openapi_document()


@bp.route("/docs")
def docs() -> str:
    return render_template("api_docs.html", doc=openapi_document())

