"""The rider rates the customer after delivery, once; riders see the customer's average stars."""

import pytest
from django.test import Client

from orders import selectors, services
from orders.models import CustomerRating
from tests import factories
from tests.factories import deliver


@pytest.fixture
def delivered(order, rider_male):
    return deliver(order, rider_male)


def rate(client, order, data=None):
    return client.post(
        f"/api/orders/{order.number}/customer-rating/",
        data if data is not None else {"stars": 4, "tags": ["polite"], "comment": "准时下楼"},
        format="json",
    )


def test_rider_rates_the_customer_once_after_delivery(delivered, student, rider_male, api):
    response = rate(api(rider_male), delivered)
    assert response.status_code == 201, response.content
    rating = CustomerRating.objects.get(order=delivered)
    assert (rating.rider, rating.customer, rating.stars, rating.tags, rating.comment) == (
        rider_male,
        student,
        4,
        ["polite"],
        "准时下楼",
    )
    url = f"/api/orders/{delivered.number}/customer-rating/"
    assert api(rider_male).get(url).json()["stars"] == 4
    again = rate(api(rider_male), delivered, {"stars": 1})
    assert again.status_code == 409 and again.json()["code"] == "already_rated"
    assert CustomerRating.objects.get(order=delivered).stars == 4


def test_customer_rating_is_refused_before_delivery(order, rider_male, api):
    services.order_accept(order=order, rider=rider_male)
    response = rate(api(rider_male), order)
    assert response.status_code == 409 and "delivered" in response.json()["detail"]
    assert not CustomerRating.objects.exists()


def test_customer_rating_refuses_the_customer_strangers_and_bad_payloads(
    delivered, student, other_student, rider_male, api
):
    assert rate(api(), delivered).status_code == 401
    assert rate(api(other_student), delivered).status_code == 404
    assert rate(api(factories.make_rider(delivered.campus)), delivered).status_code == 404
    assert rate(api(student), delivered).status_code == 403
    bad = rate(api(rider_male), delivered, {"stars": 0, "tags": ["on_time"]})
    assert bad.status_code == 400 and set(bad.json()) == {"stars", "tags"}
    assert not CustomerRating.objects.exists()
    # The customer rates the rider and the rider the customer: two separate ratings.
    services.order_rate(order=delivered, customer=student, stars=5)
    assert rate(api(rider_male), delivered).status_code == 201


def test_riders_see_the_customers_average_on_the_order_page_not_customers(
    student, campus, rider_male
):
    for stars in (5, 4, 2):
        order = deliver(factories.make_order(customer=student, campus=campus), rider_male)
        services.order_rate_customer(order=order, rider=rider_male, stars=stars)
    assert selectors.customer_rating_summary(student) == {"count": 3, "average": 3.67}
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(rider_male)
    html = client.get(f"/orders/{order.number}/").content.decode()
    assert 'id="customer-stars"' in html and "3.67★ (3)" in html
    client.force_login(student)
    html = client.get(f"/orders/{order.number}/").content.decode()
    assert 'id="customer-stars"' not in html


def test_rider_rates_the_customer_on_the_order_page(delivered, student, rider_male):
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(rider_male)
    url = f"/orders/{delivered.number}/"
    assert 'id="customer-rating-form"' in client.get(url).content.decode()
    bad = client.post(f"{url}rate-customer/", {"stars": "7"})
    assert bad.status_code == 400 and not CustomerRating.objects.exists()
    response = client.post(f"{url}rate-customer/", {"stars": "2", "tags": ["rude"]}, follow=True)
    html = response.content.decode()
    assert 'id="customer-rating"' in html and 'id="customer-rating-form"' not in html
    assert CustomerRating.objects.get(order=delivered).tags == ["rude"]
    client.force_login(student)
    html = client.get(url).content.decode()
    assert 'id="customer-rating' not in html
