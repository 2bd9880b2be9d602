"""The data model. Plain SQLAlchemy 2.0 models; nothing here knows about Flask.

Money is stored as integer minor units (kopecks, cents) so both databases keep it exact.
Program-kind specifics (earning rule, tiers; later stamps, cashback) live in ``rules``, a JSON
document validated by the schema of the program's ``kind``, so a new kind needs no new table.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON
from sqlalchemy import BigInteger
from sqlalchemy import Boolean
from sqlalchemy import Date
from sqlalchemy import Float
from sqlalchemy import ForeignKey
from sqlalchemy import Index
from sqlalchemy import Integer
from sqlalchemy import LargeBinary
from sqlalchemy import String
from sqlalchemy import Text
from sqlalchemy import UniqueConstraint
from sqlalchemy import false
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from sqlalchemy.orm import relationship

from .db import Base
from .db import BigId
from .db import UTCDateTime
from .db import bigint_pk
from .db import created_at
from .db import utcnow


def localized_text(plain: str, texts: str) -> hybrid_property[Any]:
    """A merchant's text customers read: one text (``str``) or one per language (``{"ru":
    …, "en": …}``). Column ``plain`` always holds a text (the first language's when there
    are several), for records that need one and for queries; ``texts`` holds the texts per
    language, or null for one text. Setting the property fills both; texts per language
    that no longer hold the plain column's text (a writer that knows only that column
    changed it) are not shown."""

    def get(self: Any) -> Any:
        per_language, text = getattr(self, texts), getattr(self, plain)
        if per_language and text in per_language.values():
            return per_language
        return text

    def set_(self: Any, value: Any) -> None:
        if isinstance(value, dict):
            setattr(self, plain, next(iter(value.values()), None))
            setattr(self, texts, dict(value))
        else:
            setattr(self, plain, value)
            setattr(self, texts, None)

    def expression(cls: Any) -> Any:
        return getattr(cls, plain)

    get.__name__ = plain.removesuffix("_plain")  # what a query selecting it calls it
    return hybrid_property(get, set_, expr=expression)


class Merchant(Base):
    __tablename__ = "merchants"

    id: Mapped[bigint_pk]
    name: Mapped[str] = mapped_column(String(200))
    # IANA name. Birthdays, expiry dates, win-back windows and the daily job count in the
    # merchant's local date (``local_time``), never the server's.
    time_zone: Mapped[str] = mapped_column(String(64))
    # The last local day the worker ran the daily job for: claimed with a conditional
    # update, so several workers, or a restart, run each merchant's day once.
    daily_done_on: Mapped[dt.date | None] = mapped_column(Date)
    created_at: Mapped[created_at]


class Location(Base):
    """A merchant's store: where the cards become relevant (the Lock Screen, Google's nearby
    notices), and what tills and reports refer to by id. Deleting one keeps the row
    (``deleted_at``), so an id always names the same store."""

    __tablename__ = "locations"

    id: Mapped[bigint_pk]
    merchant_id: Mapped[int] = mapped_column(BigId, ForeignKey("merchants.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    address: Mapped[str] = mapped_column(String(500))
    latitude: Mapped[float] = mapped_column(Float)
    longitude: Mapped[float] = mapped_column(Float)
    # Null: the merchant's time zone.
    time_zone: Mapped[str | None] = mapped_column(String(64))
    # What the Lock Screen says near the store (null: the card template's own words).
    relevant_text: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[created_at]
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    deleted_at: Mapped[dt.datetime | None]


class ApiKey(Base):
    """A merchant's API key. Only a SHA-256 hash of the key is stored; it is shown once."""

    __tablename__ = "api_keys"

    id: Mapped[bigint_pk]
    merchant_id: Mapped[int] = mapped_column(BigId, ForeignKey("merchants.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # What the key may do (permissions.Scope). The server default is the scope every key
    # had before scopes existed, for the rows and the release that came before them.
    scope: Mapped[str] = mapped_column(String(20), server_default="admin")
    created_at: Mapped[created_at]
    revoked_at: Mapped[dt.datetime | None]


class LoyaltyProgram(Base):
    __tablename__ = "loyalty_programs"

    id: Mapped[bigint_pk]
    merchant_id: Mapped[int] = mapped_column(BigId, ForeignKey("merchants.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))
    currency: Mapped[str] = mapped_column(String(3))
    languages: Mapped[list[str]] = mapped_column(JSON)
    template: Mapped[str] = mapped_column(String(40))
    design: Mapped[dict[str, Any]] = mapped_column(JSON)
    rules: Mapped[dict[str, Any]] = mapped_column(JSON)
    # The public sign-up page: consent text per language and the merchant's own questions.
    enrollment: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Random id of the public join link (printed on posters), not the numeric id.
    join_token: Mapped[str] = mapped_column(String(32), unique=True)
    # The NPS survey (``services.nps``): ``{"enabled", "period_days", "bonus"}``; null: off.
    survey: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[created_at]
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class ProgramImage(Base):
    """A merchant's image for a program, already converted to one exact pass size."""

    __tablename__ = "program_images"
    __table_args__ = (UniqueConstraint("program_id", "filename"),)

    id: Mapped[bigint_pk]
    program_id: Mapped[int] = mapped_column(BigId, ForeignKey("loyalty_programs.id"))
    kind: Mapped[str] = mapped_column(String(10))
    filename: Mapped[str] = mapped_column(String(40))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[created_at]


class Member(Base):
    __tablename__ = "members"
    __table_args__ = (
        UniqueConstraint("program_id", "phone"),
        UniqueConstraint("program_id", "external_id"),
    )

    id: Mapped[bigint_pk]
    merchant_id: Mapped[int] = mapped_column(BigId, ForeignKey("merchants.id"), index=True)
    program_id: Mapped[int] = mapped_column(BigId, ForeignKey("loyalty_programs.id"))
    name: Mapped[str] = mapped_column(String(200))
    # Null once the member is erased.
    phone: Mapped[str | None] = mapped_column(String(20), index=True)
    email: Mapped[str | None] = mapped_column(String(254))
    birthday: Mapped[dt.date | None] = mapped_column(Date)
    external_id: Mapped[str | None] = mapped_column(String(100))
    consent_text: Mapped[str | None] = mapped_column(Text)
    consent_at: Mapped[dt.datetime | None]
    # Answers to the program's questionnaire, by question key.
    answers: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # How the member joined: "api" (merchant system) or "join_page".
    source: Mapped[str] = mapped_column(String(20), default="api")
    created_at: Mapped[created_at]
    # Personal-data rights (152-FZ, GDPR). Withdrawing the consent above erases the member;
    # the consent texts and times stay after erasure, as proof of what was agreed and when.
    consent_withdrawn_at: Mapped[dt.datetime | None]
    # Marketing messages (campaigns) have their own optional consent, given and withdrawn
    # independently: the exact text accepted and the times.
    marketing_consent: Mapped[bool] = mapped_column(Boolean, default=False,
                                                    server_default=false())
    marketing_consent_text: Mapped[str | None] = mapped_column(Text)
    marketing_consent_at: Mapped[dt.datetime | None]
    marketing_consent_withdrawn_at: Mapped[dt.datetime | None]
    # Erased: every personal field is cleared; the row stays, anonymous, so the card's
    # ledger still adds up.
    erased_at: Mapped[dt.datetime | None]

    card: Mapped[LoyaltyCard] = relationship(back_populates="member", uselist=False)


class LoyaltyCard(Base):
    """One member's card in one program: what the Apple pass and the Google object show.

    ``version`` grows with every change a customer can see; ``authentication_token`` is set
    once and never changes (devices keep it for the life of the pass).
    """

    __tablename__ = "loyalty_cards"

    id: Mapped[bigint_pk]
    merchant_id: Mapped[int] = mapped_column(BigId, ForeignKey("merchants.id"), index=True)
    program_id: Mapped[int] = mapped_column(BigId, ForeignKey("loyalty_programs.id"))
    member_id: Mapped[int] = mapped_column(BigId, ForeignKey("members.id"), unique=True)
    serial_number: Mapped[str] = mapped_column(String(32), unique=True)
    authentication_token: Mapped[str] = mapped_column(String(64))
    download_token: Mapped[str] = mapped_column(String(64), unique=True)
    status: Mapped[str] = mapped_column(String(10), default="active")
    balance: Mapped[int] = mapped_column(BigInteger, default=0)
    lifetime_points: Mapped[int] = mapped_column(BigInteger, default=0)
    lifetime_spend_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    tier: Mapped[str | None] = mapped_column(String(60))
    # A tier the merchant assigned (a paid or VIP membership): the daily review does not
    # lower the card below it through ``manual_tier_until`` (for ever when that is null).
    manual_tier: Mapped[str | None] = mapped_column(String(60))
    manual_tier_until: Mapped[dt.date | None] = mapped_column(Date)
    # Stamp programs: stamps collected towards the next reward (``balance`` counts the
    # rewards ready to claim).
    stamps: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Stamps the card owes: a refund took back stamps of a reward already claimed; the next
    # stamps pay them off before they count (``rules.take_back_stamps``).
    stamp_debt: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Purchases made (visits), and when the last one was.
    visits: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_visit_at: Mapped[dt.datetime | None]
    # The member's own code for inviting friends, and the card of whoever invited them.
    referral_code: Mapped[str | None] = mapped_column(String(16), unique=True)
    referred_by_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("loyalty_cards.id"))
    # The latest message for the member (a campaign), shown on the back of the card;
    # ``message_campaign_id`` names the campaign it came from, if any. ``message`` is the
    # text, or the text per language (see ``localized_text``).
    message_plain: Mapped[str | None] = mapped_column("message", Text)
    message_i18n: Mapped[dict[str, str] | None] = mapped_column(JSON)
    message = localized_text("message_plain", "message_i18n")
    message_campaign_id: Mapped[int | None] = mapped_column(BigId)
    # The reminder of points expiring on ``reminder_expires_on``, shown apart from the
    # message; it goes once those points are spent or expired.
    reminder: Mapped[str | None] = mapped_column(Text)
    reminder_expires_on: Mapped[dt.date | None] = mapped_column(Date)
    version: Mapped[int] = mapped_column(Integer, default=1)
    # The update tag as releases before revision 0025 kept it, on the card itself; since
    # then the tag lives in ``card_update_tags`` (:class:`CardUpdateTag`) and this column is
    # only read, as a floor, until a later release drops it.
    update_seq: Mapped[int] = mapped_column(BigInteger, default=0, index=True)
    # Distinct per version, one second apart at least (HTTP dates have 1 s resolution).
    last_modified: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_at: Mapped[created_at]
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    member: Mapped[Member] = relationship(back_populates="card")


class LedgerTransaction(Base):
    """An immutable change of a card. ``points`` (balance units: points, rewards ready in a
    stamp program, minor units of cashback) and ``stamps`` are signed deltas.

    ``type`` says what happened (``earn``, ``redeem``, ``adjust``, ``refund``, ``bonus``,
    ``expire``, ``reward``, ``coupon``, ``tier``, ``tier_set``), ``reason`` why in words,
    ``reference_id`` what it refers to (the refunded purchase, the reward, the coupon), and
    ``details`` the arithmetic (receipt lines, rule names), so the history explains every
    number on the card.

    Two kinds of key, each unique per merchant in a column of its own, so neither can take
    the other's place: ``idempotency_key`` is a client's ``Idempotency-Key``, bound to the
    ``idempotency_operation`` it was sent to, the member of the card and ``request_hash``
    (``services.ledger.IdempotencyScope``); ``natural_key`` is the service's own key for an
    entry it writes once (``expire:<lot>``, ``birthday:<card>:<year>``). An action bonus
    asked for with a client's key carries both.
    """

    __tablename__ = "ledger_transactions"
    __table_args__ = (
        UniqueConstraint("merchant_id", "idempotency_key"),
        UniqueConstraint("merchant_id", "natural_key"),
        Index("ix_ledger_transactions_card_id_id", "card_id", "id"),
        Index("ix_ledger_transactions_staff_user_id_id", "staff_user_id", "id"),
    )

    id: Mapped[bigint_pk]
    merchant_id: Mapped[int] = mapped_column(BigId, ForeignKey("merchants.id"))
    card_id: Mapped[int] = mapped_column(BigId, ForeignKey("loyalty_cards.id"))
    type: Mapped[str] = mapped_column(String(10))
    points: Mapped[int] = mapped_column(BigInteger)
    amount_minor: Mapped[int | None] = mapped_column(BigInteger)
    reason: Mapped[str | None] = mapped_column(String(500))
    balance_after: Mapped[int] = mapped_column(BigInteger)
    tier_after: Mapped[str | None] = mapped_column(String(60))
    stamps: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    reference_id: Mapped[int | None] = mapped_column(BigId)
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    # None on rows written before keys had operations: read from the entry's type.
    idempotency_operation: Mapped[str | None] = mapped_column(String(20))
    request_hash: Mapped[str | None] = mapped_column(String(64))
    natural_key: Mapped[str | None] = mapped_column(String(255))
    # Who posted it: the API key for the API; the staff user (a console user's id) and the
    # store location for the till. Null for the service's own entries (expiry, daily jobs)
    # and rows written before attribution. No foreign keys: the history outlives keys,
    # users and stores.
    api_key_id: Mapped[int | None] = mapped_column(BigId)
    staff_user_id: Mapped[int | None] = mapped_column(BigId)
    location_id: Mapped[int | None] = mapped_column(BigId)
    created_at: Mapped[created_at]


class PointLot(Base):
    """Points earned together and expiring together. Spending takes from the oldest lot
    first; the daily job expires what is left of a lot on ``expires_on``."""

    __tablename__ = "point_lots"
    __table_args__ = (Index("ix_point_lots_card_id_expires_on", "card_id", "expires_on"),)

    id: Mapped[bigint_pk]
    card_id: Mapped[int] = mapped_column(BigId, ForeignKey("loyalty_cards.id"))
    transaction_id: Mapped[int] = mapped_column(BigId, ForeignKey("ledger_transactions.id"))
    points: Mapped[int] = mapped_column(BigInteger)
    remaining: Mapped[int] = mapped_column(BigInteger)
    expires_on: Mapped[dt.date] = mapped_column(Date, index=True)
    created_at: Mapped[created_at]


class Reward(Base):
    """An item of a program's rewards catalog, paid for with points or stamps."""

    __tablename__ = "rewards"

    id: Mapped[bigint_pk]
    program_id: Mapped[int] = mapped_column(BigId, ForeignKey("loyalty_programs.id"), index=True)
    name_plain: Mapped[str] = mapped_column("name", String(200))
    name_i18n: Mapped[dict[str, str] | None] = mapped_column(JSON)
    name = localized_text("name_plain", "name_i18n")
    description: Mapped[str | None] = mapped_column(String(1000))
    cost_points: Mapped[int | None] = mapped_column(BigInteger)
    cost_stamps: Mapped[int | None] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[created_at]


class Coupon(Base):
    """A coupon offered to one member or to a segment, valid in a period."""

    __tablename__ = "coupons"

    id: Mapped[bigint_pk]
    program_id: Mapped[int] = mapped_column(BigId, ForeignKey("loyalty_programs.id"), index=True)
    title_plain: Mapped[str] = mapped_column("title", String(100))
    title_i18n: Mapped[dict[str, str] | None] = mapped_column(JSON)
    title = localized_text("title_plain", "title_i18n")
    description: Mapped[str | None] = mapped_column(String(1000))
    segment: Mapped[dict[str, Any]] = mapped_column(JSON)
    valid_from: Mapped[dt.datetime | None]
    valid_until: Mapped[dt.datetime | None]
    # Evergreen: the daily job also gives it to cards that enter the segment later.
    evergreen: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Retired: no card shows it and it can no longer be used; used grants stay history.
    retired_at: Mapped[dt.datetime | None]
    created_at: Mapped[created_at]


class CouponGrant(Base):
    """A coupon given to one card; ``used_at`` is set once, by the redemption that wins."""

    __tablename__ = "coupon_grants"
    __table_args__ = (UniqueConstraint("coupon_id", "card_id"),)

    id: Mapped[bigint_pk]
    coupon_id: Mapped[int] = mapped_column(BigId, ForeignKey("coupons.id"))
    card_id: Mapped[int] = mapped_column(BigId, ForeignKey("loyalty_cards.id"), index=True)
    used_at: Mapped[dt.datetime | None]
    created_at: Mapped[created_at]


class Campaign(Base):
    """A message the merchant sent to all members or a segment, and how many cards it reached."""

    __tablename__ = "campaigns"

    id: Mapped[bigint_pk]
    program_id: Mapped[int] = mapped_column(BigId, ForeignKey("loyalty_programs.id"), index=True)
    text_plain: Mapped[str] = mapped_column("text", Text)
    text_i18n: Mapped[dict[str, str] | None] = mapped_column(JSON)
    text = localized_text("text_plain", "text_i18n")
    segment: Mapped[dict[str, Any]] = mapped_column(JSON)
    reached: Mapped[int] = mapped_column(Integer, default=0)
    # The holdout: ``holdout_percent`` of the members the campaign could reach, drawn at
    # random from ``holdout_seed`` (``services.campaigns``), not messaged, so the purchases
    # of the reached can be compared with theirs; ``held_out`` counts them.
    holdout_percent: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    holdout_seed: Mapped[str | None] = mapped_column(String(32))
    held_out: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[created_at]


class ScheduledCampaign(Base):
    """A campaign the merchant scheduled from the console: the worker sends it
    (``services.campaign_planning``) once ``send_at`` (the merchant's ``local_time`` in
    ``time_zone``, as UTC) has come. ``status``: ``scheduled``, ``sent``, ``cancelled`` or
    ``failed`` (it could no longer go out as written)."""

    __tablename__ = "scheduled_campaigns"
    __table_args__ = (Index("ix_scheduled_campaigns_status_send_at", "status", "send_at"),)

    id: Mapped[bigint_pk]
    merchant_id: Mapped[int] = mapped_column(BigId, ForeignKey("merchants.id"), index=True)
    program_id: Mapped[int] = mapped_column(BigId, ForeignKey("loyalty_programs.id"))
    text: Mapped[Any] = mapped_column(JSON)
    segment: Mapped[dict[str, Any]] = mapped_column(JSON)
    holdout_percent: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    send_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    local_time: Mapped[str] = mapped_column(String(16))
    time_zone: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(20))
    campaign_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("campaigns.id"))
    created_by: Mapped[int | None] = mapped_column(BigId)
    created_at: Mapped[created_at]


class CampaignRecipient(Base):
    """A member a campaign chose: ``group`` ``reached`` (messaged) or ``holdout`` (not),
    and ``draw``, the member's random number from the campaign's seed that decided it (the
    lowest draws are held out), so the choice can be checked and reproduced."""

    __tablename__ = "campaign_recipients"
    __table_args__ = (UniqueConstraint("campaign_id", "card_id"),)

    id: Mapped[bigint_pk]
    campaign_id: Mapped[int] = mapped_column(BigId, ForeignKey("campaigns.id"))
    card_id: Mapped[int] = mapped_column(BigId, ForeignKey("loyalty_cards.id"), index=True)
    group: Mapped[str] = mapped_column(String(10))
    draw: Mapped[str] = mapped_column(String(16))


class NpsAnswer(Base):
    """A member's answer to "How likely are you to recommend us?" (0–10) and a comment.
    One per member per survey period: answering again within the period from
    ``answered_at`` changes this row (``updated_at``); after it, a new row is written."""

    __tablename__ = "nps_answers"
    __table_args__ = (
        Index("ix_nps_answers_card_id_answered_at", "card_id", "answered_at"),
        Index("ix_nps_answers_merchant_id_answered_at", "merchant_id", "answered_at"),
    )

    id: Mapped[bigint_pk]
    merchant_id: Mapped[int] = mapped_column(BigId, ForeignKey("merchants.id"))
    program_id: Mapped[int] = mapped_column(BigId, ForeignKey("loyalty_programs.id"))
    card_id: Mapped[int] = mapped_column(BigId, ForeignKey("loyalty_cards.id"))
    score: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str | None] = mapped_column(Text)
    language: Mapped[str] = mapped_column(String(8))
    answered_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class CardChange(Base):
    """Outbox: a card's visible content changed, written in the same transaction as the
    change. The sequencer turns these into update tags and delivery jobs."""

    __tablename__ = "card_changes"

    id: Mapped[bigint_pk]
    card_id: Mapped[int] = mapped_column(BigId, ForeignKey("loyalty_cards.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[created_at]
    #: The ``X-Request-Id`` of the request (or the worker's run) that made the change, so
    #: that one id follows it from the request to the push (README: Logs).
    request_id: Mapped[str | None] = mapped_column(String(64))


class CardUpdateTag(Base):
    """A card's position in the service-wide order of published changes; devices poll with
    it as their ``passesUpdatedSince`` tag (apple-wallet spec §3.7). Written by the outbox
    sequencer only, never by a request, and kept apart from the card: the sequencer then
    never waits for a request that holds the card's row lock (nor a request for it), and a
    change of the card's content touches no indexed column, so PostgreSQL updates it in
    place (a HOT update) instead of adding an entry to each of the card's indexes. A card
    without a row has tag 0 (never sequenced).

    No foreign key: checking one would take a share lock on the card, and wait for the
    request holding it. The sequencer writes tags only for cards it reads, and cards are
    never deleted (erasure keeps an anonymous card)."""

    __tablename__ = "card_update_tags"

    card_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    update_seq: Mapped[int] = mapped_column(BigInteger, index=True)


class UpdateCounter(Base):
    """One row: the last update tag handed out. Its row lock orders the sequencers."""

    __tablename__ = "update_counter"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=0)


class Device(Base):
    """An Apple device (one Wallet library) that registered for pass updates."""

    __tablename__ = "devices"

    id: Mapped[bigint_pk]
    device_library_identifier: Mapped[str] = mapped_column(String(128), unique=True)
    push_token: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[created_at]
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Registration(Base):
    __tablename__ = "registrations"
    __table_args__ = (UniqueConstraint("device_id", "card_id"),)

    id: Mapped[bigint_pk]
    device_id: Mapped[int] = mapped_column(BigId, ForeignKey("devices.id", ondelete="CASCADE"))
    card_id: Mapped[int] = mapped_column(BigId, ForeignKey("loyalty_cards.id"), index=True)
    created_at: Mapped[created_at]


class DeliveryJob(Base):
    """A push or a Google update to deliver. ``status``: ``pending`` (waiting for
    ``available_at``), ``sending`` (claimed by a worker until ``lease_until``), ``failed``
    (given up; kept for operators), ``sent`` (a device's last push, kept until its coalescing
    window ends at ``available_at``; see ``services.outbox``). Other delivered jobs are
    deleted."""

    __tablename__ = "delivery_jobs"
    __table_args__ = (Index("ix_delivery_jobs_claim", "channel", "status", "available_at"),
                      # Sequencing looks up each device's waiting and in-flight jobs.
                      Index("ix_delivery_jobs_target", "channel", "target_id"))

    id: Mapped[bigint_pk]
    channel: Mapped[str] = mapped_column(String(10))
    target_id: Mapped[int] = mapped_column(BigId)
    status: Mapped[str] = mapped_column(String(10), default="pending")
    available_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    lease_until: Mapped[dt.datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[created_at]
    #: The card changes this delivery carries, as ``change_id:request_id`` items separated
    #: by spaces (the newest few), for the delivery's log line (README: Logs).
    changes: Mapped[str | None] = mapped_column(String(1000))


class PushAttempt(Base):
    """Every APNs outcome, for operators: which device, what APNs answered, what we did."""

    __tablename__ = "push_attempts"

    id: Mapped[bigint_pk]
    device_id: Mapped[int] = mapped_column(BigId, index=True)
    token_prefix: Mapped[str] = mapped_column(String(16))
    status: Mapped[int | None] = mapped_column(Integer)
    reason: Mapped[str | None] = mapped_column(String(100))
    outcome: Mapped[str] = mapped_column(String(20))
    apns_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[created_at]


class DeviceLog(Base):
    """Messages Wallet posts to ``/v1/log``: the best debugging channel for passes."""

    __tablename__ = "device_logs"

    id: Mapped[bigint_pk]
    message: Mapped[str] = mapped_column(Text)
    remote_addr: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[created_at] = mapped_column(UTCDateTime, default=utcnow, index=True)


class WalletEvent(Base):
    """A card added to or removed from a wallet: append-only, one row per event.

    ``wallet``: ``apple`` or ``google``; ``event``: ``installed`` or ``removed``; ``cause``:
    what told us (``registered``/``unregistered`` by the pass web service, ``token_invalid``
    from APNs, ``saved``/``deleted`` callbacks from Google).
    """

    __tablename__ = "wallet_events"
    __table_args__ = (Index("ix_wallet_events_merchant_id_id", "merchant_id", "id"),)

    id: Mapped[bigint_pk]
    merchant_id: Mapped[int] = mapped_column(BigId, ForeignKey("merchants.id"))
    card_id: Mapped[int] = mapped_column(BigId, ForeignKey("loyalty_cards.id"), index=True)
    wallet: Mapped[str] = mapped_column(String(10))
    event: Mapped[str] = mapped_column(String(10))
    cause: Mapped[str] = mapped_column(String(20))
    occurred_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)


class GoogleClass(Base):
    """The Google Wallet LoyaltyClass of a program and the program revision it shows."""

    __tablename__ = "google_classes"

    program_id: Mapped[int] = mapped_column(BigId, ForeignKey("loyalty_programs.id"),
                                            primary_key=True)
    class_id: Mapped[str] = mapped_column(String(200), unique=True)
    synced_revision: Mapped[str | None] = mapped_column(String(40))
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class GoogleObject(Base):
    """A card's Google Wallet LoyaltyObject: whether it exists at Google, which card version
    it shows, and whether the customer has it saved."""

    __tablename__ = "google_objects"

    card_id: Mapped[int] = mapped_column(BigId, ForeignKey("loyalty_cards.id"), primary_key=True)
    object_id: Mapped[str] = mapped_column(String(200), unique=True)
    inserted: Mapped[bool] = mapped_column(default=False)
    synced_version: Mapped[int] = mapped_column(Integer, default=0)
    # What Google was last sent (the object's changing fields and the card message), so an
    # unchanged object is not patched and a changed balance can notify.
    synced_state: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    saved_at: Mapped[dt.datetime | None]
    deleted_at: Mapped[dt.datetime | None]
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class GoogleNotification(Base):
    """A notifying update sent for a card: Google allows 3 per object per 24 hours."""

    __tablename__ = "google_notifications"
    __table_args__ = (Index("ix_google_notifications_card_id_sent_at", "card_id", "sent_at"),)

    id: Mapped[bigint_pk]
    card_id: Mapped[int] = mapped_column(BigId, ForeignKey("loyalty_cards.id"))
    kind: Mapped[str] = mapped_column(String(20))
    sent_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class GoogleCallback(Base):
    """A verified save/delete callback from Google, kept once per nonce."""

    __tablename__ = "google_callbacks"

    id: Mapped[bigint_pk]
    nonce: Mapped[str] = mapped_column(String(200), unique=True)
    event_type: Mapped[str] = mapped_column(String(20))
    class_id: Mapped[str] = mapped_column(String(200))
    object_id: Mapped[str] = mapped_column(String(200))
    card_id: Mapped[int | None] = mapped_column(BigId, index=True)
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class SignedPass(Base):
    """A card version's signed pass, signed once for every process: the worker signs a
    new version before its push goes out, a web process the first time it is asked for one
    not signed yet; later downloads of that version serve these bytes. A row is current
    while its ``version`` is the card's and its ``program_revision`` the program's
    ``updated_at``, for the card's ``download_token`` (its page is on the back) and the
    deployment's ``issuer`` (a digest of the public URL and pass identifiers it was signed
    for); a newer one replaces the card's older rows, and erasure deletes them (they hold
    the member's name)."""

    __tablename__ = "signed_passes"
    __table_args__ = (UniqueConstraint("card_id", "version", "program_revision",
                                       "download_token", "issuer",
                                       name="uq_signed_passes_card_id_version_revision"),)

    id: Mapped[bigint_pk]
    card_id: Mapped[int] = mapped_column(BigId, ForeignKey("loyalty_cards.id"))
    version: Mapped[int] = mapped_column(Integer)
    program_revision: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    download_token: Mapped[str] = mapped_column(String(64))
    issuer: Mapped[str] = mapped_column(String(32))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[created_at]


class AuditEntry(Base):
    """Who did what to a merchant's data, when and from where: sign-ins, settings changes,
    manual adjustments, erasures, exports and key changes (``services.audit``).

    ``actor_kind`` is ``user`` (a console user, ``actor_id`` its id), ``key`` (an API key)
    or ``system``; ``actor_label`` keeps the e-mail or key name as it was, so the log still
    reads after the user or key is gone. ``changes`` holds what changed (``{field: [before,
    after]}``) with secrets left out. Rows are only ever added."""

    __tablename__ = "audit_entries"
    __table_args__ = (Index("ix_audit_entries_merchant_id_id", "merchant_id", "id"),)

    id: Mapped[bigint_pk]
    merchant_id: Mapped[int] = mapped_column(BigId, ForeignKey("merchants.id"))
    actor_kind: Mapped[str] = mapped_column(String(10))
    actor_id: Mapped[int | None] = mapped_column(BigId)
    actor_label: Mapped[str] = mapped_column(String(320))
    action: Mapped[str] = mapped_column(String(60))
    target: Mapped[str | None] = mapped_column(String(200))
    changes: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    ip: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[created_at]


class ConsoleUser(Base):
    """A person who signs in to the merchant console (``services.accounts``).

    ``email`` is stored lower-cased and is unique across merchants (it is what signs in).
    ``password_hash`` is an Argon2id hash, null until an invited user chose a password.
    ``role`` is a ``permissions.Role``. ``failed_sign_ins`` counts wrong passwords in a row;
    after too many, ``locked_until`` refuses sign-ins for a while. ``session_epoch`` is copied
    into the session cookie at sign-in: bumping it ("sign out everywhere", a password change)
    ends every session signed in before. ``locale`` is the user's console language."""

    __tablename__ = "console_users"

    id: Mapped[bigint_pk]
    merchant_id: Mapped[int] = mapped_column(BigId, ForeignKey("merchants.id"), index=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(20))
    locale: Mapped[str] = mapped_column(String(5), default="ru", server_default="ru")
    failed_sign_ins: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    locked_until: Mapped[dt.datetime | None]
    session_epoch: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[created_at]
    disabled_at: Mapped[dt.datetime | None]


class ConsoleToken(Base):
    """A one-time link for a console user: ``invite`` (choose a first password) or ``reset``
    (choose a new one). Only a SHA-256 hash of the token is stored; it works once
    (``used_at``) and until ``expires_at``."""

    __tablename__ = "console_tokens"

    id: Mapped[bigint_pk]
    merchant_id: Mapped[int] = mapped_column(BigId, ForeignKey("merchants.id"), index=True)
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("console_users.id"), index=True)
    purpose: Mapped[str] = mapped_column(String(10))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[dt.datetime | None]
    created_at: Mapped[created_at]


class TillDevice(Base):
    """A phone or tablet the owner or a manager registered as a till of one store. Only a
    SHA-256 hash of its long-lived token is stored; the device keeps the token in an
    HttpOnly cookie. Staff then sign in on it with their PIN."""

    __tablename__ = "till_devices"

    id: Mapped[bigint_pk]
    merchant_id: Mapped[int] = mapped_column(BigId, ForeignKey("merchants.id"), index=True)
    location_id: Mapped[int] = mapped_column(BigId, ForeignKey("locations.id"))
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The console user who registered it.
    registered_by: Mapped[int | None] = mapped_column(BigId)
    created_at: Mapped[created_at]
    last_seen_at: Mapped[dt.datetime | None]
    revoked_at: Mapped[dt.datetime | None]


class StaffPin(Base):
    """A console user's till PIN (Argon2id hash), with the failures since the last good one;
    ``locked_until`` is set once too many failed in a row."""

    __tablename__ = "staff_pins"

    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("console_users.id"),
                                         primary_key=True, autoincrement=False)
    merchant_id: Mapped[int] = mapped_column(BigId, ForeignKey("merchants.id"), index=True)
    pin_hash: Mapped[str] = mapped_column(String(200))
    failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    locked_until: Mapped[dt.datetime | None]
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class TillLimit(Base):
    """What one staff user (``user_id``), or every staff user of the merchant without a row
    of their own (``user_id`` null), may post at the till. Null: no limit. A day is a day of
    the merchant's calendar."""

    __tablename__ = "till_limits"
    __table_args__ = (UniqueConstraint("merchant_id", "user_id"),)

    id: Mapped[bigint_pk]
    merchant_id: Mapped[int] = mapped_column(BigId, ForeignKey("merchants.id"))
    user_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("console_users.id"))
    points_per_transaction: Mapped[int | None] = mapped_column(BigInteger)
    stamps_per_transaction: Mapped[int | None] = mapped_column(Integer)
    points_per_customer_day: Mapped[int | None] = mapped_column(BigInteger)
    stamps_per_customer_day: Mapped[int | None] = mapped_column(Integer)
    points_per_staff_day: Mapped[int | None] = mapped_column(BigInteger)
    stamps_per_staff_day: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class TillEvent(Base):
    """Something at the till the owner may want to look at: a limit hit (``limit``), a
    customer found by typing rather than scanning (``manual``), an undo (``undo``), a wrong
    PIN (``pin_failed``) or a locked one (``pin_locked``). ``details`` says which limit,
    what was asked for. Rows are only ever added."""

    __tablename__ = "till_events"
    __table_args__ = (Index("ix_till_events_merchant_id_created_at", "merchant_id",
                            "created_at"),)

    id: Mapped[bigint_pk]
    merchant_id: Mapped[int] = mapped_column(BigId, ForeignKey("merchants.id"))
    user_id: Mapped[int | None] = mapped_column(BigId)
    location_id: Mapped[int | None] = mapped_column(BigId)
    device_id: Mapped[int | None] = mapped_column(BigId)
    kind: Mapped[str] = mapped_column(String(20))
    card_id: Mapped[int | None] = mapped_column(BigId)
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[created_at]


class WebhookEndpoint(Base):
    """A merchant's receiver of outbound webhooks (``services.webhooks``): where to send,
    which event types, and the signing secret (``whsec_…``, Standard Webhooks). A run of
    failures disables it (``enabled`` false) with ``disabled_reason`` for the merchant to
    read; ``failing_since`` is when the current run of failures began (null: the last
    delivery succeeded)."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[bigint_pk]
    merchant_id: Mapped[int] = mapped_column(BigId, ForeignKey("merchants.id"), index=True)
    url: Mapped[str] = mapped_column(String(2000))
    description: Mapped[str | None] = mapped_column(String(200))
    events: Mapped[list[str]] = mapped_column(JSON)
    secret: Mapped[str] = mapped_column(String(100))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled_reason: Mapped[str | None] = mapped_column(String(500))
    disabled_at: Mapped[dt.datetime | None]
    failing_since: Mapped[dt.datetime | None]
    created_at: Mapped[created_at]
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class WebhookEvent(Base):
    """An event for a merchant's webhooks, written in the transaction of the change it
    reports; ``message_id`` is the ``webhook-id`` every delivery of it carries, ``payload``
    the signed body. ``member_id`` lets an erasure find the member's events."""

    __tablename__ = "webhook_events"
    __table_args__ = (Index("ix_webhook_events_merchant_id_id", "merchant_id", "id"),)

    id: Mapped[bigint_pk]
    merchant_id: Mapped[int] = mapped_column(BigId, ForeignKey("merchants.id"))
    message_id: Mapped[str] = mapped_column(String(40), unique=True)
    type: Mapped[str] = mapped_column(String(40))
    member_id: Mapped[int | None] = mapped_column(BigId, index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[created_at]


class WebhookDelivery(Base):
    """One event sent to one endpoint, for the delivery log: ``status`` ``pending``,
    ``delivered`` or ``failed``, how many tries, and the last try's answer (HTTP status,
    milliseconds, error). A manual redelivery is a new row."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_deliveries_endpoint_id_id", "endpoint_id", "id"),)

    id: Mapped[bigint_pk]
    endpoint_id: Mapped[int] = mapped_column(BigId, ForeignKey("webhook_endpoints.id"))
    event_id: Mapped[int] = mapped_column(BigId, ForeignKey("webhook_events.id"), index=True)
    status: Mapped[str] = mapped_column(String(10), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    response_status: Mapped[int | None] = mapped_column(Integer)
    latency_ms: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[created_at]
    last_attempt_at: Mapped[dt.datetime | None]
    delivered_at: Mapped[dt.datetime | None]


# Analytics (services.analytics): rollups the worker keeps, read by the dashboard and
# /api/v1/analytics. Days and months are the merchant's local ones. ``location_id`` and
# ``staff_id`` are 0 where an entry names no store or staff user, so they can be keys.

Index("ix_ledger_transactions_merchant_id_created_at", LedgerTransaction.merchant_id,
      LedgerTransaction.created_at)
Index("ix_members_merchant_id_created_at", Member.merchant_id, Member.created_at)
Index("ix_wallet_events_merchant_id_occurred_at", WalletEvent.merchant_id,
      WalletEvent.occurred_at)


class AnalyticsDay(Base):
    """What happened on one local day in one program, per store and staff user: sums that
    add up over any period."""

    __tablename__ = "analytics_days"
    __table_args__ = (UniqueConstraint("merchant_id", "day", "program_id", "location_id",
                                       "staff_id", name="uq_analytics_days_key"),)

    id: Mapped[bigint_pk]
    merchant_id: Mapped[int] = mapped_column(BigId)
    program_id: Mapped[int] = mapped_column(BigId)
    day: Mapped[dt.date] = mapped_column(Date)
    location_id: Mapped[int] = mapped_column(BigId)
    staff_id: Mapped[int] = mapped_column(BigId)
    new_members: Mapped[int] = mapped_column(BigInteger, default=0)
    purchases: Mapped[int] = mapped_column(BigInteger, default=0)
    paid_purchases: Mapped[int] = mapped_column(BigInteger, default=0)
    revenue_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    refunds_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    points_issued: Mapped[int] = mapped_column(BigInteger, default=0)
    points_redeemed: Mapped[int] = mapped_column(BigInteger, default=0)
    points_expired: Mapped[int] = mapped_column(BigInteger, default=0)
    points_net: Mapped[int] = mapped_column(BigInteger, default=0)
    rewards_redeemed: Mapped[int] = mapped_column(BigInteger, default=0)
    coupons_redeemed: Mapped[int] = mapped_column(BigInteger, default=0)
    manual_entries: Mapped[int] = mapped_column(BigInteger, default=0)
    apple_installs: Mapped[int] = mapped_column(BigInteger, default=0)
    apple_removals: Mapped[int] = mapped_column(BigInteger, default=0)
    google_installs: Mapped[int] = mapped_column(BigInteger, default=0)
    google_removals: Mapped[int] = mapped_column(BigInteger, default=0)


class AnalyticsProgramDay(Base):
    """A program's standing at the end of one local day: numbers that do not add up over
    days (members with a purchase in the 30 or 90 days ending that day) and running totals."""

    __tablename__ = "analytics_program_days"
    __table_args__ = (Index("ix_analytics_program_days_merchant_id_day", "merchant_id", "day"),)

    program_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    merchant_id: Mapped[int] = mapped_column(BigId)
    members_total: Mapped[int] = mapped_column(BigInteger, default=0)
    active_30: Mapped[int] = mapped_column(BigInteger, default=0)
    active_90: Mapped[int] = mapped_column(BigInteger, default=0)
    repeat_30: Mapped[int] = mapped_column(BigInteger, default=0)
    repeat_90: Mapped[int] = mapped_column(BigInteger, default=0)
    points_outstanding: Mapped[int] = mapped_column(BigInteger, default=0)


class AnalyticsCohort(Base):
    """Members who joined in ``cohort_month`` and bought in ``month`` (local months): how
    many, and what they spent (purchases less refunds)."""

    __tablename__ = "analytics_cohorts"
    __table_args__ = (Index("ix_analytics_cohorts_merchant_id_cohort_month", "merchant_id",
                            "cohort_month"),)

    program_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    cohort_month: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    month: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    merchant_id: Mapped[int] = mapped_column(BigId)
    active_members: Mapped[int] = mapped_column(BigInteger, default=0)
    amount_minor: Mapped[int] = mapped_column(BigInteger, default=0)


class AnalyticsBreakdown(Base):
    """Counts by item on one local day: rewards and coupons redeemed (``item`` their id),
    tier moves (``from>to``), and the tier of every open card (``tier_members``, a snapshot
    as of the day's last refresh)."""

    __tablename__ = "analytics_breakdowns"
    __table_args__ = (Index("ix_analytics_breakdowns_merchant_id_kind_day", "merchant_id",
                            "kind", "day"),)

    id: Mapped[bigint_pk]
    merchant_id: Mapped[int] = mapped_column(BigId)
    program_id: Mapped[int] = mapped_column(BigId)
    day: Mapped[dt.date] = mapped_column(Date)
    location_id: Mapped[int] = mapped_column(BigId)
    kind: Mapped[str] = mapped_column(String(20))
    item: Mapped[str] = mapped_column(String(130))
    count: Mapped[int] = mapped_column(BigInteger)


class AnalyticsRefresh(Base):
    """When a merchant's rollups were last brought up to date (or claimed for that), and
    through which local day: the next refresh recomputes from that day on."""

    __tablename__ = "analytics_refreshes"

    merchant_id: Mapped[int] = mapped_column(BigId, ForeignKey("merchants.id"),
                                             primary_key=True)
    refreshed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    # Null until the first refresh is done.
    through: Mapped[dt.date | None] = mapped_column(Date)


class ImportJob(Base):
    """A CSV import started in the console and run by the worker (``services.import_jobs``):
    ``queued``, then ``running`` (leased to one worker until ``lease_until``, which each
    chunk's progress extends; a worker that died leaves it to be taken again), then ``done``
    with the report or ``failed`` with the error. ``rows_done`` of ``rows_total`` is the
    progress the page shows. ``data`` holds the uploaded file until the job ends (the file
    is personal data: it is not kept afterwards)."""

    __tablename__ = "import_jobs"
    __table_args__ = (Index("ix_import_jobs_merchant_id_id", "merchant_id", "id"),
                      Index("ix_import_jobs_status_id", "status", "id"))

    id: Mapped[bigint_pk]
    merchant_id: Mapped[int] = mapped_column(BigId, ForeignKey("merchants.id"))
    program_id: Mapped[int] = mapped_column(BigId, ForeignKey("loyalty_programs.id"))
    created_by: Mapped[int] = mapped_column(BigId, ForeignKey("console_users.id"))
    created_ip: Mapped[str | None] = mapped_column(String(64))
    filename: Mapped[str] = mapped_column(String(255))
    data: Mapped[bytes | None] = mapped_column(LargeBinary)
    mapping: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(10))
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    rows_done: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    rows_total: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    report: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[created_at]
    started_at: Mapped[dt.datetime | None]
    lease_until: Mapped[dt.datetime | None]
    finished_at: Mapped[dt.datetime | None]
