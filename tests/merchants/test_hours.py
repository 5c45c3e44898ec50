"""Opening hours: open now, "closes in 15 minutes", intervals past midnight, holiday closures,
pause; and the scheduled delivery slots (定时送餐) a merchant can serve, within its hours."""

import datetime as dt
from types import SimpleNamespace

import pytest
from django.utils import timezone

from merchants.hours import delivery_slots, open_state
from merchants.models import Closure, OpeningHours

TZ = timezone.get_fixed_timezone(8 * 60)
MONDAY = dt.date(2026, 11, 30)  # a Monday


class Rows(list):
    def all(self):
        return self


def merchant(hours, closures=(), *, paused=False, active=True, prep=15):
    return SimpleNamespace(
        hours=Rows(
            OpeningHours(weekday=d, opens=dt.time(*a), closes=dt.time(*b)) for d, a, b in hours
        ),
        closures=Rows(Closure(starts_on=s, ends_on=e) for s, e in closures),
        paused=paused,
        active=active,
        current_prep_minutes=prep,
    )


def at(day_offset, hour, minute=0):
    return dt.datetime.combine(MONDAY + dt.timedelta(days=day_offset), dt.time(hour, minute), TZ)


LUNCH_DINNER = [(d, (10, 30), (13, 30)) for d in range(7)] + [
    (d, (16, 30), (19, 30)) for d in range(7)
]


@pytest.mark.parametrize(
    ("when", "is_open", "soon"),
    [
        (at(0, 10, 29), False, False),
        (at(0, 10, 30), True, False),
        (at(0, 13, 14), True, False),
        (at(0, 13, 15), True, True),  # closes in 15 minutes
        (at(0, 13, 30), False, False),
        (at(0, 17, 0), True, False),
    ],
)
def test_open_now_and_closing_soon(when, is_open, soon):
    state = open_state(merchant(LUNCH_DINNER), when)
    assert state.is_open is is_open
    assert state.closing_soon(when) is soon


def test_closed_says_when_it_opens_next():
    state = open_state(merchant(LUNCH_DINNER), at(0, 14, 0))
    assert not state.is_open and state.opens_at == at(0, 16, 30)
    assert open_state(merchant(LUNCH_DINNER), at(0, 21, 0)).opens_at == at(1, 10, 30)


def test_an_interval_past_midnight_stays_open_into_the_next_day():
    late = merchant([(4, (21, 0), (1, 0))])  # Friday 21:00 - Saturday 01:00
    assert open_state(late, at(4, 23, 30)).is_open
    saturday_night = open_state(late, at(5, 0, 50))
    assert saturday_night.is_open and saturday_night.closes_at == at(5, 1, 0)
    assert saturday_night.closing_soon(at(5, 0, 50))
    assert not open_state(late, at(5, 1, 0)).is_open


def test_a_holiday_closure_shuts_the_day():
    holiday = merchant(LUNCH_DINNER, [(MONDAY, MONDAY + dt.timedelta(days=1))])
    state = open_state(holiday, at(0, 11, 0))
    assert not state.is_open and state.reason == "closure"
    assert state.opens_at == at(2, 10, 30)


def test_paused_and_unlisted_merchants_are_closed():
    assert open_state(merchant(LUNCH_DINNER, paused=True), at(0, 11)).reason == "paused"
    assert open_state(merchant(LUNCH_DINNER, active=False), at(0, 11)).reason == "inactive"


def test_back_to_back_intervals_are_one():
    split = merchant([(0, (0, 0), (12, 0)), (0, (12, 0), (0, 0))])
    state = open_state(split, at(0, 11, 59))
    assert state.is_open and not state.closing_soon(at(0, 11, 59))


def test_delivery_slots_lie_within_the_hours_on_the_grid():
    slots = delivery_slots(
        merchant(LUNCH_DINNER), now=at(0, 9, 0), lead_minutes=40, delivery_minutes=10
    )
    local = [timezone.localtime(s, TZ) for s in slots]
    # Opens 10:30, 15 min to cook: the food leaves at 10:45 at the earliest, arrives 10:55; the
    # first grid time after that is 11:00.
    assert local[0] == at(0, 11, 0)
    assert all(s.minute % 15 == 0 for s in local)
    for s in local:
        leaves = s - dt.timedelta(minutes=10)
        assert any(
            at(d, 10, 45) <= leaves <= at(d, 13, 30) or at(d, 16, 45) <= leaves <= at(d, 19, 30)
            for d in (0, 1, 2)
        ), s
    assert at(0, 15, 0) not in local  # closed between lunch and dinner


def test_no_slot_sooner_than_the_lead_time():
    slots = delivery_slots(
        merchant(LUNCH_DINNER), now=at(0, 12, 0), lead_minutes=40, delivery_minutes=10
    )
    assert timezone.localtime(slots[0], TZ) == at(0, 12, 45)


def test_a_paused_merchant_offers_no_slots():
    assert (
        delivery_slots(
            merchant(LUNCH_DINNER, paused=True), now=at(0, 9), lead_minutes=30, delivery_minutes=5
        )
        == []
    )
