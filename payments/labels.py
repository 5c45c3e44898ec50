"""Human labels for ledger entries: what a wallet or earnings line means to its holder."""

from django.utils.translation import gettext as _

from payments.models import AccountKind, TransactionKind


def entry_label(entry) -> str:
    kind = entry.transaction.kind
    holder = entry.account.kind
    order = entry.transaction.order
    number = order.display_number if order else ""
    if holder == AccountKind.RIDER_EARNINGS:
        if kind == TransactionKind.ORDER_SETTLEMENT:
            return _("Earnings for order %(number)s") % {"number": number}
        if kind == TransactionKind.ORDER_REFUND:
            return _("Compensation: order %(number)s cancelled after you accepted it") % {
                "number": number
            }
        if kind == TransactionKind.WITHDRAWAL:
            return _("Withdrawal paid out")
        if kind == TransactionKind.GRANT:
            return entry.transaction.memo or _("Bonus")
    if kind == TransactionKind.TOPUP:
        return _("Top-up")
    if kind == TransactionKind.GRANT:
        return entry.transaction.memo or _("Promotional credit")
    if kind == TransactionKind.ORDER_PAYMENT:
        return _("Payment for order %(number)s") % {"number": number}
    if kind == TransactionKind.ORDER_REFUND:
        if order is not None and order.status == "expired":
            return _("Refund: order %(number)s expired, no rider accepted it") % {"number": number}
        return _("Refund: order %(number)s cancelled") % {"number": number}
    if kind == TransactionKind.DISPUTE_REFUND:
        return _("Refund after dispute on order %(number)s") % {"number": number}
    if kind == TransactionKind.LATE_COMPENSATION:
        return _("Late-delivery compensation for order %(number)s") % {"number": number}
    return str(TransactionKind(kind).label)
