"""The operators' live map in a real browser: riders drawn by pool, load and freshness, moved by
the batched pushes of /ws/ops/, orders by status, filters, and a rider's route on click."""

from datetime import timedelta

import pytest
from django.utils import timezone

from orders import services
from tests import factories

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.timeout(120),
    pytest.mark.django_db(transaction=True),
    pytest.mark.filterwarnings("ignore:No directory at:UserWarning"),
    pytest.mark.filterwarnings("ignore:StreamingHttpResponse must consume synchronous iterators"),
]


@pytest.fixture
def scene(campus, student):
    factories.make_user(username="op", is_staff=True)
    busy = factories.make_rider(campus, gender="male", username="rider1")
    idle = factories.make_rider(campus, gender="female", username="rider2")
    carried = factories.make_order(customer=student, campus=campus)
    services.order_accept(order=carried, rider=busy)
    waiting = factories.make_order(customer=student, campus=campus, dropoff="D1")
    factories.set_position(busy, dx=-1.5, dy=0.1)
    factories.set_position(idle, dx=1.5, dy=-1, at=timezone.now() - timedelta(minutes=5))
    return {"busy": busy.pk, "idle": idle.pk, "carried": carried.number, "waiting": waiting.number}


def _look(page, rider_id):
    return page.evaluate("id => window.opsMap.riderLook(id)", rider_id)


def test_operator_watches_riders_and_orders_move_on_the_live_map(
    scene, campus, live, browser_page, login, api_as, page_watch
):
    page = browser_page
    page.set_viewport_size({"width": 1100, "height": 900})
    login(page, "op")
    page.goto("/ops/map/")
    page.wait_for_selector("#conn.live")
    page.wait_for_function("() => document.getElementById('rider-count').textContent === '2'")
    busy, idle = _look(page, scene["busy"]), _look(page, scene["idle"])
    assert busy["colour"] == "#1e88e5" and not busy["stale"] and busy["size"] == 20  # load 1
    assert idle["stale"] and idle["colour"] == "#9e9e9e" and idle["size"] == 14
    orders = page.evaluate("Object.keys(window.opsMap.orders()).sort()")
    assert orders == sorted([scene["carried"], scene["waiting"]])

    # A fix from the rider's phone moves the marker (batched over /ws/ops/).
    rider_api = api_as("rider1")
    lat, lng = factories.point_in(campus, dx=2.5, dy=0.2)
    now = timezone.now().isoformat()
    rider_api.ok("/api/rider/location/", {"lat": lat, "lng": lng, "recorded_at": now})
    page.wait_for_function(
        "([id, lng]) => Math.abs(window.opsMap.riderLook(id).lng - lng) < 1e-7",
        arg=[scene["busy"], lng],
    )

    # A status change recolours the order at once; the rider's load follows.
    rider_api.ok(f"/api/orders/{scene['carried']}/transition/", {"to": "picked_up"})
    page.wait_for_function(
        "n => window.opsMap.orders()[n].status === 'picked_up'", arg=scene["carried"]
    )

    # Filters: hide the female pool.
    page.uncheck("input[name=pool][value=female]")
    assert _look(page, scene["idle"])["shown"] is False
    assert _look(page, scene["busy"])["shown"] is True

    # Click the rider: details and the current route.
    page.evaluate("id => window.opsMap.riders()[id].marker.fire('click')", scene["busy"])
    page.wait_for_selector("#details h2 >> text=rider1")
    # The list shows a placeholder until the route arrives.
    page.wait_for_function(
        "n => document.querySelectorAll('#route-stops li').length === 1"
        " && document.querySelector('#route-stops').innerText.includes(n)",
        arg=scene["carried"],
    )
    page_watch.assert_clean()
