"""Apple Wallet for cards: the signed pass of each card, and the server side of Apple's pass
web service (apple-wallet spec §3): device registrations, the list of updated passes and
device logs.

The pure pass builder and the certificate and template files are in
:mod:`wallet_service.apple`; this module maps the database onto them. Functions take a
session and never commit; the web view or the job that called them does.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from dataclasses import replace
from decimal import Decimal
from typing import Any

from sqlalchemy import and_
from sqlalchemy import bindparam
from sqlalchemy import case
from sqlalchemy import delete
from sqlalchemy import func
from sqlalchemy import insert
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..apple import CardContent
from ..apple import Design
from ..apple import MerchantContact
from ..apple import SignerCredentials
from ..apple import StoreLocation
from ..apple import assets
from ..apple import build_pkpass
from ..apple import localize_fields
from ..apple import stamp_strip
from ..config import Settings
from ..db import dialect_insert
from ..db import first_row
from ..db import utcnow
from ..errors import AuthenticationFailed
from ..errors import ResourceNotFound
from ..errors import WalletError
from ..i18n import localized
from ..i18n import plural_word
from ..models import CardUpdateTag
from ..models import Device
from ..models import DeviceLog
from ..models import LoyaltyCard
from ..models import LoyaltyProgram
from ..models import Member
from ..models import Merchant
from ..models import Registration
from ..models import SignedPass
from ..rules import Standing
from ..rules import TierProgress
from ..rules import Totals
from ..rules import standing
from ..urls import apple_web_service_url
from ..urls import card_url
from ..urls import survey_url
from . import wallet_events
from .ledger import reminder_texts
from .ledger import tier_totals
from .locations import ShownLocation
from .locations import program_locations
from .outbox import id_set
from .outbox import in_ids
from .programs import program_images
from .rewards import GRANTS
from .rewards import MemberCoupon
from .rewards import member_coupons

log = logging.getLogger(__name__)



def signer_from_settings(settings: Settings) -> SignerCredentials:
    """The configured certificate set, or the development set in ``<instance>/certs``
    (generated on first use) when no real certificate is configured.

    :raises ConfigurationError: the files cannot be read or do not belong together.
    """
    if settings.apple_dev_certs:
        paths = assets.generate_dev_certs(
            settings.instance_path / "certs", settings.apple_pass_type_id,
            settings.apple_team_id,
        )
        return assets.load_signer(
            wwdr_cert=paths.wwdr_certificate, cert=paths.certificate, key=paths.private_key
        )
    return assets.load_signer(
        wwdr_cert=settings.apple_wwdr_cert, p12=settings.apple_p12, cert=settings.apple_cert,
        key=settings.apple_key, password=settings.apple_key_password,
    )


def card_content(settings: Settings, card: LoyaltyCard, member: Member,
                 program: LoyaltyProgram, card_url: str | None,
                 shown: Standing | None = None) -> CardContent:
    """The pass's values of ``card``: what it holds for its program's kind comes from
    ``shown`` (:func:`wallet_service.rules.standing`, as the API and the card page say it)."""
    if shown is None:
        shown = standing(program.kind, program.rules, program.currency, card)
    return CardContent(
        kind=program.kind,
        stamps=shown.stamps,
        stamps_goal=shown.stamps_goal,
        rewards_ready=shown.rewards_ready,
        cashback_percent=shown.cashback_percent,
        discount_percent=shown.discount_percent,
        serial_number=card.serial_number,
        pass_type_identifier=settings.apple_pass_type_id,
        team_identifier=settings.apple_team_id,
        member_name=member.name,
        card_number=card.serial_number,
        balance=card.balance,
        authentication_token=card.authentication_token,
        web_service_url=apple_web_service_url(settings.public_url),
        tier=card.tier,
        card_url=card_url,
        voided=card.status != "active",
        locale=program.languages[0],
    )


def design_for(program: LoyaltyProgram, merchant_name: str, images: dict[str, bytes],
               locations: Sequence[ShownLocation] = ()) -> Design:
    """The program's look; ``locations`` are what its cards show (the program's design
    locations and the merchant's stores, :func:`.locations.program_locations`)."""
    d: dict[str, Any] = program.design
    contact = d.get("contact") or {}
    return Design(
        organization_name=merchant_name,
        description=d.get("description") or program.name,
        logo_text=d.get("logo_text") or program.name[:40],
        background_color=d.get("background_color"),
        foreground_color=d.get("foreground_color"),
        label_color=d.get("label_color"),
        images=images,
        rules_text=d.get("rules_text"),
        terms_text=d.get("terms_text"),
        contact=MerchantContact(phone=contact.get("phone"), website=contact.get("website"),
                                email=contact.get("email")),
        locations=tuple(
            StoreLocation(latitude=loc.latitude, longitude=loc.longitude,
                          relevant_text=loc.relevant_text)
            for loc in locations
        ),
        barcode_format=d.get("barcode_format") or "qr",
        languages=tuple(program.languages),
        currency_code=program.currency,
        points_label=d.get("points_label"),
    )


# Texts of the fields this module adds, per language: the pass carries each language's in
# its pass.strings (:func:`back_fields`, §1.5).
_TEXTS = {
    "en": {
        "message": "News", "coupon": "Your coupon", "progress": "Next reward",
        "stamps_left": "{left} more to {reward}", "reward_ready": "{count} × {reward} ready",
        "tier_progress": "Next level", "to_tier": "{left} {unit} to {tier}",
        "discount": "Your discount", "until": "until {date}",
        "next_discount": "Next discount",
        "to_discount": "{percent} at {tier}: {amount} to go",
        "expiry_reminder": "Points expiring", "stamp_debt": "Stamps owed",
        "stamp_debt_value": "{debt} for a refunded purchase: the next stamps pay this off "
                            "first",
        "survey": "Rate us: one question",
    },
    "ru": {
        "message": "Новости", "coupon": "Ваш купон", "progress": "До подарка",
        "stamps_left": "Ещё {left} — и {reward}",
        "reward_ready": "Готово к получению: {count} × {reward}",
        "tier_progress": "Следующий уровень", "to_tier": "{tier}: осталось {left} {unit}",
        "discount": "Ваша скидка", "until": "до {date}",
        "next_discount": "Следующая скидка",
        "to_discount": "{percent} на уровне «{tier}»: осталось {amount}",
        "expiry_reminder": "Сгорание баллов", "stamp_debt": "Долг по штампам",
        "stamp_debt_value": "{debt} после возврата покупки: следующие штампы сначала "
                            "погасят долг",
        "survey": "Оцените нас: 1 вопрос",
    },
}


def extra_fields(program: LoyaltyProgram, card: LoyaltyCard, coupons: list[MemberCoupon], *,
                 totals: Totals, lang: str | None = None,
                 reminders: dict[str, str] | None = None,
                 survey_url: str | None = None) -> list[dict[str, Any]]:
    """Back fields for what the program's mechanics add: the message, the reminder of
    expiring points, the active coupon, stamps to the next reward (and stamps owed after a
    refund), the discount and the way to the next tier from the tier basis ``totals``
    (:func:`.ledger.tier_totals`) (§2.5). The message, the reminder and the coupon carry a
    ``changeMessage``, so the phone announces them (§2.6). Texts are in ``lang`` (the
    program's first language unless given), the merchant's too when given per language, and
    the reminder's from ``reminders`` (:func:`.ledger.reminder_texts`) when given. With
    ``survey_url`` (the program asks, ``services.nps``), a link to the NPS survey."""
    if lang is None:
        lang = program.languages[0] if program.languages else "en"
    texts = _TEXTS.get(lang, _TEXTS["en"])
    rules = program.rules
    shown = standing(program.kind, rules, program.currency, card, totals)
    fields: list[dict[str, Any]] = []
    if card.message:
        fields.append({"key": "message", "label": texts["message"],
                       "value": localized(card.message, lang), "changeMessage": "%@"})
    if card.reminder:
        fields.append({"key": "expiry_reminder", "label": texts["expiry_reminder"],
                       "value": localized(reminders or card.reminder, lang),
                       "changeMessage": "%@"})
    if coupons:
        c = coupons[0]
        value = localized(c.title, lang)
        if c.valid_until is not None:
            value += " (" + texts["until"].format(date=c.valid_until.date().isoformat()) + ")"
        fields.append({"key": "coupon", "label": texts["coupon"], "value": value,
                       "changeMessage": "%@"})
    if shown.stamps_left is not None:
        reward = localized(shown.reward, lang)
        value = texts["stamps_left"].format(left=shown.stamps_left, reward=reward)
        if shown.rewards_ready:
            value += "\n" + texts["reward_ready"].format(count=shown.rewards_ready,
                                                          reward=reward)
        fields.append({"key": "progress", "label": texts["progress"], "value": value})
        if shown.stamp_debt:
            fields.append({"key": "stamp_debt", "label": texts["stamp_debt"],
                           "value": texts["stamp_debt_value"].format(debt=shown.stamp_debt)})
    if shown.discount_percent is not None:
        fields.append({"key": "discount", "label": texts["discount"],
                       "value": _percent(shown.discount_percent)})
    upcoming = shown.next_discount
    if upcoming is not None:
        amount = " ".join(filter(None, _left(program, upcoming.basis, upcoming.left, lang)))
        fields.append({"key": "next_discount", "label": texts["next_discount"],
                       "value": texts["to_discount"].format(
                           percent=_percent(upcoming.percent), tier=upcoming.tier,
                           amount=amount)})
    progress = shown.tier_progress
    if progress is not None and progress.next_tier is not None:
        fields.append({"key": "tier_progress", "label": texts["tier_progress"],
                       "value": _to_tier(program, progress, texts, lang)})
    if survey_url is not None:
        fields.append({"key": "survey", "label": texts["survey"], "value": survey_url,
                       "dataDetectorTypes": ["PKDataDetectorTypeLink"]})
    return fields


def back_fields(program: LoyaltyProgram, card: LoyaltyCard, coupons: list[MemberCoupon], *,
                totals: Totals, reminders: dict[str, str] | None = None,
                survey_url: str | None = None,
                ) -> tuple[list[dict[str, Any]], dict[str, dict[str, str]]]:
    """The mechanics' back fields (:func:`extra_fields`) in every language of the program:
    the fields, whose texts are ``pass.strings`` keys where the languages differ, and the
    strings per language, so a phone shows its own language's (§1.5)."""
    languages = list(program.languages) or ["en"]
    return localize_fields({lang: extra_fields(program, card, coupons, totals=totals,
                                               lang=lang, reminders=reminders,
                                               survey_url=survey_url)
                            for lang in languages})


def _percent(share: Decimal) -> str:
    return f"{share.normalize():f} %"


#: The plural word (``i18n.PLURALS``) counting what a tier's basis counts.
_BASIS_WORDS = {"lifetime_points": "point", "visits": "visit"}


def _left(program: LoyaltyProgram, basis: str, left: Decimal, lang: str) -> tuple[str, str]:
    """What is still needed and its unit: money with the currency, or points or visits in the
    plural form the number takes in ``lang`` ("2 визита", "5 визитов")."""
    if basis == "lifetime_spend":
        return f"{left.normalize():f} {program.currency}", ""
    return f"{left:f}", plural_word(lang, _BASIS_WORDS[basis], left)


def _to_tier(program: LoyaltyProgram, progress: TierProgress, texts: dict[str, Any],
             lang: str) -> str:
    left, unit = _left(program, progress.basis, progress.left, lang)
    return texts["to_tier"].format(left=left, unit=unit, tier=progress.next_tier).strip()


def decorate(pass_json: dict[str, Any], program: LoyaltyProgram, card: LoyaltyCard,
             extra: list[dict[str, Any]]) -> dict[str, Any]:
    """Add the mechanics' back fields but those the front shows already (a key is unique
    across the pass, §2.5: the ``tiers`` template shows the discount on the front), and
    announce a new tier through the tier field's ``changeMessage`` (``tier.change``, every
    template's strings have it)."""
    store = pass_json["storeCard"]
    front = set()
    for area in ("headerFields", "primaryFields", "secondaryFields", "auxiliaryFields"):
        for f in store.get(area, ()):
            front.add(f["key"])
            if f["key"] == "tier":
                f.setdefault("changeMessage", "tier.change")
    store["backFields"] = ([f for f in extra if f["key"] not in front]
                           + store.get("backFields", []))
    return pass_json


class PassFactory:
    """Builds members' passes. A card version's signed pass is kept in the database
    (:class:`~wallet_service.models.SignedPass`), signed once for every process: the worker
    signs a new version before its push goes out (:func:`sign_ahead`), so the devices the
    push wakes download a ready file; a version not signed yet is signed by the first
    process asked for it and stored. Every pass links the member's card page on its back
    (spec §2.5), however it is downloaded."""

    #: The most bytes of stored passes a process keeps in memory: a download storm after a
    #: design change asks for each card's pass a few times within minutes.
    CACHE_BYTES = 64 * 1024 * 1024

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._signer: SignerCredentials | None = None
        self._lock = threading.Lock()
        self.signed = 0  # passes signed by this process (observability and tests)
        #: Stored passes this process served lately (:meth:`data`).
        self.cache = ByteCache(self.CACHE_BYTES)
        #: Lookups (:meth:`find`) whose stored pass this process served lately: a hint
        #: that the bytes are in :attr:`cache`, so the next lookup leaves them in the
        #: database (a wrong hint costs one more query, never a stale pass).
        self._served: LruMap = LruMap(self.CACHE_BYTES // 4096)
        self._designs: OrderedDict[tuple[int, str, str, tuple[ShownLocation, ...]],
                                   Design] = OrderedDict()
        # What a stored pass was signed for besides its card: another public URL or pass
        # type would put other links and identifiers into the pass.
        self.issuer = hashlib.sha256("\n".join(
            (settings.public_url, settings.apple_pass_type_id, settings.apple_team_id)
        ).encode()).hexdigest()[:32]

    def _design(self, session: Session, program: LoyaltyProgram, merchant_name: str,
                stamps: int | None = None,
                shown: tuple[ShownLocation, ...] | None = None) -> Design:
        """One ``Design`` object per program revision and shown locations (and, for stamp
        cards, per stamp count: the strip shows the stamps): the builder caches the files a
        design's passes share by that object, so rebuilding it per pass would redo that
        work. The merchant's stores are not part of the program's revision, so the
        locations they give are part of the key."""
        if shown is None:
            shown = program_locations(session, program)
        key = (program.id, f"{program.updated_at.isoformat()}/{stamps}", merchant_name, shown)
        with self._lock:
            design = self._designs.get(key)
        if design is None:
            images = program_images(session, program.id)
            if stamps is not None:
                images = {n: d for n, d in images.items() if not n.startswith("strip")}
                images.update(stamp_strip(stamps, int(program.rules["stamps"]["goal"]),
                                          program.design.get("label_color")))
            design = design_for(program, merchant_name, images, shown)
            with self._lock:
                self._designs[key] = design
                while len(self._designs) > 256:
                    self._designs.popitem(last=False)
        return design

    @property
    def signer(self) -> SignerCredentials:
        if self._signer is None:
            with self._lock:
                if self._signer is None:
                    self._signer = signer_from_settings(self.settings)
        return self._signer

    def days_left(self, now: dt.datetime | None = None) -> dict[str, float]:
        """Days before the signing certificates in use expire (``pass``, ``wwdr``), for the
        metrics; empty when they cannot be loaded (``doctor`` says why). A renewed
        certificate counts once the process has restarted with it (docs/certificates.md)."""
        try:
            signer = self.signer
        except WalletError:
            return {}
        moment = now or dt.datetime.now(dt.UTC)
        return {name: (cert.not_valid_after_utc - moment).total_seconds() / 86400
                for name, cert in (("pass", signer.certificate),
                                   ("wwdr", signer.wwdr_certificate))}

    def current(self, session: Session, *where: Any) -> tuple[LoyaltyCard, bytes | None] | None:
        """The card matching ``where`` (conditions on :class:`LoyaltyCard`) and its current
        version's stored pass (None when not signed yet), in one query; None when no card
        matches. The hot path of a download: a stored pass needs nothing else."""
        row = session.execute(
            select(LoyaltyCard, SignedPass.data)
            .join(LoyaltyProgram, LoyaltyProgram.id == LoyaltyCard.program_id)
            .outerjoin(SignedPass, and_(
                SignedPass.card_id == LoyaltyCard.id,
                SignedPass.version == LoyaltyCard.version,
                SignedPass.program_revision == LoyaltyProgram.updated_at,
                SignedPass.download_token == LoyaltyCard.download_token,
                SignedPass.issuer == self.issuer))
            .where(*where)
            .limit(1)
        ).first()
        return None if row is None else (row[0], row[1])

    def find(self, session: Session, column: str, value: str) -> CurrentPass | None:
        """The download hot path: the card whose ``column`` (``download_token`` or
        ``serial_number``) is ``value``, with what identifies its current pass, in one Core
        query; None when no card matches. The stored pass's bytes come in the same query
        unless this process served this card's pass lately, whose bytes :meth:`data` then
        takes from the process's cache: a storm of distinct cards costs one round trip per
        download, the same card asked again and again moves no bytes from the database."""
        lookup = (column, value)
        with_data = not self._served.get(lookup)
        row = _first_row(session, _FIND[column, with_data],
                         {"issuer": self.issuer, "value": value})
        if row is None:
            return None
        revision = _utc(row.revision)
        key = (row.id, row.version, revision, row.download_token, self.issuer)
        return CurrentPass(
            card_id=row.id, serial_number=row.serial_number,
            authentication_token=row.authentication_token,
            last_modified=_utc(row.last_modified).replace(microsecond=0),
            etag='"' + hashlib.sha256(repr(key).encode()).hexdigest()[:32] + '"',
            signed_id=row.signed_id, key=key, lookup=lookup,
            data=row.data if with_data else None)

    def data(self, session: Session, found: CurrentPass) -> tuple[bytes, bool]:
        """The signed pass of ``found`` and whether it was signed now (the caller commits
        then, so every process gets it). A stored pass comes with ``found`` or from this
        process's byte cache, keyed by its row and everything that makes it current (card,
        version, program revision, download token, deployment): a newer version or revision
        has another key, so the cache never serves a pass that is no longer current."""
        if found.signed_id is not None:
            key = (found.signed_id, *found.key)
            data = found.data
            if data is None:
                data = self.cache.get(key)
                if data is None:
                    data = session.scalar(select(SIGNED.c.data)
                                          .where(SIGNED.c.id == found.signed_id))
                    found = replace(found, data=data)
            if data is not None:
                if found.data is not None:
                    self.cache.put(key, data)
                self._served.put(found.lookup, True)
                return data, False
        card = session.get_one(LoyaltyCard, found.card_id)
        return self.pass_bytes(session, card), True

    def pass_bytes(self, session: Session, card: LoyaltyCard,
                   stored: bytes | None = None) -> bytes:
        """The card's signed pass: ``stored`` when the caller has it (:meth:`current`), the
        stored one of its version, or signed now and stored for every process (the caller
        commits). Two processes signing one version at once both serve their own, and the
        first stored stays."""
        if stored is not None:
            return stored
        program = session.get_one(LoyaltyProgram, card.program_id)
        stored = session.scalar(select(SignedPass.data).where(
            *self._same(card, program.updated_at)))
        if stored is not None:
            return stored
        data = self._sign(session, card, program)
        self._store(session, card, program.updated_at, data)
        return data

    def _same(self, card: LoyaltyCard, revision: dt.datetime) -> tuple[Any, ...]:
        return (SignedPass.card_id == card.id, SignedPass.version == card.version,
                SignedPass.program_revision == revision,
                SignedPass.download_token == card.download_token,
                SignedPass.issuer == self.issuer)

    def _store(self, session: Session, card: LoyaltyCard, revision: dt.datetime,
               data: bytes) -> None:
        """Keep ``data`` as the card's current pass (once, however many store it at once)
        and drop what it supersedes: older versions and program revisions, and passes for
        another link or deployment."""
        stmt = dialect_insert(session, SIGNED).values(
            card_id=card.id, version=card.version, program_revision=revision,
            download_token=card.download_token, issuer=self.issuer, data=data,
            created_at=utcnow())
        session.execute(stmt.on_conflict_do_nothing())
        session.execute(delete(SIGNED).where(
            SIGNED.c.card_id == card.id,
            or_(SIGNED.c.version < card.version, SIGNED.c.program_revision < revision,
                SIGNED.c.download_token != card.download_token,
                SIGNED.c.issuer != self.issuer)))

    def _sign(self, session: Session, card: LoyaltyCard, program: LoyaltyProgram,
              prepared: _Prepared | None = None) -> bytes:
        page = card_url(self.settings.public_url, card.download_token)
        member = session.get_one(Member, card.member_id)
        merchant = session.get_one(Merchant, program.merchant_id)
        stamps = card.stamps if program.kind == "stamps" else None
        design = self._design(session, program, merchant.name, stamps,
                              None if prepared is None else prepared.shown[program.id])
        template = assets.load_template(program.template)
        now = utcnow()
        totals = tier_totals(session, card, program.rules, now.date())
        content = card_content(self.settings, card, member, program, page,
                               standing(program.kind, program.rules, program.currency, card,
                                        totals))
        extra, strings = back_fields(
            program, card,
            (member_coupons(session, card.id, active_at=now)
             if prepared is None or card.id in prepared.with_coupons else []),
            totals=totals,
            reminders=reminder_texts(session, card, program.languages),
            survey_url=(survey_url(self.settings.public_url, card.download_token)
                        if card.status == "active" and (program.survey or {}).get("enabled")
                        else None))
        data = build_pkpass(template, design, content, self.signer,
                            customize=lambda pj: decorate(pj, program, card, extra),
                            strings=strings)
        with self._lock:
            self.signed += 1
        return data


SIGNED = SignedPass.__table__
_CARD = LoyaltyCard.__table__


def _find_statement(column: str, with_data: bool) -> Any:
    signed = SIGNED.c.id.label("signed_id")
    columns = [_CARD.c.id, _CARD.c.serial_number, _CARD.c.authentication_token,
               _CARD.c.version, _CARD.c.last_modified, _CARD.c.download_token,
               LoyaltyProgram.updated_at.label("revision"), signed]
    if with_data:
        columns.append(SIGNED.c.data)
    return (
        select(*columns)
        .join(LoyaltyProgram, LoyaltyProgram.id == _CARD.c.program_id)
        .outerjoin(SIGNED, and_(
            SIGNED.c.card_id == _CARD.c.id, SIGNED.c.version == _CARD.c.version,
            SIGNED.c.program_revision == LoyaltyProgram.updated_at,
            SIGNED.c.download_token == _CARD.c.download_token,
            SIGNED.c.issuer == bindparam("issuer")))
        .where(_CARD.c[column] == bindparam("value"))
        .limit(1)
    )


#: :meth:`PassFactory.find`'s statements, built once: by link or by serial number, with or
#: without the stored pass's bytes.
_FIND = {(column, with_data): _find_statement(column, with_data)
         for column in ("download_token", "serial_number") for with_data in (False, True)}


def _utc(moment: dt.datetime) -> dt.datetime:
    """``moment`` in UTC, as the columns' type gives it (the driver's binary results carry
    the connection's zone object instead)."""
    return moment.astimezone(dt.UTC) if moment.tzinfo is not None else moment.replace(
        tzinfo=dt.UTC)


def _first_row(session: Session, statement: Any, params: dict[str, Any]) -> Any:
    """The first row of a download look-up, in binary format on PostgreSQL: a pass's bytes
    in text format are hex, twice their size, which the server spends more time writing
    than the query takes (70 KB: 0.36 ms against 0.11 ms)."""
    return first_row(session, statement, params, binary=True)


@dataclass(frozen=True)
class CurrentPass:
    """A card and what identifies its current pass (:meth:`PassFactory.find`): ``etag``
    names the version's content, ``signed_id`` its stored row (None: not signed yet)."""

    card_id: int
    serial_number: str
    authentication_token: str
    last_modified: dt.datetime
    etag: str
    signed_id: int | None
    key: tuple[Any, ...]
    lookup: tuple[str, str] = ("", "")
    #: The stored pass's bytes when the lookup fetched them (else the cache has them).
    data: bytes | None = field(default=None, repr=False, compare=False)


class LruMap:
    """A least-recently-used map bounded by its number of keys, shared by a process's
    threads."""

    def __init__(self, max_items: int) -> None:
        self.max_items = max_items
        self._items: OrderedDict[Any, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Any) -> Any:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: Any, value: Any) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.max_items:
                self._items.popitem(last=False)


class ByteCache:
    """A least-recently-used map of keys to bytes, bounded by their total size, shared by
    a process's threads."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self._items: OrderedDict[Any, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Any) -> bytes | None:
        with self._lock:
            data = self._items.get(key)
            if data is not None:
                self._items.move_to_end(key)
            return data

    def put(self, key: Any, data: bytes) -> None:
        if len(data) > self.max_bytes:
            return
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self.size -= len(old)
            self._items[key] = data
            self.size += len(data)
            while self.size > self.max_bytes:
                _, dropped = self._items.popitem(last=False)
                self.size -= len(dropped)


def sign_ahead(session: Session, passes: PassFactory, device_ids: Sequence[int]) -> int:
    """Sign and store the current version of every card registered on these devices that
    has no stored pass yet, so the devices a push is about to wake download a ready file
    instead of all asking the web processes to sign it at once (spec §3.7: after the push
    they fetch the changed serials and then each pass). The caller commits; returns how
    many passes were signed."""
    if not device_ids:
        return 0
    cards = session.scalars(
        select(LoyaltyCard)
        .join(LoyaltyProgram, LoyaltyProgram.id == LoyaltyCard.program_id)
        .where(LoyaltyCard.id.in_(
            select(REGS.c.card_id).where(in_ids(session, REGS.c.device_id, device_ids))))
        .where(~select(SIGNED.c.id).where(
            SIGNED.c.card_id == LoyaltyCard.id, SIGNED.c.version == LoyaltyCard.version,
            SIGNED.c.program_revision == LoyaltyProgram.updated_at,
            SIGNED.c.download_token == LoyaltyCard.download_token,
            SIGNED.c.issuer == passes.issuer).exists())
        .order_by(LoyaltyCard.id)
    ).all()
    if not cards:
        return 0
    # What the cards share or lack is read once for all of them, not once per pass: their
    # programs, members and merchants (into the session, where signing finds them), each
    # program's locations, and which cards hold coupons at all.
    programs = {p.id: p for p in session.scalars(
        select(LoyaltyProgram).where(LoyaltyProgram.id.in_({c.program_id for c in cards})))}
    session.scalars(select(Member).where(
        in_ids(session, Member.id, {c.member_id for c in cards}))).all()
    session.scalars(select(Merchant).where(
        Merchant.id.in_({p.merchant_id for p in programs.values()}))).all()
    card_ids = id_set(session, [c.id for c in cards])
    prepared = _Prepared(
        shown={p.id: program_locations(session, p) for p in programs.values()},
        with_coupons=set(session.scalars(
            select(GRANTS.c.card_id).where(GRANTS.c.card_id.in_(card_ids)).distinct())))
    insert_once = dialect_insert(session, SIGNED).on_conflict_do_nothing()
    for start in range(0, len(cards), _STORE_CHUNK):
        rows = []
        for card in cards[start:start + _STORE_CHUNK]:
            program = programs[card.program_id]
            rows.append({"card_id": card.id, "version": card.version,
                         "program_revision": program.updated_at,
                         "download_token": card.download_token, "issuer": passes.issuer,
                         "data": passes._sign(session, card, program, prepared),
                         "created_at": utcnow()})
        session.execute(insert_once, rows)
    # What the new passes supersede, as PassFactory._store drops it for one card.
    stale = (
        select(SIGNED.c.id)
        .join(CARDS, CARDS.c.id == SIGNED.c.card_id)
        .join(LoyaltyProgram, LoyaltyProgram.id == CARDS.c.program_id)
        .where(SIGNED.c.card_id.in_(card_ids),
               or_(SIGNED.c.version < CARDS.c.version,
                   SIGNED.c.program_revision < LoyaltyProgram.updated_at,
                   SIGNED.c.download_token != CARDS.c.download_token,
                   SIGNED.c.issuer != passes.issuer))
    )
    session.execute(delete(SIGNED).where(SIGNED.c.id.in_(stale)))
    return len(cards)


#: Passes signed ahead and stored per statement: a few megabytes of them at a time.
_STORE_CHUNK = 100


@dataclass(frozen=True)
class _Prepared:
    """What :func:`sign_ahead` read once for a batch of cards: each program's locations
    and the cards that hold coupons."""

    shown: dict[int, tuple[ShownLocation, ...]]
    with_coupons: set[int]


def forget_signed_passes(session: Session, card_id: int) -> None:
    """Delete the card's stored passes (they hold the member's name and values)."""
    session.execute(delete(SIGNED).where(SIGNED.c.card_id == card_id))


# --- the pass web service (spec §3) --------------------------------------------------

DEVICES = Device.__table__
REGS = Registration.__table__
CARDS = LoyaltyCard.__table__
TAGS = CardUpdateTag.__table__

#: What one ``/v1/log`` post may store: Wallet reports a line or two per problem, and the
#: endpoint needs no authentication, so a post cannot fill the table.
MAX_LOG_MESSAGES = 10
MAX_LOG_LENGTH = 500
#: Device logs help with problems of the last weeks; the worker deletes older ones.
DEVICE_LOG_DAYS = 30


def parse_apple_pass_header(value: str | None) -> str | None:
    """The token of ``Authorization: ApplePass <token>``, or None (spec §3.0)."""
    if not value:
        return None
    scheme, _, token = value.partition(" ")
    if scheme != "ApplePass" or not token.strip():
        return None
    return token.strip()


def authenticated_card(session: Session, serial_number: str, token: str | None) -> LoyaltyCard:
    """The card whose serial is given, if ``token`` is *that* card's token.

    :raises ResourceNotFound: no such serial.
    :raises AuthenticationFailed: missing or wrong token (compared in constant time).
    """
    card = session.scalar(select(LoyaltyCard).where(LoyaltyCard.serial_number == serial_number))
    if card is None:
        raise ResourceNotFound("unknown serial number")
    _check_token(card, token)
    return card


def authenticated_pass(session: Session, passes: PassFactory, serial_number: str,
                       token: str | None) -> tuple[LoyaltyCard, bytes | None]:
    """:func:`authenticated_card` with its current version's stored pass, if signed yet
    (:meth:`PassFactory.current`: one query).

    :raises ResourceNotFound: no such serial.
    :raises AuthenticationFailed: missing or wrong token.
    """
    found = passes.current(session, LoyaltyCard.serial_number == serial_number)
    if found is None:
        raise ResourceNotFound("unknown serial number")
    _check_token(found[0], token)
    return found


def authenticated_download(session: Session, passes: PassFactory, serial_number: str,
                           token: str | None) -> CurrentPass:
    """:func:`authenticated_pass` for the download hot path (:meth:`PassFactory.find`).

    :raises ResourceNotFound: no such serial.
    :raises AuthenticationFailed: missing or wrong token.
    """
    found = passes.find(session, "serial_number", serial_number)
    if found is None:
        raise ResourceNotFound("unknown serial number")
    _check_token(found, token)
    return found


def _check_token(card: LoyaltyCard | CurrentPass, token: str | None) -> None:
    if token is None or not hmac.compare_digest(
        card.authentication_token.encode(), token.encode()
    ):
        raise AuthenticationFailed("wrong ApplePass token")


def register_device(
    session: Session, card: LoyaltyCard, device_library_identifier: str, push_token: str,
    now: dt.datetime,
) -> bool:
    """Store the device (always with the newest push token) and its registration for the
    card; True when the registration is new (201), False when it existed (200). Idempotent
    under concurrent repeats (spec §3.1). The card's first device records the card as
    installed in Apple Wallet."""
    # The card first, then the device: the order every locker of both keeps.
    wallet_events.lock_cards(session, [card.id])
    device_id = _upsert_device(session, device_library_identifier, push_token, now)
    exists = session.scalar(
        select(REGS.c.id).where(REGS.c.device_id == device_id, REGS.c.card_id == card.id)
    )
    if exists:
        return False
    stmt = dialect_insert(session, REGS).values(device_id=device_id, card_id=card.id,
                                                 created_at=now)
    created = session.execute(
        stmt.on_conflict_do_nothing(index_elements=["device_id", "card_id"]).returning(REGS.c.id)
    ).first()
    if created is not None and wallet_events.apple_registrations(session, card.id) == 1:
        wallet_events.record(session, merchant_id=card.merchant_id, card_id=card.id,
                             wallet=wallet_events.APPLE, event=wallet_events.INSTALLED,
                             cause="registered", at=now)
    return created is not None


def _upsert_device(session: Session, dli: str, push_token: str, now: dt.datetime) -> int:
    stmt = dialect_insert(session, DEVICES).values(
        device_library_identifier=dli, push_token=push_token, created_at=now, updated_at=now
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["device_library_identifier"],
        set_={"push_token": push_token, "updated_at": now},
    ).returning(DEVICES.c.id)
    device_id: int = session.execute(stmt).scalar_one()
    return device_id


def unregister_device(session: Session, card: LoyaltyCard, device_library_identifier: str,
                      now: dt.datetime) -> None:
    """Remove the registration; the device too once it has none left (spec §3.4).
    Unregistering what is not registered is fine (idempotent). The card's last device
    going records the card as removed from Apple Wallet."""
    device_id = session.scalar(
        select(DEVICES.c.id).where(DEVICES.c.device_library_identifier == device_library_identifier)
    )
    if device_id is None:
        return
    wallet_events.lock_cards(session, [card.id])
    removed = session.execute(
        delete(REGS).where(REGS.c.device_id == device_id, REGS.c.card_id == card.id)).rowcount
    if removed and not wallet_events.apple_registrations(session, card.id):
        wallet_events.record(session, merchant_id=card.merchant_id, card_id=card.id,
                             wallet=wallet_events.APPLE, event=wallet_events.REMOVED,
                             cause="unregistered", at=now)
    left = session.scalar(
        select(func.count()).select_from(REGS).where(REGS.c.device_id == device_id))
    if not left:
        session.execute(delete(DEVICES).where(DEVICES.c.id == device_id))


@dataclass(frozen=True)
class UpdatedSerials:
    serial_numbers: list[str]
    last_updated: str


def parse_tag(value: str | None) -> int | None:
    """The ``passesUpdatedSince`` tag, or None for "no tag" (absent, empty, or anything we
    did not issue, such as a legacy date), which means "all passes" (spec §3.7)."""
    if value is None or not value.isdigit() or len(value) > 18:
        return None
    return int(value)


def updated_serials(
    session: Session, device_library_identifier: str, since: int | None
) -> UpdatedSerials | None:
    """Serials of the device's passes changed after tag ``since`` (all without a tag), and the
    new tag; None when nothing matches (204).

    :raises ResourceNotFound: the device is not registered (404).
    """
    device_id = session.scalar(
        select(DEVICES.c.id).where(DEVICES.c.device_library_identifier == device_library_identifier)
    )
    if device_id is None:
        raise ResourceNotFound("unknown device")
    # A card's tag: its row in ``card_update_tags``, or what a release before that table
    # wrote on the card, whichever is later (0 for a card never sequenced).
    kept = func.coalesce(TAGS.c.update_seq, 0)
    tag = case((kept > CARDS.c.update_seq, kept), else_=CARDS.c.update_seq)
    query = (
        select(CARDS.c.serial_number, tag.label("update_seq"))
        .join(REGS, REGS.c.card_id == CARDS.c.id)
        .outerjoin(TAGS, TAGS.c.card_id == CARDS.c.id)
        .where(REGS.c.device_id == device_id)
    )
    if since is not None:
        query = query.where(tag > since)
    rows = session.execute(query.order_by(tag)).all()
    if not rows:
        return None
    return UpdatedSerials([r.serial_number for r in rows], str(max(r.update_seq for r in rows)))


def store_logs(
    session: Session, messages: Sequence[object], remote_addr: str | None, now: dt.datetime
) -> int:
    """Keep what Wallet reports (spec §3.5): free text, bounded in count and length, as
    single clean lines (``log_line``); empty messages are dropped."""
    lines = (log_line(m) for m in list(messages)[:MAX_LOG_MESSAGES])
    rows = [{"message": line, "remote_addr": remote_addr, "created_at": now}
            for line in lines if line]
    if rows:
        session.execute(insert(DeviceLog.__table__), rows)
    return len(rows)


def log_line(message: object) -> str:
    """``message`` as one printable line of at most ``MAX_LOG_LENGTH`` characters: line
    breaks and tabs become spaces; control, format (bidirectional overrides) and lone
    surrogate characters, which could forge or garble what an operator reads, or not be
    storable at all, are removed."""
    text = str(message)[:MAX_LOG_LENGTH * 2]
    kept = []
    for char in text:
        if char.isprintable():
            kept.append(char)
        elif char.isspace():
            kept.append(" ")
    return "".join(kept).strip()[:MAX_LOG_LENGTH]


def prune_device_logs(session: Session, now: dt.datetime,
                      keep: dt.timedelta = dt.timedelta(days=DEVICE_LOG_DAYS)) -> int:
    """Delete device logs older than ``keep``; how many were deleted."""
    result = session.execute(delete(DeviceLog).where(DeviceLog.created_at < now - keep))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
