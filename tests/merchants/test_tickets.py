"""The merchant's track beside the delivery track: accept, reject (refunds every payer), preparing,
ready; a rider cannot confirm pickup before ready; the ticket's QR code accepts and confirms the
pickup through the same services; completion settles the merchant in the ledger."""

import pytest
from django.core.exceptions import ValidationError
from django.utils import translation

from merchants import selectors, services
from merchants.errors import TicketStepRefused
from merchants.models import MerchantStatus, Notice, TierDiscount
from orders import services as order_services
from orders.errors import NotAllowed, StepNotReady
from orders.models import OrderEvent
from orders.status import Status
from payments import selectors as money
from payments.models import AccountKind, Entry
from riders import services as rider_services
from tests import factories


@pytest.fixture
def placed(student, window, noodles):
    return factories.make_takeout(
        customer=student,
        merchant=window,
        lines=[(noodles, 1, factories.option_ids(noodles, "Regular"))],
    )


def step(order, to, actor, reason=""):
    return services.ticket_advance(ticket=order.takeout, to=to, actor=actor, reason=reason)


def test_merchant_moves_the_ticket_and_the_customer_sees_each_step(placed, merchant):
    for to in (MerchantStatus.ACCEPTED, MerchantStatus.PREPARING, MerchantStatus.READY):
        with translation.override("en"):  # the note is written in the language of the moment
            ticket = step(placed, to, merchant)
        assert ticket.merchant_status == to
    assert ticket.accepted_at <= ticket.preparing_at <= ticket.ready_at
    notes = list(OrderEvent.objects.filter(order=placed).values_list("note", flat=True))
    assert "Merchant accepted the order" in notes
    assert "Food is ready for pickup (出餐)" in notes


def test_a_step_out_of_order_is_refused(placed, merchant):
    with pytest.raises(TicketStepRefused):
        step(placed, MerchantStatus.READY, merchant)
    step(placed, MerchantStatus.ACCEPTED, merchant)
    with pytest.raises(TicketStepRefused):
        step(placed, MerchantStatus.REJECTED, merchant, reason="no")


def test_another_merchants_staff_cannot_move_the_ticket(placed, other_merchant, other_window):
    with pytest.raises(NotAllowed):
        step(placed, MerchantStatus.ACCEPTED, other_merchant)


def test_rejection_needs_a_reason(placed, merchant):
    with pytest.raises(ValidationError):
        step(placed, MerchantStatus.REJECTED, merchant)


def test_rejection_cancels_refunds_in_full_restocks_and_tells_the_customer(
    student, window, merchant
):
    item = factories.make_item(window, price_fen=1800, stock=5)
    before = factories.fund_wallet(student, at_least=50_000)
    order = factories.make_takeout(customer=student, merchant=window, lines=[(item, 2)])
    item.refresh_from_db()
    assert item.stock == 3
    assert money.wallet_balance(student) == before - order.total_fen
    step(order, MerchantStatus.REJECTED, merchant, reason="Out of rice")
    order.refresh_from_db()
    assert order.status == Status.CANCELLED
    assert money.wallet_balance(student) == before
    assert money.escrow_balance(order) == 0
    item.refresh_from_db()
    assert item.stock == 5
    notice = Notice.objects.get(user=student)
    assert "Out of rice" in notice.message and "refunded" in notice.message


def test_rejection_after_a_rider_accepted_compensates_the_rider_from_the_platform(
    student, rider_male, placed, merchant
):
    order_services.order_accept(order=placed, rider=rider_male)
    paid = placed.total_fen
    wallet = money.wallet_balance(student)
    step(placed, MerchantStatus.REJECTED, merchant, reason="Kitchen fire drill")
    assert money.wallet_balance(student) == wallet + paid  # the customer gets it all back
    assert money.earnings_balance(rider_male) > 0  # the trip is paid, by the platform


def test_rider_cannot_confirm_pickup_before_ready(placed, rider_male, merchant):
    order_services.order_accept(order=placed, rider=rider_male)
    step(placed, MerchantStatus.ACCEPTED, merchant)
    with pytest.raises(StepNotReady, match="not ready"):
        order_services.order_transition(order=placed, to=Status.PICKED_UP, actor=rider_male)
    step(placed, MerchantStatus.READY, merchant)
    services.ticket_handed_over(ticket=placed.takeout, actor=merchant)
    order = order_services.order_transition(order=placed, to=Status.PICKED_UP, actor=rider_male)
    assert order.status == Status.PICKED_UP


def test_scanning_the_ticket_accepts_then_confirms_pickup_once_ready(placed, rider_male, merchant):
    code = placed.display_number  # printed on the ticket under its QR code
    result = rider_services.rider_scan_order(user=rider_male, code=code)
    assert result.action == "accepted"
    with pytest.raises(StepNotReady):
        rider_services.rider_scan_order(user=rider_male, code=code)
    step(placed, MerchantStatus.ACCEPTED, merchant)
    step(placed, MerchantStatus.READY, merchant)
    services.ticket_handed_over(ticket=placed.takeout, actor=merchant)
    result = rider_services.rider_scan_order(
        user=rider_male, code=f"http://x/rider/scan/{placed.number}/"
    )
    assert result.action == "picked_up"


def test_customer_can_cancel_until_the_merchant_accepts(
    student, other_student, window, tea, merchant
):
    first = factories.make_takeout(customer=student, merchant=window, lines=[(tea, 1)])
    order_services.order_transition(order=first, to=Status.CANCELLED, actor=student)
    second = factories.make_takeout(customer=other_student, merchant=window, lines=[(tea, 1)])
    step(second, MerchantStatus.ACCEPTED, merchant)
    with pytest.raises(StepNotReady, match="already making"):
        order_services.order_transition(order=second, to=Status.CANCELLED, actor=other_student)


def test_cancelled_order_is_no_longer_actionable(student, placed, merchant):
    order_services.order_transition(order=placed, to=Status.CANCELLED, actor=student)
    with pytest.raises(TicketStepRefused, match="cancelled"):
        step(placed, MerchantStatus.ACCEPTED, merchant)


def test_completion_books_merchant_payable_commission_and_platform_promotions(
    student, campus, window, merchant, rider_male
):
    TierDiscount.objects.create(merchant=window, threshold_fen=2000, discount_fen=300)
    item = factories.make_item(window, price_fen=2500, packaging_fen=100)
    order = factories.make_takeout(customer=student, merchant=window, lines=[(item, 1)])
    ticket = order.takeout
    # food 2500 + box 100 + fee; 满减 300 (merchant), new user 300 (platform)
    assert (ticket.merchant_funded_fen, ticket.platform_funded_fen) == (300, 300)
    order_services.order_accept(order=order, rider=rider_male)
    step(order, MerchantStatus.ACCEPTED, merchant)
    step(order, MerchantStatus.READY, merchant)
    services.ticket_handed_over(ticket=ticket, actor=merchant)
    for to in (Status.PICKED_UP, Status.DELIVERING, Status.DELIVERED):
        order = order_services.order_transition(order=order, to=to, actor=rider_male)
    order_services.order_transition(order=order, to=Status.COMPLETED, actor=student)
    assert money.escrow_balance(order) == 0
    merchant_gross = 2500 + 100 - 300  # the platform pays its own 300 back in
    commission = (merchant_gross * window.commission_rate_bp + 5000) // 10000
    assert selectors.payable_balance(window) == merchant_gross - commission
    promotions = Entry.objects.filter(
        transaction__order=order, account__kind=AccountKind.PROMOTIONS_EXPENSE
    ).get()
    assert promotions.amount_fen == -300
    settled = Entry.objects.filter(transaction__order=order, transaction__kind="order_settlement")
    assert sum(e.amount_fen for e in settled) == 0
    rider_fee = order.price_fen - (order.price_fen * 1000 + 5000) // 10000
    assert money.earnings_balance(rider_male) == rider_fee
    report = selectors.settlement_day(window, ticket.day)
    assert report.payable_fen == merchant_gross - commission
    assert report.commission_fen == commission
    assert (report.merchant_discounts_fen, report.platform_discounts_fen) == (300, 300)


def test_unanswered_tickets_are_rejected_and_refunded_after_the_limit(placed, student):
    from datetime import timedelta

    from django.utils import timezone

    wallet = money.wallet_balance(student)
    assert services.tickets_auto_reject(now=timezone.now() + timedelta(minutes=5)) == 0
    assert services.tickets_auto_reject(now=timezone.now() + timedelta(minutes=11)) == 1
    placed.refresh_from_db()
    assert placed.status == Status.CANCELLED
    assert money.wallet_balance(student) == wallet + placed.total_fen


def test_the_payments_ledger_stays_balanced(placed, merchant, student):
    step(placed, MerchantStatus.REJECTED, merchant, reason="closed")
    assert sum(money.ledger_totals().values()) == 0
