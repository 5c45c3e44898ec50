"""Idempotency-Key on money endpoints: a retry replays the first answer and moves money once."""

import pytest

from payments import selectors, services
from payments.models import IdempotencyKey, LedgerTransaction, TopUp, TransactionKind, Withdrawal
from tests import factories
from tests.payments.conftest import wallet


def post(client, path, data=None, key=None):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return client.post(path, data or {}, format="json", **headers)


def test_same_key_replays_the_payment_and_charges_once(student, campus, api):
    order = factories.make_order(customer=student, campus=campus, pay=False)
    factories.fund_wallet(student, 10_000)
    client = api(student)

    first = post(client, f"/api/orders/{order.number}/pay/", key="pay-1")
    again = post(client, f"/api/orders/{order.number}/pay/", key="pay-1")

    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true" and not first.has_header("Idempotent-Replayed")
    assert wallet(student) == 10_000 - services.order_amount_due(order)
    payments = LedgerTransaction.objects.filter(order=order, kind=TransactionKind.ORDER_PAYMENT)
    assert payments.count() == 1


def test_same_key_with_a_different_payload_is_422(student, api):
    client = api(student)
    assert post(client, "/api/wallet/topups/", {"amount_fen": 1000}, key="k").status_code == 201

    response = post(client, "/api/wallet/topups/", {"amount_fen": 2000}, key="k")

    assert response.status_code == 422
    assert response.json()["code"] == "idempotency_key_reused"
    assert "different request" in response.json()["detail"]
    assert TopUp.objects.count() == 1


def test_same_key_on_another_endpoint_is_422(rider_male, api):
    factories.fund_earnings(rider_male, 5_000)
    client = api(rider_male)
    post(client, "/api/wallet/topups/", {"amount_fen": 1000}, key="k")
    response = post(client, "/api/wallet/withdrawals/", {"amount_fen": 1000}, key="k")
    assert response.status_code == 422
    assert not Withdrawal.objects.exists()


def test_topup_retry_creates_one_intent(student, api):
    client = api(student)
    first = post(client, "/api/wallet/topups/", {"amount_fen": 1000}, key="t")
    again = post(client, "/api/wallet/topups/", {"amount_fen": 1000}, key="t")
    assert first.json()["intent_id"] == again.json()["intent_id"]
    assert TopUp.objects.count() == 1


def test_keys_belong_to_one_user(student, other_student, api):
    a = post(api(student), "/api/wallet/topups/", {"amount_fen": 1000}, key="same")
    b = post(api(other_student), "/api/wallet/topups/", {"amount_fen": 1000}, key="same")
    assert a.status_code == b.status_code == 201
    assert a.json()["intent_id"] != b.json()["intent_id"]


def test_a_refusal_is_replayed_too(student, campus, api):
    order = factories.make_order(customer=student, campus=campus, pay=False)
    client = api(student)
    first = post(client, f"/api/orders/{order.number}/pay/", key="short")
    assert first.status_code == 402
    factories.fund_wallet(student, 10_000)

    again = post(client, f"/api/orders/{order.number}/pay/", key="short")

    # Same key, same answer: the client asks again with a new key once it has topped up.
    assert again.status_code == 402 and again.json() == first.json()
    assert wallet(student) == 10_000
    assert post(client, f"/api/orders/{order.number}/pay/", key="short-2").status_code == 200


def test_withdrawal_retry_requests_once(rider_male, api):
    factories.fund_earnings(rider_male, 5_000)
    client = api(rider_male)
    for _ in range(3):
        response = post(client, "/api/wallet/withdrawals/", {"amount_fen": 3_000}, key="w")
        assert response.status_code == 201
    assert Withdrawal.objects.count() == 1
    assert selectors.earnings_available(rider_male) == 2_000


def test_a_bad_payload_is_not_remembered(student, api):
    client = api(student)
    assert post(client, "/api/wallet/topups/", {"amount_fen": "x"}, key="fix-me").status_code == 400
    assert not IdempotencyKey.objects.exists()
    assert post(client, "/api/wallet/topups/", {"amount_fen": 500}, key="fix-me").status_code == 201


def test_requests_without_a_key_are_not_deduplicated(student, api):
    client = api(student)
    post(client, "/api/wallet/topups/", {"amount_fen": 1000})
    post(client, "/api/wallet/topups/", {"amount_fen": 1000})
    assert TopUp.objects.count() == 2


@pytest.mark.parametrize("key", ["x" * 256])
def test_an_overlong_key_is_400(student, api, key):
    response = post(api(student), "/api/wallet/topups/", {"amount_fen": 1000}, key=key)
    assert response.status_code == 400
    assert TopUp.objects.count() == 0
