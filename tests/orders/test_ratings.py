"""The customer rates the rider after delivery, once per order; operators read ratings in admin."""

import pytest
from django.db import IntegrityError

from orders import selectors, services
from orders.models import Rating
from tests import factories
from tests.factories import deliver, logged_in


@pytest.fixture
def delivered(order, rider_male):
    return deliver(order, rider_male)


def rate(client, order, data=None):
    return client.post(
        f"/api/orders/{order.number}/rating/",
        data if data is not None else {"stars": 4, "tags": ["on_time"], "comment": "快"},
        format="json",
    )


def test_customer_rates_the_rider_after_delivery(delivered, student, rider_male, api):
    response = rate(api(student), delivered)
    assert response.status_code == 201, response.content
    assert response.json()["stars"] == 4
    rating = Rating.objects.get(order=delivered)
    assert (rating.rider, rating.customer, rating.tags, rating.comment) == (
        rider_male,
        student,
        ["on_time"],
        "快",
    )
    assert api(student).get(f"/api/orders/{delivered.number}/rating/").json()["stars"] == 4


def test_a_second_rating_of_the_same_order_is_refused(delivered, student, api):
    assert rate(api(student), delivered).status_code == 201
    again = rate(api(student), delivered, {"stars": 1})
    assert again.status_code == 409 and again.json()["code"] == "already_rated"
    assert Rating.objects.get(order=delivered).stars == 4


def test_the_database_allows_one_rating_per_order(delivered, student, rider_male):
    Rating.objects.create(order=delivered, customer=student, rider=rider_male, stars=5)
    with pytest.raises(IntegrityError):
        Rating.objects.create(order=delivered, customer=student, rider=rider_male, stars=1)


def test_rating_before_delivery_is_refused(order, student, rider_male, api):
    services.order_accept(order=order, rider=rider_male)
    response = rate(api(student), order)
    assert response.status_code == 409 and "delivered" in response.json()["detail"]


def test_rating_endpoint_refuses_anonymous_strangers_the_rider_and_bad_payloads(
    delivered, other_student, rider_male, student, api
):
    url = f"/api/orders/{delivered.number}/rating/"
    assert rate(api(), delivered).status_code == 401
    assert rate(api(other_student), delivered).status_code == 404
    assert rate(api(rider_male), delivered).status_code == 403
    assert api(student).put(url, {"stars": 5}, format="json").status_code == 405
    assert api(student).get(url).status_code == 404  # not rated yet
    bad = rate(api(student), delivered, {"stars": 9, "tags": ["telepathic"]})
    assert bad.status_code == 400 and set(bad.json()) == {"stars", "tags"}
    assert not Rating.objects.exists()


def test_customer_rates_on_the_order_page(delivered, student):
    client = logged_in(student)
    assert 'id="rating-form"' in client.get(f"/orders/{delivered.number}/").content.decode()
    response = client.post(
        f"/orders/{delivered.number}/rate/", {"stars": "5", "tags": ["careful"]}, follow=True
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="rating"' in html and 'id="rating-form"' not in html
    assert Rating.objects.get(order=delivered).stars == 5


def test_rider_rating_summary_averages_their_ratings(student, campus, rider_male):
    for stars in (5, 4, 2):
        order = deliver(factories.make_order(customer=student, campus=campus), rider_male)
        services.order_rate(order=order, customer=student, stars=stars)
    assert selectors.rider_rating_summary(rider_male) == {"count": 3, "average": 3.67}
    assert selectors.rider_rating_summary(factories.make_rider(campus)) == {
        "count": 0,
        "average": None,
    }


def test_operators_see_ratings_in_admin(delivered, student, operator):
    from django.contrib.auth.models import Permission

    operator.user_permissions.add(Permission.objects.get(codename="view_rating"))
    services.order_rate(order=delivered, customer=student, stars=3, comment="a bit late")
    client = logged_in(operator)
    html = client.get("/admin/orders/rating/").content.decode()
    assert "a bit late" in html
    assert client.get("/admin/orders/rating/add/").status_code == 403


def test_rating_twice_on_the_page_answers_409_with_the_reason(delivered, student):
    client = logged_in(student)
    url = f"/orders/{delivered.number}/rate/"
    assert client.post(url, {"stars": "5"}).status_code == 302
    again = client.post(url, {"stars": "1"}, HTTP_ACCEPT_LANGUAGE="en")
    assert again.status_code == 409
    assert "already" in again.content.decode()
    assert Rating.objects.get(order=delivered).stars == 5
