"""Operations on a member's card (earn, redeem, adjust, refund, stamps, action bonuses) and
its history."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from pydantic import Field

from ... import schemas as s
from ...errors import ValidationFailed
from ...errors import WalletError
from ...permissions import Permission
from ...services import bonuses
from ...services import ledger
from ...services import transactions
from ...validation import validate
from .. import get_session
from ..problems import wallet_error_body
from ._blueprint import bp
from ._blueprint import checked_idempotency_key
from ._blueprint import current_actor
from ._blueprint import current_merchant
from ._blueprint import idempotency_header
from ._blueprint import post_once
from .serializers import transaction_out
from .serializers import transaction_payload
from .serializers import transaction_result


@bp.operation("/members/<int:member_id>/transactions", "POST",
              summary="Earn, redeem or adjust points", body=s.TransactionCreate,
              response=s.TransactionResult, status=HTTPStatus.CREATED, errors=(404, 409),
              tags=("transactions",), headers=idempotency_header("transaction"),
              permission=Permission.TRANSACTIONS_WRITE)
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
    op = operation(body)
    return transaction_result(post_once(lambda key: transactions.post_transaction(
        get_session(), current_merchant(), member_id, op, idempotency_key=key,
        actor=current_actor())))


@bp.operation("/transactions/batch", "POST",
              summary="Earn, redeem, adjust or refund on many members at once",
              body=s.TransactionBatch, response=s.TransactionBatchResults,
              tags=("transactions",), permission=Permission.TRANSACTIONS_WRITE)
def post_transaction_batch(body: s.TransactionBatch) -> Any:
    """Up to 500 operations, each on any member of the merchant: an item is the body of
    `POST /members/{id}/transactions` with its `member_id` and its own `idempotency_key`.
    The answer (200) has one result per item, in the order of the items: the `status` the
    single route would answer, with its `result` (201) or its `problem` document (404 for a
    member that is missing or another merchant's, 409 for a balance too low, 422 for an item
    that breaks the schema or the program's rules). One item that fails changes nothing and
    does not stop the others.

    An item's key is the `Idempotency-Key` of the single route for the same member: sent
    again (in a batch or on the single route) with the same body it answers with the first
    result and `replayed: true`, and nothing is credited twice, so a whole batch can be
    retried safely. Over 500 items, or an envelope that is not `{"items": [...]}`, is
    refused whole (422, or 400 for a body that is not a JSON object)."""
    session = get_session()
    merchant_id = current_merchant()
    answers: list[dict[str, Any] | None] = [None] * len(body.items)
    valid: list[tuple[int, transactions.BatchItem]] = []
    for index, raw in enumerate(body.items):
        try:
            if not isinstance(raw, dict):
                raise ValidationFailed("body: each item must be a JSON object", field="body")
            item = validate(s.TransactionBatchItem, raw)
            # The key as sent (the schema trims texts), checked as the header is.
            key = checked_idempotency_key(raw["idempotency_key"], "idempotency_key")
        except WalletError as exc:
            answers[index] = {"status": int(exc.status), "replayed": False,
                              "result": None, "problem": wallet_error_body(exc)}
            continue
        valid.append((index, transactions.BatchItem(item.member_id, operation(item), key)))
    results = transactions.post_batch(session, merchant_id, [item for _, item in valid],
                                     actor=current_actor())
    session.commit()
    for (index, _), posted in zip(valid, results, strict=True):
        if isinstance(posted, WalletError):
            answers[index] = {"status": int(posted.status), "replayed": False,
                              "result": None, "problem": wallet_error_body(posted)}
        else:
            answers[index] = {"status": HTTPStatus.CREATED.value, "replayed": posted.replayed,
                              "result": transaction_payload(posted).model_dump(mode="json"),
                              "problem": None}
    return {"items": answers}


def operation(body: s.TransactionCreate) -> transactions.Operation:
    """The service's operation for a request body already checked for shape."""
    lines = None if body.lines is None else tuple(
        transactions.Line(amount=line.amount, sku=line.sku, category=line.category)
        for line in body.lines)
    return transactions.Operation(
        type=body.type, points=body.points, stamps=body.stamps, amount=body.amount,
        lines=lines, purchase_amount=body.purchase_amount, original_id=body.original_id,
        reason=body.reason)


@bp.operation("/members/<int:member_id>/stamps", "POST", summary="Stamp a member's card",
              body=s.StampCreate, response=s.TransactionResult, status=HTTPStatus.CREATED,
              errors=(404, 409), tags=("transactions",), headers=idempotency_header("stamps"),
              permission=Permission.TRANSACTIONS_WRITE)
def post_stamps(member_id: int, body: s.StampCreate) -> Any:
    """Stamp programs: adds `count` stamps; every `stamps.goal` stamps become one reward
    ready to claim (the card wraps: 5/6 plus 2 is 1/6 and a reward). Over the program's stamp
    limit (`stamps.max_per_window` per `stamps.window_minutes`) the answer is 409."""
    return transaction_result(post_once(lambda key: transactions.post_stamps(
        get_session(), current_merchant(), member_id, body.count, body.reason,
        idempotency_key=key, actor=current_actor())))


@bp.operation("/members/<int:member_id>/actions", "POST",
              summary="Reward an action beyond purchases", body=s.ActionCreate,
              response=s.TransactionResult, status=HTTPStatus.CREATED, errors=(404, 409),
              tags=("bonuses",), headers=idempotency_header("action"),
              permission=Permission.TRANSACTIONS_WRITE)
def post_action(member_id: int, body: s.ActionCreate) -> Any:
    """The bonus of `bonuses.actions[action]` (a survey, a review). With a `reference`, the
    same action earns once (409 the second time). Without one, the action earns once per
    member per `bonuses.action_period_days` (once ever when the program sets no period); a
    repeat within the period is 409 naming `action`. A retry with the first request's
    `Idempotency-Key` answers with the first bonus instead of 409."""
    return transaction_result(post_once(lambda key: bonuses.record_action(
        get_session(), current_merchant(), member_id, body.action, body.reference,
        idempotency_key=key, actor=current_actor())))




class TransactionQuery(s.Strict):
    limit: int = Field(50, ge=1, le=200)
    cursor: str | None = Field(None, pattern=r"^\d{1,18}$",
                               description="`next_cursor` of the previous page")


@bp.operation("/members/<int:member_id>/transactions", "GET",
              summary="List a member's transactions, newest first", query=TransactionQuery,
              response=s.TransactionList, errors=(404,), tags=("transactions",),
              permission=Permission.READ)
def list_transactions(member_id: int, query: TransactionQuery) -> s.TransactionList:
    items, currency = ledger.list_transactions(
        get_session(), current_merchant(), member_id, limit=query.limit,
        before_id=int(query.cursor) if query.cursor else None,
    )
    next_cursor = str(items[-1].id) if len(items) == query.limit else None
    return s.TransactionList(items=[transaction_out(t, currency) for t in items],
                             next_cursor=next_cursor)


