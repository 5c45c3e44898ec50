"""Money races on PostgreSQL: requests hitting the same wallet, order or earnings at the same
moment, each from its own thread and database connection."""

import threading
from collections import Counter

import pytest
from django.db import connection, connections
from rest_framework.test import APIClient

from orders.status import Status
from payments import selectors, services
from payments.models import LedgerTransaction, TransactionKind, Withdrawal, WithdrawalStatus
from tests import factories
from tests.payments.conftest import assert_ledger_sound

pytestmark = [
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="row locks and real concurrent writers need PostgreSQL (SQLite serialises writers)",
    ),
    pytest.mark.django_db(transaction=True),
]


def at_once(calls) -> list:
    """Run each call in its own thread, released together by a barrier; results in order."""
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def run(i, call):
        try:
            barrier.wait(timeout=10)
            results[i] = call()
        except Exception as exc:  # noqa: BLE001  (reported by the test, not swallowed)
            results[i] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    return results


def post_as(user, path, data=None, key=None):
    def call():
        client = APIClient()
        client.force_authenticate(user)
        headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
        return client.post(path, data or {}, format="json", **headers)

    return call


def codes(results) -> Counter:
    errors = [r for r in results if isinstance(r, Exception)]
    assert not errors, errors
    return Counter(r.status_code for r in results)


@pytest.mark.parametrize("trial", range(3))
def test_paying_one_order_from_two_requests_charges_once(trial, student, campus):
    order = factories.make_order(customer=student, campus=campus, pay=False)
    factories.fund_wallet(student, 10 * services.order_amount_due(order))
    before = selectors.wallet_balance(student)

    results = at_once([post_as(student, f"/api/orders/{order.number}/pay/")] * 2)

    assert codes(results) == {200: 1, 409: 1}
    assert selectors.wallet_balance(student) == before - services.order_amount_due(order)
    payments = LedgerTransaction.objects.filter(order=order, kind=TransactionKind.ORDER_PAYMENT)
    assert payments.count() == 1
    order.refresh_from_db()
    assert order.status == Status.OPEN
    assert order.events.filter(new_status=Status.OPEN).count() == 1


def test_two_orders_racing_for_one_wallet_cannot_overdraw_it(student, campus):
    first = factories.make_order(customer=student, campus=campus, pay=False)
    second = factories.make_order(customer=student, campus=campus, pay=False)
    due = services.order_amount_due(first)
    factories.fund_wallet(student, due)  # enough for one of them

    results = at_once(
        [
            post_as(student, f"/api/orders/{first.number}/pay/"),
            post_as(student, f"/api/orders/{second.number}/pay/"),
        ]
    )

    assert codes(results) == {200: 1, 402: 1}
    assert selectors.wallet_balance(student) == 0
    assert_ledger_sound()


def test_same_idempotency_key_twice_at_once_pays_once_and_answers_alike(student, campus):
    order = factories.make_order(customer=student, campus=campus, pay=False)
    factories.fund_wallet(student, 10 * services.order_amount_due(order))
    before = selectors.wallet_balance(student)

    results = at_once([post_as(student, f"/api/orders/{order.number}/pay/", key="k")] * 2)

    # The second request waits for the first to commit, then replays its answer.
    assert codes(results) == {200: 2}
    assert results[0].json() == results[1].json()
    assert selectors.wallet_balance(student) == before - services.order_amount_due(order)


@pytest.mark.parametrize("trial", range(3))
def test_two_withdrawals_racing_cannot_overdraw(trial, rider_male):
    factories.fund_earnings(rider_male, 1_000)

    results = at_once([post_as(rider_male, "/api/wallet/withdrawals/", {"amount_fen": 800})] * 2)

    assert codes(results) == {201: 1, 402: 1}
    assert Withdrawal.objects.filter(rider=rider_male).count() == 1
    assert selectors.earnings_available(rider_male) == 200


def test_two_operators_approving_one_withdrawal_pay_it_once(rider_male, operator):
    factories.fund_earnings(rider_male, 1_000)
    withdrawal = services.withdrawal_request(rider=rider_male, amount_fen=700)
    other_operator = factories.make_user(username="operator2", is_staff=True)

    results = at_once(
        [
            lambda: services.withdrawal_approve(withdrawal=withdrawal, operator=operator),
            lambda: services.withdrawal_approve(withdrawal=withdrawal, operator=other_operator),
        ]
    )

    assert sum(isinstance(r, Withdrawal) for r in results) == 1
    assert selectors.earnings_balance(rider_male) == 300
    withdrawal.refresh_from_db()
    assert withdrawal.status == WithdrawalStatus.APPROVED
    assert_ledger_sound()


def test_a_gateway_callback_delivered_twice_at_once_credits_once(student):
    topup, _intent = services.topup_create(user=student, amount_fen=3_000)
    from payments.gateways.sandbox import SandboxGateway

    body, headers = SandboxGateway().notification(topup, gateway_txn_id="sbx_race")

    def deliver():
        return services.gateway_callback_receive(gateway="sandbox", body=body, headers=headers)

    results = at_once([deliver, deliver])

    assert sorted(r.outcome for r in results) == ["accepted", "replayed"]
    assert selectors.wallet_balance(student) == 3_000


@pytest.mark.parametrize("trial", range(3))
def test_cancel_and_accept_racing_settle_the_money_once(trial, student, campus, rider_male):
    order = factories.make_order(customer=student, campus=campus)
    before = selectors.wallet_balance(student)
    due = services.order_amount_due(order)

    results = at_once(
        [
            post_as(student, f"/api/orders/{order.number}/cancel/", {"reason": "changed_mind"}),
            post_as(rider_male, f"/api/orders/{order.number}/accept/"),
        ]
    )

    counts = codes(results)
    assert counts[200] >= 1
    order.refresh_from_db()
    if order.status == Status.CANCELLED:
        # Cancelled before or after the acceptance: a full refund or minus the compensation.
        refunded = selectors.wallet_balance(student) - before
        assert refunded in (due, due - 100)
        assert selectors.earnings_balance(rider_male) == due - refunded
    else:
        assert order.status == Status.ACCEPTED
        assert selectors.wallet_balance(student) == before
    assert selectors.escrow_balance(order) in (0, due)
    assert_ledger_sound()
