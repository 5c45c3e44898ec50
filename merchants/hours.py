"""Opening hours: is a merchant open now, when does it close or open next, which delivery slots it
can serve. Pure functions over a merchant's rows (prefetched once: `hours`, `closures`).

An interval closing at or before its opening time runs past midnight: Friday 21:00–01:00 is open
until Saturday 01:00. A closure day shuts every interval that opens on that day.
"""

import datetime as dt
from dataclasses import dataclass

from django.utils import timezone

CLOSING_SOON_MINUTES = 15


@dataclass(frozen=True)
class OpenState:
    is_open: bool
    closes_at: dt.datetime | None = None  # while open
    opens_at: dt.datetime | None = None  # while closed: the next opening, within a week
    reason: str = ""  # "paused" | "closure" | "hours" | "inactive" | ""

    def closing_soon(self, now: dt.datetime) -> bool:
        return bool(
            self.is_open
            and self.closes_at
            and self.closes_at - now <= dt.timedelta(minutes=CLOSING_SOON_MINUTES)
        )

    def minutes_left(self, now: dt.datetime) -> int | None:
        if not (self.is_open and self.closes_at):
            return None
        return max(int((self.closes_at - now).total_seconds() // 60), 0)


def _closed_on(closures, day: dt.date) -> bool:
    return any(c.starts_on <= day <= c.ends_on for c in closures)


def intervals_on(hours, closures, day: dt.date, tz=None) -> list[tuple[dt.datetime, dt.datetime]]:
    """The opening intervals that start on `day` (local), as aware datetimes."""
    tz = tz or timezone.get_current_timezone()
    if _closed_on(closures, day):
        return []
    out = []
    for row in hours:
        if row.weekday != day.weekday():
            continue
        start = dt.datetime.combine(day, row.opens, tzinfo=tz)
        end_day = day if row.closes > row.opens else day + dt.timedelta(days=1)
        out.append((start, dt.datetime.combine(end_day, row.closes, tzinfo=tz)))
    return sorted(out)


def intervals_around(hours, closures, now: dt.datetime, days: int = 2):
    """Intervals starting from yesterday (one may run past midnight into today) for `days` more."""
    local = timezone.localtime(now)
    out = []
    for offset in range(-1, days + 1):
        out.extend(
            intervals_on(hours, closures, local.date() + dt.timedelta(days=offset), local.tzinfo)
        )
    return _merged(sorted(out))


def _merged(intervals):
    """Back-to-back intervals (11:00–14:00 and 14:00–20:00) count as one."""
    out: list[list[dt.datetime]] = []
    for start, end in intervals:
        if out and start <= out[-1][1]:
            out[-1][1] = max(out[-1][1], end)
        else:
            out.append([start, end])
    return [(s, e) for s, e in out]


def open_state(merchant, now: dt.datetime | None = None) -> OpenState:
    """Open now? Paused and unlisted merchants are closed whatever the hours say."""
    now = now or timezone.now()
    hours, closures = list(merchant.hours.all()), list(merchant.closures.all())
    intervals = intervals_around(hours, closures, now, days=7)
    upcoming = next((s for s, _e in intervals if s > now), None)
    if not merchant.active:
        return OpenState(False, reason="inactive")
    current = next(((s, e) for s, e in intervals if s <= now < e), None)
    if merchant.paused:
        return OpenState(False, opens_at=None, reason="paused")
    if current is None:
        reason = "closure" if _closed_on(closures, timezone.localdate(now)) else "hours"
        return OpenState(False, opens_at=upcoming, reason=reason)
    return OpenState(True, closes_at=current[1])


def delivery_slots(
    merchant,
    *,
    now: dt.datetime | None = None,
    lead_minutes: int,
    delivery_minutes: int,
    slot_minutes: int = 15,
    days: int = 2,
    limit: int = 48,
) -> list[dt.datetime]:
    """Scheduled delivery times (定时送餐) this merchant can serve: on the slot grid, no sooner
    than `lead_minutes` from now (preparation and delivery), and such that the food leaves the
    counter (`delivery_minutes` before the slot) while the merchant is open, at least its
    preparation time after it opened."""
    now = now or timezone.now()
    if not merchant.active or merchant.paused:
        return []
    hours, closures = list(merchant.hours.all()), list(merchant.closures.all())
    prep = dt.timedelta(minutes=merchant.current_prep_minutes)
    travel = dt.timedelta(minutes=delivery_minutes)
    step = dt.timedelta(minutes=slot_minutes)
    earliest = now + dt.timedelta(minutes=lead_minutes)
    local = timezone.localtime(earliest)
    # First grid point at or after `earliest` (the grid is aligned to local midnight).
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    first = midnight + step * -(-(local - midnight) // step)
    slots = []
    for start, end in intervals_around(hours, closures, now, days=days):
        t = max(first, start + prep + travel)
        t = midnight + step * -(-(t - midnight) // step)
        while t - travel <= end and len(slots) < limit:
            if t >= first:
                slots.append(t)
            t += step
    return sorted(set(slots))[:limit]
