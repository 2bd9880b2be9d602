"""E-mail from the console (invitations, resets, card links) in the recipient's language,
when ``WALLET_SMTP_HOST`` is set."""

from __future__ import annotations

from ...mail import make_mailer
from .. import wallet
from . import words


def enabled() -> bool:
    """Whether outgoing mail is configured."""
    return bool(wallet().settings.smtp_host)


def send(to: str, subject: str, body: str, *, lang: str, **values: object) -> bool:
    """Send the console words ``subject`` and ``body`` in ``lang`` with ``values``; False
    when mail is off or the server refused."""
    mailer = make_mailer(wallet().settings)
    if mailer is None:
        return False
    return mailer.send(to, words.t(lang, subject, **values), words.t(lang, body, **values))
