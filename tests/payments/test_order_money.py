"""Money through the order life: pay (pending -> open), refunds by stage, settlement with the
campus commission, expiry, automatic completion, late-delivery compensation."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from orders import services as order_services
from orders.errors import InvalidTransition, NotAllowed
from orders.models import Order, OrderEvent
from orders.status import Status
from payments import selectors, services
from payments.errors import AlreadyPaid, DisputeOpen, InsufficientFunds, PaymentRequired
from payments.models import CampusMoneySettings, LedgerTransaction, TransactionKind
from tests import factories
from tests.payments.conftest import assert_ledger_sound, earnings, move, wallet


def total(order) -> int:
    return services.order_amount_due(order)


# --- paying ---------------------------------------------------------------------------------


def test_order_is_paid_on_creation_when_the_wallet_covers_it(funded_student, campus):
    order = factories.make_order(customer=funded_student, campus=campus)

    assert order.status == Status.OPEN
    assert wallet(funded_student) == 20_000 - total(order)
    assert selectors.escrow_balance(order) == total(order)
    assert [e.new_status for e in order.events.all()] == [Status.PENDING, Status.OPEN]
    assert order.events.last().note == "paid from wallet"
    assert_ledger_sound()


def test_order_stays_pending_when_the_wallet_is_short(student, campus):
    order = factories.make_order(customer=student, campus=campus, pay=False)
    assert order.status == Status.PENDING

    placed = order_services.order_create(
        customer=student,
        kind=order.kind,
        pickup_building=order.pickup_building,
        dropoff_building=order.dropoff_building,
        description="no money yet",
    )

    assert placed.status == Status.PENDING
    assert Order.objects.get(pk=placed.pk).status == Status.PENDING
    assert wallet(student) == 0
    assert not LedgerTransaction.objects.filter(order=placed).exists()
    assert selectors.escrow_account(placed) is None  # the savepoint undid the attempt


def test_pending_order_is_paid_later_and_opens(student, campus):
    order = factories.make_order(customer=student, campus=campus, pay=False)
    with pytest.raises(InsufficientFunds):
        order_services.order_pay(order=order, payer=student)
    factories.fund_wallet(student, total(order))

    paid = order_services.order_pay(order=order, payer=student)

    assert paid.status == Status.OPEN
    assert wallet(student) == 0
    assert selectors.order_paid_fen(order) == total(order)


def test_paying_twice_charges_once(funded_student, campus):
    order = factories.make_order(customer=funded_student, campus=campus, pay=False)
    order_services.order_pay(order=order, payer=funded_student)
    with pytest.raises(AlreadyPaid):
        order_services.order_pay(order=order, payer=funded_student)
    assert wallet(funded_student) == 20_000 - total(order)


def test_only_the_customer_pays_for_an_order(funded_student, other_student, campus):
    factories.fund_wallet(other_student, 20_000)
    order = factories.make_order(customer=funded_student, campus=campus, pay=False)
    with pytest.raises(NotAllowed):
        order_services.order_pay(order=order, payer=other_student)
    assert wallet(other_student) == 20_000


def test_an_unpaid_order_cannot_be_opened_even_by_an_operator(student, campus, operator):
    order = factories.make_order(customer=student, campus=campus, pay=False)
    with pytest.raises(PaymentRequired):
        order_services.order_transition(order=order, to=Status.OPEN, actor=operator)
    assert Order.objects.get(pk=order.pk).status == Status.PENDING


# --- cancelling by stage --------------------------------------------------------------------


def test_cancel_before_payment_moves_no_money(student, campus):
    order = factories.make_order(customer=student, campus=campus, pay=False)
    order_services.order_transition(order=order, to=Status.CANCELLED, actor=student)
    assert not LedgerTransaction.objects.filter(order=order).exists()


def test_cancel_before_acceptance_refunds_everything(paid_order, funded_student):
    order_services.order_transition(
        order=paid_order, to=Status.CANCELLED, actor=funded_student, note="I changed my mind"
    )

    assert wallet(funded_student) == 20_000
    assert selectors.escrow_balance(paid_order) == 0
    refund = LedgerTransaction.objects.get(order=paid_order, kind=TransactionKind.ORDER_REFUND)
    assert "I changed my mind" in refund.memo
    assert paid_order.events.last().note == "I changed my mind"
    assert_ledger_sound()


def test_cancel_after_acceptance_pays_the_rider_a_compensation(
    paid_order, funded_student, rider_male
):
    move(paid_order, Status.ACCEPTED, rider=rider_male)

    order_services.order_transition(order=paid_order, to=Status.CANCELLED, actor=funded_student)

    assert earnings(rider_male) == 100  # the campus default
    assert wallet(funded_student) == 20_000 - 100
    assert selectors.escrow_balance(paid_order) == 0
    assert_ledger_sound()


def test_rider_compensation_follows_the_campus_setting(paid_order, funded_student, rider_male):
    CampusMoneySettings.objects.create(campus=paid_order.campus, rider_cancel_compensation_fen=250)
    move(paid_order, Status.ACCEPTED, rider=rider_male)
    order_services.order_transition(order=paid_order, to=Status.CANCELLED, actor=funded_student)
    assert earnings(rider_male) == 250


def test_compensation_never_exceeds_what_was_paid(paid_order, funded_student, rider_male):
    CampusMoneySettings.objects.create(
        campus=paid_order.campus, rider_cancel_compensation_fen=1_000_000
    )
    move(paid_order, Status.ACCEPTED, rider=rider_male)
    order_services.order_transition(order=paid_order, to=Status.CANCELLED, actor=funded_student)
    assert earnings(rider_male) == total(paid_order)
    assert wallet(funded_student) == 20_000 - total(paid_order)
    assert_ledger_sound()


def test_release_by_the_rider_moves_no_money(paid_order, rider_male):
    move(paid_order, Status.ACCEPTED, rider=rider_male)
    order_services.order_transition(order=paid_order, to=Status.OPEN, actor=rider_male)
    assert selectors.escrow_balance(paid_order) == total(paid_order)
    assert earnings(rider_male) == 0


def test_cancel_after_pickup_is_refused(paid_order, funded_student, rider_male):
    move(paid_order, Status.PICKED_UP, rider=rider_male)
    with pytest.raises(InvalidTransition):
        order_services.order_transition(order=paid_order, to=Status.CANCELLED, actor=funded_student)
    assert selectors.escrow_balance(paid_order) == total(paid_order)


# --- completion -----------------------------------------------------------------------------


def test_completion_pays_the_rider_and_the_platform_commission(
    paid_order, funded_student, rider_male
):
    order = move(paid_order, Status.DELIVERED, rider=rider_male)

    order_services.order_transition(order=order, to=Status.COMPLETED, actor=funded_student)

    fee = total(order)
    commission = (fee * 1000 + 5000) // 10000
    assert selectors.ledger_totals()["platform_revenue"] == commission
    assert earnings(rider_male) == fee - commission
    assert selectors.escrow_balance(order) == 0
    assert_ledger_sound()


def test_commission_rate_is_per_campus(paid_order, funded_student, rider_male):
    CampusMoneySettings.objects.create(campus=paid_order.campus, commission_rate_bp=2500)
    order = move(paid_order, Status.DELIVERED, rider=rider_male)
    order_services.order_transition(order=order, to=Status.COMPLETED, actor=funded_student)
    assert earnings(rider_male) == total(order) - (total(order) * 2500 + 5000) // 10000


def test_settlement_split_rounds_half_up_and_loses_no_fen():
    split = services.settlement_split(held=505, fee=505, rate_bp=1000)
    assert split == {"rider": 454, "commission": 51, "customer": 0}  # 50.5 -> 51
    split = services.settlement_split(held=1234, fee=1234, rate_bp=0)
    assert split == {"rider": 1234, "commission": 0, "customer": 0}


def test_settlement_split_of_a_buy_for_me_order():
    # fee 800 + tip 200 + budget cap 5000; the rider spent 3210 on the shopping.
    split = services.settlement_split(
        held=6000, fee=800, tip=200, budget_cap=5000, actual_cost=3210, rate_bp=1000
    )
    assert split == {"rider": 3210 + 200 + 720, "commission": 80, "customer": 1790}
    assert sum(split.values()) == 6000


def test_settlement_after_a_partial_dispute_refund_shares_what_is_left():
    split = services.settlement_split(held=300, fee=800, tip=200, rate_bp=1000)
    assert split == {"rider": 200 + 90, "commission": 10, "customer": 0}


def test_confirm_before_delivery_is_refused(paid_order, funded_student, rider_male):
    order = move(paid_order, Status.DELIVERING, rider=rider_male)
    with pytest.raises(InvalidTransition):
        order_services.order_transition(order=order, to=Status.COMPLETED, actor=funded_student)
    assert earnings(rider_male) == 0


def test_complete_delivered_command_completes_old_deliveries_only(
    funded_student, campus, rider_male
):
    old = move(
        factories.make_order(customer=funded_student, campus=campus),
        Status.DELIVERED,
        rider=rider_male,
    )
    fresh = move(
        factories.make_order(customer=funded_student, campus=campus),
        Status.DELIVERED,
        rider=rider_male,
    )
    Order.objects.filter(pk=old.pk).update(delivered_at=timezone.now() - timedelta(hours=3))
    out = StringIO()

    call_command("complete_delivered", "--after-hours", "2", stdout=out)

    assert Order.objects.get(pk=old.pk).status == Status.COMPLETED
    assert Order.objects.get(pk=fresh.pk).status == Status.DELIVERED
    assert "completed 1 order(s)" in out.getvalue()
    assert earnings(rider_male) > 0
    assert OrderEvent.objects.filter(order=old, new_status=Status.COMPLETED, actor=None).exists()


def test_complete_delivered_skips_an_order_under_dispute(paid_order, funded_student, rider_male):
    order = move(paid_order, Status.DELIVERED, rider=rider_male)
    services.dispute_open(order=order, customer=funded_student, reason="Box was crushed")
    Order.objects.filter(pk=order.pk).update(delivered_at=timezone.now() - timedelta(hours=5))

    call_command("complete_delivered", stdout=StringIO())

    assert Order.objects.get(pk=order.pk).status == Status.DELIVERED
    with pytest.raises(DisputeOpen):
        order_services.order_transition(order=order, to=Status.COMPLETED, actor=funded_student)


# --- expiry ---------------------------------------------------------------------------------


def _opened_minutes_ago(order, minutes: int) -> None:
    opened = order.events.get(new_status=Status.OPEN)
    # Test setup only: back-date the event (OrderEvent refuses updates through the ORM).
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {OrderEvent._meta.db_table} SET created_at = %s WHERE id = %s",
            [timezone.now() - timedelta(minutes=minutes), opened.pk],
        )


def test_open_order_expires_after_the_campus_limit_with_a_full_refund(
    funded_student, campus, rider_male
):
    stale = factories.make_order(customer=funded_student, campus=campus)
    recent = factories.make_order(customer=funded_student, campus=campus)
    taken = factories.make_order(customer=funded_student, campus=campus)
    move(taken, Status.ACCEPTED, rider=rider_male)
    _opened_minutes_ago(stale, 31)
    _opened_minutes_ago(taken, 31)
    out = StringIO()

    call_command("expire_open_orders", stdout=out)

    assert Order.objects.get(pk=stale.pk).status == Status.EXPIRED
    assert Order.objects.get(pk=recent.pk).status == Status.OPEN
    assert Order.objects.get(pk=taken.pk).status == Status.ACCEPTED
    assert selectors.escrow_balance(stale) == 0
    assert wallet(funded_student) == 20_000 - total(recent) - total(taken)
    event = stale.events.get(new_status=Status.EXPIRED)
    assert event.actor is None and "30 minutes" in event.note and "refunded" in event.note
    assert "expired 1 order(s)" in out.getvalue()
    assert_ledger_sound()


def test_expiry_limit_is_per_campus(funded_student, campus):
    CampusMoneySettings.objects.create(campus=campus, open_timeout_minutes=5)
    order = factories.make_order(customer=funded_student, campus=campus)
    _opened_minutes_ago(order, 6)
    call_command("expire_open_orders", stdout=StringIO())
    assert Order.objects.get(pk=order.pk).status == Status.EXPIRED


def test_expiry_pushes_the_status_to_watchers(
    funded_student, campus, django_capture_on_commit_callbacks
):
    order = factories.make_order(customer=funded_student, campus=campus)
    _opened_minutes_ago(order, 45)
    with django_capture_on_commit_callbacks() as callbacks:
        call_command("expire_open_orders", stdout=StringIO())
    assert callbacks  # tracking.broadcast's push of the expired status, sent on commit


# --- late delivery --------------------------------------------------------------------------


@pytest.fixture
def promised(monkeypatch):
    """Order.promised_at comes with the ordering work; until every order has one, tests set it."""
    times = {}
    monkeypatch.setattr(services, "promised_at_of", lambda order: times.get(order.pk))
    return times


def test_late_delivery_is_compensated_once(paid_order, funded_student, rider_male, promised):
    promised[paid_order.pk] = timezone.now() - timedelta(minutes=11)
    before = wallet(funded_student)

    order = move(paid_order, Status.DELIVERED, rider=rider_male)

    assert wallet(funded_student) == before + 300
    late = LedgerTransaction.objects.get(order=order, kind=TransactionKind.LATE_COMPENSATION)
    assert "min after the promised time" in late.memo
    services.order_money_on_transition(order=order, old=Status.DELIVERING, new=Status.DELIVERED)
    assert wallet(funded_student) == before + 300  # once
    order_services.order_transition(order=order, to=Status.COMPLETED, actor=funded_student)
    assert selectors.escrow_balance(order) == 0  # compensation is the platform's, not the fee's
    assert_ledger_sound()


def test_delivery_within_the_grace_is_not_compensated(
    paid_order, funded_student, rider_male, promised
):
    promised[paid_order.pk] = timezone.now() - timedelta(minutes=9)
    before = wallet(funded_student)
    move(paid_order, Status.DELIVERED, rider=rider_male)
    assert wallet(funded_student) == before


def test_order_without_a_promised_time_is_never_compensated(
    paid_order, funded_student, rider_male, promised
):
    before = wallet(funded_student)
    move(paid_order, Status.DELIVERED, rider=rider_male)
    assert wallet(funded_student) == before
    assert not LedgerTransaction.objects.filter(kind=TransactionKind.LATE_COMPENSATION).exists()
