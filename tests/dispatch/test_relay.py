"""Transfer-station relays: splitting an order into two legs, eligibility with a relay, the
hand-over by each other's code, the timeline, pay per leg, and escalation of a missing leg 2."""

from datetime import timedelta
from unittest import mock

import pytest
from django.utils import timezone

from dispatch import relay
from dispatch import services as dispatch
from dispatch.models import Mode, Offer, OrderRisk, RelayLeg
from orders import rules
from orders import services as order_services
from orders.errors import NotAllowed
from orders.models import Order
from orders.status import Status
from payments import selectors as money
from tests import factories

pytestmark = pytest.mark.django_db


def _at_station(order, man):
    relay.relay_plan(order=order)
    order_services.order_accept(order=order, rider=man)
    order_services.order_transition(order=order, to=Status.PICKED_UP, actor=man)
    return relay.relay_arrive(order=Order.objects.get(pk=order.pk), rider=man)


def test_an_order_to_a_single_gender_dorm_splits_into_two_legs_through_its_station(to_women):
    leg1, leg2 = relay.relay_plan(order=to_women)
    station = to_women.dropoff_building.transfer_stations.get()
    assert (leg1.number, leg2.number) == (1, 2)
    assert leg1.station == leg2.station == station
    assert leg2.window_start > leg1.created_at
    assert leg2.window_end - leg2.window_start == relay.HANDOFF_WINDOW
    assert leg1.handoff_code != leg2.handoff_code
    assert relay.relay_plan(order=to_women) == (leg1, leg2)  # idempotent
    assert RelayLeg.objects.filter(order=to_women).count() == 2
    assert "Relay planned" in to_women.events.last().note


def test_an_order_to_a_building_anyone_may_enter_needs_no_relay(campus, student):
    order = factories.make_order(customer=student, campus=campus, dropoff="D3")
    assert relay.relay_plan(order=order) is None
    assert not RelayLeg.objects.exists()


def test_a_man_may_take_leg_one_only_once_a_relay_is_planned(to_women, man, woman):
    assert "cannot enter" in rules.rider_refusal(man, to_women)
    assert rules.rider_refusal(woman, to_women) is None
    relay.relay_plan(order=to_women)
    order = Order.objects.get(pk=to_women.pk)
    assert rules.rider_refusal(man, order) is None
    # Leg 2 stays with the building's gender.
    assert relay.leg2_refusal(man, order) is not None
    assert relay.leg2_refusal(woman, order) is None


def test_the_riders_hand_over_by_each_others_code_and_the_second_rider_carries_it_on(
    to_women, man, woman, student
):
    order = _at_station(to_women, man)
    assert order.status == Status.AT_STATION
    relay.relay_leg2_assign(order=order, rider=woman)
    leg1, leg2 = relay.relay_legs(order)
    assert relay.handoff_code_for(order, man) == leg1.handoff_code

    with pytest.raises(relay.HandoffCodeRefused):
        relay.handoff_confirm(order=order, rider=woman, code=leg2.handoff_code)  # her own
    order = relay.handoff_confirm(order=order, rider=woman, code=leg1.handoff_code)
    assert order.status == Status.AT_STATION  # one code in
    order = relay.handoff_confirm(order=order, rider=man, code=leg2.handoff_code)
    assert order.status == Status.RELAY_ACCEPTED
    assert Order.objects.get(pk=order.pk).rider == woman

    order = order_services.order_transition(order=order, to=Status.DELIVERING, actor=woman)
    order = order_services.order_transition(order=order, to=Status.DELIVERED, actor=woman)
    statuses = list(order.events.values_list("new_status", flat=True))
    assert Status.AT_STATION in statuses and Status.RELAY_ACCEPTED in statuses


def test_only_the_two_relay_riders_can_confirm_and_a_third_cannot_take_over(
    campus, to_women, man, woman
):
    order = _at_station(to_women, man)
    relay.relay_leg2_assign(order=order, rider=woman)
    other_woman = factories.make_rider(campus, gender="female")
    leg1, leg2 = relay.relay_legs(order)
    with pytest.raises(NotAllowed):
        relay.handoff_confirm(order=order, rider=other_woman, code=leg1.handoff_code)
    with pytest.raises(NotAllowed):
        order_services.order_transition(order=order, to=Status.RELAY_ACCEPTED, actor=other_woman)
    with pytest.raises(NotAllowed):
        relay.relay_leg2_assign(order=order, rider=other_woman)  # already taken


def test_leg_two_goes_to_a_rider_the_building_admits(to_women, man, campus):
    order = _at_station(to_women, man)
    other_man = factories.make_rider(campus, gender="male")
    with pytest.raises(NotAllowed):
        relay.relay_leg2_assign(order=order, rider=other_man)


def test_each_rider_is_paid_for_their_leg(to_women, man, woman, student):
    order = _at_station(to_women, man)
    relay.relay_leg2_assign(order=order, rider=woman)
    leg1, leg2 = relay.relay_legs(order)
    relay.handoff_confirm(order=order, rider=woman, code=leg1.handoff_code)
    order = relay.handoff_confirm(order=order, rider=man, code=leg2.handoff_code)
    order = order_services.order_transition(order=order, to=Status.DELIVERING, actor=woman)
    order = order_services.order_transition(order=order, to=Status.DELIVERED, actor=woman)
    order_services.order_transition(order=order, to=Status.COMPLETED, actor=student)
    his, hers = money.earnings_balance(man), money.earnings_balance(woman)
    assert his > 0 and hers > 0
    total = his + hers
    expected_hers = int(total * leg2.distance_m / (leg1.distance_m + leg2.distance_m))
    assert hers == expected_hers


def test_the_dispatcher_plans_a_relay_gives_leg_two_and_escalates_when_nobody_is_found(
    campus, to_women, man, woman
):
    factories.dispatch_settings(campus, mode=Mode.AUTO)
    busy = factories.make_order(customer=factories.make_user(), campus=campus, dropoff="D3")
    order_services.order_accept(order=busy, rider=woman)  # she is busy: capacity 1 below
    factories.dispatch_settings(campus, mode=Mode.AUTO, rider_capacity=1)
    now = timezone.now()
    dispatch.dispatch_cycle(campus=campus, now=now)
    assert RelayLeg.objects.filter(order=to_women).count() == 2
    offer = Offer.objects.get(order=to_women)
    assert offer.rider == man  # leg 1: he may take it to the station
    dispatch.offer_accept(offer=offer, rider=man, now=now)
    order = Order.objects.get(pk=to_women.pk)
    order_services.order_transition(order=order, to=Status.PICKED_UP, actor=man)
    relay.relay_arrive(order=order, rider=man, now=now)
    # She is still full: leg 2 waits, then goes to operators.
    dispatch.dispatch_cycle(campus=campus, now=now + timedelta(minutes=1))
    assert not OrderRisk.objects.filter(order=to_women).exists()
    dispatch.dispatch_cycle(campus=campus, now=now + timedelta(minutes=4))
    risk = OrderRisk.objects.get(order=to_women)
    assert "No relay rider" in risk.reason
    assert RelayLeg.objects.get(order=to_women, number=2).escalated_at is not None
    # She delivers her order: the next cycle gives her leg 2.
    for step in (Status.PICKED_UP, Status.DELIVERING, Status.DELIVERED):
        order_services.order_transition(order=busy, to=step, actor=woman)
    dispatch.dispatch_cycle(campus=campus, now=now + timedelta(minutes=5))
    assert RelayLeg.objects.get(order=to_women, number=2).rider == woman


def test_a_relay_is_planned_only_while_an_admitted_rider_will_have_room_for_leg_two(
    campus, student, to_women, man, woman
):
    # She is full (capacity 1) and will be free after one short delivery: one relay can wait
    # for her, a second would leave its leg-1 rider standing at the station.
    busy = factories.make_order(customer=factories.make_user(), campus=campus, dropoff="D3")
    order_services.order_accept(order=busy, rider=woman)
    factories.dispatch_settings(campus, mode=Mode.AUTO, rider_capacity=1)
    second = factories.make_order(customer=student, campus=campus, dropoff="D2")
    now = timezone.now()
    assert relay.relays_plan_open(campus=campus, now=now) == 1
    assert RelayLeg.objects.filter(order=to_women).count() == 2  # the older order first
    assert not RelayLeg.objects.filter(order=second).exists()
    # Leg 2's slot starts at leg 1's expected arrival: found, at the pickup, then the ride.
    leg2 = RelayLeg.objects.get(order=to_women, number=2)
    assert now + relay.LEG1_START < leg2.window_start < now + timedelta(minutes=15)
    # Once she is free (and the first relay has its leg 2), the second may go in two legs too.
    for step in (Status.PICKED_UP, Status.DELIVERING, Status.DELIVERED):
        order_services.order_transition(order=busy, to=step, actor=woman)
    relay.relay_leg2_assign(order=to_women, rider=woman)
    assert relay.relays_plan_open(campus=campus, now=now + timedelta(minutes=6)) == 1
    assert RelayLeg.objects.filter(order=second).count() == 2


def test_no_relay_is_planned_when_no_admitted_rider_will_have_room_in_time(
    campus, to_women, man, woman
):
    busy = factories.make_order(customer=factories.make_user(), campus=campus, dropoff="D3")
    order_services.order_accept(order=busy, rider=woman)
    factories.dispatch_settings(campus, mode=Mode.AUTO, rider_capacity=1)
    # Her next drop-off is planned an hour away (she is far off the campus's paths, say).
    with (
        mock.patch("dispatch.relay._leg1_arrival", return_value=timezone.now()),
        mock.patch("dispatch.selectors.rider_route") as route,
    ):
        later = timezone.now() + timedelta(hours=1)
        route.return_value.stops = [mock.Mock(kind="delivery", eta=later)]
        assert relay.relays_plan_open(campus=campus, now=timezone.now()) == 0
    assert not RelayLeg.objects.exists()


def test_the_leg_two_rider_hears_of_her_relay_at_once(campus, to_women, man, woman):
    from django.test import TestCase

    from tests.dispatch.test_offers import listen
    from tracking import broadcast

    _at_station(to_women, man)

    def assign():
        with TestCase.captureOnCommitCallbacks(execute=True):
            dispatch.dispatch_cycle(campus=campus, now=timezone.now())

    message = listen(broadcast.rider_group(woman.pk), assign)
    assert message["type"] == broadcast.BOARD_EVENT
    assert message["payload"] == {
        "type": "board",
        "number": to_women.number,
        "reason": "relay_leg2",
    }
    assert RelayLeg.objects.get(order=to_women, number=2).rider == woman


def test_the_riders_hand_over_through_the_api(api, to_women, man, woman):
    from django.urls import reverse

    relay.relay_plan(order=to_women)
    order_services.order_accept(order=to_women, rider=man)
    order_services.order_transition(order=to_women, to=Status.PICKED_UP, actor=man)
    url = reverse("api:dispatch-relay-arrive", args=[to_women.number])
    arrived = api(man).post(url)
    assert arrived.status_code == 200, arrived.json()
    assert arrived.json()["status"] == Status.AT_STATION
    relay.relay_leg2_assign(order=to_women, rider=woman)
    handoff = reverse("api:dispatch-relay-handoff", args=[to_women.number])
    his = api(man).get(handoff).json()
    hers = api(woman).get(handoff).json()
    assert (his["leg"], hers["leg"]) == (1, 2) and his["code"] != hers["code"]
    assert api(woman).post(handoff, {"code": "000000x"}).status_code == 400
    assert api(woman).post(handoff, {"code": his["code"]}).status_code == 200
    response = api(man).post(handoff, {"code": hers["code"]})
    assert response.json()["status"] == Status.RELAY_ACCEPTED
    stranger = factories.make_rider(to_women.campus, gender="female")
    assert api(stranger).get(handoff).status_code == 404


def test_in_grab_mode_a_waiting_order_is_relayed_and_shows_on_the_other_pools_board(
    campus, to_women, man, woman
):
    from riders.selectors import rider_board

    factories.dispatch_settings(campus, mode=Mode.GRAB)
    assert to_women not in rider_board(man)
    now = timezone.now()
    dispatch.dispatch_cycle(campus=campus, now=now)
    assert not RelayLeg.objects.exists()  # she may still grab it
    dispatch.dispatch_cycle(campus=campus, now=now + timedelta(minutes=6))
    assert RelayLeg.objects.filter(order=to_women).count() == 2
    board = rider_board(man)
    assert [o.pk for o in board].count(to_women.pk) == 1
    order_services.order_accept(order=Order.objects.get(pk=to_women.pk), rider=man)
    order = Order.objects.get(pk=to_women.pk)
    order_services.order_transition(order=order, to=Status.PICKED_UP, actor=man)
    relay.relay_arrive(order=order, rider=man, now=now + timedelta(minutes=10))
    dispatch.dispatch_cycle(campus=campus, now=now + timedelta(minutes=10))
    assert RelayLeg.objects.get(order=to_women, number=2).rider == woman


def test_leg_ones_route_leads_to_the_station_not_the_dorm(to_women, man):
    from campus.geo import haversine_m
    from dispatch.selectors import rider_route

    relay.relay_plan(order=to_women)
    order_services.order_accept(order=Order.objects.get(pk=to_women.pk), rider=man)
    route = rider_route(man)
    (drop,) = [stop for stop in route.stops if stop.kind == "delivery"]
    station = to_women.dropoff_building.transfer_stations.get()
    assert drop.point == (station.location.x, station.location.y)
    end = route.path[-1]
    dorm = to_women.dropoff_building
    assert haversine_m(*end, *drop.point) < haversine_m(*end, dorm.lng, dorm.lat)
