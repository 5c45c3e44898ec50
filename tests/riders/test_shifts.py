"""Shifts: the online switch keeps a shift log; earnings per shift and per day."""

from datetime import datetime, timedelta

import pytest
from django.apps import apps
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from orders import services as order_services
from orders.models import Order
from orders.status import Status
from riders import selectors, services
from riders.models import RiderProfile, Shift
from tests import factories
from tests.factories import logged_in

pytestmark = pytest.mark.django_db

LEDGER = apps.is_installed("payments")


@pytest.fixture
def rider(campus):
    """An approved rider who is offline (no shift yet)."""
    return factories.make_rider(campus, gender="male", online=False, username="shift_rider")


def deliver(order, rider, *, at=None) -> Order:
    # Accepting needs an online rider; going online through the service would open a shift the
    # test did not ask for, so switch the flag only.
    RiderProfile.objects.filter(user=rider).update(online=True)
    rider = type(rider).objects.get(pk=rider.pk)
    order_services.order_accept(order=order, rider=rider)
    for to in (Status.PICKED_UP, Status.DELIVERING, Status.DELIVERED):
        order = order_services.order_transition(order=order, to=to, actor=rider)
    if at is not None:
        Order.objects.filter(pk=order.pk).update(delivered_at=at)
        order.delivered_at = at
    return order


def rider_share(order) -> int:
    """What the rider gets for a completed order: the ledger's credit, or the fee without it."""
    if LEDGER:
        from payments import selectors as money

        return money.order_money(order).rider_earned
    return order.price_fen + order.tip_fen


def test_going_online_opens_a_shift_and_offline_closes_it(rider):
    services.rider_set_online(user=rider, online=True)
    shift = Shift.objects.get(rider=rider)
    assert shift.ended_at is None

    services.rider_set_online(user=rider, online=True)  # again: still one shift
    assert Shift.objects.filter(rider=rider).count() == 1

    services.rider_set_online(user=rider, online=False)
    shift.refresh_from_db()
    assert shift.ended_at is not None and shift.ended_at >= shift.started_at
    services.rider_set_online(user=rider, online=True)
    assert Shift.objects.filter(rider=rider, ended_at__isnull=True).count() == 1
    assert Shift.objects.filter(rider=rider).count() == 2


def test_the_page_switch_logs_shifts(rider):
    client = logged_in(rider)
    client.post(reverse("riders:online"), {"online": "1"})
    client.post(reverse("riders:online"), {"online": "0"})
    assert Shift.objects.filter(rider=rider, ended_at__isnull=False).count() == 1


def test_a_rider_has_at_most_one_open_shift(rider):
    Shift.objects.create(rider=rider, started_at=timezone.now())
    with pytest.raises(IntegrityError), transaction.atomic():
        Shift.objects.create(rider=rider, started_at=timezone.now())


def test_earnings_per_shift_count_deliveries_inside_it(rider, student, campus):
    now = timezone.now()
    early = Shift.objects.create(
        rider=rider, started_at=now - timedelta(hours=5), ended_at=now - timedelta(hours=4)
    )
    services.rider_set_online(user=rider, online=True)
    inside_early = deliver(
        factories.make_order(customer=student, campus=campus), rider, at=now - timedelta(hours=4.5)
    )
    between = deliver(
        factories.make_order(customer=student, campus=campus), rider, at=now - timedelta(hours=3)
    )
    current = deliver(factories.make_order(customer=student, campus=campus), rider)
    order_services.order_transition(order=inside_early, to=Status.COMPLETED, actor=student)
    order_services.order_transition(order=between, to=Status.COMPLETED, actor=student)
    inside_early.refresh_from_db()

    rows = {row.shift.pk: row.takings for row in selectors.rider_shift_list(rider)}

    open_shift = Shift.objects.get(rider=rider, ended_at__isnull=True)
    assert rows[early.pk].deliveries == 1
    assert rows[early.pk].earned_fen == rider_share(inside_early) > 0
    assert rows[open_shift.pk].deliveries == 1
    if LEDGER:  # delivered, not completed yet: pending until the customer confirms
        assert rows[open_shift.pk].earned_fen == 0
        assert rows[open_shift.pk].pending_fen == current.price_fen + current.tip_fen
    else:
        assert rows[open_shift.pk].earned_fen == current.price_fen + current.tip_fen


def test_earnings_per_day_use_local_days(rider, student, campus):
    today = timezone.localdate()
    tz = timezone.get_current_timezone()
    yesterday_noon = datetime.combine(today - timedelta(days=1), datetime.min.time(), tzinfo=tz)
    yesterday_noon += timedelta(hours=12)
    Shift.objects.create(
        rider=rider, started_at=yesterday_noon - timedelta(hours=1), ended_at=yesterday_noon
    )
    old = deliver(factories.make_order(customer=student, campus=campus), rider, at=yesterday_noon)
    order_services.order_transition(order=old, to=Status.COMPLETED, actor=student)
    old.refresh_from_db()
    deliver(factories.make_order(customer=student, campus=campus), rider)

    days = selectors.rider_daily_earnings(rider)

    assert [d.day for d in days[:2]] == [today, today - timedelta(days=1)]
    assert len(days) == 7
    assert days[1].takings.deliveries == 1 and days[1].takings.earned_fen == rider_share(old)
    assert days[1].online == timedelta(hours=1)
    assert days[0].takings.deliveries == 1
    assert sum(d.takings.deliveries for d in days[2:]) == 0


@pytest.mark.skipif(not LEDGER, reason="the payments ledger is not installed")
def test_ledger_earnings_are_net_of_commission_and_withdrawals_do_not_count(rider, student, campus):
    from payments import services as payments

    order = deliver(factories.make_order(customer=student, campus=campus), rider)
    order_services.order_transition(order=order, to=Status.COMPLETED, actor=student)
    share = rider_share(order)
    payments.withdrawal_request(rider=rider, amount_fen=share)

    (today, *_) = selectors.rider_daily_earnings(rider)

    assert today.takings.earned_fen == share
    assert share <= order.price_fen + order.tip_fen


def test_earnings_page_shows_days_and_shifts(rider, student, campus, django_assert_max_num_queries):
    services.rider_set_online(user=rider, online=True)
    deliver(factories.make_order(customer=student, campus=campus), rider)
    for _ in range(3):
        deliver(factories.make_order(customer=student, campus=campus), rider)
    client = logged_in(rider)

    with django_assert_max_num_queries(15):
        response = client.get(reverse("riders:earnings"))

    assert response.status_code == 200
    assert response.content.count(b"<tr data-day=") == 7
    assert b"pending" in response.content or not LEDGER


def test_board_shows_the_current_shift(rider, student, campus):
    services.rider_set_online(user=rider, online=True)
    deliver(factories.make_order(customer=student, campus=campus), rider)
    response = logged_in(rider).get(reverse("riders:board"))
    assert b"1 delivery" in response.content


def test_earnings_api(rider, student, campus, api):
    services.rider_set_online(user=rider, online=True)
    order = deliver(factories.make_order(customer=student, campus=campus), rider)

    body = api(rider).get("/api/rider/earnings/").json()

    assert body["shifts"][0]["deliveries"] == 1 and body["shifts"][0]["ended_at"] is None
    total = body["days"][0]["earned_fen"] + body["days"][0]["pending_fen"]
    assert total == order.price_fen + order.tip_fen
    assert api(student).get("/api/rider/earnings/").status_code == 403
    assert api().get("/api/rider/earnings/").status_code == 401


def test_earnings_page_is_for_riders_only(student):
    assert logged_in(student).get(reverse("riders:earnings")).status_code == 403


def test_going_offline_forgets_the_live_position(rider, django_capture_on_commit_callbacks):
    from tracking import live

    services.rider_set_online(user=rider, online=True)
    live.position_set(rider.pk, {"lat": 30.3, "lng": 120.08, "recorded_at": "x"})
    with django_capture_on_commit_callbacks(execute=True):
        services.rider_set_online(user=rider, online=False)
    assert live.position_get(rider.pk) is None


def test_an_offline_rider_with_a_stray_open_shift_gets_it_closed(rider):
    Shift.objects.create(rider=rider, started_at=timezone.now() - timedelta(hours=1))
    services.rider_set_online(user=rider, online=False)
    assert not Shift.objects.filter(rider=rider, ended_at__isnull=True).exists()
