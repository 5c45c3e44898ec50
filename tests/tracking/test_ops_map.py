"""The operators' live map (/ops/map/, /api/ops/map/, /ws/ops/) and the dispute replay of a
finished order's track (/ops/orders/<number>/replay/), whose every opening is logged."""

import json
import re
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.gis.geos import Point
from django.test import Client
from django.utils import timezone

from campus_errand.asgi import application
from orders import services
from orders.status import Status
from tests import factories
from tests.factories import logged_in
from tracking import consumers, live
from tracking import services as tracking_services
from tracking.models import TrackAccessLog, TrackPoint


def deliver(order, rider):
    order = services.order_accept(order=order, rider=rider)
    for to in (Status.PICKED_UP, Status.DELIVERING, Status.DELIVERED):
        order = services.order_transition(order=order, to=to, actor=rider)
    return order


# --- who may see it ----------------------------------------------------------------------------


def test_the_live_map_is_for_operators_only(student, rider_male, operator):
    assert Client().get("/ops/map/")["Location"].startswith("/accounts/login/")
    for user in (student, rider_male):
        assert logged_in(user).get("/ops/map/").status_code == 403
        assert logged_in(user).get("/api/ops/map/").status_code == 403
        route = logged_in(user).get(f"/api/ops/riders/{rider_male.pk}/route/")
        assert route.status_code == 403
    assert Client().get("/api/ops/map/").status_code in (401, 403)
    page = logged_in(operator).get("/ops/map/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "vendor/leaflet.markercluster-1.5.3.js" in html and 'id="ops-config"' in html
    assert logged_in(operator).post("/ops/map/").status_code == 405


def test_the_map_state_has_riders_by_pool_load_and_freshness(
    campus, student, rider_male, rider_female, operator
):
    carried = factories.make_order(customer=student, campus=campus)
    services.order_accept(order=carried, rider=rider_male)
    waiting = factories.make_order(customer=student, campus=campus)
    factories.set_position(rider_male, dx=-1)
    factories.set_position(rider_female, dx=1, at=timezone.now() - timedelta(minutes=5))
    offline = factories.make_rider(campus, gender="male", online=False)
    state = logged_in(operator).get("/api/ops/map/").json()
    riders = {r["id"]: r for r in state["riders"]}
    assert set(riders) == {rider_male.pk, rider_female.pk}  # never the offline one
    assert offline.pk not in riders
    assert (riders[rider_male.pk]["pool"], riders[rider_male.pk]["load"]) == ("male", 1)
    assert (riders[rider_female.pk]["pool"], riders[rider_female.pk]["load"]) == ("female", 0)
    assert riders[rider_male.pk]["stale"] is False and riders[rider_female.pk]["stale"] is True
    orders = {o["number"]: o for o in state["orders"]}
    assert orders[carried.number]["status"] == "accepted"
    assert orders[carried.number]["rider"] == rider_male.pk
    assert orders[waiting.number]["status"] == "open"
    assert state["statuses"]["accepted"]["color"] == "#1e88e5"  # orders/status.py's colours


def test_delivered_orders_leave_the_map(order, rider_male, operator):
    deliver(order, rider_male)
    numbers = [o["number"] for o in logged_in(operator).get("/api/ops/map/").json()["orders"]]
    assert order.number not in numbers


def test_a_riders_current_route(campus, student, rider_male, operator):
    first = factories.make_order(customer=student, campus=campus, dropoff="D1")
    second = factories.make_order(customer=student, campus=campus, dropoff="D3")
    for order in (first, second):
        services.order_accept(order=order, rider=rider_male)
    factories.set_position(rider_male, dx=-2)
    route = logged_in(operator).get(f"/api/ops/riders/{rider_male.pk}/route/").json()
    assert {(s["number"], s["kind"]) for s in route["stops"]} == {
        (first.number, "pickup"),
        (first.number, "delivery"),
        (second.number, "pickup"),
        (second.number, "delivery"),
    }
    assert len(route["path"]) > 2
    assert route["path"][0] == pytest.approx([factories.LAT0, factories.LNG0 - 2 * factories.DX])
    assert logged_in(operator).get("/api/ops/riders/999999/route/").status_code == 404


# --- the dispute replay ------------------------------------------------------------------------


def test_replay_access_is_logged_with_who_when_and_why(order, rider_male, operator):
    order = deliver(order, rider_male)
    TrackPoint.objects.create(
        rider=rider_male,
        point=Point(factories.LNG0, factories.LAT0, srid=4326),
        recorded_at=order.picked_up_at,
    )
    client = logged_in(operator)
    response = client.post(
        f"/ops/orders/{order.number}/replay/", {"reason": "complaint", "note": "case 118: late"}
    )
    assert response.status_code == 200
    log = TrackAccessLog.objects.get()
    assert (log.user, log.order, log.reason, log.note, log.points) == (
        operator,
        order,
        "complaint",
        "case 118: late",
        1,
    )
    assert abs((timezone.now() - log.created_at).total_seconds()) < 60
    data = re.search(
        r'<script id="replay-data" type="application/json">(.*?)</script>',
        response.content.decode(),
    )
    assert len(json.loads(data.group(1))["points"]) == 1
    # Each opening is a new row; the page lists them.
    client.post(f"/ops/orders/{order.number}/replay/", {"reason": "dispute", "note": "again, 118"})
    assert TrackAccessLog.objects.count() == 2
    page = client.get(f"/ops/orders/{order.number}/replay/").content.decode()
    assert "case 118: late" in page and "again, 118" in page


def test_the_access_log_is_append_only(order, rider_male, operator):
    order = deliver(order, rider_male)
    logged_in(operator).post(
        f"/ops/orders/{order.number}/replay/", {"reason": "safety", "note": "incident 7"}
    )
    log = TrackAccessLog.objects.get()
    log.note = "nothing to see"
    with pytest.raises(TypeError):
        log.save()
    with pytest.raises(TypeError):
        log.delete()
    with pytest.raises(TypeError):
        TrackAccessLog.objects.update(note="x")
    with pytest.raises(TypeError):
        TrackAccessLog.objects.all().delete()


def test_a_running_order_is_not_replayed(order, rider_male, operator):
    services.order_accept(order=order, rider=rider_male)
    response = logged_in(operator).post(
        f"/ops/orders/{order.number}/replay/", {"reason": "dispute", "note": "too early"}
    )
    assert response.status_code == 409 and "live map" in response.content.decode()
    assert not TrackAccessLog.objects.exists()


def test_replay_of_an_unknown_order_is_404(operator):
    assert logged_in(operator).get("/ops/orders/00000000000000/replay/").status_code == 404


# --- the ops socket ----------------------------------------------------------------------------


def _headers(user):
    client = Client()
    client.force_login(user)
    return [
        (b"host", b"testserver"),
        (b"origin", b"http://testserver"),
        (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode()),
    ]


@pytest.mark.django_db(transaction=True)
def test_the_ops_socket_is_staff_only_and_batches_positions(campus, student, monkeypatch):
    monkeypatch.setattr(consumers, "OPS_INTERVAL", 1.0)
    operator = factories.make_user(username="op", is_staff=True)
    rider = factories.make_rider(campus, gender="male", username="r1")
    order = factories.make_order(customer=student, campus=campus)
    record = database_sync_to_async(tracking_services.location_record)
    transition = database_sync_to_async(services.order_transition)

    async def scenario():
        refused = WebsocketCommunicator(
            application, "/ws/ops/", headers=await database_sync_to_async(_headers)(student)
        )
        connected, code = await refused.connect()
        assert not connected and code == consumers.FORBIDDEN

        ops = WebsocketCommunicator(
            application, "/ws/ops/", headers=await database_sync_to_async(_headers)(operator)
        )
        assert (await ops.connect())[0]
        now = timezone.now()
        for i, dx in enumerate((-1.0, -0.5, 0.5)):  # three fixes within one interval
            lat, lng = factories.point_in(campus, dx=dx)
            await record(rider=rider, lat=lat, lng=lng, recorded_at=now + timedelta(seconds=i))
        # (On a Redis shared with other runs, other riders' fixes may come through "ops" too.)
        newest = factories.point_in(campus, dx=0.5)[1]
        seen = []  # this rider's entries, batch by batch
        while not seen or seen[-1][-1]["lng"] != pytest.approx(newest):
            batch = await ops.receive_json_from(timeout=5)
            if batch["type"] == "positions":
                mine = [p for p in batch["positions"] if p["rider"] == rider.pk]
                if mine:
                    seen.append(mine)
        assert all(len(mine) == 1 for mine in seen)  # one entry per rider per batch
        assert len(seen) < 3  # three fixes in one interval: some were coalesced
        await transition(order=order, to=Status.ACCEPTED, actor=rider)
        status = {}
        while status.get("number") != order.number:
            status = await ops.receive_json_from(timeout=5)
        assert (status["type"], status["status"]) == ("status", "accepted")
        await ops.disconnect()

    async_to_sync(scenario)()
    assert live.position_get(rider.pk) is not None


def test_takeout_orders_carry_their_merchant_for_the_filter(campus, student, operator):
    window = factories.make_merchant(campus, staff=[factories.make_user()], name="面馆")
    order = factories.make_takeout(
        customer=student, merchant=window, lines=[(factories.make_item(window), 1)]
    )
    errand = factories.make_order(customer=student, campus=campus)
    state = logged_in(operator).get("/api/ops/map/").json()
    rows = {o["number"]: o for o in state["orders"]}
    assert state["has_merchants"] is True
    assert rows[order.number]["merchant"] == {"id": window.pk, "name": "面馆"}
    assert rows[errand.number]["merchant"] is None
