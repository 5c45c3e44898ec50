"""Reads about money that pages, the API, admin and services share. Balances are always derived
from the entries (payments.models explains the sign convention)."""

from dataclasses import dataclass, fields
from datetime import timedelta

from django.db.models import Count, Exists, OuterRef, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce
from django.http import Http404
from django.utils.translation import gettext as _

from campus_errand.memo import remembered
from payments import ledger
from payments.models import (
    Account,
    AccountKind,
    CampusMoneySettings,
    Dispute,
    DisputeStatus,
    Entry,
    LedgerTransaction,
    TopUp,
    TransactionKind,
    Withdrawal,
    WithdrawalStatus,
)


def campus_money_settings(campus_id: int) -> CampusMoneySettings:
    """The campus's money rules; the defaults when an operator has not set any."""
    return remembered(
        f"money-settings:{campus_id}",
        lambda: (
            CampusMoneySettings.objects.filter(campus_id=campus_id).first()
            or CampusMoneySettings(campus_id=campus_id)
        ),
    )


def wallet_balance(user) -> int:
    if not getattr(user, "is_authenticated", False):
        return 0
    entries = Entry.objects.filter(account__kind=AccountKind.WALLET, account__owner=user)
    return entries.aggregate(s=Sum("amount_fen"))["s"] or 0


def earnings_balance(user) -> int:
    if not getattr(user, "is_authenticated", False):
        return 0
    entries = Entry.objects.filter(account__kind=AccountKind.RIDER_EARNINGS, account__owner=user)
    return entries.aggregate(s=Sum("amount_fen"))["s"] or 0


def withdrawals_pending_fen(user) -> int:
    pending = Withdrawal.objects.filter(rider=user, status=WithdrawalStatus.REQUESTED)
    return pending.aggregate(s=Sum("amount_fen"))["s"] or 0


def earnings_available(user) -> int:
    """What a rider may still ask to withdraw: earnings minus withdrawals awaiting a decision."""
    return earnings_balance(user) - withdrawals_pending_fen(user)


def entries_for(user, kind: str = AccountKind.WALLET) -> QuerySet[Entry]:
    """A user's entries on one of their accounts, newest first, ready for labels and links."""
    return (
        Entry.objects.filter(account__kind=kind, account__owner=user)
        .select_related("account", "transaction", "transaction__order")
        .order_by("-id")
    )


def withdrawals_for(user) -> QuerySet[Withdrawal]:
    return Withdrawal.objects.filter(rider=user).order_by("-requested_at", "-pk")


def topup_for_user(user, intent_id: str) -> TopUp:
    topup = TopUp.objects.filter(intent_id=intent_id, user=user).first()
    if topup is None:
        raise Http404(_("No such top-up"))
    return topup


def receipt_for_user(user, pk: int) -> tuple[LedgerTransaction, list[Entry]]:
    """A transaction and the viewer's own entries in it; 404 unless the viewer holds one of
    its accounts (operators see every entry)."""
    txn = (
        LedgerTransaction.objects.select_related("order").filter(pk=pk).first()
        if user.is_authenticated
        else None
    )
    if txn is None:
        raise Http404(_("No such receipt"))
    entries = list(txn.entries.select_related("account", "account__owner").order_by("pk"))
    mine = [e for e in entries if e.account.owner_id == user.pk]
    if not mine and not user.is_staff:
        raise Http404(_("No such receipt"))
    return txn, (entries if user.is_staff and not mine else mine)


# --- orders ---------------------------------------------------------------------------------


def escrow_account(order) -> Account | None:
    return Account.objects.filter(kind=AccountKind.ESCROW, order=order).first()


def escrow_balance(order) -> int:
    return ledger.balance(escrow_account(order))


def order_paid_fen(order) -> int:
    paid = Entry.objects.filter(
        transaction__order=order,
        transaction__kind=TransactionKind.ORDER_PAYMENT,
        account__kind=AccountKind.ESCROW,
    )
    return paid.aggregate(s=Sum("amount_fen"))["s"] or 0


@dataclass
class OrderMoney:
    """Where an order's money went, for the order page, the API and admin."""

    due: int = 0
    paid: int = 0
    held: int = 0  # still in escrow
    refunded: int = 0  # back to the wallet: cancellation, expiry, disputes, unused budget
    rider_compensation: int = 0  # kept for the rider when cancelled after acceptance
    rider_earned: int = 0
    commission: int = 0
    late_compensation: int = 0
    open_dispute: bool = False
    resolved_disputes: int = 0
    last_resolution: str = ""


def _order_sum(*, account_kind: str, kinds: list[str] | None = None):
    entries = Entry.objects.filter(transaction__order=OuterRef("pk"), account__kind=account_kind)
    if kinds:
        entries = entries.filter(transaction__kind__in=kinds)
    total = entries.values("transaction__order").annotate(s=Sum("amount_fen")).values("s")[:1]
    return Coalesce(Subquery(total), 0)


def order_money(order) -> OrderMoney:
    """One query, whatever the order's history (the order page's money block stays cheap)."""
    from orders.models import Order

    K, T = AccountKind, TransactionKind
    disputes = Dispute.objects.filter(order=OuterRef("pk"))
    resolved = disputes.filter(status=DisputeStatus.RESOLVED)
    row = (
        Order.objects.filter(pk=order.pk)
        .annotate(
            paid=_order_sum(account_kind=K.ESCROW, kinds=[T.ORDER_PAYMENT]),
            held=_order_sum(account_kind=K.ESCROW),
            refunded=_order_sum(
                account_kind=K.WALLET,
                kinds=[T.ORDER_REFUND, T.DISPUTE_REFUND, T.ORDER_SETTLEMENT],
            ),
            late_compensation=_order_sum(account_kind=K.WALLET, kinds=[T.LATE_COMPENSATION]),
            rider_compensation=_order_sum(account_kind=K.RIDER_EARNINGS, kinds=[T.ORDER_REFUND]),
            rider_earned=_order_sum(account_kind=K.RIDER_EARNINGS, kinds=[T.ORDER_SETTLEMENT]),
            commission=_order_sum(account_kind=K.PLATFORM_REVENUE),
            open_dispute=Exists(disputes.filter(status=DisputeStatus.OPEN)),
            resolved_disputes=Coalesce(
                Subquery(resolved.values("order").annotate(n=Count("pk")).values("n")[:1]),
                0,
            ),
            last_resolution=Subquery(
                resolved.order_by("-resolved_at", "-pk").values("resolution_note")[:1]
            ),
        )
        .values(*[f.name for f in fields(OrderMoney) if f.name != "due"])
        .get()
    )
    row["last_resolution"] = row["last_resolution"] or ""
    return OrderMoney(due=getattr(order, "total_fen", order.price_fen), **row)


def refund_preview(order, *, held: int | None = None) -> tuple[int, int] | None:
    """(refund to the customer, compensation to the rider) if the order were cancelled now, or
    None when it can no longer be cancelled (after pickup: a dispute instead)."""
    from orders.status import Status

    if order.status not in (Status.PENDING, Status.OPEN, Status.ACCEPTED):
        return None
    if held is None:
        held = escrow_balance(order)
    compensation = 0
    if order.status == Status.ACCEPTED and order.rider_id:
        compensation = min(
            campus_money_settings(order.campus_id).rider_cancel_compensation_fen, held
        )
    return held - compensation, compensation


def ledger_totals() -> dict[str, int]:
    """Balance per account kind; all of them together sum to zero (for admin and benchmarks)."""
    rows = Entry.objects.values("account__kind").annotate(s=Sum("amount_fen"))
    return {row["account__kind"]: row["s"] for row in rows}


# --- housekeeping (management commands) -------------------------------------------------------


def orders_due_to_expire(now):
    """(order, limit in minutes) for open orders nobody accepted within their campus's limit,
    counted from when the order last opened (or, for a scheduled order, from when it opens)."""
    from django.db.models import OuterRef, Subquery

    from orders.models import Order, OrderEvent
    from orders.status import Status

    last_opened = (
        OrderEvent.objects.filter(order=OuterRef("pk"), new_status=Status.OPEN)
        .order_by("-created_at", "-pk")
        .values("created_at")[:1]
    )
    limits = {s.campus_id: s.open_timeout_minutes for s in CampusMoneySettings.objects.all()}
    default = CampusMoneySettings._meta.get_field("open_timeout_minutes").default
    shortest = min([default, *limits.values()])
    candidates = (
        Order.objects.filter(status=Status.OPEN)
        .annotate(opened_at=Subquery(last_opened))
        .filter(opened_at__lte=now - timedelta(minutes=shortest))
        .order_by("opened_at")
    )
    for order in candidates:
        minutes = limits.get(order.campus_id, default)
        start = max(order.opened_at, getattr(order, "opens_at", None) or order.opened_at)
        if start <= now - timedelta(minutes=minutes):
            yield order, minutes


def orders_due_to_complete(*, delivered_before):
    from orders.models import Order
    from orders.status import Status

    return (
        Order.objects.filter(status=Status.DELIVERED, delivered_at__lte=delivered_before)
        .exclude(disputes__status=DisputeStatus.OPEN)
        .order_by("delivered_at")
    )
