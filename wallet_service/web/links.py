"""The public links of a member's card."""

from __future__ import annotations

from typing import Any

from flask import current_app
from sqlalchemy.orm import Session

from ..config import Settings
from ..models import LoyaltyCard


def apple_pass_url(settings: Settings, card: LoyaltyCard) -> str:
    return f"{settings.public_url}/passes/{card.download_token}"


def card_url(settings: Settings, card: LoyaltyCard) -> str:
    """The member's card page (balance, QR code, wallet buttons); as private as the pass link."""
    return f"{settings.public_url}/c/{card.download_token}"


def google_save_url(session: Session, card: LoyaltyCard) -> str | None:
    """The "Add to Google Wallet" link, or None while Google Wallet is not configured."""
    google: Any = current_app.extensions.get("wallet_google")
    if google is None:
        return None
    url: str = google.save_url(session, card)
    return url


def member_links(settings: Settings, card: LoyaltyCard,
                 session: Session | None = None) -> dict[str, str | None]:
    """``apple_pass_url``, ``google_save_url`` and ``card_url`` of a card."""
    return {
        "apple_pass_url": apple_pass_url(settings, card),
        "google_save_url": google_save_url(session, card) if session is not None else None,
        "card_url": card_url(settings, card),
    }
