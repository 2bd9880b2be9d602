"""The merchant's calendar: IANA time zones, local dates and local midnights.

Everything the service stores is in UTC; what a customer calls "today" (a birthday, the day
points expire, "no visit for 60 days") is a date in the merchant's time zone. Russia alone
spans eleven zones, so the zone belongs to the merchant, never to the server. Pure: no clock,
no database; callers pass the moment and the zone's name.
"""

from __future__ import annotations

import datetime as dt
import functools
import zoneinfo

from .errors import ValidationFailed

#: The zone of a merchant created without one, unless ``WALLET_DEFAULT_TIME_ZONE`` says other.
DEFAULT_TIME_ZONE = "Europe/Moscow"


@functools.cache
def _known() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def is_time_zone(name: object) -> bool:
    """Whether ``name`` is an IANA time zone name (``Asia/Vladivostok``, ``UTC``), spelt as
    the time zone database spells it."""
    return isinstance(name, str) and name in _known()


def check_time_zone(name: str, field: str = "time_zone") -> str:
    """``name`` if it is an IANA time zone.

    :raises ValidationFailed: it is not; ``field`` names the input.
    """
    if not is_time_zone(name):
        raise ValidationFailed(
            f"{field}: {name!r} is not an IANA time zone such as Europe/Moscow or "
            "Asia/Vladivostok", field=field)
    return name


def zone(name: str) -> zoneinfo.ZoneInfo:
    """The time zone called ``name`` (ZoneInfo keeps one instance per name)."""
    return zoneinfo.ZoneInfo(name)


def local_date(moment: dt.datetime, time_zone: str) -> dt.date:
    """The calendar date at ``moment`` (aware) in ``time_zone``."""
    return moment.astimezone(zone(time_zone)).date()


def local_time(day: dt.date, time: dt.time, time_zone: str) -> dt.datetime:
    """``time`` on ``day`` in ``time_zone``, as an aware UTC datetime. A wall time skipped by
    a clock change (00:00 where summer time starts at midnight) is read with the offset
    before the change, which lands on the first moment of the day that exists."""
    return dt.datetime.combine(day, time, zone(time_zone)).astimezone(dt.UTC)


def start_of_day(day: dt.date, time_zone: str) -> dt.datetime:
    """The first moment of ``day`` in ``time_zone``, in UTC."""
    return local_time(day, dt.time(), time_zone)
