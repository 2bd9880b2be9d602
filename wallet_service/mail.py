"""Outgoing e-mail, optional: console invitations, password resets and members' card links.

Configured with ``WALLET_SMTP_*``; without ``WALLET_SMTP_HOST`` nothing is sent and the
console shows links to hand over instead. A failure to send is a value (``False``), logged
without the message's content, never an exception in a request.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from email.message import EmailMessage

from .config import Settings

log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 10


class SmtpMailer:
    """Sends plain-text messages through one SMTP server (STARTTLS, implicit TLS, or plain
    for a local relay)."""

    def __init__(self, *, host: str, port: int, security: str, sender: str,
                 user: str | None = None, password: str | None = None,
                 timeout: float = TIMEOUT_SECONDS) -> None:
        self.host, self.port, self.security = host, port, security
        self.sender, self.user, self.password = sender, user, password
        self.timeout = timeout

    def send(self, to: str, subject: str, body: str) -> bool:
        """Send one message; False (logged) when the server refuses or cannot be reached."""
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = to
        message["Subject"] = subject
        message.set_content(body)
        try:
            if self.security == "tls":
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                    self.host, self.port, timeout=self.timeout,
                    context=ssl.create_default_context())
            else:
                smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            with smtp:
                if self.security == "starttls":
                    smtp.starttls(context=ssl.create_default_context())
                if self.user:
                    smtp.login(self.user, self.password or "")
                smtp.send_message(message)
        except (OSError, smtplib.SMTPException) as exc:
            log.warning("e-mail not sent via %s:%s: %s", self.host, self.port,
                        type(exc).__name__)
            return False
        return True


def make_mailer(settings: Settings) -> SmtpMailer | None:
    """The mailer the settings describe, or None when outgoing mail is off."""
    if not settings.smtp_host:
        return None
    sender = settings.smtp_from or settings.smtp_user or f"wallet-service@{settings.smtp_host}"
    return SmtpMailer(host=settings.smtp_host, port=settings.smtp_port,
                      security=settings.smtp_security, sender=sender,
                      user=settings.smtp_user, password=settings.smtp_password)
