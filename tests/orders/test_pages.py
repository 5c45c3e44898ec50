"""The customer and rider pages: they render in both languages, in a fixed number of queries."""

import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from orders import services
from orders.models import Order
from orders.status import Status
from tests import factories

LANGUAGES = [("zh-hans", "zh-hans"), ("en", "en")]

# Upper bounds per page. They leave room for features; what must never happen is a query per
# order, which test_*_queries_do_not_grow_with_orders catch.
MAX_QUERIES = {
    "home_anonymous": 2,
    "home": 8,
    "new_form": 10,
    "new_post": 60,
    "new_invalid": 12,
    "my_orders": 8,
    "detail": 14,
    "board": 14,
}


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def page_language(response) -> str:
    match = re.search(r'<html lang="([^"]+)"', response.content.decode())
    assert match, "no <html lang>"
    return match.group(1)


def queries_for(client, url: str) -> int:
    client.get(url)  # warm caches (session, campus graph) so both counts compare like with like
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


def ready_to_pay(user) -> None:
    """Orders open to riders once paid: fund the wallet where payments exist."""
    fund = getattr(factories, "fund_wallet", None)
    if fund is not None:
        fund(user, at_least=100_00)


def submit_order_form(client, data: dict, **extra):
    """POST the new-order form as a browser without script does, confirming the price if the
    page shows it first (it then carries the quote in a hidden field)."""
    response = client.post("/orders/new/", data, **extra)
    quote = re.search(r'name="quote_id"[^>]*value="([^"]+)"', response.content.decode())
    if response.status_code == 200 and quote:
        response = client.post("/orders/new/", {**data, "quote_id": quote.group(1)}, **extra)
    return response


def document_order(campus, **kw) -> dict:
    """Form data for a document run: the kind that needs nothing beyond the common fields."""
    return {
        "kind": "document",
        "pickup_building": factories.building(campus, "P1").pk,
        "pickup_detail": "Office 3-12",
        "dropoff_building": factories.building(campus, "D2").pk,
        "dropoff_detail": "402",
        "description": "A sealed envelope",
        "required_gender": "female",
        **kw,
    }


@pytest.fixture
def busy_student(student, campus, rider_male):
    """A student with several orders in different states, so per-order queries would show."""
    orders = [factories.make_order(customer=student, campus=campus) for _ in range(4)]
    services.order_accept(order=orders[0], rider=rider_male)
    services.order_transition(order=orders[0], to=Status.PICKED_UP, actor=rider_male)
    services.order_transition(order=orders[1], to=Status.CANCELLED, actor=student)
    return student


# --- home --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("accept", "lang"), LANGUAGES)
def test_home_renders_for_anonymous_visitors(
    accept, lang, db, client, django_assert_max_num_queries
):
    with django_assert_max_num_queries(MAX_QUERIES["home_anonymous"]):
        response = client.get("/", HTTP_ACCEPT_LANGUAGE=accept)
    assert response.status_code == 200
    assert page_language(response) == lang
    assert "/accounts/login/" in response.content.decode()


def test_a_chinese_browser_gets_the_chinese_page(db, client):
    response = client.get("/", HTTP_ACCEPT_LANGUAGE="zh-CN,zh;q=0.9,en;q=0.8")
    assert page_language(response) == "zh-hans"


@pytest.mark.parametrize(("accept", "lang"), LANGUAGES)
def test_home_lists_active_orders(accept, lang, busy_student, django_assert_max_num_queries):
    client = logged_in(busy_student)
    with django_assert_max_num_queries(MAX_QUERIES["home"]):
        response = client.get("/", HTTP_ACCEPT_LANGUAGE=accept)
    assert response.status_code == 200
    assert page_language(response) == lang
    active = Order.objects.filter(customer=busy_student).exclude(status=Status.CANCELLED)
    html = response.content.decode()
    assert all(f"/orders/{o.number}/" in html for o in active)
    cancelled = Order.objects.get(customer=busy_student, status=Status.CANCELLED)
    assert f"/orders/{cancelled.number}/" not in html


# --- new order ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("accept", "lang"), LANGUAGES)
def test_new_order_form_renders(accept, lang, student, campus, django_assert_max_num_queries):
    client = logged_in(student)
    with django_assert_max_num_queries(MAX_QUERIES["new_form"]):
        response = client.get("/orders/new/?kind=document", HTTP_ACCEPT_LANGUAGE=accept)
    assert response.status_code == 200
    assert page_language(response) == lang
    html = response.content.decode()
    assert 'name="pickup_building"' in html and 'name="dropoff_building"' in html
    for building in campus.buildings.all():
        assert f'value="{building.pk}"' in html


def test_new_order_post_creates_the_order_and_redirects(
    student, campus, django_assert_max_num_queries
):
    ready_to_pay(student)
    client = logged_in(student)
    with django_assert_max_num_queries(MAX_QUERIES["new_post"]):
        response = submit_order_form(client, document_order(campus))
    order = Order.objects.get(customer=student)
    assert response.status_code == 302
    assert response["Location"].startswith(f"/orders/{order.number}/")
    assert (order.kind, order.required_gender, order.dropoff_detail) == (
        "document",
        "female",
        "402",
    )
    assert order.events.first().new_status == Status.PENDING


@pytest.mark.parametrize(("accept", "lang"), LANGUAGES)
def test_new_order_post_invalid_returns_400_with_messages(
    accept, lang, student, campus, django_assert_max_num_queries
):
    client = logged_in(student)
    with django_assert_max_num_queries(MAX_QUERIES["new_invalid"]):
        response = client.post(
            "/orders/new/",
            {"kind": "teleport", "pickup_building": "999999", "description": ""},
            HTTP_ACCEPT_LANGUAGE=accept,
        )
    assert response.status_code == 400
    assert page_language(response) == lang
    errors = response.context["form"].errors
    assert {"pickup_building", "dropoff_building"} <= set(errors)
    assert response.content.decode().count('class="error"') >= 2
    assert not Order.objects.exists()


def test_new_order_with_a_gender_the_dropoff_does_not_admit_is_400(student, campus):
    ready_to_pay(student)
    response = submit_order_form(logged_in(student), document_order(campus, required_gender="male"))
    assert response.status_code == 400
    assert "does not admit" in response.content.decode()
    assert not Order.objects.exists()


# --- my orders and the order page --------------------------------------------------------------


@pytest.mark.parametrize(("accept", "lang"), LANGUAGES)
def test_my_orders_lists_every_order(accept, lang, busy_student, django_assert_max_num_queries):
    client = logged_in(busy_student)
    with django_assert_max_num_queries(MAX_QUERIES["my_orders"]):
        response = client.get("/orders/", HTTP_ACCEPT_LANGUAGE=accept)
    assert response.status_code == 200
    assert page_language(response) == lang
    html = response.content.decode()
    assert all(f"/orders/{o.number}/" in html for o in busy_student.orders.all())


def test_list_pages_queries_do_not_grow_with_orders(student, campus, rider_male):
    factories.make_order(customer=student, campus=campus)
    client = logged_in(student)
    few = {url: queries_for(client, url) for url in ("/", "/orders/")}
    for _ in range(4):
        extra = factories.make_order(customer=student, campus=campus)
    services.order_accept(order=extra, rider=rider_male)
    many = {url: queries_for(client, url) for url in ("/", "/orders/")}
    assert many == few


@pytest.mark.parametrize(("accept", "lang"), LANGUAGES)
def test_order_detail_renders_the_live_page(
    accept, lang, order, student, rider_male, django_assert_max_num_queries
):
    services.order_accept(order=order, rider=rider_male)
    services.order_transition(order=order, to=Status.PICKED_UP, actor=rider_male)
    client = logged_in(student)
    with django_assert_max_num_queries(MAX_QUERIES["detail"]):
        response = client.get(f"/orders/{order.number}/", HTTP_ACCEPT_LANGUAGE=accept)
    assert response.status_code == 200
    assert page_language(response) == lang
    html = response.content.decode()
    assert f'data-ws-path="/ws/orders/{order.number}/"' in html
    assert 'id="snapshot"' in html and 'id="status-meta"' in html
    for status in ("pending", "open", "accepted", "picked_up"):
        assert f'data-status="{status}"' in html
    assert "rider_male" not in html  # the rider's public name only


def test_order_page_queries_do_not_grow_with_its_events(student, campus, rider_male):
    client = logged_in(student)
    short, long = (factories.make_order(customer=student, campus=campus) for _ in range(2))
    services.order_accept(order=short, rider=rider_male)
    for _ in range(3):  # the same status, reached with six more events
        services.order_accept(order=long, rider=rider_male)
        services.order_transition(order=long, to=Status.OPEN, actor=rider_male)
    services.order_accept(order=long, rider=rider_male)
    assert long.events.count() == short.events.count() + 6
    assert queries_for(client, f"/orders/{long.number}/") == queries_for(
        client, f"/orders/{short.number}/"
    )


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


# --- the rider board ---------------------------------------------------------------------------


@pytest.mark.parametrize(("accept", "lang"), LANGUAGES)
def test_rider_board_renders_tasks_and_open_orders(
    accept, lang, student, campus, rider_male, django_assert_max_num_queries
):
    waiting = [factories.make_order(customer=student, campus=campus) for _ in range(2)]
    mine = factories.make_order(customer=student, campus=campus)
    services.order_accept(order=mine, rider=rider_male)
    client = logged_in(rider_male)
    with django_assert_max_num_queries(MAX_QUERIES["board"]):
        response = client.get("/rider/", HTTP_ACCEPT_LANGUAGE=accept)
    assert response.status_code == 200
    assert page_language(response) == lang
    html = response.content.decode()
    assert f"/rider/orders/{mine.number}/advance/" in html
    for order in waiting:
        assert f"/rider/orders/{order.number}/accept/" in html


def test_rider_board_queries_do_not_grow_with_orders(student, campus, rider_male):
    factories.make_order(customer=student, campus=campus)
    client = logged_in(rider_male)
    few = queries_for(client, "/rider/")
    for _ in range(3):
        factories.make_order(customer=student, campus=campus)
    assert queries_for(client, "/rider/") == few


def test_rider_walks_an_order_through_the_board(order, rider_male):
    client = logged_in(rider_male)
    client.post(f"/rider/orders/{order.number}/accept/")
    assert Order.objects.get(pk=order.pk).status == Status.ACCEPTED
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
    assert f"/rider/orders/{order.number}/accept/" not in html
