"""The student's live order page in a real browser, against the real ASGI server (issue #2).

The student works through the pages; the rider works through the HTTP API of the same server, as
the rider app does, so that every push starts inside the server's event loop.
"""

import json
import time

import pytest
from django.utils import timezone

from tests import factories

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.timeout(120),
    pytest.mark.django_db(transaction=True),
    # WhiteNoise serving from the finders (no collectstatic) under ASGI: expected in development.
    pytest.mark.filterwarnings("ignore:No directory at:UserWarning"),
    pytest.mark.filterwarnings("ignore:StreamingHttpResponse must consume synchronous iterators"),
]

MARKER = ".leaflet-marker-icon.rider-marker"


@pytest.fixture
def rider(campus):
    """A verified rider who is offline until they say otherwise through the API."""
    return factories.make_rider(campus, gender="male", online=False, username="rider1")


@pytest.fixture
def funded(student):
    """The student, whose wallet covers the order: orders open to riders once paid."""
    factories.fund_wallet(student, at_least=10_000)
    return student


@pytest.fixture
def places(campus) -> dict[str, str]:
    """Building ids for the order form, read before the browser starts (see conftest)."""
    return {code: str(factories.building(campus, code).pk) for code in ("P1", "D3")}


def _status_is(page, status: str) -> None:
    page.wait_for_function("s => document.body.dataset.status === s", arg=status)


def _banner(page) -> str:
    return page.locator("#banner-label").inner_text()


def _timeline(page) -> list[str]:
    return page.locator("#timeline li").evaluate_all("els => els.map(e => e.dataset.status)")


def _marker_at(page, lat: float, lng: float) -> None:
    """Wait until the rider marker has glided onto (lat, lng) and is drawn inside the map."""
    page.wait_for_function(
        """([lat, lng]) => {
            const p = window.orderLive.markerLatLng();
            return !!p && Math.abs(p.lat - lat) < 1e-7 && Math.abs(p.lng - lng) < 1e-7;
        }""",
        arg=[lat, lng],
    )
    marker = page.locator(MARKER)
    marker.wait_for()  # drawn once the campus map has loaded, which may come after the snapshot
    assert marker.count() == 1
    box, map_box = marker.bounding_box(), page.locator("#map").bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    assert map_box["x"] <= cx <= map_box["x"] + map_box["width"], (box, map_box)
    assert map_box["y"] <= cy <= map_box["y"] + map_box["height"], (box, map_box)
    assert float(page.locator("#map").get_attribute("data-rider-lat")) == pytest.approx(lat)
    assert float(page.locator("#map").get_attribute("data-rider-lng")) == pytest.approx(lng)


def _no_marker(page) -> None:
    page.wait_for_function("() => window.orderLive.markerLatLng() === null")
    assert page.locator(MARKER).count() == 0
    assert page.locator("#map").get_attribute("data-rider-lat") is None


def _fix(lat: float, lng: float) -> dict:
    return {"lat": lat, "lng": lng, "accuracy": 8, "recorded_at": timezone.now().isoformat()}


def _collect_frames(page) -> list[dict]:
    """Every message the page's order sockets receive, in order (for the privacy check)."""
    frames: list[dict] = []

    def on_socket(ws):
        ws.on("framereceived", lambda payload: frames.append(json.loads(payload)))

    page.on("websocket", on_socket)
    return frames


def test_student_follows_rider_live_from_order_to_delivery(
    campus, places, funded, rider, live, browser_page, login, api_as, page_watch, screenshot_dir
):
    page = browser_page
    frames = _collect_frames(page)
    rider_api, student_api = api_as("rider1"), api_as("student")

    # The student places an order through the page.
    login(page, "student")
    # A document run: the errand kind that needs nothing beyond the common fields.
    page.goto("/orders/new/?kind=document")
    page.select_option("#id_pickup_building", places["P1"])
    page.select_option("#id_dropoff_building", places["D3"])
    page.fill("#id_description", "Two parcels for Li, shelf B-12")
    with page.expect_navigation():
        page.click("button[type=submit]")
    number = page.url.rstrip("/").rsplit("/", 1)[-1]
    assert page.url == f"{live.url}/orders/{number}/"

    _status_is(page, "open")
    assert _banner(page) == "Waiting for a rider"
    assert _timeline(page) == ["pending", "open"]
    page.wait_for_selector("#conn.live")
    # The campus is drawn from its own data (fetched after the page loads): 5 building
    # footprints and the path edges.
    page.wait_for_function(
        "() => document.querySelectorAll('#map .leaflet-overlay-pane path').length >= 5"
    )
    assert page.locator(MARKER).count() == 0
    assert page.locator("#rider-card").is_hidden()
    assert page.locator("#cancel-form").is_visible()
    page.evaluate("window.__sameDocument = true")  # gone if anything reloads the page

    # The rider goes online and accepts; the student's page follows without a reload.
    assert rider_api.ok("/api/rider/online/", {"online": True})["online"] is True
    rider_api.ok(f"/api/orders/{number}/accept/")
    _status_is(page, "accepted")
    assert _banner(page) == "Accepted"
    assert _timeline(page) == ["pending", "open", "accepted"]
    # The rider's public name (an initial), never the username.
    assert page.locator("#rider-card").inner_text() == "Rider: r**"

    first = factories.point_in(campus, dx=-1.5, dy=0.2)
    rider_api.ok("/api/rider/location/", _fix(*first))
    _marker_at(page, *first)

    for step in ("picked_up", "delivering"):
        rider_api.ok(f"/api/orders/{number}/transition/", {"to": step})
    _status_is(page, "delivering")
    assert _banner(page) == "On the way"

    second = factories.point_in(campus, dx=2.5, dy=0.3)
    rider_api.ok("/api/rider/location/", _fix(*second))
    _marker_at(page, *second)  # glided there from the first fix
    page.screenshot(path=str(screenshot_dir / "order_page.png"), full_page=True)

    rider_api.ok(f"/api/orders/{number}/transition/", {"to": "delivered"})
    _status_is(page, "delivered")
    assert _banner(page) == "Delivered"
    _no_marker(page)
    assert _timeline(page) == [
        "pending",
        "open",
        "accepted",
        "picked_up",
        "delivering",
        "delivered",
    ]
    assert page.locator("#cancel-form").is_hidden()

    # Privacy: a fix sent after delivery never reaches the customer's socket. The customer's
    # confirmation afterwards is pushed through the same group, so it arrives after any such fix.
    after = factories.point_in(campus, dx=3, dy=-0.5)
    rider_api.ok("/api/rider/location/", _fix(*after))
    student_api.ok(f"/api/orders/{number}/transition/", {"to": "completed"})
    _status_is(page, "completed")
    positions = [(f["lat"], f["lng"]) for f in frames if f["type"] == "location"]
    assert positions == [first, second]
    assert page.locator(MARKER).count() == 0
    assert page.evaluate("window.__sameDocument") is True
    page_watch.assert_clean()


def test_order_page_catches_up_after_its_socket_drops(
    campus, student, rider, order, live, browser_page, login, api_as, page_watch
):
    page = browser_page
    number = order.number
    rider_api = api_as("rider1")
    rider_api.ok("/api/rider/online/", {"online": True})
    rider_api.ok(f"/api/orders/{number}/accept/")
    first = factories.point_in(campus, dx=-1, dy=0.2)
    rider_api.ok("/api/rider/location/", _fix(*first))

    # A fake clock that runs normally until paused: it holds the reconnect timer while the
    # socket is down, so the changes below surely happen while the page is disconnected.
    page.clock.install()
    login(page, "student")
    page.goto(f"/orders/{number}/")
    _status_is(page, "accepted")
    _marker_at(page, *first)  # from the snapshot in the page
    page.wait_for_selector("#conn.live")
    page.evaluate("window.__sameDocument = true")

    def drop_socket():
        page.clock.pause_at(page.evaluate("Date.now()") / 1000 + 0.05)
        page.evaluate("window.orderLive.socket().close()")
        page.wait_for_function("window.orderLive.socket().readyState === WebSocket.CLOSED")
        page.wait_for_selector("#conn.down")

    def reconnect():
        page.clock.run_for(20_000)  # past the longest backoff delay
        page.wait_for_selector("#conn.live")
        page.clock.resume()

    # Missed while down: pickup and a new fix. The resync brings both back.
    drop_socket()
    rider_api.ok(f"/api/orders/{number}/transition/", {"to": "picked_up"})
    second = factories.point_in(campus, dx=1.5, dy=0.3)
    rider_api.ok("/api/rider/location/", _fix(*second))
    time.sleep(0.2)  # a live push, if the socket were somehow still there, would land by now
    assert page.evaluate("document.body.dataset.status") == "accepted"
    assert page.evaluate("window.orderLive.markerLatLng().lng") == pytest.approx(first[1])
    reconnect()
    _status_is(page, "picked_up")
    _marker_at(page, *second)
    assert _timeline(page) == ["pending", "open", "accepted", "picked_up"]

    # Missed while down: the final status. A dropped socket never loses it.
    drop_socket()
    for step in ("delivering", "delivered"):
        rider_api.ok(f"/api/orders/{number}/transition/", {"to": step})
    time.sleep(0.2)
    assert page.evaluate("document.body.dataset.status") == "picked_up"
    reconnect()
    _status_is(page, "delivered")
    assert _banner(page) == "Delivered"
    _no_marker(page)
    assert _timeline(page)[-2:] == ["delivering", "delivered"]

    assert len(page_watch.sockets) == 3, "one socket, then one per reconnect"
    assert page.evaluate("window.__sameDocument") is True
    page_watch.assert_clean()
