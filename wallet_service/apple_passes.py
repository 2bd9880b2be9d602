"""Apple passes for cards: credentials loaded once per process, models mapped onto the pure
builder in :mod:`wallet_service.passes`, signed passes cached by card version."""

from __future__ import annotations

import io
import logging
import threading
from collections import OrderedDict
from decimal import Decimal
from functools import lru_cache
from typing import Any

from PIL import Image
from PIL import ImageDraw
from sqlalchemy.orm import Session

from . import apple_assets
from .config import Settings
from .db import utcnow
from .models import LoyaltyCard
from .models import LoyaltyProgram
from .models import Member
from .models import Merchant
from .passes import CardContent
from .passes import Design
from .passes import MerchantContact
from .passes import SignerCredentials
from .passes import StoreLocation
from .passes import build_pkpass
from .services.programs import program_images
from .services.rewards import member_coupons
from .services.tiers import cashback_percent
from .services.tiers import discount_percent
from .services.tiers import minor_units
from .services.tiers import next_tier

log = logging.getLogger(__name__)

WEB_SERVICE_PATH = "/apple"


def load_signer(settings: Settings) -> SignerCredentials:
    """The configured certificate set, or the development set in ``<instance>/certs``
    (generated on first use) when no real certificate is configured.

    :raises ConfigurationError: the files cannot be read or do not belong together.
    """
    if settings.apple_dev_certs:
        paths = apple_assets.generate_dev_certs(
            settings.instance_path / "certs", settings.apple_pass_type_id,
            settings.apple_team_id,
        )
        return apple_assets.load_signer(
            wwdr_cert=paths.wwdr_certificate, cert=paths.certificate, key=paths.private_key
        )
    return apple_assets.load_signer(
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
        web_service_url=settings.public_url + WEB_SERVICE_PATH,
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
                 coupons: list[dict[str, Any]]) -> list[dict[str, Any]]:
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
        value = c["title"]
        if c["valid_until"] is not None:
            value += " (" + texts["until"].format(date=c["valid_until"].date().isoformat()) + ")"
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
    upcoming = next_tier(rules, card.tier)
    if upcoming is not None:
        fields.append({"key": "tier_progress", "label": texts["tier_progress"],
                       "value": _to_tier(program, card, upcoming, texts)})
    return fields


def _to_tier(program: LoyaltyProgram, card: LoyaltyCard, upcoming: dict[str, Any],
             texts: dict[str, Any]) -> str:
    basis = program.rules.get("tier_basis", "lifetime_points")
    threshold = Decimal(str(upcoming["threshold"]))
    if basis == "lifetime_spend":
        have = Decimal(card.lifetime_spend_minor) / minor_units(program.currency)
        left = f"{max(threshold - have, Decimal(0)).normalize():f} {program.currency}"
        unit = ""
    else:
        have = Decimal(card.visits if basis == "visits" else card.lifetime_points)
        left, unit = f"{max(threshold - have, Decimal(0)):f}", texts["units"][basis]
    return texts["to_tier"].format(left=left, unit=unit, tier=upcoming["name"]).strip()


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


@lru_cache(maxsize=512)
def stamp_strip(count: int, goal: int, colour: str | None) -> dict[str, bytes]:
    """The strip images of a stamp card with ``count`` of ``goal`` stamps, at @1x–@3x
    (375×123 pt, §1.4). Cached per count, so every card at 3/6 shares one set."""
    fill = colour or "#f0c478"
    files = {}
    for scale, suffix in ((1, ""), (2, "@2x"), (3, "@3x")):
        width, height = 375 * scale, 123 * scale
        image = Image.new("RGBA", (width, height), (0, 0, 0, 0))
        draw = ImageDraw.Draw(image)
        per_row = min(goal, 10)
        rows = (goal + per_row - 1) // per_row
        size = min(width // (per_row + 1), height // (rows + 1))
        gap_x = (width - per_row * size) / (per_row + 1)
        gap_y = (height - rows * size) / (rows + 1)
        for i in range(goal):
            row, col = divmod(i, per_row)
            x = gap_x + col * (size + gap_x)
            y = gap_y + row * (size + gap_y)
            box = (x, y, x + size, y + size)
            if i < count:
                draw.ellipse(box, fill=fill)
            else:
                draw.ellipse(box, outline=fill, width=max(2, scale * 2))
        out = io.BytesIO()
        image.save(out, format="PNG", optimize=True)
        files[f"strip{suffix}.png"] = out.getvalue()
    return files


class ApplePasses:
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
                    self._signer = load_signer(self.settings)
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
        template = apple_assets.load_template(program.template)
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
