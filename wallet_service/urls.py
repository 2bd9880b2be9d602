"""The public addresses the service hands out, built from ``WALLET_PUBLIC_URL``.

Passes, Google objects, API answers, posters and the demo all take their links from here,
and the blueprints mount their routes under the same prefixes, so a path is written once.
"""

from __future__ import annotations

from urllib.parse import urlencode

#: Apple's pass web service: the ``webServiceURL`` of every pass (apple-wallet spec §2.2);
#: the device appends ``/v1/...`` itself.
APPLE_WEB_SERVICE = "/apple"
#: Google Wallet's save and delete callbacks (google-wallet spec §4).
GOOGLE_CALLBACKS = "/google/callbacks"


def apple_web_service_url(public_url: str) -> str:
    return public_url + APPLE_WEB_SERVICE


def google_callback_url(public_url: str) -> str:
    return public_url + GOOGLE_CALLBACKS


def pass_url(public_url: str, download_token: str) -> str:
    """The member's signed ``.pkpass`` ("Add to Apple Wallet")."""
    return f"{public_url}/passes/{download_token}"


def card_url(public_url: str, download_token: str) -> str:
    """The member's card page (balance, QR code, wallet buttons); as private as the pass."""
    return f"{public_url}/c/{download_token}"


def survey_url(public_url: str, download_token: str) -> str:
    """The member's NPS survey page ("How likely are you to recommend us?"), linked from
    the back of the card and the card page; as private as the card page."""
    return card_url(public_url, download_token) + "/survey"


def google_save_link(public_url: str, download_token: str) -> str:
    """The member's "Add to Google Wallet" link: the service's own, which makes sure the
    card's Google object exists when it is tapped and then sends the phone on to Google's
    save URL (google-wallet spec §3.3)."""
    return card_url(public_url, download_token) + "/google"


def join_url(public_url: str, join_token: str) -> str:
    """The program's public sign-up page (what the poster's QR code opens)."""
    return f"{public_url}/join/{join_token}"


def referral_url(public_url: str, join_token: str, referral_code: str) -> str:
    """The sign-up page with a member's referral code filled in: what they share."""
    return f"{join_url(public_url, join_token)}?{urlencode({'ref': referral_code})}"


def join_logo_url(public_url: str, join_token: str) -> str:
    return join_url(public_url, join_token) + "/logo.png"


def google_logo_url(public_url: str, join_token: str, version: str) -> str:
    """The program's square logo for Google Wallet (google-wallet spec §2.4). Google keeps
    the images it fetched, so the URL names the ``version``: a new logo, a new URL."""
    return f"{join_url(public_url, join_token)}/google-logo.png?{urlencode({'v': version})}"


def poster_url(public_url: str, join_token: str) -> str:
    return join_url(public_url, join_token) + "/poster"
