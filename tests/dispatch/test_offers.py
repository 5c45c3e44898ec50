"""Auto dispatch: offers made by the cycle, accepted, declined, timing out and moving on, the
decision log, hybrid's fallback to the board, declines and credit, and the rider's API/pages."""

import asyncio
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from django.test import TestCase
from django.urls import reverse
from django.utils import timezone

from dispatch import selectors, services
from dispatch.models import Action, DispatchDecision, Mode, Offer, OfferStatus
from orders import services as order_services
from orders.errors import NotAllowed
from orders.status import Status
from riders import services as rider_services
from riders.selectors import rider_board
from tests import factories
from tracking import broadcast


@pytest.fixture
def auto(campus):
    return factories.dispatch_settings(campus, mode=Mode.AUTO, offer_timeout_seconds=30)


@pytest.fixture
def near(campus):
    """A rider standing by the parcel station (P1, x = -1)."""
    rider = factories.make_rider(campus, gender="male", username="near")
    factories.set_position(rider, dx=-1, dy=0)
    return rider


@pytest.fixture
def far(campus):
    """A rider at the far end of the road (x = 3)."""
    rider = factories.make_rider(campus, gender="male", username="far")
    factories.set_position(rider, dx=3, dy=0)
    return rider


def cycle(campus, now=None):
    return services.dispatch_cycle(campus=campus, now=now or timezone.now())


def pending(order):
    return Offer.objects.filter(order=order, status=OfferStatus.PENDING).first()


def test_the_cycle_offers_the_order_to_the_cheapest_rider_and_records_why(
    auto, campus, student, near, far
):
    order = factories.make_order(customer=student, campus=campus)  # P1 -> D3
    report = cycle(campus)
    assert (report.offers, report.matched_orders, report.riders) == (1, 1, 2)
    offer = pending(order)
    assert offer.rider == near
    assert offer.expires_at - offer.created_at == timedelta(seconds=30)
    order.refresh_from_db()
    assert order.status == Status.OPEN and order.rider is None
    decision = DispatchDecision.objects.get(order=order, action=Action.OFFERED)
    assert decision.rider == near and decision.mode == Mode.AUTO
    terms = decision.terms
    assert terms["cost"] == pytest.approx(decision.cost, abs=0.1)
    assert terms["pickup_distance_m"] < 100
    assert {"extra_travel_s", "delivery_s", "late_s", "load", "credit", "weights"} <= set(terms)
    assert terms["alternatives"][0]["rider"] == far.pk
    assert terms["alternatives"][0]["cost"] > terms["cost"]
    # The next cycle leaves a pending offer alone.
    assert cycle(campus).offers == 0


def test_grab_mode_makes_no_offers(campus, student, near):
    factories.make_order(customer=student, campus=campus)
    report = cycle(campus)
    assert report.mode == Mode.GRAB and report.offers == 0
    assert not Offer.objects.exists()


def test_accepting_the_offer_makes_the_rider_carry_the_order(auto, campus, student, near, api):
    order = factories.make_order(customer=student, campus=campus)
    cycle(campus)
    offer = pending(order)
    response = api(near).post(reverse("api:dispatch-offer-accept", args=[offer.pk]))
    assert response.status_code == 200, response.content
    assert response.json()["number"] == order.number
    order.refresh_from_db()
    offer.refresh_from_db()
    assert order.status == Status.ACCEPTED and order.rider == near
    assert offer.status == OfferStatus.ACCEPTED and offer.responded_at is not None
    assert list(DispatchDecision.objects.filter(order=order).values_list("action", flat=True)) == [
        Action.OFFERED,
        Action.ACCEPTED,
    ]
    again = api(near).post(reverse("api:dispatch-offer-accept", args=[offer.pk]))
    assert again.status_code == 409


def test_accepting_rechecks_eligibility(auto, campus, student, near):
    order = factories.make_order(customer=student, campus=campus)
    cycle(campus)
    offer = pending(order)
    rider_services.rider_set_online(user=near, online=False)
    near = type(near).objects.get(pk=near.pk)  # as the next request would load them
    with pytest.raises(NotAllowed, match="Go online"):
        services.offer_accept(offer=offer, rider=near)
    offer.refresh_from_db()
    order.refresh_from_db()
    assert offer.status == OfferStatus.WITHDRAWN
    assert order.status == Status.OPEN


def test_a_declined_order_goes_to_another_rider_next_cycle(auto, campus, student, near, far):
    order = factories.make_order(customer=student, campus=campus)
    cycle(campus)
    services.offer_decline(offer=pending(order), rider=near, reason="too heavy")
    assert pending(order) is None
    cycle(campus)
    assert pending(order).rider == far
    decisions = DispatchDecision.objects.filter(order=order).order_by("pk")
    assert [(d.action, d.rider_id) for d in decisions] == [
        (Action.OFFERED, near.pk),
        (Action.DECLINED, near.pk),
        (Action.OFFERED, far.pk),
    ]
    assert decisions[1].note == "too heavy"


def test_an_offer_times_out_and_moves_on(auto, campus, student, near, far, api):
    order = factories.make_order(customer=student, campus=campus)
    t0 = timezone.now()
    cycle(campus, t0)
    first = pending(order)
    assert first.rider == near
    cycle(campus, t0 + timedelta(seconds=10))
    assert pending(order) == first  # still waiting
    report = cycle(campus, t0 + timedelta(seconds=31))
    assert report.expired == 1 and report.offers == 1
    first.refresh_from_db()
    assert first.status == OfferStatus.EXPIRED
    assert pending(order).rider == far
    # The first rider answering now is too late.
    response = api(near).post(reverse("api:dispatch-offer-accept", args=[first.pk]))
    assert response.status_code == 409


def test_an_offer_whose_order_was_taken_otherwise_is_withdrawn(auto, campus, student, near):
    order = factories.make_order(customer=student, campus=campus)
    cycle(campus)
    offer = pending(order)
    # An operator cancels the order (or someone scans it) before the rider answers.
    order_services.order_transition(order=order, to=Status.CANCELLED, actor=None)
    cycle(campus)
    offer.refresh_from_db()
    assert offer.status == OfferStatus.WITHDRAWN
    assert order.dispatch_decisions.filter(action=Action.WITHDRAWN).exists()
    with pytest.raises(services.OfferGone):
        services.offer_accept(offer=offer, rider=near)


def test_an_answer_after_the_deadline_expires_the_offer(auto, campus, student, near):
    order = factories.make_order(customer=student, campus=campus)
    cycle(campus)
    offer = pending(order)
    with pytest.raises(services.OfferGone, match="expired"):
        services.offer_accept(offer=offer, rider=near, now=offer.expires_at)
    offer.refresh_from_db()
    assert offer.status == OfferStatus.EXPIRED
    assert order.dispatch_decisions.filter(action=Action.EXPIRED).exists()


def test_repeated_declines_lower_the_credit_dispatch_weighs(auto, campus, student, near):
    now = timezone.now()
    profile = near.rider_profile
    before = selectors.rider_dispatch_credit(profile, now=now)
    declined = []
    for n in range(selectors.FREE_DECLINES + 3):
        if n == selectors.FREE_DECLINES:
            # The first few a week are free.
            assert selectors.rider_dispatch_credit(profile, now=timezone.now()) == before
        order = factories.make_order(customer=student, campus=campus)
        cycle(campus)
        services.offer_decline(offer=pending(order), rider=near)
        declined.append(order)
    after = selectors.rider_dispatch_credit(profile, now=timezone.now())
    assert after == before - 3 * selectors.DECLINE_PENALTY_POINTS
    record = selectors.rider_offer_record(near, since=now - timedelta(minutes=1))
    assert record.offered == record.declined == selectors.FREE_DECLINES + 3
    # The dispatcher weighs the lower score: a twin standing at the same place wins.
    twin = factories.make_rider(campus, gender="male")
    factories.set_position(twin, dx=-1, dy=0)
    snap = selectors.dispatch_snapshot(campus, now=timezone.now())
    assert {c.id: c.credit for c in snap.couriers}[near.pk] == after
    for old in declined:  # otherwise the twin takes one of those and leaves the new one to near
        order_services.order_transition(order=old, to=Status.CANCELLED, actor=None)
    order = factories.make_order(customer=student, campus=campus)
    cycle(campus)
    assert pending(order).rider == twin


def test_hybrid_sends_an_order_to_the_board_after_n_unanswered_offers(campus, student, near, far):
    factories.dispatch_settings(campus, mode=Mode.HYBRID, hybrid_fallback_offers=2)
    third = factories.make_rider(campus, gender="male")
    order = factories.make_order(customer=student, campus=campus)
    assert rider_board(third) == []
    t0 = timezone.now()
    cycle(campus, t0)
    services.offer_decline(offer=pending(order), rider=pending(order).rider)
    cycle(campus, t0 + timedelta(seconds=1))
    assert rider_board(third) == []
    report = cycle(campus, t0 + timedelta(seconds=40))  # the second offer expires
    assert report.on_board == 1 and report.offers == 0
    assert order.dispatch_decisions.filter(action=Action.FALLBACK).count() == 1
    assert rider_board(third) == [order]
    # No more offers: it is the board's now, and anyone eligible may grab it.
    assert cycle(campus, t0 + timedelta(seconds=80)).offers == 0


# --- the rider's side: API and pages --------------------------------------------------------


def test_offer_api_lists_and_guards_offers(auto, campus, student, near, far, api, operator):
    order = factories.make_order(customer=student, campus=campus)
    cycle(campus)
    offer = pending(order)
    listing = api(near).get(reverse("api:dispatch-offers"))
    assert listing.status_code == 200
    [row] = listing.json()
    assert row["number"] == order.number and 0 < row["seconds_left"] <= 30
    assert api(far).get(reverse("api:dispatch-offers")).json() == []
    accept = reverse("api:dispatch-offer-accept", args=[offer.pk])
    decline = reverse("api:dispatch-offer-decline", args=[offer.pk])
    assert api().post(accept).status_code == 401
    assert api(student).post(accept).status_code == 403
    assert api(far).post(accept).status_code == 404  # not theirs: no hint it exists
    assert api(near).get(accept).status_code == 405
    bad = api(near).post(decline, {"reason": "x" * 500}, format="json")
    assert bad.status_code == 400 and "reason" in bad.json()
    assert api(near).post(decline, {"reason": "no"}, format="json").json()["status"] == "declined"


def test_the_board_shows_offers_with_a_countdown_and_answers_them(
    auto, campus, student, near, client
):
    order = factories.make_order(customer=student, campus=campus)
    cycle(campus)
    offer = pending(order)
    client.force_login(near)
    html = client.get(reverse("riders:board")).content.decode()
    assert f'data-offer="{offer.pk}"' in html and "data-expires-at" in html
    assert reverse("dispatch:offer_accept", args=[offer.pk]) in html
    assert client.get(reverse("dispatch:offer_accept", args=[offer.pk])).status_code == 405
    response = client.post(reverse("dispatch:offer_accept", args=[offer.pk]))
    assert response.status_code == 302
    order.refresh_from_db()
    assert order.rider == near


def test_the_offer_reaches_the_riders_socket(auto, campus, student, near):
    """The push goes to the rider's group on commit, as a "dispatch.offer" message."""
    order = factories.make_order(customer=student, campus=campus)

    def run_cycle():
        with TestCase.captureOnCommitCallbacks(execute=True):
            cycle(campus)

    message = listen(broadcast.rider_group(near.pk), run_cycle)
    assert message["type"] == broadcast.OFFER_EVENT
    payload = message["payload"]
    assert payload["type"] == "offer" and payload["number"] == order.number
    assert payload["id"] == pending(order).pk
    assert "alternatives" not in payload["terms"]  # other riders' costs stay private


def listen(group: str, action) -> dict:
    """Join `group` on the channel layer, run `action` (sync, in this thread: it sees the test's
    database), return the first message the group gets. One event loop throughout, as the Redis
    pub/sub layer requires."""

    async def scenario():
        layer = get_channel_layer()
        channel = await layer.new_channel()
        await layer.group_add(group, channel)
        try:
            await sync_to_async(action, thread_sensitive=True)()
            return await asyncio.wait_for(layer.receive(channel), timeout=20)
        finally:
            await layer.group_discard(group, channel)

    return async_to_sync(scenario)()
