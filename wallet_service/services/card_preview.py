"""The card designer's preview: a sample member's pass and Google object built from a draft
of the program, by the same builders the real cards use.

The preview is the real thing (product brief "cockpit"): the Apple side is the ``pass.json``
and ``pass.strings`` of a sample member, made by :func:`wallet_service.apple.build_pass_json`
and decorated with the mechanics' back fields exactly as :class:`.apple.PassFactory` does for
every member; the Google side is the LoyaltyClass and LoyaltyObject the mapping of
:mod:`wallet_service.google` makes of the same draft. :func:`sample_pkpass` signs the sample
pass, so the merchant can add it to a phone. Nothing here writes to the database.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..apple import CardContent
from ..apple import SignerCredentials
from ..apple import assets
from ..apple import build_pass_json
from ..apple import build_pkpass
from ..apple import stamp_strip
from ..apple.content import localized_strings
from ..config import Settings
from ..errors import WalletError
from ..google import loyalty_class
from ..google import loyalty_object
from ..merge_patch import merge_patch
from ..models import GoogleObject
from ..models import LoyaltyCard
from ..models import LoyaltyProgram
from ..models import Member
from ..models import Merchant
from ..models import Registration
from ..rules import Totals
from ..rules import standing
from ..schemas import RULE_FIELDS
from ..schemas import ProgramCreate
from ..validation import raise_for
from .apple import back_fields
from .apple import card_content
from .apple import decorate
from .apple import design_for
from .google import GoogleWallet
from .google import card_view
from .google import program_view
from .locations import program_locations
from .programs import program_document
from .programs import program_images

#: The sample member's card number (Latin-1, as a barcode needs) and names per language.
SAMPLE_SERIAL = "SAMPLE-0001"
SAMPLE_NAMES = {"ru": "Анна Смирнова", "en": "Anna Smith"}
#: What the sample card holds, per kind: enough to show every front field.
SAMPLE_POINTS = 120
SAMPLE_STAMPS = 2
SAMPLE_CASHBACK_MINOR = 15_000
#: Google's issuer id in the preview when the deployment has none configured.
PREVIEW_ISSUER = "3388000000000000000"


@dataclass(frozen=True)
class SamplePass:
    """A sample member's pass as Wallet reads it: ``pass.json`` and ``pass.strings`` per
    language, and the Google object and class of the same card."""

    pass_json: dict[str, Any]
    strings: dict[str, dict[str, str]]
    google_class: dict[str, Any] | None
    google_object: dict[str, Any] | None
    #: The pass's images at @2x (``logo``, ``icon``, ``strip``): uploaded, drawn (a stamp
    #: card's strip shows its stamps) or the template's.
    images: dict[str, bytes]


@dataclass(frozen=True)
class Draft:
    """A program as the designer's form would leave it (not saved): a transient program
    object the builders read, and the validated document."""

    program: LoyaltyProgram
    document: ProgramCreate


def draft(program: LoyaltyProgram, patch: Mapping[str, Any]) -> Draft:
    """``program`` with ``patch`` (a JSON Merge Patch of its ``ProgramCreate`` view, as the
    API's PATCH takes it) applied and validated, not saved.

    :raises ValidationFailed: the merged program breaks a rule; ``field`` names it.
    """
    merged = merge_patch(program_document(program).model_dump(mode="json"), dict(patch))
    try:
        data = ProgramCreate.model_validate(merged)
    except ValidationError as exc:
        raise_for(exc)
    dumped = data.model_dump(mode="json")
    transient = LoyaltyProgram(
        id=program.id, merchant_id=program.merchant_id, join_token=program.join_token,
        name=data.name, kind=data.kind, currency=data.currency,
        languages=list(data.languages), template=data.template, design=dumped["design"],
        enrollment=dumped["enrollment"], rules={name: dumped[name] for name in RULE_FIELDS},
        survey=program.survey, created_at=program.created_at, updated_at=program.updated_at)
    return Draft(transient, data)


def sample_card(program: LoyaltyProgram) -> tuple[LoyaltyCard, Member]:
    """A sample member's card of ``program`` (transient, never saved): some points, two
    stamps, some cashback, the first tier."""
    tiers = program.rules.get("tiers") or []
    lang = (program.languages or ["en"])[0]
    balance = {"points": SAMPLE_POINTS, "cashback": SAMPLE_CASHBACK_MINOR}.get(program.kind, 0)
    card = LoyaltyCard(
        program_id=program.id, serial_number=SAMPLE_SERIAL,
        authentication_token="sample-authentication-token", download_token="sample",
        status="active", balance=balance,
        stamps=SAMPLE_STAMPS if program.kind == "stamps" else 0, stamp_debt=0,
        tier=tiers[0]["name"] if tiers else None, lifetime_points=balance,
        lifetime_spend_minor=0, visits=SAMPLE_STAMPS, version=1, message_plain=None,
        message_i18n=None)
    member = Member(program_id=program.id, name=SAMPLE_NAMES.get(lang, SAMPLE_NAMES["en"]))
    return card, member


def _totals(card: LoyaltyCard) -> Totals:
    return Totals(card.lifetime_points, card.lifetime_spend_minor, card.visits)


def _parts(session: Session, settings: Settings, program: LoyaltyProgram,
           card_page: str | None) -> tuple[Any, Any, CardContent, list[dict[str, Any]],
                                           dict[str, dict[str, str]], LoyaltyCard, Member]:
    merchant = session.get_one(Merchant, program.merchant_id)
    images = program_images(session, program.id)
    card, member = sample_card(program)
    if program.kind == "stamps":  # as ``PassFactory._design``: the strip shows the stamps
        images = {n: d for n, d in images.items() if not n.startswith("strip")}
        images.update(stamp_strip(card.stamps, int(program.rules["stamps"]["goal"]),
                                  program.design.get("label_color")))
    design = design_for(program, merchant.name, images, program_locations(session, program))
    template = assets.load_template(program.template)
    totals = _totals(card)
    shown = standing(program.kind, program.rules, program.currency, card, totals)
    content = card_content(settings, card, member, program, card_page, shown)
    extra, strings = back_fields(program, card, [], totals=totals)
    return template, design, content, extra, strings, card, member


def sample_pass(session: Session, settings: Settings, google: GoogleWallet,
                program: LoyaltyProgram, card_page: str | None) -> SamplePass:
    """The sample member's ``pass.json`` with its strings, and its Google class and object,
    for ``program`` (saved, or a :func:`draft`). ``card_page``: the link the back shows."""
    template, design, content, extra, extra_strings, card, member = _parts(
        session, settings, program, card_page)
    pass_json = decorate(build_pass_json(template, design, content), program, card, extra)
    strings = localized_strings(template, design)
    # As the pass package does (``build_pkpass``): the card's own strings in every file.
    first = next((extra_strings[lang] for lang in strings if extra_strings.get(lang)), {})
    for lang, texts in strings.items():
        texts.update(first)
        texts.update(extra_strings.get(lang, {}))
    g_class, g_object = _google(session, google, program, card, member)
    shown_images = {}
    for kind in ("logo", "icon", "strip"):
        name = f"{kind}@2x.png"
        data = design.images.get(name)
        if data is None and name in template.images:
            data = template.images[name].data
        if data is not None:
            shown_images[kind] = data
    return SamplePass(pass_json, strings, g_class, g_object, shown_images)


def _google(session: Session, google: GoogleWallet, program: LoyaltyProgram,
            card: LoyaltyCard, member: Member
            ) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    if google.public_url.startswith("http://"):
        # A development address: Google takes only HTTPS links. The preview shows no link,
        # so it reads the address as HTTPS rather than show no Google card at all.
        google = dataclasses.replace(google, public_url="https://" + google.public_url[7:])
    view = program_view(session, google, program)
    issuer = google.issuer_id or PREVIEW_ISSUER
    shown = card_view(google, card, member, (), program=program, totals=_totals(card))
    try:
        return (loyalty_class(issuer, view, prefix=google.id_prefix),
                loyalty_object(issuer, view, shown, prefix=google.id_prefix))
    except WalletError:
        return None, None  # e.g. a development URL that is not HTTPS: no Google preview


def sample_pkpass(session: Session, settings: Settings, signer: SignerCredentials,
                  program: LoyaltyProgram, card_page: str | None) -> bytes:
    """The sample member's signed pass, built as every member's is."""
    template, design, content, extra, extra_strings, card, _member = _parts(
        session, settings, program, card_page)
    return build_pkpass(template, design, content, signer,
                        customize=lambda pj: decorate(pj, program, card, extra),
                        strings=extra_strings)


@dataclass(frozen=True)
class DesignImpact:
    """What saving a design does: ``cards`` (active) get a new version; ``apple`` of them are
    on iPhones and ``google`` in Google Wallet; a design change notifies no phone."""

    cards: int
    apple: int
    google: int
    notifies: bool = False


def design_impact(session: Session, program_id: int) -> DesignImpact:
    """How many cards a design change of the program updates, and on which phones."""
    cards = LoyaltyCard.__table__
    active = select(cards.c.id).where(cards.c.program_id == program_id,
                                      cards.c.status == "active")
    count = session.scalar(select(func.count()).select_from(active.subquery()))
    apple = session.scalar(select(func.count(func.distinct(Registration.card_id)))
                           .where(Registration.card_id.in_(active)))
    google = session.scalar(select(func.count()).select_from(GoogleObject).where(
        GoogleObject.card_id.in_(active), GoogleObject.inserted.is_(True),
        GoogleObject.deleted_at.is_(None)))
    return DesignImpact(int(count or 0), int(apple or 0), int(google or 0))
