"""The money API: every endpoint answers anonymous (401), strangers (404/403), wrong methods (405)
and bad payloads (400) clearly, and does its job for the right person."""

import pytest

from orders.models import Order
from orders.status import Status
from payments import selectors, services
from payments.models import TopUp, Withdrawal
from tests import factories
from tests.payments.conftest import move, wallet


@pytest.fixture
def pending_order(student, campus):
    return factories.make_order(customer=student, campus=campus, pay=False)


def urls(order=None, topup=None) -> dict[str, str]:
    return {
        "wallet": "/api/wallet/",
        "topups": "/api/wallet/topups/",
        "topup": f"/api/wallet/topups/{topup.intent_id if topup else 'ti_x'}/",
        "withdrawals": "/api/wallet/withdrawals/",
        "callback": "/api/payments/sandbox/callback/",
        "pay": f"/api/orders/{order.number if order else 'x'}/pay/",
        "cancel": f"/api/orders/{order.number if order else 'x'}/cancel/",
    }


# --- anonymous ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "name"),
    [
        ("get", "wallet"),
        ("post", "topups"),
        ("get", "topup"),
        ("get", "withdrawals"),
        ("post", "withdrawals"),
        ("post", "callback"),  # a callback without a signature is unauthenticated too
        ("post", "pay"),
        ("post", "cancel"),
    ],
)
def test_anonymous_gets_401(method, name, pending_order, api):
    response = getattr(api(), method)(urls(pending_order)[name], {}, format="json")
    assert response.status_code == 401
    assert Order.objects.get(pk=pending_order.pk).status == Status.PENDING


# --- strangers ------------------------------------------------------------------------------


def test_stranger_cannot_pay_or_cancel_someone_elses_order(pending_order, other_student, api):
    factories.fund_wallet(other_student, 10_000)
    client = api(other_student)
    assert client.post(urls(pending_order)["pay"], format="json").status_code == 404
    cancel = client.post(urls(pending_order)["cancel"], {"reason": "other"}, format="json")
    assert cancel.status_code == 404
    assert wallet(other_student) == 10_000
    assert Order.objects.get(pk=pending_order.pk).status == Status.PENDING


def test_rider_of_the_order_cannot_pay_or_cancel_it(student, campus, rider_male, api):
    factories.fund_wallet(rider_male, 10_000)
    order = move(
        factories.make_order(customer=student, campus=campus), Status.ACCEPTED, rider=rider_male
    )
    client = api(rider_male)
    assert client.post(urls(order)["pay"], format="json").status_code == 409  # not pending
    assert client.post(urls(order)["cancel"], {"reason": "other"}, format="json").status_code == 403
    assert Order.objects.get(pk=order.pk).status == Status.ACCEPTED


def test_stranger_cannot_see_someone_elses_topup(student, other_student, api):
    topup, _intent = services.topup_create(user=student, amount_fen=1000)
    assert api(other_student).get(urls(topup=topup)["topup"]).status_code == 404
    assert api(student).get(urls(topup=topup)["topup"]).status_code == 200


def test_wallet_shows_only_my_own_money(student, other_student, api):
    factories.fund_wallet(student, 700)
    factories.fund_wallet(other_student, 900)
    body = api(other_student).get("/api/wallet/").json()
    assert body["balance_fen"] == 900
    assert [e["amount_fen"] for e in body["entries"]] == [900]


def test_non_rider_cannot_withdraw(student, api):
    client = api(student)
    assert client.get("/api/wallet/withdrawals/").status_code == 403
    response = client.post("/api/wallet/withdrawals/", {"amount_fen": 100}, format="json")
    assert response.status_code == 403
    assert not Withdrawal.objects.exists()


# --- wrong method ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "name"),
    [
        ("post", "wallet"),
        ("delete", "wallet"),
        ("get", "topups"),
        ("put", "topups"),
        ("post", "topup"),
        ("delete", "withdrawals"),
        ("get", "callback"),
        ("get", "pay"),
        ("put", "pay"),
        ("get", "cancel"),
        ("patch", "cancel"),
    ],
)
def test_wrong_method_is_405(method, name, student, rider_male, pending_order, api):
    topup, _intent = services.topup_create(user=student, amount_fen=1000)
    client = api(rider_male if name == "withdrawals" else student)
    if name == "callback":
        client = api()
    response = getattr(client, method)(urls(pending_order, topup)[name], {}, format="json")
    assert response.status_code == 405


# --- bad payloads ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"amount_fen": "ten"},
        {"amount_fen": 99},
        {"amount_fen": 100_001},
        {"amount_fen": 1000, "gateway": "wechat"},
    ],
)
def test_bad_topup_payload_is_400_with_a_message(payload, student, api):
    response = api(student).post("/api/wallet/topups/", payload, format="json")
    assert response.status_code == 400
    body = response.json()
    assert "amount_fen" in body or "gateway" in body
    assert not TopUp.objects.exists()


@pytest.mark.parametrize(
    "payload", [{}, {"amount_fen": "lots"}, {"amount_fen": 99}, {"amount_fen": -5}]
)
def test_bad_withdrawal_payload_is_400(payload, rider_male, api):
    factories.fund_earnings(rider_male, 5_000)
    response = api(rider_male).post("/api/wallet/withdrawals/", payload, format="json")
    assert response.status_code == 400 and "amount_fen" in response.json()
    assert not Withdrawal.objects.exists()


@pytest.mark.parametrize(
    "payload", [{}, {"reason": "bored"}, {"reason": "other", "detail": "x" * 201}]
)
def test_bad_cancel_payload_is_400(payload, student, campus, api):
    order = factories.make_order(customer=student, campus=campus)
    response = api(student).post(f"/api/orders/{order.number}/cancel/", payload, format="json")
    assert response.status_code == 400
    assert Order.objects.get(pk=order.pk).status == Status.OPEN


def test_bad_pay_payload_is_400(pending_order, student, api):
    factories.fund_wallet(student, 10_000)
    response = api(student).post(
        f"/api/orders/{pending_order.number}/pay/", {"amount_fen": "all"}, format="json"
    )
    assert response.status_code == 400 and "amount_fen" in response.json()
    assert wallet(student) == 10_000


def test_malformed_json_is_400(pending_order, student, api):
    client = api(student)
    for path in (urls(pending_order)["pay"], "/api/wallet/topups/"):
        response = client.post(path, "{not json", content_type="application/json")
        assert response.status_code == 400


# --- doing the job --------------------------------------------------------------------------


def test_pay_opens_the_order_and_reports_the_money(pending_order, student, api):
    factories.fund_wallet(student, 10_000)
    due = services.order_amount_due(pending_order)

    response = api(student).post(
        f"/api/orders/{pending_order.number}/pay/", {"amount_fen": due}, format="json"
    )

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "open"
    assert body["money"]["paid_fen"] == body["money"]["held_fen"] == due
    assert wallet(student) == 10_000 - due


def test_pay_with_a_short_wallet_is_402(pending_order, student, api):
    response = api(student).post(f"/api/orders/{pending_order.number}/pay/", format="json")
    assert response.status_code == 402
    assert response.json()["code"] == "insufficient_funds"


def test_pay_refuses_an_amount_that_is_not_the_price(pending_order, student, api):
    factories.fund_wallet(student, 10_000)
    due = services.order_amount_due(pending_order)
    response = api(student).post(
        f"/api/orders/{pending_order.number}/pay/", {"amount_fen": due - 1}, format="json"
    )
    assert response.status_code == 409
    assert wallet(student) == 10_000


def test_paying_an_open_order_is_409(student, campus, api):
    order = factories.make_order(customer=student, campus=campus)
    response = api(student).post(f"/api/orders/{order.number}/pay/", format="json")
    assert response.status_code == 409 and response.json()["code"] == "already_paid"


def test_cancel_records_the_reason_and_reports_the_refund(student, campus, rider_male, api):
    order = move(
        factories.make_order(customer=student, campus=campus), Status.ACCEPTED, rider=rider_male
    )
    due = services.order_amount_due(order)

    response = api(student).post(
        f"/api/orders/{order.number}/cancel/",
        {"reason": "too_slow", "detail": "Rider went the wrong way"},
        format="json",
    )

    assert response.status_code == 200
    money = response.json()["money"]
    assert money["refunded_fen"] == due - 100 and money["rider_compensation_fen"] == 100
    assert money["held_fen"] == 0
    event = order.events.get(new_status=Status.CANCELLED)
    assert event.note == "It is taking too long: Rider went the wrong way"


def test_cancel_after_pickup_points_to_a_dispute(student, campus, rider_male, api):
    order = move(
        factories.make_order(customer=student, campus=campus), Status.PICKED_UP, rider=rider_male
    )
    response = api(student).post(
        f"/api/orders/{order.number}/cancel/", {"reason": "other"}, format="json"
    )
    assert response.status_code == 409
    assert "dispute" in response.json()["detail"]


def test_topup_then_status_poll(student, api):
    client = api(student)
    created = client.post("/api/wallet/topups/", {"amount_fen": 2_000}, format="json").json()
    assert created["status"] == "pending" and created["pay_url"].startswith("/wallet/sandbox/")
    topup = TopUp.objects.get(intent_id=created["intent_id"])
    services.sandbox_pay(topup=topup, payer=student)

    polled = client.get(f"/api/wallet/topups/{created['intent_id']}/").json()

    assert polled["status"] == "succeeded" and polled["paid_at"]
    body = client.get("/api/wallet/").json()
    assert body["balance_fen"] == 2_000
    assert body["entries"][0]["label"] == "Top-up"
    assert body["entries"][0]["receipt"].startswith("/wallet/receipts/")
    assert body["earnings_fen"] is None


def test_rider_withdraws_within_available_earnings(rider_male, api):
    factories.fund_earnings(rider_male, 5_000)
    client = api(rider_male)

    ok = client.post("/api/wallet/withdrawals/", {"amount_fen": 3_000}, format="json")
    too_much = client.post("/api/wallet/withdrawals/", {"amount_fen": 2_001}, format="json")

    assert ok.status_code == 201 and ok.json()["status"] == "requested"
    assert too_much.status_code == 402 and "¥20.00" in too_much.json()["detail"]
    assert [w["amount_fen"] for w in client.get("/api/wallet/withdrawals/").json()] == [3_000]
    body = client.get("/api/wallet/").json()
    assert body["earnings_fen"] == 5_000 and body["earnings_available_fen"] == 2_000
    assert selectors.earnings_balance(rider_male) == 5_000  # nothing paid out yet
