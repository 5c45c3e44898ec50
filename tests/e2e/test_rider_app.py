"""The rider web app in a real browser against the real ASGI server (issue #4).

The rider's phone is a second browser context with a faked geolocation; the customer watches the
order page in another. Rows are made in fixtures before the browser starts (see conftest).
"""

import pytest

from tests import factories
from tests.e2e.conftest import PHONE, phone_context

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.timeout(120),
    pytest.mark.django_db(transaction=True),
    pytest.mark.filterwarnings("ignore:No directory at:UserWarning"),
    pytest.mark.filterwarnings("ignore:StreamingHttpResponse must consume synchronous iterators"),
]


def lat_lng(campus, dx: float, dy: float = 0.2) -> tuple[float, float]:
    lat, lng = factories.point_in(campus, dx=dx, dy=dy)
    return round(lat, 6), round(lng, 6)


@pytest.fixture
def rider(campus):
    """An approved rider, offline until they switch on in the app."""
    return factories.make_rider(campus, gender="male", online=False, username="rider1")


@pytest.fixture
def spots(campus) -> dict[str, tuple[float, float]]:
    """Positions on the test campus, worked out before the browser starts."""
    return {name: lat_lng(campus, dx) for name, dx in (("a", -1.0), ("b", 0.0), ("c", 1.0))}


@pytest.fixture
def phone(playwright_browser, live, page_watch, spots):
    """phone() -> a rider's phone page: located at spot "a", geolocation allowed,
    off-site requests refused and counted like the customer's page."""
    contexts = []

    def make(*, init_script: str | None = None, ignore_console: tuple[str, ...] = ()):
        lat, lng = spots["a"]
        context = phone_context(
            playwright_browser,
            live,
            page_watch,
            geolocation={"latitude": lat, "longitude": lng, "accuracy": 8},
            permissions=["geolocation"],
        )
        contexts.append(context)
        if init_script:
            context.add_init_script(init_script)
        page = context.new_page()
        page.on("pageerror", lambda exc: page_watch.errors.append(f"rider pageerror: {exc}"))

        def on_console(msg):
            if msg.type == "error" and not any(s in msg.text for s in ignore_console):
                page_watch.errors.append(f"rider console.{msg.type}: {msg.text}")

        page.on("console", on_console)
        return page

    yield make
    for context in contexts:
        context.close()


def go_online(page, login) -> None:
    login(page, "rider1")
    page.goto("/rider/")
    with page.expect_navigation():
        page.click("#online-toggle")
    page.wait_for_function("() => document.getElementById('rider-state').dataset.online === '1'")
    wait_sent(page)


def wait_sent(page) -> None:
    """Every fix taken so far went out and was answered."""
    page.wait_for_function("() => window.riderApp && window.riderApp.queue().length === 0")


def marker_at(page, spot: tuple[float, float]) -> None:
    page.wait_for_function(
        """([lat, lng]) => {
            const p = window.orderLive.markerLatLng();
            return !!p && Math.abs(p.lat - lat) < 1e-7 && Math.abs(p.lng - lng) < 1e-7;
        }""",
        arg=list(spot),
    )


def move(page, spot: tuple[float, float]) -> None:
    # The app keeps one fix every 3 s at most: wait that out, then move the phone.
    page.wait_for_timeout(3100)
    page.context.set_geolocation({"latitude": spot[0], "longitude": spot[1], "accuracy": 8})


def test_rider_app_streams_positions_that_move_the_customers_marker(
    order, rider, spots, browser_page, phone, login
):
    rider_page = phone()
    go_online(rider_page, login)
    assert rider_page.evaluate("window.riderApp.connected()")
    assert rider_page.evaluate("window.riderApp.mode()") == "ws"

    offer = rider_page.locator(f'.order-card.offer[data-number="{order.number}"]')
    assert "m walk" in offer.inner_text()
    with rider_page.expect_navigation():
        offer.locator("button").click()
    task = rider_page.locator(f'.order-card.task[data-number="{order.number}"]')
    task.wait_for()
    wait_sent(rider_page)

    login(browser_page, "student")
    browser_page.goto(f"/orders/{order.number}/")
    marker_at(browser_page, spots["a"])

    move(rider_page, spots["b"])
    marker_at(browser_page, spots["b"])
    move(rider_page, spots["c"])
    marker_at(browser_page, spots["c"])
    wait_sent(rider_page)
    assert rider_page.evaluate("window.riderApp.mode()") == "ws"


def test_fixes_taken_offline_wait_on_the_phone_and_arrive_in_order(
    order, rider, spots, browser_page, phone, login
):
    rider_page = phone()
    go_online(rider_page, login)
    offer = rider_page.locator(f'.order-card.offer[data-number="{order.number}"]')
    with rider_page.expect_navigation():
        offer.locator("button").click()
    wait_sent(rider_page)
    login(browser_page, "student")
    browser_page.goto(f"/orders/{order.number}/")
    marker_at(browser_page, spots["a"])

    rider_page.context.set_offline(True)
    rider_page.evaluate("window.dispatchEvent(new Event('offline'))")
    move(rider_page, spots["b"])
    rider_page.wait_for_function("() => window.riderApp.queue().length >= 1")
    move(rider_page, spots["c"])
    rider_page.wait_for_function("() => window.riderApp.queue().length >= 2")
    queued = rider_page.evaluate(
        "() => JSON.parse(localStorage.getItem('rider.fixes.' + "
        "JSON.parse(document.getElementById('rider-config').textContent).userId))"
    )
    assert [(f["lat"], f["lng"]) for f in queued][-2:] == [spots["b"], spots["c"]]
    assert queued[-2]["seq"] < queued[-1]["seq"]
    assert rider_page.locator("#net-state").is_visible()
    marker_at(browser_page, spots["a"])  # nothing reached the customer meanwhile

    rider_page.context.set_offline(False)
    rider_page.evaluate("window.dispatchEvent(new Event('online'))")
    wait_sent(rider_page)
    marker_at(browser_page, spots["c"])
    assert rider_page.locator("#net-state").is_hidden()


BLOCKED_WEBSOCKET = """
(() => {
  // A campus proxy that refuses WebSocket upgrades: every socket fails before it opens.
  function Blocked(url) {
    var self = this;
    self.url = url; self.readyState = 0;
    setTimeout(function () {
      self.readyState = 3;
      if (self.onerror) { self.onerror(new Event("error")); }
      if (self.onclose) { self.onclose({ code: 1006, reason: "", wasClean: false }); }
    }, 20);
  }
  Blocked.prototype.send = function () { throw new Error("not open"); };
  Blocked.prototype.close = function () {};
  Blocked.CONNECTING = 0; Blocked.OPEN = 1; Blocked.CLOSING = 2; Blocked.CLOSED = 3;
  if (location.pathname.indexOf("/rider/") === 0) { window.WebSocket = Blocked; }
})();
"""


def test_rider_app_falls_back_to_http_when_websockets_are_blocked(
    order, rider, spots, browser_page, phone, login
):
    # A fix the server already has (the same emulated fix after a page load) is answered 409
    # stale_location: expected, and logged by the browser as a failed resource.
    rider_page = phone(init_script=BLOCKED_WEBSOCKET, ignore_console=("status of 409",))
    login(rider_page, "rider1")
    rider_page.goto("/rider/")
    with rider_page.expect_navigation():
        rider_page.click("#online-toggle")
    rider_page.wait_for_function("() => window.riderApp.mode() === 'http'", timeout=20_000)
    wait_sent(rider_page)
    offer = rider_page.locator(f'.order-card.offer[data-number="{order.number}"]')
    with rider_page.expect_navigation():
        offer.locator("button").click()
    rider_page.wait_for_function("() => window.riderApp.mode() === 'http'", timeout=20_000)

    login(browser_page, "student")
    browser_page.goto(f"/orders/{order.number}/")
    move(rider_page, spots["b"])
    marker_at(browser_page, spots["b"])
    assert not rider_page.evaluate("window.riderApp.connected()")
    assert "HTTP" in rider_page.locator("#net-state").inner_text()


@pytest.fixture
def taken_order(order, campus):
    """The order, accepted by another rider (who will give it back)."""
    from orders import services

    other = factories.make_rider(campus, gender="male", username="rider2")
    services.order_accept(order=order, rider=other)
    return order


def test_an_order_new_on_the_board_beeps_and_vibrates(rider, taken_order, phone, login, api_as):
    rider_page = phone(
        init_script="""
        window.__vibrations = [];
        navigator.vibrate = function (p) { window.__vibrations.push(p); return true; };
        """
    )
    go_online(rider_page, login)
    card = f'.order-card.offer[data-number="{taken_order.number}"]'
    assert rider_page.locator(card).count() == 0
    assert rider_page.evaluate("window.riderApp.alerts()") == 0

    api_as("rider2").ok(f"/api/orders/{taken_order.number}/transition/", {"to": "open"})
    rider_page.evaluate("window.riderApp.refreshBoard()")  # the poll, without waiting for it

    rider_page.locator(card).wait_for()
    rider_page.wait_for_function("() => window.riderApp.alerts() === 1")
    assert rider_page.evaluate("window.__vibrations.length") == 1
    assert rider_page.title().startswith("🔔")


@pytest.fixture
def scanner(campus):
    return factories.make_rider(campus, gender="male", username="scanner")


def test_rider_accepts_by_scanning_the_customers_qr(
    order, scanner, tmp_path, browser_page, phone, login
):
    # The customer's screen shows the order QR; the rider photographs it. BarcodeDetector is
    # hidden so that the vendored jsQR decodes, as on phones without it.
    login(browser_page, "student")
    browser_page.goto(f"/orders/{order.number}/")
    qr = browser_page.locator("#order-qr img")
    browser_page.wait_for_function("() => document.querySelector('#order-qr img').naturalWidth > 0")
    shot = tmp_path / "qr.png"
    qr.screenshot(path=str(shot))

    rider_page = phone(init_script="delete window.BarcodeDetector;")
    login(rider_page, "scanner")
    rider_page.goto("/rider/scan/")
    rider_page.set_input_files("#scan-file", str(shot))
    rider_page.wait_for_function("() => document.body.dataset.scanResult === 'accepted'")
    assert rider_page.evaluate("typeof window.jsQR") == "function"
    rider_page.wait_for_url("**/rider/")
    rider_page.locator(f'.order-card.task[data-number="{order.number}"]').wait_for()

    browser_page.wait_for_function("() => document.body.dataset.status === 'accepted'")


def write_y4m(png: bytes, path, *, size=(640, 480), frames: int = 5) -> None:
    """A still video (YUV4MPEG2, 4:2:0) of the image centred on white, for chromium's fake
    camera (--use-file-for-fake-video-capture)."""
    import io

    from PIL import Image

    with Image.open(io.BytesIO(png)) as qr:
        qr = qr.convert("RGB")
        qr.thumbnail((size[1] - 40, size[1] - 40))
        canvas = Image.new("RGB", size, "white")
        canvas.paste(qr, ((size[0] - qr.width) // 2, (size[1] - qr.height) // 2))
    y, cb, cr = canvas.convert("YCbCr").split()
    half = (size[0] // 2, size[1] // 2)
    frame = b"FRAME\n" + y.tobytes() + cb.resize(half).tobytes() + cr.resize(half).tobytes()
    header = f"YUV4MPEG2 W{size[0]} H{size[1]} F10:1 Ip A1:1 C420jpeg\n".encode()
    path.write_bytes(header + frame * frames)


@pytest.fixture
def accepted_by_scanner(order, scanner):
    """The scanner's own accepted order: scanning its QR again confirms the pickup."""
    from orders import services

    services.order_accept(order=order, rider=scanner)
    return order


def test_rider_confirms_pickup_by_scanning_with_the_camera(
    accepted_by_scanner, live, tmp_path, playwright_browser, page_watch, login
):
    import segno

    from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS

    order = accepted_by_scanner
    png = tmp_path / "qr.png"
    segno.make(f"{live.url}/rider/scan/{order.number}/", error="m").save(
        str(png), kind="png", scale=6, border=4
    )
    video = tmp_path / "camera.y4m"
    write_y4m(png.read_bytes(), video)
    camera_browser = playwright_browser.browser_type.launch(
        executable_path=CHROMIUM,
        headless=True,
        args=[
            *CHROMIUM_ARGS,
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-video-capture={video}",
        ],
    )
    try:
        context = camera_browser.new_context(
            viewport=PHONE,
            is_mobile=True,
            has_touch=True,
            locale="en-US",
            base_url=live.url,
            permissions=["camera"],
        )
        context.add_init_script("delete window.BarcodeDetector;")
        page = context.new_page()
        page.on("pageerror", lambda exc: page_watch.errors.append(f"camera pageerror: {exc}"))
        login(page, "scanner")
        page.goto("/rider/scan/")
        if page.locator("#scan-start").is_visible():
            page.click("#scan-start")
        page.wait_for_function("() => document.body.dataset.scanResult === 'picked_up'")
        page.wait_for_url("**/rider/")
        task = page.locator(f'.order-card.task[data-number="{order.number}"]')
        assert task.get_attribute("data-status") == "picked_up"
    finally:
        camera_browser.close()


def test_rider_app_opens_from_the_service_worker_without_network(rider, phone, login):
    page = phone()
    login(page, "rider1")
    page.goto("/rider/")
    page.wait_for_function(
        "() => navigator.serviceWorker.ready.then(() => !!navigator.serviceWorker.controller)"
    )
    page.reload()  # now through the worker, which keeps a copy of the page
    page.locator("#board").wait_for()

    page.context.set_offline(True)
    page.reload()
    assert page.locator("#board").is_visible()
    assert page.locator("#rider-state").is_visible()
    page.goto("/rider/earnings/")  # never visited: the offline page instead of the browser's
    assert page.locator("text=No network").is_visible()
    page.context.set_offline(False)
