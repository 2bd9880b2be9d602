"""Google Wallet for cards: maps programs and cards onto :mod:`wallet_service.google`, keeps
classes and objects in step with the database, and records save and delete callbacks.

Spec: google-wallet.md §0 (shape of the integration), §2.6 (notifications), §3 (save links),
§4 (callbacks). Everything here is optional: without ``WALLET_GOOGLE_ISSUER_ID`` the
:class:`GoogleWallet` holds the null client and members' ``google_save_url`` is null.
Functions take a session and never commit; the request or job that called them does.

Google is called lazily: reading or listing members never does. A card's object is inserted
when the customer taps the save link (:func:`save_link`, ahead of background work in the
shared request budget, §3.3), and from then on the worker keeps it in step
(:func:`sync_card`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import threading
import uuid
from collections import OrderedDict
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from typing import Any

from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .. import i18n
from ..apple import assets
from ..db import utcnow
from ..google import MESSAGES_PER_OBJECT
from ..google import CallbackEvent
from ..google import GoogleCard
from ..google import GoogleDetail
from ..google import GoogleMoney
from ..google import GoogleProgram
from ..google import GoogleRootKeys
from ..google import GoogleStore
from ..google import NotificationQuotaExceeded
from ..google import WalletObjects
from ..google import class_id
from ..google import kept_messages
from ..google import loyalty_class
from ..google import loyalty_message
from ..google import loyalty_object
from ..google import object_design
from ..google import object_patch
from ..google import square_logo
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
from ..models import ProgramImage
from ..rules import Totals
from ..rules import standing
from ..urls import card_url
from ..urls import google_callback_url
from ..urls import google_logo_url
from ..urls import survey_url
from . import wallet_events
from .ledger import reminder_texts
from .ledger import tier_totals
from .locations import program_locations

log = logging.getLogger(__name__)

NOTIFICATIONS_PER_DAY = 3  # per object, Google's limit (spec §2.6)
MESSAGE_HEADER = {"ru": "Новости", "en": "News"}
# The expiry reminder goes out as a message of its own (spec §2.6), apart from campaigns.
REMINDER_HEADER = {"ru": "Сгорание баллов", "en": "Points expiring"}
#: Logos made for Google kept per process (program, revision): a few dozen KB each.
LOGOS_KEPT = 64
#: The uploaded logo files, sharpest first, and the program's colour when it has none.
_LOGO_FILES = ("logo@3x.png", "logo@2x.png", "logo.png")
_DEFAULT_BACKGROUND = "#182c52"


class LogoCache:
    """Square logos made for Google (:func:`google_logo`), kept per program revision."""

    def __init__(self, size: int = LOGOS_KEPT) -> None:
        self._size = size
        self._logos: OrderedDict[tuple[int, str], bytes] = OrderedDict()
        self._lock = threading.Lock()
        self.made = 0  # logos made by this process (observability and tests)

    def get(self, key: tuple[int, str]) -> bytes | None:
        with self._lock:
            logo = self._logos.get(key)
            if logo is not None:
                self._logos.move_to_end(key)
            return logo

    def put(self, key: tuple[int, str], logo: bytes) -> None:
        with self._lock:
            self.made += 1
            self._logos[key] = logo
            while len(self._logos) > self._size:
                self._logos.popitem(last=False)


@dataclass(frozen=True)
class GoogleWallet:
    """The deployment's Google Wallet: issuer, public URL, the API client and Google's
    callback root keys, the namespace of its ids (``WALLET_GOOGLE_ID_PREFIX``) and the logos
    made for it. Built once per process by ``build_state``."""

    issuer_id: str | None
    public_url: str
    client: WalletObjects
    root_keys: GoogleRootKeys | None = None
    id_prefix: str | None = None
    logos: LogoCache = field(default_factory=LogoCache, compare=False, repr=False)

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
        logo_url=google_logo_url(wallet.public_url, program.join_token, _revision(program)),
        background_color=_background(program),
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
    survey = (survey_url(wallet.public_url, card.download_token)
              if card.status == "active" and (program.survey or {}).get("enabled") else None)
    return dataclasses.replace(view, balance=balance, balance_label=label, details=details,
                               survey_url=survey)


def card_stores(session: Session, program: LoyaltyProgram) -> tuple[GoogleStore, ...]:
    """The locations the program's cards show, as on the Apple pass: the program's design
    locations first, then the merchant's stores, 10 at most (spec §1.8)."""
    return tuple(GoogleStore(latitude=loc.latitude, longitude=loc.longitude,
                             name=loc.relevant_text or "")
                 for loc in program_locations(session, program))


def google_logo(session: Session, wallet: GoogleWallet, program: LoyaltyProgram) -> bytes:
    """The program's logo as Google Wallet takes it: a square PNG of 660 px, the uploaded
    logo (the sharpest size; else the template's) on the program's background colour (spec
    §2.4). Made once per program revision in each process (``wallet.logos``)."""
    key = (program.id, _revision(program))
    logo = wallet.logos.get(key)
    if logo is None:
        uploaded = dict(session.execute(
            select(ProgramImage.filename, ProgramImage.data).where(
                ProgramImage.program_id == program.id, ProgramImage.kind == "logo",
                ProgramImage.filename.in_(_LOGO_FILES))).all())
        source = next((uploaded[name] for name in _LOGO_FILES if name in uploaded), None)
        if source is None:
            source = assets.load_template(program.template).images["logo@3x.png"].data
        logo = square_logo(source, _background(program))
        wallet.logos.put(key, logo)
    return logo


def _revision(program: LoyaltyProgram) -> str:
    """What changes with every change of the program (design, images, texts)."""
    return program.updated_at.strftime("%Y%m%d%H%M%S%f")


def _background(program: LoyaltyProgram) -> str:
    return (program.design or {}).get("background_color") or _DEFAULT_BACKGROUND


# --- classes and objects ------------------------------------------------------------------

def ensure_class(session: Session, wallet: GoogleWallet, program: LoyaltyProgram) -> str:
    """Insert or patch the program's class when it does not show the current program
    revision; one call per design change, however many cards (spec §0, §2.1). A class
    recorded under another id (``WALLET_GOOGLE_ID_PREFIX`` changed) is inserted anew."""
    revision = program.updated_at.isoformat()
    row = session.get(GoogleClass, program.id)
    cid = class_id(wallet.issuer_id, program.id, prefix=wallet.id_prefix)
    if row is not None and row.synced_revision == revision and row.class_id == cid:
        return cid
    payload = loyalty_class(wallet.issuer_id, program_view(session, wallet, program),
                            prefix=wallet.id_prefix)
    if row is None or row.class_id != cid:
        wallet.client.upsert_class(payload)  # insert; patch if it exists (§1.5)
    else:
        wallet.client.patch_class(cid, payload)
    if row is None:
        try:
            # Two first taps of a program at once both insert the class (Google answers
            # one with 409 and the upsert patches): the second row is refused, the first
            # one stands for the same class.
            with session.begin_nested():
                session.add(GoogleClass(program_id=program.id, class_id=cid,
                                        synced_revision=revision, updated_at=utcnow()))
        except IntegrityError:
            pass
    else:
        row.class_id, row.synced_revision, row.updated_at = cid, revision, utcnow()
    session.flush()
    return cid


def ensure_object(session: Session, wallet: GoogleWallet, card: LoyaltyCard) -> str:
    """The card's object exists at Google (inserted, or patched on 409: spec §1.5); its id.

    An object inserted once keeps its id, so a saved card stays valid.
    """
    row = session.get(GoogleObject, card.id)
    if row is not None and row.inserted:
        return row.object_id
    program = session.get_one(LoyaltyProgram, card.program_id)
    member = session.get_one(Member, card.member_id)
    ensure_class(session, wallet, program)
    view = program_view(session, wallet, program)
    shown = card_view(wallet, card, member, card_stores(session, program), program=program,
                      totals=tier_totals(session, card, program.rules, utcnow().date()))
    payload = loyalty_object(wallet.issuer_id, view, shown, prefix=wallet.id_prefix)
    answer = wallet.client.upsert_object(payload)
    state = _state(_synced_fields(view, shown), card,
                   reminder_texts(session, card, program.languages))
    # What the object holds: none when inserted, its own when an earlier insert existed.
    state["messages"] = list(answer.get("messages") or [])
    if row is None:
        row = GoogleObject(card_id=card.id, object_id=payload["id"], inserted=True,
                           synced_version=card.version, synced_state=state,
                           updated_at=utcnow())
        try:
            # Two taps at once both insert (Google answers one with 409 and the upsert
            # patches): the second row is refused, the first one stands.
            with session.begin_nested():
                session.add(row)
        except IntegrityError:
            row = session.get_one(GoogleObject, card.id, populate_existing=True)
            return row.object_id
    else:
        row.inserted, row.synced_version, row.synced_state = True, card.version, state
    session.flush()
    return row.object_id


def save_link(session: Session, wallet: GoogleWallet, card: LoyaltyCard) -> str:
    """Google's save URL for the card, when the customer taps the service's own link
    (spec §3.3): the object is inserted first (once; its calls go ahead of background
    work in the request budget), so the JWT only names its id and stays short (§3.4). The
    caller commits the insert.

    :raises GoogleWalletError: Google cannot be reached or refused (the caller says to try
        again; nothing was recorded then if it rolls back).
    """
    with wallet.client.urgent():
        oid = ensure_object(session, wallet, card)
    return wallet.client.save_url([oid], [wallet.public_url])


def sync_card(session: Session, wallet: GoogleWallet, card_id: int, now: dt.datetime) -> str:
    """Bring the card's object up to date; returns what was done. A changed balance
    notifies the member while the card has budget left (3 per 24 h, counted here),
    otherwise the update is silent. A campaign message, an expiry reminder and a new tier
    go out as messages, notifying on the same budget (spec §2.6): the tier is in
    ``secondaryLoyaltyPoints``, and Google names only ``loyaltyPoints.balance`` and the
    class's ``rewardsTier`` among the fields whose update notifies. A design change reaches
    the barcode and the links of the object too. The object keeps at most 10 messages."""
    card = session.get(LoyaltyCard, card_id)
    row = session.get(GoogleObject, card_id)
    if card is None or row is None or not row.inserted:
        return "skipped"
    program = session.get_one(LoyaltyProgram, card.program_id)
    member = session.get_one(Member, card.member_id)
    ensure_class(session, wallet, program)
    view = program_view(session, wallet, program)
    patch = _synced_fields(view, card_view(
        wallet, card, member, card_stores(session, program), program=program,
        totals=tier_totals(session, card, program.rules, now.date())))
    state = _state(patch, card, reminder_texts(session, card, program.languages))
    previous = row.synced_state or {}
    before = previous.get("patch") or {}
    languages = list(program.languages) or ["en"]
    outgoing: list[tuple[str, dict[str, str], dict[str, str]]] = []
    if card.tier and _tier_changed(before, patch):
        outgoing.append(("tier", _words(languages, "google_tier_header"),
                         _words(languages, "google_tier_body", tier=card.tier)))
    for kind, headers in (("message", MESSAGE_HEADER), ("reminder", REMINDER_HEADER)):
        text = state.get(kind)
        if text and text != previous.get(kind):
            outgoing.append((kind, {lang: headers.get(lang, headers["en"])
                                    for lang in languages},
                             {lang: localized(text, lang) for lang in languages}))
    done = "unchanged"
    if patch != before:
        # A tier's own message notifies about it; the points patch does not notify twice.
        notify = (patch.get("loyaltyPoints") != before.get("loyaltyPoints")
                  and not any(kind == "tier" for kind, _, _ in outgoing)
                  and _budget_left(session, card_id, now))
        try:
            wallet.client.patch_object(row.object_id, patch, notify=notify)
        except NotificationQuotaExceeded:
            notify = False
            wallet.client.patch_object(row.object_id, patch, notify=False)
        if notify:
            session.add(GoogleNotification(card_id=card_id, kind="update", sent_at=now))
        done = "patched, notified" if notify else "patched"
    messages: list[dict[str, Any]] | None = previous.get("messages")
    for kind, header, body in outgoing:
        messages, notified = _add_message(wallet, row.object_id, messages, header, body,
                                          notify=_budget_left(session, card_id, now))
        if notified:
            session.add(GoogleNotification(card_id=card_id, kind=kind, sent_at=now))
        done += f", {kind}"
    state["messages"] = messages
    row.synced_state, row.synced_version, row.updated_at = state, card.version, now
    session.flush()
    return done


def _synced_fields(program: GoogleProgram, card: GoogleCard) -> dict[str, Any]:
    """The object's fields the service keeps in step: what a card change moves
    (``object_patch``) and what the design decides on it (barcode, links)."""
    return {**object_patch(program, card), **object_design(program, card)}


def _tier_changed(before: Mapping[str, Any], after: Mapping[str, Any]) -> bool:
    """Whether the tier shown changed (not when the object showed no tier before: a
    program that turns tiers on does not message every card)."""
    old, new = before.get("secondaryLoyaltyPoints"), after.get("secondaryLoyaltyPoints")
    return bool(old and new) and old.get("balance") != new.get("balance")


def _words(languages: Sequence[str], key: str, **values: object) -> dict[str, str]:
    return {lang: i18n.t(lang, key, **values) for lang in languages}


def _add_message(wallet: GoogleWallet, object_id: str,
                 messages: list[dict[str, Any]] | None, header: Mapping[str, str],
                 body: Mapping[str, str], *, notify: bool
                 ) -> tuple[list[dict[str, Any]], bool]:
    """Add a message to the object, making room first: at 10, the oldest goes (a PATCH
    of the newest 9, spec §2.6, §7.15). ``messages`` is what the object holds (None: not
    known yet, read once from Google). Returns what it holds then, and whether the message
    notified (a quota answer sends it again silently)."""
    if messages is None:
        messages = list(wallet.client.get_object(object_id).get("messages") or [])
    if len(messages) >= MESSAGES_PER_OBJECT:
        messages = kept_messages(messages)
        wallet.client.patch_object(object_id, {"messages": messages})
    message_id = uuid.uuid4().hex
    try:
        wallet.client.add_message(object_id, dict(header), dict(body), notify=notify,
                                  message_id=message_id)
    except NotificationQuotaExceeded:
        notify = False
        wallet.client.add_message(object_id, dict(header), dict(body), notify=False,
                                  message_id=message_id)
    sent = loyalty_message(dict(header), dict(body), notify=notify, message_id=message_id)
    return [*messages, sent], notify

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
