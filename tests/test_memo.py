"""campus_errand/memo.py: rarely changed rows remembered a few seconds, forgotten on change."""

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from campus_errand.memo import remembered
from orders.models import PricingRule
from tests import factories


def test_a_value_is_loaded_once_within_its_lifetime():
    loads = []

    def load():
        loads.append(1)
        return {"fee": 500}

    assert remembered("test:a", load) == {"fee": 500}
    assert remembered("test:a", load) == {"fee": 500}
    assert len(loads) == 1


def test_none_is_remembered_too():
    loads = []
    assert remembered("test:none", lambda: loads.append(1)) is None
    assert remembered("test:none", lambda: loads.append(1)) is None
    assert len(loads) == 1


def test_memo_seconds_zero_reads_every_time(settings):
    settings.MEMO_SECONDS = 0
    loads = []
    remembered("test:b", lambda: loads.append(1))
    remembered("test:b", lambda: loads.append(1))
    assert len(loads) == 2


def test_saving_a_setting_forgets_what_was_remembered(campus):
    rule = PricingRule.objects.create(campus=campus, band_min_fen=500)
    assert remembered("test:rule", lambda: PricingRule.objects.get(pk=rule.pk).band_min_fen) == 500
    rule.band_min_fen = 700
    rule.save()
    assert remembered("test:rule", lambda: PricingRule.objects.get(pk=rule.pk).band_min_fen) == 700


def test_renaming_a_building_shows_in_the_next_quote(student, campus):
    client = APIClient(HTTP_ACCEPT_LANGUAGE="en")
    client.force_authenticate(student)
    p1, d1 = factories.building(campus, "P1"), factories.building(campus, "D1")
    payload = {"kind": "document", "pickup_building": p1.pk, "dropoff_building": d1.pk}
    assert client.post("/api/orders/quote/", payload, format="json").status_code == 200
    p1.delete()
    refused = client.post("/api/orders/quote/", payload, format="json")
    assert refused.status_code == 400
    assert "pickup_building" in refused.json()


@pytest.mark.django_db
def test_a_quote_and_an_order_read_few_rows(
    student, campus, django_assert_max_num_queries, settings
):
    """The order path's database work, held down (bench/ordering.py measures its speed)."""
    factories.fund_wallet(student, 100_000)
    token = Token.objects.create(user=student).key
    client = APIClient(HTTP_ACCEPT_LANGUAGE="en", HTTP_AUTHORIZATION=f"Token {token}")
    p1, d1 = factories.building(campus, "P1"), factories.building(campus, "D1")
    payload = {
        "kind": "document",
        "pickup_building": p1.pk,
        "dropoff_building": d1.pk,
        "description": "a sealed envelope",
    }
    client.post("/api/orders/quote/", payload, format="json")  # remember the campus's rows

    with django_assert_max_num_queries(1):  # the token
        quote = client.post("/api/orders/quote/", payload, format="json").json()
    # The token; the order and its first event; the wallet, its lock and balance, the escrow,
    # the payment and its entries; the status, its event and the paid check; the events back;
    # and the savepoints of the nested services.
    with django_assert_max_num_queries(22):
        created = client.post(
            "/api/orders/", {**payload, "quote_id": quote["quote_id"]}, format="json"
        )
    assert created.status_code == 201
    assert created.json()["status"] == "open"
    assert [e["status"] for e in created.json()["events"]] == ["pending", "open"]
