"""Rider withdrawals (requested by riders, decided by operators in admin) and disputes after
pickup (opened by the customer, resolved by an operator with a refund up to what is held)."""

import pytest
from django.urls import reverse

from orders import services as order_services
from orders.errors import NotAllowed
from orders.status import Status
from payments import selectors, services
from payments.errors import InsufficientFunds, InvalidAmount, PaymentError
from payments.models import Dispute, DisputeStatus, Withdrawal, WithdrawalStatus
from tests import factories
from tests.payments.conftest import assert_ledger_sound, earnings, logged_in, move, wallet

# --- withdrawals ----------------------------------------------------------------------------


@pytest.fixture
def rich_rider(rider_male):
    factories.fund_earnings(rider_male, 5_000)
    return rider_male


def test_requested_amounts_are_reserved_until_decided(rich_rider):
    services.withdrawal_request(rider=rich_rider, amount_fen=3_000)
    with pytest.raises(InsufficientFunds):
        services.withdrawal_request(rider=rich_rider, amount_fen=2_001)
    services.withdrawal_request(rider=rich_rider, amount_fen=2_000)
    assert selectors.earnings_available(rich_rider) == 0
    assert earnings(rich_rider) == 5_000


def test_approval_pays_out_through_the_gateway(rich_rider, operator):
    withdrawal = services.withdrawal_request(rider=rich_rider, amount_fen=3_000)

    done = services.withdrawal_approve(withdrawal=withdrawal, operator=operator)

    assert done.status == WithdrawalStatus.APPROVED and done.payout_reference.startswith("sbx_po_")
    assert earnings(rich_rider) == 2_000
    assert selectors.ledger_totals()["gateway_clearing"] == 3_000
    with pytest.raises(PaymentError):
        services.withdrawal_approve(withdrawal=withdrawal, operator=operator)
    assert earnings(rich_rider) == 2_000
    assert_ledger_sound()


def test_rejection_moves_no_money_and_frees_the_reservation(rich_rider, operator):
    withdrawal = services.withdrawal_request(rider=rich_rider, amount_fen=5_000)
    services.withdrawal_reject(withdrawal=withdrawal, operator=operator, note="Bank details")
    assert earnings(rich_rider) == 5_000 and selectors.earnings_available(rich_rider) == 5_000
    with pytest.raises(PaymentError):
        services.withdrawal_approve(withdrawal=withdrawal, operator=operator)


def test_only_operators_decide(rich_rider, other_student):
    withdrawal = services.withdrawal_request(rider=rich_rider, amount_fen=1_000)
    with pytest.raises(NotAllowed):
        services.withdrawal_approve(withdrawal=withdrawal, operator=rich_rider)
    with pytest.raises(NotAllowed):
        services.withdrawal_reject(withdrawal=withdrawal, operator=other_student)


def test_withdrawal_below_the_minimum_is_refused(rich_rider):
    with pytest.raises(InvalidAmount):
        services.withdrawal_request(rider=rich_rider, amount_fen=99)


def test_operator_approves_and_rejects_in_admin(rich_rider, money_desk):
    operator = money_desk
    a = services.withdrawal_request(rider=rich_rider, amount_fen=1_000)
    b = services.withdrawal_request(rider=rich_rider, amount_fen=1_500)
    admin = logged_in(operator)
    url = reverse("admin:payments_withdrawal_changelist")
    assert admin.get(url).status_code == 200

    admin.post(url, {"action": "approve", "_selected_action": [a.pk]})
    admin.post(url, {"action": "reject", "_selected_action": [b.pk]})

    a.refresh_from_db()
    b.refresh_from_db()
    assert (a.status, b.status) == (WithdrawalStatus.APPROVED, WithdrawalStatus.REJECTED)
    assert a.decided_by == operator and b.decision_note
    assert earnings(rich_rider) == 4_000
    # Approving again from admin changes nothing and says why.
    response = admin.post(url, {"action": "approve", "_selected_action": [a.pk]}, follow=True)
    assert "already been decided" in response.content.decode()
    assert earnings(rich_rider) == 4_000


def test_withdrawals_page_for_riders(rich_rider, student):
    page = logged_in(rich_rider).get("/wallet/withdrawals/")
    assert page.status_code == 200 and "¥50.00" in page.content.decode()
    response = logged_in(rich_rider).post("/wallet/withdrawals/", {"amount_yuan": "12.34"})
    assert response.status_code == 302
    assert Withdrawal.objects.get().amount_fen == 1_234
    bad = logged_in(rich_rider).post("/wallet/withdrawals/", {"amount_yuan": "999"})
    assert bad.status_code == 400 and "at most" in bad.content.decode()
    assert logged_in(student).get("/wallet/withdrawals/").status_code == 403
    assert logged_in(rich_rider).delete("/wallet/withdrawals/").status_code == 405


# --- disputes -------------------------------------------------------------------------------


@pytest.fixture
def picked_up(student, campus, rider_male):
    order = factories.make_order(customer=student, campus=campus)
    return move(order, Status.PICKED_UP, rider=rider_male)


def test_dispute_only_after_pickup(student, campus, picked_up):
    open_order = factories.make_order(customer=student, campus=campus)
    with pytest.raises(PaymentError, match="cancel it instead"):
        services.dispute_open(order=open_order, customer=student, reason="x")
    dispute = services.dispute_open(order=picked_up, customer=student, reason="Wrong parcel")
    assert dispute.status == DisputeStatus.OPEN
    with pytest.raises(PaymentError, match="already open"):
        services.dispute_open(order=picked_up, customer=student, reason="again")


def test_only_the_customer_disputes(picked_up, other_student, rider_male):
    for user in (other_student, rider_male):
        with pytest.raises(NotAllowed):
            services.dispute_open(order=picked_up, customer=user, reason="x")


def test_resolution_refunds_at_most_what_is_held(student, picked_up, operator, rider_male):
    held = selectors.escrow_balance(picked_up)
    dispute = services.dispute_open(order=picked_up, customer=student, reason="Box crushed")
    before = wallet(student)
    with pytest.raises(InvalidAmount):
        services.dispute_resolve(dispute=dispute, operator=operator, refund_fen=held + 1)
    with pytest.raises(NotAllowed):
        services.dispute_resolve(dispute=dispute, operator=student, refund_fen=1)

    services.dispute_resolve(dispute=dispute, operator=operator, refund_fen=200, note="Half")

    assert wallet(student) == before + 200
    assert selectors.escrow_balance(picked_up) == held - 200
    with pytest.raises(PaymentError):
        services.dispute_resolve(dispute=dispute, operator=operator, refund_fen=1)
    # The order goes on; completing it shares out what is left.
    order = picked_up
    for step in (Status.DELIVERING, Status.DELIVERED):
        order = order_services.order_transition(order=order, to=step, actor=rider_male)
    order_services.order_transition(order=order, to=Status.COMPLETED, actor=student)
    assert selectors.escrow_balance(picked_up) == 0
    assert earnings(rider_male) > 0
    assert_ledger_sound()


def test_operator_resolves_a_dispute_in_admin(student, picked_up, money_desk):
    operator = money_desk
    dispute = services.dispute_open(order=picked_up, customer=student, reason="Late and cold")
    admin = logged_in(operator)
    url = reverse("admin:payments_dispute_change", args=[dispute.pk])
    page = admin.get(url)
    assert page.status_code == 200 and "Late and cold" in page.content.decode()
    held = selectors.escrow_balance(picked_up)
    before = wallet(student)

    too_much = admin.post(url, {"refund_yuan": f"{(held + 1) / 100:.2f}", "resolution_note": "x"})
    assert too_much.status_code == 200  # the form shows the error
    assert Dispute.objects.get().status == DisputeStatus.OPEN

    admin.post(url, {"refund_yuan": "1.50", "resolution_note": "Sorry about that"})

    dispute.refresh_from_db()
    assert dispute.status == DisputeStatus.RESOLVED and dispute.refund_fen == 150
    assert dispute.resolved_by == operator
    assert wallet(student) == before + 150


def test_admin_action_refunds_everything_held(student, picked_up, money_desk):
    operator = money_desk
    dispute = services.dispute_open(order=picked_up, customer=student, reason="Never arrived")
    held = selectors.escrow_balance(picked_up)
    before = wallet(student)
    logged_in(operator).post(
        reverse("admin:payments_dispute_changelist"),
        {"action": "refund_everything_held", "_selected_action": [dispute.pk]},
    )
    assert wallet(student) == before + held
    assert selectors.escrow_balance(picked_up) == 0


def test_dispute_page(student, picked_up, other_student):
    client = logged_in(student)
    url = f"/payments/orders/{picked_up.number}/dispute/"
    assert client.get(url).status_code == 200
    assert client.post(url, {"reason": ""}).status_code == 400
    response = client.post(url, {"reason": "The seal was broken"})
    assert response.status_code == 302
    assert Dispute.objects.get().reason == "The seal was broken"
    assert logged_in(other_student).get(url).status_code == 404
    detail = client.get(f"/orders/{picked_up.number}/").content.decode()
    assert 'id="dispute-open"' in detail
