"""The daily job: expiry, reminders, birthday and win-back bonuses, tier review.

Bonuses are paid through :mod:`.bonuses` (natural idempotency keys, so a day run twice
gives nothing twice).

:func:`run_daily` is the one entry point the worker calls once a day (any number of times is
harmless). It takes the day to run for, so tests move the clock by passing another day:

1. expire what is left of point lots whose ``expires_on`` has come (oldest first);
2. remind on the card of points expiring within ``expiry_reminder_days`` (apart from the
   campaign message; the reminder goes once those points are spent or expired);
3. birthday bonuses (members born on 29 February get theirs on 28 February in common years);
4. win-back bonuses for members without a purchase for ``winback_after_days``;
5. tier review: cards whose tier basis fell below their tier move down, never below a
   tier the merchant assigned while it holds (:mod:`.tiers`);
6. coupons: evergreen ones reach cards that entered their segment since
   (:func:`.rewards.grant_evergreen_coupons`), and cards whose coupon started or ended get a
   new version.
"""

from __future__ import annotations

import calendar
import datetime as dt
from typing import Any

from sqlalchemy import bindparam
from sqlalchemy import func
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm import Session

from ..errors import ValidationFailed
from ..i18n import expiry_reminder
from ..local_time import local_date
from ..local_time import local_time
from ..local_time import start_of_day
from ..models import Coupon
from ..models import CouponGrant
from ..models import LoyaltyCard
from ..models import LoyaltyProgram
from ..models import Member
from ..models import Merchant
from ..models import PointLot
from ..rules import held_tier
from ..rules import reviewed_tier
from ..rules import tier_for
from ..rules import tier_rank
from . import ledger
from .bonuses import grant_bonus
from .merchants import time_zone_of
from .outbox import next_last_modified
from .outbox import publish_cards
from .outbox import publish_change
from .rewards import grant_evergreen_coupons

CARDS = LoyaltyCard.__table__
LOTS = PointLot.__table__


# --- the daily job ----------------------------------------------------------------------


def is_birthday(birthday: dt.date, today: dt.date) -> bool:
    """Whether ``today`` is the birthday; 29 February counts on 28 February in common years."""
    if (birthday.month, birthday.day) == (today.month, today.day):
        return True
    return ((birthday.month, birthday.day) == (2, 29) and (today.month, today.day) == (2, 28)
            and not calendar.isleap(today.year))


def run_daily(session: Session, today: dt.date, *, merchant_id: int | None = None,
              now: dt.datetime | None = None) -> dict[str, Any]:
    """Run the day's automations for every program (or one merchant's); idempotent.

    ``today`` is a day of each merchant's own calendar (its time zone): birthdays on that
    day, points valid until that day, no visit since local midnight ``winback_after_days``
    before. ``now`` stamps what the run writes and bounds coupon windows; without it, 06:00
    of ``today`` in the merchant's time zone. The caller commits. Returns counts of what was
    done.
    """
    query = (select(LoyaltyProgram, Merchant.time_zone)
             .join(Merchant, Merchant.id == LoyaltyProgram.merchant_id)
             .order_by(LoyaltyProgram.id))
    if merchant_id is not None:
        query = query.where(LoyaltyProgram.merchant_id == merchant_id)
    report = {"day": today, "expired": 0, "reminded": 0, "birthdays": 0, "winbacks": 0,
              "downgrades": 0, "coupons_refreshed": 0, "coupons_granted": 0}
    for program, time_zone in session.execute(query).all():
        at = now if now is not None else local_time(today, dt.time(6), time_zone)
        rules = program.rules
        if rules.get("points_validity_days"):
            report["expired"] += _expire(session, program, today, at)
            report["reminded"] += _remind(session, program, today, at)
        bonuses = rules.get("bonuses") or {}
        if bonuses.get("birthday"):
            report["birthdays"] += _birthdays(session, program, int(bonuses["birthday"]),
                                              today, at)
        if bonuses.get("winback"):
            report["winbacks"] += _winbacks(session, program, bonuses, today, at)
        if rules.get("tiers"):
            report["downgrades"] += _review_tiers(session, program, today, at)
        report["coupons_granted"] += grant_evergreen_coupons(session, program.id, at)
        report["coupons_refreshed"] += _coupon_windows(session, program, at)
    return report


#: How many days back a merchant may run its daily job again (``run_merchant_day``): a day
#: the worker missed while it was stopped, such as its birthdays.
RERUN_DAYS = 7


def run_merchant_day(session: Session, merchant_id: int, day: dt.date | None,
                     now: dt.datetime) -> dict[str, Any]:
    """The daily job of one merchant, as the merchant asks for it (``POST
    /automations/daily``): for its today (in its time zone) by default, or again for one of
    the ``RERUN_DAYS`` days before. Never for a day to come: points would expire, tiers fall
    and bonuses go out before their time, and none of that can be undone. (Tests and the demo
    move time with :func:`run_daily` and an explicit day, or the worker's injected clock.)
    Today runs at ``now``; a past day at 06:00 of it, as :func:`run_daily` does.

    :raises ValidationFailed: ``day`` is after the merchant's today, or further back than
        ``RERUN_DAYS``; names ``day``.
    """
    time_zone = time_zone_of(session, merchant_id)
    today = local_date(now, time_zone)
    if day is None or day == today:
        return run_daily(session, today, merchant_id=merchant_id, now=now)
    if day > today:
        raise ValidationFailed(
            f"day: {day.isoformat()} has not come yet: today is {today.isoformat()} in the "
            f"merchant's time zone ({time_zone}); a day runs on that day or later",
            field="day")
    if day < today - dt.timedelta(days=RERUN_DAYS):
        raise ValidationFailed(
            f"day: {day.isoformat()} is more than {RERUN_DAYS} days before today "
            f"({today.isoformat()} in the merchant's time zone, {time_zone})", field="day")
    return run_daily(session, day, merchant_id=merchant_id)


# --- when each merchant's day runs (the worker) ----------------------------------------


def due_days(session: Session, now: dt.datetime) -> list[tuple[int, dt.date]]:
    """``(merchant id, local day)`` of every merchant whose local day at ``now`` the worker
    has not run the daily job for, in id order. Merchants are looked at per time zone first,
    so a pass where no zone's day turned costs one small grouped query."""
    zones = session.execute(
        select(Merchant.time_zone, func.min(Merchant.daily_done_on), func.count(),
               func.count(Merchant.daily_done_on))
        .group_by(Merchant.time_zone)
    ).all()
    due: list[tuple[int, dt.date]] = []
    for time_zone, oldest, merchants, done in zones:
        day = local_date(now, time_zone)
        if done == merchants and oldest >= day:
            continue
        ids = session.scalars(
            select(Merchant.id).where(
                Merchant.time_zone == time_zone,
                or_(Merchant.daily_done_on.is_(None), Merchant.daily_done_on < day)))
        due.extend((merchant_id, day) for merchant_id in ids)
    return sorted(due)


def claim_day(session: Session, merchant_id: int, day: dt.date) -> bool:
    """Record that the merchant's ``day`` runs, unless it (or a later day) ran already or
    another worker is running it; True when this call claimed it. Call it in the transaction
    that runs the day: the row stays locked until the commit, so other workers pass on to
    the next merchant (``SKIP LOCKED``), and a run that fails leaves the day unclaimed. The
    lock is ``FOR NO KEY UPDATE``, which the merchant's requests (inserting rows that refer
    to it) do not wait for. Days only move forward, so a merchant whose new time zone is
    behind the old one does not run a day twice."""
    due = (Merchant.id == merchant_id,
           or_(Merchant.daily_done_on.is_(None), Merchant.daily_done_on < day))
    if session.execute(select(Merchant.id).where(*due)
                       .with_for_update(key_share=True, skip_locked=True)).first() is None:
        return False
    session.execute(update(Merchant.__table__).where(*due).values(daily_done_on=day))
    return True


def _coupon_windows(session: Session, program: LoyaltyProgram, now: dt.datetime) -> int:
    """Cards whose unused coupon started or ended since the card last changed get a new
    version, so the coupon appears on (or leaves) the phone. A refreshed card has
    ``updated_at`` past the boundary, so running the day again changes nothing."""
    boundaries = (Coupon.valid_from, Coupon.valid_until)
    stale: set[int] = set()
    for boundary in boundaries:
        stale.update(session.scalars(
            select(CARDS.c.id)
            .join(CouponGrant, CouponGrant.card_id == CARDS.c.id)
            .join(Coupon, Coupon.id == CouponGrant.coupon_id)
            .where(Coupon.program_id == program.id, CouponGrant.used_at.is_(None),
                   Coupon.retired_at.is_(None),
                   boundary.is_not(None), boundary <= now, CARDS.c.updated_at < boundary)
        ))
    return publish_cards(session, sorted(stale), now)


def _expire(session: Session, program: LoyaltyProgram, today: dt.date, now: dt.datetime) -> int:
    lots = session.execute(
        select(LOTS.c.id, LOTS.c.card_id, LOTS.c.expires_on, LOTS.c.transaction_id)
        .join(CARDS, CARDS.c.id == LOTS.c.card_id)
        .where(CARDS.c.program_id == program.id, LOTS.c.expires_on <= today,
               LOTS.c.remaining > 0)
        .order_by(LOTS.c.card_id, LOTS.c.expires_on, LOTS.c.id)
    ).all()
    done = 0
    for lot in lots:
        card = ledger.lock_card(session, lot.card_id)
        remaining = session.scalar(select(LOTS.c.remaining).where(LOTS.c.id == lot.id))
        if not remaining:
            continue  # spent meanwhile
        ledger.apply_change(session, program.merchant_id, card, ledger.Change(
            "expire", points=-int(remaining), cap_at_zero=True, expire_lot=lot.id,
            reference_id=lot.transaction_id,
            reason=f"points valid until {lot.expires_on.isoformat()} expired",
            details={"rule": "expiry", "lot_id": lot.id}),
            now=now, natural_key=f"expire:{lot.id}")
        done += 1
    return done


#: Cards whose reminder is worked out under one lock: an IN list either database takes.
_REMINDER_CHUNK = 500

_SET_REMINDER = (
    update(CARDS)
    .where(CARDS.c.id == bindparam("cid"))
    .values(reminder=bindparam("text"), reminder_expires_on=bindparam("on"),
            version=bindparam("v"), last_modified=bindparam("lm"), updated_at=bindparam("now"))
)


def _remind(session: Session, program: LoyaltyProgram, today: dt.date, now: dt.datetime) -> int:
    """Remind on each active card of the points that expire next within
    ``expiry_reminder_days``, and take reminders off cards with none expiring then. The
    reminder has its own place on the card, so a campaign message stays; the ledger takes it
    off as soon as its points are spent or expired. Returns how many cards got a new
    reminder."""
    horizon = today + dt.timedelta(days=int(program.rules.get("expiry_reminder_days", 14)))
    expiring = select(LOTS.c.card_id).join(CARDS, CARDS.c.id == LOTS.c.card_id).where(
        CARDS.c.program_id == program.id, CARDS.c.status == "active",
        LOTS.c.expires_on > today, LOTS.c.expires_on <= horizon, LOTS.c.remaining > 0)
    shown = select(CARDS.c.id).where(CARDS.c.program_id == program.id,
                                     CARDS.c.reminder.is_not(None))
    candidates = sorted(set(session.scalars(expiring.distinct())) | set(session.scalars(shown)))
    language = program.languages[0] if program.languages else "en"
    reminded = 0
    for start in range(0, len(candidates), _REMINDER_CHUNK):
        chunk = candidates[start:start + _REMINDER_CHUNK]
        cards = session.execute(
            select(CARDS.c.id, CARDS.c.status, CARDS.c.version, CARDS.c.last_modified,
                   CARDS.c.reminder, CARDS.c.reminder_expires_on)
            .where(CARDS.c.id.in_(chunk)).order_by(CARDS.c.id).with_for_update()
        ).all()
        # Read the lots under the card locks, so a concurrent debit cannot slip between.
        due = _next_expiring(session, chunk, today, horizon)
        changed = []
        for card in cards:
            on, text = None, None
            if card.status == "active" and card.id in due:
                on, points = due[card.id]
                text = expiry_reminder(language, points, on)
            if (text, on) != (card.reminder, card.reminder_expires_on):
                changed.append((card, text, on))
                reminded += text is not None
        if changed:
            session.execute(_SET_REMINDER, [
                {"cid": card.id, "text": text, "on": on, "v": card.version + 1,
                 "lm": next_last_modified(card.last_modified, now), "now": now}
                for card, text, on in changed])
            for card, _, _ in changed:
                publish_change(session, card.id, card.version + 1, now)
    return reminded


def _next_expiring(session: Session, card_ids: list[int], today: dt.date,
                   horizon: dt.date) -> dict[int, tuple[dt.date, int]]:
    """Per card, the first day after ``today`` and up to ``horizon`` on which points expire,
    and how many."""
    rows = session.execute(
        select(LOTS.c.card_id, LOTS.c.expires_on, func.sum(LOTS.c.remaining))
        .where(LOTS.c.card_id.in_(card_ids), LOTS.c.expires_on > today,
               LOTS.c.expires_on <= horizon, LOTS.c.remaining > 0)
        .group_by(LOTS.c.card_id, LOTS.c.expires_on)
    ).all()
    due: dict[int, tuple[dt.date, int]] = {}
    for card_id, expires_on, points in rows:
        if card_id not in due or expires_on < due[card_id][0]:
            due[card_id] = (expires_on, int(points))
    return due


def _birthdays(session: Session, program: LoyaltyProgram, amount: int, today: dt.date,
               now: dt.datetime) -> int:
    rows = session.execute(
        select(CARDS.c.id, Member.birthday)
        .join(Member, Member.id == CARDS.c.member_id)
        .where(CARDS.c.program_id == program.id, CARDS.c.status == "active",
               Member.birthday.is_not(None))
    ).all()
    granted = 0
    for r in rows:
        if is_birthday(r.birthday, today) and grant_bonus(
                session, program.merchant_id, r.id, amount, "birthday",
                key=f"birthday:{r.id}:{today.year}", reason=f"birthday bonus {today.year}",
                now=now):
            granted += 1
    return granted


def _winbacks(session: Session, program: LoyaltyProgram, bonuses: dict[str, Any],
              today: dt.date, now: dt.datetime) -> int:
    days = int(bonuses.get("winback_after_days", 60))
    time_zone = time_zone_of(session, program.merchant_id)
    before = start_of_day(today - dt.timedelta(days=days), time_zone)
    rows = session.execute(
        select(CARDS.c.id, CARDS.c.last_visit_at)
        .where(CARDS.c.program_id == program.id, CARDS.c.status == "active",
               CARDS.c.last_visit_at.is_not(None), CARDS.c.last_visit_at < before)
    ).all()
    granted = 0
    for r in rows:
        # Once per spell of inactivity: the key names the last visit (by its UTC date, as
        # keys written before merchants had time zones do).
        visited = local_date(r.last_visit_at, time_zone)
        if grant_bonus(session, program.merchant_id, r.id, int(bonuses["winback"]), "winback",
                       key=f"winback:{r.id}:{r.last_visit_at.date().isoformat()}",
                       reason=f"we miss you: no visit since {visited}", now=now):
            granted += 1
    return granted


def _review_tiers(session: Session, program: LoyaltyProgram, today: dt.date,
                  now: dt.datetime) -> int:
    """Lower cards whose tier basis fell below their tier, never below a tier the merchant
    assigned while it holds; an assignment past its last day is forgotten and the card gets
    the tier its basis gives (see :mod:`.tiers`)."""
    rules = program.rules
    time_zone = time_zone_of(session, program.merchant_id)
    rows = session.execute(
        select(CARDS.c.id, CARDS.c.tier, CARDS.c.lifetime_points, CARDS.c.lifetime_spend_minor,
               CARDS.c.visits, CARDS.c.manual_tier, CARDS.c.manual_tier_until)
        .where(CARDS.c.program_id == program.id, CARDS.c.status == "active",
               CARDS.c.tier.is_not(None))
    ).all()
    lowered = 0
    for r in rows:
        totals = ledger.tier_totals(session, r, rules, today, time_zone=time_zone)
        due = tier_for(rules, program.currency, totals)
        held = held_tier(r.manual_tier, r.manual_tier_until, today)
        target = reviewed_tier(rules, due, held)
        ended = r.manual_tier is not None and held is None
        if (not ended and tier_rank(rules, target) >= tier_rank(rules, r.tier)
                and tier_rank(rules, r.tier) >= 0):
            continue
        card = ledger.lock_card(session, r.id)
        # Read the assignment again under the lock: the merchant may have changed it since.
        manual = session.execute(select(CARDS.c.manual_tier, CARDS.c.manual_tier_until)
                                 .where(CARDS.c.id == r.id)).one()
        held = held_tier(manual.manual_tier, manual.manual_tier_until, today)
        target = reviewed_tier(rules, due, held)
        details: dict[str, Any] = {"rule": "tier_review", "from": card.tier, "to": target,
                                   "basis": rules.get("tier_basis"),
                                   "value": [totals.points, totals.spend_minor, totals.visits]}
        reason = f"tier review {today.isoformat()}: {card.tier} → {target or 'none'}"
        if manual.manual_tier is not None and held is None:
            until = manual.manual_tier_until.isoformat()
            session.execute(update(CARDS).where(CARDS.c.id == r.id)
                            .values(manual_tier=None, manual_tier_until=None))
            details["manual_tier"] = {"tier": manual.manual_tier, "until": until}
            reason += f" ({manual.manual_tier} assigned until {until} ended)"
        elif held is not None:
            details["held"] = held
        if (tier_rank(rules, target) >= tier_rank(rules, card.tier)
                and tier_rank(rules, card.tier) >= 0):
            continue
        ledger.apply_change(session, program.merchant_id, card, ledger.Change(
            "tier", set_tier=True, tier=target, reason=reason, details=details), now=now)
        lowered += 1
    return lowered
