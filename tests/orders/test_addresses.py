"""Saved addresses (building + room + note): their pages, and using one in the order form."""

import pytest

from accounts.models import Address
from orders.models import Order
from tests import factories
from tests.factories import logged_in


@pytest.fixture
def home(student, campus):
    return Address.objects.create(
        user=student,
        label="Dorm",
        building=factories.building(campus, "D2"),
        room="402",
        note="knock twice",
    )


@pytest.fixture
def theirs(other_student, campus):
    return Address.objects.create(
        user=other_student, label="Chemistry", building=factories.building(campus, "D3"), room="B1"
    )


def test_anonymous_visitors_are_sent_to_log_in(home, client):
    for method, url in [
        ("get", "/accounts/addresses/"),
        ("get", f"/accounts/addresses/{home.pk}/"),
        ("post", f"/accounts/addresses/{home.pk}/delete/"),
    ]:
        response = getattr(client, method)(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_the_list_shows_only_my_addresses(home, theirs, student):
    html = logged_in(student).get("/accounts/addresses/").content.decode()
    assert "knock twice" in html and "Dorm" in html
    assert "Chemistry" not in html


def test_student_adds_an_address(student, campus):
    response = logged_in(student).post(
        "/accounts/addresses/",
        {"label": "Library", "building": factories.building(campus, "C1").pk, "room": "3F"},
    )
    assert response.status_code == 302
    address = Address.objects.get(user=student)
    assert (address.label, address.room, address.detail) == ("Library", "3F", "3F")


def test_a_bad_address_gets_400_with_field_messages(student):
    response = logged_in(student).post("/accounts/addresses/", {"label": "", "building": "999"})
    assert response.status_code == 400
    assert set(response.context["form"].errors) == {"label", "building"}
    assert not Address.objects.exists()


def test_student_edits_and_deletes_their_address(home, student, campus):
    client = logged_in(student)
    assert client.get(f"/accounts/addresses/{home.pk}/").status_code == 200
    response = client.post(
        f"/accounts/addresses/{home.pk}/",
        {"label": "Dorm", "building": factories.building(campus, "D2").pk, "room": "405"},
    )
    assert response.status_code == 302
    assert Address.objects.get(pk=home.pk).room == "405"
    assert client.get(f"/accounts/addresses/{home.pk}/delete/").status_code == 405
    assert client.post(f"/accounts/addresses/{home.pk}/delete/").status_code == 302
    assert not Address.objects.filter(pk=home.pk).exists()


def test_someone_elses_address_is_404(theirs, student, campus):
    client = logged_in(student)
    assert client.get(f"/accounts/addresses/{theirs.pk}/").status_code == 404
    edit = client.post(
        f"/accounts/addresses/{theirs.pk}/",
        {"label": "Mine now", "building": factories.building(campus, "C1").pk},
    )
    assert edit.status_code == 404
    assert client.post(f"/accounts/addresses/{theirs.pk}/delete/").status_code == 404
    assert Address.objects.get(pk=theirs.pk).label == "Chemistry"


def test_the_order_form_offers_my_saved_addresses(home, theirs, student):
    response = logged_in(student).get("/orders/new/?kind=document")
    html = response.content.decode()
    assert 'name="address"' in html and "Dorm" in html and "Chemistry" not in html
    assert 'id="saved-addresses"' in html
    assert response.context["form"].address_map == {
        home.pk: {"building": home.building_id, "detail": "402 · knock twice"}
    }


def test_ordering_to_a_saved_address_uses_its_building_and_room(home, student, campus):
    factories.fund_wallet(student, at_least=10_000)
    client = logged_in(student)
    data = {
        "kind": "document",
        "pickup_building": factories.building(campus, "C1").pk,
        "address": home.pk,
        "description": "the signed form",
        "required_gender": "any",
        "tip_fen": "0",
    }
    quote = client.post("/orders/new/?kind=document", data).context["quote"]
    response = client.post("/orders/new/?kind=document", {**data, "quote_id": quote.token})
    assert response.status_code == 302
    order = Order.objects.get()
    assert order.dropoff_building_id == home.building_id
    assert order.dropoff_detail == "402 · knock twice"


def test_someone_elses_address_cannot_be_used_in_an_order(theirs, student, campus):
    response = logged_in(student).post(
        "/orders/new/?kind=document",
        {
            "kind": "document",
            "pickup_building": factories.building(campus, "C1").pk,
            "address": theirs.pk,
            "description": "x",
            "required_gender": "any",
        },
    )
    assert response.status_code == 400
    assert "address" in response.context["form"].errors
