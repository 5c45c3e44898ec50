"""Reassignment (rider offline, no fixes, falling behind, an operator's click), orders at risk,
and the decision log on the order's admin page."""

from datetime import timedelta

import pytest
from django.test import TestCase
from django.urls import reverse
from django.utils import timezone

from dispatch import services
from dispatch.models import (
    Action,
    DispatchDecision,
    Mode,
    OfferStatus,
    OrderRisk,
    RiderOnDuty,
    TravelMode,
)
from orders import services as order_services
from orders.models import Order
from orders.status import Status
from riders import services as rider_services
from tests import factories
from tests.dispatch.test_offers import listen
from tracking import broadcast


@pytest.fixture
def auto(campus):
    return factories.dispatch_settings(campus, mode=Mode.AUTO)


@pytest.fixture
def carrier(campus, student):
    """A rider with two accepted orders, one of them already picked up."""
    rider = factories.make_rider(campus, gender="male", username="carrier")
    factories.set_position(rider, dx=-1)
    kept = factories.make_order(customer=student, campus=campus)
    loose = factories.make_order(customer=student, campus=campus)
    for order in (kept, loose):
        order_services.order_accept(order=order, rider=rider)
    order_services.order_transition(order=kept, to=Status.PICKED_UP, actor=rider)
    return rider, kept, loose


@pytest.fixture
def admin_user(db):
    return factories.make_user(username="ops_admin", is_staff=True, is_superuser=True)


@pytest.fixture
def spare(campus):
    rider = factories.make_rider(campus, gender="male", username="spare")
    factories.set_position(rider, dx=0)
    return rider


def cycle(campus, now=None):
    return services.dispatch_cycle(campus=campus, now=now or timezone.now())


def test_a_rider_going_offline_loses_the_orders_not_picked_up(auto, campus, carrier, spare):
    rider, kept, loose = carrier
    rider_services.rider_set_online(user=rider, online=False)
    report = cycle(campus)
    assert report.reassigned == 1
    loose.refresh_from_db()
    kept.refresh_from_db()
    assert loose.status == Status.OPEN and loose.rider is None
    assert kept.status == Status.PICKED_UP and kept.rider == rider  # cannot change hands
    decision = DispatchDecision.objects.get(order=loose, action=Action.REASSIGNED)
    assert decision.rider == rider and "offline" in decision.note
    assert decision.terms["by"] == "dispatcher"
    # Offered again at once, to someone else.
    assert loose.dispatch_offers.get(status=OfferStatus.PENDING).rider == spare
    risk = OrderRisk.objects.get(order=kept, resolved_at__isnull=True)
    assert "offline" in risk.reason
    # Delivered after all: the flag closes on the next cycle.
    rider_services.rider_set_online(user=rider, online=True)
    factories.set_position(rider, dx=3)
    for step in (Status.DELIVERING, Status.DELIVERED):
        order_services.order_transition(order=kept, to=step, actor=rider)
    assert cycle(campus).resolved == 1
    risk.refresh_from_db()
    assert risk.resolved_at is not None


def test_a_rider_without_a_fix_for_minutes_loses_them(auto, campus, carrier, spare):
    rider, _kept, loose = carrier
    factories.dispatch_settings(campus, mode=Mode.AUTO, stale_fix_minutes=5)
    now = timezone.now()
    factories.set_position(rider, dx=-1, at=now - timedelta(minutes=4))
    assert cycle(campus, now).reassigned == 0
    factories.set_position(rider, dx=-1, at=now - timedelta(minutes=6))
    assert cycle(campus, now).reassigned == 1
    loose.refresh_from_db()
    assert loose.status == Status.OPEN
    assert "stopped moving" in loose.dispatch_decisions.get(action=Action.REASSIGNED).note


def test_automatic_reassignment_can_be_switched_off(campus, carrier):
    rider, _kept, loose = carrier
    factories.dispatch_settings(campus, mode=Mode.AUTO, auto_reassign=False)
    rider_services.rider_set_online(user=rider, online=False)
    assert cycle(campus).reassigned == 0
    loose.refresh_from_db()
    assert loose.rider == rider


def test_a_rider_falling_far_behind_loses_the_order_they_would_deliver_late(campus, student, spare):
    factories.dispatch_settings(
        campus, mode=Mode.AUTO, behind_minutes=10, default_travel_mode=TravelMode.WALKING
    )
    slow = factories.make_rider(campus, gender="male")
    factories.set_position(slow, dx=3)
    order = factories.make_order(customer=student, campus=campus)
    order_services.order_accept(order=order, rider=slow)
    Order.objects.filter(pk=order.pk).update(promised_at=timezone.now() - timedelta(minutes=5))
    report = cycle(campus)
    assert report.reassigned == 1
    order.refresh_from_db()
    assert order.status == Status.OPEN
    decision = order.dispatch_decisions.get(action=Action.REASSIGNED)
    assert decision.note == "falling behind" and decision.terms["late_by_s"] > 600
    assert OrderRisk.objects.filter(order=order, resolved_at__isnull=True).exists()


def test_an_operator_moves_a_riders_orders_with_one_click(
    auto, campus, carrier, spare, admin_user, client
):
    rider, kept, loose = carrier
    client.force_login(admin_user)
    url = reverse(f"admin:dispatch_{RiderOnDuty._meta.model_name}_changelist")
    page = client.get(url)
    assert page.status_code == 200 and "carrier" in page.content.decode()
    response = client.post(
        url,
        {"action": "move_orders", "_selected_action": [rider.rider_profile.pk]},
        follow=True,
    )
    assert response.status_code == 200
    assert "1 orders back in dispatch" in response.content.decode()
    loose.refresh_from_db()
    assert loose.status == Status.OPEN
    decision = loose.dispatch_decisions.get(action=Action.REASSIGNED)
    assert decision.terms["by"] == "ops_admin"
    assert loose.events.last().actor == admin_user
    assert OrderRisk.objects.filter(order=kept, resolved_at__isnull=True).exists()


def test_orders_nobody_can_deliver_in_time_are_flagged_to_operators(campus, student):
    factories.dispatch_settings(campus, mode=Mode.AUTO, at_risk_margin_minutes=5)
    # Only a man is online and the order goes to the women's dorm.
    man = factories.make_rider(campus, gender="male")
    factories.set_position(man, dx=0)
    order = factories.make_order(customer=student, campus=campus, dropoff="D2")
    Order.objects.filter(pk=order.pk).update(promised_at=timezone.now() + timedelta(minutes=30))
    assert cycle(campus).at_risk == 0  # plenty of time yet
    Order.objects.filter(pk=order.pk).update(promised_at=timezone.now() + timedelta(minutes=4))
    reports = []

    def run_cycle():
        with TestCase.captureOnCommitCallbacks(execute=True):
            reports.append(cycle(campus))

    message = listen(broadcast.OPS_DISPATCH_GROUP, run_cycle)
    assert reports[0].at_risk == 1
    risk = OrderRisk.objects.get(order=order)
    assert risk.reason == "No rider can take it in time." and risk.predicted_at is None
    assert message["type"] == broadcast.AT_RISK_EVENT
    assert message["payload"]["number"] == order.number
    assert cycle(campus).at_risk == 0  # flagged once
    # A woman comes online and takes it: the flag is resolved.
    woman = factories.make_rider(campus, gender="female")
    factories.set_position(woman, dx=1)
    order_services.order_accept(order=order, rider=woman)
    assert cycle(campus).resolved == 1


def test_the_order_admin_page_shows_every_decision_and_its_terms(
    auto, campus, student, spare, admin_user, client
):
    order = factories.make_order(customer=student, campus=campus)
    cycle(campus)
    client.force_login(admin_user)
    html = client.get(reverse("admin:orders_order_change", args=[order.pk])).content.decode()
    assert "dispatch decisions" in html.lower()
    assert "to pickup (m)" in html and "Offered (chosen)" in html
    decisions = client.get(
        reverse("admin:dispatch_dispatchdecision_changelist") + f"?order__id__exact={order.pk}"
    )
    assert decisions.status_code == 200 and order.display_number in decisions.content.decode()
