"""The orders API: placing, reading and moving orders, bad input, and the API docs."""

import io
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from orders import services
from orders.models import Order
from orders.status import Status
from tests import factories


def png_upload(name: str = "item.png", size=(40, 30)) -> SimpleUploadedFile:
    out = io.BytesIO()
    Image.new("RGB", size, (20, 80, 200)).save(out, format="PNG")
    return SimpleUploadedFile(name, out.getvalue(), content_type="image/png")


def ready_to_pay(user) -> None:
    """Orders open to riders once paid: fund the wallet where payments exist."""
    fund = getattr(factories, "fund_wallet", None)
    if fund is not None:
        fund(user, at_least=100_00)


@pytest.fixture
def payload(campus, student):
    ready_to_pay(student)
    # A document run: the kind that needs nothing beyond the common fields.
    return {
        "kind": "document",
        "pickup_building": factories.building(campus, "P1").pk,
        "pickup_detail": "Shelf 3-12",
        "dropoff_building": factories.building(campus, "D2").pk,
        "dropoff_detail": "Room 402",
        "description": "A sealed envelope for the dean's office",
    }


# --- placing an order --------------------------------------------------------------------------


def test_student_places_an_order_as_json(student, payload, api):
    response = api(student).post("/api/orders/", payload, format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    order = Order.objects.get(number=body["number"])
    assert order.customer == student and order.status == Status.OPEN
    assert body["status"] == "open"
    assert body["pickup"]["building"] == payload["pickup_building"]
    assert body["pickup"]["detail"] == "Shelf 3-12"
    assert body["dropoff"]["detail"] == "Room 402"
    assert body["required_gender"] == "any"
    assert body["price_fen"] > 0
    assert [e["status"] for e in body["events"]] == ["pending", "open"]
    assert body["rider"] is None and body["has_photo"] is False


def test_student_places_an_order_with_a_photo(student, payload, api):
    response = api(student).post(
        "/api/orders/", {**payload, "photo": png_upload()}, format="multipart"
    )
    assert response.status_code == 201, response.content
    order = Order.objects.get(number=response.json()["number"])
    assert response.json()["has_photo"] is True
    # Re-encoded as JPEG under a server-chosen name, whatever the upload was called.
    assert order.photo.name.endswith(".jpg") and "item" not in order.photo.name


def test_order_list_shows_only_my_orders_newest_first(student, other_student, campus, api):
    first = factories.make_order(customer=student, campus=campus)
    second = factories.make_order(customer=student, campus=campus)
    factories.make_order(customer=other_student, campus=campus)

    numbers = [o["number"] for o in api(student).get("/api/orders/").json()]

    assert numbers == [second.number, first.number]


def test_rider_lists_the_orders_they_carry(order, rider_male, api):
    services.order_accept(order=order, rider=rider_male)
    body = api(rider_male).get("/api/orders/?role=rider").json()
    assert [o["number"] for o in body] == [order.number]
    assert api(rider_male).get("/api/orders/").json() == []


def test_order_detail_has_the_timeline(order, student, rider_male, api):
    services.order_accept(order=order, rider=rider_male)
    body = api(student).get(f"/api/orders/{order.number}/").json()
    assert body["status"] == "accepted"
    assert body["status_label"] == "Accepted"
    assert [e["status"] for e in body["events"]] == ["pending", "open", "accepted"]
    assert body["rider"]["name"].endswith("**")
    assert "rider_male" not in str(body)


def test_rider_walks_an_order_through_the_api(order, student, rider_male, api):
    rider = api(rider_male)
    assert rider.post(f"/api/orders/{order.number}/accept/").json()["status"] == "accepted"
    for to in ("picked_up", "delivering", "delivered"):
        response = rider.post(
            f"/api/orders/{order.number}/transition/", {"to": to, "note": "ok"}, format="json"
        )
        assert response.status_code == 200, response.content
        assert response.json()["status"] == to
    done = api(student).post(
        f"/api/orders/{order.number}/transition/", {"to": "completed"}, format="json"
    )
    assert done.json()["status"] == "completed"
    assert order.events.count() == 7


def test_deliver_before_pickup_is_409_through_the_api(order, rider_male, api):
    services.order_accept(order=order, rider=rider_male)
    response = api(rider_male).post(
        f"/api/orders/{order.number}/transition/", {"to": "delivered"}, format="json"
    )
    assert response.status_code == 409
    assert response.json()["code"] == "invalid_transition"
    assert "Delivered" in response.json()["detail"]


def test_customer_cancels_an_open_order(order, student, api):
    response = api(student).post(
        f"/api/orders/{order.number}/transition/", {"to": "cancelled"}, format="json"
    )
    assert response.status_code == 200
    assert Order.objects.get(pk=order.pk).status == Status.CANCELLED


def test_cancel_after_pickup_is_409_through_the_api(order, student, rider_male, api):
    services.order_accept(order=order, rider=rider_male)
    services.order_transition(order=order, to=Status.PICKED_UP, actor=rider_male)
    response = api(student).post(
        f"/api/orders/{order.number}/transition/", {"to": "cancelled"}, format="json"
    )
    assert response.status_code == 409
    assert Order.objects.get(pk=order.pk).status == Status.PICKED_UP


def test_second_rider_gets_409_with_a_clear_message(order, rider_male, api, campus):
    other = factories.make_rider(campus, gender="male")
    assert api(rider_male).post(f"/api/orders/{order.number}/accept/").status_code == 200
    response = api(other).post(f"/api/orders/{order.number}/accept/")
    assert response.status_code == 409
    assert response.json() == {
        "detail": "Another rider has already taken this order.",
        "code": "taken",
    }


# --- bad input: 400 with field messages, never 500 ---------------------------------------------


def test_missing_fields_are_named(student, api):
    response = api(student).post("/api/orders/", {}, format="json")
    assert response.status_code == 400
    body = response.json()
    for field in ("kind", "pickup_building", "dropoff_building"):
        assert body[field], field


MALFORMED_ORDERS = [
    ({"kind": "teleport"}, "kind"),
    ({"kind": ["parcel"]}, "kind"),
    ({"pickup_building": 999999}, "pickup_building"),
    ({"dropoff_building": 10**30}, "dropoff_building"),
    ({"pickup_building": "P1"}, "pickup_building"),
    ({"pickup_building": True}, "pickup_building"),
    ({"dropoff_building": {"id": 1}}, "dropoff_building"),
    ({"dropoff_building": None}, "dropoff_building"),
    ({"description": ""}, "description"),
    ({"description": "x" * 1001}, "description"),
    ({"description": ["a", "list"]}, "description"),
    ({"description": "nul \x00 byte"}, "description"),
    ({"pickup_detail": "y" * 121}, "pickup_detail"),
    ({"required_gender": "robot"}, "required_gender"),
    ({"photo": "not a file"}, "photo"),
]


def test_malformed_order_payload_gets_400_with_a_field_message(student, payload, api):
    client = api(student)
    for change, field in MALFORMED_ORDERS:
        response = client.post("/api/orders/", {**payload, **change}, format="json")
        assert response.status_code == 400, (change, response.content)
        messages = response.json()[field]
        assert messages and all(isinstance(m, str) and m for m in messages), change
    assert not Order.objects.exists()


def test_non_json_body_gets_400(student, api):
    response = api(student).post(
        "/api/orders/", data="{kind: parcel", content_type="application/json"
    )
    assert response.status_code == 400
    assert "JSON" in response.json()["detail"]


def test_json_that_is_not_an_object_gets_400(student, api):
    response = api(student).post("/api/orders/", ["parcel"], format="json")
    assert response.status_code == 400
    assert response.json()["non_field_errors"]


def test_unsupported_media_type_gets_415(student, api):
    response = api(student).post("/api/orders/", data="kind=parcel", content_type="text/plain")
    assert response.status_code == 415


def test_dropoff_that_does_not_admit_the_asked_gender_gets_400(student, payload, api):
    # D2 is a women-only dorm: a male rider could not walk in.
    response = api(student).post(
        "/api/orders/", {**payload, "required_gender": "male"}, format="json"
    )
    assert response.status_code == 400
    assert "does not admit" in response.json()["detail"]
    assert not Order.objects.exists()


def test_pickup_and_dropoff_on_different_campuses_get_400(student, payload, api):
    elsewhere = factories.make_campus()
    response = api(student).post(
        "/api/orders/",
        {**payload, "dropoff_building": factories.building(elsewhere, "D3").pk},
        format="json",
    )
    assert response.status_code == 400
    assert "same campus" in response.json()["detail"]


def photo_message(body: dict) -> str:
    """The refusal, whether given for the photo field or for the request as a whole."""
    return " ".join(body["photo"]) if "photo" in body else body["detail"]


def test_a_file_that_is_not_a_photo_gets_400(student, payload, api):
    fake = SimpleUploadedFile("x.png", b"\x89PNG\r\n\x1a\nnot really", content_type="image/png")
    response = api(student).post("/api/orders/", {**payload, "photo": fake}, format="multipart")
    assert response.status_code == 400
    assert response.json()["photo"]
    assert not Order.objects.exists()


def test_a_gif_photo_is_refused_with_a_message(student, payload, api):
    out = io.BytesIO()
    Image.new("RGB", (10, 10)).save(out, format="GIF")
    gif = SimpleUploadedFile("x.gif", out.getvalue(), content_type="image/gif")
    response = api(student).post("/api/orders/", {**payload, "photo": gif}, format="multipart")
    assert response.status_code == 400
    assert "JPEG" in photo_message(response.json())
    assert not Order.objects.exists()


def test_oversized_photo_is_refused(student, payload, api, settings):
    settings.ORDER_PHOTO_MAX_BYTES = 100
    response = api(student).post(
        "/api/orders/", {**payload, "photo": png_upload()}, format="multipart"
    )
    assert response.status_code == 400
    assert "too large" in photo_message(response.json())
    assert not Order.objects.exists()


@pytest.mark.parametrize(
    "data", [{}, {"to": "flying"}, {"to": ["delivered"]}, {"to": "picked_up", "note": "n" * 256}]
)
def test_malformed_transition_gets_400(data, order, rider_male, api):
    services.order_accept(order=order, rider=rider_male)
    response = api(rider_male).post(f"/api/orders/{order.number}/transition/", data, format="json")
    assert response.status_code == 400
    assert response.json()
    assert Order.objects.get(pk=order.pk).status == Status.ACCEPTED


# --- API docs ----------------------------------------------------------------------------------


def test_schema_is_openapi_3_and_lists_the_order_endpoints(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    for path in (
        "/api/orders/",
        "/api/orders/{number}/",
        "/api/orders/{number}/accept/",
        "/api/orders/{number}/transition/",
        "/api/rider/location/",
        "/api/auth/token/",
    ):
        assert path in schema["paths"], path


def test_docs_page_loads_nothing_from_outside(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger-ui" in html
    assert not re.findall(r"https?://(?!testserver)[^\s\"'<>]+", html)
