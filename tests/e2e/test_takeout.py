"""Takeout end to end in a real browser against the real ASGI server (issue #6).

A student orders beef noodles from a canteen window through the pages; the merchant's inbox, open
in another browser, shows the order live (rings, flashes the title); the merchant accepts and
marks it ready; a rider accepts by the code printed on the ticket (the rider app's scan API), and
confirms the pickup with a second scan once the merchant has handed the bag over.
"""

import pytest

from tests import factories
from tests.e2e.conftest import CHROMIUM_ARGS, PHONE, _is_local  # noqa: F401

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.timeout(150),
    pytest.mark.django_db(transaction=True),
    pytest.mark.filterwarnings("ignore:No directory at:UserWarning"),
    pytest.mark.filterwarnings("ignore:StreamingHttpResponse must consume synchronous iterators"),
]


@pytest.fixture
def shop(campus):
    """Rows first (the browser's event loop forbids ORM calls later): the window, its staff,
    its menu, a funded student and an online rider."""
    staff = factories.make_user(username="window_staff")
    window = factories.make_merchant(campus, staff=[staff], slug="lanzhou", name="兰州拉面")
    noodles = factories.make_item(
        window,
        name="牛肉拉面",
        price_fen=1500,
        packaging_fen=100,
        options=[("Size", True, False, [("Regular", 0), ("Large", 300)])],
    )
    student = factories.make_user(username="student", gender="female")
    factories.fund_wallet(student, at_least=10_000)
    factories.make_rider(campus, gender="male", username="rider1")
    return {
        "slug": window.slug,
        "item": noodles.pk,
        "large": factories.option_ids(noodles, "Large")[0],
        "D3": str(factories.building(campus, "D3").pk),
    }


@pytest.fixture
def merchant_page(playwright_browser, live, page_watch):
    """A desktop page for the merchant (its own cookies), watched like browser_page."""
    context = playwright_browser.new_context(
        viewport={"width": 1280, "height": 900}, locale="en-US", timezone_id="Asia/Shanghai",
        base_url=live.url,
    )  # fmt: skip
    context.set_default_timeout(10_000)

    def guard(route):
        if _is_local(route.request.url):
            route.continue_()
        else:
            page_watch.offsite.append(route.request.url)
            route.abort("blockedbyclient")

    context.route("**/*", guard)
    page = context.new_page()
    page.on("pageerror", lambda exc: page_watch.errors.append(f"merchant pageerror: {exc}"))
    page.on(
        "console",
        lambda msg: (
            page_watch.errors.append(f"merchant console: {msg.text}")
            if msg.type == "error"
            else None
        ),
    )
    try:
        yield page
    finally:
        context.close()


def test_student_orders_the_merchant_sees_it_live_and_a_rider_takes_it_by_the_ticket(
    shop, live, browser_page, merchant_page, login, api_as, page_watch, screenshot_dir
):
    slug = shop["slug"]
    merchant = merchant_page
    login(merchant, "window_staff")
    merchant.goto(f"/merchant/{slug}/")
    merchant.wait_for_selector("#conn.live")
    merchant.click("#sound-toggle")  # a tap: browsers allow sound after one
    merchant.evaluate("window.__sameDocument = true")
    assert merchant.locator("#col-new .ticket").count() == 0

    # The student orders from the window's menu, through the pages.
    page = browser_page
    login(page, "student")
    page.goto("/takeout/")
    page.click(f"[data-merchant='{slug}']")
    dish = page.locator(f"#item-{shop['item']}")
    dish.locator("summary").click()
    dish.locator(f"input[name=options][value='{shop['large']}']").check()
    with page.expect_navigation():
        dish.locator("button:has-text('Add to cart')").click()
    assert "1 item" in page.locator("#cart").inner_text()
    with page.expect_navigation():
        page.click("#checkout-link")
    with page.expect_navigation():  # choosing the building re-prices the order (its fee)
        page.select_option("#id_dropoff_building", shop["D3"])
    page.fill("#id_dropoff_detail", "402")
    assert page.locator("#price-lines tr[data-code='new_user']").count() == 1
    total = page.locator("#total").inner_text()
    with page.expect_navigation():
        page.click("#place-order")
    number = page.url.rstrip("/").rsplit("/", 1)[-1]
    assert page.url == f"{live.url}/orders/{number}/"
    page.wait_for_selector("#takeout-track [data-status='new'].done")
    assert "Expected ready at" in page.locator("#ready-time").inner_text()

    # The merchant's open inbox shows it without a reload, rings and flashes the title.
    ticket = merchant.locator(f"#col-new #ticket-{number}")
    ticket.wait_for()
    assert "牛肉拉面" in ticket.inner_text() and "Large" in ticket.inner_text()
    state = merchant.evaluate("window.merchantInbox.state()")
    assert state["rings"] >= 1 and state["soundOn"] is True
    merchant.wait_for_function("document.title.includes('New order!')")
    assert merchant.evaluate("window.__sameDocument") is True
    merchant.screenshot(path=str(screenshot_dir / "merchant_inbox.png"), full_page=True)

    # Accept, then ready (出餐); the student's page follows on the merchant track.
    with merchant.expect_navigation():
        ticket.locator("[data-action='accept']").click()
    page.wait_for_selector("#takeout-track [data-status='accepted'].done")
    with merchant.expect_navigation():
        merchant.locator(f"#col-kitchen #ticket-{number} [data-action='ready']").click()
    merchant.locator(f"#col-ready #ticket-{number}").wait_for()
    page.wait_for_selector("#takeout-track [data-status='ready'].done")
    assert "Ready since" in page.locator("#ready-time").inner_text()

    # The printed ticket: its QR and the order's code under it.
    merchant.goto(f"/merchant/{slug}/tickets/{number}/print/")
    assert merchant.locator("#slip svg").count() == 1
    code = merchant.locator("#ticket-code").inner_text()
    assert code.replace(" ", "") == number
    merchant.screenshot(path=str(screenshot_dir / "merchant_ticket.png"))

    # A rider accepts by the ticket's code; the student's page shows the rider.
    rider = api_as("rider1")
    assert rider.ok("/api/rider/online/", {"online": True})["online"] is True
    assert rider.ok("/api/rider/scan/", {"code": code})["action"] == "accepted"
    page.wait_for_function("document.body.dataset.status === 'accepted'")

    # The merchant hands the bag over; a second scan confirms the pickup.
    merchant.goto(f"/merchant/{slug}/")
    with merchant.expect_navigation():
        merchant.locator(f"#ticket-{number} [data-action='handover']").click()
    assert rider.ok("/api/rider/scan/", {"code": code})["action"] == "picked_up"
    page.wait_for_function("document.body.dataset.status === 'picked_up'")
    page.screenshot(path=str(screenshot_dir / "takeout_order.png"), full_page=True)
    assert total.startswith("¥")
    page_watch.assert_clean()
