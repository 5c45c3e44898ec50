"""The customer's order page on a bad network, in a real browser against the real ASGI server.

- Its socket is killed (from the server's side of the wire, through Playwright's WebSocket
  routing) and new sockets are refused for a while: the rider delivers meanwhile, and the page
  still ends on the final status.
- WebSockets are blocked outright (a proxy that refuses the upgrade): the page falls back to
  polling the snapshot over HTTP and still follows the order to its final status, chat included.

Fixtures come from tests/e2e/conftest.py; the rider acts through the HTTP API, as the app does.
"""

import re

import pytest
from django.utils import timezone

from tests import factories

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.timeout(150),
    pytest.mark.django_db(transaction=True),
    pytest.mark.filterwarnings("ignore:No directory at:UserWarning"),
    pytest.mark.filterwarnings("ignore:StreamingHttpResponse must consume synchronous iterators"),
]

ORDER_SOCKETS = re.compile(r"/ws/orders/")
# What a proxy that refuses WebSocket upgrades looks like to a page: the socket never opens,
# it errors and closes (1006). Installed before any page script runs.
BLOCK_WEBSOCKETS = """
(() => {
  window.__socketsTried = 0;
  class BlockedSocket {
    constructor(url) {
      window.__socketsTried += 1;
      this.url = url; this.readyState = 0;
      setTimeout(() => {
        this.readyState = 3;
        if (this.onerror) { this.onerror(new Event("error")); }
        if (this.onclose) { this.onclose({ code: 1006, reason: "", wasClean: false }); }
      }, 20);
    }
    send() { throw new Error("not open"); }
    close() {}
  }
  BlockedSocket.CONNECTING = 0; BlockedSocket.OPEN = 1; BlockedSocket.CLOSING = 2;
  BlockedSocket.CLOSED = 3;
  window.WebSocket = BlockedSocket;
})();
"""


@pytest.fixture
def rider(campus):
    return factories.make_rider(campus, gender="male", online=False, username="rider1")


def _fix(lat: float, lng: float) -> dict:
    return {"lat": lat, "lng": lng, "accuracy": 8, "recorded_at": timezone.now().isoformat()}


def _status_is(page, status: str, timeout: float = 20_000) -> None:
    page.wait_for_function("s => document.body.dataset.status === s", arg=status, timeout=timeout)


def _timeline(page) -> list[str]:
    return page.locator("#timeline li").evaluate_all("els => els.map(e => e.dataset.status)")


def _marker_at(page, lat: float, lng: float) -> None:
    page.wait_for_function(
        """([lat, lng]) => {
            const p = window.orderLive.markerLatLng();
            return !!p && Math.abs(p.lat - lat) < 1e-7 && Math.abs(p.lng - lng) < 1e-7;
        }""",
        arg=[lat, lng],
        timeout=20_000,
    )


def test_customer_page_survives_a_killed_socket_and_shows_the_final_status(
    campus, student, rider, order, live, browser_page, login, api_as, page_watch
):
    page = browser_page
    number = order.number
    rider_api = api_as("rider1")
    rider_api.ok("/api/rider/online/", {"online": True})
    rider_api.ok(f"/api/orders/{number}/accept/")
    first = factories.point_in(campus, dx=-1, dy=0.2)
    rider_api.ok("/api/rider/location/", _fix(*first))

    # Every order socket goes through a relay we control: it can cut the live one from the
    # server's side, and refuse new ones while the "network" is down.
    wire = {"down": False, "live": [], "refused": 0}

    def relay(ws):
        if wire["down"]:
            wire["refused"] += 1
            ws.close(code=1011, reason="killed")
            return
        ws.connect_to_server()
        wire["live"].append(ws)

    page.route_web_socket(ORDER_SOCKETS, relay)
    login(page, "student")
    page.goto(f"/orders/{number}/")
    _status_is(page, "accepted")
    page.wait_for_selector("#conn.live")
    _marker_at(page, *first)
    page.evaluate("window.__sameDocument = true")

    # Kill the socket from the far side; while the network is down the rider finishes the job.
    wire["down"] = True
    wire["live"][-1].close(code=1011, reason="killed")
    page.wait_for_selector("#conn.down, #conn.polling")
    for step in ("picked_up", "delivering"):
        rider_api.ok(f"/api/orders/{number}/transition/", {"to": step})
    second = factories.point_in(campus, dx=2, dy=0.3)
    rider_api.ok("/api/rider/location/", _fix(*second))
    rider_api.ok(f"/api/orders/{number}/transition/", {"to": "delivered"})
    while not wire["refused"]:  # the page tried to reconnect and was refused
        page.wait_for_timeout(100)

    wire["down"] = False  # the network is back: the page catches up with a new snapshot
    _status_is(page, "delivered", timeout=40_000)
    assert page.locator("#banner-label").inner_text() == "Delivered"
    assert _timeline(page) == [
        "pending",
        "open",
        "accepted",
        "picked_up",
        "delivering",
        "delivered",
    ]
    page.wait_for_function("() => window.orderLive.markerLatLng() === null")
    assert page.locator("#eta").is_hidden()
    assert page.evaluate("window.__sameDocument") is True
    page_watch.assert_clean()


def test_blocked_websockets_fall_back_to_polling_until_the_final_status(
    campus, student, rider, order, live, browser_page, login, api_as, page_watch
):
    page = browser_page
    number = order.number
    rider_api = api_as("rider1")
    snapshots: list[str] = []
    page.on(
        "request",
        lambda req: snapshots.append(req.url) if req.url.endswith("/snapshot/") else None,
    )
    page.add_init_script(BLOCK_WEBSOCKETS)
    login(page, "student")
    page.goto(f"/orders/{number}/")
    _status_is(page, "open")
    page.wait_for_function("() => window.orderLive.mode() === 'polling'")
    page.wait_for_selector("#conn.polling")
    assert page.evaluate("window.__socketsTried") >= 2

    rider_api.ok("/api/rider/online/", {"online": True})
    rider_api.ok(f"/api/orders/{number}/accept/")
    _status_is(page, "accepted")
    assert page.locator("#rider-card").inner_text() == "Rider: r**"
    fix = factories.point_in(campus, dx=-1.5, dy=0.2)
    rider_api.ok("/api/rider/location/", _fix(*fix))
    _marker_at(page, *fix)

    # The chat works over HTTP too: a quick reply from the rider shows up, ours goes out.
    rider_api.ok(f"/api/orders/{number}/chat/", {"quick": "downstairs"})
    page.wait_for_selector("#chat-log li.theirs >> text=I'm downstairs", timeout=20_000)
    page.click("#chat-form button[value=coming_down]")
    page.wait_for_selector("#chat-log li.mine >> text=Coming down now")
    assert [m["text"] for m in rider_api.get(f"/api/orders/{number}/chat/").data["messages"]] == [
        "I'm downstairs",
        "Coming down now",
    ]

    rider_api.ok(f"/api/orders/{number}/transition/", {"to": "picked_up"})
    _status_is(page, "picked_up")
    page.wait_for_function(
        "() => /\\d\\d:\\d\\d/.test(document.getElementById('eta-at').textContent)"
    )
    for step in ("delivering", "delivered"):
        rider_api.ok(f"/api/orders/{number}/transition/", {"to": step})
    _status_is(page, "delivered")
    assert page.locator("#banner-label").inner_text() == "Delivered"
    assert _timeline(page)[-3:] == ["picked_up", "delivering", "delivered"]
    page.wait_for_function("() => window.orderLive.markerLatLng() === null")
    assert len(snapshots) >= 3 and not page_watch.sockets  # no socket ever reached the server
    page_watch.assert_clean()
