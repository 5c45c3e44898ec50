"""Many riders grabbing one order at the same moment: exactly one wins, the others get 409."""

import threading
from collections import Counter

import pytest
from django.db import connection, connections
from rest_framework.test import APIClient

from orders.models import Order, OrderEvent
from orders.status import Status
from tests import factories

RIDERS = 10

on_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="row locks and real concurrent writers need PostgreSQL (SQLite serialises writers)",
)


def grab_all_at_once(order: Order, riders: list) -> list:
    """Each rider POSTs accept from its own thread (own client, own DB connection), together."""
    barrier = threading.Barrier(len(riders))
    results: list = [None] * len(riders)

    def grab(i: int, rider) -> None:
        client = APIClient()
        client.force_authenticate(rider)
        try:
            barrier.wait(timeout=10)
            results[i] = client.post(f"/api/orders/{order.number}/accept/")
        except Exception as exc:  # noqa: BLE001  (reported below, not swallowed)
            results[i] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=grab, args=(i, r)) for i, r in enumerate(riders)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a rider thread hung"
    return results


@on_postgresql
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("trial", range(3))
def test_ten_riders_accepting_at_once_make_exactly_one_winner(trial, student, campus):
    riders = [
        factories.make_rider(campus, gender="male", username=f"racer{trial}_{i}")
        for i in range(RIDERS)
    ]
    order = factories.make_order(customer=student, campus=campus)

    results = grab_all_at_once(order, riders)

    errors = [r for r in results if isinstance(r, Exception)]
    assert not errors, errors
    codes = Counter(r.status_code for r in results)
    assert codes == {200: 1, 409: RIDERS - 1}, codes
    losers = [r.json() for r in results if r.status_code == 409]
    assert all(body["code"] == "taken" for body in losers)
    assert all(body["detail"] == "Another rider has already taken this order." for body in losers)

    winner = riders[[r.status_code for r in results].index(200)]
    order.refresh_from_db()
    assert order.status == Status.ACCEPTED and order.rider == winner
    accepted = OrderEvent.objects.filter(order=order, new_status=Status.ACCEPTED)
    assert accepted.count() == 1
    assert accepted.get().actor == winner


def test_second_rider_after_the_first_gets_409_with_the_message(order, campus, api):
    first = factories.make_rider(campus, gender="male")
    second = factories.make_rider(campus, gender="female")

    won = api(first).post(f"/api/orders/{order.number}/accept/")
    lost = api(second).post(f"/api/orders/{order.number}/accept/")

    assert won.status_code == 200
    assert lost.status_code == 409
    assert lost.json()["detail"] == "Another rider has already taken this order."
    order.refresh_from_db()
    assert order.rider == first
    assert order.events.filter(new_status=Status.ACCEPTED).count() == 1
