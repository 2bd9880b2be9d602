"""Google Wallet for cards: maps programs and cards onto :mod:`wallet_service.google`, keeps
classes and objects in step with the database, and records save and delete callbacks.

Spec: google-wallet.md §0 (shape of the integration), §2.6 (notifications), §3 (save links),
§4 (callbacks). Everything here is optional: without ``WALLET_GOOGLE_ISSUER_ID`` the
:class:`GoogleWallet` holds the null client and members' ``google_save_url`` is null.
Functions take a session and never commit; the request or job that called them does.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..db import utcnow
from ..google import CallbackEvent
from ..google import GoogleCard
from ..google import GoogleDetail
from ..google import GoogleMoney
from ..google import GoogleProgram
from ..google import GoogleRootKeys
from ..google import GoogleStore
from ..google import GoogleWalletError
from ..google import NotificationQuotaExceeded
from ..google import WalletObjects
from ..google import class_id
from ..google import loyalty_class
from ..google import loyalty_object
from ..google import object_id
from ..google import object_patch
from ..google import verify_callback
from ..i18n import localized
from ..i18n import standing_words
from ..models import GoogleCallback
from ..models import GoogleClass
from ..models import GoogleNotification
from ..models import GoogleObject
from ..models import LoyaltyCard
from ..models import LoyaltyProgram
from ..models import Member
from ..models import Merchant
from ..rules import Totals
from ..rules import standing
from ..urls import card_url
from ..urls import google_callback_url
from ..urls import join_logo_url
from . import wallet_events
from .ledger import reminder_texts
from .ledger import tier_totals
from .locations import program_locations

log = logging.getLogger(__name__)

NOTIFICATIONS_PER_DAY = 3  # per object, Google's limit (spec §2.6)
MESSAGE_HEADER = {"ru": "Новости", "en": "News"}
# The expiry reminder goes out as a message of its own (spec §2.6), apart from campaigns.
REMINDER_HEADER = {"ru": "Сгорание баллов", "en": "Points expiring"}


@dataclass(frozen=True)
class GoogleWallet:
    """The deployment's Google Wallet: issuer, public URL, the API client and Google's
    callback root keys. Built once per process by ``build_state``."""

    issuer_id: str | None
    public_url: str
    client: WalletObjects
    root_keys: GoogleRootKeys | None = None

    @property
    def enabled(self) -> bool:
        return self.issuer_id is not None


def program_view(session: Session, wallet: GoogleWallet,
                 program: LoyaltyProgram) -> GoogleProgram:
    """The program as the Google mapping takes it."""
    design: dict[str, Any] = program.design
    contact = design.get("contact") or {}
    merchant = session.get_one(Merchant, program.merchant_id)
    return GoogleProgram(
        program_id=program.id,
        name=program.name,
        merchant_name=merchant.name,
        logo_url=join_logo_url(wallet.public_url, program.join_token),
        background_color=design.get("background_color") or "#182c52",
        languages=tuple(program.languages),
        logo_text=design.get("logo_text"),
        points_label=design.get("points_label"),
        rules=design.get("rules_text"),
        terms=design.get("terms_text"),
        phone=contact.get("phone"),
        website=contact.get("website"),
        stores=tuple(GoogleStore(latitude=loc["latitude"], longitude=loc["longitude"],
                                 name=loc.get("relevant_text"))
                     for loc in design.get("locations") or ()),
        barcode_format=design.get("barcode_format") or "qr",
        tiers=bool(program.rules.get("tiers")),
        callback_url=google_callback_url(wallet.public_url),
    )

def card_view(wallet: GoogleWallet, card: LoyaltyCard, member: Member,
              stores: Sequence[GoogleStore] = (), *, program: LoyaltyProgram | None = None,
              totals: Totals | None = None) -> GoogleCard:
    """The card as the Google mapping takes it; ``stores``, the locations it shows
    (:func:`card_stores`), become the object's ``merchantLocations``.

    With its ``program``, the card shows what it holds for the program's kind, as the API,
    the Apple pass and the card page say it (:func:`wallet_service.rules.standing`, tiers
    over ``totals``): points, stamps as ``3 / 6``, cashback as money, the discount; and the
    lines about what comes next (the next reward, the next discount, the next tier) as text
    modules in every language of the program (spec §2.3)."""
    view = GoogleCard(serial=card.serial_number, member_name=member.name,
                      balance=card.balance, status=card.status, tier=card.tier,
                      card_url=card_url(wallet.public_url, card.download_token),
                      stores=tuple(stores))
    if program is None:
        return view
    shown = standing(program.kind, program.rules, program.currency, card, totals)
    languages = list(program.languages) or ["en"]
    label_text = (program.design or {}).get("points_label")
    words = {lang: standing_words(lang, shown, label_text) for lang in languages}
    first = words[languages[0]]
    balance: int | str | GoogleMoney = card.balance
    label = "points"
    if shown.unit == "stamps":
        balance, label = first.value, "stamps"
    elif shown.unit == "money" and shown.cashback is not None:
        balance, label = GoogleMoney(shown.cashback, shown.currency), "cashback"
    elif shown.unit == "percent":
        balance, label = first.value, "discount"
    details = tuple(
        GoogleDetail(line_id, {lang: dict((i, h) for i, h, _ in words[lang].lines)[line_id]
                               for lang in languages},
                     {lang: dict((i, x) for i, _, x in words[lang].lines)[line_id]
                      for lang in languages})
        for line_id, _, _ in first.lines)
    return dataclasses.replace(view, balance=balance, balance_label=label, details=details)


def card_stores(session: Session, program: LoyaltyProgram) -> tuple[GoogleStore, ...]:
    """The locations the program's cards show, as on the Apple pass: the program's design
    locations first, then the merchant's stores, 10 at most (spec §1.8)."""
    return tuple(GoogleStore(latitude=loc.latitude, longitude=loc.longitude,
                             name=loc.relevant_text or "")
                 for loc in program_locations(session, program))

# --- classes and objects ------------------------------------------------------------------

def ensure_class(session: Session, wallet: GoogleWallet, program: LoyaltyProgram) -> str:
    """Insert or patch the program's class when it does not show the current program
    revision; one call per design change, however many cards (spec §0, §2.1)."""
    revision = program.updated_at.isoformat()
    row = session.get(GoogleClass, program.id)
    cid = class_id(wallet.issuer_id, program.id)
    if row is not None and row.synced_revision == revision:
        return cid
    payload = loyalty_class(wallet.issuer_id, program_view(session, wallet, program))
    if row is None:
        wallet.client.upsert_class(payload)  # insert; patch if it exists (§1.5)
    else:
        wallet.client.patch_class(cid, payload)
    if row is None:
        session.add(GoogleClass(program_id=program.id, class_id=cid,
                                synced_revision=revision, updated_at=utcnow()))
    else:
        row.synced_revision, row.updated_at = revision, utcnow()
    session.flush()
    return cid

def ensure_object(session: Session, wallet: GoogleWallet, card: LoyaltyCard) -> str:
    """The card's object exists at Google (inserted, or patched on 409: spec §1.5)."""
    row = session.get(GoogleObject, card.id)
    if row is not None and row.inserted:
        return row.object_id
    program = session.get_one(LoyaltyProgram, card.program_id)
    member = session.get_one(Member, card.member_id)
    ensure_class(session, wallet, program)
    view = program_view(session, wallet, program)
    shown = card_view(wallet, card, member, card_stores(session, program), program=program,
                      totals=tier_totals(session, card, program.rules, utcnow().date()))
    payload = loyalty_object(wallet.issuer_id, view, shown)
    wallet.client.upsert_object(payload)
    state = _state(object_patch(view, shown), card,
                   reminder_texts(session, card, program.languages))
    if row is None:
        row = GoogleObject(card_id=card.id, object_id=payload["id"], inserted=True,
                           synced_version=card.version, synced_state=state,
                           updated_at=utcnow())
        session.add(row)
    else:
        row.inserted, row.synced_version, row.synced_state = True, card.version, state
    session.flush()
    return row.object_id

def save_url(session: Session, wallet: GoogleWallet, card: LoyaltyCard) -> str | None:
    """The "Add to Google Wallet" link: the object is inserted first, so the JWT only
    names its id and stays short (spec §3.4). None while Google Wallet is off, or when
    Google cannot be reached now (the rest of the response must not fail for it).

    A first insert is recorded in the caller's transaction (the caller commits it, even on
    a read: the object exists at Google from then on); a failed one leaves nothing behind.
    """
    if not wallet.enabled:
        return None
    oid = object_id(wallet.issuer_id, card.serial_number)
    if session.scalar(select(GoogleObject.inserted).where(GoogleObject.card_id == card.id)):
        return wallet.client.save_url([oid], [wallet.public_url])
    try:
        with session.begin_nested():
            oid = ensure_object(session, wallet, card)
    except GoogleWalletError as exc:
        log.warning("Google Wallet object for card %s not ready: %s", card.id, exc)
        return None
    return wallet.client.save_url([oid], [wallet.public_url])


def sync_card(session: Session, wallet: GoogleWallet, card_id: int, now: dt.datetime) -> str:
    """Bring the card's object up to date; returns what was done. A changed balance or
    tier notifies the member while the card has budget left (3 per 24 h, counted here),
    otherwise the update is silent; a campaign message and an expiry reminder go out as
    messages, notifying on the same budget (spec §2.6)."""
    card = session.get(LoyaltyCard, card_id)
    row = session.get(GoogleObject, card_id)
    if card is None or row is None or not row.inserted:
        return "skipped"
    program = session.get_one(LoyaltyProgram, card.program_id)
    member = session.get_one(Member, card.member_id)
    ensure_class(session, wallet, program)
    view = program_view(session, wallet, program)
    patch = object_patch(view, card_view(
        wallet, card, member, card_stores(session, program), program=program,
        totals=tier_totals(session, card, program.rules, now.date())))
    state = _state(patch, card, reminder_texts(session, card, program.languages))
    previous = row.synced_state or {}
    done = "unchanged"
    if state["patch"] != previous.get("patch"):
        points_changed = any(
            state["patch"].get(k) != (previous.get("patch") or {}).get(k)
            for k in ("loyaltyPoints", "secondaryLoyaltyPoints"))
        notify = points_changed and _budget_left(session, card_id, now)
        try:
            wallet.client.patch_object(row.object_id, patch, notify=notify)
        except NotificationQuotaExceeded:
            notify = False
            wallet.client.patch_object(row.object_id, patch, notify=False)
        if notify:
            session.add(GoogleNotification(card_id=card_id, kind="update", sent_at=now))
        done = "patched, notified" if notify else "patched"
    for kind, headers in (("message", MESSAGE_HEADER), ("reminder", REMINDER_HEADER)):
        text = state.get(kind)
        if not text or text == previous.get(kind):
            continue
        notify = _budget_left(session, card_id, now)
        languages = list(program.languages) or ["en"]
        header = {lang: headers.get(lang, headers["en"]) for lang in languages}
        body = {lang: localized(text, lang) for lang in languages}
        try:
            wallet.client.add_message(row.object_id, header, body, notify=notify)
        except NotificationQuotaExceeded:
            notify = False
            wallet.client.add_message(row.object_id, header, body, notify=False)
        if notify:
            session.add(GoogleNotification(card_id=card_id, kind=kind, sent_at=now))
        done += f", {kind}"
    row.synced_state, row.synced_version, row.updated_at = state, card.version, now
    session.flush()
    return done

def _budget_left(session: Session, card_id: int, now: dt.datetime) -> bool:
    used = session.scalar(
        select(func.count()).select_from(GoogleNotification).where(
            GoogleNotification.card_id == card_id,
            GoogleNotification.sent_at > now - dt.timedelta(hours=24)))
    return int(used or 0) < NOTIFICATIONS_PER_DAY

# --- callbacks ----------------------------------------------------------------------------

def receive_callback(session: Session, wallet: GoogleWallet, body: bytes,
                     now: dt.datetime) -> bool:
    """Verify a save/delete callback and record it once per nonce; False for a repeat. A
    callback for one of our cards is also a wallet event: installed on ``save``, removed on
    ``del`` (spec §4.1).

    :raises CallbackRejected: forged, expired, or not for this issuer (spec §4.3).
    :raises GoogleUnavailable: Google's root keys cannot be fetched now (``retry_after``).
    """
    event: CallbackEvent = verify_callback(body, issuer_id=wallet.issuer_id,
                                           root_keys=wallet.root_keys, now=now)
    if session.scalar(select(GoogleCallback.id).where(GoogleCallback.nonce == event.nonce)):
        return False
    row = session.scalar(select(GoogleObject).where(GoogleObject.object_id == event.object_id))
    try:
        # Google may deliver one callback twice at the same moment: both find no row above,
        # the unique nonce lets one insert, and the other is a repeat (§4.2).
        with session.begin_nested():
            session.add(GoogleCallback(nonce=event.nonce, event_type=event.event_type,
                                       class_id=event.class_id, object_id=event.object_id,
                                       card_id=row.card_id if row else None, received_at=now))
    except IntegrityError:
        return False
    if row is not None:
        if event.event_type == "save":
            row.saved_at, row.deleted_at = now, None
        elif event.event_type == "del":
            row.deleted_at = now
        if event.event_type in _WALLET_EVENTS:
            merchant_id = session.execute(select(LoyaltyCard.merchant_id)
                                          .where(LoyaltyCard.id == row.card_id)).scalar_one()
            wallet_events.record(session, merchant_id=merchant_id, card_id=row.card_id,
                                 wallet=wallet_events.GOOGLE,
                                 event=_WALLET_EVENTS[event.event_type][0],
                                 cause=_WALLET_EVENTS[event.event_type][1], at=now)
    session.flush()
    return True


#: Google's callback event types as wallet events and their causes.
_WALLET_EVENTS = {"save": (wallet_events.INSTALLED, "saved"),
                  "del": (wallet_events.REMOVED, "deleted")}


def _state(patch: dict[str, Any], card: LoyaltyCard,
           reminders: dict[str, str] | None = None) -> dict[str, Any]:
    """What Google was sent: the object's changing fields, and the message and reminder
    (one text, or one per language: ``reminders``, :func:`.ledger.reminder_texts`)."""
    return {"patch": patch, "message": getattr(card, "message", None),
            "reminder": reminders or getattr(card, "reminder", None)}
