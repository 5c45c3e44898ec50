"""Money pages: wallet, top-up through the sandbox cashier, receipts, and the order page's money
block (pay or top up, cancel with its refund and reason, confirm receipt)."""

import re

import pytest
from django.test import Client

from orders.models import Order
from orders.status import Status
from payments import selectors, services
from payments.models import TopUp
from tests import factories
from tests.payments.conftest import earnings, logged_in, move, wallet

PAGES = [
    ("get", "/wallet/"),
    ("post", "/wallet/topups/"),
    ("get", "/wallet/sandbox/ti_x/"),
    ("get", "/wallet/receipts/1/"),
    ("get", "/wallet/withdrawals/"),
    ("get", "/payments/orders/{n}/"),
    ("post", "/payments/orders/{n}/pay/"),
    ("get", "/payments/orders/{n}/cancel/"),
    ("post", "/payments/orders/{n}/confirm/"),
    ("get", "/payments/orders/{n}/dispute/"),
]


@pytest.mark.parametrize(("method", "path"), PAGES)
def test_pages_send_anonymous_visitors_to_log_in(method, path, order):
    response = getattr(Client(), method)(path.format(n=order.number))
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "/wallet/"),
        ("get", "/wallet/topups/"),
        ("delete", "/wallet/sandbox/ti_x/"),
        ("post", "/wallet/receipts/1/"),
        ("get", "/payments/orders/{n}/pay/"),
        ("get", "/payments/orders/{n}/confirm/"),
        ("post", "/payments/orders/{n}/"),
    ],
)
def test_pages_refuse_wrong_methods(method, path, order, student):
    response = getattr(logged_in(student), method)(path.format(n=order.number))
    assert response.status_code == 405


@pytest.mark.parametrize(
    "path",
    [
        "/payments/orders/{n}/",
        "/payments/orders/{n}/pay/",
        "/payments/orders/{n}/cancel/",
        "/payments/orders/{n}/confirm/",
        "/payments/orders/{n}/dispute/",
    ],
)
def test_order_money_pages_are_404_for_strangers(path, order, other_student):
    client = logged_in(other_student)
    assert client.get(path.format(n=order.number)).status_code in (404, 405)
    assert client.post(path.format(n=order.number)).status_code in (404, 405)
    assert Order.objects.get(pk=order.pk).status == Status.OPEN


def test_wallet_page_shows_balance_and_labelled_history(
    student, campus, django_assert_max_num_queries
):
    factories.fund_wallet(student, 20_000)
    order = factories.make_order(customer=student, campus=campus)
    client = logged_in(student)
    with django_assert_max_num_queries(6):
        response = client.get("/wallet/")
    html = response.content.decode()
    assert response.status_code == 200
    balance = services.yuan(wallet(student))
    assert f'id="balance">{balance}<' in html
    assert f"Payment for order {order.display_number}" in html
    assert f"/orders/{order.number}/" in html and "/wallet/receipts/" in html
    assert "Promotional credit" in html


def test_top_up_through_the_page_and_the_sandbox_cashier(student):
    client = logged_in(student)
    response = client.post("/wallet/topups/", {"amount_yuan": "50"})
    topup = TopUp.objects.get()
    assert (
        response.status_code == 302
        and response["Location"] == f"/wallet/sandbox/{topup.intent_id}/"
    )
    assert topup.amount_fen == 5_000 and wallet(student) == 0

    done = client.post(response["Location"], {"result": "success"}, follow=True)

    assert wallet(student) == 5_000
    assert "¥50.00 added to your wallet" in done.content.decode()


def test_bad_top_up_amount_says_why(student):
    response = logged_in(student).post("/wallet/topups/", {"amount_yuan": "0"}, follow=True)
    assert "msg-error" in response.content.decode()
    assert not TopUp.objects.exists()


def test_failed_sandbox_payment_credits_nothing(student):
    client = logged_in(student)
    location = client.post("/wallet/topups/", {"amount_yuan": "20"})["Location"]
    done = client.post(location, {"result": "fail"}, follow=True)
    assert wallet(student) == 0 and "did not go through" in done.content.decode()


def test_receipt_is_for_its_owner(student, other_student):
    txn = services.wallet_grant(user=student, amount_fen=300, reference="r")
    assert logged_in(student).get(f"/wallet/receipts/{txn.pk}/").status_code == 200
    assert logged_in(other_student).get(f"/wallet/receipts/{txn.pk}/").status_code == 404
    assert logged_in(student).get("/wallet/receipts/999999/").status_code == 404


def test_pending_order_page_offers_a_top_up_when_the_wallet_is_short(student, campus):
    order = factories.make_order(customer=student, campus=campus, pay=False)
    factories.fund_wallet(student, 1)
    html = logged_in(student).get(f"/orders/{order.number}/").content.decode()
    short = services.order_amount_due(order) - 1
    assert 'id="topup-link"' in html and 'id="pay-form"' not in html
    assert f"need={short}" in html


def test_pay_button_pays_and_opens_the_order(student, campus):
    order = factories.make_order(customer=student, campus=campus, pay=False)
    factories.fund_wallet(student, 10_000)
    client = logged_in(student)
    assert 'id="pay-form"' in client.get(f"/orders/{order.number}/").content.decode()

    response = client.post(f"/payments/orders/{order.number}/pay/", follow=True)

    assert Order.objects.get(pk=order.pk).status == Status.OPEN
    assert "msg-success" in response.content.decode()
    assert wallet(student) == 10_000 - services.order_amount_due(order)


def test_pay_with_a_short_wallet_goes_to_the_wallet_and_back(student, campus):
    order = factories.make_order(customer=student, campus=campus, pay=False)
    client = logged_in(student)
    response = client.post(f"/payments/orders/{order.number}/pay/")
    due = services.order_amount_due(order)
    assert response["Location"] == f"/wallet/?need={due}&order={order.number}"
    page = client.get(response["Location"]).content.decode()
    assert f'value="{(due + 99) // 100}"' in page and f'value="{order.number}"' in page

    location = client.post(
        "/wallet/topups/", {"amount_yuan": (due + 99) // 100, "order": order.number}
    )["Location"]
    back = client.post(location, {"result": "success", "order": order.number})

    assert back["Location"] == f"/orders/{order.number}/"
    assert 'id="pay-form"' in client.get(back["Location"]).content.decode()


def test_cancel_page_shows_the_refund_and_records_the_reason(student, campus, rider_male):
    order = move(
        factories.make_order(customer=student, campus=campus), Status.ACCEPTED, rider=rider_male
    )
    client = logged_in(student)
    url = f"/payments/orders/{order.number}/cancel/"
    html = client.get(url).content.decode()
    due = services.order_amount_due(order)
    assert services.yuan(due - 100) in html and "¥1.00" in html  # refund, rider's compensation
    assert client.post(url, {"reason": "nonsense"}).status_code == 400

    response = client.post(url, {"reason": "wrong_details", "detail": "Wrong room"}, follow=True)

    assert Order.objects.get(pk=order.pk).status == Status.CANCELLED
    assert f"{services.yuan(due - 100)} is back in your wallet" in response.content.decode()
    assert (
        order.events.get(new_status=Status.CANCELLED).note == "I entered wrong details: Wrong room"
    )
    assert earnings(rider_male) == 100


def test_cancel_page_after_pickup_points_to_a_dispute(student, campus, rider_male):
    order = move(
        factories.make_order(customer=student, campus=campus), Status.PICKED_UP, rider=rider_male
    )
    response = logged_in(student).get(f"/payments/orders/{order.number}/cancel/", follow=True)
    assert "open a dispute" in response.content.decode()
    assert Order.objects.get(pk=order.pk).status == Status.PICKED_UP


def test_order_page_refund_preview_and_cancel_form(student, campus, django_assert_max_num_queries):
    order = factories.make_order(customer=student, campus=campus)
    html = logged_in(student).get(f"/orders/{order.number}/").content.decode()
    assert (
        'id="cancel-form"' in html and f'action="/payments/orders/{order.number}/cancel/"' in html
    )
    assert "Cancelling now refunds all of it" in html


def test_customer_confirms_receipt_and_the_rider_is_paid(student, campus, rider_male):
    order = move(
        factories.make_order(customer=student, campus=campus), Status.DELIVERED, rider=rider_male
    )
    client = logged_in(student)
    assert 'id="confirm-form"' in client.get(f"/orders/{order.number}/").content.decode()

    response = client.post(f"/payments/orders/{order.number}/confirm/", follow=True)

    assert Order.objects.get(pk=order.pk).status == Status.COMPLETED
    assert "msg-success" in response.content.decode()
    assert earnings(rider_male) > 0 and selectors.escrow_balance(order) == 0


def test_confirm_before_delivery_shows_an_error(student, campus, rider_male):
    order = move(
        factories.make_order(customer=student, campus=campus), Status.DELIVERING, rider=rider_male
    )
    response = logged_in(student).post(f"/payments/orders/{order.number}/confirm/", follow=True)
    assert "msg-error" in response.content.decode()
    assert Order.objects.get(pk=order.pk).status == Status.DELIVERING


def test_money_fragment_follows_the_status(student, campus, rider_male):
    order = factories.make_order(customer=student, campus=campus)
    client = logged_in(student)
    assert 'data-status="open"' in client.get(f"/payments/orders/{order.number}/").content.decode()
    move(order, Status.DELIVERED, rider=rider_male)
    fragment = client.get(f"/payments/orders/{order.number}/").content.decode()
    assert 'data-status="delivered"' in fragment and 'id="confirm-form"' in fragment


def test_rider_sees_no_customer_money_actions(student, campus, rider_male):
    order = move(
        factories.make_order(customer=student, campus=campus), Status.DELIVERED, rider=rider_male
    )
    html = logged_in(rider_male).get(f"/orders/{order.number}/").content.decode()
    assert 'id="order-money"' in html and 'id="confirm-form"' not in html


def test_nav_links_to_the_wallet(student):
    assert 'href="/wallet/"' in logged_in(student).get("/").content.decode()


def test_a_preset_top_up_button_sends_only_its_own_amount(student):
    html = logged_in(student).get("/wallet/").content.decode()
    presets = re.search(r'<form[^>]*id="topup-presets".*?</form>', html, re.S).group(0)
    assert 'name="amount_yuan" value="50"' in presets
    assert re.findall(r'<input(?![^>]*type="hidden")', presets) == []  # no custom amount here
    client = logged_in(student)
    client.post("/wallet/topups/", {"amount_yuan": "50"})
    assert TopUp.objects.get().amount_fen == 5_000
