"""The customer and rider pages: they render in both languages, in a fixed number of queries."""

import re

import pytest
from django.test import Client

from orders import services
from orders.models import Order
from orders.status import Status
from tests import factories

LANGUAGES = [("zh-hans", "zh-hans"), ("zh-CN,zh;q=0.9,en;q=0.8", "zh-hans"), ("en", "en")]


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def page_language(response) -> str:
    match = re.search(r'<html lang="([^"]+)"', response.content.decode())
    assert match, "no <html lang>"
    return match.group(1)


@pytest.fixture
def busy_student(student, campus, rider_male):
    """A student with several orders in different states, so per-order queries would show."""
    orders = [factories.make_order(customer=student, campus=campus) for _ in range(4)]
    services.order_accept(order=orders[0], rider=rider_male)
    services.order_transition(order=orders[0], to=Status.PICKED_UP, actor=rider_male)
    services.order_transition(order=orders[1], to=Status.CANCELLED, actor=student)
    return student


@pytest.mark.parametrize(("accept", "lang"), LANGUAGES)
def test_home_renders_for_anonymous_visitors(
    accept, lang, db, client, django_assert_max_num_queries
):
    with django_assert_max_num_queries(1):
        response = client.get("/", HTTP_ACCEPT_LANGUAGE=accept)
    assert response.status_code == 200
    assert page_language(response) == lang
    assert "/accounts/login/" in response.content.decode()


@pytest.mark.parametrize(("accept", "lang"), LANGUAGES)
def test_home_lists_active_orders(accept, lang, busy_student, django_assert_max_num_queries):
    client = logged_in(busy_student)
    with django_assert_max_num_queries(4):
        response = client.get("/", HTTP_ACCEPT_LANGUAGE=accept)
    assert response.status_code == 200
    assert page_language(response) == lang
    active = Order.objects.filter(customer=busy_student).exclude(status=Status.CANCELLED)
    html = response.content.decode()
    assert all(f"/orders/{o.number}/" in html for o in active)
    cancelled = Order.objects.get(customer=busy_student, status=Status.CANCELLED)
    assert f"/orders/{cancelled.number}/" not in html


@pytest.mark.parametrize(("accept", "lang"), LANGUAGES)
def test_new_order_form_renders(accept, lang, student, campus, django_assert_max_num_queries):
    client = logged_in(student)
    with django_assert_max_num_queries(6):
        response = client.get("/orders/new/?kind=buy", HTTP_ACCEPT_LANGUAGE=accept)
    assert response.status_code == 200
    assert page_language(response) == lang
    html = response.content.decode()
    assert 'name="pickup_building"' in html and 'name="dropoff_building"' in html
    assert '<option value="buy" selected>' in html
    assert html.count("<option value=") >= 2 * campus.buildings.count()


def test_new_order_post_creates_the_order_and_redirects(
    student, campus, django_assert_max_num_queries
):
    client = logged_in(student)
    data = {
        "kind": "parcel",
        "pickup_building": factories.building(campus, "P1").pk,
        "pickup_detail": "3-12",
        "dropoff_building": factories.building(campus, "D2").pk,
        "dropoff_detail": "402",
        "description": "Two small boxes",
        "required_gender": "female",
    }
    with django_assert_max_num_queries(16):
        response = client.post("/orders/new/", data)
    order = Order.objects.get(customer=student)
    assert response.status_code == 302
    assert response["Location"] == f"/orders/{order.number}/"
    assert (order.status, order.required_gender, order.dropoff_detail) == ("open", "female", "402")


@pytest.mark.parametrize(("accept", "lang"), LANGUAGES)
def test_new_order_post_invalid_returns_400_with_messages(
    accept, lang, student, campus, django_assert_max_num_queries
):
    client = logged_in(student)
    with django_assert_max_num_queries(7):
        response = client.post(
            "/orders/new/",
            {"kind": "teleport", "pickup_building": "999999", "description": ""},
            HTTP_ACCEPT_LANGUAGE=accept,
        )
    assert response.status_code == 400
    assert page_language(response) == lang
    errors = response.context["form"].errors
    assert set(errors) >= {"kind", "pickup_building", "dropoff_building", "description"}
    assert response.content.decode().count('class="error"') >= 4
    assert not Order.objects.exists()


def test_new_order_with_a_gender_the_dropoff_does_not_admit_is_400(student, campus):
    response = logged_in(student).post(
        "/orders/new/",
        {
            "kind": "parcel",
            "pickup_building": factories.building(campus, "P1").pk,
            "dropoff_building": factories.building(campus, "D2").pk,
            "description": "box",
            "required_gender": "male",
        },
    )
    assert response.status_code == 400
    assert "does not admit" in response.content.decode()
    assert not Order.objects.exists()


@pytest.mark.parametrize(("accept", "lang"), LANGUAGES)
def test_my_orders_lists_every_order(accept, lang, busy_student, django_assert_max_num_queries):
    client = logged_in(busy_student)
    with django_assert_max_num_queries(4):
        response = client.get("/orders/", HTTP_ACCEPT_LANGUAGE=accept)
    assert response.status_code == 200
    assert page_language(response) == lang
    html = response.content.decode()
    assert all(f"/orders/{o.number}/" in html for o in busy_student.orders.all())


@pytest.mark.parametrize(("accept", "lang"), LANGUAGES)
def test_order_detail_renders_the_live_page(
    accept, lang, order, student, rider_male, django_assert_max_num_queries
):
    services.order_accept(order=order, rider=rider_male)
    services.order_transition(order=order, to=Status.PICKED_UP, actor=rider_male)
    client = logged_in(student)
    with django_assert_max_num_queries(8):
        response = client.get(f"/orders/{order.number}/", HTTP_ACCEPT_LANGUAGE=accept)
    assert response.status_code == 200
    assert page_language(response) == lang
    html = response.content.decode()
    assert f'data-ws-path="/ws/orders/{order.number}/"' in html
    assert 'id="snapshot"' in html and 'id="status-meta"' in html
    assert html.count('<li style="--c:') == 4  # pending, open, accepted, picked up
    assert "rider_male" not in html  # the rider's public name only


def test_order_detail_offers_cancel_only_while_allowed(order, student, rider_male):
    client = logged_in(student)
    assert 'id="cancel-form"' in client.get(f"/orders/{order.number}/").content.decode()
    services.order_accept(order=order, rider=rider_male)
    services.order_transition(order=order, to=Status.PICKED_UP, actor=rider_male)
    assert 'id="cancel-form"' not in client.get(f"/orders/{order.number}/").content.decode()


def test_cancel_page_action_cancels_and_says_so(order, student):
    response = logged_in(student).post(f"/orders/{order.number}/cancel/", follow=True)
    assert response.status_code == 200
    assert Order.objects.get(pk=order.pk).status == Status.CANCELLED
    assert "msg-success" in response.content.decode()


def test_cancel_after_pickup_shows_an_error(order, student, rider_male):
    services.order_accept(order=order, rider=rider_male)
    services.order_transition(order=order, to=Status.PICKED_UP, actor=rider_male)
    response = logged_in(student).post(f"/orders/{order.number}/cancel/", follow=True)
    assert "msg-error" in response.content.decode()
    assert Order.objects.get(pk=order.pk).status == Status.PICKED_UP


@pytest.mark.parametrize(("accept", "lang"), LANGUAGES)
def test_rider_board_renders_tasks_and_open_orders(
    accept, lang, student, campus, rider_male, django_assert_max_num_queries
):
    for _ in range(3):
        factories.make_order(customer=student, campus=campus)
    mine = factories.make_order(customer=student, campus=campus)
    services.order_accept(order=mine, rider=rider_male)
    client = logged_in(rider_male)
    with django_assert_max_num_queries(5):
        response = client.get("/rider/", HTTP_ACCEPT_LANGUAGE=accept)
    assert response.status_code == 200
    assert page_language(response) == lang
    html = response.content.decode()
    assert f"/rider/orders/{mine.number}/advance/" in html
    assert html.count("/accept/") == 3


def test_rider_walks_an_order_through_the_board(order, rider_male):
    client = logged_in(rider_male)
    client.post(f"/rider/orders/{order.number}/accept/")
    for to in ("picked_up", "delivering", "delivered"):
        response = client.post(f"/rider/orders/{order.number}/advance/", {"to": to})
        assert response.status_code == 302
        assert Order.objects.get(pk=order.pk).status == to
    response = client.post(
        f"/rider/orders/{order.number}/advance/", {"to": "nonsense"}, follow=True
    )
    assert "msg-error" in response.content.decode()


def test_offline_rider_board_shows_no_open_orders(order, campus):
    rider = factories.make_rider(campus, gender="female", online=False)
    html = logged_in(rider).get("/rider/").content.decode()
    assert "/accept/" not in html
