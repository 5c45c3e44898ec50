"""Accept by scanning: the order QR (who may fetch it, what it encodes) and the scan endpoints."""

import io

import pytest
import segno
from django.test import Client
from django.urls import reverse

from orders import services as order_services
from orders.models import Order
from orders.status import Status
from riders.services import scan_code_number
from tests import factories
from tests.factories import logged_in

pytestmark = pytest.mark.django_db


def scan_url(order) -> str:
    return "http://testserver" + reverse("riders:scan_order", args=[order.number])


def expected_svg(url: str) -> bytes:
    out = io.BytesIO()
    segno.make(url, error="m").save(out, kind="svg", scale=8, border=2, xmldecl=False)
    return out.getvalue()


# --- the order QR -----------------------------------------------------------------------------


def test_customer_gets_the_order_qr_encoding_the_scan_url(order, student):
    response = logged_in(student).get(reverse("orders:qr", args=[order.number]))

    assert response.status_code == 200
    assert response["Content-Type"] == "image/svg+xml"
    assert response.content == expected_svg(scan_url(order))
    assert "private" in response["Cache-Control"]


def test_order_page_shows_the_qr_to_the_customer_while_it_is_useful(order, student, rider_male):
    client = logged_in(student)
    qr = reverse("orders:qr", args=[order.number]).encode()
    assert qr in client.get(reverse("orders:detail", args=[order.number])).content

    order_services.order_accept(order=order, rider=rider_male)
    assert qr in client.get(reverse("orders:detail", args=[order.number])).content

    order_services.order_transition(order=order, to=Status.PICKED_UP, actor=rider_male)
    assert qr not in client.get(reverse("orders:detail", args=[order.number])).content


def test_order_qr_for_the_rider_and_operators_too(order, rider_male, operator):
    order_services.order_accept(order=order, rider=rider_male)
    url = reverse("orders:qr", args=[order.number])
    assert logged_in(rider_male).get(url).status_code == 200
    assert logged_in(operator).get(url).status_code == 200


def test_order_qr_is_404_for_strangers(order, other_student, rider_female):
    url = reverse("orders:qr", args=[order.number])
    assert logged_in(other_student).get(url).status_code == 404
    assert logged_in(rider_female).get(url).status_code == 404  # a rider not on this order
    assert (
        logged_in(other_student).get(reverse("orders:qr", args=["26010100000000"])).status_code
        == 404
    )


def test_order_qr_needs_login_and_get(order, student):
    url = reverse("orders:qr", args=[order.number])
    response = Client().get(url)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert logged_in(student).post(url).status_code == 405


# --- reading a code ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "number"),
    [
        ("https://errand.example.edu/rider/scan/26113047291856/", "26113047291856"),
        ("http://10.0.0.5:8000/rider/scan/26113047291856/?utm=x", "26113047291856"),
        ("26113047291856", "26113047291856"),
        (" 26113047291856\n", "26113047291856"),
        ("261130 4729 1856", "26113047291856"),
        ("https://evil.example/26113047291856/other", None),
        ("hello", None),
        ("", None),
    ],
)
def test_scan_code_number(code, number):
    assert scan_code_number(code) == number


# --- the scan API -----------------------------------------------------------------------------


def test_scanning_an_open_order_accepts_it(order, rider_male, api):
    response = api(rider_male).post("/api/rider/scan/", {"code": scan_url(order)}, format="json")

    assert response.status_code == 200
    body = response.json()
    assert body["action"] == "accepted" and body["order"]["status"] == Status.ACCEPTED
    order.refresh_from_db()
    assert order.rider == rider_male and order.status == Status.ACCEPTED


def test_scanning_a_taken_order_is_409(order, rider_male, campus, api):
    other = factories.make_rider(campus, gender="male", username="other_rider")
    order_services.order_accept(order=order, rider=other)

    response = api(rider_male).post("/api/rider/scan/", {"code": scan_url(order)}, format="json")

    assert response.status_code == 409 and response.json()["code"] == "taken"
    order.refresh_from_db()
    assert order.rider == other


def test_scanning_an_order_the_rider_may_not_take_is_403(student, campus, rider_male, api):
    female_only = factories.make_order(customer=student, campus=campus, dropoff="D2")

    response = api(rider_male).post(
        "/api/rider/scan/", {"code": scan_url(female_only)}, format="json"
    )

    assert response.status_code == 403
    assert "gender" in response.json()["detail"]
    female_only.refresh_from_db()
    assert female_only.status == Status.OPEN


def test_offline_rider_scan_is_403(order, campus, api):
    offline = factories.make_rider(campus, gender="male", online=False, username="offline_rider")
    response = api(offline).post("/api/rider/scan/", {"code": order.number}, format="json")
    assert response.status_code == 403


def test_scanning_my_accepted_order_confirms_the_pickup(order, rider_male, api):
    order_services.order_accept(order=order, rider=rider_male)

    response = api(rider_male).post("/api/rider/scan/", {"code": scan_url(order)}, format="json")

    assert response.status_code == 200 and response.json()["action"] == "picked_up"
    order.refresh_from_db()
    assert order.status == Status.PICKED_UP and order.picked_up_at


def test_scanning_my_order_again_changes_nothing(order, rider_male, api):
    order_services.order_accept(order=order, rider=rider_male)
    order_services.order_transition(order=order, to=Status.PICKED_UP, actor=rider_male)
    response = api(rider_male).post("/api/rider/scan/", {"code": order.number}, format="json")
    assert response.status_code == 200 and response.json()["action"] == "none"
    assert Order.objects.get(pk=order.pk).status == Status.PICKED_UP


@pytest.mark.parametrize("code", ["26010100000000", "not a code", "https://x.example/other/"])
def test_scanning_an_unknown_code_is_404(code, rider_male, order, api):
    response = api(rider_male).post("/api/rider/scan/", {"code": code}, format="json")
    assert response.status_code == 404


def test_scan_api_input_and_auth(order, student, rider_male, api):
    assert api().post("/api/rider/scan/", {"code": order.number}, format="json").status_code == 401
    not_rider = api(student).post("/api/rider/scan/", {"code": order.number}, format="json")
    assert not_rider.status_code == 403
    bad = api(rider_male).post("/api/rider/scan/", {}, format="json")
    assert bad.status_code == 400 and "code" in bad.json()
    assert api(rider_male).get("/api/rider/scan/").status_code == 405


# --- the scan pages ---------------------------------------------------------------------------


def test_scan_page_loads_the_scanner(rider_male):
    response = logged_in(rider_male).get(reverse("riders:scan"))
    assert response.status_code == 200
    assert b"riders/qr_reader.js" in response.content
    assert b"riders/scan.js" in response.content
    assert b"vendor/jsQR-1.4.0.min.js" in response.content


def test_typed_order_number_leads_to_the_order(order, rider_male):
    # As printed on tickets, in groups of digits.
    response = logged_in(rider_male).get(reverse("riders:scan"), {"code": order.display_number})
    assert response.status_code == 302
    assert response["Location"] == reverse("riders:scan_order", args=[order.number])
    response = logged_in(rider_male).get(reverse("riders:scan"), {"code": "nonsense"})
    assert response.status_code == 200 and b"No order matches" in response.content


def test_the_qr_link_opens_a_page_to_accept(order, rider_male):
    client = logged_in(rider_male)
    page = client.get(reverse("riders:scan_order", args=[order.number]))
    assert page.status_code == 200 and b'id="scan-accept"' in page.content

    response = client.post(reverse("riders:scan_order", args=[order.number]))

    assert response.status_code == 302 and response["Location"] == reverse("riders:board")
    order.refresh_from_db()
    assert order.rider == rider_male


def test_the_qr_link_of_a_taken_order_shows_no_details(order, rider_male, campus):
    other = factories.make_rider(campus, gender="male", username="other_rider")
    order_services.order_accept(order=order, rider=other)
    client = logged_in(rider_male)

    page = client.get(reverse("riders:scan_order", args=[order.number]))
    assert b"already taken" in page.content
    assert order.dropoff_detail.encode() not in page.content or not order.dropoff_detail

    response = client.post(reverse("riders:scan_order", args=[order.number]), follow=True)
    assert b"already taken" in response.content
    order.refresh_from_db()
    assert order.rider == other


def test_the_qr_link_is_for_riders(order, student):
    response = logged_in(student).get(reverse("riders:scan_order", args=[order.number]))
    assert response.status_code == 403
