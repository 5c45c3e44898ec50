"""Who may see and move an order, through pages and the API (sockets: tests/tracking)."""

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from PIL import Image

from orders import services
from orders.models import Order, RequiredGender
from orders.status import Status
from riders.models import RiderProfile
from tests import factories
from tests.factories import logged_in


def png_upload(name: str = "item.png") -> SimpleUploadedFile:
    out = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 80, 20)).save(out, format="PNG")
    return SimpleUploadedFile(name, out.getvalue(), content_type="image/png")


@pytest.fixture
def photo_order(student, campus):
    return factories.make_order(customer=student, campus=campus, photo=png_upload())


# --- strangers: 404, no hint that the order exists ---------------------------------------------


def test_other_student_gets_404_on_order_page(order, other_student):
    response = logged_in(other_student).get(f"/orders/{order.number}/")
    assert response.status_code == 404


def test_other_student_gets_404_on_order_api(order, other_student, api):
    response = api(other_student).get(f"/api/orders/{order.number}/")
    assert response.status_code == 404
    assert order.number not in response.content.decode()


def test_unknown_and_foreign_order_numbers_look_the_same(order, other_student, api):
    client = api(other_student)
    foreign = client.get(f"/api/orders/{order.number}/")
    missing = client.get("/api/orders/26010100000000/")
    assert foreign.status_code == missing.status_code == 404
    assert foreign.json() == missing.json()


def test_stranger_gets_404_for_anything_on_the_api(order, other_student, api):
    client = api(other_student)
    for method, suffix, data in [
        ("get", "", None),
        ("post", "accept/", None),
        ("post", "transition/", {"to": "cancelled"}),
        ("post", "transition/", {"to": "delivered"}),
    ]:
        response = getattr(client, method)(
            f"/api/orders/{order.number}/{suffix}", data, format="json"
        )
        assert response.status_code == 404, (method, suffix, data)
    order.refresh_from_db()
    assert order.status == Status.OPEN and order.events.count() == 2


def test_stranger_cannot_cancel_through_the_page(order, other_student):
    response = logged_in(other_student).post(f"/orders/{order.number}/cancel/")
    assert response.status_code == 404
    assert Order.objects.get(pk=order.pk).status == Status.OPEN


def test_order_photo_is_404_for_strangers_and_served_to_the_owner(
    photo_order, student, other_student
):
    url = f"/orders/{photo_order.number}/photo/"
    assert logged_in(other_student).get(url).status_code == 404
    assert Client().get(url).status_code == 302
    response = logged_in(student).get(url)
    assert response.status_code == 200
    assert response["Content-Type"] == "image/jpeg"
    assert b"".join(response.streaming_content)[:2] == b"\xff\xd8"


def test_order_without_photo_has_no_photo_url(order, student):
    assert logged_in(student).get(f"/orders/{order.number}/photo/").status_code == 404


def test_operator_and_assigned_rider_may_view_the_order(order, operator, rider_male, api):
    services.order_accept(order=order, rider=rider_male)
    for user in (operator, rider_male):
        assert logged_in(user).get(f"/orders/{order.number}/").status_code == 200
        assert api(user).get(f"/api/orders/{order.number}/").status_code == 200


def test_unassigned_rider_cannot_view_an_order(order, rider_female, api):
    assert logged_in(rider_female).get(f"/orders/{order.number}/").status_code == 404
    assert api(rider_female).get(f"/api/orders/{order.number}/").status_code == 404


# --- anonymous: login redirect on pages, 401 on the API ----------------------------------------

PAGES = [
    ("get", "/orders/"),
    ("get", "/orders/new/"),
    ("get", "/orders/{n}/"),
    ("get", "/orders/{n}/photo/"),
    ("post", "/orders/{n}/cancel/"),
    ("get", "/rider/"),
    ("post", "/rider/online/"),
    ("post", "/rider/orders/{n}/accept/"),
    ("post", "/rider/orders/{n}/advance/"),
]
API = [
    ("get", "/api/orders/"),
    ("post", "/api/orders/"),
    ("get", "/api/orders/{n}/"),
    ("post", "/api/orders/{n}/accept/"),
    ("post", "/api/orders/{n}/transition/"),
    ("post", "/api/rider/online/"),
    ("get", "/api/rider/board/"),
    ("post", "/api/rider/location/"),
]


def test_anonymous_pages_redirect_to_login(order):
    client = Client()
    for method, path in PAGES:
        response = getattr(client, method)(path.format(n=order.number))
        assert response.status_code == 302, path
        assert response["Location"].startswith("/accounts/login/?next="), path


def test_anonymous_api_gets_401(order, api):
    client = api()
    for method, path in API:
        response = getattr(client, method)(path.format(n=order.number), {}, format="json")
        assert response.status_code == 401, path
        assert response["WWW-Authenticate"].startswith("Token"), path


# --- wrong method: 405 -------------------------------------------------------------------------


def test_wrong_method_on_pages_is_405(order, student):
    client = logged_in(student)
    for method, path in [
        ("post", "/"),
        ("post", "/orders/"),
        ("post", "/orders/{n}/"),
        ("get", "/orders/{n}/cancel/"),
        ("delete", "/orders/{n}/"),
        ("get", "/rider/online/"),
        ("get", "/rider/orders/{n}/accept/"),
    ]:
        response = getattr(client, method)(path.format(n=order.number))
        assert response.status_code == 405, (method, path)


def test_wrong_method_on_the_api_is_405(order, student, api):
    client = api(student)
    for method, path in [
        ("put", "/api/orders/{n}/"),
        ("delete", "/api/orders/{n}/"),
        ("patch", "/api/orders/{n}/"),
        ("get", "/api/orders/{n}/accept/"),
        ("get", "/api/orders/{n}/transition/"),
        ("delete", "/api/orders/"),
        ("get", "/api/rider/location/"),
        ("get", "/api/auth/token/"),
    ]:
        response = getattr(client, method)(path.format(n=order.number))
        assert response.status_code == 405, (method, path)
    assert Order.objects.get(pk=order.pk).status == Status.OPEN


# --- riders: who may take and move which order --------------------------------------------------


def test_unassigned_rider_cannot_transition_someone_elses_order(
    order, rider_male, rider_female, api
):
    services.order_accept(order=order, rider=rider_male)
    response = api(rider_female).post(
        f"/api/orders/{order.number}/transition/", {"to": "picked_up"}, format="json"
    )
    assert response.status_code == 403
    assert Order.objects.get(pk=order.pk).status == Status.ACCEPTED


def test_customer_marking_delivered_gets_403(order, student, rider_male, api):
    services.order_accept(order=order, rider=rider_male)
    services.order_transition(order=order, to=Status.PICKED_UP, actor=rider_male)
    services.order_transition(order=order, to=Status.DELIVERING, actor=rider_male)

    response = api(student).post(
        f"/api/orders/{order.number}/transition/", {"to": "delivered"}, format="json"
    )

    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"
    assert Order.objects.get(pk=order.pk).status == Status.DELIVERING


def test_unapproved_rider_cannot_go_online(campus, api):
    rider = factories.make_rider(campus, gender="male", verified=False)
    response = api(rider).post("/api/rider/online/", {"online": True}, format="json")
    assert response.status_code == 403
    assert "approved" in response.json()["detail"]
    assert RiderProfile.objects.get(user=rider).online is False


def test_unapproved_rider_cannot_go_online_through_the_page(campus):
    rider = factories.make_rider(campus, gender="male", verified=False)
    response = logged_in(rider).post("/rider/online/", {"online": "1"}, follow=True)
    assert "approved" in response.content.decode()
    assert RiderProfile.objects.get(user=rider).online is False


def test_approved_rider_goes_online_and_offline(campus, api):
    rider = factories.make_rider(campus, gender="male", online=False)
    client = api(rider)
    assert client.post("/api/rider/online/", {"online": True}, format="json").json() == {
        "online": True,
        "verified": True,
    }
    profile = RiderProfile.objects.get(user=rider)
    assert profile.online and profile.online_since is not None
    client.post("/api/rider/online/", {"online": False}, format="json")
    profile.refresh_from_db()
    assert not profile.online and profile.online_since is None


def test_non_rider_cannot_go_online(student, api):
    assert (
        api(student).post("/api/rider/online/", {"online": True}, format="json").status_code == 403
    )


def test_unapproved_rider_cannot_accept(order, campus, api):
    rider = factories.make_rider(campus, gender="female", verified=False)
    response = api(rider).post(f"/api/orders/{order.number}/accept/")
    assert response.status_code == 403
    assert "approved" in response.json()["detail"]
    assert Order.objects.get(pk=order.pk).status == Status.OPEN


def test_offline_rider_cannot_accept(order, campus, api):
    rider = factories.make_rider(campus, gender="female", online=False)
    response = api(rider).post(f"/api/orders/{order.number}/accept/")
    assert response.status_code == 403
    assert "online" in response.json()["detail"]
    assert Order.objects.get(pk=order.pk).rider is None


def test_male_rider_cannot_accept_order_to_female_only_dorm(student, campus, rider_male, api):
    order = factories.make_order(customer=student, campus=campus, dropoff="D2")
    response = api(rider_male).post(f"/api/orders/{order.number}/accept/")
    assert response.status_code == 403
    assert "cannot enter" in response.json()["detail"]
    assert Order.objects.get(pk=order.pk).status == Status.OPEN


def test_male_rider_cannot_accept_order_asking_for_a_female_rider(
    student, campus, rider_male, rider_female, api
):
    order = factories.make_order(
        customer=student, campus=campus, required_gender=RequiredGender.FEMALE
    )
    response = api(rider_male).post(f"/api/orders/{order.number}/accept/")
    assert response.status_code == 403
    assert "other gender" in response.json()["detail"]
    assert api(rider_female).post(f"/api/orders/{order.number}/accept/").status_code == 200


def test_female_rider_cannot_accept_order_to_male_only_dorm(student, campus, rider_female, api):
    order = factories.make_order(customer=student, campus=campus, dropoff="D1")
    assert api(rider_female).post(f"/api/orders/{order.number}/accept/").status_code == 403


def test_rider_cannot_accept_own_order(campus, api):
    rider = factories.make_rider(campus, gender="male")
    order = factories.make_order(customer=rider, campus=campus)
    response = api(rider).post(f"/api/orders/{order.number}/accept/")
    assert response.status_code == 403


def test_rider_cannot_accept_an_order_on_another_campus(order, api):
    elsewhere = factories.make_campus()
    rider = factories.make_rider(elsewhere, gender="female")
    response = api(rider).post(f"/api/orders/{order.number}/accept/")
    assert response.status_code == 403
    assert Order.objects.get(pk=order.pk).status == Status.OPEN


def test_non_rider_cannot_use_the_rider_board(student, api):
    assert logged_in(student).get("/rider/").status_code == 403
    assert api(student).get("/api/rider/board/").status_code == 403


def test_rider_page_refuses_what_the_api_refuses(student, campus, rider_male):
    order = factories.make_order(customer=student, campus=campus, dropoff="D2")
    response = logged_in(rider_male).post(f"/rider/orders/{order.number}/accept/", follow=True)
    assert response.status_code == 200
    assert "cannot enter" in response.content.decode()
    assert Order.objects.get(pk=order.pk).status == Status.OPEN
