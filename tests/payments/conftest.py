"""Helpers for the money tests: funded customers, orders moved to a given stage, ledger checks."""

import pytest
from django.db.models import Sum
from django.test import Client

from orders import services as order_services
from orders.models import Order
from orders.status import Status
from payments import selectors
from payments.models import NEVER_NEGATIVE, Account, Entry
from tests import factories

# How an order reaches each stage, and who makes each step.
PATH = {
    Status.OPEN: [],
    Status.ACCEPTED: [(Status.ACCEPTED, "rider")],
    Status.PICKED_UP: [(Status.ACCEPTED, "rider"), (Status.PICKED_UP, "rider")],
    Status.DELIVERING: [
        (Status.ACCEPTED, "rider"),
        (Status.PICKED_UP, "rider"),
        (Status.DELIVERING, "rider"),
    ],
    Status.DELIVERED: [
        (Status.ACCEPTED, "rider"),
        (Status.PICKED_UP, "rider"),
        (Status.DELIVERING, "rider"),
        (Status.DELIVERED, "rider"),
    ],
}


def move(order: Order, to: str, *, rider, customer=None) -> Order:
    """Move an open order along the ordinary path to `to` through order_transition."""
    for step, who in PATH[to]:
        actor = rider if who == "rider" else customer
        order = order_services.order_transition(order=order, to=step, actor=actor)
    return Order.objects.get(pk=order.pk)


def logged_in(user) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(user)
    return client


def wallet(user) -> int:
    return selectors.wallet_balance(user)


def earnings(user) -> int:
    return selectors.earnings_balance(user)


def assert_ledger_sound() -> None:
    """Every transaction balances, the whole ledger sums to zero, and no account that holds
    someone's money is below zero."""
    unbalanced = (
        Entry.objects.values("transaction_id")
        .annotate(s=Sum("amount_fen"))
        .exclude(s=0)
        .values_list("transaction_id", flat=True)
    )
    assert list(unbalanced) == []
    assert (Entry.objects.aggregate(s=Sum("amount_fen"))["s"] or 0) == 0
    negative = (
        Account.objects.filter(kind__in=NEVER_NEGATIVE)
        .annotate(b=Sum("entries__amount_fen"))
        .filter(b__lt=0)
    )
    assert list(negative) == []


@pytest.fixture
def funded_student(student):
    factories.fund_wallet(student, 20_000)
    return student


@pytest.fixture
def paid_order(funded_student, campus):
    order = factories.make_order(customer=funded_student, campus=campus)
    assert order.status == Status.OPEN
    return order


@pytest.fixture
def money_desk(operator):
    """The operator with the payments permissions an operators' group would grant in admin."""
    from django.contrib.auth.models import Permission

    operator.user_permissions.add(*Permission.objects.filter(content_type__app_label="payments"))
    return operator
