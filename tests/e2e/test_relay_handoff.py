"""Two riders hand an order over at a transfer station, each on their own phone (issue #5).

He (leg 1) carries an order for a women-only dorm to the station and taps "arrived"; she (leg 2)
has the hand-over page open and sees it update by itself. She types his code, he scans hers from
a photo of her screen; the order is then hers and she carries it on as a normal delivery. The
customer's timeline shows the relay. Rows are made in fixtures before the browsers start (see
tests/e2e/conftest.py); afterwards the server's state is read over HTTP, like a client would.
"""

import pytest

from tests import factories
from tests.e2e.conftest import phone_context

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.timeout(120),
    pytest.mark.django_db(transaction=True),
    pytest.mark.filterwarnings("ignore:No directory at:UserWarning"),
    pytest.mark.filterwarnings("ignore:StreamingHttpResponse must consume synchronous iterators"),
]


@pytest.fixture
def relay_order(campus, student):
    """An order to D2 (women only) split through the station: he has picked it up, and the
    dispatcher already gave leg 2 to her."""
    from dispatch import relay
    from orders import services as order_services
    from orders.status import Status

    man = factories.make_rider(campus, gender="male", username="leg1")
    woman = factories.make_rider(campus, gender="female", username="leg2")
    order = factories.make_order(customer=student, campus=campus, dropoff="D2")
    relay.relay_plan(order=order)
    order_services.order_accept(order=order, rider=man)
    order = order_services.order_transition(order=order, to=Status.PICKED_UP, actor=man)
    relay.relay_leg2_assign(order=order, rider=woman)
    return order


@pytest.fixture
def rider_phone(playwright_browser, live, page_watch, campus):
    """rider_phone() -> a phone-sized page in a browser context of its own."""
    lat, lng = factories.point_in(campus, dx=0, dy=0.2)
    contexts = []

    def make():
        context = phone_context(
            playwright_browser,
            live,
            page_watch,
            timeout_ms=15_000,
            geolocation={"latitude": lat, "longitude": lng, "accuracy": 8},
            permissions=["geolocation"],
        )
        contexts.append(context)
        # As on phones without BarcodeDetector: the vendored jsQR reads the photo.
        context.add_init_script("delete window.BarcodeDetector;")
        page = context.new_page()
        page.on("pageerror", lambda exc: page_watch.errors.append(f"pageerror: {exc}"))
        page.on(
            "console",
            lambda msg: (
                page_watch.errors.append(f"console.{msg.type}: {msg.text}")
                if msg.type == "error"
                else None
            ),
        )
        return page

    yield make
    for context in contexts:
        context.close()


def test_two_riders_hand_over_at_the_station_on_their_phones(
    relay_order, rider_phone, login, api_as, tmp_path, page_watch
):
    number = relay_order.number
    him, her = rider_phone(), rider_phone()
    login(him, "leg1")
    login(her, "leg2")

    # She waits at the station with the hand-over page open.
    her.goto("/rider/")
    card = her.locator(f'.order-card.task[data-number="{number}"]')
    assert card.locator(".relay-note").get_attribute("data-relay-leg") == "2"
    with her.expect_navigation():
        card.locator("a.relay-open").click()
    her.locator("#relay-waiting").wait_for()

    # He arrives and taps the button on his card.
    him.goto("/rider/")
    card = him.locator(f'.order-card.task[data-number="{number}"]')
    assert card.locator(".relay-note").get_attribute("data-relay-leg") == "1"
    with him.expect_navigation():
        card.locator("form.relay-arrive button").click()
    his_code = him.locator("#relay-code").inner_text().strip()
    assert len(his_code) == 6 and his_code.isdigit()
    assert him.locator("#relay-no-partner").count() == 0  # she is named: his form is there

    # Her page notices by itself; she types his code.
    her.locator("#relay-form").wait_for()
    her_code = her.locator("#relay-code").inner_text().strip()
    assert her_code != his_code
    her.fill("#relay-form input[name=code]", his_code)
    with her.expect_navigation():
        her.click("#relay-confirm")
    her.locator("#relay-i").wait_for()
    assert "Waiting for the other rider" in her.locator(".messages").inner_text()

    # He scans her QR from a photo of her screen (jsQR reads it: BarcodeDetector is gone): the
    # code fills his form and is sent.
    him.wait_for_function("() => document.getElementById('relay-they').textContent.includes('✅')")
    shot = tmp_path / "her-qr.png"
    qr = her.locator(".relay-qr svg")
    qr.evaluate("el => el.scrollIntoView({block: 'center'})")  # clear of the tab bar
    qr.screenshot(path=str(shot))
    with him.expect_navigation():
        him.set_input_files("#scan-file", str(shot))
    him.locator("#relay-done").wait_for()

    # Hers updates too; she carries it on as a normal delivery.
    her.locator("#relay-done").wait_for(timeout=15_000)
    with her.expect_navigation():
        her.click("#relay-done a.button")
    card = her.locator(f'.order-card.task[data-number="{number}"]')
    assert card.get_attribute("data-status") == "relay_accepted"
    with her.expect_navigation():
        card.locator("form button", has_text="On the way").click()
    assert (
        her.locator(f'.order-card.task[data-number="{number}"]').get_attribute("data-status")
        == "delivering"
    )

    # The customer's timeline shows the relay.
    detail = api_as("student").get(f"/api/orders/{number}/")
    assert detail.status == 200, detail
    statuses = [e["status"] for e in detail.data["events"]]
    assert "at_station" in statuses and "relay_accepted" in statuses, statuses
    assert detail.data["status"] == "delivering"
    page_watch.assert_clean()
