"""Apple passes for cards: credentials loaded once per process, models mapped onto the pure
builder in :mod:`wallet_service.passes`, signed passes cached by card version."""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from typing import Any

from sqlalchemy.orm import Session

from . import apple_assets
from .config import Settings
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
    return CardContent(
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

    def _design(self, session: Session, program: LoyaltyProgram, merchant_name: str) -> Design:
        """One ``Design`` object per program revision: the builder caches the files a design's
        passes share by that object, so rebuilding it per pass would redo that work."""
        key = (program.id, program.updated_at.isoformat(), merchant_name)
        with self._lock:
            design = self._designs.get(key)
        if design is None:
            design = design_for(program, merchant_name, program_images(session, program.id))
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
        design = self._design(session, program, merchant.name)
        data = build_pkpass(
            apple_assets.load_template(program.template), design,
            card_content(self.settings, card, member, program, card_url), self.signer,
        )
        with self._lock:
            self.signed += 1
            self._cache[key] = data
            self._cached += len(data)
            while self._cached > self._cache_bytes and self._cache:
                _, old = self._cache.popitem(last=False)
                self._cached -= len(old)
        return data
