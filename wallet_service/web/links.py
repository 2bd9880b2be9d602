"""The public links of a member's card."""

from __future__ import annotations

from .. import urls
from ..config import Settings
from ..models import LoyaltyCard
from . import wallet


def apple_pass_url(settings: Settings, card: LoyaltyCard) -> str:
    return urls.pass_url(settings.public_url, card.download_token)


def card_url(settings: Settings, card: LoyaltyCard) -> str:
    """The member's card page (balance, QR code, wallet buttons); as private as the pass link."""
    return urls.card_url(settings.public_url, card.download_token)


def google_save_url(settings: Settings, card: LoyaltyCard) -> str | None:
    """The "Add to Google Wallet" link, or None while Google Wallet is not configured: the
    service's own short link, which talks to Google only when it is tapped (so reading a
    member never does)."""
    if not wallet().google.enabled:
        return None
    return urls.google_save_link(settings.public_url, card.download_token)


def member_links(settings: Settings, card: LoyaltyCard) -> dict[str, str | None]:
    """``apple_pass_url``, ``google_save_url`` and ``card_url`` of a card."""
    return {
        "apple_pass_url": apple_pass_url(settings, card),
        "google_save_url": google_save_url(settings, card),
        "card_url": card_url(settings, card),
    }
