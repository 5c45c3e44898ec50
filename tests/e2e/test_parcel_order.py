"""A student orders a parcel pickup in a real browser: fills the parcel form, watches the live
quote follow the form, places the order (paid from the wallet), and a rider sees it open.

Rows are made in fixtures before the browser starts (see tests/e2e/conftest.py); afterwards the
server's state is read over HTTP, like a client would.
"""

import pytest

from tests import factories

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.timeout(120),
    pytest.mark.django_db(transaction=True),
]

WALLET_FEN = 10_000


@pytest.fixture
def rider(campus):
    return factories.make_rider(campus, gender="male", online=False, username="rider1")


@pytest.fixture
def places(campus) -> dict[str, str]:
    return {code: str(factories.building(campus, code).pk) for code in ("P1", "D3")}


@pytest.fixture
def funded_student(student):
    factories.fund_wallet(student, at_least=WALLET_FEN)
    return student


@pytest.fixture
def photo_file(tmp_path):
    path = tmp_path / "parcel.jpg"
    path.write_bytes(factories.image_bytes("JPEG", size=(800, 600), exif_gps=True))
    return str(path)


def _total_fen(page) -> int:
    text = page.locator("#quote-total").inner_text().strip().lstrip("¥")
    whole, _, cents = text.partition(".")
    return int(whole) * 100 + int(cents or 0)


def test_student_orders_a_parcel_with_a_live_quote_and_a_rider_sees_it(
    campus,
    places,
    funded_student,
    rider,
    photo_file,
    live,
    browser_page,
    login,
    api_as,
    screenshot_dir,
):
    page = browser_page
    student_api, rider_api = api_as("student"), api_as("rider1")

    login(page, "student")
    page.goto("/orders/new/?kind=parcel")
    assert page.locator(".kind-tabs a.active").inner_text() == "Parcel pickup"
    page.select_option("#id_pickup_building", places["P1"])
    page.select_option("#id_dropoff_building", places["D3"])
    page.fill("#id_dropoff_detail", "Room 402")
    page.select_option("#id_courier", "sf")
    page.fill("#id_pickup_code", "8-3-2046")
    page.select_option("#id_size_class", "small")
    page.set_input_files("#id_photo", photo_file)

    # The live quote appears, line by line, and follows the form.
    page.wait_for_selector("#quote-total")
    page.wait_for_function("() => document.getElementById('id_quote_id').value !== ''")
    small = _total_fen(page)
    codes = page.locator(".quote-lines tr[data-code]").evaluate_all(
        "rows => rows.map(r => r.dataset.code)"
    )
    assert codes[0] == "base" and "distance" in codes
    page.select_option("#id_size_class", "heavy")
    page.wait_for_function(
        "() => !!document.querySelector('.quote-lines tr[data-code=size]')"
        " && document.getElementById('id_quote_id').value !== ''"
    )
    heavy = _total_fen(page)
    size_row = page.locator(".quote-lines tr[data-code=size]")
    assert size_row.locator(".amount").inner_text() == "¥6.00"
    assert heavy > small  # (the small parcel's fee was raised to the ¥5.00 band minimum)
    page.select_option("#id_tip_fen", "200")
    page.wait_for_function(
        "() => !!document.querySelector('.quote-lines tr[data-code=tip]')"
        " && document.getElementById('id_quote_id').value !== ''"
    )
    quoted = _total_fen(page)
    assert quoted == heavy + 200
    page.screenshot(path=str(screenshot_dir / "parcel_form.png"), full_page=True)

    # Placing the order pays it from the wallet at the quoted price; the order opens.
    with page.expect_navigation():
        page.click("#place-order")
    number = page.url.rstrip("/").rsplit("/", 1)[-1]
    assert page.url == f"{live.url}/orders/{number}/"
    page.wait_for_function("s => document.body.dataset.status === s", arg="open")
    assert page.locator("#pickup-code").inner_text() == "8-3-2046"  # the customer sees it
    order = student_api.get(f"/api/orders/{number}/").data
    assert order["status"] == "open"
    assert order["total_fen"] == quoted and order["tip_fen"] == 200
    assert order["details"] == {"courier": "sf", "size_class": "heavy", "pickup_code": "8-3-2046"}
    assert order["has_photo"] is True
    wallet = student_api.get("/api/wallet/").data
    assert wallet["balance_fen"] == WALLET_FEN - quoted

    # A rider who goes online sees it on the board, without the pickup code.
    assert rider_api.ok("/api/rider/online/", {"online": True})["online"] is True
    board = rider_api.get("/api/rider/board/").data
    mine = [o for o in board if o["number"] == number]
    assert mine, board
    assert mine[0]["price_fen"] == order["price_fen"]
    assert mine[0]["details"]["pickup_code"] is None
    page.screenshot(path=str(screenshot_dir / "parcel_order.png"), full_page=True)
