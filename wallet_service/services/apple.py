"""Apple Wallet for cards: the signed pass of each card, and the server side of Apple's pass
web service (apple-wallet spec §3): device registrations, the list of updated passes and
device logs.

The pure pass builder and the certificate and template files are in
:mod:`wallet_service.apple`; this module maps the database onto them. Functions take a
session and never commit; the web view or the job that called them does.
"""

from __future__ import annotations

import datetime as dt
import hmac
import logging
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete
from sqlalchemy import func
from sqlalchemy import insert
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..apple import CardContent
from ..apple import Design
from ..apple import MerchantContact
from ..apple import SignerCredentials
from ..apple import StoreLocation
from ..apple import assets
from ..apple import build_pkpass
from ..apple import stamp_strip
from ..config import Settings
from ..db import utcnow
from ..errors import AuthenticationFailed
from ..errors import ResourceNotFound
from ..models import Device
from ..models import DeviceLog
from ..models import LoyaltyCard
from ..models import LoyaltyProgram
from ..models import Member
from ..models import Merchant
from ..models import Registration
from ..rules import TierProgress
from ..rules import Totals
from ..rules import cashback_percent
from ..rules import discount_percent
from ..rules import tier_progress
from ..urls import apple_web_service_url
from .programs import program_images
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
                 program: LoyaltyProgram, card_url: str | None) -> CardContent:
    rules = program.rules
    stamps = goal = None
    if program.kind == "stamps":
        stamps, goal = card.stamps, int(rules["stamps"]["goal"])
    share = None
    if program.kind == "cashback":
        share = cashback_percent(rules, card.tier)
    return CardContent(
        stamps=stamps,
        stamps_goal=goal,
        cashback_percent=share,
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


def design_for(program: LoyaltyProgram, merchant_name: str, images: dict[str, bytes]) -> Design:
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
            StoreLocation(latitude=loc["latitude"], longitude=loc["longitude"],
                          relevant_text=loc.get("relevant_text"))
            for loc in d.get("locations") or ()
        ),
        barcode_format=d.get("barcode_format") or "qr",
        languages=tuple(program.languages),
        currency_code=program.currency,
        points_label=d.get("points_label"),
    )


# Texts of the fields this module adds, in the program's first language. Labels that are
# not pass.strings keys are shown as they are (§1.5).
_TEXTS = {
    "en": {
        "message": "News", "coupon": "Your coupon", "progress": "Next reward",
        "stamps_left": "{left} more to {reward}", "reward_ready": "{count} × {reward} ready",
        "tier_progress": "Next level", "to_tier": "{left} {unit} to {tier}",
        "discount": "Your discount", "until": "until {date}",
        "units": {"lifetime_points": "points", "lifetime_spend": "", "visits": "visits"},
    },
    "ru": {
        "message": "Новости", "coupon": "Ваш купон", "progress": "До подарка",
        "stamps_left": "Ещё {left} — и {reward}",
        "reward_ready": "Готово к получению: {count} × {reward}",
        "tier_progress": "Следующий уровень", "to_tier": "{tier}: осталось {left} {unit}",
        "discount": "Ваша скидка", "until": "до {date}",
        "units": {"lifetime_points": "баллов", "lifetime_spend": "", "visits": "визитов"},
    },
}


def extra_fields(program: LoyaltyProgram, card: LoyaltyCard,
                 coupons: list[MemberCoupon]) -> list[dict[str, Any]]:
    """Back fields for what the program's mechanics add: the message, the active coupon,
    stamps to the next reward, the discount and the way to the next tier (§2.5). The
    message and the coupon carry a ``changeMessage``, so the phone announces them (§2.6)."""
    texts = _TEXTS.get(program.languages[0] if program.languages else "en", _TEXTS["en"])
    rules = program.rules
    fields: list[dict[str, Any]] = []
    if card.message:
        fields.append({"key": "message", "label": texts["message"], "value": card.message,
                       "changeMessage": "%@"})
    if coupons:
        c = coupons[0]
        value = c.title
        if c.valid_until is not None:
            value += " (" + texts["until"].format(date=c.valid_until.date().isoformat()) + ")"
        fields.append({"key": "coupon", "label": texts["coupon"], "value": value,
                       "changeMessage": "%@"})
    if program.kind == "stamps":
        stamp_rule = rules["stamps"]
        value = texts["stamps_left"].format(left=int(stamp_rule["goal"]) - card.stamps,
                                            reward=stamp_rule["reward"])
        if card.balance:
            value += "\n" + texts["reward_ready"].format(count=card.balance,
                                                          reward=stamp_rule["reward"])
        fields.append({"key": "progress", "label": texts["progress"], "value": value})
    share = discount_percent(rules, card.tier)
    if share is not None:
        fields.append({"key": "discount", "label": texts["discount"],
                       "value": f"{share.normalize():f} %"})
    progress = tier_progress(rules, program.currency, card.tier,
                             Totals(card.lifetime_points, card.lifetime_spend_minor, card.visits))
    if progress is not None and progress.next_tier is not None:
        fields.append({"key": "tier_progress", "label": texts["tier_progress"],
                       "value": _to_tier(program, progress, texts)})
    return fields


def _to_tier(program: LoyaltyProgram, progress: TierProgress, texts: dict[str, Any]) -> str:
    if progress.basis == "lifetime_spend":
        left = f"{progress.left.normalize():f} {program.currency}"
        unit = ""
    else:
        left, unit = f"{progress.left:f}", texts["units"][progress.basis]
    return texts["to_tier"].format(left=left, unit=unit, tier=progress.next_tier).strip()


def decorate(pass_json: dict[str, Any], program: LoyaltyProgram, card: LoyaltyCard,
             extra: list[dict[str, Any]]) -> dict[str, Any]:
    """Add the mechanics' back fields, and announce a new tier through the tier field's
    ``changeMessage`` (``tier.change``, every template's strings have it); a discount program
    shows the discount next to the tier."""
    store = pass_json["storeCard"]
    share = discount_percent(program.rules, card.tier)
    for area in ("headerFields", "primaryFields", "secondaryFields", "auxiliaryFields"):
        for f in store.get(area, ()):
            if f["key"] == "tier":
                f.setdefault("changeMessage", "tier.change")
                if program.kind == "discount" and share is not None:
                    f["value"] = f"{card.tier} · {share.normalize():f} %"
    store["backFields"] = extra + store.get("backFields", [])
    return pass_json


class PassFactory:
    """Builds members' passes. Signed passes are kept per (serial, card version, program
    revision) within a byte budget, so a storm of devices fetching an unchanged pass after a
    push costs one signature per process."""

    def __init__(self, settings: Settings, *, cache_bytes: int = 64 * 1024 * 1024) -> None:
        self.settings = settings
        self._signer: SignerCredentials | None = None
        self._cache: OrderedDict[tuple[str, int, str], bytes] = OrderedDict()
        self._cache_bytes = cache_bytes
        self._cached = 0
        self._lock = threading.Lock()
        self.signed = 0  # passes signed by this process (observability and tests)
        self._designs: OrderedDict[tuple[int, str, str], Design] = OrderedDict()

    def _design(self, session: Session, program: LoyaltyProgram, merchant_name: str,
                stamps: int | None = None) -> Design:
        """One ``Design`` object per program revision (and, for stamp cards, per stamp count:
        the strip shows the stamps): the builder caches the files a design's passes share by
        that object, so rebuilding it per pass would redo that work."""
        key = (program.id, f"{program.updated_at.isoformat()}/{stamps}", merchant_name)
        with self._lock:
            design = self._designs.get(key)
        if design is None:
            images = program_images(session, program.id)
            if stamps is not None:
                images = {n: d for n, d in images.items() if not n.startswith("strip")}
                images.update(stamp_strip(stamps, int(program.rules["stamps"]["goal"]),
                                          program.design.get("label_color")))
            design = design_for(program, merchant_name, images)
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

    def pass_bytes(self, session: Session, card: LoyaltyCard, card_url: str | None = None) -> bytes:
        program = session.get_one(LoyaltyProgram, card.program_id)
        key = (card.serial_number, card.version, program.updated_at.isoformat())
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return hit
        member = session.get_one(Member, card.member_id)
        merchant = session.get_one(Merchant, program.merchant_id)
        stamps = card.stamps if program.kind == "stamps" else None
        design = self._design(session, program, merchant.name, stamps)
        template = assets.load_template(program.template)
        content = card_content(self.settings, card, member, program, card_url)
        extra = extra_fields(program, card, member_coupons(session, card.id, active_at=utcnow()))
        data = build_pkpass(template, design, content, self.signer,
                            customize=lambda pj: decorate(pj, program, card, extra))
        with self._lock:
            self.signed += 1
            self._cache[key] = data
            self._cached += len(data)
            while self._cached > self._cache_bytes and self._cache:
                _, old = self._cache.popitem(last=False)
                self._cached -= len(old)
        return data


# --- the pass web service (spec §3) --------------------------------------------------

DEVICES = Device.__table__
REGS = Registration.__table__
CARDS = LoyaltyCard.__table__

MAX_LOG_MESSAGES = 100
MAX_LOG_LENGTH = 2000


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
    if token is None or not hmac.compare_digest(
        card.authentication_token.encode(), token.encode()
    ):
        raise AuthenticationFailed("wrong ApplePass token")
    return card


def register_device(
    session: Session, card: LoyaltyCard, device_library_identifier: str, push_token: str,
    now: dt.datetime,
) -> bool:
    """Store the device (always with the newest push token) and its registration for the
    card; True when the registration is new (201), False when it existed (200). Idempotent
    under concurrent repeats (spec §3.1)."""
    device_id = _upsert_device(session, device_library_identifier, push_token, now)
    exists = session.scalar(
        select(REGS.c.id).where(REGS.c.device_id == device_id, REGS.c.card_id == card.id)
    )
    if exists:
        return False
    stmt = _dialect_insert(session, REGS).values(device_id=device_id, card_id=card.id,
                                                 created_at=now)
    created = session.execute(
        stmt.on_conflict_do_nothing(index_elements=["device_id", "card_id"]).returning(REGS.c.id)
    ).first()
    return created is not None


def _upsert_device(session: Session, dli: str, push_token: str, now: dt.datetime) -> int:
    stmt = _dialect_insert(session, DEVICES).values(
        device_library_identifier=dli, push_token=push_token, created_at=now, updated_at=now
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["device_library_identifier"],
        set_={"push_token": push_token, "updated_at": now},
    ).returning(DEVICES.c.id)
    device_id: int = session.execute(stmt).scalar_one()
    return device_id


def _dialect_insert(session: Session, table: object):  # type: ignore[no-untyped-def]
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table)  # type: ignore[arg-type]
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table)  # type: ignore[arg-type]


def unregister_device(session: Session, card: LoyaltyCard, device_library_identifier: str) -> None:
    """Remove the registration; the device too once it has none left (spec §3.4).
    Unregistering what is not registered is fine (idempotent)."""
    device_id = session.scalar(
        select(DEVICES.c.id).where(DEVICES.c.device_library_identifier == device_library_identifier)
    )
    if device_id is None:
        return
    session.execute(delete(REGS).where(REGS.c.device_id == device_id, REGS.c.card_id == card.id))
    left = session.scalar(select(func.count()).select_from(REGS).where(REGS.c.device_id == device_id))
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
    query = (
        select(CARDS.c.serial_number, CARDS.c.update_seq)
        .join(REGS, REGS.c.card_id == CARDS.c.id)
        .where(REGS.c.device_id == device_id)
    )
    if since is not None:
        query = query.where(CARDS.c.update_seq > since)
    rows = session.execute(query.order_by(CARDS.c.update_seq)).all()
    if not rows:
        return None
    return UpdatedSerials([r.serial_number for r in rows], str(max(r.update_seq for r in rows)))


def store_logs(
    session: Session, messages: Sequence[object], remote_addr: str | None, now: dt.datetime
) -> int:
    """Keep what Wallet reports (spec §3.5): free text, bounded in count and length."""
    rows = [
        {"message": str(m)[:MAX_LOG_LENGTH], "remote_addr": remote_addr, "created_at": now}
        for m in list(messages)[:MAX_LOG_MESSAGES]
    ]
    if rows:
        session.execute(insert(DeviceLog.__table__), rows)
    return len(rows)
