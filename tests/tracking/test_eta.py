"""ETA maths on the small test campus (tests/factories.py), and when estimates are pushed.

The campus: buildings on an east-west road at LAT0, each entrance DY/2 north of its road node;
P1 at x=-1, D1 at x=1, D3 at x=3 (x in DX). A rider standing on the road node under P1 who has
the parcel walks 4 DX along the road and DY/2 up to D3's door.
"""

import math
import re
from datetime import UTC, datetime, timedelta
from unittest import mock

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.test import Client

from campus.geo import haversine_m
from campus_errand.asgi import application
from orders import services
from orders.models import ErrandKindSetting, Order
from orders.selectors import order_detail_qs
from orders.status import Status
from tests import factories
from tests.factories import DX, DY, LAT0, LNG0
from tracking import broadcast, eta

NOW = datetime(2026, 3, 2, 4, 0, tzinfo=UTC)
ROAD = haversine_m(LNG0, LAT0, LNG0 + DX, LAT0)  # metres per DX along the road
SPUR = haversine_m(LNG0, LAT0, LNG0, LAT0 + DY / 2)  # a door to its road node


def at(x: float, y: float = 0.0, when: datetime = NOW) -> dict:
    """A live position at (LNG0 + x DX, LAT0 + y DY)."""
    return {"rider": 0, "lat": LAT0 + y * DY, "lng": LNG0 + x * DX, "recorded_at": when.isoformat()}


def moving_samples(speed_mps: float, seconds: int = 60, step: int = 5) -> list:
    """A rider riding east along the road at `speed_mps` until NOW."""
    per_deg = ROAD / DX
    return [
        (
            (NOW - timedelta(seconds=seconds - i)).timestamp(),
            LNG0 - 2 * DX + speed_mps * i / per_deg,
            LAT0,
        )
        for i in range(0, seconds + 1, step)
    ]


def fresh(order) -> Order:
    return order_detail_qs().get(pk=order.pk)


@pytest.fixture
def picked_up(order, rider_male):
    order = services.order_accept(order=order, rider=rider_male)
    return services.order_transition(order=order, to=Status.PICKED_UP, actor=rider_male)


@pytest.fixture(autouse=True)
def _no_dispatch_plan(monkeypatch):
    """FIFO stops unless a test gives a plan (dispatch's planner is tested in its own app)."""
    monkeypatch.setattr(eta, "rider_plan", lambda rider_id: None)


# --- speed -------------------------------------------------------------------------------------


def test_recent_speed_is_what_the_rider_covered_while_moving():
    assert eta.recent_speed(moving_samples(3.0)) == pytest.approx(3.0, rel=0.01)
    standing = [(NOW.timestamp() - 60 + 5 * i, LNG0, LAT0) for i in range(13)]
    assert eta.recent_speed(standing) is None
    # A stop at a door does not drag the speed down: only moving stretches count.
    waiting = moving_samples(3.0)
    last = waiting[-1]
    waiting += [(last[0] + 30, last[1], last[2]), (last[0] + 60, last[1], last[2])]
    assert eta.recent_speed(waiting) == pytest.approx(3.0, rel=0.01)
    assert eta.recent_speed(moving_samples(30.0)) == eta.MAX_SPEED  # a GPS jump, not a rider


def test_live_positions_are_sampled_into_a_short_history(rider_male):
    for i in range(4):
        when = NOW + timedelta(seconds=10 * i)
        eta.speed_observe(rider_male.pk, at(-2 + 0.3 * i, when=when))
    samples = eta.speed_observe(rider_male.pk, at(-2 + 0.9, when=NOW + timedelta(seconds=30)))
    assert len(samples) == 4  # the same fix twice is one sample
    old = eta.speed_observe(rider_male.pk, at(0, when=NOW + timedelta(seconds=1000)))
    assert len(old) == 1  # older than the window: forgotten


# --- the estimate ------------------------------------------------------------------------------


def test_eta_is_the_remaining_path_over_the_recent_speed(picked_up):
    found = eta.estimate(fresh(picked_up), position=at(-1), samples=moving_samples(3.0), now=NOW)
    metres = 4 * ROAD + SPUR
    assert found.remaining_m == pytest.approx(metres, abs=2)
    assert found.speed_source == "recent" and found.stops_before == 0
    assert found.at.timestamp() - NOW.timestamp() == pytest.approx(metres / 3.0, abs=2)
    assert found.low.timestamp() - NOW.timestamp() == pytest.approx(metres / 3.75, abs=2)
    assert found.high.timestamp() - NOW.timestamp() == pytest.approx(metres / 2.25, abs=2)


def test_a_rider_between_two_junctions_is_placed_on_the_path(picked_up):
    # Half way between the road nodes under D1 and D2: on towards D3, not back to a junction.
    found = eta.estimate(fresh(picked_up), position=at(1.5), samples=[], now=NOW)
    assert found.remaining_m == pytest.approx(1.5 * ROAD + SPUR, abs=2)
    # A little off the road (GPS): the straight step onto it counts too.
    beside = eta.estimate(fresh(picked_up), position=at(1.5, 0.1), samples=[], now=NOW)
    assert beside.remaining_m == pytest.approx(1.5 * ROAD + SPUR + SPUR / 5, abs=2)
    route = eta.remaining_route(fresh(picked_up), at(1.5, 0.1))
    assert route[0] == pytest.approx([LAT0 + 0.1 * DY, LNG0 + 1.5 * DX], abs=1e-6)
    assert route[1] == pytest.approx([LAT0, LNG0 + 1.5 * DX], abs=1e-6)  # onto the road
    assert route[-1] == pytest.approx(
        [picked_up.dropoff_building.lat, picked_up.dropoff_building.lng], abs=1e-6
    )


def test_without_recent_movement_the_campus_speed_is_used_with_a_wider_range(picked_up):
    found = eta.estimate(fresh(picked_up), position=at(-1), samples=[], now=NOW)
    metres = 4 * ROAD + SPUR
    assert found.speed_source == "default" and found.speed_mps == eta.WALKING_MPS
    assert found.at.timestamp() - NOW.timestamp() == pytest.approx(metres / 1.3, abs=2)
    assert found.low.timestamp() - NOW.timestamp() == pytest.approx(metres / (1.3 * 1.4), abs=2)
    assert found.high.timestamp() - NOW.timestamp() == pytest.approx(metres / (1.3 * 0.6), abs=2)


def test_the_campus_speed_comes_from_the_dispatch_settings(picked_up, campus):
    factories.dispatch_settings(campus, default_travel_mode="cycling", cycling_speed_mps=5.0)
    found = eta.estimate(fresh(picked_up), position=at(-1), samples=[], now=NOW)
    assert found.speed_mps == 5.0


def test_the_ticker_reads_every_riders_position_in_one_round_trip(rider_male, campus):
    from tracking import live

    other = factories.make_rider(campus, gender="female")
    factories.set_position(rider_male, dx=1)
    cache = live.shared_cache()
    with mock.patch.object(cache, "get_many", wraps=cache.get_many) as get_many:
        found = eta.positions_of([rider_male.pk, other.pk])
    assert list(found) == [rider_male.pk]  # she has no live position
    assert found[rider_male.pk] == live.position_get(rider_male.pk)
    assert get_many.call_count == 1 and len(get_many.call_args.args[0]) == 2


def test_a_ticker_round_reads_the_cache_once_and_loads_each_setting_once(campus, student):
    """Speed samples, estimates last told and settings in one read, written back in one; a
    setting missing from the cache is loaded once per round, not once per order."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tracking import live

    riders = [factories.make_rider(campus, gender="male") for _ in range(3)]
    numbers = []
    for i, rider in enumerate(riders):
        placed = factories.make_order(customer=student, campus=campus)
        services.order_accept(order=placed, rider=rider)
        factories.set_position(rider, dx=i)
        numbers.append(placed.number)
    cache = live.shared_cache()
    with (
        mock.patch.object(cache, "get_many", wraps=cache.get_many) as get_many,
        mock.patch.object(cache, "set_many", wraps=cache.set_many) as set_many,
        CaptureQueriesContext(connection) as queries,
    ):
        pushed = eta.tick(numbers, now=NOW)
    loads = [q for q in queries if "dispatch" in q["sql"].lower()]
    assert len(pushed) == 3
    assert get_many.call_count == 2  # the positions, then samples + estimates + settings
    assert set_many.call_count == 1
    assert len(loads) <= 1  # the campus's dispatch settings, once for the whole round


def test_a_ticker_round_lets_the_event_loop_in_every_few_orders(campus, student, monkeypatch):
    """A round runs in a thread beside the sockets' loop and must not hold the GIL from it
    (tracking.threads.yield_to_loop): it yields between chunks of rows and of orders."""
    numbers = []
    for i in range(eta.YIELD_EVERY * 2 + 1):
        if i % 3 == 0:  # a rider carries three orders at most
            rider = factories.make_rider(campus, gender="male")
            factories.set_position(rider, dx=i % 4)
        placed = factories.make_order(customer=student, campus=campus)
        services.order_accept(order=placed, rider=rider)
        numbers.append(placed.number)
    yields = []
    monkeypatch.setattr(eta, "yield_to_loop", lambda: yields.append(1))
    eta.tick(numbers, now=NOW)
    orders = len(numbers)
    assert len(yields) >= orders // eta.YIELD_EVERY * 2  # rows and estimates alike


def test_a_rounds_pushes_are_paced(monkeypatch):
    pushed, pauses = [], []

    async def push(layer, groups, message):
        pushed.append(groups[0])

    async def sleep(seconds):
        pauses.append(seconds)

    monkeypatch.setattr(broadcast, "push", push)
    monkeypatch.setattr(eta, "_pause", sleep)
    messages = [(str(n), {"type": "order.eta"}) for n in range(eta.PUSH_BATCH * 2 + 1)]
    async_to_sync(eta._push_paced)(None, messages)
    assert pushed == [broadcast.order_group(n) for n, _ in messages]
    assert pauses == [eta.PUSH_PAUSE_S] * 2


def test_before_pickup_the_handling_time_at_the_pickup_counts(order, rider_male, campus):
    ErrandKindSetting.objects.create(
        campus=campus, kind="parcel", handling_minutes=10, photo_required=False
    )
    services.order_accept(order=order, rider=rider_male)
    found = eta.estimate(fresh(order), position=at(-1), samples=moving_samples(3.0), now=NOW)
    # Up to P1's door, back down to the road, along it and up to D3's door.
    metres = SPUR + SPUR + 4 * ROAD + SPUR
    assert found.remaining_m == pytest.approx(metres, abs=2)
    assert found.at.timestamp() - NOW.timestamp() == pytest.approx(metres / 3.0 + 600, abs=2)
    # The range: faster with half the handling time, slower with half as much again.
    assert found.low.timestamp() - NOW.timestamp() == pytest.approx(metres / 3.75 + 300, abs=2)
    assert found.high.timestamp() - NOW.timestamp() == pytest.approx(metres / 2.25 + 900, abs=2)


def test_stops_before_yours_are_the_orders_the_rider_accepted_earlier(
    campus, student, other_student, rider_male
):
    first = factories.make_order(customer=other_student, campus=campus, dropoff="D1")
    mine = factories.make_order(customer=student, campus=campus, dropoff="D3")
    for order in (first, mine):
        services.order_accept(order=order, rider=rider_male)
        services.order_transition(order=order, to=Status.PICKED_UP, actor=rider_male)
    others = list(Order.objects.filter(rider=rider_male).select_related("dropoff_building"))
    found = eta.estimate(
        fresh(mine), position=at(-1), others=others, samples=moving_samples(3.0), now=NOW
    )
    # To D1's door and back to the road, on to D3's door; a minute handing over at D1.
    metres = 2 * ROAD + SPUR + SPUR + 2 * ROAD + SPUR
    assert found.stops_before == 1
    assert found.remaining_m == pytest.approx(metres, abs=2)
    expected = metres / 3.0 + eta.STOP_SECONDS
    assert found.at.timestamp() - NOW.timestamp() == pytest.approx(expected, abs=2)
    # The first customer's order has no stop before it.
    theirs = eta.estimate(fresh(first), position=at(-1), others=others, now=NOW)
    assert theirs.stops_before == 0


def test_a_dispatch_plan_orders_the_stops_when_there_is_one(
    campus, student, other_student, rider_male
):
    first = factories.make_order(customer=other_student, campus=campus, dropoff="D1")
    mine = factories.make_order(customer=student, campus=campus, dropoff="D3")
    for order in (first, mine):
        services.order_accept(order=order, rider=rider_male)
        services.order_transition(order=order, to=Status.PICKED_UP, actor=rider_male)
    d1, d3 = (factories.building(campus, c) for c in ("D1", "D3"))
    plan = [(mine.pk, "delivery", d3.lng, d3.lat), (first.pk, "delivery", d1.lng, d1.lat)]
    others = list(Order.objects.filter(rider=rider_male).select_related("dropoff_building"))
    found = eta.estimate(fresh(mine), position=at(-1), others=others, plan=plan, now=NOW)
    assert found.stops_before == 0  # dispatch sends the rider to this customer first
    later = eta.estimate(fresh(first), position=at(-1), others=others, plan=plan, now=NOW)
    assert later.stops_before == 1


def test_the_merchants_preparation_time_holds_the_rider_at_the_pickup(
    order, rider_male, monkeypatch
):
    ready = NOW + timedelta(minutes=20)
    monkeypatch.setattr(eta, "PREP_PROVIDERS", [lambda o: ready])
    services.order_accept(order=order, rider=rider_male)
    found = eta.estimate(fresh(order), position=at(-1), samples=moving_samples(3.0), now=NOW)
    onwards = SPUR + 4 * ROAD + SPUR  # from P1's door to D3's
    assert found.waiting_for == "merchant"
    assert found.at.timestamp() == pytest.approx(ready.timestamp() + onwards / 3.0, abs=2)


@pytest.mark.parametrize(
    ("promise_minutes", "risk"), [(30, "on_time"), (3, "at_risk"), (2, "late")]
)
def test_the_promised_time_and_whether_it_is_at_risk(promise_minutes, risk, picked_up):
    Order.objects.filter(pk=picked_up.pk).update(
        promised_at=NOW + timedelta(minutes=promise_minutes)
    )
    # ~434 m at 3 m/s: 2.4 min, at the slow end of the range 3.2 min.
    found = eta.estimate(fresh(picked_up), position=at(-1), samples=moving_samples(3.0), now=NOW)
    assert found.risk == risk
    assert found.payload()["promised_at"] == (NOW + timedelta(minutes=promise_minutes)).isoformat()


def test_there_is_no_eta_without_a_rider_or_after_the_end(order, rider_male, student, campus):
    assert eta.estimate(fresh(order), position=None, now=NOW) is None  # open
    services.order_accept(order=order, rider=rider_male)
    for to in (Status.PICKED_UP, Status.DELIVERING, Status.DELIVERED):
        services.order_transition(order=order, to=to, actor=rider_male)
    assert eta.estimate(fresh(order), position=at(2), now=NOW) is None
    queue = factories.make_errand(customer=student, campus=campus, kind="queue", pickup="C1")
    Order.objects.filter(pk=queue.pk).update(opens_at=None)
    services.order_accept(order=fresh(queue), rider=rider_male)
    assert eta.estimate(fresh(queue), position=at(-2), now=NOW) is None  # the rider stays there


def test_an_old_position_widens_the_range(picked_up):
    old = at(-1, when=NOW - timedelta(minutes=3))
    fresh_found = eta.estimate(fresh(picked_up), position=at(-1), samples=[], now=NOW)
    stale_found = eta.estimate(fresh(picked_up), position=old, samples=[], now=NOW)
    assert stale_found.at == fresh_found.at
    assert (stale_found.high - fresh_found.high).total_seconds() == pytest.approx(180, abs=1)


# --- what is pushed, and when ------------------------------------------------------------------


def test_estimates_are_pushed_only_when_they_change_meaningfully(picked_up, rider_male):
    factories.set_position(rider_male, dx=-1)
    first = eta.tick([picked_up.number])
    assert [n for n, _ in first] == [picked_up.number]
    assert first[0][1]["type"] == broadcast.ETA_EVENT
    assert first[0][1]["payload"]["route"][0] == pytest.approx([LAT0, LNG0 - DX], abs=1e-6)
    assert eta.tick([picked_up.number]) == []  # nothing moved
    factories.set_position(rider_male, dx=-1.05)  # 5 m: the ETA barely moves
    assert eta.tick([picked_up.number]) == []
    # Most of the way along the drawn path: a new estimate; the page trims the path itself.
    factories.set_position(rider_male, dx=2.5)
    pushed = eta.tick([picked_up.number])
    payload = pushed[0][1]["payload"]
    assert payload["eta"]["remaining_m"] < 200 and "route" not in payload


def test_a_new_path_is_pushed_when_the_rider_leaves_the_drawn_one(picked_up, rider_male):
    factories.set_position(rider_male, dx=-1)
    eta.tick([picked_up.number])
    factories.set_position(rider_male, dx=-2.4, dy=0)  # the wrong way, past the canteen
    pushed = eta.tick([picked_up.number])
    route = pushed[0][1]["payload"]["route"]
    assert route[0] == pytest.approx([LAT0, LNG0 - 2.4 * DX], abs=1e-6)
    assert route[-1] == pytest.approx(
        [picked_up.dropoff_building.lat, picked_up.dropoff_building.lng], abs=1e-6
    )


def test_meaningful_means_a_minute_either_way_a_stop_or_the_risk():
    base = {
        "at": "2026-03-02T04:10:00+00:00",
        "low": "2026-03-02T04:08:00+00:00",
        "high": "2026-03-02T04:13:00+00:00",
        "stops_before": 0,
        "risk": "on_time",
        "waiting_for": None,
    }
    assert not eta.changed_meaningfully(base, {**base, "at": "2026-03-02T04:10:40+00:00"})
    assert eta.changed_meaningfully(base, {**base, "at": "2026-03-02T04:11:00+00:00"})
    assert eta.changed_meaningfully(base, {**base, "high": "2026-03-02T04:14:05+00:00"})
    assert eta.changed_meaningfully(base, {**base, "low": "2026-03-02T04:07:00+00:00"})
    # Crossing a minute boundary by a few seconds is not news.
    nudged = {**base, "low": "2026-03-02T04:07:59+00:00", "high": "2026-03-02T04:13:02+00:00"}
    assert not eta.changed_meaningfully(base, nudged)
    assert eta.changed_meaningfully(base, {**base, "stops_before": 1})
    assert eta.changed_meaningfully(base, {**base, "risk": "at_risk"})
    assert eta.changed_meaningfully(base, None) and not eta.changed_meaningfully(None, None)


def test_the_snapshot_and_the_order_page_carry_the_eta(picked_up, student, rider_male):
    factories.set_position(rider_male, dx=-1)
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(student)
    data = client.get(f"/api/orders/{picked_up.number}/snapshot/").json()
    assert data["eta"]["remaining_m"] == pytest.approx(4 * ROAD + SPUR, abs=2)
    assert data["promised_at"] == picked_up.promised_at.isoformat()
    page = client.get(f"/orders/{picked_up.number}/").content.decode()
    assert re.search(r'id="eta-at">\d\d:\d\d<', page)
    assert re.search(r'id="eta-promise">Promised by \d\d:\d\d', page)


def test_a_watched_order_is_counted_once_per_socket():
    eta.watch("A")
    eta.watch("A")
    eta.unwatch("A")
    assert "A" in eta.watched()
    eta.unwatch("A")
    assert "A" not in eta.watched()


def test_a_ticker_estimates_only_for_the_sockets_of_its_own_loop():
    # A real server's loop (the browser tests' server thread) must not push estimates to the
    # sockets of another loop in the same process.
    async def watch_here():
        eta.watch("B")
        return eta.watched()

    async def look():
        return eta.watched()

    assert async_to_sync(watch_here)() == ["B"]
    assert "B" not in async_to_sync(look)()
    assert "B" not in eta.watched()


@pytest.mark.django_db(transaction=True)
def test_the_order_socket_relays_estimates_until_the_final_status(campus, student, rider_male):
    order = factories.make_order(customer=student, campus=campus)
    services.order_accept(order=order, rider=rider_male)
    services.order_transition(order=order, to=Status.PICKED_UP, actor=rider_male)
    factories.set_position(rider_male, dx=-1)

    def headers():
        client = Client()
        client.force_login(student)
        cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
        return [(b"host", b"testserver"), (b"origin", b"http://testserver"), (b"cookie", cookie)]

    async def scenario():
        socket = WebsocketCommunicator(
            application,
            f"/ws/orders/{order.number}/",
            headers=await database_sync_to_async(headers)(),
        )
        assert (await socket.connect())[0]
        snapshot = await socket.receive_json_from(timeout=5)
        assert snapshot["eta"] is not None
        assert order.number in eta.watched()
        layer = get_channel_layer()
        group = broadcast.order_group(order.number)
        await layer.group_send(group, broadcast.eta_message(order.number, {"minutes": 3}))
        assert (await socket.receive_json_from(timeout=5))["eta"] == {"minutes": 3}
        deliver = database_sync_to_async(services.order_transition)
        for to in (Status.DELIVERING, Status.DELIVERED):
            await deliver(order=order, to=to, actor=rider_male)
        while (await socket.receive_json_from(timeout=5)).get("status") != Status.DELIVERED:
            pass
        await layer.group_send(group, broadcast.eta_message(order.number, {"minutes": 1}))
        assert await socket.receive_nothing(timeout=0.3)
        await socket.disconnect()
        assert order.number not in eta.watched()

    async_to_sync(scenario)()


def test_distance_helpers_agree_with_the_campus_geometry():
    # The figures above rely on these: ~96 m per DX at this latitude, ~50 m per half DY.
    assert ROAD == pytest.approx(111_320 * math.cos(math.radians(LAT0)) * DX, rel=0.01)
    assert SPUR == pytest.approx(50, abs=1)


def test_a_takeout_order_waits_for_the_tickets_ready_time(campus, student, rider_male):
    from merchants.models import TakeoutOrder

    window = factories.make_merchant(campus, staff=[factories.make_user()])
    order = factories.make_takeout(
        customer=student, merchant=window, lines=[(factories.make_item(window), 1)]
    )
    services.order_accept(order=order, rider=rider_male)
    ready = NOW + timedelta(minutes=25)
    TakeoutOrder.objects.filter(order=order).update(expected_ready_at=ready, ready_at=None)
    found = eta.estimate(fresh(order), position=at(-2), samples=moving_samples(3.0), now=NOW)
    onwards = SPUR + 5 * ROAD + SPUR  # from the canteen's door (C1, x=-2) to D3's
    assert found.waiting_for == "merchant"
    assert found.at.timestamp() == pytest.approx(ready.timestamp() + onwards / 3.0, abs=2)
    TakeoutOrder.objects.filter(order=order).update(ready_at=NOW)  # ready: no more waiting
    found = eta.estimate(fresh(order), position=at(-2), samples=moving_samples(3.0), now=NOW)
    assert found.waiting_for is None and found.at < ready
