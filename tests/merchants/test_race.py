"""Two students buying the last portion at the same moment, on PostgreSQL: exactly one gets it,
the other a clear message, and the stock never goes below zero."""

import threading
from collections import Counter

import pytest
from django.db import connection, connections
from rest_framework.test import APIClient

from merchants.models import TakeoutOrder
from tests import factories

on_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="row locks and real concurrent writers need PostgreSQL (SQLite serialises writers)",
)


def buy_all_at_once(window, item, students, building) -> list:
    barrier = threading.Barrier(len(students))
    results: list = [None] * len(students)

    def buy(i, student):
        client = APIClient(HTTP_ACCEPT_LANGUAGE="en")
        client.force_authenticate(student)
        try:
            barrier.wait(timeout=10)
            results[i] = client.post(
                f"/api/takeout/merchants/{window.slug}/orders/",
                {"lines": [{"item": item.pk, "quantity": 1}], "dropoff_building": building.pk},
                format="json",
            )
        except Exception as exc:  # noqa: BLE001  (reported below)
            results[i] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=buy, args=(i, s)) for i, s in enumerate(students)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a buyer thread hung"
    return results


@on_postgresql
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("trial", range(3))
def test_two_students_buying_the_last_portion_at_once(trial, campus, window):
    item = factories.make_item(window, name="最后一份", price_fen=1500, stock=1)
    students = [factories.make_user(username=f"buyer{trial}_{i}") for i in range(2)]
    for s in students:
        factories.fund_wallet(s, at_least=10_000)
    results = buy_all_at_once(window, item, students, factories.building(campus, "D3"))
    assert not [r for r in results if isinstance(r, Exception)], results
    codes = Counter(r.status_code for r in results)
    assert codes == {201: 1, 409: 1}, [(r.status_code, r.json()) for r in results]
    loser = next(r for r in results if r.status_code == 409).json()
    assert loser["code"] == "out_of_stock" and "sold out" in loser["detail"]
    item.refresh_from_db()
    assert item.stock == 0
    assert TakeoutOrder.objects.filter(lines__item=item).count() == 1


@on_postgresql
@pytest.mark.django_db(transaction=True)
def test_five_students_for_three_portions(campus, window):
    item = factories.make_item(window, name="限量", price_fen=900, stock=3)
    students = [factories.make_user(username=f"five_{i}") for i in range(5)]
    for s in students:
        factories.fund_wallet(s, at_least=10_000)
    results = buy_all_at_once(window, item, students, factories.building(campus, "D3"))
    assert Counter(r.status_code for r in results) == {201: 3, 409: 2}
    item.refresh_from_db()
    assert item.stock == 0
