"""The public links of a member's card."""

from __future__ import annotations

from ..config import Settings
from ..models import LoyaltyCard


def member_links(settings: Settings, card: LoyaltyCard) -> dict[str, str | None]:
    """``apple_pass_url``, ``google_save_url`` and ``card_url`` of a card (None while the
    feature behind a link is not configured)."""
    return {
        "apple_pass_url": f"{settings.public_url}/passes/{card.download_token}",
        "google_save_url": None,
        "card_url": None,
    }
